//! The audit trail: an append-only, hash-chained log of every decision, kept in the durable
//! store with the state (issue 5 point 7).
//!
//! ## What an entry holds
//!
//! The request's SHA-256 (of its body), the client (peer id, dbid), the message type, the
//! outcome ([`AuditOutcome`]: `committed`, `answered`, `refused` with the rule tag, `rejected`
//! with the reason, or an `event` such as a replica alarm), the demoted rules that warned
//! (reported by [`note_warning`]), the SHA-256 of the reply (what was signed or answered) for a
//! request that changed no state, or of the state change (record names and plaintexts) for one
//! that did — its reply is then a function of that state and the request (a retry gets the same
//! bytes) —, the time, its sequence number and the hash of the previous entry. Never a secret,
//! never a key or a signature.
//!
//! ## Where entries live (the record layout)
//!
//! In the same store as the channel records (same store id, same redb file, and so on every
//! replica):
//!
//! | store key | version | value |
//! |---|---|---|
//! | `warden-audit/` ‖ seq (8 bytes, big-endian) | 1 | sealed entry, record name `audit/<seq>` |
//!
//! Entries are sealed like every record (encrypted, signed, bound to their sequence number
//! through the record name, so a moved entry does not open). The head's set digest covers the
//! last entry (each batch with entries swaps the previous last entry's element for the new
//! one's), and each entry names the previous one's hash, which chains all the others: cutting
//! the last entry off makes the store fail to verify, removing another leaves a gap.
//!
//! The layout before kept, instead, a sealed tip record (obfuscated `audit-tip`: `0x01` ‖ last
//! seq ‖ last entry hash) in the digest, rewritten with every batch (218 bytes). A store in
//! that layout is still read (the tip names the last entry); its next batch with entries
//! deletes the tip record and puts the last entry in the digest in its place.
//! Their keys are in clear so that they list in order; the count of decisions is what the
//! storage server learns. The entry encoding is format byte `0x01` then a TLV stream (even =
//! required: 0 seq, 2 previous hash, 4 time, 6 outcome; odd = optional: 7 request SHA-256,
//! 9 peer id, 11 dbid, 13 message type, 15 rule tag, 17 detail, 19 reply SHA-256, 21 state
//! SHA-256, 23 the demoted rules that warned, comma-separated). An entry's hash is
//! SHA-256(`warden/audit-entry/v1` ‖ its encoding); the first entry's previous hash is
//! SHA-256(`warden/audit-genesis/v1` ‖ store id).
//!
//! ## When entries are written (cost)
//!
//! [`AuditLog::decide`] wraps the dispatch of each request in `Signer::handle`. A request that
//! changes state has its entry (`committed`, with the SHA-256 of the state change) written in
//! the very batch that makes the change durable, before the reply: no extra fsync, one more
//! small record and the tip per batch. A request that changes nothing (`answered`, `refused`,
//! `rejected`) has its entry queued and written with the next batch; the queue is written in a
//! batch of its own when it reaches [`FLUSH_AT`] entries and when the signer stops. So a crash
//! can lose the entries of at most [`FLUSH_AT`] requests that changed no state (the chain and
//! the tip stay consistent; the loss itself is not marked), never the entry of a state change.
//! A state change's entry is not sent twice: a batch takes the request's draft from a
//! thread-local that `decide` sets, and `decide` writes its own entry only when no batch did
//! or when the request failed after one.
//!
//! ## Checking and exporting
//!
//! [`verify`] checks the store (head, records) and then the whole chain: sequence numbers from
//! 1 without gaps, each entry opening under its own number, each naming the previous entry's
//! hash, the last one matching the tip. A modified, removed, reordered or truncated entry is
//! reported. [`export_jsonl`] writes the verified entries as JSON lines.

use std::cell::RefCell;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bitcoin::hashes::{sha256, Hash, HashEngine};
use warden_core::rng::EntropySource;
use warden_core::seal::{
    open_record, seal_record, RecordVersion, SetElement, StoreId as SealStoreId, WardenKeys,
};
use warden_core::tlv::{TlvError, TlvReader, TlvWriter};
use warden_store::redb::RedbDatabase;
use warden_store::{BackendError, Op, Store, Version};
use warden_wire::NodeId;

