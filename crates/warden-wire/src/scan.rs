//! A structural pre-scan of raw transactions and PSBTs, run before rust-bitcoin parses them.
//!
//! rust-bitcoin's decoders pre-allocate from counts they read: up to 1 MB for an input or output
//! count and up to 16 MB for a witness's element count, whatever the bytes that follow. A few
//! bytes from lightningd could so make the signer allocate megabytes. This scan walks the same
//! structure without allocating and refuses any count that cannot fit in the bytes that remain
//! (count × the smallest encoding of one element), so what rust-bitcoin then allocates is
//! bounded by a small multiple of the message's own length. It also tells where the
//! structure ends, so trailing bytes inside a length-prefixed field are refused.
//!
//! The scan is not a validator: bytes it accepts may still fail to parse; rust-bitcoin decides.

use crate::codec::Reader;

/// The structure did not scan (the caller reports its own error with the field's offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

impl From<crate::error::DecodeError> for Malformed {
    fn from(_: crate::error::DecodeError) -> Malformed {
        Malformed
    }
}

/// The input and output counts of a scanned transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TxShape {
    pub(crate) inputs: usize,
    pub(crate) outputs: usize,
}

/// Reads a Bitcoin CompactSize (little-endian, any encoding; rust-bitcoin checks minimality).
fn compact_size(r: &mut Reader<'_>) -> Result<u64, Malformed> {
    Ok(match r.read_u8()? {
        0xfd => u64::from(u16::from_le_bytes(r.read_array()?)),
        0xfe => u64::from(u32::from_le_bytes(r.read_array()?)),
        0xff => u64::from_le_bytes(r.read_array()?),
        small => u64::from(small),
    })
}

/// Reads a count and checks that `count` elements of at least `min_size` bytes fit.
fn count(r: &mut Reader<'_>, min_size: usize) -> Result<usize, Malformed> {
    let n = compact_size(r)?;
    r.check_count(n, min_size)?;
    usize::try_from(n).map_err(|_| Malformed)
}

/// Skips a CompactSize-prefixed byte string.
fn skip_var_bytes(r: &mut Reader<'_>) -> Result<(), Malformed> {
    let n = compact_size(r)?;
    let n = usize::try_from(n).map_err(|_| Malformed)?;
    r.read_bytes(n)?;
    Ok(())
}

/// Scans one witness stack (an element count, then CompactSize-prefixed elements).
fn scan_witness_stack(r: &mut Reader<'_>) -> Result<(), Malformed> {
    let items = count(r, 1)?;
    for _ in 0..items {
        skip_var_bytes(r)?;
    }
    Ok(())
}

/// Scans a serialized transaction that must fill `bytes` exactly.
pub(crate) fn scan_tx(bytes: &[u8]) -> Result<TxShape, Malformed> {
    let mut r = Reader::new(bytes);
    r.read_bytes(4)?; // version
    let mut segwit = false;
    let mut inputs = count(&mut r, 1)?;
    if inputs == 0 {
        // BIP-0144 marker: the flag must be 1 (as rust-bitcoin requires).
        if r.read_u8()? != 1 {
            return Err(Malformed);
        }
        segwit = true;
        inputs = count(&mut r, 0)?;
    }
    // txid, vout, script length, sequence.
    r.check_count(u64::try_from(inputs).map_err(|_| Malformed)?, 32 + 4 + 1 + 4)?;
    for _ in 0..inputs {
        r.read_bytes(36)?;
        skip_var_bytes(&mut r)?;
        r.read_bytes(4)?;
    }
    // value, script length.
    let outputs = count(&mut r, 8 + 1)?;
    for _ in 0..outputs {
        r.read_bytes(8)?;
        skip_var_bytes(&mut r)?;
    }
    if segwit {
        for _ in 0..inputs {
            scan_witness_stack(&mut r)?;
        }
    }
    r.read_bytes(4)?; // lock time
    if !r.is_empty() {
        return Err(Malformed);
    }
    Ok(TxShape { inputs, outputs })
}

/// Scans one PSBT key-value map up to its terminating zero-length key, calling `on_pair` with
/// each key and value.
fn scan_map(
    r: &mut Reader<'_>,
    mut on_pair: impl FnMut(&[u8], &[u8]) -> Result<(), Malformed>,
) -> Result<(), Malformed> {
    loop {
        let key_len = compact_size(r)?;
        if key_len == 0 {
            return Ok(());
        }
        let key = r.read_bytes(usize::try_from(key_len).map_err(|_| Malformed)?)?;
        let value_len = compact_size(r)?;
        let value = r.read_bytes(usize::try_from(value_len).map_err(|_| Malformed)?)?;
        on_pair(key, value)?;
    }
}

/// Scans a version-0 PSBT (BIP-0174) that must fill `bytes` exactly.
pub(crate) fn scan_psbt(bytes: &[u8]) -> Result<(), Malformed> {
    let mut r = Reader::new(bytes);
    if r.read_bytes(5)? != b"psbt\xff" {
        return Err(Malformed);
    }
    let mut shape = None;
    scan_map(&mut r, |key, value| {
        // PSBT_GLOBAL_UNSIGNED_TX
        if key == [0x00] {
            shape = Some(scan_tx(value)?);
        }
        Ok(())
    })?;
    let shape = shape.ok_or(Malformed)?;
    // Every input and output map takes at least its terminating byte.
    let maps = shape.inputs.checked_add(shape.outputs).ok_or(Malformed)?;
    r.check_count(u64::try_from(maps).map_err(|_| Malformed)?, 1)?;
    for _ in 0..shape.inputs {
        scan_map(&mut r, |key, value| {
            match key {
                // PSBT_IN_NON_WITNESS_UTXO: a whole previous transaction.
                [0x00] => {
                    scan_tx(value)?;
                }
                // PSBT_IN_FINAL_SCRIPTWITNESS: a witness stack that fills the value.
                [0x08] => {
                    let mut v = Reader::new(value);
                    scan_witness_stack(&mut v)?;
                    if !v.is_empty() {
                        return Err(Malformed);
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    for _ in 0..shape.outputs {
        scan_map(&mut r, |_, _| Ok(()))?;
    }
    if !r.is_empty() {
        return Err(Malformed);
    }
    Ok(())
}
