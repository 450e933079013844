//! Per-channel state: what Warden remembers of each channel, and the transitions the hsmd
//! messages make on it.
//!
//! - [`setup`]: the parameters fixed when the channel is set up.
//! - [`encoding`]: the versioned TLV encoding of a [`ChannelState`] for persistence.
//! - [`parts`]: the same state split into records that change at different times, so that an
//!   update writes only what it changed.
//! - [`state`]: commitment numbers, per-commitment points, the peer's revocation secrets, the
//!   current commitments' content, and the ordering rules that keep Warden from ever signing
//!   two conflicting states (DESIGN.md §3, invariant 2); splice candidates (a new funding
//!   announced by a repeated `setup_channel`) and the commitments on each until lock-in.
//!
//! Every transition checks first and changes nothing on refusal: a refused request leaves the
//! state exactly as it was.

pub mod commitment;
pub mod encoding;
pub mod parts;
pub mod setup;
pub mod state;

pub use setup::ChannelSetup;
pub use state::{
    ChannelState, CommitmentContent, HtlcInfo, HtlcSide, SignedCounterpartyCommitment,
    SignedHolderCommitment, SpliceCandidate,
};

use crate::keys::node::NodeId;
use crate::units::Dbid;

/// Where a channel lives: Core Lightning names a channel by its peer and its database id, and
/// derives the channel's keys from both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelSlot {
    /// The peer's node id.
    pub peer: NodeId,
    /// Core Lightning's database id of the channel.
    pub dbid: Dbid,
}
