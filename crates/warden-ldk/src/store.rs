//! Persistence: Warden's records of an LDK node, sealed in `warden-store` through warden-hsmd's
//! durable channel store ([`warden_hsmd::durable::SealedRedbChannelStore`]).
//!
//! Nothing here seals, signs or verifies by itself: every record goes through warden-hsmd's
//! store, which seals it with warden-core's `seal_record` (XChaCha20-Poly1305, BIP-340
//! signature, obfuscated key name), keeps the signed head over all records up to date in the
//! same batch (incrementally: the elements removed and added), commits the batch to its redb
//! file (fsync'd before `commit` returns) and then to every replica (any `warden_store::Store`,
//! in practice PostgreSQL), and at open checks every record against the signed head
//! (`node-state-stale` when anything was dropped, changed, replaced by an older version, or the
//! head does not verify). The store id is `"warden-hsmd/" ‖ node id`.
//!
//! # What is stored
//!
//! - each channel's warden-core `ChannelState`, as warden-hsmd stores it, under the slot
//!   [`channel_slot`] derives from LDK's `channel_keys_id` (a record per channel: a state
//!   change writes that channel's record and the head);
//! - the node record's opaque part (warden-hsmd's "payments" field) holds this crate's
//!   [`NodeBlob`]: the payment ledger's persisted part (`PaymentLedger::encode`), and per
//!   channel what LDK tells the signer that warden-core's state does not hold (the last
//!   `ChannelTransactionParameters` in LDK's own serialization, whether the push was fixed, a
//!   holder commitment waiting for the parameters, our funding key). It is rewritten when one
//!   of those changes: when a channel's parameters arrive or change, and when the ledger's
//!   persisted part changes.
//!
//! # Order and crashes
//!
//! Every call that changes a channel writes the channel record, then (if it changed) the node
//! record, and returns its result to LDK only after both are durable. A crash between the two
//! leaves a channel whose parameters are missing: they are taken again from the next call that
//! carries them (every signing call does), and a holder commitment that arrives first waits
//! for them, as an inbound channel's first one does. The ledger then misses at most that
//! commitment's velocity charge (as in warden-hsmd).
//!
//! # Rollback
//!
//! A record replaced by an older copy of itself, a record dropped, added or changed, is caught
//! at open by the signed head. A rollback of the whole redb file to an older, self-consistent
//! copy verifies locally: a replica is the anchor that catches it (`open` with replicas:
//! warden-hsmd's reconciliation adopts the replica's newer state, or refuses to start when the
//! two diverged).

use std::collections::BTreeMap;
use std::fmt;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::PublicKey;
use lightning::ln::chan_utils::{ChannelTransactionParameters, HolderCommitmentTransaction};
use lightning::types::payment::PaymentPreimage;
use lightning::util::ser::{Readable, ReadableArgs, Writeable};
use warden_core::channel::ChannelSlot;
use warden_core::keys::NodeId;
use warden_core::tlv::{write_bigsize, Cursor, TlvError, TlvReader, TlvWriter};
use warden_core::units::Dbid;

use crate::channel::ChannelRecord;
use crate::keys::KeyScheme;

/// The format byte of [`NodeBlob`].
pub const NODE_BLOB_FORMAT: u8 = 0x01;

/// The slot (warden-core's channel name) of the channel LDK names `channel_keys_id`.
///
/// LDK never tells the signer the peer, so the slot's peer is our own node id. Its dbid:
/// - [`KeyScheme::Ldk`]: the first 8 bytes (big-endian) of
///   SHA-256(`"warden-ldk/dbid"` ‖ `channel_keys_id`) — two channels of one node share a slot
///   with probability about n²/2^65;
/// - [`KeyScheme::CoreLightning`]: the dbid the id carries (`keys::cln_dbid_of`), the one its
///   keys were derived with.
pub fn channel_slot(
    scheme: KeyScheme,
    node_id: PublicKey,
    channel_keys_id: &[u8; 32],
) -> ChannelSlot {
    let dbid = match scheme {
        KeyScheme::CoreLightning => crate::keys::cln_dbid_of(channel_keys_id),
        KeyScheme::Ldk { .. } => {
            let mut engine = sha256::Hash::engine();
            engine.input(b"warden-ldk/dbid");
            engine.input(channel_keys_id);
            let hash = sha256::Hash::from_engine(engine).to_byte_array();
            let mut head = [0u8; 8];
            head.copy_from_slice(hash.get(..8).unwrap_or(&[0; 8]));
            u64::from_be_bytes(head)
        }
    };
    ChannelSlot { peer: NodeId(node_id), dbid: Dbid(dbid) }
}

