//! Which permission bit a client needs for each request type.
//!
//! Source: Core Lightning `hsmd/libhsmd.c`, `hsmd_check_client_capabilities`. The check is on
//! the type number alone, before the request is decoded, as `hsmd` does it. The master
//! connection holds every bit.

use warden_wire::msg::*;
use warden_wire::{Message, Permissions};

/// Every permission bit, for the master connection.
pub const ALL: Permissions = Permissions(
    Permissions::ECDH.0
        | Permissions::SIGN_GOSSIP.0
        | Permissions::SIGN_ONCHAIN_TX.0
        | Permissions::COMMITMENT_POINT.0
        | Permissions::SIGN_REMOTE_TX.0
        | Permissions::SIGN_CLOSING_TX.0
        | Permissions::SIGN_WILL_FUND_OFFER.0
        | Permissions::SIGN_SPLICE_TX.0
        | Permissions::LOCK_OUTPOINT.0
        | Permissions::MASTER.0,
);

/// The permission a request of type `msg_type` needs, or `None` for a type that is not a
/// request (no client may send it).
pub fn required(msg_type: u16) -> Option<Permissions> {
    let p = match msg_type {
        Ecdh::TYPE => Permissions::ECDH,
        CannouncementSig::TYPE | CupdateSig::TYPE | NodeAnnouncementSig::TYPE => {
            Permissions::SIGN_GOSSIP
        }
        SignDelayedPaymentToUs::TYPE | SignRemoteHtlcToUs::TYPE | SignPenaltyToUs::TYPE => {
            Permissions::SIGN_ONCHAIN_TX
        }
        GetPerCommitmentPoint::TYPE | CheckFutureSecret::TYPE | SetupChannel::TYPE => {
            Permissions::COMMITMENT_POINT
        }
        SignRemoteCommitmentTx::TYPE
        | SignRemoteHtlcTx::TYPE
        | ValidateCommitmentTx::TYPE
        | RevokeCommitmentTx::TYPE
        | ValidateRevocation::TYPE => Permissions::SIGN_REMOTE_TX,
        SignMutualCloseTx::TYPE => Permissions::SIGN_CLOSING_TX,
        SignSpliceTx::TYPE => Permissions::SIGN_SPLICE_TX,
        SignOptionWillFundOffer::TYPE => Permissions::SIGN_WILL_FUND_OFFER,
        CheckOutpoint::TYPE | LockOutpoint::TYPE => Permissions::LOCK_OUTPOINT,
        Init::TYPE
        | DevPreinit::TYPE
        | NewChannel::TYPE
        | ForgetChannel::TYPE
        | ClientHsmfd::TYPE
        | SignWithdrawal::TYPE
        | SignInvoice::TYPE
        | SignCommitmentTx::TYPE
        | GetChannelBasepoints::TYPE
        | DevMemleak::TYPE
        | SignMessage::TYPE
        | GetOutputScriptpubkey::TYPE
        | SignBolt12::TYPE
        | SignBolt12V2::TYPE
        | PreapproveInvoice::TYPE
        | PreapproveKeysend::TYPE
        | PreapproveInvoiceCheck::TYPE
        | PreapproveKeysendCheck::TYPE
        | DeriveSecret::TYPE
        | CheckPubkey::TYPE
        | CheckBip86Pubkey::TYPE
        | Bip137SignMessage::TYPE
        | SignAnyPenaltyToUs::TYPE
        | SignAnyDelayedPaymentToUs::TYPE
        | SignAnyRemoteHtlcToUs::TYPE
        | SignAnyLocalHtlcTx::TYPE
        | SignAnchorspend::TYPE
        | SignHtlcTxMingle::TYPE
        | SignAnyCannouncement::TYPE
        | WardenUnseal::TYPE
        | WardenNodeBackupPubkey::TYPE
        | WardenStatus::TYPE => Permissions::MASTER,
        _ => return None,
    };
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_wire::Request;

    #[test]
    fn every_request_type_needs_exactly_one_bit() {
        for t in Request::TYPES {
            let p = required(*t).unwrap_or_else(|| panic!("type {t} has no permission"));
            assert_eq!(p.0.count_ones(), 1, "type {t}");
            assert!(ALL.contains(p));
        }
        assert_eq!(required(EcdhReply::TYPE), None);
        assert_eq!(required(0xffff), None);
    }
}
