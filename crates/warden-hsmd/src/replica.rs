//! Remote replicas of the durable store, and their reconciliation with the local file
//! (DESIGN.md §4; issue 5 point 5).
//!
//! The local redb file is the freshness anchor; a replica is any [`Store`] under the same store
//! id (in practice `warden-store`'s PostgreSQL backend, one table shared by many signers, each
//! under its own node id). It holds exactly the local file's records: sealed channel and node
//! records, the signed head, the audit entries, byte for byte. The replica server sees only
//! what the local file holds: sealed values under obfuscated names.
//!
//! ## Writes
//!
//! Every batch is committed to the local file (fsync) and then, the same operations, to each
//! replica, inside the store's persist path: the reply leaves only once every replica has
//! acknowledged (DESIGN.md §3, invariant 1). When a replica fails, the batch stays durable
//! locally, the request fails (no reply), and the replica is marked lagging: the next batch (or
//! the node's retry of the request, which writes nothing new) first catches it up by
//! re-sending what it lacks, and no reply leaves until that succeeds.
//!
//! ## Start
//!
//! [`reconcile`] compares the local head with each replica's:
//!
//! | replica | action |
//! |---|---|
//! | same head | serve ([`ReplicaAction::Equal`]) |
//! | empty, or verifies and is behind | re-send what it lacks, alarm ([`ReplicaAction::CaughtUp`]) |
//! | verifies, is ahead, continues the local history | adopt it locally, alarm ([`ReplicaAction::Adopted`]) |
//! | does not verify | `node-state-stale` ([`NodeStateStaleError::ReplicaInvalid`]) |
//! | same seq with another head, or a record the two wrote differently | `node-state-stale` ([`NodeStateStaleError::ReplicaDiverged`]) |
//! | unreachable | `node-state-unavailable` (no reply could be acknowledged) |
//!
//! "Verifies" is the local file's own startup check run on the replica's records: every
//! record's envelope, signature and decryption under this seed's keys, the head's signature and
//! store id, the record count and the set digest ([`crate::durable`]'s `load_snapshot`).
//! "Continues" means the later side is reachable from the earlier one by newer versions only:
//! every record of the earlier side is on the later side at the same version with the same
//! bytes, or at a higher version, or deleted; in particular every audit entry of the earlier
//! side is on the later side unchanged, which chains the two histories (`audit.rs`). A whole-file
//! rollback of the local redb file (an old copy put back) is therefore caught as "local behind"
//! and the replica adopted.
//!
//! Divergence stops the signer until an operator runs one of the explicit actions:
//! [`reconcile_adopt`] (replace the local file by a replica that verifies) or [`force_local`]
//! (replace a replica by the local file, which must verify). Each returns a [`ReconcileReport`]
//! for the caller to log.
//!
//! ## Configuration
//!
//! warden-hsmd in local mode reads one PostgreSQL connection string from
//! [`REPLICA_ENV`] (`WARDEN_REPLICA_POSTGRES`) at `init`; `warden run` passes its configured
//! replicas through `StoreChoice::Replicated`.

use std::fmt;
use std::fs;
use std::path::Path;

use warden_core::seal::{StoreId as SealStoreId, WardenKeys};
use warden_store::postgres::PgDatabase;
use warden_store::redb::{RedbDatabase, RedbStore, FILE_NAME};
use warden_store::{BackendError, Op, Record, Store, Version};
use warden_wire::NodeId;

use crate::durable::{
    load_snapshot, store_ids, NodeStateStaleError, OpenStoreError, Snapshot, STORE_DIR,
};

/// The environment variable naming a PostgreSQL replica (a libpq-style connection string).
pub const REPLICA_ENV: &str = "WARDEN_REPLICA_POSTGRES";

/// One remote copy of the store.
pub struct Replica {
    pub(crate) name: String,
    pub(crate) store: Box<dyn Store>,
    /// It missed a batch: catch it up before the next reply.
    pub(crate) lagging: bool,
}

