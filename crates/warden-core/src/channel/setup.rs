//! The parameters of a channel, fixed by `setup_channel` (hsmd message 31).
//!
//! Core Lightning sends them once both sides agreed on the channel, and again, for the new
//! funding output, when a splice is negotiated.

use alloc::vec::Vec;

use bitcoin::{OutPoint, ScriptBuf};

use crate::keys::{Basepoints, FundingPubkey};
use crate::policy::{ensure, PolicyError, Rule};
use crate::tx::ChannelType;
use crate::units::{Msat, Sat};

/// BOLT-09 feature bit of `option_static_remotekey` (even, required).
pub const FEATURE_STATIC_REMOTEKEY: usize = 12;
/// BOLT-09 feature bit of `option_anchors_zero_fee_htlc_tx` (even, required).
pub const FEATURE_ANCHORS_ZERO_FEE_HTLC: usize = 22;
/// BOLT-09 feature bit of the obsolete `option_anchor_outputs` (non-zero-fee HTLC anchors).
pub const FEATURE_ANCHOR_OUTPUTS: usize = 20;
/// Feature bit of `option_zero_fee_commitments` as LDK 0.2 negotiates it (even, required): the
/// staging bit, the BOLTs proposal's 40 plus 100. The proposal's own bits 40/41 are not read
/// until the specification is final.
pub const FEATURE_ZERO_FEE_COMMITMENTS_STAGING: usize = 140;

/// Everything `setup_channel` fixes about a channel, in Warden's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSetup {
    /// Whether we opened the channel (we pay the commitment fee and the anchors).
    pub is_outbound: bool,
    /// The funding output's value.
    pub channel_value: Sat,
    /// What the opener gave the other side at the start (for dual funding: the accepter's
    /// contribution).
    pub push_value: Msat,
    /// The funding outpoint.
    pub funding_outpoint: OutPoint,
    /// The delay we impose on the peer's to_local outputs (on *their* commitments); Core
    /// Lightning's `local_to_self_delay`.
    pub holder_selected_delay: u16,
    /// Our upfront shutdown script, if any.
    pub holder_shutdown_script: Option<ScriptBuf>,
    /// The wallet index of our upfront shutdown script, when it is one of our addresses.
    pub holder_shutdown_wallet_index: Option<u32>,
    /// The peer's basepoints.
    pub counterparty_basepoints: Basepoints,
    /// The peer's funding key.
    pub counterparty_funding_pubkey: FundingPubkey,
    /// The delay the peer imposes on our to_local outputs (on *our* commitments); Core
    /// Lightning's `remote_to_self_delay`.
    pub counterparty_selected_delay: u16,
    /// The peer's upfront shutdown script, if any.
    pub counterparty_shutdown_script: Option<ScriptBuf>,
    /// The channel type's feature bits, as negotiated (BOLT-09 order, big-endian).
    pub channel_type_features: Vec<u8>,
}

/// Whether feature `bit` is set in a BOLT-09 big-endian feature bit field.
pub fn has_feature(features: &[u8], bit: usize) -> bool {
    let Some(index) = features.len().checked_sub(bit / 8 + 1) else {
        return false;
    };
    features.get(index).is_some_and(|b| b & (1u8 << (bit % 8)) != 0)
}

impl ChannelSetup {
    /// The commitment format the channel type selects: `static_remotekey`,
    /// `anchors_zero_fee_htlc_tx`, or `option_zero_fee_commitments` (which implies a static
    /// to_remote key and excludes the other two; extra bits such as `scid_alias` or
    /// `zero_conf` do not matter). Any other format is refused (`channel-safe-type`).
    pub fn channel_type(&self) -> Result<ChannelType, PolicyError> {
        let f = &self.channel_type_features;
        let zero_fee_commitments = has_feature(f, FEATURE_ZERO_FEE_COMMITMENTS_STAGING)
            || has_feature(f, FEATURE_ZERO_FEE_COMMITMENTS_STAGING + 1);
        if zero_fee_commitments {
            ensure!(
                !has_feature(f, FEATURE_ANCHOR_OUTPUTS)
                    && !has_feature(f, FEATURE_ANCHORS_ZERO_FEE_HTLC),
                Rule::ChannelSafeType,
                "channel type with option_zero_fee_commitments and another anchor format"
            );
            return Ok(ChannelType::ZeroFeeCommitments);
        }
        ensure!(
            !has_feature(f, FEATURE_ANCHOR_OUTPUTS),
            Rule::ChannelSafeType,
            "channel type with option_anchor_outputs (non-zero-fee htlc anchors) is not supported"
        );
        ensure!(
            has_feature(f, FEATURE_STATIC_REMOTEKEY),
            Rule::ChannelSafeType,
            "channel type without option_static_remotekey"
        );
        Ok(if has_feature(f, FEATURE_ANCHORS_ZERO_FEE_HTLC) {
            ChannelType::AnchorsZeroFeeHtlc
        } else {
            ChannelType::StaticRemoteKey
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_bits_are_big_endian() {
        // bit 12 set: 0x10 in the second byte from the end.
        assert!(has_feature(&[0x10, 0x00], 12));
        assert!(!has_feature(&[0x10, 0x00], 4));
        assert!(has_feature(&[0x40, 0x10, 0x00], 22));
        assert!(!has_feature(&[], 0));
        assert!(!has_feature(&[0xff], 8));
    }
}
