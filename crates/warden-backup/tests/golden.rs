#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
//! Golden bytes of the backup formats: a stored log record (header + ECIES blob) and a
//! snapshot file, made with fixed entropy. A change to any layout, context or derivation fails
//! here; released bytes must keep opening (see `format.rs`'s compatibility promise).

mod common;

use std::process::Command;

use common::{pubkey_hex, seed_file, Rng, SEED};
use warden_backup::format;
use warden_core::seal::{ecies_open_with_key, ecies_seal, WardenKeys};
use warden_core::secret::Seed;

const GOLDEN: &str = include_str!("data/golden.txt");

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn golden(name: &str) -> String {
    GOLDEN
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(" = ")))
        .unwrap_or_else(|| panic!("{name} missing from tests/data/golden.txt"))
        .to_owned()
}

fn made() -> (String, String, String) {
    let keys = WardenKeys::derive(&Seed::from_legacy(SEED)).unwrap();
    let to = keys.node_backup_pubkey();
    let writes = vec![
        "UPDATE vars SET intval = intval + 1 WHERE name = 'data_version' AND intval = 6".to_owned(),
        "INSERT INTO peers (id, address) VALUES (1, 'it''s')".to_owned(),
    ];
    let plain = format::encode_record(7, &writes).unwrap();
    let blob = ecies_seal(&to, &plain, &format::record_context(7), &mut Rng(1)).unwrap();
    let record = format::encode_stored_record(7, &blob).unwrap();
    let snap_plain = format::snapshot_plaintext(6, b"SQLite format 3\0");
    let snap_blob =
        ecies_seal(&to, &snap_plain, &format::snapshot_context(6), &mut Rng(2)).unwrap();
    let mut snapshot = format::SNAPSHOT_MAGIC.to_vec();
    snapshot.extend_from_slice(&6u64.to_be_bytes());
    snapshot.extend_from_slice(&snap_blob);
    (hex(&plain), hex(&record), hex(&snapshot))
}

#[test]
fn formats_match_golden_bytes() {
    let (plain, record, snapshot) = made();
    assert_eq!(plain, golden("record_plaintext"));
    assert_eq!(record, golden("stored_record"));
    assert_eq!(snapshot, golden("snapshot_file"));
}

#[test]
fn golden_record_opens_with_the_seed() {
    let keys = WardenKeys::derive(&Seed::from_legacy(SEED)).unwrap();
    let stored: Vec<u8> = (0..golden("stored_record").len() / 2)
        .map(|i| u8::from_str_radix(&golden("stored_record")[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut segment = format::LOG_MAGIC.to_vec();
    segment.extend_from_slice(&stored);
    let rec = &format::parse_segment(&segment).unwrap().records[0];
    assert_eq!(rec.data_version, 7);
    let plain =
        ecies_open_with_key(keys.node_backup_key(), &rec.blob, &format::record_context(7)).unwrap();
    let (dv, writes) = format::decode_record(&plain).unwrap();
    assert_eq!((dv, writes.len()), (7, 2));
    assert!(
        ecies_open_with_key(keys.node_backup_key(), &rec.blob, &format::record_context(8)).is_err()
    );
}

#[test]
fn pubkey_command_prints_the_node_backup_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warden-backup"))
        .args(["pubkey", "--seed-file"])
        .arg(seed_file(dir.path()))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), pubkey_hex());
}

/// Prints the current bytes (run with `--ignored --nocapture` to regenerate the file after a
/// deliberate new format).
#[test]
#[ignore = "generator of tests/data/golden.txt"]
fn print_golden() {
    let (plain, record, snapshot) = made();
    let text = format!(
        "# warden-backup format 0x01 golden bytes (tests/golden.rs), seed 0x42 x 32\n\
         record_plaintext = {plain}\nstored_record = {record}\nsnapshot_file = {snapshot}\n"
    );
    std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/golden.txt"), text).unwrap();
}
