//! `warden seal`, `warden unseal` and `warden node-backup-key`: files and streams sealed to
//! the signer's node-backup key, so that only the seed opens them.
//!
//! Sealing needs only the public key (`--to`): anyone can seal, for instance the node for its
//! own backups. Unsealing asks the signer for the key of each sealed segment, with Warden's
//! `warden_unseal` extension request (`warden_wire::msg::warden`), over the hsmd protocol:
//! `warden unseal` starts `warden-hsmd` on the lightning directory exactly as lightningd does,
//! so in local mode the secret of that directory answers, and in proxy mode (the proxy's
//! environment, `WARDEN_SIGNER_PUBKEY` and the rest) the remote signer does, over the link.
//! The signer releases one key per segment, never the node-backup secret; its policy limits
//! the releases (`node-unseal`) and its audit trail records each.
//!
//! ## The stream format (`warden seal`), version 1
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `WSEAL\0\0\x01` (the last byte is the format) |
//! | then, per segment | `len` (u32 big-endian) ‖ an ECIES blob of `len` bytes (warden-core `seal::ecies`, format `0x01`) |
//!
//! The plaintext is cut into segments of [`SEGMENT_LEN`] bytes (the last one shorter, possibly
//! empty: an empty input is one empty segment). Segment `i` is sealed with its own ephemeral
//! key and the context [`segment_context`]`(i, last)` = `warden/node-backup/v1/seal/` ‖ `i`
//! (u64 big-endian) ‖ `last` (one byte, 1 for the final segment): a segment moved to another
//! place, a stream cut after a segment that is not the last, or a segment appended after the
//! last all fail to open, because their keys are derived for another context. Golden vectors:
//! `crates/warden/tests/data/seal_stream.json`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::Network;
use secp256k1::PublicKey;
use warden_core::rng::EntropySource;
use warden_core::seal::{ecies_ephemeral_point, ecies_open_with_derived_key, ecies_seal};
use warden_core::secret::Secret32;
use warden_hsmd::client::{recv_frame, send_frame, spawn};
use warden_wire::msg::{
    Init, InitReplyV4, Message, Status, UnsealItem, WardenNodeBackupPubkey,
    WardenNodeBackupPubkeyReply, WardenUnseal, WardenUnsealReply,
};
use warden_wire::Bip32KeyVersion;
use zeroize::Zeroizing;

use crate::CliError;

/// The magic and format of a sealed stream.
pub const STREAM_MAGIC: [u8; 8] = *b"WSEAL\0\0\x01";
/// The plaintext bytes per segment (1 MiB).
pub const SEGMENT_LEN: usize = 1 << 20;
/// The largest sealed segment a reader accepts (a segment's plaintext and the ECIES overhead).
const MAX_BLOB_LEN: usize = SEGMENT_LEN + warden_core::seal::ecies::ECIES_MIN_LEN;

