//! Durable, sealed channel state: the [`ChannelStore`] that `Signer::init` uses by default.
//!
//! Records live in `warden-store`'s redb file under `<lightning dir>/warden/` (directory mode
//! 0700, file mode 0600; the store enforces both). Nothing is written in clear: every value is
//! sealed with `warden-core`'s [`seal_record`] (XChaCha20-Poly1305, BIP-340 signature) under an
//! obfuscated key name (DESIGN.md §4).
//!
//! ## Layout (store id `"warden-hsmd/" ‖ 33-byte node id`, 45 bytes)
//!
//! | store key | version | value |
//! |---|---|---|
//! | obfuscated `channel/<peer hex>/<dbid>` | 1, 2, … per change | sealed main part of the channel (`warden_core::channel::parts`), or the whole state (`encode_channel`, version 1: written by older Wardens, still read) |
//! | obfuscated `channel/<peer hex>/<dbid>/<part id>` | 1, 2, … per change of that part | sealed part: setup (1), our commitment (2), the peer's commitments (3, 4), the peer's secrets (8–14) |
//! | obfuscated `node` | 1, 2, … per change | sealed node record (below) |
//! | `warden-head` (clear, fixed) | = head seq | [`SignedHead`] bytes |
//! | `warden-audit/` ‖ seq (clear, ordered) | 1 | sealed audit entry (the last one in the digest) |
//! | obfuscated `audit-tip` | 1, 2, … | the layout before: a sealed tip in the digest (`audit.rs`); read, then deleted by the next batch with entries |
//!
//! A channel is split into parts so that an update writes only what it changed: the main
//! part (numbers, flags, which parts exist) and at most one other (bytes per update; see
//! `warden_core::channel::parts` and `benches/store_update.rs`). `CachedChannel` keeps each
//! part's element and the SHA-256 of its plaintext; `persist` puts the parts whose plaintext
//! changed and deletes the parts gone. A channel still in the whole-state record is read as
//! it is and written as parts by its next update (the main part takes the record's name).
//!
//! The node record is format byte `0x01` then a TLV body: type 0 (required) the forgotten
//! dbid high-water mark (`u64`), type 2 (required) the directory of channel slots (33-byte
//! peer id ‖ 8-byte dbid, each), type 3 (optional) the payment ledger's persisted part
//! (`PaymentLedger::encode`: velocity buckets and approvals). Type 3 is odd: a reader that
//! does not know it starts without it (its velocity budget then starts empty). The record
//! changes only when a channel is created or forgotten, the high-water mark rises, or the
//! payment ledger's persisted part changes (its own batch, written after the channel record
//! and before the reply), so a channel state change writes exactly that channel's changed
//! parts and the head (DESIGN.md §3, invariant 4), plus the node record when it charged
//! velocity. The directory is what lets startup name (and so open) each channel's main part,
//! which names the others.
//!
//! ## Persist, then reply
//!
//! Every change is one [`Store::commit`] batch: the changed records and the new signed head,
//! each a put-if-version (or delete-if-version), fsync'd by redb before `commit` returns. The
//! in-memory cache of decoded states changes only after a successful commit; a failed commit
//! leaves it (and the store) as it was, and the caller sends no reply.
//!
//! ## Startup
//!
//! [`SealedRedbChannelStore::open`] lists the whole store, checks every envelope against its
//! store key and version, runs [`verify_store`] against the stored signed head, and opens and
//! decodes every record. Any disagreement is a [`NodeStateStaleError`]: the signer refuses to
//! start rather than sign on a state that does not verify. An empty store starts from a genesis
//! head. A rollback of the whole file to an older, self-consistent copy verifies locally: the
//! replicas ([`SealedRedbChannelStore::open_with_replicas`], `replica.rs`) are the anchor that
//! detects it.
//!
//! ## Core, replicas, audit
//!
//! The file handle, the replicas, the keys, the head and the audit trail's tail form the `Core`,
//! shared behind a mutex with the signer's [`crate::audit::AuditLog`] (the channel store's lock
//! is always taken first). Every batch goes through `Core::commit`: the changed records, the
//! audit entries waiting (and the entry of the request being handled, whose state change this
//! is), the head; the local file first, then each replica. The head's set digest covers the
//! trail's last entry (`audit.rs`). [`SealedRedbChannelStore::last_batch_bytes`] says what the
//! last batch wrote, by kind of record.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::OutPoint;
use warden_core::channel::encoding::{decode_channel, DecodeError};
use warden_core::channel::parts::{decode_parts, encode_parts, is_parts, part_ids, PART_MAIN};
use warden_core::channel::{ChannelSlot, ChannelState};
use warden_core::keys::NodeId as CoreNodeId;
use warden_core::rng::EntropySource;
use warden_core::seal::{
    open_record, seal_record, verify_store, Head, HeadDecodeError, HeadUpdateError, OpenError,
    RecordVersion, SealedRecord, SetElement, SignedHead, StoreId as SealStoreId, VerifyStoreError,
    WardenKeys,
};
use warden_core::tlv::{TlvError, TlvReader, TlvWriter};
use warden_core::units::Dbid;
use warden_store::redb::{OpenError as RedbOpenError, RedbDatabase, RedbStore};
use warden_store::{BackendError, Op, Store, StoreId, Version};
use warden_wire::NodeId;

use crate::channels::{ChannelStore, ChannelStoreError};

/// The directory under the lightning directory that holds the store file.
pub const STORE_DIR: &str = "warden";
/// The fixed store key of the signed head.
pub const HEAD_KEY: &[u8] = b"warden-head";
/// The record name of the node-level record.
pub const NODE_RECORD_NAME: &[u8] = b"node";
/// The format byte of the node record.
pub const NODE_RECORD_FORMAT: u8 = 0x01;
/// The store-key prefix of audit entries (in clear, so that they list in order; `audit.rs`).
pub const AUDIT_PREFIX: &[u8] = b"warden-audit/";
/// The record name of the audit trail's tip (sealed and covered by the head like the others).
pub const AUDIT_TIP_NAME: &[u8] = b"audit-tip";
const STORE_ID_PREFIX: &[u8] = b"warden-hsmd/";
const SLOT_LEN: usize = 33 + 8;
const NONCE_TAG: &[u8] = b"warden-hsmd/record-nonce/v1";

