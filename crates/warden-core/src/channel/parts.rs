//! The split encoding of a [`ChannelState`] (parts version [`PARTS_VERSION`], 2): the state
//! as several parts, each stored as its own record, so that an update writes only the parts it
//! changed (issue 5 point 3: bytes per update).
//!
//! A channel update changes one or two small things: a commitment number, one new commitment,
//! one of the peer's secrets. The whole-state encoding ([`super::encoding`], version 1) puts
//! everything in one record, so every update rewrote the setup, both of the peer's
//! commitments, our commitment with its HTLC signatures and up to 49 secrets. Here:
//!
//! | part | id | holds | written when |
//! |---|---|---|---|
//! | main | 0 | slot, commitment numbers, flags, which parts exist | every update |
//! | setup | 1 | the setup and the splice candidates | set-up, splice, lock-in |
//! | holder | 2 | our current commitment (with the peer's signatures) | a new holder commitment |
//! | counterparty | 3, 4 | the peer's commitment whose number is even (3) or odd (4) | a new counterparty commitment |
//! | secrets | 8 + g (g = 0..=6) | the peer's secrets in shachain slots 7g..7g+6 | a revocation that fills one of those slots |
//!
//! The peer's current and previous commitments alternate between parts 3 and 4 (the current
//! one goes to the part of its number's parity, the previous one to the other), so signing a
//! new commitment rewrites one of them and leaves the other. A revocation fills one shachain
//! slot: one secrets part (at most 7 × 41 bytes) changes.
//!
//! ## Encodings
//!
//! Every part is the version byte [`PARTS_VERSION`] then a TLV stream ([`crate::tlv`]), except
//! the secrets parts (version byte, then n × (u8 slot ‖ u64 index ‖ 32-byte secret)).
//!
//! | part | type | field | value |
//! |---|---|---|---|
//! | main | 0 | `slot` | 33-byte peer id ‖ u64 dbid |
//! | | 2 | holder `next_number` | u64 |
//! | | 4 | holder `revoked_below` | u64 |
//! | | 6 (opt) | holder `broadcast_signed` | u64 |
//! | | 8 | counterparty `next_number` | u64 |
//! | | 10 | counterparty `revoked_below` | u64 |
//! | | 12 (opt) | the part holding the peer's current commitment | u8 (3 or 4) |
//! | | 14 (opt) | the part holding the peer's previous commitment | u8 (3 or 4) |
//! | | 16 | `mutual_close_signed` | flag |
//! | | 18 (opt) | `funding_spent` | empty, present only when true |
//! | | 20 | the other parts that exist | their ids, ascending (may be empty) |
//! | setup | 0 (opt) | `setup` | the setup stream of version 1 |
//! | | 2 (opt) | `splices` | n × (BigSize length ‖ splice stream of version 1) |
//! | holder | 0 | `content` | compact content stream (below); its HTLC list empty with type 6 |
//! | | 2 | `counterparty_sig` | 64 bytes |
//! | | 4 | `htlc_sigs` | n × 64 bytes |
//! | | 6 (opt) | the HTLCs are those of this counterparty part's commitment | u8 (3 or 4) |
//! | counterparty | 0 | `content` | compact content stream |
//! | | 2 | `point` | 33 bytes |
//! | compact content | 0, 2, 4, 8, 10, 12 | as in version 1 | |
//! | | 6 | `htlcs` | n × 45 bytes: u8 offered by (0 holder, 1 counterparty) ‖ u64 amount msat ‖ 32-byte payment hash ‖ u32 cltv expiry |
//!
//! The compact HTLC list drops version 1's per-HTLC TLV framing (54 → 45 bytes an HTLC). Our
//! commitment usually holds the same HTLCs (same order, same fields) as one of the peer's two
//! latest commitments: it then names that part (type 6) instead of repeating the list, and
//! costs 64 + 4 bytes an HTLC (the peer's signature, the output index). Since the peer's
//! commitments alternate between parts 3 and 4, the part named keeps that commitment until our
//! next one is written.
//! Decoding checks what version 1's decoding checks (types, lengths, keys, numbers, the
//! secrets as one BOLT-03 store), and that every part the main part names is given and holds
//! what it should; a missing part is [`DecodeError::MissingPart`]. A record written in
//! version 1 (the whole state) stays readable through [`super::encoding::decode_channel`]; the
//! next update writes it as parts.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::encoding::{
    decode_content_with, decode_setup, decode_splice, encode_content_with, encode_setup,
    encode_splice, pubkey, DecodeError,
};
use super::state::{CounterpartySide, HolderSide};
use super::{
    ChannelSlot, ChannelState, CommitmentContent, HtlcInfo, HtlcSide, SignedCounterpartyCommitment,
    SignedHolderCommitment,
};
use crate::keys::node::NodeId;
use crate::keys::PerCommitmentPoint;
use crate::shachain::SecretStore;
use crate::tlv::{Record, TlvError, TlvReader, TlvWriter};
use crate::units::{CommitmentNumber, Dbid, Msat};