impl fmt::Debug for Replica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replica")
            .field("name", &self.name)
            .field("lagging", &self.lagging)
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// A replica over any store; `store` must be confined to the node's store id
    /// ([`crate::durable::store_id_bytes`]). `name` appears in logs and errors: no password.
    pub fn new(name: impl Into<String>, store: Box<dyn Store>) -> Replica {
        Replica { name: name.into(), store, lagging: false }
    }

    /// A PostgreSQL replica of `node_id`'s store: connects with `url` (and migrates the
    /// schema).
    pub fn postgres(name: &str, url: &str, node_id: &NodeId) -> Result<Replica, OpenStoreError> {
        let (_, id) = store_ids(node_id)?;
        let db = PgDatabase::connect(url).map_err(|e| OpenStoreError::Replica {
            replica: name.to_string(),
            error: BackendError::new("connect to the replica", e),
        })?;
        Ok(Replica::new(name, Box::new(db.store(id))))
    }

    /// The replica's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The replicas named by the environment: [`REPLICA_ENV`], if set and not empty.
pub fn from_env(node_id: &NodeId) -> Result<Vec<Replica>, OpenStoreError> {
    match std::env::var(REPLICA_ENV) {
        Ok(url) if !url.trim().is_empty() => {
            Ok(vec![Replica::postgres(&format!("postgres ({REPLICA_ENV})"), &url, node_id)?])
        }
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(Vec::new()),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(OpenStoreError::ReplicaConfig(format!("{REPLICA_ENV} is not UTF-8")))
        }
    }
}

/// What reconciling with one replica did at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaAction {
    /// The replica's head equals the local head.
    Equal {
        /// The common head's sequence number.
        seq: u64,
    },
    /// The replica was behind (or empty) and was sent what it lacked.
    CaughtUp {
        /// The replica's head before (0: empty).
        from_seq: u64,
        /// The local head it now has.
        to_seq: u64,
        /// How many records were written or deleted on it.
        records: usize,
    },
    /// The local file was behind (an older copy, or empty) and took the replica's state.
    Adopted {
        /// The local head before.
        from_seq: u64,
        /// The replica's head, now the local one.
        to_seq: u64,
        /// How many records were written or deleted locally.
        records: usize,
    },
}

/// What the start did with each replica, for the caller to log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Each replica's name and what was done.
    pub actions: Vec<(String, ReplicaAction)>,
}

impl OpenReport {
    /// Whether a replica was adopted.
    pub fn adopted(&self) -> bool {
        self.actions.iter().any(|(_, a)| matches!(a, ReplicaAction::Adopted { .. }))
    }

    /// One line per replica that was not in step (everything but [`ReplicaAction::Equal`]).
    pub fn alarms(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|(name, action)| match action {
                ReplicaAction::Equal { .. } => None,
                ReplicaAction::CaughtUp { from_seq, to_seq, records } => Some(format!(
                    "replica {name} was behind (seq {from_seq}, local {to_seq}): \
                     re-sent {records} records"
                )),
                ReplicaAction::Adopted { from_seq, to_seq, records } => Some(format!(
                    "local store was behind (seq {from_seq}) replica {name} (seq {to_seq}), \
                     which verifies and continues it: adopted ({records} records); \
                     was the local file restored from an old copy?"
                )),
            })
            .collect()
    }
}

