//! The persisted encoding of a [`ChannelState`] (ADR 0001, STYLE.md rules 10 and 11).
//!
//! An encoding is one version byte ([`VERSION`], 1), then a TLV stream ([`crate::tlv`]: BigSize
//! type and length, strictly ascending types). Structures are nested TLV streams; lists of
//! fixed-size items are their concatenation; lists of structures are a concatenation of
//! `BigSize length ‖ nested stream` items. Integers are fixed-width big-endian, flags one byte
//! (0 or 1), keys 33-byte compressed, txids in their internal byte order
//! (`Txid::to_byte_array`).
//!
//! # Type numbers
//!
//! Required records are always written; optional ones (`opt`) are absent for `None`.
//!
//! | stream | type | field | value |
//! |---|---|---|---|
//! | channel | 0 | `slot` | 33-byte peer node id ‖ u64 dbid |
//! | | 2 (opt) | `setup` | setup stream |
//! | | 4 | `holder` | holder stream |
//! | | 6 | `counterparty` | counterparty stream |
//! | | 8 | `mutual_close_signed` | flag |
//! | | 12 (opt) | `splices` | n × (BigSize length ‖ splice stream), n ≥ 1; absent when empty |
//! | | 14 (opt) | `funding_spent` | empty; present only when true (even: a Warden that does not know it must not forget it) |
//! | setup | 0 | `is_outbound` | flag |
//! | | 2 | `channel_value` | u64 sat |
//! | | 4 | `push_value` | u64 msat |
//! | | 6 | `funding_outpoint` | 32-byte txid ‖ u32 vout |
//! | | 8 | `holder_selected_delay` | u16 |
//! | | 10 (opt) | `holder_shutdown_script` | script bytes |
//! | | 12 (opt) | `holder_shutdown_wallet_index` | u32 |
//! | | 14 | `counterparty_basepoints` | 4 × 33 bytes: revocation, payment, htlc, delayed |
//! | | 16 | `counterparty_funding_pubkey` | 33 bytes |
//! | | 18 | `counterparty_selected_delay` | u16 |
//! | | 20 (opt) | `counterparty_shutdown_script` | script bytes |
//! | | 22 | `channel_type_features` | feature bytes (may be empty) |
//! | holder | 0 | `next_number` | u64 |
//! | | 2 | `revoked_below` | u64 |
//! | | 4 (opt) | `current` | holder-commitment stream |
//! | | 6 (opt) | `broadcast_signed` | u64 |
//! | counterparty | 0 | `next_number` | u64 |
//! | | 2 | `revoked_below` | u64 |
//! | | 4 (opt) | `current` | counterparty-commitment stream |
//! | | 6 (opt) | `previous` | counterparty-commitment stream |
//! | | 8 | `secrets` | n × (u8 slot ‖ u64 index ‖ 32-byte secret), n ≤ 49 (may be empty) |
//! | holder-commitment | 0 | `content` | content stream |
//! | | 2 | `counterparty_sig` | 64 bytes |
//! | | 4 | `htlc_sigs` | n × 64 bytes (may be empty) |
//! | counterparty-commitment | 0 | `content` | content stream |
//! | | 2 | `point` | 33 bytes |
//! | content | 0 | `number` | u64, below 2^48 |
//! | | 2 | `txid` | 32 bytes |
//! | | 4 | `feerate` | u32 sat/kw |
//! | | 6 | `htlcs` | n × (BigSize length ‖ htlc stream) (may be empty) |
//! | | 8 | `htlc_vouts` | n × u32 (may be empty) |
//! | | 10 | `to_holder` | u64 sat |
//! | | 12 | `to_counterparty` | u64 sat |
//! | splice | 0 | `funding_outpoint` | 32-byte txid ‖ u32 vout |
//! | | 2 | `channel_value` | u64 sat |
//! | | 4 | `counterparty_funding_pubkey` | 33 bytes |
//! | | 6 | `holder_relative` | i64 sat, two's complement |
//! | | 8 | `counterparty_relative` | i64 sat, two's complement |
//! | | 10 (opt) | `holder` | holder-commitment stream |
//! | | 12 (opt) | `counterparty` | counterparty-commitment stream |
//! | htlc | 0 | `offered_by` | u8: 0 holder, 1 counterparty |
//! | | 2 | `amount` | u64 msat |
//! | | 4 | `payment_hash` | 32 bytes |
//! | | 6 | `cltv_expiry` | u32 |
//!
//! # Compatibility promise
//!
//! A newer Warden reads every state an older Warden wrote. A field added later gets a new type
//! in the stream of the structure it belongs to: an odd type when an older Warden may safely
//! ignore it (it is then skipped), an even type when ignoring it could make an older Warden
//! sign what it must not (an older Warden then refuses the state instead of misreading it).
//! Type numbers are never reused and a value's layout never changes; a layout change is a new
//! type, or a new [`VERSION`] that newer readers keep reading. `tests/data/encoding/` holds
//! the golden bytes of each version.
//!
//! # Decoding
//!
//! [`decode_channel`] never panics and never allocates more than a small multiple of the
//! input's length: every length is checked against the bytes that remain before it is used
//! and list sizes come from value lengths, never from a count. It refuses an unknown version,
//! truncation, trailing bytes that do not form a well-formed record, non-canonical BigSize,
//! duplicate or out-of-order types, unknown even types, values of the wrong length or with
//! invalid keys, flags or numbers, and secret entries that do not form a valid BOLT-03 store
//! ([`SecretStore::from_entries`]). Unknown odd types are skipped, so re-encoding drops them.
//! The ordering rules of [`ChannelState`]'s transitions are not checked again here.
//!
//! Every record of the channel stream but `splices` is required or precedes a required one,
//! so cutting an encoding between two records yields no other valid state except the same
//! state without its splice candidates (which then refuses what spends them: the safe side);
//! the integrity of a persisted state is the storage layer's job, not the encoding's.
//! `splices` (type 12; 10 is left unused) is even: a Warden that ignored candidates would sign a splice without
//! checking it against them.
//!
//! The encoding contains the peer's revealed per-commitment secrets (no key of ours).

