//! The on-disk layout of a backup directory: sealed log records, sealed snapshots, their file
//! names, and the reading of a log segment.
//!
//! ## Files
//!
//! - `snapshot-<V>.wbs` (V: the snapshot's `data_version`, 20 decimal digits): magic
//!   `WBSNAP` + format `0x0001`, V (u64 BE), then one ECIES blob (warden-core's format `0x01`)
//!   of the snapshot plaintext, sealed with context [`snapshot_context`]`(V)`.
//! - `log-<V>.wbl`: the log segment begun after snapshot V: magic `WBLOG\0` + format
//!   `0x0001`, then records `dv (u64 BE) ‖ len (u32 BE) ‖ blob`, each blob one ECIES blob of a
//!   record plaintext sealed with context [`record_context`]`(dv)`.
//!
//! The clear `dv` in front of a blob is only an index: the blob's key is derived from a
//! context that names `dv`, and the plaintext repeats it, so a blob moved under another `dv`
//! does not open.
//!
//! ## Plaintexts (format `0x01`)
//!
//! - Record: `0x01 ‖ dv (u64 BE) ‖ n (u32 BE) ‖ n × (len (u32 BE) ‖ UTF-8 statement)`.
//! - Snapshot: `0x01 ‖ V (u64 BE) ‖ the SQLite database file`.
//!
//! Compatibility promise (as warden-core's seal module): a released format is never changed;
//! a new layout gets a new format number; readers keep reading every released format and
//! refuse an unknown one by name.

use std::fmt;

use secp256k1::PublicKey;
use warden_core::rng::EntropySource;
use warden_core::seal::{ecies_seal, EciesError};

/// Magic and format of a log segment's header.
pub const LOG_MAGIC: [u8; 8] = *b"WBLOG\0\x00\x01";
/// Magic and format of a snapshot file's header.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"WBSNAP\x00\x01";
/// Format byte of record and snapshot plaintexts.
pub const PLAINTEXT_FORMAT_V1: u8 = 0x01;
/// Length of a record's clear header (`dv`, `len`).
pub const RECORD_HEADER_LEN: usize = 8 + 4;
/// The largest sealed record accepted when reading (a sanity bound against a corrupt length).
pub const MAX_RECORD_LEN: usize = 1 << 30;

/// The ECIES context of the log record for `data_version`: the version is part of the key
/// derivation, so a record cannot be opened as another version's.
pub fn record_context(data_version: u64) -> Vec<u8> {
    let mut c = b"warden/node-backup/v1/db-write/".to_vec();
    c.extend_from_slice(&data_version.to_be_bytes());
    c
}

/// The ECIES context of the snapshot at `data_version`.
pub fn snapshot_context(data_version: u64) -> Vec<u8> {
    let mut c = b"warden/node-backup/v1/snapshot/".to_vec();
    c.extend_from_slice(&data_version.to_be_bytes());
    c
}

/// File name of the snapshot at `data_version`.
pub fn snapshot_name(data_version: u64) -> String {
    format!("snapshot-{data_version:020}.wbs")
}

/// File name of the log segment begun after the snapshot at `data_version`.
pub fn segment_name(data_version: u64) -> String {
    format!("log-{data_version:020}.wbl")
}

/// The `data_version` in a snapshot file name, or `None` for another file.
pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    parse_numbered(name, "snapshot-", ".wbs")
}

/// The `data_version` in a log segment's file name, or `None` for another file.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    parse_numbered(name, "log-", ".wbl")
}

fn parse_numbered(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Encodes the plaintext of the record of `data_version` holding `writes`.
pub fn encode_record(data_version: u64, writes: &[String]) -> Result<Vec<u8>, FormatError> {
    let total: usize = writes.iter().map(|w| 4 + w.len()).sum();
    let mut out = Vec::with_capacity(1 + 8 + 4 + total);
    out.push(PLAINTEXT_FORMAT_V1);
    out.extend_from_slice(&data_version.to_be_bytes());
    let count = u32::try_from(writes.len()).map_err(|_| FormatError::TooLarge)?;
    out.extend_from_slice(&count.to_be_bytes());
    for w in writes {
        let len = u32::try_from(w.len()).map_err(|_| FormatError::TooLarge)?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(w.as_bytes());
    }
    Ok(out)
}

/// Decodes a record plaintext into its `data_version` and statements.
pub fn decode_record(plaintext: &[u8]) -> Result<(u64, Vec<String>), FormatError> {
    let mut r = Reader { bytes: plaintext, at: 0 };
    let format = r.u8()?;
    if format != PLAINTEXT_FORMAT_V1 {
        return Err(FormatError::UnknownFormat { found: format });
    }
    let dv = r.u64()?;
    let count = r.u32()?;
    let mut writes = Vec::new();
    for _ in 0..count {
        let len = usize::try_from(r.u32()?).map_err(|_| FormatError::Truncated)?;
        let bytes = r.take(len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| FormatError::NotUtf8)?;
        writes.push(s.to_owned());
    }
    if r.at != plaintext.len() {
        return Err(FormatError::TrailingBytes);
    }
    Ok((dv, writes))
}

/// Encodes a snapshot plaintext header (the database bytes follow).
pub fn snapshot_plaintext(data_version: u64, database: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + database.len());
    out.push(PLAINTEXT_FORMAT_V1);
    out.extend_from_slice(&data_version.to_be_bytes());
    out.extend_from_slice(database);
    out
}

