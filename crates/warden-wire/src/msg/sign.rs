//! Signatures on channel transactions: commitments (ours for broadcast, the peer's), HTLC
//! transactions, mutual closes, splices, and the sweeps of our outputs after a close.
//!
//! Every request here but `sign_commitment_tx` is answered with [`SignTxReply`]. The
//! `sign_any_*` variants come from lightningd on `onchaind`'s behalf and name the channel (peer
//! and database id) and the input to sign; the others come from a per-channel client and sign
//! input 0 (or `input_index` for a splice).

use alloc::vec::Vec;

use bitcoin::ScriptBuf;
use secp256k1::PublicKey;

use crate::secret::Secret;
use crate::tx::BitcoinTx;
use crate::types::{HsmHtlc, NodeId};

wire_message!(
    /// Signs our own commitment transaction, for broadcast (lightningd, when the channel must
    /// close unilaterally).
    SignCommitmentTx = 5, "hsmd_sign_commitment_tx" {
        /// The peer.
        peer_id: NodeId,
        /// The channel's database id.
        channel_dbid: u64,
        /// Our commitment transaction.
        tx: BitcoinTx,
        /// The peer's funding key.
        remote_funding_key: PublicKey,
        /// The commitment number.
        commit_num: u64,
    }
);

wire_message!(
    /// Our signature on our commitment transaction.
    SignCommitmentTxReply = 105, "hsmd_sign_commitment_tx_reply" {
        /// The signature.
        sig: bitcoin::ecdsa::Signature,
    }
);

wire_message!(
    /// Signs the peer's commitment transaction (`openingd`, `channeld`).
    SignRemoteCommitmentTx = 19, "hsmd_sign_remote_commitment_tx" {
        /// The peer's commitment transaction.
        tx: BitcoinTx,
        /// The peer's funding key.
        remote_funding_key: PublicKey,
        /// The peer's per-commitment point for this commitment.
        remote_per_commit: PublicKey,
        /// Whether the channel has `option_static_remotekey`.
        option_static_remotekey: bool,
        /// The commitment number.
        commit_num: u64,
        /// The commitment's HTLCs.
        htlcs: Vec<HsmHtlc>,
        /// The commitment's feerate, in satoshis per kiloweight.
        feerate: u32,
    }
);

wire_message!(
    /// Signs an HTLC transaction spending the peer's commitment (`channeld`).
    SignRemoteHtlcTx = 20, "hsmd_sign_remote_htlc_tx" {
        /// The HTLC transaction.
        tx: BitcoinTx,
        /// The HTLC output's witness script.
        wscript: ScriptBuf,
        /// The peer's per-commitment point for the commitment.
        remote_per_commit_point: PublicKey,
        /// Whether the channel has anchor outputs.
        option_anchor_outputs: bool,
    }
);

wire_message!(
    /// Signs a mutual close transaction (`closingd`).
    SignMutualCloseTx = 21, "hsmd_sign_mutual_close_tx" {
        /// The closing transaction.
        tx: BitcoinTx,
        /// The peer's funding key.
        remote_funding_key: PublicKey,
    }
);

wire_message!(
    /// Signs the funding input of a splice transaction (`channeld`).
    SignSpliceTx = 29, "hsmd_sign_splice_tx" {
        /// The splice transaction.
        tx: BitcoinTx,
        /// The peer's funding key.
        remote_funding_key: PublicKey,
        /// The input spending the current funding output.
        input_index: u32,
    }
);

wire_message!(
    /// A signature on a transaction: the reply to every signing request here but
    /// `sign_commitment_tx`.
    SignTxReply = 112, "hsmd_sign_tx_reply" {
        /// The signature.
        sig: bitcoin::ecdsa::Signature,
    }
);

wire_message!(
    /// Signs a spend of our delayed output of our commitment (`onchaind`).
    SignDelayedPaymentToUs = 12, "hsmd_sign_delayed_payment_to_us" {
        /// The commitment number.
        commit_num: u64,
        /// The spending transaction.
        tx: BitcoinTx,
        /// The output's witness script.
        wscript: ScriptBuf,
    }
);

wire_message!(
    /// Signs a spend of an HTLC output of the peer's commitment that pays us (`onchaind`).
    SignRemoteHtlcToUs = 13, "hsmd_sign_remote_htlc_to_us" {
        /// The peer's per-commitment point for the commitment.
        remote_per_commitment_point: PublicKey,
        /// The spending transaction.
        tx: BitcoinTx,
        /// The output's witness script.
        wscript: ScriptBuf,
        /// Whether the channel has anchor outputs.
        option_anchor_outputs: bool,
    }
);

wire_message!(
    /// Signs a penalty spend of a revoked commitment's output (`channeld`, for the watchtower
    /// code).
    SignPenaltyToUs = 14, "hsmd_sign_penalty_to_us" {
        /// The peer's revealed per-commitment secret of the revoked commitment.
        revocation_secret: Secret,
        /// The spending transaction.
        tx: BitcoinTx,
        /// The output's witness script.
        wscript: ScriptBuf,
    }
);

wire_message!(
    /// [`SignDelayedPaymentToUs`] asked by lightningd for a named channel and input.
    SignAnyDelayedPaymentToUs = 142, "hsmd_sign_any_delayed_payment_to_us" {
        /// The commitment number.
        commit_num: u64,
        /// The spending transaction.
        tx: BitcoinTx,
        /// The output's witness script.
        wscript: ScriptBuf,
        /// The input to sign.
        input: u32,
        /// The peer.
        peerid: NodeId,
        /// The channel's database id.
        channel_dbid: u64,
    }
);

wire_message!(
    /// [`SignRemoteHtlcToUs`] asked by lightningd for a named channel and input.
    SignAnyRemoteHtlcToUs = 143, "hsmd_sign_any_remote_htlc_to_us" {
        /// The peer's per-commitment point for the commitment.
        remote_per_commitment_point: PublicKey,
        /// The spending transaction.
        tx: BitcoinTx,
        /// The output's witness script.
        wscript: ScriptBuf,
        /// Whether the channel has anchor outputs.
        option_anchor_outputs: bool,
        /// The input to sign.
        input: u32,
        /// The peer.
        peerid: NodeId,
        /// The channel's database id.
        channel_dbid: u64,
    }
);

wire_message!(
    /// [`SignPenaltyToUs`] asked by lightningd for a named channel and input.
    SignAnyPenaltyToUs = 144, "hsmd_sign_any_penalty_to_us" {
        /// The peer's revealed per-commitment secret of the revoked commitment.
        revocation_secret: Secret,
        /// The spending transaction.
        tx: BitcoinTx,
        /// The output's witness script.
        wscript: ScriptBuf,
        /// The input to sign.
        input: u32,
        /// The peer.
        peerid: NodeId,
        /// The channel's database id.
        channel_dbid: u64,
    }
);

wire_message!(
    /// Signs an HTLC-success or HTLC-timeout transaction spending our own commitment, asked by
    /// lightningd for a named channel and input.
    SignAnyLocalHtlcTx = 146, "hsmd_sign_any_local_htlc_tx" {
        /// The commitment number.
        commit_num: u64,
        /// The HTLC transaction.
        tx: BitcoinTx,
        /// The HTLC output's witness script.
        wscript: ScriptBuf,
        /// Whether the channel has anchor outputs.
        option_anchor_outputs: bool,
        /// The input to sign.
        input: u32,
        /// The peer.
        peerid: NodeId,
        /// The channel's database id.
        channel_dbid: u64,
    }
);