use alloc::vec::Vec;
use core::fmt;

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, ScriptBuf, Txid};

use super::state::{CounterpartySide, HolderSide, SpliceCandidate};
use super::{
    ChannelSetup, ChannelSlot, ChannelState, CommitmentContent, HtlcInfo, HtlcSide,
    SignedCounterpartyCommitment, SignedHolderCommitment,
};
use crate::keys::node::NodeId;
use crate::keys::{
    Basepoints, DelayedPaymentBasepoint, FundingPubkey, HtlcBasepoint, PaymentBasepoint,
    PerCommitmentPoint, RevocationBasepoint,
};
use crate::secp256k1::PublicKey;
use crate::shachain::{SecretStore, ShachainError};
use crate::tlv::{Record, TlvError, TlvReader, TlvWriter};
use crate::units::{CommitmentNumber, Dbid, FeeratePerKw, Msat, Sat};

/// The version byte of the current encoding.
pub const VERSION: u8 = 1;

/// The size of one persisted shachain entry: slot, index, secret.
const SECRET_ENTRY_LEN: usize = 1 + 8 + 32;

/// Why an encoded channel state was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input is empty: there is no version byte.
    Empty,
    /// The version byte is not one this Warden reads.
    UnknownVersion {
        /// The version byte.
        version: u8,
    },
    /// The TLV stream or one of its values is malformed.
    Tlv(TlvError),
    /// A part of a split state ([`super::parts`]) that the main part names is not given, or
    /// a counterparty commitment part is named without being pointed at (or the reverse).
    MissingPart {
        /// The part's id.
        part: u8,
    },
    /// A part of a split state is malformed.
    BadPart {
        /// The part's id.
        part: u8,
    },
    /// The peer's secrets do not form a valid BOLT-03 compact store.
    Secrets {
        /// Where the secrets' value starts.
        offset: usize,
        /// What is wrong with them.
        error: ShachainError,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty channel state encoding"),
            DecodeError::UnknownVersion { version } => {
                write!(f, "unknown channel state encoding version {version}")
            }
            DecodeError::Tlv(_) => f.write_str("malformed channel state encoding"),
            DecodeError::MissingPart { part } => {
                write!(f, "part {part} of the channel state is missing or not named")
            }
            DecodeError::BadPart { part } => {
                write!(f, "part {part} of the channel state is malformed")
            }
            DecodeError::Secrets { offset, .. } => {
                write!(f, "invalid peer secrets in the channel state at offset {offset}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Tlv(e) => Some(e),
            DecodeError::Secrets { error, .. } => Some(error),
            DecodeError::Empty
            | DecodeError::UnknownVersion { .. }
            | DecodeError::MissingPart { .. }
            | DecodeError::BadPart { .. } => None,
        }
    }
}