use crate::channels::ChannelStoreError;
use crate::durable::{
    is_audit_key, load_snapshot, store_ids, AuditTip, Core, NodeStateStaleError, OpenStoreError,
    AUDIT_PREFIX, STORE_DIR,
};
use crate::signer::{BadRequestError, ClientContext, Outcome};

/// Queued entries are written in a batch of their own when this many wait.
pub const FLUSH_AT: usize = 32;
/// The format byte of an entry and of the tip.
pub const AUDIT_FORMAT: u8 = 0x01;
/// Longest detail kept in an entry, in bytes.
const MAX_DETAIL: usize = 240;
const ENTRY_TAG: &[u8] = b"warden/audit-entry/v1";
const GENESIS_TAG: &[u8] = b"warden/audit-genesis/v1";

/// What became of a request (or what happened to the store).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditOutcome {
    /// The request changed state; the entry is in the batch that made it durable.
    Committed,
    /// The request was answered without changing state (a signature, a point, a check).
    Answered,
    /// Policy refused the request; the entry names the rule.
    Refused,
    /// The request was not served for another reason (malformed, permission, store failure).
    Rejected,
    /// Not a request: a replica alarm or another event of the store.
    Event,
}

impl AuditOutcome {
    /// The outcome's name in exports.
    pub fn tag(self) -> &'static str {
        match self {
            AuditOutcome::Committed => "committed",
            AuditOutcome::Answered => "answered",
            AuditOutcome::Refused => "refused",
            AuditOutcome::Rejected => "rejected",
            AuditOutcome::Event => "event",
        }
    }

    fn code(self) -> u8 {
        match self {
            AuditOutcome::Committed => 1,
            AuditOutcome::Answered => 2,
            AuditOutcome::Refused => 3,
            AuditOutcome::Rejected => 4,
            AuditOutcome::Event => 5,
        }
    }

    fn from_code(code: u8) -> Option<AuditOutcome> {
        Some(match code {
            1 => AuditOutcome::Committed,
            2 => AuditOutcome::Answered,
            3 => AuditOutcome::Refused,
            4 => AuditOutcome::Rejected,
            5 => AuditOutcome::Event,
            _ => return None,
        })
    }
}

/// One decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its number: 1, 2, 3, … in the order written.
    pub seq: u64,
    /// The previous entry's hash (the genesis hash for entry 1).
    pub prev: [u8; 32],
    /// When it was decided (Unix seconds, the store's clock).
    pub time: u64,
    /// The outcome.
    pub outcome: AuditOutcome,
    /// SHA-256 of the request body.
    pub request_sha256: Option<[u8; 32]>,
    /// The client's peer id (our own node id for global clients).
    pub peer: Option<[u8; 33]>,
    /// The client's dbid (0 if not per-channel).
    pub dbid: Option<u64>,
    /// The request's message type.
    pub msg_type: Option<u16>,
    /// The policy rule that refused it.
    pub rule: Option<String>,
    /// What else there is to say (the refusal's or rejection's text, an event), never secret.
    pub detail: Option<String>,
    /// SHA-256 of the reply body: what was signed or answered.
    pub reply_sha256: Option<[u8; 32]>,
    /// SHA-256 of the state change made durable with this entry (record names and contents).
    pub state_sha256: Option<[u8; 32]>,
    /// The demoted rules that warned while the request was handled (it went on).
    pub warned: Vec<String>,
}