/// The operations that bring `older` to `newer`, when `older` is an earlier state of the same
/// history; else why not (the two have diverged).
pub(crate) fn diff(newer: &[Record], older: &[Record]) -> Result<Vec<Op>, String> {
    let mut ops = Vec::new();
    let mut old = older.iter().peekable();
    let mut new = newer.iter().peekable();
    loop {
        let order = match (new.peek(), old.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(n), Some(o)) => n.key.cmp(&o.key),
        };
        match order {
            std::cmp::Ordering::Less => {
                if let Some(n) = new.next() {
                    ops.push(Op::Put {
                        key: n.key.clone(),
                        expected_version: Version::ABSENT,
                        new_version: n.version,
                        value: n.value.clone(),
                    });
                }
            }
            std::cmp::Ordering::Greater => {
                if let Some(o) = old.next() {
                    ops.push(Op::Delete { key: o.key.clone(), expected_version: o.version });
                }
            }
            std::cmp::Ordering::Equal => {
                let (Some(n), Some(o)) = (new.next(), old.next()) else { break };
                if n.version > o.version {
                    ops.push(Op::Put {
                        key: n.key.clone(),
                        expected_version: o.version,
                        new_version: n.version,
                        value: n.value.clone(),
                    });
                } else if n.version < o.version {
                    return Err(format!(
                        "record {} is at version {} on the side behind, {} on the side ahead",
                        hex(&o.key),
                        o.version,
                        n.version
                    ));
                } else if n.value != o.value {
                    return Err(format!(
                        "record {} differs between the two at the same version {}",
                        hex(&o.key),
                        o.version
                    ));
                }
            }
        }
    }
    Ok(ops)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn commit_error(e: warden_store::CommitError) -> String {
    let detail = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
    format!("{e}: {detail}")
}

/// Sends a replica what it lacks of the local store; returns how many records changed.
pub(crate) fn catch_up(local: &RedbStore, replica: &Replica) -> Result<usize, String> {
    let ours = local.list(&[]).map_err(|e| format!("local store: {e}"))?;
    let theirs = replica.store.list(&[]).map_err(|e| format!("{e}"))?;
    let ops = diff(&ours, &theirs)?;
    if !ops.is_empty() {
        replica.store.commit(&ops).map_err(commit_error)?;
    }
    Ok(ops.len())
}

/// Reconciles the verified local state `snapshot` (of `local`) with `replica` at start; see
/// the module documentation. Adopting writes the replica's records to `local` in one batch;
/// the caller re-reads it.
pub(crate) fn reconcile(
    keys: &WardenKeys,
    store_id: &SealStoreId,
    local: &RedbStore,
    snapshot: &Snapshot,
    replica: &mut Replica,
    now: u64,
) -> Result<ReplicaAction, OpenStoreError> {
    let name = replica.name.clone();
    let unreachable =
        |error: BackendError| OpenStoreError::Replica { replica: name.clone(), error };
    let theirs = replica.store.list(&[]).map_err(unreachable)?;
    let ours = local.list(&[]).map_err(OpenStoreError::Read)?;
    let local_seq = if snapshot.empty { 0 } else { snapshot.head.head.seq };
    let diverged = |replica_seq: u64, reason: String| NodeStateStaleError::ReplicaDiverged {
        replica: name.clone(),
        local_seq,
        replica_seq,
        reason,
    };
    let replica_seq = if theirs.is_empty() {
        0
    } else {
        let snap = load_snapshot(keys, store_id, theirs.clone(), now).map_err(|e| {
            NodeStateStaleError::ReplicaInvalid { replica: name.clone(), reason: e.to_string() }
        })?;
        if snap.head.head.seq == local_seq {
            if snap.head == snapshot.head {
                return Ok(ReplicaAction::Equal { seq: local_seq });
            }
            return Err(diverged(local_seq, "same sequence number, different heads".into()).into());
        }
        snap.head.head.seq
    };
    if replica_seq < local_seq || (theirs.is_empty() && !snapshot.empty) {
        let ops = diff(&ours, &theirs).map_err(|reason| diverged(replica_seq, reason))?;
        replica.store.commit(&ops).map_err(|e| OpenStoreError::Replica {
            replica: name.clone(),
            error: BackendError::new("catch up the replica", commit_error(e)),
        })?;
        return Ok(ReplicaAction::CaughtUp {
            from_seq: replica_seq,
            to_seq: local_seq,
            records: ops.len(),
        });
    }
    if theirs.is_empty() {
        // Both empty.
        return Ok(ReplicaAction::Equal { seq: 0 });
    }
    // The replica is ahead: adopt it if it continues the local history.
    let ops = diff(&theirs, &ours).map_err(|reason| diverged(replica_seq, reason))?;
    local.commit(&ops).map_err(|e| {
        OpenStoreError::Read(BackendError::new("adopt the replica locally", commit_error(e)))
    })?;
    Ok(ReplicaAction::Adopted { from_seq: local_seq, to_seq: replica_seq, records: ops.len() })
}