/// The ECIES context of segment `index` of a sealed stream; `last` for its final segment.
pub fn segment_context(index: u64, last: bool) -> Vec<u8> {
    let mut c = b"warden/node-backup/v1/seal/".to_vec();
    c.extend_from_slice(&index.to_be_bytes());
    c.push(u8::from(last));
    c
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
        match input.read(rest) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Seals everything `input` holds to `to`, writing the stream to `output`; returns the number
/// of plaintext bytes.
pub fn seal_stream(
    to: &PublicKey,
    input: &mut dyn Read,
    output: &mut dyn Write,
    entropy: &mut dyn EntropySource,
) -> Result<u64, CliError> {
    seal_segments(to, input, output, entropy, SEGMENT_LEN)
}

/// [`seal_stream`] with segments of `segment_len` bytes (readers accept any length up to
/// [`SEGMENT_LEN`]; the golden vectors use short ones).
fn seal_segments(
    to: &PublicKey,
    input: &mut dyn Read,
    output: &mut dyn Write,
    entropy: &mut dyn EntropySource,
    segment_len: usize,
) -> Result<u64, CliError> {
    let segment_len = segment_len.clamp(1, SEGMENT_LEN);
    let read_err = |e: io::Error| CliError::new(format!("cannot read the input: {e}"));
    let write_err = |e: io::Error| CliError::new(format!("cannot write the sealed output: {e}"));
    output.write_all(&STREAM_MAGIC).map_err(write_err)?;
    // Two buffers: a segment is known to be the last only once the next read comes back empty.
    let mut current = Zeroizing::new(vec![0u8; segment_len]);
    let mut next = Zeroizing::new(vec![0u8; segment_len]);
    let mut len = read_full(input, &mut current).map_err(read_err)?;
    let mut total: u64 = 0;
    for index in 0u64.. {
        let next_len =
            if len == segment_len { read_full(input, &mut next).map_err(read_err)? } else { 0 };
        let last = next_len == 0;
        let plaintext = current.get(..len).unwrap_or_default();
        let blob = ecies_seal(to, plaintext, &segment_context(index, last), entropy)
            .map_err(|e| CliError::new(format!("cannot seal: {e}")))?;
        let blob_len = u32::try_from(blob.len())
            .map_err(|_| CliError::new("a sealed segment is too large"))?;
        output.write_all(&blob_len.to_be_bytes()).map_err(write_err)?;
        output.write_all(&blob).map_err(write_err)?;
        total = total.saturating_add(u64::try_from(len).unwrap_or(u64::MAX));
        if last {
            break;
        }
        std::mem::swap(&mut current, &mut next);
        len = next_len;
    }
    output.flush().map_err(write_err)?;
    Ok(total)
}

/// Asks for the keys of sealed blobs: the signer's side of unsealing.
pub trait KeySource {
    /// The key of each (ephemeral point, context), in order.
    fn keys(&mut self, items: Vec<UnsealItem>) -> Result<Vec<Secret32>, CliError>;
}

/// Reads one segment (`len` ‖ blob), or `None` at the end of the input.
fn read_segment(input: &mut dyn Read) -> Result<Option<Vec<u8>>, CliError> {
    let read_err = |e: io::Error| CliError::new(format!("cannot read the sealed input: {e}"));
    let mut header = [0u8; 4];
    match read_full(input, &mut header).map_err(read_err)? {
        0 => return Ok(None),
        4 => {}
        n => {
            return Err(CliError::new(format!(
                "the sealed input ends inside a segment header ({n} of 4 bytes)"
            )))
        }
    }
    let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    if len > MAX_BLOB_LEN {
        return Err(CliError::new(format!(
            "a segment announces {len} bytes, more than a sealed segment can hold: this is not \
             a sealed stream, or it is damaged"
        )));
    }
    let mut blob = vec![0u8; len];
    let got = read_full(input, &mut blob).map_err(read_err)?;
    if got != len {
        return Err(CliError::new(format!(
            "the sealed input ends inside a segment ({got} of {len} bytes): it was cut short"
        )));
    }
    Ok(Some(blob))
}

/// Opens a sealed stream from `input`, asking `keys` for each segment's key, and writes the
/// plaintext to `output`; returns the number of plaintext bytes. Fails on anything that was
/// changed, reordered, cut short or sealed to another key.
pub fn unseal_stream(
    input: &mut dyn Read,
    output: &mut dyn Write,
    keys: &mut dyn KeySource,
) -> Result<u64, CliError> {
    let mut magic = [0u8; 8];
    let got = read_full(input, &mut magic)
        .map_err(|e| CliError::new(format!("cannot read the sealed input: {e}")))?;
    if got != magic.len() || magic.get(..7) != STREAM_MAGIC.get(..7) {
        return Err(CliError::new("the input is not a stream sealed by `warden seal`"));
    }
    if magic != STREAM_MAGIC {
        return Err(CliError::new(format!(
            "the input is sealed in format {}, which this warden does not read: upgrade warden",
            magic[7]
        )));
    }
    let mut current = read_segment(input)?
        .ok_or_else(|| CliError::new("the sealed input has no segment: it was cut short"))?;
    let mut total: u64 = 0;
    for index in 0u64.. {
        let next = read_segment(input)?;
        let last = next.is_none();
        let ephemeral = ecies_ephemeral_point(&current)
            .map_err(|e| CliError::new(format!("segment {index}: {e}")))?;
        let item = UnsealItem { ephemeral, context: segment_context(index, last) };
        let key =
            keys.keys(vec![item])?.into_iter().next().ok_or_else(|| {
                CliError::new("the signer answered the unseal request without a key")
            })?;
        let plaintext = ecies_open_with_derived_key(&key, &current).map_err(|_| {
            CliError::new(format!(
                "segment {index} does not open: the stream was changed, reordered or cut \
                 short, or it was sealed to another key than this signer's"
            ))
        })?;
        output
            .write_all(&plaintext)
            .map_err(|e| CliError::new(format!("cannot write the output: {e}")))?;
        total = total.saturating_add(u64::try_from(plaintext.len()).unwrap_or(u64::MAX));
        match next {
            Some(n) => current = n,
            None => break,
        }
    }
    output.flush().map_err(|e| CliError::new(format!("cannot write the output: {e}")))?;
    Ok(total)
}

/// Where the signer is: a `warden-hsmd` started on a lightning directory.
#[derive(Debug, Clone)]
pub struct SignerOptions {
    /// The lightning directory (`hsm_secret`, or the proxy's key and environment).
    pub lightning_dir: PathBuf,
    /// The `warden-hsmd` binary.
    pub hsmd: PathBuf,
    /// The chain the node runs on.
    pub network: Network,
}

/// A `warden-hsmd` started by this tool, after `init`.
pub struct HsmdSession {
    child: std::process::Child,
    master: std::os::unix::net::UnixStream,
    /// What the process said on its status connection (its refusals and failures).
    status: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for HsmdSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmdSession").finish_non_exhaustive()
    }
}