impl From<TlvError> for DecodeError {
    fn from(e: TlvError) -> DecodeError {
        DecodeError::Tlv(e)
    }
}

/// Encodes a channel state (version [`VERSION`]).
pub fn encode_channel(state: &ChannelState) -> Vec<u8> {
    let mut w = TlvWriter::new();
    let mut slot = Vec::with_capacity(33 + 8);
    slot.extend_from_slice(&state.slot.peer.0.serialize());
    slot.extend_from_slice(&state.slot.dbid.0.to_be_bytes());
    w.record(0, &slot);
    if let Some(setup) = &state.setup {
        w.record(2, &encode_setup(setup));
    }
    w.record(4, &encode_holder(&state.holder));
    w.record(6, &encode_counterparty(&state.counterparty));
    w.bool(8, state.mutual_close_signed);
    if !state.splices.is_empty() {
        let mut list = Vec::new();
        for c in &state.splices {
            let item = encode_splice(c);
            crate::tlv::write_bigsize(&mut list, item.len() as u64);
            list.extend_from_slice(&item);
        }
        w.record(12, &list);
    }
    if state.funding_spent {
        w.record(14, &[]);
    }
    let body = w.into_bytes();
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(VERSION);
    out.extend_from_slice(&body);
    out
}

/// Decodes a channel state written by [`encode_channel`] of this or an earlier Warden.
pub fn decode_channel(bytes: &[u8]) -> Result<ChannelState, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != VERSION {
        return Err(DecodeError::UnknownVersion { version });
    }
    let mut r = TlvReader::new(body, 1);
    let slot = r.required(0)?;
    let (peer, dbid) = slot.fixed::<{ 33 + 8 }>()?.split_at(33);
    let peer = NodeId::from_slice(peer).ok_or(slot.bad_value("a valid node id"))?;
    let dbid = Dbid(u64::from_be_bytes(dbid.try_into().map_err(|_| slot.bad_value("a dbid"))?));
    let setup = r.optional(2)?.map(|s| decode_setup(&s)).transpose()?;
    let holder = decode_holder(&r.required(4)?)?;
    let counterparty = decode_counterparty(&r.required(6)?)?;
    let mutual_close_signed = r.required(8)?.bool()?;
    let mut splices = Vec::new();
    if let Some(list) = r.optional(12)? {
        let mut items = list.cursor();
        if items.is_empty() {
            return Err(list.bad_value("at least one splice candidate").into());
        }
        while !items.is_empty() {
            let (item, offset) = items.sized()?;
            splices.push(decode_splice(TlvReader::new(item, offset))?);
        }
    }
    let funding_spent = match r.optional(14)? {
        Some(flag) if flag.value.is_empty() => true,
        Some(flag) => return Err(flag.bad_value("an empty funding_spent flag").into()),
        None => false,
    };
    r.finish()?;
    Ok(ChannelState {
        slot: ChannelSlot { peer, dbid },
        setup,
        holder,
        counterparty,
        mutual_close_signed,
        splices,
        funding_spent,
    })
}

fn encode_outpoint(o: &OutPoint) -> Vec<u8> {
    let mut outpoint = Vec::with_capacity(32 + 4);
    outpoint.extend_from_slice(&o.txid.to_byte_array());
    outpoint.extend_from_slice(&o.vout.to_be_bytes());
    outpoint
}

fn decode_outpoint(rec: &Record<'_>) -> Result<OutPoint, TlvError> {
    let (txid, vout) = rec.fixed::<{ 32 + 4 }>()?.split_at(32);
    Ok(OutPoint {
        txid: Txid::from_slice(txid).map_err(|_| rec.bad_value("a txid"))?,
        vout: u32::from_be_bytes(vout.try_into().map_err(|_| rec.bad_value("a vout"))?),
    })
}

pub(super) fn encode_splice(c: &SpliceCandidate) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.record(0, &encode_outpoint(&c.funding_outpoint));
    w.u64(2, c.channel_value.0);
    w.record(4, &c.counterparty_funding_pubkey.serialize());
    w.record(6, &c.holder_relative.to_be_bytes());
    w.record(8, &c.counterparty_relative.to_be_bytes());
    if let Some(h) = &c.holder {
        w.record(10, &encode_holder_commitment(h));
    }
    if let Some(k) = &c.counterparty {
        w.record(12, &encode_counterparty_commitment(k));
    }
    w.into_bytes()
}

