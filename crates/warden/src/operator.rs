//! The operator's commands on a signer's data directory: `warden status`, `warden policy
//! show|check`, `warden allowlist add|remove|list`, `warden approvals list|approve|deny`.
//!
//! They work on files only, so they work while `warden run` is running and need no
//! connection to it: the seed (for the node id), `proxy.pub`, `status.json` (written by `warden
//! run`, see [`crate::status`]), the policy file and the approvals directory. A change to the
//! policy file takes effect when `warden run` starts again (the policy is read at `init`); an
//! approval takes effect at once (the signer looks for it on the next retry).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use bitcoin::{Address, Network, ScriptBuf};
use warden_core::policy::{PolicyConfig, Rule};
use warden_hsmd::approvals::{ApprovalId, ApprovalState, Approvals};
use warden_hsmd::durable::STORE_DIR;
use warden_hsmd::policy_file::{self, POLICY_FILE_ENV, POLICY_FILE_NAME};

use crate::status::{self, Snapshot};
use crate::{datadir, say, CliError};

/// The network the policy is for: the flag, else the one `warden run` last saw in the proxy's
/// `init`, else mainnet (the strictest defaults). Also says where it came from.
pub fn network_of(flag: Option<Network>, dir: &Path) -> (Network, &'static str) {
    if let Some(n) = flag {
        return (n, "--network");
    }
    let seen = status::read(dir).ok().flatten().and_then(|s| s.network);
    match seen.as_deref().and_then(|n| Network::from_str(n).ok()) {
        Some(n) => (n, "the network of the node's init, from status.json"),
        None => (Network::Bitcoin, "the default: pass --network for another"),
    }
}

/// The policy file the signer reads: `$WARDEN_POLICY_FILE`, else `<dir>/warden/policy.toml`
/// (which may not exist).
pub fn policy_path(dir: &Path) -> PathBuf {
    match std::env::var_os(POLICY_FILE_ENV) {
        Some(p) => PathBuf::from(p),
        None => dir.join(STORE_DIR).join(POLICY_FILE_NAME),
    }
}

fn approvals(dir: &Path) -> Approvals {
    Approvals::new(&dir.join(STORE_DIR))
}

