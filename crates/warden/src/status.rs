//! `status.json`: the snapshot `warden run` keeps in its data directory, and `warden status`,
//! which reads it with the other files of the data directory.
//!
//! `warden run` is the only process that opens the store (redb admits one), and the operator
//! commands need no connection to it: so the daemon writes what an operator asks about — the
//! link, the requests answered and refused, the refusals by rule and the latest ones, the
//! channels it served — to `<data dir>/status.json` (mode 0600, replaced atomically) every
//! [`INTERVAL`], at each link change and at each refusal. `warden status` prints it with what
//! it finds itself: the node id (derived from the seed), the pinned proxy key, the pending
//! approvals and the policy file.
//!
//! The file is versioned (`"version": 1`); a reader ignores keys it does not know.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::datadir;
use crate::CliError;

/// The file's name in the data directory.
pub const FILE_NAME: &str = "status.json";
/// How often `warden run` rewrites it (also at each link change and refusal).
pub const INTERVAL: Duration = Duration::from_secs(10);
/// A snapshot older than this (three intervals) is from a signer that is no longer running.
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// The format's version.
pub const VERSION: u32 = 1;
/// How many of the latest refusals the snapshot keeps.
pub const RECENT: usize = 20;

/// What `warden run` reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// The format's version ([`VERSION`]).
    pub version: u32,
    /// Grows by one at each write.
    pub sequence: u64,
    /// When it was written (seconds since the Unix epoch).
    pub written_at: u64,
    /// When this `warden run` started.
    pub started_at: u64,
    /// Its process id.
    pub pid: u32,
    /// The node id, once the proxy's `init` arrived.
    pub node_id: Option<String>,
    /// The network of that `init`.
    pub network: Option<String>,
    /// The link to the proxy.
    pub link: Link,
    /// Requests answered with a signature or a value.
    pub answered: u64,
    /// Requests refused (policy or otherwise).
    pub refused: u64,
    /// Policy refusals by rule tag, since `warden run` started.
    pub refusals_by_rule: BTreeMap<String, u64>,
    /// Demoted rules that would have refused, by tag.
    pub warnings_by_rule: BTreeMap<String, u64>,
    /// The latest refusals, oldest first.
    pub recent_refusals: Vec<Refusal>,
    /// The channels this `warden run` served requests of since it started.
    pub channels: Vec<ChannelSummary>,
}

/// The link's state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Link {
    /// The proxy's address.
    pub proxy: String,
    /// Whether the link is up.
    pub connected: bool,
    /// When it last came up or went down.
    pub since: u64,
    /// How many times it came up.
    pub connects: u64,
    /// Why it last went down, if it did.
    pub last_error: Option<String>,
}

/// One refusal.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Refusal {
    /// When.
    pub at: u64,
    /// The rule's tag, for a policy refusal.
    pub rule: Option<String>,
    /// The hsmd message type refused.
    pub msg_type: u16,
    /// The channel's database id (0: the node's own request).
    pub dbid: u64,
    /// What the signer answered.
    pub reason: String,
}

/// A channel as the signer holds it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChannelSummary {
    /// The peer's node id.
    pub peer: String,
    /// lightningd's database id of the channel.
    pub dbid: u64,
    /// `"new"` (not set up), `"open"`, `"closing"` (a close was signed).
    pub state: String,
    /// The channel's value, once set up.
    pub value_sat: Option<u64>,
    /// The funding outpoint, once set up.
    pub funding: Option<String>,
    /// Whether we opened it.
    pub outbound: Option<bool>,
    /// The number of the peer's next commitment.
    pub counterparty_next_commitment: u64,
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The rule tag of a refusal's text (`"... refused by close-destination: ..."`).
pub fn rule_tag(text: &str) -> Option<String> {
    let (_, rest) = text.split_once("refused by ")?;
    let tag: String = rest
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .collect();
    (!tag.is_empty()).then_some(tag)
}

/// Writes `snapshot` to `<dir>/status.json` (atomically, mode 0600).
pub fn write(dir: &Path, snapshot: &Snapshot) -> Result<(), String> {
    let text = serde_json::to_string_pretty(snapshot).map_err(|e| e.to_string())?;
    datadir::write_private(dir, FILE_NAME, format!("{text}\n").as_bytes())
        .map_err(|e| e.to_string())
}

/// Reads `<dir>/status.json`, if there is one.
pub fn read(dir: &Path) -> Result<Option<Snapshot>, CliError> {
    let path = dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            CliError::new(format!("{} is not a status snapshot: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::new(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Whether the process that wrote `snapshot` still runs and wrote it recently.
pub fn is_live(snapshot: &Snapshot) -> bool {
    let fresh = now().saturating_sub(snapshot.written_at) <= STALE_AFTER.as_secs();
    fresh && Path::new(&format!("/proc/{}", snapshot.pid)).exists()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn round_trip_and_tags() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        let mut s = Snapshot { version: VERSION, pid: std::process::id(), ..Snapshot::default() };
        s.written_at = now();
        s.refusals_by_rule.insert("close-value".into(), 2);
        write(dir.path(), &s).unwrap();
        let back = read(dir.path()).unwrap().unwrap();
        assert_eq!(back.refusals_by_rule.get("close-value"), Some(&2));
        assert!(is_live(&back));
        assert_eq!(
            rule_tag("refused by close-destination: x").as_deref(),
            Some("close-destination")
        );
        assert_eq!(rule_tag("no"), None);
    }
}