/// What an operator's reconciliation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileReport {
    /// The replica involved.
    pub replica: String,
    /// What was replaced by what.
    pub action: &'static str,
    /// The replaced side's head seq, if it had a readable head.
    pub replaced_seq: Option<u64>,
    /// The kept side's head seq.
    pub kept_seq: u64,
    /// The records now on the replaced side.
    pub records: usize,
}

impl fmt::Display for ReconcileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let replaced = self.replaced_seq.map_or("unknown".to_string(), |s| s.to_string());
        write!(
            f,
            "{} (replica {}): the side at seq {replaced} was replaced by seq {} ({} records)",
            self.action, self.replica, self.kept_seq, self.records
        )
    }
}

/// The head seq of a list of records, if it has a readable head.
fn head_seq(records: &[Record]) -> Option<u64> {
    records.iter().find(|r| r.key == crate::durable::HEAD_KEY).map(|r| r.version.get())
}

/// Operator action: replaces the local store of `node_id` in `<lightning_dir>/warden/` by the
/// state of `replica`, which must verify under `keys` (diverged or not, ahead or not). The
/// signer must be stopped (the file's lock is checked). The new file is written beside the old
/// one and renamed over it, so a crash leaves one or the other whole.
pub fn reconcile_adopt(
    lightning_dir: &Path,
    node_id: &NodeId,
    keys: &WardenKeys,
    replica: &Replica,
) -> Result<ReconcileReport, OpenStoreError> {
    let (store_id, backend_id) = store_ids(node_id)?;
    let dir = lightning_dir.join(STORE_DIR);
    let theirs = replica
        .store
        .list(&[])
        .map_err(|error| OpenStoreError::Replica { replica: replica.name.clone(), error })?;
    if theirs.is_empty() {
        return Err(NodeStateStaleError::ReplicaInvalid {
            replica: replica.name.clone(),
            reason: "the replica is empty: there is nothing to adopt".into(),
        }
        .into());
    }
    let snap = load_snapshot(keys, &store_id, theirs.clone(), 0).map_err(|e| {
        NodeStateStaleError::ReplicaInvalid { replica: replica.name.clone(), reason: e.to_string() }
    })?;
    let replaced_seq = {
        let db = RedbDatabase::open(&dir).map_err(OpenStoreError::Open)?;
        let ours = db.store(backend_id.clone()).list(&[]).map_err(OpenStoreError::Read)?;
        head_seq(&ours)
    };
    replace_local(&dir, backend_id, &theirs, None)?;
    Ok(ReconcileReport {
        replica: replica.name.clone(),
        action: "adopted the replica: local store replaced",
        replaced_seq,
        kept_seq: snap.head.head.seq,
        records: theirs.len(),
    })
}

fn io_error(context: &'static str) -> impl Fn(std::io::Error) -> OpenStoreError {
    move |e: std::io::Error| OpenStoreError::Read(BackendError::new(context, e))
}

