//! The `warden-hsmd` binary: what lightningd starts in place of `hsmd`.
//!
//! Arguments: `--version` prints the version lightningd expects (see
//! [`warden_hsmd::version`]; or run lightningd with `--developer --dev-no-version-checks`) and
//! exits. Every other argument lightningd passes its subdaemons (`--developer`, `--log-io`,
//! `--log-trace`, `--dev-debug-self`, ...) is accepted and ignored.
//!
//! `--proxy-pubkey` prints the proxy's link public key (from `warden/proxy.key` in the current
//! directory, created if missing) for pairing with `warden pair`, and exits.
//!
//! File descriptors: 0 is the status connection to lightningd, 3 the master request socket;
//! the working directory is the lightning directory holding `hsm_secret`.
//!
//! Mode: local (the signer in this process) unless `WARDEN_SIGNER_PUBKEY` is set in the
//! environment, which selects proxy mode (requests answered by a remote `warden run`; see
//! [`warden_hsmd::proxy`] for the variables).

use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use warden_hsmd::hsm_secret::OsEntropy;
use warden_hsmd::proxy::{self, Proxy, ProxyConfig};
use warden_hsmd::server::{run_master, run_master_with, StatusSink};
use warden_hsmd::version::{version_string, VERSION_ENV};
use warden_wire::msg::FailReason;

/// The master request socket lightningd hands hsmd.
const MASTER_FD: i32 = 3;

fn main() -> ExitCode {
    if std::env::args().skip(1).any(|a| a == "--version") {
        let v = std::env::var(VERSION_ENV).ok();
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{}", version_string(v.as_deref())).and_then(|()| out.flush());
        return ExitCode::SUCCESS;
    }
    if std::env::args().skip(1).any(|a| a == "--proxy-pubkey") {
        return print_proxy_pubkey();
    }

    // Fd 3 is checked and taken before anything else opens a descriptor, so that a new
    // descriptor (which takes the lowest free number) cannot be mistaken for it.
    // Only take it if it is an open socket: `OwnedFd` must own an open descriptor, and
    // anything else (a stray inherited pipe or file) is not lightningd's master connection.
    let is_socket = std::fs::metadata(format!("/proc/self/fd/{MASTER_FD}"))
        .is_ok_and(|m| m.file_type().is_socket());
    let master = if is_socket {
        #[allow(unsafe_code, reason = "taking ownership of the fd lightningd passes as fd 3")]
        // SAFETY: fd 3 was checked to be an open socket just above, before this process
        // opened any descriptor of its own; lightningd hands it to hsmd for hsmd's exclusive
        // use, nothing else in this process uses or closes it, and it is taken exactly once
        // here, so the `OwnedFd` is its sole owner.
        let fd = unsafe { OwnedFd::from_raw_fd(MASTER_FD) };
        Some(UnixStream::from(fd))
    } else {
        None
    };

    let status = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => StatusSink::new(std::fs::File::from(fd)),
        Err(_) => return ExitCode::from(2),
    };
    let fail = |desc: &str| {
        status.fail(FailReason::INTERNAL_ERROR, desc);
        ExitCode::FAILURE
    };
    let Some(master) = master else {
        return fail("file descriptor 3 is not the master request socket");
    };

    let dir = match std::env::current_dir() {
        Ok(d) => d,
        Err(_) => return fail("cannot read the working directory"),
    };
    let mut entropy = match OsEntropy::open() {
        Ok(e) => e,
        Err(_) => return fail("cannot open /dev/urandom"),
    };
    let result = match ProxyConfig::from_env() {
        Err(e) => return fail(&e.to_string()),
        Ok(None) => run_master(master, status.clone(), &dir, &mut entropy),
        Ok(Some(config)) => {
            let key = match proxy::load_or_create_key(&dir, &mut entropy) {
                Ok(k) => k,
                Err(e) => return fail(&format!("cannot load the proxy key: {e}")),
            };
            let mut proxy = match Proxy::start(&config, key, &dir) {
                Ok(p) => p,
                Err(e) => return fail(&format!("cannot start proxy mode: {e}")),
            };
            run_master_with(master, status.clone(), &dir, &mut proxy)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// `--proxy-pubkey`: the proxy's link public key, for `warden pair --proxy-key`.
fn print_proxy_pubkey() -> ExitCode {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let key = std::env::current_dir().and_then(|dir| {
        let mut entropy = OsEntropy::open()?;
        proxy::load_or_create_key(&dir, &mut entropy)
    });
    match key {
        Ok(k) => {
            let _ = writeln!(out, "{}", k.public_key()).and_then(|()| out.flush());
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(
                err,
                "cannot read or create warden/proxy.key here ({e}); run this in the lightning \
                 directory (for example ~/.lightning/bitcoin)"
            );
            ExitCode::FAILURE
        }
    }
}
