//! BigSize integers and TLV streams (BOLT-01 "Type-Length-Value Format"), the body of every
//! object Warden persists or sends in its own format (ADR 0001, STYLE.md rule 10).
//!
//! A stream is a sequence of records `type ‖ length ‖ value`, type and length as canonical
//! BigSize, types strictly ascending. [`TlvWriter`] writes one; [`TlvReader`] reads one and
//! enforces the rules a reader must: no truncation, canonical BigSize, strictly ascending types
//! (a duplicate is refused), an unknown even type is an error, an unknown odd type is skipped.
//!
//! Reading never copies a value and never allocates: values are slices of the input, and every
//! length is checked against the bytes that remain before it is used. Error offsets are
//! absolute offsets into the outermost input, also inside nested streams.

use alloc::vec::Vec;
use core::fmt;

/// Why a TLV stream or one of its values was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlvError {
    /// The input ends inside a BigSize or inside a record's value.
    Truncated {
        /// Where the missing bytes should have been.
        offset: usize,
    },
    /// A BigSize is not in its shortest form.
    NonCanonicalBigSize {
        /// Where the BigSize starts.
        offset: usize,
    },
    /// A record's type is lower than the one before it.
    OutOfOrder {
        /// Where the record starts.
        offset: usize,
        /// The type of the record before it.
        previous: u64,
        /// Its type.
        ty: u64,
    },
    /// A record's type repeats the one before it.
    Duplicate {
        /// Where the second record starts.
        offset: usize,
        /// The repeated type.
        ty: u64,
    },
    /// A record has an even type this reader does not know.
    UnknownEvenType {
        /// Where the record starts.
        offset: usize,
        /// Its type.
        ty: u64,
    },
    /// A required record is absent.
    MissingRecord {
        /// The end of the stream it should have been in.
        offset: usize,
        /// Its type.
        ty: u64,
    },
    /// A value has a length its type does not allow.
    BadLength {
        /// Where the value starts.
        offset: usize,
        /// The record's type.
        ty: u64,
        /// The value's length.
        len: usize,
    },
    /// A value is malformed (an invalid key, a flag other than 0 or 1, a number out of range).
    BadValue {
        /// Where the value starts.
        offset: usize,
        /// The record's type.
        ty: u64,
        /// What was expected.
        expected: &'static str,
    },
}

