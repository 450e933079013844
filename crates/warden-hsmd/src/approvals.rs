//! Approvals: what policy refused but an operator may allow once — an on-chain payment to an
//! address that is neither ours nor allowlisted, an outgoing Lightning payment beyond the
//! velocity budget.
//!
//! A refusal that an approval could lift writes a *pending* request; the operator approves it
//! (`warden approvals approve ID`, or by hand: move the file from `pending/` to `approved/`)
//! and the node retries (`withdraw` again, `pay` again). The approval is consumed by the
//! first request it lets through. Files, not a socket: the operator's tool needs no
//! connection to the running signer, a crash at any point leaves each request in exactly
//! one directory, and the signer holds no lock an operator could wait on.
//!
//! Layout, under `<lightning dir>/warden/approvals/` (directories 0700, files 0600):
//! `pending/ID`, `approved/ID`, `denied/ID`, `used/ID`. A request's ID is the first 16 hex
//! digits of SHA-256 over its canonical text, so the same payment asked for twice (a retried
//! `withdraw` builds a new transaction with other inputs and change, but pays the same
//! external outputs) has the same ID.
//!
//! What an approval names is exactly what it lets through: the set of external outputs
//! (script and value) of an on-chain spend, or the payment hash, payee and amount of a
//! payment. A compromised node cannot reuse an approval for anything else.

use std::fmt::{self, Write as _};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bitcoin::hashes::{sha256, Hash};
use bitcoin::ScriptBuf;
use warden_core::units::{Msat, Sat};

/// The directory of approvals under the warden directory.
pub const APPROVALS_DIR: &str = "approvals";

/// What an approval lets through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApprovalRequest {
    /// An on-chain spend paying these outputs that are not ours (script, value), in
    /// transaction order.
    Onchain {
        /// The external outputs.
        outputs: Vec<(ScriptBuf, Sat)>,
    },
    /// An outgoing Lightning payment.
    Payment {
        /// Its payment hash.
        payment_hash: [u8; 32],
        /// The payee's node id (33 bytes, compressed), if known.
        payee: Option<[u8; 33]>,
        /// The amount, if the request states one.
        amount: Option<Msat>,
    },
}

impl ApprovalRequest {
    /// The canonical text: what the pending file holds and what the ID hashes.
    pub fn canonical(&self) -> String {
        let mut s = String::new();
        match self {
            ApprovalRequest::Onchain { outputs } => {
                s.push_str("kind = \"onchain\"\n");
                for (script, value) in outputs {
                    let _ = writeln!(s, "output = \"{} {}\"", value.0, hex(script.as_bytes()),);
                }
            }
            ApprovalRequest::Payment { payment_hash, payee, amount } => {
                s.push_str("kind = \"payment\"\n");
                let _ = writeln!(s, "payment-hash = \"{}\"", hex(payment_hash));
                if let Some(p) = payee {
                    let _ = writeln!(s, "payee = \"{}\"", hex(p));
                }
                if let Some(a) = amount {
                    let _ = writeln!(s, "amount-msat = {}", a.0);
                }
            }
        }
        s
    }