/// The version byte of every part.
pub const PARTS_VERSION: u8 = 2;
/// The main part's id.
pub const PART_MAIN: u8 = 0;
/// The setup part's id.
pub const PART_SETUP: u8 = 1;
/// The holder commitment part's id.
pub const PART_HOLDER: u8 = 2;
/// The counterparty commitment parts' ids (even number, odd number).
pub const PART_COUNTERPARTY: [u8; 2] = [3, 4];
/// The first secrets part's id; secrets part `PART_SECRETS + g` holds shachain slots 7g..7g+6.
pub const PART_SECRETS: u8 = 8;
/// Shachain slots per secrets part.
const SLOTS_PER_PART: u8 = 7;
/// The last secrets part's id (49 slots).
const PART_SECRETS_LAST: u8 = PART_SECRETS + 6;
const SECRET_ENTRY_LEN: usize = 1 + 8 + 32;
const HTLC_LEN: usize = 1 + 8 + 32 + 4;

/// Whether `bytes` is a part of this encoding (its version byte), as opposed to a version 1
/// whole state.
pub fn is_parts(bytes: &[u8]) -> bool {
    bytes.first() == Some(&PARTS_VERSION)
}

/// Splits `state` into its parts: `(part id, plaintext)`, the main part first, then the others
/// by id.
pub fn encode_parts(state: &ChannelState) -> Vec<(u8, Vec<u8>)> {
    let mut parts: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    if state.setup.is_some() || !state.splices.is_empty() {
        let mut w = TlvWriter::new();
        if let Some(setup) = &state.setup {
            w.record(0, &encode_setup(setup));
        }
        if !state.splices.is_empty() {
            let mut list = Vec::new();
            for c in &state.splices {
                let item = encode_splice(c);
                crate::tlv::write_bigsize(&mut list, item.len() as u64);
                list.extend_from_slice(&item);
            }
            w.record(2, &list);
        }
        parts.insert(PART_SETUP, versioned(w.into_bytes()));
    }
    let [even, odd] = PART_COUNTERPARTY;
    let parity = |n: CommitmentNumber| if n.get() % 2 == 0 { even } else { odd };
    let other = |p: u8| if p == even { odd } else { even };
    let current_part = state.counterparty.current.as_ref().map(|c| parity(c.content.number));
    let previous_part = state.counterparty.previous.as_ref().map(|p| match current_part {
        Some(c) => other(c),
        None => parity(p.content.number),
    });
    if let (Some(c), Some(part)) = (&state.counterparty.current, current_part) {
        parts.insert(part, versioned(encode_counterparty_commitment(c)));
    }
    if let (Some(p), Some(part)) = (&state.counterparty.previous, previous_part) {
        parts.insert(part, versioned(encode_counterparty_commitment(p)));
    }
    if let Some(h) = &state.holder.current {
        // Our commitment usually carries the very HTLCs of one of the peer's two: name that
        // part instead of repeating them.
        let same = [
            (current_part, state.counterparty.current.as_ref()),
            (previous_part, state.counterparty.previous.as_ref()),
        ]
        .into_iter()
        .find_map(|(part, c)| match (part, c) {
            (Some(part), Some(c))
                if !h.content.htlcs.is_empty() && c.content.htlcs == h.content.htlcs =>
            {
                Some(part)
            }
            _ => None,
        });
        parts.insert(PART_HOLDER, versioned(encode_holder_commitment(h, same)));
    }
    for (slot, index, secret) in state.counterparty.secrets.entries() {
        let part = parts.entry(PART_SECRETS + slot / SLOTS_PER_PART).or_insert_with(|| {
            let mut v = Vec::with_capacity(1 + usize::from(SLOTS_PER_PART) * SECRET_ENTRY_LEN);
            v.push(PARTS_VERSION);
            v
        });
        part.push(slot);
        part.extend_from_slice(&index.to_be_bytes());
        part.extend_from_slice(secret);
    }

    let mut w = TlvWriter::new();
    let mut slot = Vec::with_capacity(33 + 8);
    slot.extend_from_slice(&state.slot.peer.0.serialize());
    slot.extend_from_slice(&state.slot.dbid.0.to_be_bytes());
    w.record(0, &slot);
    w.u64(2, state.holder.next_number);
    w.u64(4, state.holder.revoked_below);
    if let Some(n) = state.holder.broadcast_signed {
        w.u64(6, n);
    }
    w.u64(8, state.counterparty.next_number);
    w.u64(10, state.counterparty.revoked_below);
    if let Some(p) = current_part {
        w.record(12, &[p]);
    }
    if let Some(p) = previous_part {
        w.record(14, &[p]);
    }
    w.bool(16, state.mutual_close_signed);
    if state.funding_spent {
        w.record(18, &[]);
    }
    let ids: Vec<u8> = parts.keys().copied().collect();
    w.record(20, &ids);
    let mut out = Vec::with_capacity(parts.len() + 1);
    out.push((PART_MAIN, versioned(w.into_bytes())));
    out.extend(parts);
    out
}