impl AuditEntry {
    /// The entry's encoding (format `0x01`, then TLV).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = TlvWriter::new();
        w.u64(0, self.seq);
        w.record(2, &self.prev);
        w.u64(4, self.time);
        w.record(6, &[self.outcome.code()]);
        if let Some(d) = &self.request_sha256 {
            w.record(7, d);
        }
        if let Some(p) = &self.peer {
            w.record(9, p);
        }
        if let Some(d) = self.dbid {
            w.u64(11, d);
        }
        if let Some(t) = self.msg_type {
            w.u16(13, t);
        }
        if let Some(r) = &self.rule {
            w.record(15, r.as_bytes());
        }
        if let Some(d) = &self.detail {
            w.record(17, d.as_bytes());
        }
        if let Some(d) = &self.reply_sha256 {
            w.record(19, d);
        }
        if let Some(d) = &self.state_sha256 {
            w.record(21, d);
        }
        if !self.warned.is_empty() {
            w.record(23, self.warned.join(",").as_bytes());
        }
        let mut out = vec![AUDIT_FORMAT];
        out.extend_from_slice(&w.into_bytes());
        out
    }

    /// Decodes [`AuditEntry::encode`].
    pub fn decode(bytes: &[u8]) -> Result<AuditEntry, String> {
        let (&format, body) = bytes.split_first().ok_or("empty audit entry")?;
        if format != AUDIT_FORMAT {
            return Err(format!("unknown audit entry format {format:#04x}"));
        }
        let tlv = |e: TlvError| e.to_string();
        let text = |v: &[u8]| String::from_utf8(v.to_vec()).map_err(|_| "text is not UTF-8");
        let mut r = TlvReader::new(body, 1);
        let seq = r.required(0).and_then(|v| v.u64()).map_err(tlv)?;
        let prev = r.required(2).and_then(|v| v.fixed::<32>().copied()).map_err(tlv)?;
        let time = r.required(4).and_then(|v| v.u64()).map_err(tlv)?;
        let code = r.required(6).and_then(|v| v.fixed::<1>().copied()).map_err(tlv)?;
        let outcome = AuditOutcome::from_code(code[0]).ok_or("unknown audit outcome")?;
        let request_sha256 = r.optional(7).map_err(tlv)?.map(|v| v.fixed::<32>().copied());
        let peer = r.optional(9).map_err(tlv)?.map(|v| v.fixed::<33>().copied());
        let dbid = r.optional(11).map_err(tlv)?.map(|v| v.u64());
        let msg_type = r.optional(13).map_err(tlv)?.map(|v| v.u16());
        let rule = r.optional(15).map_err(tlv)?.map(|v| text(v.value)).transpose()?;
        let detail = r.optional(17).map_err(tlv)?.map(|v| text(v.value)).transpose()?;
        let reply_sha256 = r.optional(19).map_err(tlv)?.map(|v| v.fixed::<32>().copied());
        let state_sha256 = r.optional(21).map_err(tlv)?.map(|v| v.fixed::<32>().copied());
        let warned = match r.optional(23).map_err(tlv)? {
            Some(v) => text(v.value)?.split(',').map(str::to_string).collect(),
            None => Vec::new(),
        };
        r.finish().map_err(tlv)?;
        Ok(AuditEntry {
            seq,
            prev,
            time,
            outcome,
            request_sha256: request_sha256.transpose().map_err(tlv)?,
            peer: peer.transpose().map_err(tlv)?,
            dbid: dbid.transpose().map_err(tlv)?,
            msg_type: msg_type.transpose().map_err(tlv)?,
            rule,
            detail,
            reply_sha256: reply_sha256.transpose().map_err(tlv)?,
            state_sha256: state_sha256.transpose().map_err(tlv)?,
            warned,
        })
    }

    /// The entry's hash, which the next entry names.
    pub fn hash(&self) -> [u8; 32] {
        tagged(ENTRY_TAG, &self.encode())
    }
}

fn tagged(tag: &[u8], data: &[u8]) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    engine.input(tag);
    engine.input(data);
    sha256::Hash::from_engine(engine).to_byte_array()
}

fn sha(data: &[u8]) -> [u8; 32] {
    sha256::Hash::hash(data).to_byte_array()
}

/// The previous hash of entry 1 of `store_id`.
pub fn genesis_hash(store_id: &[u8]) -> [u8; 32] {
    tagged(GENESIS_TAG, store_id)
}

/// The record name of entry `seq`.
pub(crate) fn entry_name(seq: u64) -> Vec<u8> {
    format!("audit/{seq}").into_bytes()
}

