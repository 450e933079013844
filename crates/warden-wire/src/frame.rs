//! Framing: how messages travel over lightningd's file descriptors (`wire/wire_sync.c`).
//!
//! A frame is a `u32` big-endian body length, then the body; the body is a `u16` big-endian
//! message type, then the message's fields. A length of 2^27 or more is refused
//! (`WIRE_LEN_LIMIT`), before anything is allocated. There is no I/O here: the helpers work on
//! byte slices, and the binary that owns the file descriptors reads and writes them.

use alloc::vec::Vec;

use crate::codec::u32_len;
use crate::error::{DecodeError, EncodeError};

/// The length of a frame header (the body length).
pub const HEADER_LEN: usize = 4;

/// Bodies must be shorter than this (2^27 bytes, Core Lightning's `WIRE_LEN_LIMIT`).
pub const MAX_BODY_LEN: u32 = 1 << 27;

/// The body length a frame header announces, refusing 2^27 or more.
pub fn body_len(header: [u8; HEADER_LEN]) -> Result<usize, DecodeError> {
    let len = u32::from_be_bytes(header);
    if len >= MAX_BODY_LEN {
        return Err(DecodeError::FrameTooLarge { len });
    }
    Ok(u32_len(len))
}

/// Reads one frame from the start of `buf`.
///
/// Returns `Ok(None)` while `buf` holds less than a whole frame (read more and call again), or
/// the body and the number of bytes the frame took (header included).
pub fn read_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, DecodeError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = body_len(*header)?;
    let total = HEADER_LEN.saturating_add(len);
    Ok(buf.get(HEADER_LEN..total).map(|body| (body, total)))
}

/// Appends a frame holding `body` to `out`.
pub fn write_frame(out: &mut Vec<u8>, body: &[u8]) -> Result<(), EncodeError> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l < MAX_BODY_LEN)
        .ok_or(EncodeError::FrameTooLarge { len: body.len() })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// A frame holding `body`.
pub fn encode_frame(body: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(body.len().saturating_add(HEADER_LEN));
    write_frame(&mut out, body)?;
    Ok(out)
}

/// The message type of a body (its first two bytes).
pub fn peek_type(body: &[u8]) -> Result<u16, DecodeError> {
    match body.first_chunk::<2>() {
        Some(t) => Ok(u16::from_be_bytes(*t)),
        None => Err(DecodeError::Truncated { offset: 0, needed: 2, remaining: body.len() }),
    }
}
