//! The on-chain wallet: PSBT signing (withdrawals, anchor spends, HTLC transactions with
//! added fee inputs), addresses, message signatures and derived secrets.
//!
//! All of these come from lightningd on the master connection.

use alloc::vec::Vec;

use bitcoin::ScriptBuf;
use secp256k1::ecdsa::RecoverableSignature;
use secp256k1::PublicKey;

use crate::secret::Secret;
use crate::tx::WirePsbt;
use crate::types::{HsmUtxo, NodeId};

wire_message!(
    /// Signs the wallet inputs of a PSBT (withdrawals, funding transactions).
    SignWithdrawal = 7, "hsmd_sign_withdrawal" {
        /// The wallet outputs the PSBT spends.
        inputs: Vec<HsmUtxo>,
        /// The PSBT.
        psbt: WirePsbt,
    }
);

wire_message!(
    /// The PSBT with our signatures.
    SignWithdrawalReply = 107, "hsmd_sign_withdrawal_reply" {
        /// The signed PSBT.
        psbt: WirePsbt,
    }
);

wire_message!(
    /// Signs a transaction spending a commitment's anchor (and wallet inputs for its fee).
    SignAnchorspend = 147, "hsmd_sign_anchorspend" {
        /// The peer.
        peerid: NodeId,
        /// The channel's database id.
        channel_dbid: u64,
        /// The wallet outputs the PSBT spends.
        inputs: Vec<HsmUtxo>,
        /// The PSBT.
        psbt: WirePsbt,
    }
);

wire_message!(
    /// The anchor spend with our signatures.
    SignAnchorspendReply = 148, "hsmd_sign_anchorspend_reply" {
        /// The signed PSBT.
        psbt: WirePsbt,
    }
);

wire_message!(
    /// Signs an HTLC transaction to which wallet inputs were added for its fee.
    SignHtlcTxMingle = 149, "hsmd_sign_htlc_tx_mingle" {
        /// The peer.
        peerid: NodeId,
        /// The channel's database id.
        channel_dbid: u64,
        /// The wallet outputs the PSBT spends.
        inputs: Vec<HsmUtxo>,
        /// The PSBT.
        psbt: WirePsbt,
    }
);

wire_message!(
    /// The HTLC transaction with our signatures on the wallet inputs.
    SignHtlcTxMingleReply = 150, "hsmd_sign_htlc_tx_mingle_reply" {
        /// The signed PSBT.
        psbt: WirePsbt,
    }
);

wire_message!(
    /// Asks for the script of an output a peer's unilateral close pays us.
    GetOutputScriptpubkey = 24, "hsmd_get_output_scriptpubkey" {
        /// The channel's database id.
        channel_id: u64,
        /// The peer.
        peer_id: NodeId,
        /// The close's per-commitment point, if the output's key depends on it.
        commitment_point: Option<PublicKey>,
    }
);

wire_message!(
    /// The output's script.
    GetOutputScriptpubkeyReply = 124, "hsmd_get_output_scriptpubkey_reply" {
        /// The script.
        script: ScriptBuf,
    }
);

wire_message!(
    /// Checks lightningd's derivation of wallet key `index` (m/0/0/index, unhardened).
    CheckPubkey = 28, "hsmd_check_pubkey" {
        /// The key index.
        index: u32,
        /// The key lightningd derived.
        pubkey: PublicKey,
    }
);

wire_message!(
    /// Whether the derivation matches.
    CheckPubkeyReply = 128, "hsmd_check_pubkey_reply" {
        /// True if it does.
        ok: bool,
    }
);

wire_message!(
    /// Checks lightningd's derivation of BIP-0086 key `index` (m/86'/0'/0'/0/index).
    CheckBip86Pubkey = 56, "hsmd_check_bip86_pubkey" {
        /// The key index.
        index: u32,
        /// The key lightningd derived.
        pubkey: PublicKey,
    }
);

wire_message!(
    /// Whether the derivation matches.
    CheckBip86PubkeyReply = 156, "hsmd_check_bip86_pubkey_reply" {
        /// True if it does.
        ok: bool,
    }
);

wire_message!(
    /// Signs a message with the node key (`signmessage`).
    SignMessage = 23, "hsmd_sign_message" {
        /// The message.
        msg: Vec<u8>,
    }
);

wire_message!(
    /// The node key's signature on the message.
    SignMessageReply = 123, "hsmd_sign_message_reply" {
        /// The signature.
        sig: RecoverableSignature,
    }
);

wire_message!(
    /// Signs a message with wallet key `keyidx`, BIP-0137 style (`signmessagewithkey`).
    Bip137SignMessage = 45, "hsmd_bip137_sign_message" {
        /// The message.
        msg: Vec<u8>,
        /// The wallet key index.
        keyidx: u32,
    }
);

wire_message!(
    /// The wallet key's signature on the message.
    Bip137SignMessageReply = 145, "hsmd_bip137_sign_message_reply" {
        /// The signature.
        sig: RecoverableSignature,
    }
);

wire_message!(
    /// Derives a pseudorandom secret from `info` (`makesecret`).
    DeriveSecret = 27, "hsmd_derive_secret" {
        /// The derivation's info string.
        info: Vec<u8>,
    }
);

wire_message!(
    /// The derived secret.
    DeriveSecretReply = 127, "hsmd_derive_secret_reply" {
        /// The secret.
        secret: Secret,
    }
);