/// Wall-clock time for the signed head, read at the binary's edge (the core takes it as a
/// parameter and never reads a clock).
pub trait Clock: Send {
    /// Seconds since the Unix epoch.
    fn now_unix_secs(&self) -> u64;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_secs(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}

/// The record name of a channel (its main part): `channel/<peer hex>/<dbid>`.
pub fn channel_record_name(slot: &ChannelSlot) -> Vec<u8> {
    let peer: String = slot.peer.0.serialize().iter().map(|b| format!("{b:02x}")).collect();
    format!("channel/{peer}/{}", slot.dbid.0).into_bytes()
}

/// The record name of a part of a channel: the main part's name, or
/// `channel/<peer hex>/<dbid>/<part id>`.
pub fn channel_part_name(slot: &ChannelSlot, part: u8) -> Vec<u8> {
    let mut name = channel_record_name(slot);
    if part != PART_MAIN {
        name.extend_from_slice(format!("/{part}").as_bytes());
    }
    name
}

/// The store id of a node's records: `"warden-hsmd/" ‖ compressed node id` (45 bytes).
pub fn store_id_bytes(node_id: &NodeId) -> Vec<u8> {
    let mut id = STORE_ID_PREFIX.to_vec();
    id.extend_from_slice(node_id.as_bytes());
    id
}

/// The node's state in the store does not verify: the signer must not start on it.
#[derive(Debug)]
pub enum NodeStateStaleError {
    /// Records exist but no signed head covers them.
    NoHead {
        /// How many records were found.
        records: usize,
    },
    /// The head does not parse.
    BadHead(HeadDecodeError),
    /// The head's store version is not its seq.
    HeadVersion {
        /// The head's seq.
        seq: u64,
        /// The store version of the head key.
        version: u64,
    },
    /// A record's envelope disagrees with the store key or version it is stored under.
    Envelope {
        /// The store key, hex.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The records do not match the signed head.
    Verify(VerifyStoreError),
    /// Records exist but the node record is missing.
    MissingNodeRecord,
    /// The directory names a channel whose record is missing.
    MissingChannel {
        /// The record name.
        name: String,
    },
    /// A record covered by the head is named by no directory entry.
    Unaccounted {
        /// How many records the directory and node record explain.
        named: usize,
        /// How many records there are.
        found: usize,
    },
    /// A record does not open (wrong key, version or authentication tag).
    Open {
        /// The record name.
        name: String,
        /// Why.
        error: OpenError,
    },
    /// A record opens but its plaintext does not decode.
    Decode {
        /// The record name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A replica's records or head do not verify under this signer's keys (tampered, foreign
    /// or corrupt): neither side is trusted until the operator decides (`replica.rs`).
    ReplicaInvalid {
        /// The replica's name.
        replica: String,
        /// What does not verify.
        reason: String,
    },
    /// A replica and the local store verify but are not one history (same sequence number,
    /// other contents; or a record one side wrote differently): the operator decides
    /// ([`crate::replica::reconcile_adopt`] or [`crate::replica::force_local`]).
    ReplicaDiverged {
        /// The replica's name.
        replica: String,
        /// The local head's sequence number.
        local_seq: u64,
        /// The replica head's sequence number.
        replica_seq: u64,
        /// Where the histories differ.
        reason: String,
    },
}

impl fmt::Display for NodeStateStaleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeStateStaleError::NoHead { records } => {
                write!(f, "{records} records but no signed head")
            }
            NodeStateStaleError::BadHead(e) => write!(f, "signed head: {e}"),
            NodeStateStaleError::HeadVersion { seq, version } => {
                write!(f, "head seq {seq} stored at version {version}")
            }
            NodeStateStaleError::Envelope { key, reason } => write!(f, "record {key}: {reason}"),
            NodeStateStaleError::Verify(e) => write!(f, "{e}"),
            NodeStateStaleError::MissingNodeRecord => f.write_str("the node record is missing"),
            NodeStateStaleError::MissingChannel { name } => {
                write!(f, "the record of {name} is missing")
            }
            NodeStateStaleError::Unaccounted { named, found } => {
                write!(f, "{found} records, {named} named by the node record")
            }
            NodeStateStaleError::Open { name, error } => write!(f, "record {name}: {error}"),
            NodeStateStaleError::Decode { name, reason } => {
                write!(f, "record {name} does not decode: {reason}")
            }
            NodeStateStaleError::ReplicaInvalid { replica, reason } => {
                write!(f, "replica {replica} does not verify: {reason}")
            }
            NodeStateStaleError::ReplicaDiverged { replica, local_seq, replica_seq, reason } => {
                write!(
                    f,
                    "replica {replica} (seq {replica_seq}) and the local store (seq {local_seq}) \
                     have diverged: {reason}; an operator must choose one"
                )
            }
        }
    }
}

impl std::error::Error for NodeStateStaleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NodeStateStaleError::BadHead(e) => Some(e),
            NodeStateStaleError::Verify(e) => Some(e),
            NodeStateStaleError::Open { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Why the durable store could not be opened at startup.
#[derive(Debug)]
pub enum OpenStoreError {
    /// The store id is out of range (cannot happen for a 33-byte node id).
    StoreId(String),
    /// No entropy source for the record nonces.
    Entropy(std::io::Error),
    /// The database file could not be opened.
    Open(RedbOpenError),
    /// The database could not be read.
    Read(BackendError),
    /// The stored state does not verify (`node-state-stale`).
    Stale(NodeStateStaleError),
    /// A configured replica cannot be reached or written: without its acknowledgement no
    /// reply may leave, so the signer does not start.
    Replica {
        /// The replica's name.
        replica: String,
        /// What failed.
        error: BackendError,
    },
    /// A replica's configuration is unusable (for example a bad connection string).
    ReplicaConfig(String),
}

impl OpenStoreError {
    /// Whether this is the `node-state-stale` refusal (as opposed to an unreadable store).
    pub fn is_stale(&self) -> bool {
        matches!(self, OpenStoreError::Stale(_))
    }
}

impl fmt::Display for OpenStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenStoreError::StoreId(e) => write!(f, "node-state-unavailable: {e}"),
            OpenStoreError::Entropy(e) => write!(f, "node-state-unavailable: no entropy: {e}"),
            OpenStoreError::Open(e) => write!(f, "node-state-unavailable: {e}"),
            OpenStoreError::Read(e) => write!(f, "node-state-unavailable: {e}"),
            OpenStoreError::Stale(e) => write!(f, "node-state-stale: {e}"),
            OpenStoreError::Replica { replica, error } => {
                let detail = std::error::Error::source(error).map(|s| s.to_string());
                write!(
                    f,
                    "node-state-unavailable: replica {replica}: {error}: {}",
                    detail.unwrap_or_default()
                )
            }
            OpenStoreError::ReplicaConfig(e) => write!(f, "node-state-unavailable: {e}"),
        }
    }
}

impl std::error::Error for OpenStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenStoreError::StoreId(_) => None,
            OpenStoreError::Entropy(e) => Some(e),
            OpenStoreError::Open(e) => Some(e),
            OpenStoreError::Read(e) => Some(e),
            OpenStoreError::Stale(e) => Some(e),
            OpenStoreError::Replica { error, .. } => Some(error),
            OpenStoreError::ReplicaConfig(_) => None,
        }
    }
}

impl From<NodeStateStaleError> for OpenStoreError {
    fn from(e: NodeStateStaleError) -> Self {
        OpenStoreError::Stale(e)
    }
}

