//! BOLT-03 per-commitment secrets: generation from a seed and compact storage
//! ("Per-commitment Secret Requirements", "Efficient Per-commitment Secret Storage").
//!
//! Secrets are indexed by a 48-bit index `I` that counts *down* from 2^48 - 1: commitment
//! number `n` uses index `2^48 - 1 - n` (see [`crate::units::CommitmentNumber::shachain_index`]).
//! The receiver of revealed secrets keeps at most 49 of them and can still derive every secret
//! revealed so far; each insertion checks that the new secret derives the stored ones, so a
//! peer whose secrets do not chain is caught at the first secret that proves it.

use core::fmt;

use bitcoin::hashes::{sha256, Hash};
use zeroize::Zeroize;

/// The number of bits of a shachain index.
pub const INDEX_BITS: u32 = 48;

/// The largest shachain index (2^48 - 1): the index of commitment number 0.
pub const MAX_INDEX: u64 = (1 << INDEX_BITS) - 1;

fn flip_bit(p: &mut [u8; 32], bit: u32) {
    if let Some(byte) = p.get_mut((bit / 8) as usize) {
        *byte ^= 1 << (bit % 8);
    }
}

/// Walks from `base` down to `index`, flipping and hashing for each set bit below `bits`.
fn derive(base: &[u8; 32], bits: u32, index: u64) -> [u8; 32] {
    let mut p = *base;
    for b in (0..bits).rev() {
        if index & (1 << b) != 0 {
            flip_bit(&mut p, b);
            let next = sha256::Hash::hash(&p).to_byte_array();
            p.zeroize();
            p = next;
        }
    }
    p
}

/// `generate_from_seed(seed, I)`: the secret of index `index` (only its low 48 bits count).
pub fn generate_from_seed(seed: &[u8; 32], index: u64) -> [u8; 32] {
    derive(seed, INDEX_BITS, index)
}

/// The slot of an index in compact storage: its number of trailing zero bits, at most 48.
fn slot_of(index: u64) -> usize {
    (index.trailing_zeros().min(INDEX_BITS)) as usize
}

/// Why a revealed secret was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShachainError {
    /// The index is above 2^48 - 1.
    IndexOutOfRange(u64),
    /// Secrets must be revealed in order: this index is not the one after the last.
    NotNext {
        /// The index that was expected (one below the last stored).
        expected: u64,
        /// The index that was given.
        got: u64,
    },
    /// The new secret does not derive a secret revealed earlier: the peer's secrets do not chain.
    DoesNotChain {
        /// The index of the new secret.
        index: u64,
        /// The index of the earlier secret it fails to derive.
        earlier: u64,
    },
    /// A persisted entry is not where a store of consecutive insertions keeps it: a wrong or
    /// repeated slot, or an index that a more recent insertion would have replaced.
    MisplacedEntry {
        /// The entry's slot.
        slot: u8,
        /// The entry's index.
        index: u64,
    },
    /// The persisted entries lack one that a store of consecutive insertions keeps.
    MissingEntry {
        /// The empty slot.
        slot: u8,
        /// The index it should hold.
        index: u64,
    },
}

