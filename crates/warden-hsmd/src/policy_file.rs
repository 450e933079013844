//! The operator's policy file: TOML, every key optional (an absent key keeps the default of
//! the network lightningd runs on: [`PolicyConfig::mainnet`] or
//! [`PolicyConfig::test_network`]), unknown keys refused so that a typo never silently keeps
//! a default.
//!
//! Where it is read from, at `init`: the file named by the environment variable
//! [`POLICY_FILE_ENV`] if set (lightningd passes its environment to hsmd), else
//! `<lightning dir>/warden/policy.toml` if it exists, else the defaults. A file that does not
//! parse, names an unknown rule, demotes a hard rule or sets an impossible bound stops the
//! signer at start with a sentence that says which key and why.
//!
//! ```toml
//! [limits]
//! min-to-self-delay = 144        # blocks
//! max-to-self-delay = 2016
//! min-feerate = 253              # sat/kw
//! max-feerate = 25000
//! max-htlcs = 483
//! max-htlc-inflight-sat = 16777216
//! max-channel-value-sat = 1000000000
//! max-sweep-feerate = 100000     # sat/kw
//! max-push-sat = 0               # value given to the peer when we open
//! max-channels = 10000
//! onchain-fee-per-day-sat = 1000000  # RBF/CPFP bumps of one spend counted once; "unlimited"
//! unseal-per-hour = 200000       # node-backup keys released by `warden unseal`; "unlimited"
//!
//! [allowlist]
//! # Destinations of ours outside the wallet: withdrawals, closes and sweeps may pay them.
//! addresses = ["bc1q..."]
//! xpubs = ["xpub..."]            # account keys: receive and change chains, P2WPKH/P2SH/P2TR
//! xpub-window = 1000             # addresses per chain
//!
//! [payment]
//! payees = ["02..."]             # node ids paid without a velocity charge
//! velocity-per-hour-sat = 250000 # auto-approved outgoing value; "unlimited" lifts it
//! velocity-per-day-sat = 1000000
//! fee-cap-base-msat = 10000      # routing fee cap: max(base, ppm of the amount)
//! fee-cap-ppm = 10000
//! min-cltv-delta = 34            # blocks between a forwarded HTLC's expiries
//! invoice-clock-skew-secs = 300
//! keysend-approval-secs = 3600
//! max-tracked-payments = 10000
//! trimmed-outflow-per-day-sat = 5000000  # value leaving us without a visible htlc (dust)
//!
//! [enforcement]
//! # Demote a tag, or every soft rule of a prefix, to a logged warning.
//! warn = ["commitment-fee-range", "payment-*"]
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use bitcoin::Network;
use serde::Deserialize;
use warden_core::keys::NodeId;
use warden_core::policy::onchain::Allowlist;
use warden_core::policy::payment::PaymentLimits;
use warden_core::policy::{Limits, PolicyConfig};
use warden_core::units::{FeeratePerKw, Msat, Sat};

/// The environment variable naming the policy file.
pub const POLICY_FILE_ENV: &str = "WARDEN_POLICY_FILE";

/// The policy file's name in `<lightning dir>/warden/`.
pub const POLICY_FILE_NAME: &str = "policy.toml";

/// Why a policy file was refused.
#[derive(Debug)]
pub struct PolicyFileError {
    /// The file, if the policy came from one.
    pub path: Option<PathBuf>,
    /// What is wrong, as a sentence.
    pub reason: String,
}

impl fmt::Display for PolicyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "policy file {}: {}", p.display(), self.reason),
            None => write!(f, "policy: {}", self.reason),
        }
    }
}