/// Record nonces: SHA-256 in counter mode over a random seed drawn at startup, the batch's
/// head seq and the record's index in the batch. The seq is unique per batch in a store that
/// is not rolled back, so nonces do not repeat even with a weak seed; a good seed keeps them
/// unique across rollbacks too.
struct BatchNonces<'a> {
    seed: &'a [u8; 32],
    seq: u64,
    index: u32,
}

impl EntropySource for BatchNonces<'_> {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for (block, chunk) in (0u32..).zip(dest.chunks_mut(32)) {
            let mut engine = sha256::Hash::engine();
            engine.input(NONCE_TAG);
            engine.input(self.seed);
            engine.input(&self.seq.to_be_bytes());
            engine.input(&self.index.to_be_bytes());
            engine.input(&block.to_be_bytes());
            let out = sha256::Hash::from_engine(engine).to_byte_array();
            chunk.copy_from_slice(out.get(..chunk.len()).unwrap_or(&out));
        }
        self.index = self.index.wrapping_add(1);
    }
}

pub(crate) struct CachedChannel {
    state: ChannelState,
    /// Each stored part of the channel (`warden_core::channel::parts`; a channel still in the
    /// whole-state layout has part 0 only): its element and the SHA-256 of its plaintext.
    parts: BTreeMap<u8, CachedPart>,
}

#[derive(Clone, Copy, Debug)]
struct CachedPart {
    element: SetElement,
    digest: [u8; 32],
}

fn digest(plaintext: &[u8]) -> [u8; 32] {
    sha256::Hash::hash(plaintext).to_byte_array()
}

/// The node record's content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct NodeRecord {
    forgotten_high_water: u64,
    channels: Vec<ChannelSlot>,
    /// The payment ledger's persisted part, opaque here.
    payments: Option<Vec<u8>>,
}

fn encode_node(node: &NodeRecord) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.u64(0, node.forgotten_high_water);
    let mut dir = Vec::with_capacity(node.channels.len() * SLOT_LEN);
    for slot in &node.channels {
        dir.extend_from_slice(&slot.peer.0.serialize());
        dir.extend_from_slice(&slot.dbid.0.to_be_bytes());
    }
    w.record(2, &dir);
    if let Some(payments) = &node.payments {
        w.record(3, payments);
    }
    let mut out = vec![NODE_RECORD_FORMAT];
    out.extend_from_slice(&w.into_bytes());
    out
}

fn decode_node(bytes: &[u8]) -> Result<NodeRecord, String> {
    let (&format, body) = bytes.split_first().ok_or("empty node record")?;
    if format != NODE_RECORD_FORMAT {
        return Err(format!("unknown node record format {format:#04x}"));
    }
    let tlv = |e: TlvError| e.to_string();
    let mut r = TlvReader::new(body, 1);
    let forgotten_high_water = r.required(0).and_then(|v| v.u64()).map_err(tlv)?;
    let dir = r.required(2).map_err(tlv)?;
    let mut channels = Vec::new();
    for chunk in dir.chunks::<SLOT_LEN>().map_err(tlv)? {
        let (peer, dbid) = chunk.split_at(33);
        let peer = CoreNodeId::from_slice(peer).ok_or("a directory peer id is not a point")?;
        let dbid = u64::from_be_bytes(dbid.try_into().map_err(|_| "bad dbid length")?);
        channels.push(ChannelSlot { peer, dbid: Dbid(dbid) });
    }
    let payments = r.optional(3).map_err(tlv)?.map(|v| v.value.to_vec());
    r.finish().map_err(tlv)?;
    Ok(NodeRecord { forgotten_high_water, channels, payments })
}

/// A change of one batch, by record name.
pub(crate) enum Change {
    Put { name: Vec<u8>, plaintext: Vec<u8> },
    Delete { name: Vec<u8> },
}

/// What one verified copy of the store holds (the local file, or a replica).
pub(crate) struct Snapshot {
    /// The signed head (a fresh genesis head for an empty store).
    pub(crate) head: SignedHead,
    /// Whether the store held nothing at all.
    pub(crate) empty: bool,
    channels: BTreeMap<ChannelSlot, CachedChannel>,
    node: NodeRecord,
    node_element: Option<SetElement>,
    /// The audit trail's tip (`audit.rs`), when the store has audit entries.
    pub(crate) audit_tip: Option<AuditTip>,
}

/// Whether `key` is the store key of an audit entry.
pub(crate) fn is_audit_key(key: &[u8]) -> bool {
    key.starts_with(AUDIT_PREFIX)
}