pub(super) fn decode_splice(mut r: TlvReader<'_>) -> Result<SpliceCandidate, TlvError> {
    let funding_outpoint = decode_outpoint(&r.required(0)?)?;
    let channel_value = Sat(r.required(2)?.u64()?);
    let f = r.required(4)?;
    let counterparty_funding_pubkey = FundingPubkey(pubkey(&f, f.fixed::<33>()?)?);
    let holder_relative = i64::from_be_bytes(*r.required(6)?.fixed::<8>()?);
    let counterparty_relative = i64::from_be_bytes(*r.required(8)?.fixed::<8>()?);
    let holder = r.optional(10)?.map(|c| decode_holder_commitment(&c)).transpose()?;
    let counterparty = r.optional(12)?.map(|c| decode_counterparty_commitment(&c)).transpose()?;
    r.finish()?;
    Ok(SpliceCandidate {
        funding_outpoint,
        channel_value,
        counterparty_funding_pubkey,
        holder_relative,
        counterparty_relative,
        holder,
        counterparty,
    })
}

pub(super) fn encode_setup(s: &ChannelSetup) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.bool(0, s.is_outbound);
    w.u64(2, s.channel_value.0);
    w.u64(4, s.push_value.0);
    let mut outpoint = Vec::with_capacity(32 + 4);
    outpoint.extend_from_slice(&s.funding_outpoint.txid.to_byte_array());
    outpoint.extend_from_slice(&s.funding_outpoint.vout.to_be_bytes());
    w.record(6, &outpoint);
    w.u16(8, s.holder_selected_delay);
    if let Some(script) = &s.holder_shutdown_script {
        w.record(10, script.as_bytes());
    }
    if let Some(index) = s.holder_shutdown_wallet_index {
        w.u32(12, index);
    }
    let b = &s.counterparty_basepoints;
    let mut basepoints = Vec::with_capacity(4 * 33);
    for key in [b.revocation.0, b.payment.0, b.htlc.0, b.delayed_payment.0] {
        basepoints.extend_from_slice(&key.serialize());
    }
    w.record(14, &basepoints);
    w.record(16, &s.counterparty_funding_pubkey.serialize());
    w.u16(18, s.counterparty_selected_delay);
    if let Some(script) = &s.counterparty_shutdown_script {
        w.record(20, script.as_bytes());
    }
    w.record(22, &s.channel_type_features);
    w.into_bytes()
}

pub(super) fn pubkey(r: &Record<'_>, bytes: &[u8]) -> Result<PublicKey, TlvError> {
    PublicKey::from_slice(bytes).map_err(|_| r.bad_value("a valid public key"))
}

pub(super) fn decode_setup(rec: &Record<'_>) -> Result<ChannelSetup, TlvError> {
    let mut r = rec.nested();
    let is_outbound = r.required(0)?.bool()?;
    let channel_value = Sat(r.required(2)?.u64()?);
    let push_value = Msat(r.required(4)?.u64()?);
    let outpoint = r.required(6)?;
    let (txid, vout) = outpoint.fixed::<{ 32 + 4 }>()?.split_at(32);
    let funding_outpoint = OutPoint {
        txid: Txid::from_slice(txid).map_err(|_| outpoint.bad_value("a txid"))?,
        vout: u32::from_be_bytes(vout.try_into().map_err(|_| outpoint.bad_value("a vout"))?),
    };
    let holder_selected_delay = r.required(8)?.u16()?;
    let holder_shutdown_script = r.optional(10)?.map(|s| ScriptBuf::from_bytes(s.value.to_vec()));
    let holder_shutdown_wallet_index = r.optional(12)?.map(|i| i.u32()).transpose()?;
    let b = r.required(14)?;
    let all = b.fixed::<{ 4 * 33 }>()?;
    let key = |i: usize| pubkey(&b, all.get(i * 33..(i + 1) * 33).unwrap_or_default());
    let counterparty_basepoints = Basepoints {
        revocation: RevocationBasepoint(key(0)?),
        payment: PaymentBasepoint(key(1)?),
        htlc: HtlcBasepoint(key(2)?),
        delayed_payment: DelayedPaymentBasepoint(key(3)?),
    };
    let f = r.required(16)?;
    let counterparty_funding_pubkey = FundingPubkey(pubkey(&f, f.fixed::<33>()?)?);
    let counterparty_selected_delay = r.required(18)?.u16()?;
    let counterparty_shutdown_script =
        r.optional(20)?.map(|s| ScriptBuf::from_bytes(s.value.to_vec()));
    let channel_type_features = r.required(22)?.value.to_vec();
    r.finish()?;
    Ok(ChannelSetup {
        is_outbound,
        channel_value,
        push_value,
        funding_outpoint,
        holder_selected_delay,
        holder_shutdown_script,
        holder_shutdown_wallet_index,
        counterparty_basepoints,
        counterparty_funding_pubkey,
        counterparty_selected_delay,
        counterparty_shutdown_script,
        channel_type_features,
    })
}

