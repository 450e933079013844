//! TLV streams at the end of a message (BOLT-01, `wire/tlvstream.c`).
//!
//! A stream is the rest of the message: records of BigSize type, BigSize length and value.
//! Types and lengths must be minimally encoded, types strictly ascending (a repeated type is an
//! error), a length may not exceed what remains, an unknown even type is an error and a known
//! type's value must be exactly its known encoding.
//!
//! An unknown odd record is kept ([`UnknownTlv`]) and written back in type order, so a decoded
//! message re-encodes byte for byte. (Core Lightning's generated `towire_*` drops unknown
//! records; keeping them changes nothing for a record nobody reads.)

use alloc::vec::Vec;

use zeroize::Zeroize;

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};

/// A TLV record of a type the message does not define (always odd: an unknown even type is
/// refused when decoding, and when encoding).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnknownTlv {
    /// The record's type.
    pub tlv_type: u64,
    /// The record's value.
    pub value: Vec<u8>,
}

/// One record of a stream being decoded: its type and a reader over its value.
pub(crate) struct RawTlv<'a> {
    pub(crate) tlv_type: u64,
    pub(crate) value: Reader<'a>,
}

/// Reads the rest of `r` as a TLV stream whose defined types are `known`.
pub(crate) fn read_stream<'a>(
    r: &mut Reader<'a>,
    known: &[u64],
) -> Result<Vec<RawTlv<'a>>, DecodeError> {
    let mut out: Vec<RawTlv<'a>> = Vec::new();
    let mut previous: Option<u64> = None;
    while !r.is_empty() {
        let offset = r.offset();
        let tlv_type = r.read_bigsize()?;
        let length = r.read_bigsize()?;
        if let Some(previous) = previous {
            if tlv_type == previous {
                return Err(DecodeError::TlvDuplicate { offset, tlv_type });
            }
            if tlv_type < previous {
                return Err(DecodeError::TlvOutOfOrder { offset, previous, found: tlv_type });
            }
        }
        previous = Some(tlv_type);
        if tlv_type % 2 == 0 && !known.contains(&tlv_type) {
            return Err(DecodeError::TlvUnknownEven { offset, tlv_type });
        }
        let remaining = r.remaining();
        let len = match usize::try_from(length) {
            Ok(len) if len <= remaining => len,
            _ => {
                return Err(DecodeError::TlvLengthTooLarge { offset, tlv_type, length, remaining })
            }
        };
        let value = r.sub_reader(len)?;
        out.push(RawTlv { tlv_type, value });
    }
    Ok(out)
}

/// Decodes a known record's value with `parse`, which must read all of it.
pub(crate) fn read_value<T>(
    raw: RawTlv<'_>,
    parse: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut value = raw.value;
    let v = parse(&mut value)?;
    if !value.is_empty() {
        return Err(DecodeError::TlvValueTooLong {
            offset: value.offset(),
            tlv_type: raw.tlv_type,
        });
    }
    Ok(v)
}

/// Keeps an unknown (odd) record.
pub(crate) fn unknown(raw: RawTlv<'_>) -> UnknownTlv {
    let mut value = raw.value;
    UnknownTlv { tlv_type: raw.tlv_type, value: value.read_rest().to_vec() }
}

/// Writes a stream: the `known` records (type and encoded value) and the `unknown` ones,
/// merged in ascending type order.
pub(crate) fn write_stream(
    w: &mut Writer,
    mut known: Vec<(u64, Vec<u8>)>,
    unknown: &[UnknownTlv],
) -> Result<(), EncodeError> {
    let mut records: Vec<(u64, &[u8])> = Vec::with_capacity(known.len() + unknown.len());
    for u in unknown {
        if u.tlv_type % 2 == 0 || known.iter().any(|(t, _)| *t == u.tlv_type) {
            return Err(EncodeError::InvalidTlv { tlv_type: u.tlv_type });
        }
        records.push((u.tlv_type, &u.value));
    }
    for (t, v) in &known {
        records.push((*t, v));
    }
    records.sort_by_key(|(t, _)| *t);
    for pair in records.windows(2) {
        if let [(a, _), (b, _)] = pair {
            if a == b {
                return Err(EncodeError::InvalidTlv { tlv_type: *a });
            }
        }
    }
    for (t, v) in records {
        w.write_bigsize(t);
        w.write_bigsize(u64::try_from(v.len()).unwrap_or(u64::MAX));
        w.write_bytes(v);
    }
    // A known value may be secret (the passphrase): wipe the intermediate copies.
    for (_, v) in known.iter_mut() {
        v.zeroize();
    }
    Ok(())
}

/// Encodes one value with `write` into its own buffer (a TLV value).
pub(crate) fn value_bytes(
    write: impl FnOnce(&mut Writer) -> Result<(), EncodeError>,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::new();
    write(&mut w)?;
    Ok(w.into_bytes())
}
