//! Gossip rules (`gossip-structure`, `message-oracle`): the bytes Warden signs as a
//! `channel_announcement`, `channel_update` or `node_announcement` must parse strictly as that
//! BOLT-07 message, of the channel and node they claim.
//!
//! Core Lightning's hsmd checks only the length and the type, then signs SHA256d of the bytes
//! after the signatures — with the **funding key** for a `channel_announcement`. SHA256d over
//! caller-chosen bytes is exactly how a BIP-0143 sighash is made, so hsmd is a funding-key
//! oracle: a "channel announcement" whose tail is the BIP-0143 preimage of a transaction
//! spending the funding output gets a valid signature on that spend.
//!
//! # Why a parsed message cannot be a transaction sighash (`message-oracle`)
//!
//! - `channel_announcement`: the signed bytes must be exactly `len ‖ features ‖ chain_hash ‖
//!   short_channel_id ‖ node_id_1 ‖ node_id_2 ‖ bitcoin_key_1 ‖ bitcoin_key_2`, nothing after.
//!   Our funding key may appear in them **only** as our `bitcoin_key`, which starts exactly 66
//!   or 33 bytes before the end (checked: any other occurrence is refused). The funding key
//!   locks only P2WSH outputs (the 2-of-2 funding output and, with anchors, our anchor), so a
//!   sighash it could usefully sign is a BIP-0143 digest whose script code contains the key;
//!   in a BIP-0143 preimage the script code is followed by the amount, `nSequence`,
//!   `hashOutputs`, `nLockTime` and `nHashType` (52 bytes) and each script puts at least one
//!   opcode after the key, so a key in the script code starts at least 33 + 1 + 52 = 86 bytes
//!   before the end. 86 is neither 66 nor 33: the bytes cannot be such a preimage. The node
//!   signature over the same digest is covered by the same argument (and the node key locks no
//!   coins).
//! - `channel_update`: exactly 72 signed bytes. Every sighash over an output locked by a key
//!   commits to a script code holding that key or its hash: a BIP-0143 preimage is at least
//!   104 + 1 + 52 = 157 bytes, a legacy P2PKH preimage at least 64 + 25 = 89 bytes; 72 is
//!   below both.
//! - `node_announcement`: signed only with the node key, which no output of this node (nor of
//!   Core Lightning) is locked with; the message must name our node id and end in a
//!   well-formed TLV stream.
//!

use alloc::format;
use alloc::string::String;

use secp256k1::PublicKey;

use super::{PolicyError, Rule};
use crate::sign::{CHANNEL_ANNOUNCEMENT, CHANNEL_UPDATE, NODE_ANNOUNCEMENT};

/// The length of the type and the four signatures of a `channel_announcement`.
pub const CA_SIGNED_FROM: usize = 2 + 4 * 64;
/// The length of the type and the signature of a `channel_update` or `node_announcement`.
pub const ONE_SIG_SIGNED_FROM: usize = 2 + 64;
/// The signed part of a `channel_update`: chain_hash, short_channel_id, timestamp,
/// message_flags, channel_flags, cltv_expiry_delta, htlc_minimum_msat, fee_base_msat,
/// fee_proportional_millionths, htlc_maximum_msat.
pub const CU_SIGNED_LEN: usize = 32 + 8 + 4 + 1 + 1 + 2 + 8 + 4 + 4 + 8;

fn structure(detail: impl Into<String>) -> PolicyError {
    PolicyError::new(Rule::GossipStructure, detail)
}