/// Checks every record of a store (the audit entries aside: `audit::verify` walks their chain)
/// against its signed head and opens them: the startup check of the local file, and of each
/// replica before it is trusted. `time` stamps the genesis head of an empty store.
pub(crate) fn load_snapshot(
    keys: &WardenKeys,
    store_id: &SealStoreId,
    all: Vec<warden_store::Record>,
    time: u64,
) -> Result<Snapshot, NodeStateStaleError> {
    let mut head_record = None;
    let mut records = Vec::with_capacity(all.len());
    // The audit entry with the highest number (the list is in key order).
    let mut last_entry = None;
    let mut entries = 0usize;
    for r in all {
        if r.key == HEAD_KEY {
            head_record = Some(r);
        } else if is_audit_key(&r.key) {
            entries += 1;
            last_entry = Some(r);
        } else {
            records.push(r);
        }
    }
    let Some(head_record) = head_record else {
        if !records.is_empty() || entries > 0 {
            return Err(NodeStateStaleError::NoHead { records: records.len() + entries });
        }
        return Ok(Snapshot {
            head: Head::genesis(*store_id, time).sign(keys),
            empty: true,
            channels: BTreeMap::new(),
            node: NodeRecord::default(),
            node_element: None,
            audit_tip: None,
        });
    };
    let head = SignedHead::from_bytes(&head_record.value).map_err(NodeStateStaleError::BadHead)?;
    if head.head.seq != head_record.version.get() {
        return Err(NodeStateStaleError::HeadVersion {
            seq: head.head.seq,
            version: head_record.version.get(),
        });
    }
    for r in &records {
        let envelope = SealedRecord::from_bytes(&r.value).map_err(|e| {
            NodeStateStaleError::Envelope { key: hex(&r.key), reason: e.to_string() }
        })?;
        if envelope.key().0.as_slice() != r.key.as_slice()
            || envelope.version().0 != r.version.get()
        {
            return Err(NodeStateStaleError::Envelope {
                key: hex(&r.key),
                reason: format!(
                    "sealed as {} {}, stored at version {}",
                    envelope.key(),
                    envelope.version(),
                    r.version
                ),
            });
        }
    }
    // The trail's last entry is covered by the head unless the store still has a tip record
    // (the layout before; `audit.rs`).
    let tip_key = keys.obfuscate_key(store_id, AUDIT_TIP_NAME);
    let has_tip_record = records.iter().any(|r| r.key == tip_key.0);
    let last_entry = match last_entry {
        Some(r) if !has_tip_record => {
            let seq = crate::audit::entry_seq(&r.key).ok_or_else(|| {
                NodeStateStaleError::Envelope { key: hex(&r.key), reason: "bad audit key".into() }
            })?;
            let name = crate::audit::entry_name(seq);
            let envelope = SealedRecord::from_bytes(&r.value).map_err(|e| {
                NodeStateStaleError::Envelope { key: hex(&r.key), reason: e.to_string() }
            })?;
            if envelope.key() != keys.obfuscate_key(store_id, &name)
                || envelope.version().0 != 1
                || r.version.get() != 1
            {
                return Err(NodeStateStaleError::Envelope {
                    key: hex(&r.key),
                    reason: format!("not sealed as audit entry {seq}"),
                });
            }
            Some((seq, name, r))
        }
        _ => None,
    };
    let mut values: Vec<&[u8]> = records.iter().map(|r| r.value.as_slice()).collect();
    values.extend(last_entry.as_ref().map(|(_, _, r)| r.value.as_slice()));
    verify_store(&keys.record_signing_pubkey(), store_id, &values, &head, 0)
        .map_err(NodeStateStaleError::Verify)?;

    let by_key: BTreeMap<&[u8], &warden_store::Record> =
        records.iter().map(|r| (r.key.as_slice(), r)).collect();
    let open = |name: &[u8], r: &warden_store::Record| {
        let plaintext = open_record(keys, store_id, name, RecordVersion(r.version.get()), &r.value)
            .map_err(|error| NodeStateStaleError::Open { name: name_str(name), error })?;
        let element = SealedRecord::from_bytes(&r.value)
            .map_err(|error| NodeStateStaleError::Open { name: name_str(name), error })?
            .element();
        Ok::<_, NodeStateStaleError>((plaintext, element))
    };
    let mut channels = BTreeMap::new();
    // A store may hold the audit trail alone (requests answered before any channel existed).
    let (node, node_element) = if records.iter().all(|r| r.key == tip_key.0) {
        (NodeRecord::default(), None)
    } else {
        let node_key = keys.obfuscate_key(store_id, NODE_RECORD_NAME);
        let r = by_key.get(node_key.0.as_slice()).ok_or(NodeStateStaleError::MissingNodeRecord)?;
        let (plaintext, element) = open(NODE_RECORD_NAME, r)?;
        let node = decode_node(&plaintext).map_err(|reason| NodeStateStaleError::Decode {
            name: name_str(NODE_RECORD_NAME),
            reason,
        })?;
        for slot in &node.channels {
            let name = channel_record_name(slot);
            let key = keys.obfuscate_key(store_id, &name);
            let r = by_key
                .get(key.0.as_slice())
                .ok_or_else(|| NodeStateStaleError::MissingChannel { name: name_str(&name) })?;
            let (plaintext, element) = open(&name, r)?;
            let bad = |e: DecodeError| NodeStateStaleError::Decode {
                name: name_str(&name),
                reason: e.to_string(),
            };
            let mut parts = BTreeMap::new();
            parts.insert(PART_MAIN, CachedPart { element, digest: digest(&plaintext) });
            let state = if is_parts(&plaintext) {
                let mut plaintexts = BTreeMap::new();
                for id in part_ids(&plaintext).map_err(bad)? {
                    let part_name = channel_part_name(slot, id);
                    let key = keys.obfuscate_key(store_id, &part_name);
                    let r = by_key.get(key.0.as_slice()).ok_or_else(|| {
                        NodeStateStaleError::MissingChannel { name: name_str(&part_name) }
                    })?;
                    let (part, element) = open(&part_name, r)?;
                    parts.insert(id, CachedPart { element, digest: digest(&part) });
                    plaintexts.insert(id, part);
                }
                decode_parts(&plaintext, &plaintexts).map_err(bad)?
            } else {
                decode_channel(&plaintext).map_err(bad)?
            };
            if state.slot != *slot {
                return Err(NodeStateStaleError::Decode {
                    name: name_str(&name),
                    reason: "the record holds another channel".into(),
                });
            }
            channels.insert(*slot, CachedChannel { state, parts });
        }
        (node, Some(element))
    };
    let audit_tip = match (by_key.get(tip_key.0.as_slice()), &last_entry) {
        (Some(r), _) => {
            let (plaintext, element) = open(AUDIT_TIP_NAME, r)?;
            let (seq, hash) = crate::audit::decode_tip(&plaintext).map_err(|reason| {
                NodeStateStaleError::Decode { name: name_str(AUDIT_TIP_NAME), reason }
            })?;
            Some(AuditTip { seq, hash, element, is_record: true })
        }
        (None, Some((seq, name, r))) => {
            let (plaintext, element) = open(name, r)?;
            let entry = crate::audit::AuditEntry::decode(&plaintext)
                .map_err(|reason| NodeStateStaleError::Decode { name: name_str(name), reason })?;
            if entry.seq != *seq {
                return Err(NodeStateStaleError::Decode {
                    name: name_str(name),
                    reason: format!("holds entry {}", entry.seq),
                });
            }
            Some(AuditTip { seq: *seq, hash: entry.hash(), element, is_record: false })
        }
        (None, None) => None,
    };
    let named = channels.values().map(|c| c.parts.len()).sum::<usize>()
        + usize::from(node_element.is_some())
        + usize::from(audit_tip.is_some_and(|t| t.is_record));
    if named != records.len() {
        return Err(NodeStateStaleError::Unaccounted { named, found: records.len() });
    }
    Ok(Snapshot { head, empty: false, channels, node, node_element, audit_tip })
}

/// The audit trail's tip as the head covers it: the last entry's number and hash, and the
/// element that covers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AuditTip {
    /// The last entry's sequence number.
    pub(crate) seq: u64,
    /// The last entry's hash.
    pub(crate) hash: [u8; 32],
    /// The element the head covers for the trail: the tip record's (the layout before), or
    /// the last entry's.
    pub(crate) element: SetElement,
    /// Whether `element` is a tip record's (deleted by the next batch with audit entries).
    pub(crate) is_record: bool,
}

/// What a successful local commit returns: the new elements by change, and whether a replica
/// failed to acknowledge (the batch is durable locally, but no reply may leave).
pub(crate) struct Committed {
    elements: Vec<Option<SetElement>>,
    replica_error: Option<ChannelStoreError>,
}

/// The part of the store every batch goes through: the local file, the replicas, the keys,
/// the signed head and the audit trail's tail. Shared (behind a mutex) by the channel store and
/// the signer's audit log; the channel store's own lock is always taken first.
pub(crate) struct Core {
    pub(crate) store: RedbStore,
    pub(crate) replicas: Vec<crate::replica::Replica>,
    pub(crate) store_id: SealStoreId,
    pub(crate) keys: WardenKeys,
    clock: Box<dyn Clock>,
    nonce_seed: [u8; 32],
    pub(crate) head: SignedHead,
    pub(crate) audit: crate::audit::AuditState,
    /// What the last batch wrote (for the bytes-per-update benchmark).
    last_batch: BatchBytes,
}

