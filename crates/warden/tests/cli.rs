//! The `warden` binary's commands, run as a user runs them: `init` (new mnemonics of both
//! lengths, imports of every Core Lightning format, no overwrite), `pair`, the operator's
//! commands (`status` while `warden run` runs, `policy`, `allowlist`, `approvals`), and the
//! errors at the edge.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use warden_core::seal::WardenKeys;
use warden_hsmd::hsm_secret;

fn warden(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("WARDEN_HSM_PASSPHRASE")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_makes_a_new_mnemonic_once() {
    for words in [12, 24] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("w");
        let out = warden(&dir, &["init", "--words", &words.to_string()], &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let seed = dir.join("hsm_secret");
        assert_eq!(mode(&seed), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let bytes = std::fs::read(&seed).unwrap();
        assert_eq!(&bytes[..32], &[0; 32], "Core Lightning's mnemonic format, no passphrase");
        let phrase = std::str::from_utf8(&bytes[32..]).unwrap();
        assert_eq!(phrase.split(' ').count(), words);
        // Shown once, numbered.
        let shown = text(&out.stdout);
        let last = phrase.split(' ').next_back().unwrap();
        assert!(shown.contains(&format!("{words:>2}. {last}")), "{shown}");
        let loaded = hsm_secret::parse(&bytes, None).unwrap();

        let again = warden(&dir, &["init"], &[]);
        assert!(!again.status.success());
        assert!(text(&again.stderr).contains("already holds a seed"));
        assert_eq!(std::fs::read(&seed).unwrap(), bytes);

        let pair = warden(&dir, &["pair"], &[]);
        let link = WardenKeys::derive(&loaded.seed).unwrap().link_pubkey();
        assert!(text(&pair.stdout).contains(&format!("Signer link key: {link}")));
    }
}

#[test]
fn init_imports_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let legacy = [0x11u8; 32];
    let encrypted = hsm_secret::encrypt_legacy(&legacy, b"pw", &[7; 24]).unwrap();
    let words = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
                 abandon about";
    let mnemonic = hsm_secret::mnemonic_file(words, None).unwrap();
    let with_pass = hsm_secret::mnemonic_file(words, Some(b"pw")).unwrap();
    let cases: [(&str, &[u8], Option<&str>); 4] = [
        ("legacy", &legacy, None),
        ("encrypted", &encrypted, Some("pw")),
        ("mnemonic", &mnemonic, None),
        ("mnemonic-pass", &with_pass, Some("pw")),
    ];
    for (name, bytes, pass) in cases {
        let file = tmp.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let dir = tmp.path().join(format!("{name}-data"));
        let args = ["init", "--import-hsm-secret", file.to_str().unwrap()];
        if pass.is_some() {
            let out = warden(&dir, &args, &[]);
            assert!(!out.status.success(), "{name}");
            assert!(text(&out.stderr).contains("set WARDEN_HSM_PASSPHRASE"), "{name}");
            let wrong = warden(&dir, &args, &[("WARDEN_HSM_PASSPHRASE", "nope")]);
            assert!(text(&wrong.stderr).contains("does not unlock"), "{name}");
        }
        let env: Vec<(&str, &str)> =
            pass.map(|p| vec![("WARDEN_HSM_PASSPHRASE", p)]).unwrap_or_default();
        let out = warden(&dir, &args, &env);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert_eq!(std::fs::read(dir.join("hsm_secret")).unwrap(), bytes, "{name}: verbatim");
        assert_eq!(mode(&dir.join("hsm_secret")), 0o600);
        let pair = warden(&dir, &["pair"], &env);
        assert!(pair.status.success(), "{name}: {}", text(&pair.stderr));
    }
    let bad = tmp.path().join("bad");
    std::fs::write(&bad, [1u8; 10]).unwrap();
    let out = warden(
        &tmp.path().join("bad-data"),
        &["init", "--import-hsm-secret", bad.to_str().unwrap()],
        &[],
    );
    assert!(text(&out.stderr).contains("is not a Core Lightning hsm_secret"));
}

#[test]
fn pair_pins_the_proxy_key_and_run_needs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let out = warden(&dir, &["run", "--connect", "127.0.0.1:1"], &[]);
    assert!(text(&out.stderr).contains("run `warden init` first"));
    assert!(warden(&dir, &["init"], &[]).status.success());
    let out = warden(&dir, &["run", "--connect", "127.0.0.1:1"], &[]);
    assert!(text(&out.stderr).contains("no proxy key is pinned"), "{}", text(&out.stderr));
    let out = warden(&dir, &["pair", "--proxy-key", "02abc"], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("66-hex-digit"));
    let key = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    let out = warden(&dir, &["pair", "--proxy-key", key], &[]);
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(dir.join("proxy.pub")).unwrap().trim(), key);
    assert_eq!(mode(&dir.join("proxy.pub")), 0o600);
    assert!(
        text(&warden(&dir, &["pair"], &[]).stdout).contains(&format!("Pinned proxy key: {key}"))
    );
}