fn encode_holder(h: &HolderSide) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.u64(0, h.next_number);
    w.u64(2, h.revoked_below);
    if let Some(c) = &h.current {
        w.record(4, &encode_holder_commitment(c));
    }
    if let Some(n) = h.broadcast_signed {
        w.u64(6, n);
    }
    w.into_bytes()
}

fn decode_holder(rec: &Record<'_>) -> Result<HolderSide, TlvError> {
    let mut r = rec.nested();
    let next_number = r.required(0)?.u64()?;
    let revoked_below = r.required(2)?.u64()?;
    let current = r.optional(4)?.map(|c| decode_holder_commitment(&c)).transpose()?;
    let broadcast_signed = r.optional(6)?.map(|n| n.u64()).transpose()?;
    r.finish()?;
    Ok(HolderSide { next_number, revoked_below, current, broadcast_signed })
}

fn encode_counterparty(c: &CounterpartySide) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.u64(0, c.next_number);
    w.u64(2, c.revoked_below);
    if let Some(k) = &c.current {
        w.record(4, &encode_counterparty_commitment(k));
    }
    if let Some(k) = &c.previous {
        w.record(6, &encode_counterparty_commitment(k));
    }
    let mut secrets = Vec::with_capacity(49 * SECRET_ENTRY_LEN);
    for (slot, index, secret) in c.secrets.entries() {
        secrets.push(slot);
        secrets.extend_from_slice(&index.to_be_bytes());
        secrets.extend_from_slice(secret);
    }
    w.record(8, &secrets);
    w.into_bytes()
}

fn decode_counterparty(rec: &Record<'_>) -> Result<CounterpartySide, DecodeError> {
    let mut r = rec.nested();
    let next_number = r.required(0)?.u64()?;
    let revoked_below = r.required(2)?.u64()?;
    let current = r.optional(4)?.map(|c| decode_counterparty_commitment(&c)).transpose()?;
    let previous = r.optional(6)?.map(|c| decode_counterparty_commitment(&c)).transpose()?;
    let s = r.required(8)?;
    let entries = s.chunks::<SECRET_ENTRY_LEN>()?.map(|e| {
        let [slot, i0, i1, i2, i3, i4, i5, i6, i7, secret @ ..] = e;
        (*slot, u64::from_be_bytes([*i0, *i1, *i2, *i3, *i4, *i5, *i6, *i7]), secret)
    });
    let secrets = SecretStore::from_entries(entries)
        .map_err(|error| DecodeError::Secrets { offset: s.offset, error })?;
    r.finish()?;
    Ok(CounterpartySide { next_number, revoked_below, current, previous, secrets })
}

fn encode_holder_commitment(c: &SignedHolderCommitment) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.record(0, &encode_content(&c.content));
    w.record(2, &c.counterparty_sig);
    w.record(4, &c.htlc_sigs.concat());
    w.into_bytes()
}

fn decode_holder_commitment(rec: &Record<'_>) -> Result<SignedHolderCommitment, TlvError> {
    let mut r = rec.nested();
    let content = decode_content(&r.required(0)?)?;
    let counterparty_sig = *r.required(2)?.fixed::<64>()?;
    let htlc_sigs = r.required(4)?.chunks::<64>()?.copied().collect();
    r.finish()?;
    Ok(SignedHolderCommitment { content, counterparty_sig, htlc_sigs })
}