impl std::error::Error for PolicyFileError {}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PolicyFile {
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    allowlist: AllowlistSection,
    #[serde(default)]
    payment: PaymentSection,
    #[serde(default)]
    enforcement: EnforcementSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AllowlistSection {
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    xpubs: Vec<String>,
    xpub_window: Option<u32>,
}

/// How many receive and change addresses of each allowlisted xpub are allowlisted by default.
pub const DEFAULT_XPUB_WINDOW: u32 = 1000;

/// A velocity: satoshis, or `"unlimited"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Velocity {
    Sat(u64),
    Word(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PaymentSection {
    #[serde(default)]
    payees: Vec<String>,
    velocity_per_hour_sat: Option<Velocity>,
    velocity_per_day_sat: Option<Velocity>,
    fee_cap_base_msat: Option<u64>,
    fee_cap_ppm: Option<u32>,
    min_cltv_delta: Option<u32>,
    invoice_clock_skew_secs: Option<u64>,
    keysend_approval_secs: Option<u64>,
    max_tracked_payments: Option<usize>,
    trimmed_outflow_per_day_sat: Option<Velocity>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct LimitsSection {
    min_to_self_delay: Option<u16>,
    max_to_self_delay: Option<u16>,
    min_feerate: Option<u32>,
    max_feerate: Option<u32>,
    max_htlcs: Option<usize>,
    max_htlc_inflight_sat: Option<u64>,
    max_channel_value_sat: Option<u64>,
    max_sweep_feerate: Option<u32>,
    max_push_sat: Option<u64>,
    max_channels: Option<usize>,
    onchain_fee_per_day_sat: Option<Velocity>,
    unseal_per_hour: Option<Velocity>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct EnforcementSection {
    #[serde(default)]
    warn: Vec<String>,
}

/// The protocol's ceiling on HTLCs per commitment (BOLT 2: `max_accepted_htlcs` <= 483).
const PROTOCOL_MAX_HTLCS: usize = 483;

/// The defaults of `network`.
pub fn defaults(network: Network) -> PolicyConfig {
    match network {
        Network::Bitcoin => PolicyConfig::mainnet(),
        _ => PolicyConfig::test_network(),
    }
}

/// The policy of `text` (a policy file's content) over the defaults of `network`.
pub fn parse(text: &str, network: Network) -> Result<PolicyConfig, String> {
    let file: PolicyFile = toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())?;
    let mut config = defaults(network);
    apply_limits(&mut config.limits, &file.limits)?;
    config.allowlist =
        Allowlist::from_addresses(network, file.allowlist.addresses.iter().map(String::as_str))
            .map_err(|e| format!("allowlist.addresses: {e}"))?;
    let window = file.allowlist.xpub_window.unwrap_or(DEFAULT_XPUB_WINDOW);
    if window > 100_000 {
        return Err(format!("allowlist.xpub-window ({window}) is above 100000"));
    }
    if !file.allowlist.xpubs.is_empty() {
        let secp = secp256k1::Secp256k1::verification_only();
        for xpub in &file.allowlist.xpubs {
            config
                .allowlist
                .add_xpub(&secp, network, xpub, window)
                .map_err(|e| format!("allowlist.xpubs: {e}"))?;
        }
    }
    apply_payment(&mut config.payment, &file.payment)?;
    for pattern in &file.enforcement.warn {
        config.enforcement.demote(pattern).map_err(|e| format!("enforcement.warn: {e}"))?;
    }
    Ok(config)
}

fn apply_limits(limits: &mut Limits, section: &LimitsSection) -> Result<(), String> {
    let LimitsSection {
        min_to_self_delay,
        max_to_self_delay,
        min_feerate,
        max_feerate,
        max_htlcs,
        max_htlc_inflight_sat,
        max_channel_value_sat,
        max_sweep_feerate,
        max_push_sat,
        max_channels,
        ref onchain_fee_per_day_sat,
        ref unseal_per_hour,
    } = *section;
    if let Some(v) = min_to_self_delay {
        limits.min_to_self_delay = v;
    }
    if let Some(v) = max_to_self_delay {
        limits.max_to_self_delay = v;
    }
    if let Some(v) = min_feerate {
        limits.min_feerate = FeeratePerKw(v);
    }
    if let Some(v) = max_feerate {
        limits.max_feerate = FeeratePerKw(v);
    }
    if let Some(v) = max_htlcs {
        limits.max_htlcs = v;
    }
    if let Some(v) = max_htlc_inflight_sat {
        limits.max_htlc_inflight =
            Msat(v.checked_mul(1000).ok_or("limits.max-htlc-inflight-sat is too large")?);
    }
    if let Some(v) = max_channel_value_sat {
        limits.max_channel_value = Sat(v);
    }
    if let Some(v) = max_sweep_feerate {
        limits.max_sweep_feerate = FeeratePerKw(v);
    }
    if let Some(v) = max_push_sat {
        limits.max_push = Sat(v);
    }
    if let Some(v) = max_channels {
        limits.max_channels = v;
    }
    if let Some(limit) = budget("limits.onchain-fee-per-day-sat", onchain_fee_per_day_sat)? {
        limits.max_onchain_fee_per_day = limit.map(Sat);
    }
    if let Some(limit) = budget("limits.unseal-per-hour", unseal_per_hour)? {
        limits.max_unseal_per_hour = limit;
    }
    if limits.max_sweep_feerate.0 < limits.max_feerate.0 {
        return Err(format!(
            "limits.max-sweep-feerate ({}) is below limits.max-feerate ({}): a commitment \
             signed at the cap could not be swept",
            limits.max_sweep_feerate.0, limits.max_feerate.0
        ));
    }
    if limits.min_to_self_delay > limits.max_to_self_delay {
        return Err(format!(
            "limits.min-to-self-delay ({}) is above limits.max-to-self-delay ({})",
            limits.min_to_self_delay, limits.max_to_self_delay
        ));
    }
    if limits.min_feerate.0 > limits.max_feerate.0 {
        return Err(format!(
            "limits.min-feerate ({}) is above limits.max-feerate ({})",
            limits.min_feerate.0, limits.max_feerate.0
        ));
    }
    if limits.min_feerate.0 < 253 {
        return Err(format!(
            "limits.min-feerate ({}) is below 253 sat/kw, the relay floor every node uses",
            limits.min_feerate.0
        ));
    }
    if limits.max_htlcs > PROTOCOL_MAX_HTLCS {
        return Err(format!(
            "limits.max-htlcs ({}) is above {PROTOCOL_MAX_HTLCS}, the protocol's ceiling",
            limits.max_htlcs
        ));
    }
    Ok(())
}

/// A budget key's value (`key` names it, section included): `None` when absent,
/// `Some(None)` for "unlimited", else the satoshis.
fn budget(key: &str, v: &Option<Velocity>) -> Result<Option<Option<u64>>, String> {
    match v {
        None => Ok(None),
        Some(Velocity::Sat(sat)) => Ok(Some(Some(*sat))),
        Some(Velocity::Word(w)) if w == "unlimited" => Ok(Some(None)),
        Some(Velocity::Word(w)) => {
            Err(format!("{key}: {w:?} is neither a number of satoshis nor \"unlimited\""))
        }
    }
}

/// A `[payment]` velocity key in millisatoshi.
fn velocity(key: &str, v: &Option<Velocity>) -> Result<Option<Option<Msat>>, String> {
    let key = format!("payment.{key}");
    let Some(limit) = budget(&key, v)? else { return Ok(None) };
    limit
        .map(|sat| sat.checked_mul(1000).map(Msat).ok_or(format!("{key} is too large")))
        .transpose()
        .map(Some)
}

fn apply_payment(payment: &mut PaymentLimits, section: &PaymentSection) -> Result<(), String> {
    for payee in &section.payees {
        let node = hex_bytes(payee)
            .as_deref()
            .and_then(NodeId::from_slice)
            .ok_or_else(|| format!("payment.payees: {payee:?} is not a node id (66 hex digits)"))?;
        payment.allowlist.push(node);
    }
    if let Some(v) = velocity("velocity-per-hour-sat", &section.velocity_per_hour_sat)? {
        payment.velocity_per_hour = v;
    }
    if let Some(v) = velocity("velocity-per-day-sat", &section.velocity_per_day_sat)? {
        payment.velocity_per_day = v;
    }
    if let Some(v) = section.fee_cap_base_msat {
        payment.fee_cap_base = Msat(v);
    }
    if let Some(v) = section.fee_cap_ppm {
        payment.fee_cap_ppm = v;
    }
    if let Some(v) = section.min_cltv_delta {
        payment.min_cltv_delta = v;
    }
    if let Some(v) = section.invoice_clock_skew_secs {
        payment.invoice_clock_skew_secs = v;
    }
    if let Some(v) = section.keysend_approval_secs {
        payment.keysend_approval_secs = v;
    }
    if let Some(v) = section.max_tracked_payments {
        payment.max_tracked_payments = v;
    }
    if let Some(v) = velocity("trimmed-outflow-per-day-sat", &section.trimmed_outflow_per_day_sat)?
    {
        payment.trimmed_outflow_per_day = v;
    }
    Ok(())
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// The policy file `init` reads in `dir` (the lightning directory), if any.
pub fn locate(dir: &Path) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(POLICY_FILE_ENV) {
        return Some(PathBuf::from(path));
    }
    let default = dir.join("warden").join(POLICY_FILE_NAME);
    default.exists().then_some(default)
}

/// The policy of the file at `path` (or the defaults when `None`) for `network`.
pub fn load(path: Option<&Path>, network: Network) -> Result<PolicyConfig, PolicyFileError> {
    let Some(path) = path else { return Ok(defaults(network)) };
    let fail = |reason: String| PolicyFileError { path: Some(path.to_owned()), reason };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    parse(&text, network).map_err(|reason| fail(format!("{reason}; fix the file or remove it")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::policy::Rule;

    #[test]
    fn an_empty_file_keeps_the_network_defaults() {
        assert_eq!(parse("", Network::Bitcoin).unwrap(), PolicyConfig::mainnet());
        assert_eq!(parse("", Network::Regtest).unwrap(), PolicyConfig::test_network());
    }

    #[test]
    fn keys_override_defaults_and_warn_demotes() {
        let text = "[limits]\nmax-feerate = 50000\nmax-channel-value-sat = 5000000\n\
                    [enforcement]\nwarn = [\"commitment-fee-range\", \"payment-*\"]\n";
        let config = parse(text, Network::Bitcoin).unwrap();
        assert_eq!(config.limits.max_feerate, FeeratePerKw(50_000));
        assert_eq!(config.limits.max_channel_value, Sat(5_000_000));
        assert_eq!(config.limits.min_to_self_delay, 144, "an absent key keeps the default");
        assert!(config.enforcement.is_demoted(Rule::CommitmentFeeRange));
        assert!(config.enforcement.is_demoted(Rule::PaymentVelocity));
        assert!(!config.enforcement.is_demoted(Rule::CloseValue));
    }

    #[test]
    fn allowlist_and_payment_sections() {
        // The generator point: a valid node id.
        let payee = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
        let text = format!(
            "[allowlist]\naddresses = [\"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080\"]\n\
             [payment]\npayees = [\"{payee}\"]\nvelocity-per-day-sat = \"unlimited\"\n\
             velocity-per-hour-sat = 5000\nmin-cltv-delta = 40\n"
        );
        let config = parse(&text, Network::Regtest).unwrap();
        assert_eq!(config.allowlist.len(), 1);
        assert_eq!(config.payment.allowlist.len(), 1);
        assert_eq!(config.payment.velocity_per_day, None);
        assert_eq!(config.payment.velocity_per_hour, Some(Msat(5_000_000)));
        assert_eq!(config.payment.min_cltv_delta, 40);
    }

    #[test]
    fn an_allowlisted_xpub_allowlists_its_addresses() {
        use bitcoin::bip32::{Xpriv, Xpub};
        let secp = secp256k1::Secp256k1::new();
        let xpub = Xpub::from_priv(&secp, &Xpriv::new_master(Network::Regtest, &[3; 32]).unwrap());
        let text = format!("[allowlist]\nxpubs = [\"{xpub}\"]\nxpub-window = 10\n");
        let config = parse(&text, Network::Regtest).unwrap();
        assert_eq!(config.allowlist.len(), 2 * 10 * 3);
        let err = parse(&text, Network::Bitcoin).unwrap_err();
        assert!(err.contains("allowlist.xpubs"), "{err}");
    }

    #[test]
    fn invalid_files_are_refused_with_the_key_named() {
        let cases = [
            ("[limits]\nmax-fee-rate = 1\n", "max-fee-rate"),
            ("[limits]\nmin-to-self-delay = 3000\n", "min-to-self-delay"),
            ("[limits]\nmin-feerate = 100\n", "253"),
            ("[limits]\nmax-htlcs = 500\n", "max-htlcs"),
            ("[limits]\nmax-feerate = -1\n", "max-feerate"),
            ("[enforcement]\nwarn = [\"revoke-after-broadcast\"]\n", "hard rule"),
            ("[enforcement]\nwarn = [\"no-such-rule\"]\n", "no-such-rule"),
            ("[surprise]\n", "surprise"),
            ("[allowlist]\nxpubs = [\"tpubnonsense\"]\n", "allowlist.xpubs"),
            (
                "[allowlist]\naddresses = [\"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080\"]\n",
                "not an address of bitcoin",
            ),
            ("[payment]\npayees = [\"02ab\"]\n", "payment.payees"),
            ("[payment]\nvelocity-per-day-sat = \"lots\"\n", "velocity-per-day-sat"),
            ("[limits]\nmax-sweep-feerate = 1000\n", "max-sweep-feerate"),
            ("not toml at all", ""),
        ];
        for (text, needle) in cases {
            let err = parse(text, Network::Bitcoin).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn load_names_the_file_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, "[limits]\nmax-htlcs = 9999\n").unwrap();
        let err = load(Some(&path), Network::Regtest).unwrap_err().to_string();
        assert!(err.contains("policy.toml") && err.contains("fix the file"), "{err}");
        assert_eq!(load(None, Network::Regtest).unwrap(), PolicyConfig::test_network());
        let missing = dir.path().join("absent.toml");
        assert!(load(Some(&missing), Network::Regtest).is_err());
    }
}