impl fmt::Display for TlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TlvError::Truncated { offset } => write!(f, "input truncated at offset {offset}"),
            TlvError::NonCanonicalBigSize { offset } => {
                write!(f, "non-canonical bigsize at offset {offset}")
            }
            TlvError::OutOfOrder { offset, previous, ty } => {
                write!(f, "tlv type {ty} after type {previous} at offset {offset}")
            }
            TlvError::Duplicate { offset, ty } => {
                write!(f, "tlv type {ty} repeated at offset {offset}")
            }
            TlvError::UnknownEvenType { offset, ty } => {
                write!(f, "unknown even tlv type {ty} at offset {offset}")
            }
            TlvError::MissingRecord { offset, ty } => {
                write!(f, "required tlv type {ty} missing in the stream ending at offset {offset}")
            }
            TlvError::BadLength { offset, ty, len } => {
                write!(f, "tlv type {ty} has a value of invalid length {len} at offset {offset}")
            }
            TlvError::BadValue { offset, ty, expected } => {
                write!(f, "tlv type {ty} at offset {offset}: expected {expected}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TlvError {}

/// Appends `v` as a canonical BigSize.
pub fn write_bigsize(out: &mut Vec<u8>, v: u64) {
    if v < 0xfd {
        out.push(v as u8);
    } else if v <= 0xffff {
        out.push(0xfd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= 0xffff_ffff {
        out.push(0xfe);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xff);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// A position in an input, reporting absolute offsets.
#[derive(Clone, Debug)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `data`, which starts at absolute offset `base`.
    pub fn new(data: &'a [u8], base: usize) -> Cursor<'a> {
        Cursor { data, pos: 0, base }
    }

    /// The absolute offset of the next byte.
    pub fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], TlvError> {
        let end = self.pos.checked_add(n).ok_or(TlvError::Truncated { offset: self.offset() })?;
        let out = self
            .data
            .get(self.pos..end)
            .ok_or(TlvError::Truncated { offset: self.base.saturating_add(self.data.len()) })?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], TlvError> {
        let offset = self.offset();
        <[u8; N]>::try_from(self.bytes(N)?).map_err(|_| TlvError::Truncated { offset })
    }

    /// The next canonical BigSize.
    pub fn bigsize(&mut self) -> Result<u64, TlvError> {
        let offset = self.offset();
        let [first] = self.array::<1>()?;
        let (v, min) = match first {
            0xfd => (u64::from(u16::from_be_bytes(self.array()?)), 0xfd),
            0xfe => (u64::from(u32::from_be_bytes(self.array()?)), 0x1_0000),
            0xff => (u64::from_be_bytes(self.array()?), 0x1_0000_0000),
            b => return Ok(u64::from(b)),
        };
        if v < min {
            return Err(TlvError::NonCanonicalBigSize { offset });
        }
        Ok(v)
    }

    /// The next `BigSize length ‖ bytes` item: its bytes and their absolute offset.
    pub fn sized(&mut self) -> Result<(&'a [u8], usize), TlvError> {
        let offset = self.offset();
        let len = self.bigsize()?;
        let len = usize::try_from(len).map_err(|_| TlvError::Truncated { offset })?;
        let value_offset = self.offset();
        Ok((self.bytes(len)?, value_offset))
    }
}

/// One record of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Its type.
    pub ty: u64,
    /// Its value.
    pub value: &'a [u8],
    /// The absolute offset of its value.
    pub offset: usize,
}

impl<'a> Record<'a> {
    fn bad_length(&self) -> TlvError {
        TlvError::BadLength { offset: self.offset, ty: self.ty, len: self.value.len() }
    }

    /// A [`TlvError::BadValue`] for this record.
    pub fn bad_value(&self, expected: &'static str) -> TlvError {
        TlvError::BadValue { offset: self.offset, ty: self.ty, expected }
    }

    /// The value as exactly `N` bytes.
    pub fn fixed<const N: usize>(&self) -> Result<&'a [u8; N], TlvError> {
        <&[u8; N]>::try_from(self.value).map_err(|_| self.bad_length())
    }

    /// The value as a big-endian `u16`.
    pub fn u16(&self) -> Result<u16, TlvError> {
        self.fixed().map(|b| u16::from_be_bytes(*b))
    }

    /// The value as a big-endian `u32`.
    pub fn u32(&self) -> Result<u32, TlvError> {
        self.fixed().map(|b| u32::from_be_bytes(*b))
    }

    /// The value as a big-endian `u64`.
    pub fn u64(&self) -> Result<u64, TlvError> {
        self.fixed().map(|b| u64::from_be_bytes(*b))
    }

    /// The value as a flag: one byte, 0 or 1.
    pub fn bool(&self) -> Result<bool, TlvError> {
        match self.fixed::<1>()? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(self.bad_value("0 or 1")),
        }
    }

    /// The value split into `N`-byte elements (its length must be a multiple of `N`).
    pub fn chunks<const N: usize>(
        &self,
    ) -> Result<impl Iterator<Item = &'a [u8; N]> + 'a, TlvError> {
        if N == 0 || self.value.len() % N != 0 {
            return Err(self.bad_length());
        }
        Ok(self.value.chunks_exact(N).filter_map(|c| <&[u8; N]>::try_from(c).ok()))
    }

    /// The value read as a nested stream.
    pub fn nested(&self) -> TlvReader<'a> {
        TlvReader::new(self.value, self.offset)
    }

    /// A cursor over the value, for values made of several items.
    pub fn cursor(&self) -> Cursor<'a> {
        Cursor::new(self.value, self.offset)
    }
}

/// Reads a stream in ascending type order.
///
/// The decoder asks for the types it knows in ascending order with [`TlvReader::optional`] or
/// [`TlvReader::required`], then calls [`TlvReader::finish`]. Records of types it did not ask
/// for are skipped when odd and refused when even.
#[derive(Clone, Debug)]
pub struct TlvReader<'a> {
    cursor: Cursor<'a>,
    last: Option<u64>,
    peeked: Option<Record<'a>>,
}

impl<'a> TlvReader<'a> {
    /// A reader of the stream `data`, which starts at absolute offset `base`.
    pub fn new(data: &'a [u8], base: usize) -> TlvReader<'a> {
        TlvReader { cursor: Cursor::new(data, base), last: None, peeked: None }
    }

    fn next_record(&mut self) -> Result<Option<Record<'a>>, TlvError> {
        if let Some(r) = self.peeked.take() {
            return Ok(Some(r));
        }
        if self.cursor.is_empty() {
            return Ok(None);
        }
        let offset = self.cursor.offset();
        let ty = self.cursor.bigsize()?;
        match self.last {
            Some(previous) if ty == previous => return Err(TlvError::Duplicate { offset, ty }),
            Some(previous) if ty < previous => {
                return Err(TlvError::OutOfOrder { offset, previous, ty })
            }
            _ => {}
        }
        self.last = Some(ty);
        let (value, value_offset) = self.cursor.sized()?;
        Ok(Some(Record { ty, value, offset: value_offset }))
    }

