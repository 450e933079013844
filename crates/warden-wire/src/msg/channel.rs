//! Channel lifecycle and commitment state: declaring, setting up and forgetting a channel,
//! funding outpoints, basepoints, per-commitment points and secrets, and the validation of the
//! peer's commitment signatures and revocations.
//!
//! `new_channel`, `forget_channel` and `get_channel_basepoints` come from lightningd (master);
//! the rest come from a per-channel client (`openingd`, `channeld`, `closingd`, `onchaind`),
//! which hsmd knows by the peer id and database id of its `client_hsmfd`.

use alloc::vec::Vec;

use bitcoin::{Amount, ScriptBuf, Txid};
use secp256k1::PublicKey;

use crate::secret::Secret;
use crate::tx::BitcoinTx;
use crate::types::{AmountMsat, Basepoints, ChannelType, HsmHtlc, NodeId};

wire_message!(
    /// Declares a new channel with a peer.
    NewChannel = 30, "hsmd_new_channel" {
        /// The peer.
        id: NodeId,
        /// The channel's database id.
        dbid: u64,
    }
);

wire_message!(
    /// The channel is declared.
    NewChannelReply = 130, "hsmd_new_channel_reply" {}
);

wire_message!(
    /// Gives the channel's fixed parameters, once both sides agreed on them.
    SetupChannel = 31, "hsmd_setup_channel" {
        /// Whether we opened the channel.
        is_outbound: bool,
        /// The channel's capacity.
        channel_value: Amount,
        /// What the opener pushed to the other side.
        push_value: AmountMsat,
        /// The funding transaction.
        funding_txid: Txid,
        /// The funding output's index.
        funding_txout: u16,
        /// The CSV delay on our outputs (set by the peer).
        local_to_self_delay: u16,
        /// Our upfront shutdown script (empty if none).
        local_shutdown_script: ScriptBuf,
        /// The wallet key index of our shutdown script, if it is a wallet address.
        local_shutdown_wallet_index: Option<u32>,
        /// The peer's basepoints.
        remote_basepoints: Basepoints,
        /// The peer's funding key.
        remote_funding_pubkey: PublicKey,
        /// The CSV delay on the peer's outputs (set by us).
        remote_to_self_delay: u16,
        /// The peer's upfront shutdown script (empty if none).
        remote_shutdown_script: ScriptBuf,
        /// The negotiated channel type.
        channel_type: ChannelType,
    }
);

wire_message!(
    /// The channel is set up.
    SetupChannelReply = 131, "hsmd_setup_channel_reply" {}
);

wire_message!(
    /// Asks whether a funding (or splice) outpoint is buried deep enough.
    CheckOutpoint = 32, "hsmd_check_outpoint" {
        /// The funding transaction.
        funding_txid: Txid,
        /// The funding output's index.
        funding_txout: u16,
    }
);

wire_message!(
    /// Whether the outpoint is buried.
    CheckOutpointReply = 132, "hsmd_check_outpoint_reply" {
        /// True if it is.
        is_buried: bool,
    }
);

wire_message!(
    /// Marks a funding (or splice) outpoint as locked.
    LockOutpoint = 37, "hsmd_lock_outpoint" {
        /// The funding transaction.
        funding_txid: Txid,
        /// The funding output's index.
        funding_txout: u16,
    }
);

wire_message!(
    /// The outpoint is locked.
    LockOutpointReply = 137, "hsmd_lock_outpoint_reply" {}
);

wire_message!(
    /// Forgets a channel that is closed and buried.
    ForgetChannel = 34, "hsmd_forget_channel" {
        /// The peer.
        id: NodeId,
        /// The channel's database id.
        dbid: u64,
    }
);

wire_message!(
    /// The channel is forgotten.
    ForgetChannelReply = 134, "hsmd_forget_channel_reply" {}
);

wire_message!(
    /// Asks for a channel's basepoints and funding key.
    GetChannelBasepoints = 10, "hsmd_get_channel_basepoints" {
        /// The peer.
        peerid: NodeId,
        /// The channel's database id.
        dbid: u64,
    }
);

wire_message!(
    /// The channel's basepoints and funding key.
    GetChannelBasepointsReply = 110, "hsmd_get_channel_basepoints_reply" {
        /// Our basepoints.
        basepoints: Basepoints,
        /// Our funding key.
        funding_pubkey: PublicKey,
    }
);

wire_message!(
    /// Asks for our per-commitment point number `n`.
    GetPerCommitmentPoint = 18, "hsmd_get_per_commitment_point" {
        /// The commitment number.
        n: u64,
    }
);

wire_message!(
    /// Our per-commitment point; since hsmd wire version 6 never with a secret.
    GetPerCommitmentPointReply = 118, "hsmd_get_per_commitment_point_reply" {
        /// The point.
        per_commitment_point: PublicKey,
        /// Before version 6: the secret of commitment `n - 2`, if `n >= 2`.
        old_commitment_secret: Option<Secret>,
    }
);

wire_message!(
    /// Asks whether a secret the peer claims is our future per-commitment secret `n`
    /// (option_data_loss_protect).
    CheckFutureSecret = 22, "hsmd_check_future_secret" {
        /// The commitment number.
        n: u64,
        /// The claimed secret.
        commitment_secret: Secret,
    }
);

wire_message!(
    /// Whether the claimed secret is ours.
    CheckFutureSecretReply = 122, "hsmd_check_future_secret_reply" {
        /// True if it is.
        correct: bool,
    }
);

wire_message!(
    /// The peer's signatures on our next commitment: hsmd checks them before we accept it.
    ValidateCommitmentTx = 35, "hsmd_validate_commitment_tx" {
        /// Our commitment transaction.
        tx: BitcoinTx,
        /// Its HTLCs.
        htlcs: Vec<HsmHtlc>,
        /// Its commitment number.
        commit_num: u64,
        /// Its feerate, in satoshis per kiloweight.
        feerate: u32,
        /// The peer's signature on it.
        sig: bitcoin::ecdsa::Signature,
        /// The peer's signatures on its HTLC transactions.
        htlc_sigs: Vec<bitcoin::ecdsa::Signature>,
    }
);

wire_message!(
    /// The commitment is valid: the next point (and, before version 5, the old secret).
    ValidateCommitmentTxReply = 135, "hsmd_validate_commitment_tx_reply" {
        /// Before version 5: the secret revoking the previous commitment.
        old_commitment_secret: Option<Secret>,
        /// Our next per-commitment point.
        next_per_commitment_point: PublicKey,
    }
);

wire_message!(
    /// Revokes our commitment `commit_num`.
    RevokeCommitmentTx = 40, "hsmd_revoke_commitment_tx" {
        /// The commitment number to revoke.
        commit_num: u64,
    }
);

wire_message!(
    /// The revocation secret and our next per-commitment point.
    RevokeCommitmentTxReply = 140, "hsmd_revoke_commitment_tx_reply" {
        /// The per-commitment secret of the revoked commitment.
        old_commitment_secret: Secret,
        /// Our next per-commitment point.
        next_per_commitment_point: PublicKey,
    }
);

wire_message!(
    /// The peer revoked its commitment `revoke_num`: hsmd checks the secret.
    ValidateRevocation = 36, "hsmd_validate_revocation" {
        /// The revoked commitment number.
        revoke_num: u64,
        /// The peer's per-commitment secret.
        per_commitment_secret: Secret,
    }
);

wire_message!(
    /// The revocation is valid.
    ValidateRevocationReply = 136, "hsmd_validate_revocation_reply" {}
);
