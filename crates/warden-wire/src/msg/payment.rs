//! Payments: BOLT-11 invoice signatures, BOLT-12 signatures, liquidity-ad offers, and the
//! pre-approval of outgoing payments (which a validating signer may refuse).
//!
//! All of these come from lightningd on the master connection.

use alloc::vec::Vec;

use bitcoin::hashes::sha256;
use secp256k1::ecdsa::{RecoverableSignature, Signature};
use secp256k1::{schnorr, PublicKey};

use crate::types::{AmountMsat, NodeId, WireString};

wire_message!(
    /// Signs a BOLT-11 invoice.
    SignInvoice = 8, "hsmd_sign_invoice" {
        /// The invoice's data part, as 5-bit values one per byte.
        u5bytes: Vec<u8>,
        /// The invoice's human-readable part.
        hrp: Vec<u8>,
    }
);

wire_message!(
    /// The node key's signature on the invoice.
    SignInvoiceReply = 108, "hsmd_sign_invoice_reply" {
        /// The signature.
        sig: RecoverableSignature,
    }
);

wire_message!(
    /// Asks whether paying an invoice is approved.
    PreapproveInvoice = 38, "hsmd_preapprove_invoice" {
        /// The invoice (BOLT-11 or BOLT-12).
        invstring: WireString,
    }
);

wire_message!(
    /// Whether the payment is approved.
    PreapproveInvoiceReply = 138, "hsmd_preapprove_invoice_reply" {
        /// True if it is.
        approved: bool,
    }
);

wire_message!(
    /// Asks whether a keysend payment is approved.
    PreapproveKeysend = 39, "hsmd_preapprove_keysend" {
        /// The destination.
        destination: NodeId,
        /// The payment hash.
        payment_hash: sha256::Hash,
        /// The amount.
        amount_msat: AmountMsat,
    }
);

wire_message!(
    /// Whether the payment is approved.
    PreapproveKeysendReply = 139, "hsmd_preapprove_keysend_reply" {
        /// True if it is.
        approved: bool,
    }
);

wire_message!(
    /// [`PreapproveInvoice`], optionally only checking (without counting the payment).
    PreapproveInvoiceCheck = 51, "hsmd_preapprove_invoice_check" {
        /// The invoice (BOLT-11 or BOLT-12).
        invstring: WireString,
        /// True to check only.
        check_only: bool,
    }
);

wire_message!(
    /// Whether the payment is approved.
    PreapproveInvoiceCheckReply = 151, "hsmd_preapprove_invoice_check_reply" {
        /// True if it is.
        approved: bool,
    }
);

wire_message!(
    /// [`PreapproveKeysend`], optionally only checking (without counting the payment).
    PreapproveKeysendCheck = 52, "hsmd_preapprove_keysend_check" {
        /// The destination.
        destination: NodeId,
        /// The payment hash.
        payment_hash: sha256::Hash,
        /// The amount.
        amount_msat: AmountMsat,
        /// True to check only.
        check_only: bool,
    }
);

wire_message!(
    /// Whether the payment is approved.
    PreapproveKeysendCheckReply = 152, "hsmd_preapprove_keysend_check_reply" {
        /// True if it is.
        approved: bool,
    }
);

wire_message!(
    /// Signs a BOLT-12 merkle root (the older form, still accepted).
    SignBolt12 = 25, "hsmd_sign_bolt12" {
        /// The BOLT-12 message name (`invoice`, `invoice_request`, ...).
        messagename: WireString,
        /// The signature field name.
        fieldname: WireString,
        /// The merkle root.
        merkleroot: sha256::Hash,
        /// For an `invreq` payer key: the public tweak (empty for the node key).
        publictweak: Vec<u8>,
    }
);

wire_message!(
    /// The BIP-0340 signature.
    SignBolt12Reply = 125, "hsmd_sign_bolt12_reply" {
        /// The signature.
        sig: schnorr::Signature,
    }
);

wire_message!(
    /// Signs a BOLT-12 merkle root; with a non-empty `publictweak`, with the key derived from
    /// `derive_secret(info)` tweaked by SHA-256(secret || publictweak).
    SignBolt12V2 = 41, "hsmd_sign_bolt12_2" {
        /// The BOLT-12 message name.
        messagename: WireString,
        /// The signature field name.
        fieldname: WireString,
        /// The merkle root.
        merkleroot: sha256::Hash,
        /// The `derive_secret` info of the alias key.
        info: Vec<u8>,
        /// The public tweak (empty for the node key).
        publictweak: Vec<u8>,
    }
);

wire_message!(
    /// The BIP-0340 signature.
    SignBolt12V2Reply = 141, "hsmd_sign_bolt12_2_reply" {
        /// The signature.
        sig: schnorr::Signature,
    }
);

wire_message!(
    /// Signs the terms of a liquidity ad (`option_will_fund`).
    SignOptionWillFundOffer = 26, "hsmd_sign_option_will_fund_offer" {
        /// The funding key of the lease.
        funding_pubkey: PublicKey,
        /// The lease's block height.
        blockheight: u32,
        /// The largest base fee we may charge during the lease.
        channel_fee_base_max_msat: u32,
        /// The largest proportional fee (in thousandths) we may charge during the lease.
        channel_fee_proportional_basis_max: u16,
    }
);

wire_message!(
    /// The node key's signature on the offer.
    SignOptionWillFundOfferReply = 126, "hsmd_sign_option_will_fund_offer_reply" {
        /// The signature.
        rsig: Signature,
    }
);