/// Replaces the store file in `dir` by one holding exactly `records` (under `backend_id`):
/// written beside it (`adopt.tmp/`), fsync'd, and renamed over it, so a crash leaves one or the
/// other whole. With `keep_old`, the file replaced is first kept under that name in `dir`.
fn replace_local(
    dir: &Path,
    backend_id: warden_store::StoreId,
    records: &[Record],
    keep_old: Option<&str>,
) -> Result<(), OpenStoreError> {
    let tmp = dir.join("adopt.tmp");
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_error("remove an old adopt.tmp"))?;
    }
    {
        let db = RedbDatabase::open(&tmp).map_err(OpenStoreError::Open)?;
        let ops: Vec<Op> = records
            .iter()
            .map(|r| Op::Put {
                key: r.key.clone(),
                expected_version: Version::ABSENT,
                new_version: r.version,
                value: r.value.clone(),
            })
            .collect();
        db.store(backend_id).commit(&ops).map_err(|e| {
            OpenStoreError::Read(BackendError::new("write the adopted state", commit_error(e)))
        })?;
    }
    if let Some(name) = keep_old {
        if dir.join(FILE_NAME).exists() {
            fs::rename(dir.join(FILE_NAME), dir.join(name))
                .map_err(io_error("keep the replaced file"))?;
        }
    }
    fs::rename(tmp.join(FILE_NAME), dir.join(FILE_NAME))
        .map_err(io_error("rename the adopted file"))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_error("sync the store directory"))?;
    fs::remove_dir_all(&tmp).map_err(io_error("remove adopt.tmp"))?;
    Ok(())
}

/// Operator action: replaces the state of `replica` by the local store of `node_id`, which
/// must verify under `keys`. The signer must be stopped. The replica is emptied in one batch
/// and written in a second: a crash between leaves it empty, which the next start re-sends.
pub fn force_local(
    lightning_dir: &Path,
    node_id: &NodeId,
    keys: &WardenKeys,
    replica: &Replica,
) -> Result<ReconcileReport, OpenStoreError> {
    let (store_id, backend_id) = store_ids(node_id)?;
    let db = RedbDatabase::open(&lightning_dir.join(STORE_DIR)).map_err(OpenStoreError::Open)?;
    let ours = db.store(backend_id).list(&[]).map_err(OpenStoreError::Read)?;
    let snap = load_snapshot(keys, &store_id, ours.clone(), 0)?;
    if snap.empty {
        return Err(OpenStoreError::ReplicaConfig(
            "the local store is empty: forcing it would empty the replica".into(),
        ));
    }
    let unreachable =
        |error: BackendError| OpenStoreError::Replica { replica: replica.name.clone(), error };
    let theirs = replica.store.list(&[]).map_err(unreachable)?;
    let write = |ops: &[Op], context: &'static str| {
        replica.store.commit(ops).map_err(|e| OpenStoreError::Replica {
            replica: replica.name.clone(),
            error: BackendError::new(context, commit_error(e)),
        })
    };
    let deletes: Vec<Op> = theirs
        .iter()
        .map(|r| Op::Delete { key: r.key.clone(), expected_version: r.version })
        .collect();
    write(&deletes, "empty the replica")?;
    let puts: Vec<Op> = ours
        .iter()
        .map(|r| Op::Put {
            key: r.key.clone(),
            expected_version: Version::ABSENT,
            new_version: r.version,
            value: r.value.clone(),
        })
        .collect();
    write(&puts, "write the local state to the replica")?;
    Ok(ReconcileReport {
        replica: replica.name.clone(),
        action: "forced the local store: replica replaced",
        replaced_seq: head_seq(&theirs),
        kept_seq: snap.head.head.seq,
        records: ours.len(),
    })
}

/// The name under which [`restore`] with `force` keeps the local file it replaced (in the
/// store directory).
pub const REPLACED_FILE_NAME: &str = "warden-store.redb.before-restore";

/// What [`restore`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreReport {
    /// The replica restored from.
    pub replica: String,
    /// The restored head's sequence number (before the restore's own audit event).
    pub seq: u64,
    /// The records copied.
    pub records: usize,
    /// The channels in the restored state.
    pub channels: usize,
    /// The audit entries verified and copied.
    pub audit_entries: usize,
    /// The local store replaced (`force`): its record count and head seq, if it had one.
    pub replaced: Option<(usize, Option<u64>)>,
}