    /// The request's ID.
    pub fn id(&self) -> ApprovalId {
        let digest = sha256::Hash::hash(self.canonical().as_bytes()).to_byte_array();
        ApprovalId(hex(digest.get(..8).unwrap_or_default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// An approval's ID: 16 lower-case hex digits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApprovalId(String);

impl ApprovalId {
    /// The ID an operator typed, if it is one.
    pub fn parse(s: &str) -> Option<ApprovalId> {
        let ok =
            s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| ApprovalId(s.to_owned()))
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApprovalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalState {
    /// Waiting for the operator.
    Pending,
    /// Approved, not yet used.
    Approved,
    /// Denied by the operator.
    Denied,
    /// Approved and used once.
    Used,
}

impl ApprovalState {
    const ALL: [ApprovalState; 4] = [
        ApprovalState::Pending,
        ApprovalState::Approved,
        ApprovalState::Denied,
        ApprovalState::Used,
    ];

    fn dir_name(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            ApprovalState::Used => "used",
        }
    }
}

/// The approvals directory.
#[derive(Clone, Debug)]
pub struct Approvals {
    root: PathBuf,
}

fn create_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new().recursive(true).mode(0o700).create(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
}

impl Approvals {
    /// The approvals of the warden directory `warden_dir` (created on first write).
    pub fn new(warden_dir: &Path) -> Approvals {
        Approvals { root: warden_dir.join(APPROVALS_DIR) }
    }

    fn path(&self, state: ApprovalState, id: &ApprovalId) -> PathBuf {
        self.root.join(state.dir_name()).join(id.as_str())
    }

    /// Where `id` stands, if anywhere.
    pub fn state(&self, id: &ApprovalId) -> Option<ApprovalState> {
        ApprovalState::ALL.into_iter().find(|s| self.path(*s, id).exists())
    }

    /// Whether `request` is approved and not used yet (nothing is consumed: [`Approvals::take`]
    /// does that once the request is through).
    pub fn is_approved(&self, request: &ApprovalRequest) -> bool {
        self.path(ApprovalState::Approved, &request.id()).exists()
    }

    /// Lets `request` through if it was approved and not used: the approval is consumed
    /// (moved to `used/`) before this returns `true`.
    pub fn take(&self, request: &ApprovalRequest) -> io::Result<bool> {
        let id = request.id();
        let approved = self.path(ApprovalState::Approved, &id);
        if !approved.exists() {
            return Ok(false);
        }
        create_private_dir(&self.root.join(ApprovalState::Used.dir_name()))?;
        fs::rename(&approved, self.path(ApprovalState::Used, &id))?;
        Ok(true)
    }

    /// Records `request` as pending (once; a request already pending, approved or denied
    /// keeps its state) with `reason` (a policy refusal, never a secret). Returns its ID.
    pub fn submit(&self, request: &ApprovalRequest, reason: &str) -> io::Result<ApprovalId> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt;
        let id = request.id();
        if matches!(
            self.state(&id),
            Some(ApprovalState::Pending | ApprovalState::Approved | ApprovalState::Denied)
        ) {
            return Ok(id);
        }
        let dir = self.root.join(ApprovalState::Pending.dir_name());
        create_private_dir(&dir)?;
        let mut text = request.canonical();
        let _ = writeln!(text, "reason = {:?}", reason.replace(|c: char| c.is_control(), " "));
        let tmp = dir.join(format!(".{id}.tmp"));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, self.path(ApprovalState::Pending, &id))?;
        Ok(id)
    }

    /// Moves `id` from pending to approved (`approve = true`) or denied.
    pub fn decide(&self, id: &ApprovalId, approve: bool) -> io::Result<()> {
        let to = if approve { ApprovalState::Approved } else { ApprovalState::Denied };
        create_private_dir(&self.root.join(to.dir_name()))?;
        fs::rename(self.path(ApprovalState::Pending, id), self.path(to, id))
    }

    /// The requests in `state`, with their text.
    pub fn list(&self, state: ApprovalState) -> io::Result<Vec<(ApprovalId, String)>> {
        let dir = self.root.join(state.dir_name());
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(ApprovalId::parse) else { continue };
            out.push((id, fs::read_to_string(entry.path())?));
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn onchain(value: u64) -> ApprovalRequest {
        ApprovalRequest::Onchain {
            outputs: vec![(ScriptBuf::from_bytes(vec![0x00, 0x14, 7]), Sat(value))],
        }
    }

    #[test]
    fn pending_then_approved_lets_exactly_that_request_through_once() {
        let dir = tempfile::tempdir().unwrap();
        let approvals = Approvals::new(dir.path());
        let request = onchain(50_000);
        assert!(!approvals.take(&request).unwrap());
        let id = approvals.submit(&request, "refused by onchain-unknown-destination: x").unwrap();
        assert_eq!(approvals.submit(&request, "again").unwrap(), id, "same request, same id");
        assert_eq!(approvals.state(&id), Some(ApprovalState::Pending));
        assert!(!approvals.take(&request).unwrap(), "pending is not approved");
        let listed = approvals.list(ApprovalState::Pending).unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].1.contains("50000") && listed[0].1.contains("onchain-unknown"));

        approvals.decide(&id, true).unwrap();
        assert!(!approvals.take(&onchain(50_001)).unwrap(), "another amount is another request");
        assert!(approvals.take(&request).unwrap());
        assert!(!approvals.take(&request).unwrap(), "an approval is used once");
        assert_eq!(approvals.state(&id), Some(ApprovalState::Used));
    }

    #[test]
    fn denied_stays_denied_and_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let approvals = Approvals::new(dir.path());
        let request = ApprovalRequest::Payment {
            payment_hash: [9; 32],
            payee: Some([2; 33]),
            amount: Some(Msat(1_000)),
        };
        let id = approvals.submit(&request, "refused by payment-velocity").unwrap();
        let mode =
            fs::metadata(approvals.path(ApprovalState::Pending, &id)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        approvals.decide(&id, false).unwrap();
        approvals.submit(&request, "retry").unwrap();
        assert_eq!(approvals.state(&id), Some(ApprovalState::Denied));
        assert!(!approvals.take(&request).unwrap());
        assert!(approvals.decide(&id, true).is_err(), "only a pending request can be decided");
        assert_eq!(ApprovalId::parse(id.as_str()), Some(id));
        assert_eq!(ApprovalId::parse("../../etc/passwd"), None);
    }
}