fn versioned(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(PARTS_VERSION);
    out.extend_from_slice(&body);
    out
}

fn body(bytes: &[u8]) -> Result<&[u8], DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::Empty),
        Some((&PARTS_VERSION, body)) => Ok(body),
        Some((&version, _)) => Err(DecodeError::UnknownVersion { version }),
    }
}

/// The ids of the parts the main part names (not the main part itself), for the caller to
/// fetch before [`decode_parts`].
pub fn part_ids(main: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut r = TlvReader::new(body(main)?, 1);
    for ty in [0, 2, 4] {
        r.required(ty)?;
    }
    r.optional(6)?;
    for ty in [8, 10] {
        r.required(ty)?;
    }
    r.optional(12)?;
    r.optional(14)?;
    r.required(16)?;
    r.optional(18)?;
    let ids = r.required(20)?;
    check_ids(&ids)?;
    Ok(ids.value.to_vec())
}

fn check_ids(ids: &Record<'_>) -> Result<(), DecodeError> {
    let known = |id: u8| {
        id == PART_SETUP
            || id == PART_HOLDER
            || PART_COUNTERPARTY.contains(&id)
            || (PART_SECRETS..=PART_SECRETS_LAST).contains(&id)
    };
    if !ids.value.iter().all(|&id| known(id))
        || !ids.value.windows(2).all(|w| matches!(w, [a, b] if a < b))
    {
        return Err(ids.bad_value("known part ids, ascending").into());
    }
    Ok(())
}