/// The number of the entry stored under `key`.
pub(crate) fn entry_seq(key: &[u8]) -> Option<u64> {
    key.get(AUDIT_PREFIX.len()..).and_then(|s| <[u8; 8]>::try_from(s).ok()).map(u64::from_be_bytes)
}

/// The store key of entry `seq`.
pub(crate) fn entry_key(seq: u64) -> Vec<u8> {
    let mut key = AUDIT_PREFIX.to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The tip record of the layout before (written by older Wardens; still read).
#[cfg(test)]
pub(crate) fn encode_tip(seq: u64, hash: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![AUDIT_FORMAT];
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(hash);
    out
}

/// Decodes the tip record: the last entry's number and hash.
pub(crate) fn decode_tip(bytes: &[u8]) -> Result<(u64, [u8; 32]), String> {
    match bytes.split_first() {
        Some((&AUDIT_FORMAT, rest)) if rest.len() == 40 => {
            let (seq, hash) = rest.split_at(8);
            let seq = u64::from_be_bytes(seq.try_into().map_err(|_| "bad tip")?);
            Ok((seq, hash.try_into().map_err(|_| "bad tip")?))
        }
        _ => Err("not an audit tip (format 0x01, 40 bytes)".into()),
    }
}

/// The request being handled on this thread, until a batch takes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Draft {
    request_sha256: [u8; 32],
    peer: [u8; 33],
    dbid: u64,
    msg_type: Option<u16>,
}