/// How long a request may wait for the signer (in proxy mode, for `warden run` to dial in).
const REPLY_TIMEOUT: Duration = Duration::from_secs(600);

impl HsmdSession {
    /// Starts `warden-hsmd` on the lightning directory and sends `init`.
    pub fn start(options: &SignerOptions) -> Result<HsmdSession, CliError> {
        let dir = &options.lightning_dir;
        if !dir.is_dir() {
            return Err(CliError::new(format!("{} is not a directory", dir.display())));
        }
        // Local mode creates a secret where none exists: never let a mistyped directory make a
        // new node. Proxy mode holds no secret.
        if std::env::var_os("WARDEN_SIGNER_PUBKEY").is_none() && !dir.join("hsm_secret").is_file() {
            return Err(CliError::new(format!(
                "{} holds no hsm_secret: pass the lightning directory of the node (for a \
                 remote signer, run this with warden-hsmd's proxy environment, \
                 WARDEN_SIGNER_PUBKEY and the rest, as lightningd has it)",
                dir.display()
            )));
        }
        let spawned = spawn(&options.hsmd, dir, &[])
            .map_err(|e| CliError::new(format!("cannot start {}: {e}", options.hsmd.display())))?;
        let status = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&status);
        let mut status_conn = spawned.status;
        std::thread::spawn(move || {
            while let Ok(Some(body)) = recv_frame(&mut status_conn) {
                let line = match Status::decode(&body) {
                    Ok(Status::StatusFail(f)) => {
                        Some(String::from_utf8_lossy(f.desc.as_bytes()).into_owned())
                    }
                    Ok(Status::ClientBadRequest(b)) => {
                        Some(String::from_utf8_lossy(b.description.as_bytes()).into_owned())
                    }
                    _ => None,
                };
                if let Some(line) = line {
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            }
        });
        let mut session = HsmdSession { child: spawned.child, master: spawned.master, status };
        session
            .master
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(|e| CliError::new(format!("cannot set a timeout: {e}")))?;
        let init = Init::plain(
            bip32_versions(options.network),
            bitcoin::constants::ChainHash::using_genesis_block(options.network),
        );
        let reply = session.call(&init.encode().map_err(|e| CliError::new(e.to_string()))?)?;
        InitReplyV4::decode(&reply).map_err(|_| {
            CliError::new(format!("warden-hsmd did not start: {}", session.failure()))
        })?;
        Ok(session)
    }