/// What LDK told the signer about one channel beyond warden-core's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelExtras {
    /// Our funding key before any splice.
    pub funding_pubkey: PublicKey,
    /// Whether the push was fixed.
    pub push_known: bool,
    /// The last channel parameters seen.
    pub params: Option<ChannelTransactionParameters>,
    /// A holder commitment waiting for the parameters.
    pub pending_holder: Option<(HolderCommitmentTransaction, Vec<PaymentPreimage>)>,
}

impl ChannelExtras {
    /// The extras of a record.
    pub fn of(record: &ChannelRecord) -> ChannelExtras {
        ChannelExtras {
            funding_pubkey: record.funding_pubkey,
            push_known: record.push_known,
            params: record.params.clone(),
            pending_holder: record.pending_holder.clone(),
        }
    }

    /// Whether a record's extras differ from these.
    pub fn differs(&self, record: &ChannelRecord) -> bool {
        self.funding_pubkey != record.funding_pubkey
            || self.push_known != record.push_known
            || self.params != record.params
            || self.pending_holder != record.pending_holder
    }
}

/// The node record's opaque part, as this crate writes it: format byte [`NODE_BLOB_FORMAT`],
/// then a TLV stream (warden-core's `tlv`):
///
/// | type | field | value |
/// |---|---|---|
/// | 1 (opt) | ledger | `PaymentLedger::encode` |
/// | 2 | channels | n × (BigSize length ‖ channel stream) |
///
/// channel stream: 0 `channel_keys_id` (32 bytes), 2 funding pubkey (33 bytes), 4 push known
/// (flag), 5 (opt) parameters (LDK's serialization of `ChannelTransactionParameters`), 7 (opt)
/// the waiting holder commitment (LDK's serialization of `HolderCommitmentTransaction`),
/// 9 (opt) its preimages (n × 32 bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeBlob {
    /// The payment ledger's persisted part.
    pub ledger: Option<Vec<u8>>,
    /// Per channel (by `channel_keys_id`), what warden-core's state does not hold.
    pub channels: BTreeMap<[u8; 32], ChannelExtras>,
}

/// A node record that does not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobError(pub String);

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "warden-ldk node record: {}", self.0)
    }
}

impl std::error::Error for BlobError {}

fn tlv(e: TlvError) -> BlobError {
    BlobError(e.to_string())
}

impl NodeBlob {
    /// The encoding described on [`NodeBlob`].
    pub fn encode(&self) -> Vec<u8> {
        let mut w = TlvWriter::new();
        if let Some(ledger) = &self.ledger {
            w.record(1, ledger);
        }
        let mut list = Vec::new();
        for (id, extras) in &self.channels {
            let mut c = TlvWriter::new();
            c.record(0, id);
            c.record(2, &extras.funding_pubkey.serialize());
            c.bool(4, extras.push_known);
            if let Some(params) = &extras.params {
                c.record(5, &params.encode());
            }
            if let Some((tx, preimages)) = &extras.pending_holder {
                c.record(7, &tx.encode());
                let bytes: Vec<u8> = preimages.iter().flat_map(|p| p.0).collect();
                c.record(9, &bytes);
            }
            let stream = c.into_bytes();
            write_bigsize(&mut list, stream.len() as u64);
            list.extend_from_slice(&stream);
        }
        w.record(2, &list);
        let mut out = vec![NODE_BLOB_FORMAT];
        out.extend_from_slice(&w.into_bytes());
        out
    }

