//! Warden's extension requests (`warden_wire::msg::warden`): the node-backup public key, the
//! release of the keys of blobs sealed to it, and the signer's status.
//!
//! ## Unseal
//!
//! A key is released for a blob only when its context is a node backup's
//! (`warden_core::policy::node::NODE_BACKUP_CONTEXT_PREFIX`) and the release keeps the keys
//! released in the last hour within the policy's `unseal-per-hour` (rule `node-unseal`). The
//! node-backup secret itself never leaves the signer: each key is HKDF of one blob's shared
//! point, and opens that blob only. Every release is in the audit trail (request digest:
//! the points and contexts asked) before the keys leave (`Signer::handle` flushes the trail
//! after an unseal).
//!
//! The hourly window is kept in memory: a restart of the signer empties it. In remote mode the
//! node cannot restart the signer; in local mode a node that can restart `warden-hsmd` can
//! already read the database the backups hold.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use warden_core::policy::node::check_unseal;
use warden_core::seal::ecies_derive_key;
use warden_wire::msg::{
    WardenNodeBackupPubkeyReply, WardenStatusReply, WardenUnseal, WardenUnsealReply,
};
use warden_wire::Secret;

use crate::channels::enforce;
use crate::signer::{encode, invalid, BadRequestError, Signer};

/// One hour, the window of `unseal-per-hour`.
const WINDOW_SECS: u64 = 3600;

/// The keys released in the last hour, as (time, count) per release.
#[derive(Debug, Default)]
pub(crate) struct UnsealLedger {
    releases: Mutex<VecDeque<(u64, u64)>>,
}

impl UnsealLedger {
    /// Drops the releases older than the window at `now` and returns what remains.
    fn released_since(releases: &mut VecDeque<(u64, u64)>, now: u64) -> u64 {
        while releases.front().is_some_and(|(t, _)| t.saturating_add(WINDOW_SECS) <= now) {
            releases.pop_front();
        }
        releases.iter().fold(0u64, |sum, (_, n)| sum.saturating_add(*n))
    }
}

fn now_unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// At most this many alarms, of at most [`ALARM_CHARS`] characters each, in a status reply
/// (which must fit a `u16`-counted field).
const MAX_ALARMS: usize = 16;
const ALARM_CHARS: usize = 300;

impl Signer {
    /// `warden_status`: the signer's health, as JSON: node id, channels set up, the store's
    /// head sequence and replicas, refusals and warnings by rule tag, open alarms.
    pub(crate) fn warden_status(&self) -> Result<Vec<u8>, BadRequestError> {
        let by_tag = |m: std::collections::BTreeMap<warden_core::policy::Rule, u64>| {
            m.into_iter()
                .map(|(r, n)| (r.tag().to_owned(), n.into()))
                .collect::<serde_json::Map<_, _>>()
        };
        let channels = self.channels.with_store(|s| s.channels_set_up());
        let (seq, replicas) = match self.audit_log().store_health() {
            Some((seq, r)) => (Some(seq), r),
            None => (None, Vec::new()),
        };
        let alarms: Vec<String> = self
            .audit_log()
            .open_alarms()
            .iter()
            .take(MAX_ALARMS)
            .map(|a| a.chars().take(ALARM_CHARS).collect())
            .collect();
        let status = serde_json::json!({
            "node_id": self.node_id.to_string(),
            "channels": channels,
            "store_seq": seq,
            "replicas": replicas
                .into_iter()
                .map(|(name, lagging)| serde_json::json!({ "name": name, "lagging": lagging }))
                .collect::<Vec<_>>(),
            "refusals": by_tag(self.policy_log().refusals()),
            "warnings": by_tag(self.policy_log().warnings()),
            "alarms": alarms,
        });
        encode(&WardenStatusReply { json: status.to_string().into_bytes() })
    }

    /// `warden_node_backup_pubkey`: the key node backups are sealed to.
    pub(crate) fn node_backup_pubkey(&self) -> Result<Vec<u8>, BadRequestError> {
        encode(&WardenNodeBackupPubkeyReply { pubkey: self.warden_keys.node_backup_pubkey() })
    }

    /// `warden_unseal`: the key of each blob, if policy allows the release.
    pub(crate) fn warden_unseal(&self, m: &WardenUnseal) -> Result<Vec<u8>, BadRequestError> {
        if m.items.is_empty() {
            return Err(invalid("warden_unseal asks for no key"));
        }
        let mut releases = self.unseals.releases.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_unix_secs();
        let released = UnsealLedger::released_since(&mut releases, now);
        let contexts = m.items.iter().map(|i| i.context.as_slice());
        enforce(&self.policy, check_unseal(&self.policy.limits, contexts, released))?;
        let keys = m
            .items
            .iter()
            .map(|item| {
                ecies_derive_key(self.warden_keys.node_backup_key(), &item.ephemeral, &item.context)
                    .map(|k| Secret::new(*k.expose_secret()))
                    .map_err(|e| invalid(format_args!("cannot derive a blob key: {e}")))
            })
            .collect::<Result<Vec<Secret>, BadRequestError>>()?;
        let reply = encode(&WardenUnsealReply { keys })?;
        let asked = u64::try_from(m.items.len()).unwrap_or(u64::MAX);
        releases.push_back((now, asked));
        Ok(reply)
    }
}