    /// What the process reported last on its status connection.
    fn failure(&self) -> String {
        // The status reader may still be reading the process's last words.
        std::thread::sleep(Duration::from_millis(100));
        let lines = self.status.lock().unwrap_or_else(|p| p.into_inner());
        lines.last().cloned().unwrap_or_else(|| "it gave no reason (see its log above)".into())
    }

    /// Sends one request on the master connection and returns the reply.
    pub fn call(&mut self, body: &[u8]) -> Result<Vec<u8>, CliError> {
        send_frame(&mut self.master, body)
            .map_err(|e| CliError::new(format!("warden-hsmd stopped: {}", self.failure_or(e))))?;
        match recv_frame(&mut self.master) {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(CliError::new(format!(
                "warden-hsmd closed the connection without an answer: {}",
                self.failure()
            ))),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                Err(CliError::new(format!(
                    "no answer from the signer within {} s (in proxy mode: is `warden run` \
                     connected?)",
                    REPLY_TIMEOUT.as_secs()
                )))
            }
            Err(e) => Err(CliError::new(format!("warden-hsmd stopped: {}", self.failure_or(e)))),
        }
    }

    fn failure_or(&self, e: io::Error) -> String {
        let f = self.failure();
        if f.starts_with("it gave no reason") {
            e.to_string()
        } else {
            f
        }
    }

    /// The node-backup public key.
    pub fn node_backup_key(&mut self) -> Result<PublicKey, CliError> {
        let body = WardenNodeBackupPubkey {}.encode().map_err(|e| CliError::new(e.to_string()))?;
        let reply = self.call(&body)?;
        WardenNodeBackupPubkeyReply::decode(&reply)
            .map(|r| r.pubkey)
            .map_err(|e| CliError::new(format!("the signer's answer does not decode: {e}")))
    }
}

impl KeySource for HsmdSession {
    fn keys(&mut self, items: Vec<UnsealItem>) -> Result<Vec<Secret32>, CliError> {
        let asked = items.len();
        let body = WardenUnseal { items }.encode().map_err(|e| CliError::new(e.to_string()))?;
        let reply = self.call(&body)?;
        let reply = WardenUnsealReply::decode(&reply)
            .map_err(|e| CliError::new(format!("the signer's answer does not decode: {e}")))?;
        if reply.keys.len() != asked {
            return Err(CliError::new(format!(
                "the signer answered {} keys for {asked} blobs",
                reply.keys.len()
            )));
        }
        Ok(reply.keys.iter().map(|k| Secret32::new(*k.expose_secret())).collect())
    }
}