/// Splits a snapshot plaintext into its `data_version` and the database bytes.
pub fn decode_snapshot(plaintext: &[u8]) -> Result<(u64, &[u8]), FormatError> {
    let mut r = Reader { bytes: plaintext, at: 0 };
    let format = r.u8()?;
    if format != PLAINTEXT_FORMAT_V1 {
        return Err(FormatError::UnknownFormat { found: format });
    }
    let dv = r.u64()?;
    Ok((dv, plaintext.get(r.at..).unwrap_or_default()))
}

/// Seals the record of `data_version` holding `writes` to `recipient`: one ECIES blob with a
/// fresh ephemeral key, bound to the version by [`record_context`]. Every destination stores
/// the same blob.
pub fn seal_record(
    recipient: &PublicKey,
    data_version: u64,
    writes: &[String],
    entropy: &mut dyn EntropySource,
) -> Result<Vec<u8>, SealError> {
    let plaintext =
        zeroize::Zeroizing::new(encode_record(data_version, writes).map_err(SealError::Encode)?);
    ecies_seal(recipient, &plaintext, &record_context(data_version), entropy)
        .map_err(SealError::Seal)
}

/// Seals the snapshot of `database` (the SQLite file at `data_version`) to `recipient`.
pub fn seal_snapshot(
    recipient: &PublicKey,
    data_version: u64,
    database: &[u8],
    entropy: &mut dyn EntropySource,
) -> Result<Vec<u8>, SealError> {
    let plaintext = zeroize::Zeroizing::new(snapshot_plaintext(data_version, database));
    ecies_seal(recipient, &plaintext, &snapshot_context(data_version), entropy)
        .map_err(SealError::Seal)
}

/// Why a record or snapshot could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealError {
    /// The plaintext could not be encoded (a length beyond the format's bounds).
    Encode(FormatError),
    /// Sealing failed (a broken entropy source).
    Seal(EciesError),
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Encode(e) => write!(f, "cannot encode: {e}"),
            SealError::Seal(e) => write!(f, "cannot seal: {e}"),
        }
    }
}

impl std::error::Error for SealError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SealError::Encode(e) => Some(e),
            SealError::Seal(e) => Some(e),
        }
    }
}

/// One record of a segment as stored: its clear `data_version`, where it starts, its blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The `data_version` in the record's clear header.
    pub data_version: u64,
    /// Byte offset of the record's header in the segment file.
    pub offset: u64,
    /// The sealed blob.
    pub blob: Vec<u8>,
}

/// A parsed segment: its complete records, and the length of a torn (incomplete) tail.
#[derive(Debug)]
pub struct Segment {
    /// The complete records, in file order.
    pub records: Vec<StoredRecord>,
    /// The length up to the end of the last complete record.
    pub complete_len: u64,
    /// Bytes after the last complete record (a write cut short by a crash: never acknowledged).
    pub torn_tail: u64,
}

/// Parses a segment file's bytes.
pub fn parse_segment(bytes: &[u8]) -> Result<Segment, FormatError> {
    let magic = bytes.get(..LOG_MAGIC.len()).ok_or(FormatError::BadMagic)?;
    if magic != LOG_MAGIC {
        return Err(FormatError::BadMagic);
    }
    let mut at = LOG_MAGIC.len();
    let mut records = Vec::new();
    while let Some(header) = bytes.get(at..at + RECORD_HEADER_LEN) {
        let (dv, len) = header.split_at(8);
        let dv = u64::from_be_bytes(dv.try_into().map_err(|_| FormatError::Truncated)?);
        let len = u32::from_be_bytes(len.try_into().map_err(|_| FormatError::Truncated)?);
        let len = usize::try_from(len).map_err(|_| FormatError::TooLarge)?;
        if len > MAX_RECORD_LEN {
            return Err(FormatError::TooLarge);
        }
        let start = at + RECORD_HEADER_LEN;
        let Some(blob) = bytes.get(start..start + len) else { break };
        records.push(StoredRecord { data_version: dv, offset: at as u64, blob: blob.to_vec() });
        at = start + len;
    }
    Ok(Segment { records, complete_len: at as u64, torn_tail: (bytes.len() - at) as u64 })
}

