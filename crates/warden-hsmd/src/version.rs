//! The version `warden-hsmd --version` prints.
//!
//! lightningd runs every subdaemon with `--version` at start-up and refuses to start unless
//! the output is its own version string followed by a newline. Warden prints
//! [`DEFAULT_CLN_VERSION`] (the Core Lightning build the hsmd recordings in
//! `warden-core/tests/data/cln-hsmd` came from) unless the environment variable
//! [`VERSION_ENV`] names another; set it to the output of `lightningd --version`.
//!
//! The alternative is to start lightningd with `--developer --dev-no-version-checks`, which
//! skips the comparison (developer builds only).

/// The Core Lightning version string printed by default.
pub const DEFAULT_CLN_VERSION: &str = "v26.06-258-g090f4b0e6";

/// The environment variable that overrides the printed version.
pub const VERSION_ENV: &str = "WARDEN_HSMD_VERSION";

/// The version string to print: `override_value` if given and not empty, else the default.
pub fn version_string(override_value: Option<&str>) -> &str {
    match override_value {
        Some(v) if !v.trim().is_empty() => v.trim(),
        _ => DEFAULT_CLN_VERSION,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_wins_unless_empty() {
        assert_eq!(version_string(None), DEFAULT_CLN_VERSION);
        assert_eq!(version_string(Some("")), DEFAULT_CLN_VERSION);
        assert_eq!(version_string(Some("v25.12\n")), "v25.12");
    }
}