thread_local! {
    static DRAFT: RefCell<Option<Draft>> = const { RefCell::new(None) };
    static WARNED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// Whether a request is being handled under [`AuditLog::decide`] on this thread.
    static ACTIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Notes that the demoted rule `tag` warned while the request handled on this thread went on
/// (for `Policy::enforce` to call); the request's audit entry lists it under `warned`.
pub fn note_warning(tag: &str) {
    if ACTIVE.with(|a| a.get()) {
        WARNED.with(|w| w.borrow_mut().push(tag.to_string()));
    }
}

fn take_warnings() -> Vec<String> {
    WARNED.with(|w| std::mem::take(&mut *w.borrow_mut()))
}

/// Takes this thread's draft (a batch written for the request being handled carries it).
pub(crate) fn take_draft() -> Option<Draft> {
    DRAFT.with(|d| d.borrow_mut().take())
}

/// Puts a draft back (its batch failed).
pub(crate) fn restore_draft(draft: Option<Draft>) {
    if draft.is_some() {
        DRAFT.with(|d| *d.borrow_mut() = draft);
    }
}

/// The audit trail's tail, kept with the store's core.
#[derive(Clone, Debug)]
pub(crate) struct AuditState {
    next_seq: u64,
    last_hash: [u8; 32],
    /// The element the head covers for the trail (the last entry's, or a tip record's).
    tip: Option<SetElement>,
    /// Whether `tip` is a tip record's: the next batch deletes that record.
    tip_is_record: bool,
    /// Entries decided but not yet written (their seq and prev are set when written).
    pending: Vec<AuditEntry>,
}

/// What one batch writes of the audit trail.
pub(crate) struct AuditBatch {
    pub(crate) ops: Vec<Op>,
    pub(crate) tip_previous: Option<SetElement>,
    pub(crate) tip_element: SetElement,
}

impl AuditState {
    /// The tail after the tip found in the store (none: an empty trail).
    pub(crate) fn new(store_id: &SealStoreId, tip: Option<AuditTip>) -> AuditState {
        match tip {
            Some(t) => AuditState {
                next_seq: t.seq.saturating_add(1),
                last_hash: t.hash,
                tip: Some(t.element),
                tip_is_record: t.is_record,
                pending: Vec::new(),
            },
            None => AuditState {
                next_seq: 1,
                last_hash: genesis_hash(store_id.as_bytes()),
                tip: None,
                tip_is_record: false,
                pending: Vec::new(),
            },
        }
    }

    /// How many entries wait.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Queues an event (a replica alarm).
    pub(crate) fn event(&mut self, time: u64, what: &str) {
        self.pending.push(AuditEntry {
            outcome: AuditOutcome::Event,
            detail: Some(clip(what)),
            ..blank(time)
        });
    }

    /// Seals the waiting entries, then the entry of `draft` (the request whose state change
    /// this batch is, with the change's SHA-256), and the new tip. `None` if there is nothing
    /// to write. The state changes only as if the batch were written: the caller keeps a copy
    /// to restore if it is not.
    pub(crate) fn seal_batch(
        &mut self,
        keys: &WardenKeys,
        store_id: &SealStoreId,
        nonces: &mut dyn EntropySource,
        time: u64,
        draft: Option<(&Draft, [u8; 32])>,
    ) -> Option<AuditBatch> {
        let mut entries = std::mem::take(&mut self.pending);
        if let Some((d, state)) = draft {
            entries.push(AuditEntry {
                outcome: AuditOutcome::Committed,
                request_sha256: Some(d.request_sha256),
                peer: Some(d.peer),
                dbid: Some(d.dbid),
                msg_type: d.msg_type,
                state_sha256: Some(state),
                warned: take_warnings(),
                ..blank(time)
            });
        }
        if entries.is_empty() {
            return None;
        }
        let mut ops = Vec::with_capacity(entries.len() + 1);
        let mut last = None;
        for mut entry in entries {
            entry.seq = self.next_seq;
            entry.prev = self.last_hash;
            let plaintext = entry.encode();
            let sealed = seal_record(
                keys,
                store_id,
                &entry_name(entry.seq),
                RecordVersion(1),
                &plaintext,
                nonces,
            );
            last = Some(sealed.element());
            ops.push(Op::Put {
                key: entry_key(entry.seq),
                expected_version: Version::ABSENT,
                new_version: Version::new(1),
                value: sealed.to_bytes(),
            });
            self.last_hash = tagged(ENTRY_TAG, &plaintext);
            self.next_seq = self.next_seq.saturating_add(1);
        }
        let element = last?;
        let previous = self.tip;
        if self.tip_is_record {
            // The layout before kept a tip record: the last entry replaces it in the head.
            if let Some(p) = previous {
                ops.push(Op::Delete {
                    key: p.key.0.to_vec(),
                    expected_version: Version::new(p.version.0),
                });
            }
        }
        self.tip = Some(element);
        self.tip_is_record = false;
        Some(AuditBatch { ops, tip_previous: previous, tip_element: element })
    }
}

/// An `event` entry at `time` with every optional field empty (sequence and chain set later).
pub(crate) fn blank(time: u64) -> AuditEntry {
    AuditEntry {
        seq: 0,
        prev: [0; 32],
        time,
        outcome: AuditOutcome::Event,
        request_sha256: None,
        peer: None,
        dbid: None,
        msg_type: None,
        rule: None,
        detail: None,
        reply_sha256: None,
        state_sha256: None,
        warned: Vec::new(),
    }
}

/// Cuts `text` to [`MAX_DETAIL`] bytes (at a character boundary).
fn clip(text: &str) -> String {
    let mut end = text.len().min(MAX_DETAIL);
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    text.get(..end).unwrap_or_default().to_string()
}

/// The signer's handle on the audit trail of its durable store (disabled for a memory store).
#[derive(Clone, Default)]
pub struct AuditLog {
    core: Option<Arc<Mutex<Core>>>,
    /// The replica alarms of the store's start (`replica::OpenReport::alarms`).
    alarms: Arc<Vec<String>>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog").field("enabled", &self.core.is_some()).finish()
    }
}

impl AuditLog {
    pub(crate) fn new(core: Arc<Mutex<Core>>, alarms: Vec<String>) -> AuditLog {
        AuditLog { core: Some(core), alarms: Arc::new(alarms) }
    }

    /// A log that records nothing (the in-memory store of unit tests).
    pub fn disabled() -> AuditLog {
        AuditLog::default()
    }

    /// What reconciling with the replicas at start found out of step, one line each, for the
    /// caller to log (they are in the trail too).
    pub fn open_alarms(&self) -> &[String] {
        &self.alarms
    }