/// A cursor over a gossip message with checked reads; every failure is `gossip-structure`.
struct Cursor<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PolicyError> {
        if self.bytes.len() < n {
            return Err(structure(format!(
                "{} ends early: {n} bytes wanted, {} left",
                self.what,
                self.bytes.len()
            )));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PolicyError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, PolicyError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn point(&mut self, field: &str) -> Result<[u8; 33], PolicyError> {
        let bytes: [u8; 33] = self.array()?;
        PublicKey::from_slice(&bytes)
            .map_err(|_| structure(format!("{} {field} is not a valid public key", self.what)))?;
        Ok(bytes)
    }

    /// A BOLT-01 `bigsize`, minimally encoded.
    fn bigsize(&mut self) -> Result<u64, PolicyError> {
        let [first] = self.array::<1>()?;
        let (value, min) = match first {
            0xfd => (u64::from(u16::from_be_bytes(self.array()?)), 0xfd),
            0xfe => (u64::from(u32::from_be_bytes(self.array()?)), 0x1_0000),
            0xff => (u64::from_be_bytes(self.array()?), 0x1_0000_0000),
            b => (u64::from(b), 0),
        };
        if value < min {
            return Err(structure(format!("{} has a non-minimal bigsize", self.what)));
        }
        Ok(value)
    }

    fn end(&self) -> Result<(), PolicyError> {
        if !self.bytes.is_empty() {
            return Err(structure(format!(
                "{} has {} trailing bytes",
                self.what,
                self.bytes.len()
            )));
        }
        Ok(())
    }
}

/// Checks the 2-byte type and that the message is long enough to hold its signatures.
fn check_type(
    msg: &[u8],
    expected: u16,
    signed_from: usize,
    what: &str,
) -> Result<(), PolicyError> {
    let found = msg.first_chunk::<2>().map(|t| u16::from_be_bytes(*t));
    if found != Some(expected) {
        return Err(structure(format!("{what} has type {found:?}, expected {expected}")));
    }
    if msg.len() < signed_from {
        return Err(structure(format!("{what} of {} bytes is too short", msg.len())));
    }
    Ok(())
}

/// The fields of a `channel_announcement` the checks need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelAnnouncement {
    /// Its short channel id.
    pub short_channel_id: u64,
    /// `node_id_1`, `node_id_2` (ascending).
    pub node_ids: [[u8; 33]; 2],
    /// `bitcoin_key_1`, `bitcoin_key_2`.
    pub bitcoin_keys: [[u8; 33]; 2],
}

/// Parses a BOLT-07 `channel_announcement` (type first) with nothing after its last field.
pub fn parse_channel_announcement(ca: &[u8]) -> Result<ChannelAnnouncement, PolicyError> {
    check_type(ca, CHANNEL_ANNOUNCEMENT, CA_SIGNED_FROM, "channel_announcement")?;
    let mut c = Cursor {
        bytes: ca.get(CA_SIGNED_FROM..).unwrap_or_default(),
        what: "channel_announcement",
    };
    let flen = c.u16()?;
    c.take(usize::from(flen))?;
    c.take(32)?; // chain_hash
    let short_channel_id = u64::from_be_bytes(c.array()?);
    let node_ids = [c.point("node_id_1")?, c.point("node_id_2")?];
    let bitcoin_keys = [c.point("bitcoin_key_1")?, c.point("bitcoin_key_2")?];
    c.end()?;
    // BOLT-07: node_id_1 is the lesser of the two (and they differ).
    if node_ids[0] >= node_ids[1] {
        return Err(structure("channel_announcement node ids are not in ascending order"));
    }
    Ok(ChannelAnnouncement { short_channel_id, node_ids, bitcoin_keys })
}

/// What Warden knows of the channel a `channel_announcement` must announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnouncedChannel {
    /// Our node id.
    pub our_node_id: [u8; 33],
    /// The channel's peer.
    pub peer_node_id: [u8; 33],
    /// Our funding key of the channel.
    pub our_funding_key: [u8; 33],
    /// The peer's funding key of the channel.
    pub peer_funding_key: [u8; 33],
    /// The funding output's index (the low 2 bytes of the short channel id).
    pub funding_vout: u32,
}

/// `gossip-structure` for a `channel_announcement` Warden is asked to sign with a channel's
/// funding key: it parses strictly, names our node and the channel's peer, carries our and the
/// peer's funding keys on the right sides and the funding output's index, and our funding key
/// appears nowhere else in the signed bytes (see the module documentation).
pub fn check_channel_announcement(
    ca: &[u8],
    channel: &AnnouncedChannel,
) -> Result<(), PolicyError> {
    let ann = parse_channel_announcement(ca)?;
    let side = ann
        .node_ids
        .iter()
        .position(|id| *id == channel.our_node_id)
        .ok_or_else(|| structure("channel_announcement does not name our node id"))?;
    let other = 1 - side;
    if ann.node_ids.get(other) != Some(&channel.peer_node_id) {
        return Err(structure("channel_announcement names a node other than the channel's peer"));
    }
    if ann.bitcoin_keys.get(side) != Some(&channel.our_funding_key) {
        return Err(structure(
            "channel_announcement bitcoin key on our side is not our funding key",
        ));
    }
    if ann.bitcoin_keys.get(other) != Some(&channel.peer_funding_key) {
        return Err(structure(
            "channel_announcement bitcoin key on the peer's side is not the peer's funding key",
        ));
    }
    // BOLT-07: the low 2 bytes of the short channel id are the funding output index.
    let vout = ann.short_channel_id & 0xffff;
    if vout != u64::from(channel.funding_vout) {
        return Err(structure(format!(
            "channel_announcement short channel id names output {vout}, the channel funds output {}",
            channel.funding_vout
        )));
    }
    let signed = ca.get(CA_SIGNED_FROM..).unwrap_or_default();
    if occurrences(signed, &channel.our_funding_key) != 1 {
        return Err(structure("our funding key appears outside its bitcoin_key field"));
    }
    Ok(())
}