impl fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "restored from replica {}: head seq {}, {} records ({} channels, {} audit entries), \
             every record and the signed head verified with the seed's keys",
            self.replica, self.seq, self.records, self.channels, self.audit_entries
        )?;
        if let Some((records, seq)) = self.replaced {
            let seq = seq.map_or("no readable head".to_string(), |s| format!("head seq {s}"));
            write!(
                f,
                "; the local store it replaced ({records} records, {seq}) is kept as \
                 {REPLACED_FILE_NAME}"
            )?;
        }
        Ok(())
    }
}

impl RestoreReport {
    /// The audit event of the restore (short: an entry's detail is clipped at 240 bytes).
    pub fn event(&self) -> String {
        let replaced = match self.replaced {
            Some((records, seq)) => format!(
                "; replaced a local store of {records} records (head seq {}), kept as {}",
                seq.map_or("none".to_string(), |s| s.to_string()),
                REPLACED_FILE_NAME
            ),
            None => String::new(),
        };
        format!(
            "restored from the replica at seq {} ({} records, verified){replaced}; replica {}",
            self.seq, self.records, self.replica
        )
    }
}

/// Why [`restore`] refused, or failed.
#[derive(Debug)]
pub enum RestoreError {
    /// The replica holds no state for this node id (wrong database, or wrong seed).
    EmptyReplica {
        /// The replica's name.
        replica: String,
    },
    /// The replica's state does not verify under the seed's keys: nothing was written.
    Invalid {
        /// The replica's name.
        replica: String,
        /// What does not verify.
        reason: String,
    },
    /// The local store holds state and `force` was not given: nothing was written.
    LocalNotEmpty {
        /// Its record count.
        records: usize,
        /// Its head seq, if it has a readable head.
        seq: Option<u64>,
    },
    /// The local store or the replica could not be read or written.
    Store(OpenStoreError),
    /// The restored store was written, but starting on it did not find the replica equal
    /// (the replica changed meanwhile?): what the start did instead.
    NotEqual(String),
    /// The restored store was written but the restore's audit event was not.
    Audit(String),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::EmptyReplica { replica } => write!(
                f,
                "replica {replica} holds no state for this node id (is it the right database, \
                 and the right seed?): nothing to restore"
            ),
            RestoreError::Invalid { replica, reason } => write!(
                f,
                "replica {replica} does not verify with this seed's keys: {reason}; nothing was \
                 written"
            ),
            RestoreError::LocalNotEmpty { records, seq } => {
                let seq = seq.map_or("no readable head".to_string(), |s| format!("head seq {s}"));
                write!(
                    f,
                    "the local store is not empty ({records} records, {seq}): restoring would \
                     overwrite it; nothing was written (force it only if that store is lost or \
                     older than the replica)"
                )
            }
            RestoreError::Store(e) => write!(f, "{e}"),
            RestoreError::NotEqual(what) => write!(
                f,
                "the restored store was written, but the start on it did not find the replica \
                 equal: {what}"
            ),
            RestoreError::Audit(e) => {
                write!(f, "the restored store was written, but its audit event was not: {e}")
            }
        }
    }
}