fn ago(t: u64) -> String {
    let secs = status::now().saturating_sub(t);
    match secs {
        0..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

// --- warden status ------------------------------------------------------------------------

/// `warden status`.
pub fn status(dir: &Path) -> Result<(), CliError> {
    let mut text = String::new();
    let seed = datadir::load_seed(dir)?;
    let node_id = crate::node_id(&seed)?;
    let link = datadir::link_key(&seed)?;
    let _ = writeln!(text, "Data directory:  {}", dir.display());
    let _ = writeln!(text, "Node id:         {node_id}");
    let _ = writeln!(text, "Signer link key: {}", link.public_key());
    match datadir::pinned_proxy_key(dir)? {
        Some(k) => {
            let _ = writeln!(text, "Proxy key:       {k} (pinned)");
        }
        None => text.push_str("Proxy key:       none pinned: run `warden pair --proxy-key KEY`\n"),
    }

    let snapshot = status::read(dir)?;
    text.push('\n');
    match &snapshot {
        None => text.push_str(
            "Signer:          never ran in this directory (no status.json): `warden run \
             --connect HOST:PORT`\n",
        ),
        Some(s) => running(&mut text, s),
    }

    let store = dir.join(STORE_DIR).join("warden-store.redb");
    match std::fs::metadata(&store) {
        Ok(m) => {
            let _ = writeln!(
                text,
                "Store:           {} ({} bytes; opened only by `warden run`, which verifies it \
                 against its signed head at each init)",
                store.display(),
                m.len()
            );
        }
        Err(_) => text.push_str("Store:           none yet (created at the first init)\n"),
    }

    let (network, _) = network_of(None, dir);
    let path = policy_path(dir);
    if path.exists() {
        match policy_file::load(Some(&path), network) {
            Ok(_) => {
                let _ = writeln!(text, "Policy:          {} (valid for {network})", path.display());
            }
            Err(e) => {
                let _ = writeln!(text, "Policy:          INVALID: {e}");
            }
        }
    } else {
        let _ =
            writeln!(text, "Policy:          the defaults of {network} (no {})", path.display());
    }
    let pending = approvals(dir)
        .list(ApprovalState::Pending)
        .map_err(|e| CliError::new(format!("cannot read the approvals: {e}")))?;
    if pending.is_empty() {
        text.push_str("Approvals:       none pending\n");
    } else {
        let ids: Vec<&str> = pending.iter().map(|(id, _)| id.as_str()).collect();
        let _ = writeln!(
            text,
            "Approvals:       {} pending ({}): `warden approvals list`",
            pending.len(),
            ids.join(", ")
        );
    }
    say(&text)
}

fn running(text: &mut String, s: &Snapshot) {
    let live = status::is_live(s);
    if live {
        let _ = writeln!(
            text,
            "Signer:          running (pid {}, since {}; status.json #{} written {})",
            s.pid,
            ago(s.started_at),
            s.sequence,
            ago(s.written_at)
        );
    } else {
        let _ = writeln!(
            text,
            "Signer:          NOT RUNNING (last status.json written {} by pid {}; what follows \
             is as it was then)",
            ago(s.written_at),
            s.pid
        );
    }
    let state = if s.link.connected { "connected" } else { "not connected" };
    let _ =
        write!(text, "Link:            {state} to {} since {}", s.link.proxy, ago(s.link.since));
    let _ = write!(text, ", {} connection(s)", s.link.connects);
    match (&s.link.last_error, s.link.connected) {
        (Some(e), false) => {
            let _ = writeln!(text, "; last: {e}");
        }
        _ => text.push('\n'),
    }
    if let Some(network) = &s.network {
        let _ = writeln!(text, "Network:         {network}");
    }
    let _ = writeln!(text, "Requests:        {} answered, {} refused", s.answered, s.refused);
    text.push_str(&status::store_lines(s));
    if !s.refusals_by_rule.is_empty() {
        text.push_str("Refusals by rule:\n");
        for (rule, n) in &s.refusals_by_rule {
            let _ = writeln!(text, "  {rule:<32} {n}");
        }
    }
    if !s.warnings_by_rule.is_empty() {
        text.push_str("Warnings (demoted rules, NOT enforced):\n");
        for (rule, n) in &s.warnings_by_rule {
            let _ = writeln!(text, "  {rule:<32} {n}");
        }
    }
    if !s.recent_refusals.is_empty() {
        text.push_str("Last refusals:\n");
        for r in s.recent_refusals.iter().rev().take(5) {
            let _ = writeln!(
                text,
                "  {:<10} dbid {:<4} type {:<5} {}",
                ago(r.at),
                r.dbid,
                r.msg_type,
                r.reason
            );
        }
    }
    if s.channels.is_empty() {
        text.push_str("Channels:        none served since this signer started\n");
    } else {
        text.push_str("Channels served since this signer started:\n");
        for c in &s.channels {
            let value = c.value_sat.map(|v| format!("{v} sat")).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                text,
                "  dbid {:<4} {:<8} {:<14} peer {}  funding {}  next peer commitment #{}",
                c.dbid,
                c.state,
                value,
                c.peer,
                c.funding.as_deref().unwrap_or("-"),
                c.counterparty_next_commitment
            );
        }
    }
}

// --- warden policy ------------------------------------------------------------------------

/// `warden policy check FILE`.
pub fn policy_check(file: &Path, network: Network) -> Result<(), CliError> {
    let config =
        policy_file::load(Some(file), network).map_err(|e| CliError::new(e.to_string()))?;
    let demoted = config.enforcement.demoted().len();
    say(&format!(
        "{} is a valid policy for {network} ({} allowlisted destinations, {} payees, {demoted} \
         demoted patterns).\n",
        file.display(),
        config.allowlist.len(),
        config.payment.allowlist.len()
    ))
}

/// `warden policy show`: the effective policy, as a policy file.
pub fn policy_show(dir: &Path, flag: Option<Network>) -> Result<(), CliError> {
    let (network, why) = network_of(flag, dir);
    let path = policy_path(dir);
    let file = path.exists().then_some(path.as_path());
    let config = policy_file::load(file, network).map_err(|e| CliError::new(e.to_string()))?;
    let addresses = match file {
        Some(p) => file_addresses(&read_text(p)?),
        None => Vec::new(),
    };
    let source = match file {
        Some(p) => format!("the defaults of {network} and {}", p.display()),
        None => format!("the defaults of {network} (no policy file: {})", path.display()),
    };
    say(&render(
        &config,
        &addresses,
        &format!("# The policy in force for {network} ({why}):\n# {source}.\n"),
    ))
}

fn velocity(v: Option<warden_core::units::Msat>) -> String {
    match v {
        Some(m) => (m.0 / 1000).to_string(),
        None => "\"unlimited\"".to_owned(),
    }
}

fn quoted(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", q.join(", "))
}

fn render(c: &PolicyConfig, addresses: &[String], header: &str) -> String {
    let l = &c.limits;
    let p = &c.payment;
    let mut t = String::from(header);
    let _ = writeln!(t, "\n[limits]");
    let _ = writeln!(t, "min-to-self-delay = {}", l.min_to_self_delay);
    let _ = writeln!(t, "max-to-self-delay = {}", l.max_to_self_delay);
    let _ = writeln!(t, "min-feerate = {}", l.min_feerate.0);
    let _ = writeln!(t, "max-feerate = {}", l.max_feerate.0);
    let _ = writeln!(t, "max-htlcs = {}", l.max_htlcs);
    let _ = writeln!(t, "max-htlc-inflight-sat = {}", l.max_htlc_inflight.0 / 1000);
    let _ = writeln!(t, "max-channel-value-sat = {}", l.max_channel_value.0);
    let _ = writeln!(t, "max-sweep-feerate = {}", l.max_sweep_feerate.0);
    let _ = writeln!(t, "max-push-sat = {}", l.max_push.0);
    let _ = writeln!(t, "max-channels = {}", l.max_channels);
    let _ = writeln!(t, "\n[allowlist]");
    let _ = writeln!(t, "addresses = {}", quoted(addresses));
    let _ = writeln!(t, "\n[payment]");
    let payees: Vec<String> = p.allowlist.iter().map(ToString::to_string).collect();
    let _ = writeln!(t, "payees = {}", quoted(&payees));
    let _ = writeln!(t, "velocity-per-hour-sat = {}", velocity(p.velocity_per_hour));
    let _ = writeln!(t, "velocity-per-day-sat = {}", velocity(p.velocity_per_day));
    let _ = writeln!(t, "fee-cap-base-msat = {}", p.fee_cap_base.0);
    let _ = writeln!(t, "fee-cap-ppm = {}", p.fee_cap_ppm);
    let _ = writeln!(t, "min-cltv-delta = {}", p.min_cltv_delta);
    let _ = writeln!(t, "invoice-clock-skew-secs = {}", p.invoice_clock_skew_secs);
    let _ = writeln!(t, "keysend-approval-secs = {}", p.keysend_approval_secs);
    let _ = writeln!(t, "max-tracked-payments = {}", p.max_tracked_payments);
    let _ = writeln!(t, "\n[enforcement]");
    let _ = writeln!(t, "warn = {}", quoted(c.enforcement.demoted()));
    let demoted: Vec<&str> =
        Rule::ALL.iter().filter(|r| c.enforcement.is_demoted(**r)).map(|r| r.tag()).collect();
    if !demoted.is_empty() {
        let _ = writeln!(t, "# NOT enforced (logged as warnings): {}", demoted.join(", "));
    }
    let enforced = Rule::ALL.len() - demoted.len();
    let hard = Rule::ALL.iter().filter(|r| r.is_hard()).count();
    let _ = writeln!(
        t,
        "# Enforced: {enforced} of {} rules ({hard} hard rules can never be demoted).",
        Rule::ALL.len()
    );
    t
}

fn read_text(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))
}