    /// Reads what [`NodeBlob::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<NodeBlob, BlobError> {
        let (&format, body) = bytes.split_first().ok_or_else(|| BlobError("empty".into()))?;
        if format != NODE_BLOB_FORMAT {
            return Err(BlobError(format!("unknown format {format:#04x}")));
        }
        let mut r = TlvReader::new(body, 1);
        let ledger = r.optional(1).map_err(tlv)?.map(|v| v.value.to_vec());
        let list = r.required(2).map_err(tlv)?;
        let mut cursor: Cursor<'_> = list.cursor();
        let mut channels = BTreeMap::new();
        while !cursor.is_empty() {
            let (stream, offset) = cursor.sized().map_err(tlv)?;
            let mut c = TlvReader::new(stream, offset);
            let id = c.required(0).and_then(|v| v.fixed::<32>().copied()).map_err(tlv)?;
            let funding = c.required(2).and_then(|v| v.fixed::<33>().copied()).map_err(tlv)?;
            let funding_pubkey = PublicKey::from_slice(&funding)
                .map_err(|_| BlobError("a funding key is not a point".into()))?;
            let push_known = c.required(4).and_then(|v| v.bool()).map_err(tlv)?;
            let params = match c.optional(5).map_err(tlv)? {
                Some(v) => Some(
                    ChannelTransactionParameters::read(&mut &*v.value, None)
                        .map_err(|e| BlobError(format!("channel parameters: {e:?}")))?,
                ),
                None => None,
            };
            let pending_tx = match c.optional(7).map_err(tlv)? {
                Some(v) => Some(
                    <HolderCommitmentTransaction as Readable>::read(&mut &*v.value)
                        .map_err(|e| BlobError(format!("waiting commitment: {e:?}")))?,
                ),
                None => None,
            };
            let preimages = match c.optional(9).map_err(tlv)? {
                Some(v) => v.chunks::<32>().map_err(tlv)?.map(|p| PaymentPreimage(*p)).collect(),
                None => Vec::new(),
            };
            c.finish().map_err(tlv)?;
            let extras = ChannelExtras {
                funding_pubkey,
                push_known,
                params,
                pending_holder: pending_tx.map(|tx| (tx, preimages)),
            };
            if channels.insert(id, extras).is_some() {
                return Err(BlobError("a channel is listed twice".into()));
            }
        }
        r.finish().map_err(tlv)?;
        Ok(NodeBlob { ledger, channels })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use bitcoin::secp256k1::{Secp256k1, SecretKey};

    #[test]
    fn node_blob_round_trips_and_refuses_garbage() {
        let secp = Secp256k1::new();
        let key = PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&[3; 32]).unwrap());
        let mut blob = NodeBlob { ledger: Some(vec![1, 2, 3]), channels: BTreeMap::new() };
        blob.channels.insert(
            [7; 32],
            ChannelExtras {
                funding_pubkey: key,
                push_known: true,
                params: None,
                pending_holder: None,
            },
        );
        blob.channels.insert(
            [9; 32],
            ChannelExtras {
                funding_pubkey: key,
                push_known: false,
                params: None,
                pending_holder: None,
            },
        );
        let bytes = blob.encode();
        assert_eq!(NodeBlob::decode(&bytes).unwrap(), blob);
        assert_eq!(NodeBlob::decode(&NodeBlob::default().encode()).unwrap(), NodeBlob::default());
        let mut bad = bytes.clone();
        bad[0] = 2;
        assert!(NodeBlob::decode(&bad).is_err());
        assert!(NodeBlob::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(NodeBlob::decode(&[]).is_err());
    }

    #[test]
    fn ldk_slots_differ_per_id_and_name_our_node() {
        let secp = Secp256k1::new();
        let node = PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&[3; 32]).unwrap());
        let scheme = KeyScheme::Ldk { v2_remote_key: true };
        let a = channel_slot(scheme, node, &[1; 32]);
        let b = channel_slot(scheme, node, &[2; 32]);
        assert_ne!(a.dbid, b.dbid);
        assert_eq!(a, channel_slot(scheme, node, &[1; 32]));
        assert_eq!(a.peer, NodeId(node));
    }
}