/// `gossip-structure` for a `channel_update`: exactly BOLT-07's fields after the signature and,
/// when `we_are_first` is known (a channel's own client asks), the direction bit ours (0 when
/// our node id is the lesser).
pub fn check_channel_update(cu: &[u8], we_are_first: Option<bool>) -> Result<(), PolicyError> {
    check_type(cu, CHANNEL_UPDATE, ONE_SIG_SIGNED_FROM, "channel_update")?;
    let signed = cu.get(ONE_SIG_SIGNED_FROM..).unwrap_or_default();
    if signed.len() != CU_SIGNED_LEN {
        return Err(structure(format!(
            "channel_update carries {} bytes after its signature, BOLT-07 has {CU_SIGNED_LEN}",
            signed.len()
        )));
    }
    let channel_flags = signed.get(32 + 8 + 4 + 1).copied().unwrap_or_default();
    if let Some(first) = we_are_first {
        if (channel_flags & 1 == 0) != first {
            return Err(structure("channel_update direction bit is the peer's, not ours"));
        }
    }
    Ok(())
}

/// `gossip-structure` for a `node_announcement`: our node id, every field parsing, followed
/// only by a well-formed TLV stream (strictly ascending types, minimal bigsizes).
pub fn check_node_announcement(ann: &[u8], our_node_id: &[u8; 33]) -> Result<(), PolicyError> {
    check_type(ann, NODE_ANNOUNCEMENT, ONE_SIG_SIGNED_FROM, "node_announcement")?;
    let what = "node_announcement";
    let mut c = Cursor { bytes: ann.get(ONE_SIG_SIGNED_FROM..).unwrap_or_default(), what };
    let flen = c.u16()?;
    c.take(usize::from(flen))?;
    c.take(4)?; // timestamp
    let node_id = c.point("node_id")?;
    if node_id != *our_node_id {
        return Err(structure("node_announcement names a node id that is not ours"));
    }
    c.take(3 + 32)?; // rgb_color, alias
    let addrlen = c.u16()?;
    c.take(usize::from(addrlen))?;
    let mut last_type = None;
    while !c.bytes.is_empty() {
        let t = c.bigsize()?;
        if last_type.is_some_and(|last| t <= last) {
            return Err(structure("node_announcement TLV types are not strictly ascending"));
        }
        last_type = Some(t);
        let len = c.bigsize()?;
        let len = usize::try_from(len)
            .map_err(|_| structure("node_announcement TLV length overflows"))?;
        c.take(len)?;
    }
    Ok(())
}

/// How often `needle` occurs in `haystack`.
fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn bigsize_is_minimal() {
        let read = |b: &[u8]| Cursor { bytes: b, what: "t" }.bigsize();
        assert_eq!(read(&[0xfc]).unwrap(), 0xfc);
        assert_eq!(read(&[0xfd, 0x00, 0xfd]).unwrap(), 0xfd);
        assert!(read(&[0xfd, 0x00, 0xfc]).is_err());
        assert!(read(&[0xfe, 0x00, 0x00, 0xff, 0xff]).is_err());
        assert_eq!(read(&[0xfe, 0x00, 0x01, 0x00, 0x00]).unwrap(), 0x1_0000);
        assert!(read(&[0xfd, 0x01]).is_err());
    }

    #[test]
    fn occurrences_counts_overlaps() {
        assert_eq!(occurrences(b"aaaa", b"aa"), 3);
        assert_eq!(occurrences(b"abc", b"abcd"), 0);
    }
}