/// The `[allowlist] addresses` of a policy file's text, as written.
fn file_addresses(text: &str) -> Vec<String> {
    let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else { return Vec::new() };
    doc.get("allowlist")
        .and_then(|t| t.get("addresses"))
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

// --- warden allowlist ---------------------------------------------------------------------

/// The script of `address` on `network`, or a sentence saying why it is not one.
fn script_of(address: &str, network: Network) -> Result<ScriptBuf, CliError> {
    let unchecked = Address::from_str(address.trim())
        .map_err(|e| CliError::new(format!("{address:?} is not a bitcoin address: {e}")))?;
    let checked = unchecked.require_network(network).map_err(|_| {
        CliError::new(format!(
            "{address:?} is not an address of {network}: pass --network for the signer's network"
        ))
    })?;
    Ok(checked.script_pubkey())
}

/// `warden allowlist list`.
pub fn allowlist_list(dir: &Path) -> Result<(), CliError> {
    let path = policy_path(dir);
    let addresses = if path.exists() { file_addresses(&read_text(&path)?) } else { Vec::new() };
    if addresses.is_empty() {
        return say(&format!("No allowlisted address (in {}).\n", path.display()));
    }
    let mut text = format!("Allowlisted addresses (in {}):\n", path.display());
    for a in addresses {
        let _ = writeln!(text, "  {a}");
    }
    say(&text)
}

/// `warden allowlist add|remove ADDRESS`: edits `[allowlist] addresses` of the policy file,
/// keeping the rest of the file (comments included) as it is, and never writes a file the
/// signer would refuse.
pub fn allowlist_edit(
    dir: &Path,
    address: &str,
    add: bool,
    flag: Option<Network>,
) -> Result<(), CliError> {
    let (network, why) = network_of(flag, dir);
    let script = script_of(address, network).map_err(|e| CliError::new(format!("{e} ({why})")))?;
    let path = policy_path(dir);
    let text = if path.exists() { read_text(&path)? } else { String::new() };
    let mut doc = text.parse::<toml_edit::DocumentMut>().map_err(|e| {
        CliError::new(format!("{} is not valid TOML: {e}; fix it first", path.display()))
    })?;
    let table =
        doc.entry("allowlist").or_insert_with(toml_edit::table).as_table_mut().ok_or_else(
            || CliError::new(format!("{}: allowlist is not a table", path.display())),
        )?;
    let list = table
        .entry("addresses")
        .or_insert_with(|| toml_edit::value(toml_edit::Array::new()))
        .as_array_mut()
        .ok_or_else(|| {
            CliError::new(format!("{}: allowlist.addresses is not a list", path.display()))
        })?;
    let same = |v: &toml_edit::Value| {
        v.as_str().and_then(|s| script_of(s, network).ok()).is_some_and(|s| s == script)
    };
    let present = list.iter().any(same);
    let message = match (add, present) {
        (true, true) => return say(&format!("{address} is already allowlisted.\n")),
        (false, false) => {
            return Err(CliError::new(format!(
                "{address} is not in the allowlist of {}: `warden allowlist list` shows it",
                path.display()
            )))
        }
        (true, false) => {
            list.push(address.trim());
            format!("Added {address} to the allowlist")
        }
        (false, true) => {
            list.retain(|v| !same(v));
            format!("Removed {address} from the allowlist")
        }
    };
    let new_text = doc.to_string();
    policy_file::parse(&new_text, network).map_err(|e| {
        CliError::new(format!(
            "{} would not be a valid policy after this change ({e}); nothing was written",
            path.display()
        ))
    })?;
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CliError::new(format!("{} is not a file name", path.display())))?;
    datadir::ensure_dir(parent)?;
    datadir::write_private(parent, name, new_text.as_bytes())
        .map_err(|e| CliError::new(format!("cannot write {}: {e}", path.display())))?;
    say(&format!(
        "{message} ({}). Restart `warden run` to apply it: the policy is read at init.\n",
        path.display()
    ))
}