#[test]
fn run_reads_its_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    assert!(warden(&dir, &["init"], &[]).status.success());
    let out = warden(&dir, &["run"], &[]);
    assert!(text(&out.stderr).contains("no proxy address"), "{}", text(&out.stderr));
    std::fs::write(dir.join("warden.toml"), "conect = \"h:1\"\n").unwrap();
    let out = warden(&dir, &["run"], &[]);
    assert!(text(&out.stderr).contains("is not a valid warden config"), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("conect"));
    // The file's address is used (and the proxy key is still missing).
    std::fs::write(dir.join("warden.toml"), "connect = \"127.0.0.1:1\"\n").unwrap();
    let out = warden(&dir, &["run"], &[]);
    assert!(text(&out.stderr).contains("no proxy key is pinned"), "{}", text(&out.stderr));
}

#[test]
fn every_command_has_help() {
    let tmp = tempfile::tempdir().unwrap();
    let commands: [&[&str]; 17] = [
        &["--help"],
        &["init", "--help"],
        &["pair", "--help"],
        &["run", "--help"],
        &["demo", "--help"],
        &["status", "--help"],
        &["policy", "--help"],
        &["policy", "show", "--help"],
        &["policy", "check", "--help"],
        &["allowlist", "--help"],
        &["allowlist", "list", "--help"],
        &["allowlist", "add", "--help"],
        &["allowlist", "remove", "--help"],
        &["approvals", "--help"],
        &["approvals", "list", "--help"],
        &["approvals", "approve", "--help"],
        &["approvals", "deny", "--help"],
    ];
    for cmd in commands {
        let out = warden(tmp.path(), cmd, &[]);
        assert!(out.status.success(), "{cmd:?}");
        assert!(text(&out.stdout).contains("Usage: warden"), "{cmd:?}");
    }
}

/// The line of `text` starting with `prefix`, without it.
fn field<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {text}"))
        .trim()
}