    /// Read-only, for `warden run`'s status and metrics: the sequence number of the store's
    /// signed head, and each replica's name and whether it is lagging (missed a batch). `None`
    /// for a memory store.
    pub fn store_health(&self) -> Option<(u64, Vec<(String, bool)>)> {
        let core = Self::lock(self.core.as_ref()?);
        let replicas = core.replicas.iter().map(|r| (r.name.clone(), r.lagging)).collect();
        Some((core.head.head.seq, replicas))
    }

    fn lock(core: &Mutex<Core>) -> std::sync::MutexGuard<'_, Core> {
        core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `dispatch` (the handling of `body` from `client`) and records its outcome: in the
    /// batch of the state change it made, if any, else queued for the next batch.
    pub fn decide(
        &self,
        client: &ClientContext,
        body: &[u8],
        dispatch: impl FnOnce() -> Result<Outcome, BadRequestError>,
    ) -> Result<Outcome, BadRequestError> {
        let Some(core) = &self.core else { return dispatch() };
        let draft = Draft {
            request_sha256: sha(body),
            peer: *client.id.as_bytes(),
            dbid: client.dbid,
            msg_type: warden_wire::frame::peek_type(body).ok(),
        };
        DRAFT.with(|d| *d.borrow_mut() = Some(draft));
        take_warnings();
        ACTIVE.with(|a| a.set(true));
        let outcome = dispatch();
        ACTIVE.with(|a| a.set(false));
        let written = take_draft().is_none();
        let warned = take_warnings();
        if written && outcome.is_ok() && warned.is_empty() {
            return outcome;
        }
        let mut core = Self::lock(core);
        let mut entry = AuditEntry {
            request_sha256: Some(draft.request_sha256),
            peer: Some(draft.peer),
            dbid: Some(draft.dbid),
            msg_type: draft.msg_type,
            warned,
            ..blank(core.now())
        };
        match &outcome {
            // The request's state change was audited; these warnings came after it.
            Ok(_) if written => {
                entry.outcome = AuditOutcome::Event;
                entry.detail = Some("warnings after the state change".into());
            }
            Ok(Outcome::Reply(reply)) | Ok(Outcome::NewClient { reply, .. }) => {
                entry.outcome = AuditOutcome::Answered;
                entry.reply_sha256 = Some(sha(reply));
            }
            Err(BadRequestError::Refused(e)) => {
                entry.outcome = AuditOutcome::Refused;
                entry.rule = Some(e.rule.tag().to_string());
                entry.detail = Some(clip(&e.detail));
            }
            Err(e) => {
                entry.outcome = AuditOutcome::Rejected;
                entry.detail = Some(clip(&e.to_string()));
            }
        }
        core.audit.pending.push(entry);
        if core.audit.pending_len() >= FLUSH_AT {
            // A failure leaves the entries queued for the next batch; the reply is not held.
            let _ = core.flush_audit();
        }
        outcome
    }

    /// Writes the queued entries now (one batch).
    pub fn flush(&self) -> Result<(), ChannelStoreError> {
        match &self.core {
            Some(core) => Self::lock(core).flush_audit(),
            None => Ok(()),
        }
    }
}

/// Why the audit trail does not verify or cannot be read.
#[derive(Debug)]
pub enum AuditError {
    /// The store could not be opened or read.
    Open(OpenStoreError),
    /// The state around the trail (head, records, tip) does not verify.
    State(NodeStateStaleError),
    /// An entry does not open or decode (modified, moved or foreign).
    Entry {
        /// The entry's number by its store key.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The numbers are not 1, 2, 3, …: an entry was removed or added.
    Gap {
        /// The number expected.
        expected: u64,
        /// The number found.
        found: u64,
    },
    /// An entry does not name the previous entry's hash.
    Chain {
        /// The entry's number.
        seq: u64,
    },
    /// The last entry is not the one the tip names: entries were cut off or added at the end.
    Tip {
        /// What the tip names (seq), if there is a tip.
        tip_seq: Option<u64>,
        /// The last entry found (0: none).
        last_seq: u64,
    },
    /// The export could not be written.
    Write(std::io::Error),
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditError::Open(e) => write!(f, "audit: {e}"),
            AuditError::State(e) => write!(f, "audit: node-state-stale: {e}"),
            AuditError::Entry { seq, reason } => write!(f, "audit entry {seq}: {reason}"),
            AuditError::Gap { expected, found } => {
                write!(f, "audit entry {expected} expected, {found} found: entries removed")
            }
            AuditError::Chain { seq } => {
                write!(f, "audit entry {seq} does not chain to the entry before it")
            }
            AuditError::Tip { tip_seq, last_seq } => match tip_seq {
                Some(t) => write!(f, "audit tip names entry {t}, the last entry is {last_seq}"),
                None => write!(f, "{last_seq} audit entries but no tip"),
            },
            AuditError::Write(e) => write!(f, "audit export: {e}"),
        }
    }
}