impl Drop for HsmdSession {
    fn drop(&mut self) {
        let _ = self.master.shutdown(std::net::Shutdown::Both);
        // hsmd exits when its master connection closes; don't leave it behind if it hangs.
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The BIP-32 version bytes lightningd sends for `network`.
fn bip32_versions(network: Network) -> Bip32KeyVersion {
    match network {
        Network::Bitcoin => {
            Bip32KeyVersion { pubkey_version: 0x0488_b21e, privkey_version: 0x0488_ade4 }
        }
        _ => Bip32KeyVersion { pubkey_version: 0x0435_87cf, privkey_version: 0x0435_8394 },
    }
}

/// Opens `path` for reading, or standard input for `None` or `-`.
fn open_input(path: Option<&Path>) -> Result<Box<dyn Read>, CliError> {
    match path {
        None => Ok(Box::new(io::stdin().lock())),
        Some(p) if p == Path::new("-") => Ok(Box::new(io::stdin().lock())),
        Some(p) => File::open(p)
            .map(|f| Box::new(BufReader::new(f)) as Box<dyn Read>)
            .map_err(|e| CliError::new(format!("cannot open {}: {e}", p.display()))),
    }
}

/// Runs `write` into `path` (through `path.partial`, mode 0600, renamed when `write`
/// succeeds and removed when it fails), or into standard output for `None` or `-`.
fn with_output(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> Result<u64, CliError>,
) -> Result<u64, CliError> {
    let Some(path) = path.filter(|p| *p != Path::new("-")) else {
        return write(&mut io::stdout().lock());
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| CliError::new(format!("cannot create {}: {e}", partial.display())))?;
    let mut out = BufWriter::new(file);
    let result = write(&mut out).and_then(|n| {
        let file = out.into_inner().map_err(|e| CliError::new(e.to_string()))?;
        file.sync_all().map_err(|e| CliError::new(format!("cannot sync the output: {e}")))?;
        fs::rename(&partial, path)
            .map_err(|e| CliError::new(format!("cannot rename to {}: {e}", path.display())))?;
        Ok(n)
    });
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

/// `warden seal`.
pub fn seal(to: &PublicKey, input: Option<&Path>, output: Option<&Path>) -> Result<(), CliError> {
    let mut entropy = warden_hsmd::hsm_secret::OsEntropy::open()
        .map_err(|e| CliError::new(format!("cannot open /dev/urandom: {e}")))?;
    let mut reader = open_input(input)?;
    with_output(output, |out| seal_stream(to, &mut reader, out, &mut entropy)).map(|_| ())
}

/// `warden unseal`.
pub fn unseal(
    signer: &SignerOptions,
    input: Option<&Path>,
    output: Option<&Path>,
) -> Result<(), CliError> {
    let mut reader = open_input(input)?;
    let mut session = HsmdSession::start(signer)?;
    with_output(output, |out| unseal_stream(&mut reader, out, &mut session)).map(|_| ())
}

/// `warden node-backup-key`.
pub fn node_backup_key(signer: &SignerOptions) -> Result<(), CliError> {
    let mut session = HsmdSession::start(signer)?;
    let key = session.node_backup_key()?;
    crate::say(&format!("{key}\n"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    use bitcoin::hashes::{sha256, Hash};
    use bitcoin::hex::{DisplayHex, FromHex};
    use warden_core::seal::ecies_derive_key;
    use warden_core::secret::PrivateKey;

    /// SHA-256 of a counter: the vectors' deterministic entropy.
    struct Counter(u64);
    impl EntropySource for Counter {
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for chunk in dest.chunks_mut(32) {
                let h = sha256::Hash::hash(&self.0.to_be_bytes()).to_byte_array();
                chunk.copy_from_slice(&h[..chunk.len()]);
                self.0 += 1;
            }
        }
    }

    /// The signer's side, from the node-backup secret (what `warden_unseal` computes).
    struct Secret(PrivateKey);
    impl KeySource for Secret {
        fn keys(&mut self, items: Vec<UnsealItem>) -> Result<Vec<Secret32>, CliError> {
            Ok(items
                .iter()
                .map(|i| ecies_derive_key(&self.0, &i.ephemeral, &i.context).unwrap())
                .collect())
        }
    }

    fn key() -> (PrivateKey, PublicKey) {
        let secret = PrivateKey::from_slice(&[0x11; 32]).unwrap();
        let public = secret.public_key(&secp256k1::Secp256k1::signing_only());
        (secret, public)
    }

    fn sealed(plaintext: &[u8], segment_len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        seal_segments(&key().1, &mut &plaintext[..], &mut out, &mut Counter(0), segment_len)
            .unwrap();
        out
    }

    fn opened(stream: &[u8]) -> Result<Vec<u8>, CliError> {
        let mut out = Vec::new();
        unseal_stream(&mut &stream[..], &mut out, &mut Secret(key().0))?;
        Ok(out)
    }

    /// Offsets of each segment's length field.
    fn segment_offsets(stream: &[u8]) -> Vec<usize> {
        let mut at = STREAM_MAGIC.len();
        let mut offsets = Vec::new();
        while at < stream.len() {
            offsets.push(at);
            let len = u32::from_be_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
            at += 4 + len;
        }
        offsets
    }

    #[test]
    fn the_golden_vectors_are_what_the_code_writes_and_they_open() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../tests/data/seal_stream.json")).unwrap();
        let regenerate = std::env::var_os("WARDEN_REGENERATE_SEAL_VECTORS").is_some();
        let mut out = Vec::new();
        for v in vectors["vectors"].as_array().unwrap() {
            let plaintext = Vec::<u8>::from_hex(v["plaintext"].as_str().unwrap()).unwrap();
            let segment_len = v["segment_len"].as_u64().unwrap() as usize;
            let stream = sealed(&plaintext, segment_len);
            if !regenerate {
                assert_eq!(stream.to_lower_hex_string(), v["sealed"].as_str().unwrap());
            }
            assert_eq!(opened(&stream).unwrap(), plaintext);
            let mut v = v.clone();
            v["sealed"] = stream.to_lower_hex_string().into();
            out.push(v);
        }
        if regenerate {
            let mut all = vectors.clone();
            all["vectors"] = out.into();
            fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/seal_stream.json"),
                serde_json::to_string_pretty(&all).unwrap() + "\n",
            )
            .unwrap();
        }
    }

    #[test]
    fn a_changed_reordered_cut_or_extended_stream_does_not_open() {
        let plaintext: Vec<u8> = (0..100u8).collect();
        let stream = sealed(&plaintext, 32);
        assert_eq!(opened(&stream).unwrap(), plaintext);
        let offsets = segment_offsets(&stream);
        assert_eq!(offsets.len(), 4);
        // Every single-byte change.
        for i in 0..stream.len() {
            let mut bad = stream.clone();
            bad[i] ^= 1;
            assert!(opened(&bad).is_err(), "byte {i}");
        }
        // Two segments swapped.
        let (a, b, c) = (offsets[0], offsets[1], offsets[2]);
        let mut swapped = stream[..a].to_vec();
        swapped.extend_from_slice(&stream[b..c]);
        swapped.extend_from_slice(&stream[a..b]);
        swapped.extend_from_slice(&stream[c..]);
        assert!(opened(&swapped).is_err());
        // Cut after a whole segment that is not the last.
        for &cut in &offsets[1..] {
            assert!(opened(&stream[..cut]).is_err(), "cut at {cut}");
        }
        // A last segment of another stream appended.
        let mut extended = stream.clone();
        let other = sealed(b"more", 32);
        extended.extend_from_slice(&other[STREAM_MAGIC.len()..]);
        assert!(opened(&extended).is_err());
        // Sealed to another key.
        let other_key = PrivateKey::from_slice(&[0x22; 32]).unwrap();
        let mut out = Vec::new();
        assert!(unseal_stream(&mut &stream[..], &mut out, &mut Secret(other_key)).is_err());
    }

    #[test]
    fn an_empty_input_is_one_empty_segment_and_a_whole_segment_ends_the_stream_cleanly() {
        let empty = sealed(b"", 32);
        assert_eq!(segment_offsets(&empty).len(), 1);
        assert_eq!(opened(&empty).unwrap(), b"");
        let exact = sealed(&[7u8; 64], 32);
        assert_eq!(segment_offsets(&exact).len(), 2);
        assert_eq!(opened(&exact).unwrap(), vec![7u8; 64]);
        assert!(opened(b"WSEAL\0\0\x02").is_err());
        assert!(opened(b"not sealed").is_err());
    }
}