impl std::error::Error for RestoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RestoreError::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// Rebuilds the local store of `node_id` in `<lightning_dir>/warden/` from `replica` and the
/// seed's `keys` (`warden restore`). The signer must be stopped (the file's lock is checked).
///
/// 1. Every record of the replica and its signed head are verified (envelopes, signatures,
///    decryption, the set digest, every channel record's decoding) and its audit trail walked
///    from entry 1 to the tip ([`crate::audit::verify_in`]); a replica that does not verify is
///    refused, naming what failed, and nothing is written.
/// 2. A local store that holds anything is refused unless `force`; with `force` it is kept
///    beside the new one as [`REPLACED_FILE_NAME`].
/// 3. The records are written to a new file renamed over the old one (a crash leaves one or
///    the other whole).
/// 4. The store is opened as the signer opens it, with the replica: they must be equal. The
///    restore is then recorded as an audit event, written to both in one batch, so the next
///    start of the signer finds them equal and serves.
///
/// Returns what was done and the opened store (for its channels; drop it before starting the
/// signer).
pub fn restore(
    lightning_dir: &Path,
    node_id: &NodeId,
    keys: WardenKeys,
    replica: Replica,
    force: bool,
    entropy: &mut dyn warden_core::rng::EntropySource,
    clock: Box<dyn crate::durable::Clock>,
) -> Result<(RestoreReport, crate::durable::SealedRedbChannelStore), RestoreError> {
    let (_, backend_id) = store_ids(node_id).map_err(RestoreError::Store)?;
    let name = replica.name.clone();
    let theirs = replica.store.list(&[]).map_err(|error| {
        RestoreError::Store(OpenStoreError::Replica { replica: name.clone(), error })
    })?;
    if theirs.is_empty() {
        return Err(RestoreError::EmptyReplica { replica: name });
    }
    let trail = crate::audit::verify_in(replica.store.as_ref(), node_id, &keys)
        .map_err(|e| RestoreError::Invalid { replica: name.clone(), reason: e.to_string() })?;
    let dir = lightning_dir.join(STORE_DIR);
    let ours = {
        let db =
            RedbDatabase::open(&dir).map_err(|e| RestoreError::Store(OpenStoreError::Open(e)))?;
        db.store(backend_id.clone())
            .list(&[])
            .map_err(|e| RestoreError::Store(OpenStoreError::Read(e)))?
    };
    let replaced = match ours.is_empty() {
        true => None,
        false if !force => {
            return Err(RestoreError::LocalNotEmpty { records: ours.len(), seq: head_seq(&ours) })
        }
        false => Some((ours.len(), head_seq(&ours))),
    };
    replace_local(&dir, backend_id, &theirs, replaced.map(|_| REPLACED_FILE_NAME))
        .map_err(RestoreError::Store)?;
    let store = crate::durable::SealedRedbChannelStore::open_with_replicas(
        lightning_dir,
        node_id,
        keys,
        entropy,
        clock,
        vec![replica],
    )
    .map_err(RestoreError::Store)?;
    if let Some(other) = store.open_report().alarms().into_iter().next() {
        return Err(RestoreError::NotEqual(other));
    }
    let report = RestoreReport {
        replica: name,
        seq: trail.head_seq,
        records: theirs.len(),
        channels: crate::channels::ChannelStore::states(&store).len(),
        audit_entries: trail.entries.len(),
        replaced,
    };
    store.record_event(&report.event()).map_err(|e| RestoreError::Audit(e.to_string()))?;
    Ok((report, store))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    fn rec(key: &[u8], version: u64, value: &[u8]) -> Record {
        Record { key: key.to_vec(), version: Version::new(version), value: value.to_vec() }
    }

    #[test]
    fn diff_brings_the_older_side_forward_and_refuses_divergence() {
        let older = vec![rec(b"a", 1, b"a1"), rec(b"b", 2, b"b2"), rec(b"c", 1, b"c1")];
        let newer = vec![rec(b"a", 1, b"a1"), rec(b"b", 3, b"b3"), rec(b"d", 1, b"d1")];
        let ops = diff(&newer, &older).unwrap();
        assert_eq!(
            ops,
            vec![
                Op::Put {
                    key: b"b".to_vec(),
                    expected_version: Version::new(2),
                    new_version: Version::new(3),
                    value: b"b3".to_vec()
                },
                Op::Delete { key: b"c".to_vec(), expected_version: Version::new(1) },
                Op::Put {
                    key: b"d".to_vec(),
                    expected_version: Version::ABSENT,
                    new_version: Version::new(1),
                    value: b"d1".to_vec()
                },
            ]
        );
        assert!(diff(&older, &older).unwrap().is_empty());
        // The "older" side is ahead on a key, or wrote the same version differently.
        assert!(diff(&older, &newer).is_err());
        let other = vec![rec(b"a", 1, b"XX"), rec(b"b", 3, b"b3")];
        assert!(diff(&other, &older).unwrap_err().contains("same version"));
    }
}