/// The bytes one batch wrote to the store (keys and values of its puts), by kind of record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchBytes {
    /// Channel and node records (obfuscated key and sealed value).
    pub records: usize,
    /// The signed head.
    pub head: usize,
    /// Audit entries.
    pub audit_entries: usize,
    /// The audit tip record (older layout only; see `audit.rs`).
    pub audit_tip: usize,
    /// How many puts.
    pub puts: usize,
}

impl BatchBytes {
    /// Everything the batch wrote.
    pub fn total(&self) -> usize {
        self.records + self.head + self.audit_entries + self.audit_tip
    }

    fn of(ops: &[Op], tip_key: &[u8]) -> BatchBytes {
        let mut b = BatchBytes::default();
        for op in ops {
            if let Op::Put { key, value, .. } = op {
                let n = key.len() + value.len();
                b.puts += 1;
                if key == HEAD_KEY {
                    b.head += n;
                } else if is_audit_key(key) {
                    b.audit_entries += n;
                } else if key == tip_key {
                    b.audit_tip += n;
                } else {
                    b.records += n;
                }
            }
        }
        b
    }
}

impl Core {
    /// Seconds since the epoch by the store's clock, never before the current head's time.
    pub(crate) fn now(&self) -> u64 {
        self.clock.now_unix_secs().max(self.head.head.time)
    }

    /// Seals `changes`, the audit entries waiting (and the entry of the request being handled
    /// on this thread, if any) and commits them with the next signed head in one batch to the
    /// local file, then to every replica. Returns the new elements by change (`None` for a
    /// delete) once the batch is durable locally; a replica that did not acknowledge is
    /// reported in [`Committed::replica_error`].
    pub(crate) fn commit(
        &mut self,
        changes: Vec<(Change, Option<SetElement>)>,
    ) -> Result<Committed, ChannelStoreError> {
        let seq = self
            .head
            .head
            .seq
            .checked_add(1)
            .ok_or_else(|| ChannelStoreError(HeadUpdateError::SeqOverflow.to_string()))?;
        let time = self.now();
        let mut nonces = BatchNonces { seed: &self.nonce_seed, seq, index: 0 };
        let mut ops = Vec::with_capacity(changes.len() + 3);
        let mut removed = Vec::new();
        let mut added = Vec::new();
        let mut results = Vec::with_capacity(changes.len());
        let mut state_digest = sha256::Hash::engine();
        for (change, previous) in changes {
            let expected = previous.map_or(Version::ABSENT, |e| Version::new(e.version.0));
            removed.extend(previous);
            match change {
                Change::Put { name, plaintext } => {
                    state_digest.input(&name);
                    state_digest.input(&plaintext);
                    let version = RecordVersion(expected.get().saturating_add(1));
                    let sealed = seal_record(
                        &self.keys,
                        &self.store_id,
                        &name,
                        version,
                        &plaintext,
                        &mut nonces,
                    );
                    let element = sealed.element();
                    added.push(element);
                    results.push(Some(element));
                    ops.push(Op::Put {
                        key: element.key.0.to_vec(),
                        expected_version: expected,
                        new_version: Version::new(version.0),
                        value: sealed.to_bytes(),
                    });
                }
                Change::Delete { name } => {
                    state_digest.input(&name);
                    let key = self.keys.obfuscate_key(&self.store_id, &name);
                    results.push(None);
                    ops.push(Op::Delete { key: key.0.to_vec(), expected_version: expected });
                }
            }
        }
        // The audit entries of this batch: those waiting, then this request's own (its state
        // change is this batch), chained and sealed, and the tip record the head covers.
        let state_digest = sha256::Hash::from_engine(state_digest).to_byte_array();
        let draft = crate::audit::take_draft();
        let saved = self.audit.clone();
        let audit = self.audit.seal_batch(
            &self.keys,
            &self.store_id,
            &mut nonces,
            time,
            draft.as_ref().map(|d| (d, state_digest)),
        );
        if let Some(batch) = audit {
            removed.extend(batch.tip_previous);
            added.push(batch.tip_element);
            ops.extend(batch.ops);
        }
        let head = match self.head.head.apply(&removed, &added, time) {
            Ok(h) => h.sign(&self.keys),
            Err(e) => {
                self.audit = saved;
                crate::audit::restore_draft(draft);
                return Err(ChannelStoreError(e.to_string()));
            }
        };
        ops.push(Op::Put {
            key: HEAD_KEY.to_vec(),
            expected_version: Version::new(self.head.head.seq),
            new_version: Version::new(head.head.seq),
            value: head.to_bytes(),
        });
        if let Err(e) = self.store.commit(&ops) {
            self.audit = saved;
            crate::audit::restore_draft(draft);
            let detail = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
            return Err(ChannelStoreError(format!("{e}: {detail}")));
        }
        self.head = head;
        let tip_key = self.keys.obfuscate_key(&self.store_id, AUDIT_TIP_NAME);
        self.last_batch = BatchBytes::of(&ops, &tip_key.0);
        let replica_error = self.replicate(&ops).err();
        Ok(Committed { elements: results, replica_error })
    }

    /// Writes a batch already durable locally to every replica (a replica that missed an
    /// earlier batch is caught up instead). Fails if any replica did not acknowledge.
    fn replicate(&mut self, ops: &[Op]) -> Result<(), ChannelStoreError> {
        let mut failed = Vec::new();
        for replica in &mut self.replicas {
            let result = if replica.lagging {
                crate::replica::catch_up(&self.store, replica).map(|_| ())
            } else {
                replica.store.commit(ops).map_err(|e| {
                    let detail =
                        std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
                    format!("{e}: {detail}")
                })
            };
            match result {
                Ok(()) => replica.lagging = false,
                Err(e) => {
                    replica.lagging = true;
                    failed.push(format!("replica {}: {e}", replica.name));
                }
            }
        }
        match failed.is_empty() {
            true => Ok(()),
            false => Err(ChannelStoreError(format!(
                "the batch is durable locally but not acknowledged: {}",
                failed.join("; ")
            ))),
        }
    }

    /// Catches up every replica that missed a batch; fails while any still lags.
    pub(crate) fn ensure_replicated(&mut self) -> Result<(), ChannelStoreError> {
        if self.replicas.iter().all(|r| !r.lagging) {
            return Ok(());
        }
        self.replicate(&[])
    }

    /// Writes the waiting audit entries in a batch of their own (with the tip and the head).
    pub(crate) fn flush_audit(&mut self) -> Result<(), ChannelStoreError> {
        if self.audit.pending_len() == 0 {
            return Ok(());
        }
        let committed = self.commit(Vec::new())?;
        committed.replica_error.map_or(Ok(()), Err)
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // Best effort: the entries still waiting (of requests that changed no state) are
        // written when the signer stops. A failure here loses only those entries.
        let _ = self.flush_audit();
    }
}