#[test]
fn status_reads_the_files_while_run_runs_and_after() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let out = warden(&dir, &["init"], &[]);
    let node_id = field(&text(&out.stdout), "Node id:").to_owned();
    let key = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    assert!(warden(&dir, &["pair", "--proxy-key", key], &[]).status.success());

    // Before any `warden run`.
    let out = warden(&dir, &["status"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert_eq!(field(&shown, "Node id:"), node_id);
    assert!(shown.contains(&format!("{key} (pinned)")), "{shown}");
    assert!(shown.contains("never ran in this directory"), "{shown}");
    assert!(shown.contains("Approvals:       none pending"), "{shown}");

    // While `warden run` runs (no proxy at that address: the link stays down).
    let mut run = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["run", "--connect", "127.0.0.1:1", "--max-backoff", "1"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_file = dir.join("status.json");
    let start = std::time::Instant::now();
    while !status_file.exists() {
        assert!(start.elapsed().as_secs() < 20, "no status.json");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(mode(&status_file), 0o600);
    let shown = text(&warden(&dir, &["status"], &[]).stdout);
    assert!(shown.contains(&format!("running (pid {}", run.id())), "{shown}");
    assert!(shown.contains("Link:            not connected to 127.0.0.1:1"), "{shown}");
    assert!(shown.contains("Requests:        0 answered, 0 refused"), "{shown}");
    assert!(shown.contains("Policy:          the defaults of bitcoin"), "{shown}");

    let term = Command::new("kill").arg("-TERM").arg(run.id().to_string()).status().unwrap();
    assert!(term.success());
    assert!(run.wait().unwrap().success());
    let shown = text(&warden(&dir, &["status"], &[]).stdout);
    assert!(shown.contains("Signer:          NOT RUNNING"), "{shown}");
    assert!(shown.contains("last: stopped"), "{shown}");

    let out = warden(&tmp.path().join("none"), &["status"], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("run `warden init` first"));
}

const REGTEST_ADDRESS: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
const MAINNET_ADDRESS: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

#[test]
fn policy_show_and_check() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    // The defaults, without a policy file (and without a seed: none is needed).
    let out = warden(&dir, &["policy", "show", "--network", "regtest"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("the defaults of regtest (no policy file"), "{shown}");
    assert!(shown.contains("[limits]") && shown.contains("max-feerate = "), "{shown}");

    let good = tmp.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "# mine\n[limits]\nmax-feerate = 50000\n[allowlist]\naddresses = \
             [\"{REGTEST_ADDRESS}\"]\n[enforcement]\nwarn = [\"commitment-fee-range\"]\n"
        ),
    )
    .unwrap();
    let out =
        warden(&dir, &["policy", "check", good.to_str().unwrap(), "--network", "regtest"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("is a valid policy for regtest"));
    // The same file is wrong for mainnet: the allowlisted address is regtest's.
    let out = warden(&dir, &["policy", "check", good.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not an address of bitcoin"), "{}", text(&out.stderr));

    // The example shipped in contrib/ is valid on every network.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/policy.toml.example");
    for network in ["bitcoin", "testnet", "signet", "regtest"] {
        let out = warden(
            &dir,
            &["policy", "check", example.to_str().unwrap(), "--network", network],
            &[],
        );
        assert!(out.status.success(), "{network}: {}", text(&out.stderr));
    }

    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[limits]\nmax-fee-rate = 1\n").unwrap();
    let out = warden(&dir, &["policy", "check", bad.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("max-fee-rate"), "{err}");
    let out = warden(&dir, &["policy", "check", "--network", "moon", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2), "bad usage");

    // Installed in the data directory, it is what `policy show` shows.
    std::fs::create_dir_all(dir.join("warden")).unwrap();
    std::fs::copy(&good, dir.join("warden/policy.toml")).unwrap();
    let shown = text(&warden(&dir, &["policy", "show", "--network", "regtest"], &[]).stdout);
    assert!(shown.contains("max-feerate = 50000"), "{shown}");
    assert!(shown.contains(&format!("addresses = [\"{REGTEST_ADDRESS}\"]")), "{shown}");
    assert!(shown.contains("NOT enforced (logged as warnings): commitment-fee-range"), "{shown}");
}

#[test]
fn allowlist_edits_keep_the_rest_of_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let regtest = ["--network", "regtest"];
    let out = warden(&dir, &["allowlist", "list"], &[]);
    assert!(text(&out.stdout).contains("No allowlisted address"));

    // A new file is created.
    let out = warden(&dir, &[&["allowlist", "add", REGTEST_ADDRESS][..], &regtest].concat(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Restart `warden run`"));
    let file = dir.join("warden/policy.toml");
    assert_eq!(mode(&file), 0o600);

    // An existing file keeps its comments and other sections.
    std::fs::write(&file, "# my limits\n[limits]\nmax-feerate = 40000 # sat/kw\n").unwrap();
    let out = warden(&dir, &[&["allowlist", "add", REGTEST_ADDRESS][..], &regtest].concat(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let edited = std::fs::read_to_string(&file).unwrap();
    assert!(
        edited.starts_with("# my limits\n[limits]\nmax-feerate = 40000 # sat/kw\n"),
        "{edited}"
    );
    assert!(edited.contains(REGTEST_ADDRESS), "{edited}");
    assert!(text(&warden(&dir, &["allowlist", "list"], &[]).stdout).contains(REGTEST_ADDRESS));
    let again = warden(&dir, &[&["allowlist", "add", REGTEST_ADDRESS][..], &regtest].concat(), &[]);
    assert!(text(&again.stdout).contains("already allowlisted"));
    let check =
        warden(&dir, &["policy", "check", file.to_str().unwrap(), "--network", "regtest"], &[]);
    assert!(check.status.success(), "{}", text(&check.stderr));

    // An address of another network, or no address at all, is refused; nothing is written.
    let out = warden(&dir, &[&["allowlist", "add", MAINNET_ADDRESS][..], &regtest].concat(), &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not an address of regtest"), "{}", text(&out.stderr));
    let out = warden(&dir, &[&["allowlist", "add", "nonsense"][..], &regtest].concat(), &[]);
    assert!(text(&out.stderr).contains("is not a bitcoin address"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), edited);

    let out =
        warden(&dir, &[&["allowlist", "remove", REGTEST_ADDRESS][..], &regtest].concat(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let removed = std::fs::read_to_string(&file).unwrap();
    assert!(!removed.contains(REGTEST_ADDRESS) && removed.contains("# my limits"), "{removed}");
    let out =
        warden(&dir, &[&["allowlist", "remove", REGTEST_ADDRESS][..], &regtest].concat(), &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is not in the allowlist"));
}

#[test]
fn approvals_are_listed_approved_and_denied() {
    use warden_hsmd::approvals::{ApprovalRequest, ApprovalState, Approvals};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let out = warden(&dir, &["approvals", "list"], &[]);
    assert!(text(&out.stdout).contains("No approval pending"));

    let approvals = Approvals::new(&dir.join("warden"));
    let script = bitcoin::ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_raw_hash(
        bitcoin::hashes::Hash::from_byte_array([0xee; 20]),
    ));
    let onchain =
        ApprovalRequest::Onchain { outputs: vec![(script, warden_core::units::Sat(150_000))] };
    let payment = ApprovalRequest::Payment { payment_hash: [7; 32], payee: None, amount: None };
    let a = approvals.submit(&onchain, "refused by onchain-unknown-destination: x").unwrap();
    let b = approvals.submit(&payment, "refused by payment-velocity: y").unwrap();

    let shown = text(&warden(&dir, &["approvals", "list"], &[]).stdout);
    assert!(shown.contains(&format!("{a}  pending")) && shown.contains(&format!("{b}  pending")));
    assert!(shown.contains("# 150000 sat to bc1q"), "the output as an address: {shown}");
    assert!(shown.contains("onchain-unknown-destination"), "{shown}");

    let out = warden(&dir, &["approvals", "approve", a.as_str()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(approvals.state(&a), Some(ApprovalState::Approved));
    let out = warden(&dir, &["approvals", "deny", a.as_str()], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("already approved"));
    assert!(warden(&dir, &["approvals", "deny", b.as_str()], &[]).status.success());
    assert_eq!(approvals.state(&b), Some(ApprovalState::Denied));
    let shown = text(&warden(&dir, &["approvals", "list"], &[]).stdout);
    assert!(shown.contains("No approval pending"), "{shown}");
    let shown = text(&warden(&dir, &["approvals", "list", "--all"], &[]).stdout);
    assert!(shown.contains(&format!("{a}  approved")) && shown.contains(&format!("{b}  denied")));

    let out = warden(&dir, &["approvals", "approve", "../../etc/passwd"], &[]);
    assert!(text(&out.stderr).contains("is not an approval ID"));
    let out = warden(&dir, &["approvals", "approve", "0123456789abcdef"], &[]);
    assert!(text(&out.stderr).contains("no approval 0123456789abcdef"));
}