fn encode_counterparty_commitment(c: &SignedCounterpartyCommitment) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.record(0, &encode_content(&c.content));
    w.record(2, &c.point.serialize());
    w.into_bytes()
}

fn decode_counterparty_commitment(
    rec: &Record<'_>,
) -> Result<SignedCounterpartyCommitment, TlvError> {
    let mut r = rec.nested();
    let content = decode_content(&r.required(0)?)?;
    let p = r.required(2)?;
    let point = PerCommitmentPoint(pubkey(&p, p.fixed::<33>()?)?);
    r.finish()?;
    Ok(SignedCounterpartyCommitment { content, point })
}

fn encode_content(c: &CommitmentContent) -> Vec<u8> {
    encode_content_with(c, |htlcs| {
        let mut list = Vec::new();
        for h in htlcs {
            let item = encode_htlc(h);
            crate::tlv::write_bigsize(&mut list, item.len() as u64);
            list.extend_from_slice(&item);
        }
        list
    })
}

/// A commitment content's stream (types 0 to 12), its HTLC list (type 6) written by
/// `encode_htlcs`: each layout has its own HTLC encoding.
pub(super) fn encode_content_with(
    c: &CommitmentContent,
    encode_htlcs: impl FnOnce(&[HtlcInfo]) -> Vec<u8>,
) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.u64(0, c.number.get());
    w.record(2, &c.txid.to_byte_array());
    w.u32(4, c.feerate.0);
    w.record(6, &encode_htlcs(&c.htlcs));
    let vouts: Vec<u8> = c.htlc_vouts.iter().flat_map(|v| v.to_be_bytes()).collect();
    w.record(8, &vouts);
    w.u64(10, c.to_holder.0);
    w.u64(12, c.to_counterparty.0);
    w.into_bytes()
}

fn decode_content(rec: &Record<'_>) -> Result<CommitmentContent, TlvError> {
    decode_content_with(rec, |list| {
        let mut items = list.cursor();
        let mut htlcs = Vec::new();
        while !items.is_empty() {
            let (item, offset) = items.sized()?;
            htlcs.push(decode_htlc(TlvReader::new(item, offset))?);
        }
        Ok(htlcs)
    })
}

/// Reads what [`encode_content_with`] writes, the HTLC list with `decode_htlcs`.
pub(super) fn decode_content_with(
    rec: &Record<'_>,
    decode_htlcs: impl FnOnce(&Record<'_>) -> Result<Vec<HtlcInfo>, TlvError>,
) -> Result<CommitmentContent, TlvError> {
    let mut r = rec.nested();
    let n = r.required(0)?;
    let number = CommitmentNumber::new(n.u64()?).map_err(|_| n.bad_value("a number below 2^48"))?;
    let txid = Txid::from_byte_array(*r.required(2)?.fixed::<32>()?);
    let feerate = FeeratePerKw(r.required(4)?.u32()?);
    let htlcs = decode_htlcs(&r.required(6)?)?;
    let htlc_vouts = r.required(8)?.chunks::<4>()?.map(|v| u32::from_be_bytes(*v)).collect();
    let to_holder = Sat(r.required(10)?.u64()?);
    let to_counterparty = Sat(r.required(12)?.u64()?);
    r.finish()?;
    Ok(CommitmentContent { number, txid, feerate, htlcs, htlc_vouts, to_holder, to_counterparty })
}

fn encode_htlc(h: &HtlcInfo) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.record(
        0,
        &[match h.offered_by {
            HtlcSide::Holder => 0,
            HtlcSide::Counterparty => 1,
        }],
    );
    w.u64(2, h.amount.0);
    w.record(4, &h.payment_hash);
    w.u32(6, h.cltv_expiry);
    w.into_bytes()
}

fn decode_htlc(mut r: TlvReader<'_>) -> Result<HtlcInfo, TlvError> {
    let side = r.required(0)?;
    let offered_by = match side.fixed::<1>()? {
        [0] => HtlcSide::Holder,
        [1] => HtlcSide::Counterparty,
        _ => return Err(side.bad_value("0 (holder) or 1 (counterparty)")),
    };
    let amount = Msat(r.required(2)?.u64()?);
    let payment_hash = *r.required(4)?.fixed::<32>()?;
    let cltv_expiry = r.required(6)?.u32()?;
    r.finish()?;
    Ok(HtlcInfo { offered_by, amount, payment_hash, cltv_expiry })
}