/// Rebuilds a state from its main part and the parts it names (`parts`: id → plaintext).
pub fn decode_parts<P: AsRef<[u8]>>(
    main: &[u8],
    parts: &BTreeMap<u8, P>,
) -> Result<ChannelState, DecodeError> {
    let mut r = TlvReader::new(body(main)?, 1);
    let slot = r.required(0)?;
    let (peer, dbid) = slot.fixed::<{ 33 + 8 }>()?.split_at(33);
    let peer = NodeId::from_slice(peer).ok_or(slot.bad_value("a valid node id"))?;
    let dbid = Dbid(u64::from_be_bytes(dbid.try_into().map_err(|_| slot.bad_value("a dbid"))?));
    let holder_next = r.required(2)?.u64()?;
    let holder_revoked_below = r.required(4)?.u64()?;
    let broadcast_signed = r.optional(6)?.map(|n| n.u64()).transpose()?;
    let cp_next = r.required(8)?.u64()?;
    let cp_revoked_below = r.required(10)?.u64()?;
    let part_of = |rec: Option<Record<'_>>| -> Result<Option<u8>, DecodeError> {
        match rec {
            None => Ok(None),
            Some(rec) => match rec.fixed::<1>()? {
                [p] if PART_COUNTERPARTY.contains(p) => Ok(Some(*p)),
                _ => Err(rec.bad_value("3 or 4").into()),
            },
        }
    };
    let current_part = part_of(r.optional(12)?)?;
    let previous_part = part_of(r.optional(14)?)?;
    if let Some(part) = current_part.filter(|_| current_part == previous_part) {
        return Err(DecodeError::BadPart { part });
    }
    let mutual_close_signed = r.required(16)?.bool()?;
    let funding_spent = match r.optional(18)? {
        Some(flag) if flag.value.is_empty() => true,
        Some(flag) => return Err(flag.bad_value("an empty funding_spent flag").into()),
        None => false,
    };
    let ids = r.required(20)?;
    check_ids(&ids)?;
    r.finish()?;
    let names: Vec<u8> = ids.value.to_vec();
    let get = |id: u8| -> Result<Option<&[u8]>, DecodeError> {
        match (names.contains(&id), parts.get(&id)) {
            (false, _) => Ok(None),
            (true, Some(p)) => Ok(Some(p.as_ref())),
            (true, None) => Err(DecodeError::MissingPart { part: id }),
        }
    };
    // Every counterparty part named is one the numbers point at, and the other way round.
    for id in PART_COUNTERPARTY {
        let pointed = current_part == Some(id) || previous_part == Some(id);
        if pointed != names.contains(&id) {
            return Err(DecodeError::MissingPart { part: id });
        }
    }

    let (setup, splices) = match get(PART_SETUP)? {
        None => (None, Vec::new()),
        Some(bytes) => {
            let mut r = TlvReader::new(body(bytes)?, 1);
            let setup = r.optional(0)?.map(|s| decode_setup(&s)).transpose()?;
            let mut splices = Vec::new();
            if let Some(list) = r.optional(2)? {
                let mut items = list.cursor();
                if items.is_empty() {
                    return Err(list.bad_value("at least one splice candidate").into());
                }
                while !items.is_empty() {
                    let (item, offset) = items.sized()?;
                    splices.push(decode_splice(TlvReader::new(item, offset))?);
                }
            }
            r.finish()?;
            (setup, splices)
        }
    };
    let cp = |part: Option<u8>| -> Result<Option<SignedCounterpartyCommitment>, DecodeError> {
        match part {
            None => Ok(None),
            Some(id) => match get(id)? {
                Some(bytes) => {
                    Ok(Some(decode_counterparty_commitment(TlvReader::new(body(bytes)?, 1))?))
                }
                None => Err(DecodeError::MissingPart { part: id }),
            },
        }
    };
    let cp_current = cp(current_part)?;
    let cp_previous = cp(previous_part)?;
    let current = match get(PART_HOLDER)? {
        None => None,
        Some(bytes) => {
            let (mut h, same) = decode_holder_commitment(TlvReader::new(body(bytes)?, 1))?;
            if let Some(part) = same {
                let theirs = if Some(part) == current_part {
                    cp_current.as_ref()
                } else if Some(part) == previous_part {
                    cp_previous.as_ref()
                } else {
                    None
                };
                match theirs {
                    Some(c) if h.content.htlcs.is_empty() && !c.content.htlcs.is_empty() => {
                        h.content.htlcs = c.content.htlcs.clone();
                    }
                    _ => return Err(DecodeError::BadPart { part: PART_HOLDER }),
                }
            }
            Some(h)
        }
    };
    let mut entries: Vec<(u8, u64, [u8; 32])> = Vec::new();
    for id in PART_SECRETS..=PART_SECRETS_LAST {
        let Some(bytes) = get(id)? else { continue };
        let list = body(bytes)?;
        if list.is_empty() || list.len() % SECRET_ENTRY_LEN != 0 {
            return Err(DecodeError::BadPart { part: id });
        }
        for e in list.chunks_exact(SECRET_ENTRY_LEN) {
            let [slot, i0, i1, i2, i3, i4, i5, i6, i7, secret @ ..] = e else {
                return Err(DecodeError::BadPart { part: id });
            };
            if PART_SECRETS + slot / SLOTS_PER_PART != id {
                return Err(DecodeError::BadPart { part: id });
            }
            let secret: [u8; 32] =
                secret.try_into().map_err(|_| DecodeError::BadPart { part: id })?;
            entries.push((
                *slot,
                u64::from_be_bytes([*i0, *i1, *i2, *i3, *i4, *i5, *i6, *i7]),
                secret,
            ));
        }
    }
    let secrets = SecretStore::from_entries(entries.iter().map(|(s, i, x)| (*s, *i, x)))
        .map_err(|error| DecodeError::Secrets { offset: 0, error })?;
    for e in &mut entries {
        zeroize::Zeroize::zeroize(&mut e.2);
    }
    Ok(ChannelState {
        slot: ChannelSlot { peer, dbid },
        setup,
        holder: HolderSide {
            next_number: holder_next,
            revoked_below: holder_revoked_below,
            current,
            broadcast_signed,
        },
        counterparty: CounterpartySide {
            next_number: cp_next,
            revoked_below: cp_revoked_below,
            current: cp_current,
            previous: cp_previous,
            secrets,
        },
        mutual_close_signed,
        splices,
        funding_spent,
    })
}