impl fmt::Display for ShachainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShachainError::IndexOutOfRange(i) => write!(f, "shachain index {i} is above 2^48-1"),
            ShachainError::NotNext { expected, got } => {
                write!(
                    f,
                    "secret for index {got} revealed out of order (expected index {expected})"
                )
            }
            ShachainError::DoesNotChain { index, earlier } => write!(
                f,
                "secret for index {index} does not derive the secret revealed for index {earlier}"
            ),
            ShachainError::MisplacedEntry { slot, index } => {
                write!(f, "stored secret for index {index} does not belong in slot {slot}")
            }
            ShachainError::MissingEntry { slot, index } => {
                write!(f, "stored secrets lack index {index} in slot {slot}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ShachainError {}

#[derive(Clone)]
struct Slot {
    index: u64,
    secret: [u8; 32],
}

/// The compact store of the secrets a peer revealed (at most 49 entries).
#[derive(Clone)]
pub struct SecretStore {
    slots: [Option<Slot>; INDEX_BITS as usize + 1],
    /// The lowest index inserted so far (the most recent), if any.
    min_index: Option<u64>,
}

impl Default for SecretStore {
    fn default() -> SecretStore {
        SecretStore { slots: [const { None }; INDEX_BITS as usize + 1], min_index: None }
    }
}

impl SecretStore {
    /// An empty store.
    pub fn new() -> SecretStore {
        SecretStore::default()
    }

    /// The index of the last secret inserted, if any.
    pub fn min_index(&self) -> Option<u64> {
        self.min_index
    }

    /// Whether no secret was stored yet.
    pub fn is_empty(&self) -> bool {
        self.min_index.is_none()
    }

    /// The index the next secret must have, or `None` if any index may come first.
    pub fn next_index(&self) -> Option<u64> {
        self.min_index.map(|m| m.wrapping_sub(1))
    }

    /// Inserts the secret of `index`, checking that it is the next one and that it derives
    /// every stored secret it can. On error the store is unchanged.
    pub fn insert(&mut self, index: u64, secret: [u8; 32]) -> Result<(), ShachainError> {
        if index > MAX_INDEX {
            return Err(ShachainError::IndexOutOfRange(index));
        }
        if let Some(min) = self.min_index {
            if min == 0 || index != min - 1 {
                return Err(ShachainError::NotNext { expected: min.wrapping_sub(1), got: index });
            }
        }
        let pos = slot_of(index);
        for b in 0..pos {
            if let Some(Some(stored)) = self.slots.get(b) {
                if derive(&secret, pos as u32, stored.index) != stored.secret {
                    return Err(ShachainError::DoesNotChain { index, earlier: stored.index });
                }
            }
        }
        if let Some(slot) = self.slots.get_mut(pos) {
            if let Some(old) = slot.as_mut() {
                old.secret.zeroize();
            }
            *slot = Some(Slot { index, secret });
        }
        self.min_index = Some(index);
        Ok(())
    }

    /// The secret of `index` if it was revealed (directly or derivably), else `None`.
    pub fn get(&self, index: u64) -> Option<[u8; 32]> {
        for (b, slot) in self.slots.iter().enumerate() {
            let Some(slot) = slot else { continue };
            let mask = !((1u64 << b) - 1);
            if index & mask == slot.index && index >= self.min_index? {
                return Some(derive(&slot.secret, b as u32, index));
            }
        }
        None
    }

    /// Rebuilds a store from its persisted [`SecretStore::entries`], checking them again: each
    /// index in the slot of its trailing zero bits and no slot twice, exactly the slots that
    /// consecutive insertions down to the lowest index keep, and every secret deriving the
    /// older secrets it was checked against when it was inserted.
    pub fn from_entries<'a, I>(entries: I) -> Result<SecretStore, ShachainError>
    where
        I: IntoIterator<Item = (u8, u64, &'a [u8; 32])>,
    {
        let mut store = SecretStore::new();
        for (slot, index, secret) in entries {
            if index > MAX_INDEX {
                return Err(ShachainError::IndexOutOfRange(index));
            }
            let misplaced = ShachainError::MisplacedEntry { slot, index };
            if usize::from(slot) != slot_of(index) {
                return Err(misplaced);
            }
            match store.slots.get_mut(usize::from(slot)) {
                Some(s @ None) => *s = Some(Slot { index, secret: *secret }),
                _ => return Err(misplaced),
            }
        }
        let indexes = store.slots.iter().flatten().map(|s| s.index);
        let (Some(min), Some(max)) = (indexes.clone().min(), indexes.max()) else {
            return Ok(store);
        };
        // Slot b holds the lowest index at or above `min` with exactly b trailing zeros, if
        // that index was inserted (is not above `max`).
        for (b, slot) in store.slots.iter().enumerate() {
            let expected = if b == INDEX_BITS as usize {
                (min == 0).then_some(0)
            } else {
                let mut c = min.div_ceil(1 << b);
                if c % 2 == 0 {
                    c += 1;
                }
                Some(c << b).filter(|&i| i <= max)
            };
            match (slot, expected) {
                (Some(s), e) if e != Some(s.index) => {
                    return Err(ShachainError::MisplacedEntry { slot: b as u8, index: s.index })
                }
                (None, Some(index)) => {
                    return Err(ShachainError::MissingEntry { slot: b as u8, index })
                }
                _ => {}
            }
        }
        // What `insert` checked: each secret derives the older ones (higher index) in lower
        // slots, which were all present when it was inserted.
        for (pos, newer) in store.slots.iter().enumerate() {
            let Some(newer) = newer else { continue };
            for older in store.slots.iter().take(pos).flatten() {
                if older.index > newer.index
                    && derive(&newer.secret, pos as u32, older.index) != older.secret
                {
                    return Err(ShachainError::DoesNotChain {
                        index: newer.index,
                        earlier: older.index,
                    });
                }
            }
        }
        store.min_index = Some(min);
        Ok(store)
    }

    /// The stored entries `(slot, index, secret)`, for persistence.
    pub fn entries(&self) -> impl Iterator<Item = (u8, u64, &[u8; 32])> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(b, s)| s.as_ref().map(|s| (b as u8, s.index, &s.secret)))
    }
}

impl Drop for SecretStore {
    fn drop(&mut self) {
        for slot in self.slots.iter_mut().flatten() {
            slot.secret.zeroize();
        }
    }
}

impl PartialEq for SecretStore {
    fn eq(&self, other: &SecretStore) -> bool {
        use subtle::ConstantTimeEq;
        self.min_index == other.min_index
            && self.slots.iter().zip(other.slots.iter()).all(|(a, b)| match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => a.index == b.index && bool::from(a.secret.ct_eq(&b.secret)),
                _ => false,
            })
    }
}

impl Eq for SecretStore {}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("min_index", &self.min_index)
            .field("slots_used", &self.slots.iter().flatten().count())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn slots() {
        assert_eq!(slot_of(0), 48);
        assert_eq!(slot_of(MAX_INDEX), 0);
        assert_eq!(slot_of(MAX_INDEX - 1), 1);
        assert_eq!(slot_of(1 << 47), 47);
    }

    #[test]
    fn out_of_order_and_range_are_refused_without_change() {
        let seed = [0x11; 32];
        let mut s = SecretStore::new();
        assert_eq!(
            s.insert(MAX_INDEX + 1, [0; 32]),
            Err(ShachainError::IndexOutOfRange(MAX_INDEX + 1))
        );
        s.insert(MAX_INDEX, generate_from_seed(&seed, MAX_INDEX)).unwrap();
        let before = s.clone();
        assert_eq!(
            s.insert(MAX_INDEX - 2, generate_from_seed(&seed, MAX_INDEX - 2)),
            Err(ShachainError::NotNext { expected: MAX_INDEX - 1, got: MAX_INDEX - 2 })
        );
        assert_eq!(s, before);
        assert_eq!(s.get(MAX_INDEX - 1), None);
    }

    #[test]
    fn debug_is_redacted() {
        let mut s = SecretStore::new();
        s.insert(MAX_INDEX, [0xab; 32]).unwrap();
        let p = format!("{s:?}");
        assert!(!p.contains("ab, ") && !p.contains("171"), "{p}");
    }
}