// --- warden approvals ---------------------------------------------------------------------

fn state_name(s: ApprovalState) -> &'static str {
    match s {
        ApprovalState::Pending => "pending",
        ApprovalState::Approved => "approved",
        ApprovalState::Denied => "denied",
        ApprovalState::Used => "used",
    }
}

/// An approval file's text, with each on-chain output's script shown as an address.
fn describe(text: &str, network: Network) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let _ = write!(out, "    {line}");
        let output = line.strip_prefix("output = \"").and_then(|r| r.strip_suffix('"'));
        if let Some((value, script)) = output.and_then(|o| o.split_once(' ')) {
            let bytes: Option<Vec<u8>> = (0..script.len())
                .step_by(2)
                .map(|i| script.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
                .collect();
            if let Some(addr) =
                bytes.and_then(|b| Address::from_script(&ScriptBuf::from_bytes(b), network).ok())
            {
                let _ = write!(out, "    # {value} sat to {addr}");
            }
        }
        out.push('\n');
    }
    out
}

/// `warden approvals list`: pending requests (`all`: every state).
pub fn approvals_list(dir: &Path, all: bool) -> Result<(), CliError> {
    let (network, _) = network_of(None, dir);
    let states: &[ApprovalState] = if all {
        &[
            ApprovalState::Pending,
            ApprovalState::Approved,
            ApprovalState::Denied,
            ApprovalState::Used,
        ]
    } else {
        &[ApprovalState::Pending]
    };
    let store = approvals(dir);
    let mut text = String::new();
    for state in states {
        let list = store
            .list(*state)
            .map_err(|e| CliError::new(format!("cannot read the approvals: {e}")))?;
        for (id, body) in list {
            let _ = writeln!(text, "{id}  {}", state_name(*state));
            text.push_str(&describe(&body, network));
        }
    }
    if text.is_empty() {
        text = if all { "No approvals.\n" } else { "No approval pending.\n" }.to_owned();
    } else if !all {
        text.push_str(
            "\nApprove one with `warden approvals approve ID` (the node's retry then goes through \
             once), or `warden approvals deny ID`.\n",
        );
    }
    say(&text)
}