    /// Skips odd records below `ty` (refusing even ones) and returns the next record if it has
    /// type `ty`.
    pub fn optional(&mut self, ty: u64) -> Result<Option<Record<'a>>, TlvError> {
        while let Some(r) = self.next_record()? {
            if r.ty == ty {
                return Ok(Some(r));
            }
            if r.ty > ty {
                self.peeked = Some(r);
                return Ok(None);
            }
            if r.ty % 2 == 0 {
                return Err(TlvError::UnknownEvenType { offset: r.offset, ty: r.ty });
            }
        }
        Ok(None)
    }

    /// Like [`TlvReader::optional`], but the record must be there.
    pub fn required(&mut self, ty: u64) -> Result<Record<'a>, TlvError> {
        let end = self.cursor.base.saturating_add(self.cursor.data.len());
        self.optional(ty)?.ok_or(TlvError::MissingRecord { offset: end, ty })
    }

    /// Checks the rest of the stream: only well-formed odd records may remain.
    pub fn finish(mut self) -> Result<(), TlvError> {
        while let Some(r) = self.next_record()? {
            if r.ty % 2 == 0 {
                return Err(TlvError::UnknownEvenType { offset: r.offset, ty: r.ty });
            }
        }
        Ok(())
    }
}

/// Writes a stream. Records must be written in strictly ascending type order.
#[derive(Clone, Debug, Default)]
pub struct TlvWriter {
    buf: Vec<u8>,
    last: Option<u64>,
}

impl TlvWriter {
    /// An empty stream.
    pub fn new() -> TlvWriter {
        TlvWriter::default()
    }

    /// Appends a record.
    pub fn record(&mut self, ty: u64, value: &[u8]) {
        debug_assert!(
            !matches!(self.last, Some(l) if l >= ty),
            "tlv type {ty} written out of order"
        );
        self.last = Some(ty);
        write_bigsize(&mut self.buf, ty);
        write_bigsize(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(value);
    }

    /// Appends a big-endian `u16` record.
    pub fn u16(&mut self, ty: u64, v: u16) {
        self.record(ty, &v.to_be_bytes());
    }

    /// Appends a big-endian `u32` record.
    pub fn u32(&mut self, ty: u64, v: u32) {
        self.record(ty, &v.to_be_bytes());
    }

    /// Appends a big-endian `u64` record.
    pub fn u64(&mut self, ty: u64, v: u64) {
        self.record(ty, &v.to_be_bytes());
    }

    /// Appends a one-byte flag record (0 or 1).
    pub fn bool(&mut self, ty: u64, v: bool) {
        self.record(ty, &[u8::from(v)]);
    }

    /// The encoded stream.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn bigsize_is_canonical() {
        for (v, enc) in [
            (0u64, vec![0x00]),
            (0xfc, vec![0xfc]),
            (0xfd, vec![0xfd, 0x00, 0xfd]),
            (0xffff, vec![0xfd, 0xff, 0xff]),
            (0x1_0000, vec![0xfe, 0x00, 0x01, 0x00, 0x00]),
            (0xffff_ffff, vec![0xfe, 0xff, 0xff, 0xff, 0xff]),
            (0x1_0000_0000, vec![0xff, 0, 0, 0, 1, 0, 0, 0, 0]),
        ] {
            let mut out = Vec::new();
            write_bigsize(&mut out, v);
            assert_eq!(out, enc);
            assert_eq!(Cursor::new(&enc, 0).bigsize(), Ok(v));
        }
        // BOLT-01 vectors of non-canonical encodings.
        for enc in [
            &[0xfd, 0x00, 0xfc][..],
            &[0xfe, 0x00, 0x00, 0xff, 0xff],
            &[0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert_eq!(
                Cursor::new(enc, 7).bigsize(),
                Err(TlvError::NonCanonicalBigSize { offset: 7 })
            );
        }
        assert_eq!(Cursor::new(&[0xfd, 0x01], 0).bigsize(), Err(TlvError::Truncated { offset: 2 }));
    }

    #[test]
    fn reader_skips_odd_and_refuses_even_duplicates_and_disorder() {
        let mut w = TlvWriter::new();
        w.u16(1, 7);
        w.u16(2, 8);
        w.u16(5, 9);
        let s = w.into_bytes();
        let mut r = TlvReader::new(&s, 0);
        assert_eq!(r.required(2).unwrap().u16(), Ok(8));
        r.finish().unwrap();
        let mut r = TlvReader::new(&s, 0);
        assert_eq!(r.optional(4), Err(TlvError::UnknownEvenType { offset: 6, ty: 2 }));
        let mut r = TlvReader::new(&s, 0);
        assert!(r.optional(0).unwrap().is_none());
        assert_eq!(r.finish(), Err(TlvError::UnknownEvenType { offset: 6, ty: 2 }));
        let dup = [1, 0, 1, 0];
        assert_eq!(TlvReader::new(&dup, 0).finish(), Err(TlvError::Duplicate { offset: 2, ty: 1 }));
        let disorder = [3, 0, 1, 0];
        assert_eq!(
            TlvReader::new(&disorder, 0).finish(),
            Err(TlvError::OutOfOrder { offset: 2, previous: 3, ty: 1 })
        );
        let long = [1, 5, 0];
        assert_eq!(TlvReader::new(&long, 10).finish(), Err(TlvError::Truncated { offset: 13 }));
    }
}