impl std::error::Error for AuditError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuditError::Open(e) => Some(e),
            AuditError::State(e) => Some(e),
            AuditError::Write(e) => Some(e),
            _ => None,
        }
    }
}

/// A verified trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// Every entry, in order.
    pub entries: Vec<AuditEntry>,
    /// The head's sequence number of the store the trail was read from.
    pub head_seq: u64,
}

/// Checks the audit trail of `node_id` in `<lightning_dir>/warden/` (the signer must be
/// stopped: the file is locked while it runs). See the module documentation.
pub fn verify(
    lightning_dir: &Path,
    node_id: &NodeId,
    keys: &WardenKeys,
) -> Result<AuditReport, AuditError> {
    let (_, backend_id) = store_ids(node_id).map_err(AuditError::Open)?;
    let db = RedbDatabase::open(&lightning_dir.join(STORE_DIR))
        .map_err(|e| AuditError::Open(OpenStoreError::Open(e)))?;
    verify_in(&db.store(backend_id), node_id, keys)
}

/// [`verify`] over any store holding `node_id`'s records (a replica, for example).
pub fn verify_in(
    store: &dyn Store,
    node_id: &NodeId,
    keys: &WardenKeys,
) -> Result<AuditReport, AuditError> {
    let (store_id, _) = store_ids(node_id).map_err(AuditError::Open)?;
    let read = |e: BackendError| AuditError::Open(OpenStoreError::Read(e));
    let all = store.list(&[]).map_err(read)?;
    let entries: Vec<_> = all.iter().filter(|r| is_audit_key(&r.key)).cloned().collect();
    let snapshot = load_snapshot(keys, &store_id, all, 0).map_err(AuditError::State)?;
    let mut prev = genesis_hash(store_id.as_bytes());
    let mut out = Vec::with_capacity(entries.len());
    for (expected, r) in (1u64..).zip(&entries) {
        let seq = r
            .key
            .get(AUDIT_PREFIX.len()..)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| AuditError::Entry { seq: 0, reason: "malformed store key".into() })?;
        if seq != expected {
            return Err(AuditError::Gap { expected, found: seq });
        }
        let plaintext = open_record(
            keys,
            &store_id,
            &entry_name(seq),
            RecordVersion(r.version.get()),
            &r.value,
        )
        .map_err(|e| AuditError::Entry { seq, reason: e.to_string() })?;
        let entry =
            AuditEntry::decode(&plaintext).map_err(|reason| AuditError::Entry { seq, reason })?;
        if entry.seq != seq {
            return Err(AuditError::Entry { seq, reason: format!("holds entry {}", entry.seq) });
        }
        if entry.prev != prev {
            return Err(AuditError::Chain { seq });
        }
        prev = entry.hash();
        out.push(entry);
    }
    let last_seq = out.last().map_or(0, |e| e.seq);
    match snapshot.audit_tip {
        Some(tip) if tip.seq == last_seq && tip.hash == prev => {}
        None if out.is_empty() => {}
        tip => return Err(AuditError::Tip { tip_seq: tip.map(|t| t.seq), last_seq }),
    }
    Ok(AuditReport { entries: out, head_seq: snapshot.head.head.seq })
}