/// `warden approvals approve|deny ID`.
pub fn approvals_decide(dir: &Path, id: &str, approve: bool) -> Result<(), CliError> {
    let parsed = ApprovalId::parse(id.trim()).ok_or_else(|| {
        CliError::new(format!(
            "{id:?} is not an approval ID (16 hex digits): `warden approvals list` shows them"
        ))
    })?;
    let store = approvals(dir);
    match store.state(&parsed) {
        None => {
            return Err(CliError::new(format!(
                "no approval {parsed} in {}: `warden approvals list` shows the pending ones",
                dir.join(STORE_DIR).join("approvals").display()
            )))
        }
        Some(ApprovalState::Pending) => {}
        Some(other) => {
            return Err(CliError::new(format!(
                "approval {parsed} is already {}: only a pending request can be decided",
                state_name(other)
            )))
        }
    }
    store
        .decide(&parsed, approve)
        .map_err(|e| CliError::new(format!("cannot record the decision on {parsed}: {e}")))?;
    if approve {
        say(&format!(
            "Approved {parsed}: the node's next retry of this request (`withdraw` or `pay` again) \
             goes through, once.\n"
        ))
    } else {
        say(&format!("Denied {parsed}: the signer keeps refusing this request.\n"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn policy_renders_as_a_file_that_parses_back() {
        let text =
            "[limits]\nmax-feerate = 50000\n[enforcement]\nwarn = [\"commitment-fee-range\"]\n\
                    [allowlist]\naddresses = [\"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080\"]\n";
        let config = policy_file::parse(text, Network::Regtest).unwrap();
        let shown = render(&config, &file_addresses(text), "# x\n");
        assert!(shown.contains("max-feerate = 50000"));
        assert!(shown.contains("NOT enforced (logged as warnings): commitment-fee-range"));
        assert_eq!(policy_file::parse(&shown, Network::Regtest).unwrap(), config);
    }
}