/// Appends one record (`dv ‖ len ‖ blob`) to `out`.
pub fn encode_stored_record(data_version: u64, blob: &[u8]) -> Result<Vec<u8>, FormatError> {
    let len = u32::try_from(blob.len()).map_err(|_| FormatError::TooLarge)?;
    let mut out = Vec::with_capacity(RECORD_HEADER_LEN + blob.len());
    out.extend_from_slice(&data_version.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(blob);
    Ok(out)
}

/// Splits a snapshot file into its clear `data_version` and blob.
pub fn parse_snapshot_file(bytes: &[u8]) -> Result<(u64, &[u8]), FormatError> {
    let magic = bytes.get(..SNAPSHOT_MAGIC.len()).ok_or(FormatError::BadMagic)?;
    if magic != SNAPSHOT_MAGIC {
        return Err(FormatError::BadMagic);
    }
    let dv = bytes.get(8..16).ok_or(FormatError::Truncated)?;
    let dv = u64::from_be_bytes(dv.try_into().map_err(|_| FormatError::Truncated)?);
    Ok((dv, bytes.get(16..).unwrap_or_default()))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self.at.checked_add(n).ok_or(FormatError::Truncated)?;
        let s = self.bytes.get(self.at..end).ok_or(FormatError::Truncated)?;
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, FormatError> {
        self.take(1)?.first().copied().ok_or(FormatError::Truncated)
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| FormatError::Truncated)?))
    }
    fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| FormatError::Truncated)?))
    }
}

/// A file or plaintext of a backup that does not follow the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// The file does not start with the expected magic and format.
    BadMagic,
    /// Shorter than its layout requires.
    Truncated,
    /// A plaintext format this version does not read.
    UnknownFormat {
        /// The format byte found.
        found: u8,
    },
    /// A statement is not UTF-8.
    NotUtf8,
    /// Bytes after the last statement.
    TrailingBytes,
    /// A length beyond the layout's bounds.
    TooLarge,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::BadMagic => f.write_str("not a warden-backup file (bad magic)"),
            FormatError::Truncated => f.write_str("truncated"),
            FormatError::UnknownFormat { found } => write!(f, "unknown format {found:#04x}"),
            FormatError::NotUtf8 => f.write_str("a statement is not UTF-8"),
            FormatError::TrailingBytes => f.write_str("bytes after the last statement"),
            FormatError::TooLarge => f.write_str("a length beyond the format's bounds"),
        }
    }
}

impl std::error::Error for FormatError {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    #[test]
    fn record_round_trip() {
        let writes = vec!["INSERT INTO t VALUES (1);".to_owned(), String::new(), "é".to_owned()];
        let p = encode_record(7, &writes).unwrap();
        assert_eq!(decode_record(&p).unwrap(), (7, writes));
        assert_eq!(decode_record(&p[..p.len() - 1]), Err(FormatError::Truncated));
        let mut longer = p.clone();
        longer.push(0);
        assert_eq!(decode_record(&longer), Err(FormatError::TrailingBytes));
        let mut other = p;
        other[0] = 2;
        assert_eq!(decode_record(&other), Err(FormatError::UnknownFormat { found: 2 }));
    }

    #[test]
    fn segment_with_torn_tail() {
        let mut file = LOG_MAGIC.to_vec();
        file.extend(encode_stored_record(1, b"abc").unwrap());
        file.extend(encode_stored_record(2, b"de").unwrap());
        let whole = file.len();
        file.extend(&encode_stored_record(3, b"fgh").unwrap()[..5]);
        let s = parse_segment(&file).unwrap();
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.records[1].blob, b"de");
        assert_eq!(s.complete_len, whole as u64);
        assert_eq!(s.torn_tail, 5);
    }

    #[test]
    fn names() {
        assert_eq!(parse_snapshot_name(&snapshot_name(42)), Some(42));
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("log-1.wbl"), None);
        assert_ne!(record_context(1), record_context(2));
        assert_ne!(record_context(1), snapshot_context(1));
    }
}
