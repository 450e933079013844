//! Newtypes for the units and identifiers a signer reasons about.
//!
//! Amounts in satoshis and millisatoshis, feerates per kiloweight, commitment numbers and the
//! identifiers of a channel are distinct types, so a millisatoshi amount cannot be passed where
//! satoshis are expected, nor a database id where a commitment number is.

use core::fmt;

/// An amount in satoshis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sat(pub u64);

/// An amount in millisatoshis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Msat(pub u64);

impl Sat {
    /// Zero satoshis.
    pub const ZERO: Sat = Sat(0);

    /// Returns the amount in millisatoshis, or `None` on overflow.
    pub fn to_msat(self) -> Option<Msat> {
        self.0.checked_mul(1000).map(Msat)
    }

    /// Adds, returning `None` on overflow.
    pub fn checked_add(self, other: Sat) -> Option<Sat> {
        self.0.checked_add(other.0).map(Sat)
    }

    /// Subtracts, returning `None` when `other` is larger.
    pub fn checked_sub(self, other: Sat) -> Option<Sat> {
        self.0.checked_sub(other.0).map(Sat)
    }

    /// Returns the amount as a rust-bitcoin [`bitcoin::Amount`].
    pub fn to_amount(self) -> bitcoin::Amount {
        bitcoin::Amount::from_sat(self.0)
    }
}

impl Msat {
    /// Zero millisatoshis.
    pub const ZERO: Msat = Msat(0);

    /// Returns the whole satoshis, rounding down (BOLT-03 rounds balances down).
    pub fn to_sat_floor(self) -> Sat {
        Sat(self.0 / 1000)
    }

    /// Adds, returning `None` on overflow.
    pub fn checked_add(self, other: Msat) -> Option<Msat> {
        self.0.checked_add(other.0).map(Msat)
    }

    /// Subtracts, returning `None` when `other` is larger.
    pub fn checked_sub(self, other: Msat) -> Option<Msat> {
        self.0.checked_sub(other.0).map(Msat)
    }
}

impl fmt::Display for Sat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sat", self.0)
    }
}

impl fmt::Display for Msat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} msat", self.0)
    }
}

impl From<bitcoin::Amount> for Sat {
    fn from(a: bitcoin::Amount) -> Sat {
        Sat(a.to_sat())
    }
}

/// A feerate in satoshis per 1000 weight units, as BOLT-02 and BOLT-03 state feerates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeeratePerKw(pub u32);

impl FeeratePerKw {
    /// The fee in satoshis for `weight` weight units, rounded down (BOLT-03 `fee_for_weight`).
    pub fn fee_for_weight(self, weight: u64) -> Sat {
        Sat(u64::from(self.0).saturating_mul(weight) / 1000)
    }
}

impl fmt::Display for FeeratePerKw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sat/kw", self.0)
    }
}

/// A commitment number: 0 for the first commitment, counting up (BOLT-03, 48 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommitmentNumber(u64);

/// A commitment number at or above 2^48.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitmentNumberError(pub u64);

impl fmt::Display for CommitmentNumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "commitment number {} is not below 2^48", self.0)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CommitmentNumberError {}

impl CommitmentNumber {
    /// The largest commitment number BOLT-03 allows (2^48 - 1).
    pub const MAX: u64 = (1 << 48) - 1;

    /// Makes a commitment number, refusing values at or above 2^48.
    pub fn new(n: u64) -> Result<Self, CommitmentNumberError> {
        if n > Self::MAX {
            Err(CommitmentNumberError(n))
        } else {
            Ok(CommitmentNumber(n))
        }
    }

    /// Returns the number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// Returns the shachain index of this commitment's per-commitment secret (2^48 - 1 - n).
    pub fn shachain_index(self) -> u64 {
        Self::MAX - self.0
    }

    /// Returns the next number, or `None` past the 48-bit range.
    pub fn next(self) -> Option<Self> {
        Self::new(self.0.checked_add(1)?).ok()
    }
}

impl fmt::Display for CommitmentNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Core Lightning's database id of a channel: with the peer id it selects the channel's keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dbid(pub u64);

impl fmt::Display for Dbid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dbid {}", self.0)
    }
}

/// A BOLT-02 channel id (the funding txid xor the output index, or a v2 channel id).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(pub [u8; 32]);

impl ChannelId {
    /// The v1 channel id of a funding outpoint (BOLT-02): the txid in wire byte order with the
    /// big-endian output index xored into its last two bytes.
    pub fn v1_from_funding(outpoint: &bitcoin::OutPoint) -> Self {
        use bitcoin::hashes::Hash;
        let mut id = outpoint.txid.to_byte_array();
        let vout = (outpoint.vout as u16).to_be_bytes();
        id[30] ^= vout[0];
        id[31] ^= vout[1];
        ChannelId(id)
    }
}

impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelId({self})")
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_number_range() {
        assert!(CommitmentNumber::new(CommitmentNumber::MAX).is_ok());
        assert_eq!(CommitmentNumber::new(1 << 48), Err(CommitmentNumberError(1 << 48)));
        let n = CommitmentNumber::new(42).unwrap();
        assert_eq!(n.shachain_index(), (1 << 48) - 1 - 42);
        assert_eq!(CommitmentNumber::new(CommitmentNumber::MAX).unwrap().next(), None);
    }

    #[test]
    fn fee_for_weight_rounds_down() {
        assert_eq!(FeeratePerKw(15000).fee_for_weight(724), Sat(10860));
        assert_eq!(FeeratePerKw(253).fee_for_weight(1), Sat(0));
    }

    #[test]
    fn msat_rounds_down() {
        assert_eq!(Msat(1999).to_sat_floor(), Sat(1));
    }
}
