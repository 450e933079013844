//! Transactions and PSBTs as Core Lightning puts them on the wire.
//!
//! - `wally_psbt` (`towire_wally_psbt`, `bitcoin/psbt.c`): a `u32` length, then the PSBT
//!   serialized as version 0 (lightningd works on version 2 internally and converts to version 0
//!   for other processes). `fromwire_wally_psbt` gives no PSBT for length 0; here that is
//!   [`DecodeError::EmptyPsbt`].
//! - `bitcoin_tx` (`towire_bitcoin_tx`, `bitcoin/tx.c`): a `u32` length, then the raw
//!   transaction (with witnesses when it has any), which must fill exactly that length, then a
//!   `wally_psbt` carrying the same transaction with its input metadata (amounts, scripts).
//!
//! Both types keep the bytes they were decoded from and re-encode those bytes, not a
//! re-serialization: rust-bitcoin orders PSBT keys and may serialize differently from libwally,
//! and a message must re-encode byte for byte.

use alloc::vec::Vec;

use bitcoin::consensus;
use bitcoin::{Psbt, Transaction};

use crate::codec::{u32_len, Reader, WireField, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::scan;

/// A PSBT (`wally_psbt`) with the exact bytes it travels as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WirePsbt {
    psbt: Psbt,
    bytes: Vec<u8>,
}

impl WirePsbt {
    /// Wraps a PSBT, serializing it (as version 0) for the wire.
    pub fn new(psbt: Psbt) -> WirePsbt {
        let bytes = psbt.serialize();
        WirePsbt { psbt, bytes }
    }

    /// Parses serialized PSBT bytes (no length prefix). Offsets in the error count from the
    /// first byte of `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<WirePsbt, DecodeError> {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let psbt = parse_psbt(&bytes, 0, len)?;
        Ok(WirePsbt { psbt, bytes })
    }

    /// The parsed PSBT.
    pub fn psbt(&self) -> &Psbt {
        &self.psbt
    }

    /// The bytes on the wire (without the length prefix).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The parsed PSBT, dropping the bytes.
    pub fn into_psbt(self) -> Psbt {
        self.psbt
    }
}

/// Parses PSBT bytes after the structural pre-scan.
fn parse_psbt(bytes: &[u8], offset: usize, len: u32) -> Result<Psbt, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::EmptyPsbt { offset });
    }
    scan::scan_psbt(bytes).map_err(|_| DecodeError::InvalidPsbt { offset, len })?;
    Psbt::deserialize(bytes).map_err(|_| DecodeError::InvalidPsbt { offset, len })
}

impl WireField for WirePsbt {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.offset();
        let len = r.read_u32()?;
        let bytes = r.read_bytes(u32_len(len))?;
        let psbt = parse_psbt(bytes, offset, len)?;
        Ok(WirePsbt { psbt, bytes: bytes.to_vec() })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_len_u32(self.bytes.len())?;
        w.write_bytes(&self.bytes);
        Ok(())
    }
}

/// A transaction as hsmd receives it (`bitcoin_tx`): the raw transaction and its PSBT.
///
/// hsmd does not check that the PSBT's unsigned transaction is the raw transaction; neither
/// does this decoder. Whoever signs must (the PSBT's input amounts and scripts are what a
/// signature commits to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitcoinTx {
    tx: Transaction,
    tx_bytes: Vec<u8>,
    psbt: WirePsbt,
}

impl BitcoinTx {
    /// Wraps a transaction and its PSBT, serializing both for the wire.
    pub fn new(tx: Transaction, psbt: Psbt) -> BitcoinTx {
        let tx_bytes = consensus::serialize(&tx);
        BitcoinTx { tx, tx_bytes, psbt: WirePsbt::new(psbt) }
    }

    /// The transaction.
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    /// The raw transaction bytes on the wire (without the length prefix).
    pub fn tx_bytes(&self) -> &[u8] {
        &self.tx_bytes
    }

    /// The PSBT that travels with the transaction.
    pub fn psbt(&self) -> &WirePsbt {
        &self.psbt
    }
}

impl WireField for BitcoinTx {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.offset();
        let len = r.read_u32()?;
        let tx_bytes = r.read_bytes(u32_len(len))?;
        scan::scan_tx(tx_bytes).map_err(|_| DecodeError::InvalidTransaction { offset, len })?;
        let tx: Transaction = consensus::deserialize(tx_bytes)
            .map_err(|_| DecodeError::InvalidTransaction { offset, len })?;
        let psbt = WirePsbt::read(r)?;
        Ok(BitcoinTx { tx, tx_bytes: tx_bytes.to_vec(), psbt })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_len_u32(self.tx_bytes.len())?;
        w.write_bytes(&self.tx_bytes);
        self.psbt.write(w)
    }
}