/// Our commitment; with `same`, its HTLC list is left out (written empty) and type 6 names the
/// counterparty part whose commitment has exactly that list.
fn encode_holder_commitment(c: &SignedHolderCommitment, same: Option<u8>) -> Vec<u8> {
    let mut w = TlvWriter::new();
    match same {
        Some(_) => {
            let content = CommitmentContent { htlcs: Vec::new(), ..c.content.clone() };
            w.record(0, &encode_content(&content));
        }
        None => w.record(0, &encode_content(&c.content)),
    }
    w.record(2, &c.counterparty_sig);
    w.record(4, &c.htlc_sigs.concat());
    if let Some(part) = same {
        w.record(6, &[part]);
    }
    w.into_bytes()
}

/// Our commitment and, if its HTLCs are those of a counterparty part, that part's id.
fn decode_holder_commitment(
    mut r: TlvReader<'_>,
) -> Result<(SignedHolderCommitment, Option<u8>), DecodeError> {
    let content = decode_content(&r.required(0)?)?;
    let counterparty_sig = *r.required(2)?.fixed::<64>()?;
    let htlc_sigs = r.required(4)?.chunks::<64>()?.copied().collect();
    let same = match r.optional(6)? {
        None => None,
        Some(rec) => match rec.fixed::<1>()? {
            [p] if PART_COUNTERPARTY.contains(p) => Some(*p),
            _ => return Err(rec.bad_value("3 or 4").into()),
        },
    };
    r.finish()?;
    Ok((SignedHolderCommitment { content, counterparty_sig, htlc_sigs }, same))
}

fn encode_counterparty_commitment(c: &SignedCounterpartyCommitment) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.record(0, &encode_content(&c.content));
    w.record(2, &c.point.serialize());
    w.into_bytes()
}

fn decode_counterparty_commitment(
    mut r: TlvReader<'_>,
) -> Result<SignedCounterpartyCommitment, DecodeError> {
    let content = decode_content(&r.required(0)?)?;
    let p = r.required(2)?;
    let point = PerCommitmentPoint(pubkey(&p, p.fixed::<33>()?)?);
    r.finish()?;
    Ok(SignedCounterpartyCommitment { content, point })
}

/// The compact HTLC list: `HTLC_LEN` bytes an HTLC, no framing.
fn encode_content(c: &CommitmentContent) -> Vec<u8> {
    encode_content_with(c, |list| {
        let mut htlcs = Vec::with_capacity(list.len() * HTLC_LEN);
        for h in list {
            htlcs.push(match h.offered_by {
                HtlcSide::Holder => 0,
                HtlcSide::Counterparty => 1,
            });
            htlcs.extend_from_slice(&h.amount.0.to_be_bytes());
            htlcs.extend_from_slice(&h.payment_hash);
            htlcs.extend_from_slice(&h.cltv_expiry.to_be_bytes());
        }
        htlcs
    })
}

fn decode_content(rec: &Record<'_>) -> Result<CommitmentContent, DecodeError> {
    Ok(decode_content_with(rec, decode_compact_htlcs)?)
}

fn decode_compact_htlcs(list: &Record<'_>) -> Result<Vec<HtlcInfo>, TlvError> {
    let mut htlcs = Vec::new();
    for item in list.chunks::<HTLC_LEN>()? {
        let [side, a0, a1, a2, a3, a4, a5, a6, a7, rest @ ..] = item;
        let offered_by = match side {
            0 => HtlcSide::Holder,
            1 => HtlcSide::Counterparty,
            _ => return Err(list.bad_value("0 (holder) or 1 (counterparty)")),
        };
        let (hash, cltv) = rest.split_at(32);
        htlcs.push(HtlcInfo {
            offered_by,
            amount: Msat(u64::from_be_bytes([*a0, *a1, *a2, *a3, *a4, *a5, *a6, *a7])),
            payment_hash: hash.try_into().map_err(|_| list.bad_value("a payment hash"))?,
            cltv_expiry: u32::from_be_bytes(cltv.try_into().map_err(|_| list.bad_value("a cltv"))?),
        });
    }
    Ok(htlcs)
}