/// Channel records sealed in a redb file, with a signed head written in every batch.
pub struct SealedRedbChannelStore {
    core: Arc<Mutex<Core>>,
    channels: BTreeMap<ChannelSlot, CachedChannel>,
    node: NodeRecord,
    node_element: Option<SetElement>,
    report: crate::replica::OpenReport,
}

impl fmt::Debug for SealedRedbChannelStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.lock();
        f.debug_struct("SealedRedbChannelStore")
            .field("store_id", &core.store_id)
            .field("head_seq", &core.head.head.seq)
            .field("channels", &self.channels.len())
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn name_str(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// The two forms of a store id, from a node id.
pub(crate) fn store_ids(node_id: &NodeId) -> Result<(SealStoreId, StoreId), OpenStoreError> {
    let id = store_id_bytes(node_id);
    let store_id = SealStoreId::new(&id).map_err(|e| OpenStoreError::StoreId(e.to_string()))?;
    let backend_id = StoreId::new(id).map_err(|e| OpenStoreError::StoreId(e.to_string()))?;
    Ok((store_id, backend_id))
}

impl SealedRedbChannelStore {
    /// Opens (or creates) the store of `node_id` in `<lightning_dir>/warden/` and verifies
    /// everything in it against its signed head. `entropy` seeds the record nonces; `clock`
    /// stamps every head. No replicas: see [`SealedRedbChannelStore::open_with_replicas`].
    pub fn open(
        lightning_dir: &Path,
        node_id: &NodeId,
        keys: WardenKeys,
        entropy: &mut dyn EntropySource,
        clock: Box<dyn Clock>,
    ) -> Result<SealedRedbChannelStore, OpenStoreError> {
        Self::open_with_replicas(lightning_dir, node_id, keys, entropy, clock, Vec::new())
    }

    /// [`SealedRedbChannelStore::open`], then reconciles the local store with each of
    /// `replicas` (`replica.rs`): equal heads serve; a replica behind is caught up; a replica
    /// ahead that verifies and continues the local history is adopted; anything else is
    /// `node-state-stale`. What was done is in [`SealedRedbChannelStore::open_report`] (and in
    /// the audit trail).
    pub fn open_with_replicas(
        lightning_dir: &Path,
        node_id: &NodeId,
        keys: WardenKeys,
        entropy: &mut dyn EntropySource,
        clock: Box<dyn Clock>,
        mut replicas: Vec<crate::replica::Replica>,
    ) -> Result<SealedRedbChannelStore, OpenStoreError> {
        let (store_id, backend_id) = store_ids(node_id)?;
        let db =
            RedbDatabase::open(&lightning_dir.join(STORE_DIR)).map_err(OpenStoreError::Open)?;
        let store = db.store(backend_id);
        let now = clock.now_unix_secs();
        let mut snapshot =
            load_snapshot(&keys, &store_id, store.list(&[]).map_err(OpenStoreError::Read)?, now)?;
        let mut report = crate::replica::OpenReport::default();
        for replica in &mut replicas {
            let action =
                crate::replica::reconcile(&keys, &store_id, &store, &snapshot, replica, now)?;
            if matches!(action, crate::replica::ReplicaAction::Adopted { .. }) {
                let all = store.list(&[]).map_err(OpenStoreError::Read)?;
                snapshot = load_snapshot(&keys, &store_id, all, now)?;
            }
            report.actions.push((replica.name.clone(), action));
        }
        // A replica adopted after another was found equal or caught up: bring the earlier
        // ones to the adopted state too.
        if report.adopted() {
            for replica in &mut replicas {
                crate::replica::catch_up(&store, replica).map_err(|reason| {
                    NodeStateStaleError::ReplicaDiverged {
                        replica: replica.name.clone(),
                        local_seq: snapshot.head.head.seq,
                        replica_seq: 0,
                        reason,
                    }
                })?;
            }
        }
        let audit = crate::audit::AuditState::new(&store_id, snapshot.audit_tip);
        let mut core = Core {
            store,
            replicas,
            store_id,
            keys,
            clock,
            nonce_seed: entropy.random_32(),
            head: snapshot.head,
            audit,
            last_batch: BatchBytes::default(),
        };
        // Every reconciliation that did something is an alarm: recorded in the audit trail
        // (written with the next batch) and returned to the caller to log.
        for line in report.alarms() {
            core.audit.event(now, &line);
        }
        Ok(SealedRedbChannelStore {
            core: Arc::new(Mutex::new(core)),
            channels: snapshot.channels,
            node: snapshot.node,
            node_element: snapshot.node_element,
            report,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Core> {
        // A poisoned lock means a thread panicked inside a batch; the store's own state is
        // consistent (the file is transactional), so go on.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current signed head.
    pub fn head(&self) -> SignedHead {
        self.lock().head
    }

    /// The bytes the last batch wrote (keys and values), by kind of record.
    pub fn last_batch_bytes(&self) -> BatchBytes {
        self.lock().last_batch
    }

    /// What reconciling with the replicas did at open (for the caller to log).
    pub fn open_report(&self) -> &crate::replica::OpenReport {
        &self.report
    }

    /// Records `what` as an event in the audit trail and writes it now: one batch (with the
    /// entries waiting), to the local file and every replica.
    pub fn record_event(&self, what: &str) -> Result<(), ChannelStoreError> {
        let mut core = self.lock();
        let now = core.now();
        core.audit.event(now, what);
        core.flush_audit()
    }

    /// The audit log of this store, for `Signer::handle` to record every decision.
    pub fn audit_log(&self) -> crate::audit::AuditLog {
        crate::audit::AuditLog::new(Arc::clone(&self.core), self.report.alarms())
    }

    /// Commits `changes`; returns their elements once the batch is durable locally and
    /// acknowledged by every replica. When a replica failed, `apply` still runs (the local
    /// file has the batch) before the error is returned, so the cache matches the file.
    fn commit(
        &mut self,
        changes: Vec<(Change, Option<SetElement>)>,
        apply: impl FnOnce(&mut Self, Vec<Option<SetElement>>),
    ) -> Result<(), ChannelStoreError> {
        let committed = self.lock().commit(changes)?;
        apply(self, committed.elements);
        committed.replica_error.map_or(Ok(()), Err)
    }

    fn node_change(&self, node: &NodeRecord) -> (Change, Option<SetElement>) {
        (
            Change::Put { name: NODE_RECORD_NAME.to_vec(), plaintext: encode_node(node) },
            self.node_element,
        )
    }
}

impl ChannelStore for SealedRedbChannelStore {
    fn load(&self, slot: &ChannelSlot) -> Option<ChannelState> {
        self.channels.get(slot).map(|c| c.state.clone())
    }

    fn persist(&mut self, state: &ChannelState) -> Result<(), ChannelStoreError> {
        // A retry that changes nothing (the same request again) writes nothing, but its reply
        // too waits for every replica to hold the state.
        if self.channels.get(&state.slot).is_some_and(|c| c.state == *state) {
            return self.lock().ensure_replicated();
        }
        // Only the parts that changed are written (and the parts gone are deleted).
        let slot = state.slot;
        let cached = self.channels.get(&slot);
        let new_parts = encode_parts(state);
        let mut changes = Vec::new();
        let mut written: Vec<(u8, Option<[u8; 32]>)> = Vec::new();
        for (id, plaintext) in new_parts.iter() {
            let d = digest(plaintext);
            let previous = cached.and_then(|c| c.parts.get(id));
            if previous.is_some_and(|p| p.digest == d) {
                continue;
            }
            let name = channel_part_name(&slot, *id);
            changes.push((
                Change::Put { name, plaintext: plaintext.clone() },
                previous.map(|p| p.element),
            ));
            written.push((*id, Some(d)));
        }
        for (id, part) in cached.map(|c| &c.parts).into_iter().flatten() {
            if !new_parts.iter().any(|(n, _)| n == id) {
                changes.push((
                    Change::Delete { name: channel_part_name(&slot, *id) },
                    Some(part.element),
                ));
                written.push((*id, None));
            }
        }
        let mut node = None;
        if cached.is_none() {
            let mut n = self.node.clone();
            n.channels.push(slot);
            changes.push(self.node_change(&n));
            node = Some(n);
        }
        let mut missing = false;
        self.commit(changes, |this, results| {
            let mut parts = this.channels.remove(&slot).map(|c| c.parts).unwrap_or_default();
            for ((id, d), result) in written.iter().zip(&results) {
                match (d, result) {
                    (Some(digest), Some(element)) => {
                        parts.insert(*id, CachedPart { element: *element, digest: *digest });
                    }
                    (None, _) => {
                        parts.remove(id);
                    }
                    (Some(_), None) => missing = true,
                }
            }
            this.channels.insert(slot, CachedChannel { state: state.clone(), parts });
            if let Some(n) = node {
                this.node = n;
                this.node_element = results.get(written.len()).copied().flatten();
            }
        })?;
        match missing {
            true => Err(ChannelStoreError("the batch did not return a part's element".into())),
            false => Ok(()),
        }
    }

    fn forget(&mut self, slot: &ChannelSlot) -> Result<(), ChannelStoreError> {
        let Some(parts) = self.channels.get(slot).map(|c| c.parts.clone()) else {
            return self.lock().ensure_replicated();
        };
        let mut node = self.node.clone();
        node.channels.retain(|s| s != slot);
        let mut changes: Vec<_> = parts
            .iter()
            .map(|(id, p)| (Change::Delete { name: channel_part_name(slot, *id) }, Some(p.element)))
            .collect();
        let node_at = changes.len();
        changes.push(self.node_change(&node));
        self.commit(changes, |this, results| {
            this.channels.remove(slot);
            this.node = node;
            this.node_element = results.get(node_at).copied().flatten();
        })
    }

    fn find_by_funding(&self, outpoint: &OutPoint) -> Option<ChannelState> {
        self.channels
            .values()
            .find(|c| c.state.setup.as_ref().is_some_and(|s| s.funding_outpoint == *outpoint))
            .map(|c| c.state.clone())
    }

    fn forgotten_high_water(&self) -> u64 {
        self.node.forgotten_high_water
    }

    fn channels_set_up(&self) -> Option<usize> {
        Some(self.channels.values().filter(|c| c.state.setup.is_some()).count())
    }

    fn load_payments(&self) -> Option<Vec<u8>> {
        self.node.payments.clone()
    }

    fn persist_payments(&mut self, bytes: &[u8]) -> Result<(), ChannelStoreError> {
        if self.node.payments.as_deref() == Some(bytes) {
            return self.lock().ensure_replicated();
        }
        let mut node = self.node.clone();
        node.payments = Some(bytes.to_vec());
        let change = self.node_change(&node);
        self.commit(vec![change], |this, results| {
            this.node = node;
            this.node_element = results.first().copied().flatten();
        })
    }

    fn states(&self) -> Vec<ChannelState> {
        self.channels.values().map(|c| c.state.clone()).collect()
    }

    fn raise_forgotten_high_water(&mut self, dbid: u64) -> Result<(), ChannelStoreError> {
        if dbid <= self.node.forgotten_high_water {
            return Ok(());
        }
        let mut node = self.node.clone();
        node.forgotten_high_water = dbid;
        let change = self.node_change(&node);
        self.commit(vec![change], |this, results| {
            this.node = node;
            this.node_element = results.first().copied().flatten();
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use warden_core::secp256k1::{PublicKey, Secp256k1, SecretKey};

    struct Fixed;
    impl Clock for Fixed {
        fn now_unix_secs(&self) -> u64 {
            1_700_000_000
        }
    }

    struct Counter(u8);
    impl EntropySource for Counter {
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
        }
    }

    fn pk(b: u8) -> PublicKey {
        PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[b; 32]).unwrap())
    }

    fn open_store(dir: &Path) -> SealedRedbChannelStore {
        let keys = WardenKeys::derive(&warden_core::secret::Seed::from_legacy([0x11; 32])).unwrap();
        let node_id = NodeId::from(pk(0x77));
        SealedRedbChannelStore::open(dir, &node_id, keys, &mut Counter(0), Box::new(Fixed)).unwrap()
    }

    fn set_up_state() -> ChannelState {
        use warden_core::keys::{
            Basepoints, DelayedPaymentBasepoint, FundingPubkey, HtlcBasepoint, PaymentBasepoint,
            RevocationBasepoint,
        };
        use warden_core::units::{Msat, Sat};
        let mut state = ChannelState::new(ChannelSlot { peer: CoreNodeId(pk(9)), dbid: Dbid(4) });
        state
            .apply_setup(warden_core::channel::ChannelSetup {
                is_outbound: true,
                channel_value: Sat(1_000_000),
                push_value: Msat(0),
                funding_outpoint: OutPoint::null(),
                holder_selected_delay: 144,
                holder_shutdown_script: None,
                holder_shutdown_wallet_index: None,
                counterparty_basepoints: Basepoints {
                    revocation: RevocationBasepoint(pk(1)),
                    payment: PaymentBasepoint(pk(2)),
                    htlc: HtlcBasepoint(pk(3)),
                    delayed_payment: DelayedPaymentBasepoint(pk(4)),
                },
                counterparty_funding_pubkey: FundingPubkey(pk(5)),
                counterparty_selected_delay: 144,
                counterparty_shutdown_script: None,
                channel_type_features: vec![0x40, 0x10, 0x00],
            })
            .unwrap();
        state
    }

    /// The plaintext of a channel's main record, as stored.
    fn main_plaintext(dir: &Path, slot: &ChannelSlot) -> Vec<u8> {
        let keys = WardenKeys::derive(&warden_core::secret::Seed::from_legacy([0x11; 32])).unwrap();
        let (store_id, backend_id) = store_ids(&NodeId::from(pk(0x77))).unwrap();
        let db = RedbDatabase::open(&dir.join(STORE_DIR)).unwrap();
        let name = channel_record_name(slot);
        let key = keys.obfuscate_key(&store_id, &name);
        let r = db.store(backend_id).get(&key.0).unwrap().unwrap();
        open_record(&keys, &store_id, &name, RecordVersion(r.version.get()), &r.value)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn a_channel_in_the_whole_record_layout_opens_and_moves_to_parts() {
        let dir = tempfile::tempdir().unwrap();
        let state = set_up_state();
        {
            // What a Warden before split records wrote: the whole state in one record.
            let store = open_store(dir.path());
            let node = NodeRecord { channels: vec![state.slot], ..NodeRecord::default() };
            let changes = vec![
                (
                    Change::Put {
                        name: channel_record_name(&state.slot),
                        plaintext: warden_core::channel::encoding::encode_channel(&state),
                    },
                    None,
                ),
                (
                    Change::Put { name: NODE_RECORD_NAME.to_vec(), plaintext: encode_node(&node) },
                    None,
                ),
            ];
            store.lock().commit(changes).unwrap();
        }
        assert!(!is_parts(&main_plaintext(dir.path(), &state.slot)));
        let mut store = open_store(dir.path());
        assert_eq!(store.load(&state.slot).as_ref(), Some(&state), "the old layout reads");
        // The next update writes the channel as parts; it reads back the same.
        let mut next = state.clone();
        next.holder.next_number = 1;
        store.persist(&next).unwrap();
        drop(store);
        assert!(is_parts(&main_plaintext(dir.path(), &state.slot)));
        let mut store = open_store(dir.path());
        assert_eq!(store.load(&state.slot).as_ref(), Some(&next));
        // An update that changes only the numbers writes the main part alone.
        next.holder.next_number = 2;
        store.persist(&next).unwrap();
        let b = store.last_batch_bytes();
        assert_eq!(b.puts, 2, "main part and head: {b:?}");
        // Forgetting deletes every part.
        store.forget(&state.slot).unwrap();
        drop(store);
        let store = open_store(dir.path());
        assert!(store.states().is_empty());
    }

    #[test]
    fn a_trail_with_a_tip_record_opens_and_moves_to_the_last_entry() {
        use crate::audit::{AuditEntry, AuditOutcome};
        let dir = tempfile::tempdir().unwrap();
        let old_entry = {
            // What a Warden before wrote: entries, and a tip record covered by the head.
            let store = open_store(dir.path());
            let core = store.lock();
            let entry = AuditEntry {
                seq: 1,
                prev: crate::audit::genesis_hash(core.store_id.as_bytes()),
                detail: Some("written in the layout with a tip record".into()),
                ..crate::audit::blank(1_600_000_000)
            };
            let sealed = seal_record(
                &core.keys,
                &core.store_id,
                &crate::audit::entry_name(1),
                RecordVersion(1),
                &entry.encode(),
                &mut Counter(50),
            );
            let tip = seal_record(
                &core.keys,
                &core.store_id,
                AUDIT_TIP_NAME,
                RecordVersion(1),
                &crate::audit::encode_tip(1, &entry.hash()),
                &mut Counter(90),
            );
            let head = core
                .head
                .head
                .apply(&[], &[tip.element()], 1_600_000_000)
                .unwrap()
                .sign(&core.keys);
            let ops = vec![
                Op::Put {
                    key: crate::audit::entry_key(1),
                    expected_version: Version::ABSENT,
                    new_version: Version::new(1),
                    value: sealed.to_bytes(),
                },
                Op::Put {
                    key: tip.key().0.to_vec(),
                    expected_version: Version::ABSENT,
                    new_version: Version::new(1),
                    value: tip.to_bytes(),
                },
                Op::Put {
                    key: HEAD_KEY.to_vec(),
                    expected_version: Version::ABSENT,
                    new_version: Version::new(head.head.seq),
                    value: head.to_bytes(),
                },
            ];
            core.store.commit(&ops).unwrap();
            entry
        };
        let tip_key = |dir: &Path| {
            let keys =
                WardenKeys::derive(&warden_core::secret::Seed::from_legacy([0x11; 32])).unwrap();
            let (store_id, backend_id) = store_ids(&NodeId::from(pk(0x77))).unwrap();
            let db = RedbDatabase::open(&dir.join(STORE_DIR)).unwrap();
            let key = keys.obfuscate_key(&store_id, AUDIT_TIP_NAME);
            db.store(backend_id).get(&key.0).unwrap().is_some()
        };
        assert!(tip_key(dir.path()));
        {
            // It opens; the next state change writes its entry and drops the tip record.
            let mut store = open_store(dir.path());
            let log = store.audit_log();
            let ctx = crate::signer::ClientContext {
                id: NodeId::from(pk(9)),
                dbid: 4,
                permissions: crate::permissions::ALL,
            };
            log.decide(&ctx, b"\x00\x13request", || {
                store.persist(&set_up_state()).unwrap();
                Ok(crate::signer::Outcome::Reply(Vec::new()))
            })
            .unwrap();
            assert_eq!(store.last_batch_bytes().audit_tip, 0);
        }
        assert!(!tip_key(dir.path()), "the tip record is gone");
        let keys = WardenKeys::derive(&warden_core::secret::Seed::from_legacy([0x11; 32])).unwrap();
        let trail = crate::audit::verify(dir.path(), &NodeId::from(pk(0x77)), &keys).unwrap();
        assert_eq!(trail.entries.len(), 2);
        assert_eq!(trail.entries[0], old_entry);
        assert_eq!(trail.entries[1].prev, old_entry.hash(), "one chain across the layouts");
        assert_eq!(trail.entries[1].outcome, AuditOutcome::Committed);
        let store = open_store(dir.path());
        assert_eq!(store.states().len(), 1);
    }

    #[test]
    fn node_record_round_trips() {
        let secp = Secp256k1::new();
        let peer = CoreNodeId(PublicKey::from_secret_key(
            &secp,
            &SecretKey::from_slice(&[5; 32]).unwrap(),
        ));
        let node = NodeRecord {
            forgotten_high_water: 7,
            channels: vec![
                ChannelSlot { peer, dbid: Dbid(9) },
                ChannelSlot { peer, dbid: Dbid(11) },
            ],
            payments: None,
        };
        assert_eq!(decode_node(&encode_node(&node)).unwrap(), node);
        assert_eq!(
            decode_node(&encode_node(&NodeRecord::default())).unwrap(),
            NodeRecord::default()
        );
        let with_payments = NodeRecord { payments: Some(vec![1, 2, 3]), ..node.clone() };
        assert_eq!(decode_node(&encode_node(&with_payments)).unwrap(), with_payments);
        let mut bad = encode_node(&node);
        bad[0] = 2;
        assert!(decode_node(&bad).is_err());
    }
}
