//! `warden run`'s configuration file: TOML, `--config FILE`, else `warden.toml` in the data
//! directory when it exists. Every key is optional and an unknown key is an error:
//!
//! ```toml
//! connect = "node.example:51735"   # the proxy's address
//! proxy-key = "02…"                # instead of the key `warden pair --proxy-key` pinned
//! heartbeat-timeout = 60           # seconds
//! max-backoff = 30                 # seconds
//! log-format = "json"              # or "text"
//! log-level = "info"               # error, warn, info or debug
//! metrics-listen = "127.0.0.1:9464" # Prometheus /metrics; off when absent
//! metrics-allow-remote = false      # true to allow a non-loopback metrics-listen
//!
//! [store]
//! # PostgreSQL replicas of the durable store (libpq connection strings); each is written
//! # before every reply. WARDEN_REPLICA_POSTGRES still adds one.
//! replicas = ["postgres://warden@db.example/warden"]
//! ```
//!
//! A value comes from, in order: the command line, the environment (`WARDEN_CONNECT`,
//! `WARDEN_LOG_FORMAT`, `WARDEN_LOG_LEVEL`, `WARDEN_METRICS_LISTEN`), this file, the default.
//! A replica's connection string may hold a password: keep this file mode 0600.

use std::path::Path;

use serde::Deserialize;

use crate::{CliError, LogFormat, LogLevel};

/// The file's name in the data directory.
pub const FILE_NAME: &str = "warden.toml";

/// The keys of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunConfig {
    /// The proxy's address.
    pub connect: Option<String>,
    /// The proxy's link key.
    pub proxy_key: Option<String>,
    /// Seconds of silence before the link is redialled.
    pub heartbeat_timeout: Option<u64>,
    /// The longest wait between two dials, in seconds.
    pub max_backoff: Option<u64>,
    /// The log's format.
    pub log_format: Option<LogFormat>,
    /// The log's level.
    pub log_level: Option<LogLevel>,
    /// The metrics endpoint's address (`IP:PORT`).
    pub metrics_listen: Option<String>,
    /// Whether `metrics_listen` may be a non-loopback address.
    pub metrics_allow_remote: Option<bool>,
    /// The `[store]` table.
    pub store: Option<StoreConfig>,
}

/// The `[store]` table: where the durable store is kept besides the local file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StoreConfig {
    /// PostgreSQL replicas (connection strings, `postgres://…` or `host=… dbname=…`).
    #[serde(default)]
    pub replicas: Vec<String>,
}

impl RunConfig {
    /// The configured replicas (none without a `[store]` table); an empty string is an error.
    pub fn replicas(&self) -> Result<Vec<String>, CliError> {
        let replicas = self.store.as_ref().map(|s| s.replicas.clone()).unwrap_or_default();
        if replicas.iter().any(|r| r.trim().is_empty()) {
            return Err(CliError::new(
                "[store] replicas holds an empty connection string: remove it, or write the \
                 replica's postgres://USER@HOST/DB",
            ));
        }
        Ok(replicas)
    }
}

/// Reads `explicit`, else `<data_dir>/warden.toml` if it exists, else nothing.
pub fn load(explicit: Option<&Path>, data_dir: &Path) -> Result<RunConfig, CliError> {
    let default = data_dir.join(FILE_NAME);
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None if default.exists() => default,
        None => return Ok(RunConfig::default()),
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::new(format!("cannot read the config {}: {e}", path.display())))?;
    parse(&text)
        .map_err(|e| CliError::new(format!("{} is not a valid warden config: {e}", path.display())))
}

/// Parses the file's text.
pub fn parse(text: &str) -> Result<RunConfig, String> {
    toml::from_str(text).map_err(|e| e.message().to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn keys_are_read_and_unknown_ones_refused() {
        let c = parse(
            "connect = \"h:1\"\nheartbeat-timeout = 5\nlog-format = \"json\"\nlog-level = \"debug\"",
        )
        .unwrap();
        assert_eq!(c.connect.as_deref(), Some("h:1"));
        assert_eq!(c.heartbeat_timeout, Some(5));
        assert!(matches!(c.log_format, Some(LogFormat::Json)));
        assert!(matches!(c.log_level, Some(LogLevel::Debug)));
        assert!(parse("conect = \"h:1\"").unwrap_err().contains("conect"));
        assert!(parse("log-level = \"loud\"").is_err());
        assert!(parse("").unwrap().connect.is_none());
    }

    #[test]
    fn metrics_and_store_keys() {
        let c = parse(
            "metrics-listen = \"127.0.0.1:9464\"\nmetrics-allow-remote = true\n[store]\n\
             replicas = [\"postgres://a@h/d\", \"host=h dbname=e\"]",
        )
        .unwrap();
        assert_eq!(c.metrics_listen.as_deref(), Some("127.0.0.1:9464"));
        assert_eq!(c.metrics_allow_remote, Some(true));
        assert_eq!(c.replicas().unwrap(), vec!["postgres://a@h/d", "host=h dbname=e"]);
        assert!(parse("").unwrap().replicas().unwrap().is_empty());
        assert!(parse("[store]\nreplicas = [\" \"]").unwrap().replicas().is_err());
        assert!(parse("[store]\nreplica = []").unwrap_err().contains("replica"));
    }

    #[test]
    fn the_example_config_parses() {
        let c = parse(include_str!("../../../contrib/warden.toml.example")).unwrap();
        assert_eq!(c.connect.as_deref(), Some("node.example.org:51735"));
        assert!(matches!(c.log_level, Some(LogLevel::Info)));
    }
}
