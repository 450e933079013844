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
//! ```
//!
//! A value comes from, in order: the command line, the environment (`WARDEN_CONNECT`,
//! `WARDEN_LOG_FORMAT`, `WARDEN_LOG_LEVEL`), this file, the default.

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
    fn the_example_config_parses() {
        let c = parse(include_str!("../../../contrib/warden.toml.example")).unwrap();
        assert_eq!(c.connect.as_deref(), Some("node.example.org:51735"));
        assert!(matches!(c.log_level, Some(LogLevel::Info)));
    }
}