/// Verifies the trail (as [`verify`]) and writes each entry as one JSON line to `out`.
pub fn export_jsonl(
    lightning_dir: &Path,
    node_id: &NodeId,
    keys: &WardenKeys,
    out: &mut dyn Write,
) -> Result<AuditReport, AuditError> {
    let report = verify(lightning_dir, node_id, keys)?;
    write_jsonl(&report, out)?;
    Ok(report)
}

/// Writes verified entries as JSON lines.
pub fn write_jsonl(report: &AuditReport, out: &mut dyn Write) -> Result<(), AuditError> {
    for entry in &report.entries {
        writeln!(out, "{}", to_json(entry)).map_err(AuditError::Write)?;
    }
    out.flush().map_err(AuditError::Write)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One entry as a JSON object (fields absent from the entry are left out).
pub fn to_json(e: &AuditEntry) -> String {
    let mut fields = vec![
        format!("\"seq\":{}", e.seq),
        format!("\"time\":{}", e.time),
        format!("\"outcome\":\"{}\"", e.outcome.tag()),
    ];
    let mut hex_field = |name: &str, v: Option<&[u8]>| {
        if let Some(v) = v {
            fields.push(format!("\"{name}\":\"{}\"", hex(v)));
        }
    };
    hex_field("request_sha256", e.request_sha256.as_ref().map(|v| v.as_slice()));
    hex_field("peer", e.peer.as_ref().map(|v| v.as_slice()));
    if let Some(d) = e.dbid {
        fields.push(format!("\"dbid\":{d}"));
    }
    if let Some(t) = e.msg_type {
        fields.push(format!("\"msg_type\":{t}"));
    }
    if let Some(r) = &e.rule {
        fields.push(format!("\"rule\":{}", json_string(r)));
    }
    if let Some(d) = &e.detail {
        fields.push(format!("\"detail\":{}", json_string(d)));
    }
    if !e.warned.is_empty() {
        let tags: Vec<String> = e.warned.iter().map(|t| json_string(t)).collect();
        fields.push(format!("\"warned\":[{}]", tags.join(",")));
    }
    let mut hex_field = |name: &str, v: Option<&[u8]>| {
        if let Some(v) = v {
            fields.push(format!("\"{name}\":\"{}\"", hex(v)));
        }
    };
    hex_field("reply_sha256", e.reply_sha256.as_ref().map(|v| v.as_slice()));
    hex_field("state_sha256", e.state_sha256.as_ref().map(|v| v.as_slice()));
    hex_field("prev", Some(&e.prev));
    hex_field("hash", Some(&e.hash()));
    format!("{{{}}}", fields.join(","))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    #[test]
    fn entries_round_trip_and_hash_their_content() {
        let mut e = AuditEntry {
            seq: 3,
            prev: [1; 32],
            outcome: AuditOutcome::Refused,
            request_sha256: Some([2; 32]),
            peer: Some([3; 33]),
            dbid: Some(9),
            msg_type: Some(19),
            rule: Some("commitment-retry-same".into()),
            detail: Some("a \"quoted\" detail".into()),
            reply_sha256: None,
            state_sha256: Some([4; 32]),
            warned: vec!["channel-delay-range".into(), "onchain-fee-range".into()],
            ..blank(1_700_000_000)
        };
        assert_eq!(AuditEntry::decode(&e.encode()).unwrap(), e);
        let h = e.hash();
        e.dbid = Some(10);
        assert_ne!(e.hash(), h);
        let line = to_json(&e);
        assert!(line.contains("\"rule\":\"commitment-retry-same\""), "{line}");
        assert!(line.contains("\\\"quoted\\\""), "{line}");
        assert!(serde_json::from_str::<serde_json::Value>(&line).is_ok(), "{line}");
        let mut bad = e.encode();
        bad[0] = 2;
        assert!(AuditEntry::decode(&bad).is_err());
        assert_eq!(decode_tip(&encode_tip(7, &[5; 32])).unwrap(), (7, [5; 32]));
        assert_eq!(clip(&"é".repeat(200)).len(), MAX_DETAIL);
    }
}
