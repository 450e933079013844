//! What hsmd sends lightningd on its status connection (file descriptor 0), outside requests
//! and replies: log lines, a fatal failure, and the report of a client's bad request
//! (`common/status_wire.csv`, `hsmd/hsmd_wire.csv`).

use alloc::vec::Vec;

use crate::codec::{Reader, WireField, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::types::{NodeId, WireString};

/// A log level (`enum log_level`, `common/status_levels.h`; one byte on the wire).
///
/// The numbering is that of Core Lightning since it added the `trace` level below `debug`;
/// a level above [`LogLevel::BROKEN`] is refused, as `fromwire_log_level` refuses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogLevel(u8);

impl LogLevel {
    /// `LOG_IO_OUT`: bytes sent.
    pub const IO_OUT: LogLevel = LogLevel(0);
    /// `LOG_IO_IN`: bytes received.
    pub const IO_IN: LogLevel = LogLevel(1);
    /// `LOG_TRACE`: more detail than debug.
    pub const TRACE: LogLevel = LogLevel(2);
    /// `LOG_DBG`: details for debugging.
    pub const DEBUG: LogLevel = LogLevel(3);
    /// `LOG_INFORM`: what is going on.
    pub const INFORM: LogLevel = LogLevel(4);
    /// `LOG_UNUSUAL`: something strange.
    pub const UNUSUAL: LogLevel = LogLevel(5);
    /// `LOG_BROKEN`: something is broken.
    pub const BROKEN: LogLevel = LogLevel(6);

    /// The level with this number, if there is one.
    pub fn from_u8(v: u8) -> Option<LogLevel> {
        (v <= LogLevel::BROKEN.0).then_some(LogLevel(v))
    }

    /// The level's number.
    pub fn to_u8(self) -> u8 {
        self.0
    }
}

impl WireField for LogLevel {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.offset();
        let value = r.read_u8()?;
        LogLevel::from_u8(value).ok_or(DecodeError::InvalidLogLevel { offset, value })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u8(self.0);
        Ok(())
    }
}

/// Why a daemon failed (`enum status_failreason`; one byte on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FailReason(u8);

impl FailReason {
    /// `STATUS_FAIL_MASTER_IO`: lightningd sent something unknown or malformed.
    pub const MASTER_IO: FailReason = FailReason(0);
    /// `STATUS_FAIL_HSM_IO`: hsmd sent something unknown or malformed.
    pub const HSM_IO: FailReason = FailReason(1);
    /// `STATUS_FAIL_GOSSIP_IO`: gossipd sent something unknown or malformed.
    pub const GOSSIP_IO: FailReason = FailReason(2);
    /// `STATUS_FAIL_INTERNAL_ERROR`: any other internal error.
    pub const INTERNAL_ERROR: FailReason = FailReason(3);
    /// `STATUS_FAIL_PEER_IO`: the peer's connection failed.
    pub const PEER_IO: FailReason = FailReason(4);
    /// `STATUS_FAIL_PEER_BAD`: the peer misbehaved.
    pub const PEER_BAD: FailReason = FailReason(5);

    /// The reason with this number, if there is one.
    pub fn from_u8(v: u8) -> Option<FailReason> {
        (v <= FailReason::PEER_BAD.0).then_some(FailReason(v))
    }

    /// The reason's number.
    pub fn to_u8(self) -> u8 {
        self.0
    }
}

impl WireField for FailReason {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.offset();
        let value = r.read_u8()?;
        FailReason::from_u8(value).ok_or(DecodeError::InvalidFailReason { offset, value })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u8(self.0);
        Ok(())
    }
}

wire_message!(
    /// A client sent a request hsmd refused; lightningd logs it as broken.
    ClientBadRequest = 1000, "hsmstatus_client_bad_request" {
        /// The client's identity.
        id: NodeId,
        /// What was wrong.
        description: WireString,
        /// The request.
        msg: Vec<u8>,
    }
);

wire_message!(
    /// A log line.
    StatusLog = 0xFFF0, "status_log" {
        /// Its level.
        level: LogLevel,
        /// The peer it is about, if any.
        peer: Option<NodeId>,
        /// The text.
        entry: WireString,
    }
);

wire_message!(
    /// hsmd is about to exit because of an error.
    StatusFail = 0xFFF2, "status_fail" {
        /// Why.
        failreason: FailReason,
        /// What happened.
        desc: WireString,
    }
);
