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
    /// The store's head and replicas, once the signer is initialised.
    #[serde(default)]
    pub store: Option<StoreStatus>,
    /// The metrics endpoint's URL, when it is on.
    #[serde(default)]
    pub metrics: Option<String>,
}

/// The durable store as `warden run` holds it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StoreStatus {
    /// The sequence number of the store's signed head.
    pub head_seq: u64,
    /// Each replica (named without its password) and its health.
    pub replicas: Vec<ReplicaStatus>,
    /// What reconciling with the replicas at start found out of step.
    #[serde(default)]
    pub alarms: Vec<String>,
}

/// One replica of the store.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReplicaStatus {
    /// Its name (where it is configured; never the connection string).
    pub name: String,
    /// Whether it missed a batch and waits to be caught up (no reply leaves until it is).
    pub lagging: bool,
}

/// The `warden status` lines on the store's head, its replicas and the metrics endpoint.
pub fn store_lines(s: &Snapshot) -> String {
    let mut out = String::new();
    match &s.store {
        None => out.push_str("Store head:      not open yet (opened at the proxy's init)\n"),
        Some(store) => {
            out.push_str(&format!("Store head:      sequence {}\n", store.head_seq));
            if store.replicas.is_empty() {
                out.push_str(
                    "Replicas:        none (set [store] replicas in warden.toml, or \
                     WARDEN_REPLICA_POSTGRES)\n",
                );
            }
            for r in &store.replicas {
                let health = if r.lagging {
                    "LAGGING: it missed a batch; no reply leaves until it is caught up (is it \
                     reachable?)"
                } else {
                    "in step"
                };
                out.push_str(&format!("Replica:         {}: {health}\n", r.name));
            }
            for a in &store.alarms {
                out.push_str(&format!("Replica alarm:   {a}\n"));
            }
        }
    }
    if let Some(url) = &s.metrics {
        out.push_str(&format!("Metrics:         {url}\n"));
    }
    out
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
        // An older snapshot, without the store and metrics keys, still reads.
        let old = r#"{"version":1,"sequence":1,"written_at":0,"started_at":0,"pid":1,
            "node_id":null,"network":null,"link":{"proxy":"","connected":false,"since":0,
            "connects":0,"last_error":null},"answered":0,"refused":0,"refusals_by_rule":{},
            "warnings_by_rule":{},"recent_refusals":[],"channels":[]}"#;
        let old: Snapshot = serde_json::from_str(old).unwrap();
        assert!(old.store.is_none());
        assert!(store_lines(&old).contains("not open yet"));
    }

    #[test]
    fn store_lines_show_replica_health() {
        let s = Snapshot {
            store: Some(StoreStatus {
                head_seq: 42,
                replicas: vec![
                    ReplicaStatus { name: "postgres (store.replicas[0])".into(), lagging: false },
                    ReplicaStatus {
                        name: "postgres (WARDEN_REPLICA_POSTGRES)".into(),
                        lagging: true,
                    },
                ],
                alarms: vec!["replica x was behind".into()],
            }),
            metrics: Some("http://127.0.0.1:9464/metrics".into()),
            ..Snapshot::default()
        };
        let text = store_lines(&s);
        assert!(text.contains("Store head:      sequence 42"), "{text}");
        assert!(text.contains("postgres (store.replicas[0]): in step"), "{text}");
        assert!(text.contains("postgres (WARDEN_REPLICA_POSTGRES): LAGGING"), "{text}");
        assert!(text.contains("Replica alarm:   replica x was behind"), "{text}");
        assert!(text.contains("Metrics:         http://127.0.0.1:9464/metrics"), "{text}");
    }
}
