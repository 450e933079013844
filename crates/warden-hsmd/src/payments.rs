//! Payments: BOLT-12 signatures (`sign_bolt12` 25, `sign_bolt12_2` 41), the liquidity-ad
//! signature (`sign_option_will_fund_offer` 26), the pre-approval of outgoing payments
//! (`preapprove_invoice` 38 / 51, `preapprove_keysend` 39 / 52) and `dev_memleak` (33).
//!
//! Sources (Core Lightning):
//! - `hsmd/libhsmd.c`, `handle_sign_bolt12`: BIP-0340 over `sighash_from_merkle`
//!   (`common/bolt12_merkle.c`): the tagged hash SHA256(t ‖ t ‖ merkle root) with
//!   t = SHA256(`"lightning"` ‖ messagename ‖ fieldname) (`bitcoin/signature.c`,
//!   `bip340_sighash_init`). An empty `publictweak` signs with the node key; otherwise with
//!   the bolt12 base key (`m/9735'`) plus the tweak SHA256(bolt12 base pubkey ‖ publictweak)
//!   (`payer_key_tweak`).
//! - `hsmd/libhsmd.c`, `handle_sign_bolt12_2`: the same digest; an empty tweak message signs
//!   with the node key; otherwise with the node key plus the tweak SHA256(base ‖ tweak
//!   message) (`common/bolt12_id.c`, `bolt12_alias_tweak`), base = `derive_secret(info)`.
//! - Both sign with `secp256k1_schnorrsig_sign32(.., NULL)`: no auxiliary randomness, so the
//!   signature is deterministic (rust-secp256k1's `sign_schnorr_no_aux_rand`).
//! - `hsmd/libhsmd.c`, `handle_sign_option_will_fund_offer` and `common/lease_rates.c`,
//!   `lease_rates_get_commitment`: ECDSA (`secp256k1_ecdsa_sign`, RFC 6979 without extra data,
//!   no grinding) with the node key over SHA256(`"option_will_fund"` ‖ funding pubkey ‖
//!   blockheight (u32 BE) ‖ base fee (u32 BE) ‖ proportional fee (u16 BE)).
//! - `hsmd/libhsmd.c`, `handle_preapprove_invoice` / `handle_preapprove_keysend`: the stub
//!   approves everything, and answers **both** the plain and the `_check` request with the
//!   plain reply (138, 139); lightningd accepts either reply type.
//! - `hsmd/hsmd.c`, `handle_memleak`: replies whether a leak was found; Warden has no tal
//!   allocator to leak from and answers `false`.
//!
//! # Why these signatures are no transaction oracle (`message-oracle`)
//!
//! The BOLT-12 digest is a BIP-0340 tagged hash whose tag starts with `"lightning"`; a
//! Taproot sighash is the tagged hash with tag `"TapSighash"`. Equal digests would need
//! SHA256(tag) of two different tags to agree, or a SHA-256 collision of the outer hash. ECDSA
//! sighashes (legacy, BIP-0143) are SHA256d and are never signed with Schnorr. The
//! `option_will_fund` digest is a single SHA-256 of 59 bytes; an ECDSA sighash is SHA-256 of a
//! 32-byte hash, so equality is again a SHA-256 collision. None of the keys involved (node
//! key, tweaked node key, tweaked bolt12 key) locks coins.

use bitcoin::hashes::{sha256, Hash, HashEngine};
use secp256k1::{Keypair, Message, Scalar};
use warden_core::policy::PolicyError;
use warden_core::secret::PrivateKey;
use warden_wire::msg::*;

use crate::channels::{encode, invalid};
use crate::signer::{BadRequestError, Signer};

/// The BOLT-12 signature digest (`sighash_from_merkle`): the BIP-0340 tagged hash with tag
/// `"lightning"` ‖ `messagename` ‖ `fieldname` of the merkle root.
pub fn bolt12_sighash(messagename: &[u8], fieldname: &[u8], merkle_root: &[u8; 32]) -> [u8; 32] {
    let mut tag = sha256::Hash::engine();
    tag.input(b"lightning");
    tag.input(messagename);
    tag.input(fieldname);
    let tag = sha256::Hash::from_engine(tag).to_byte_array();
    let mut engine = sha256::Hash::engine();
    engine.input(&tag);
    engine.input(&tag);
    engine.input(merkle_root);
    sha256::Hash::from_engine(engine).to_byte_array()
}

/// The `option_will_fund` commitment (`lease_rates_get_commitment`).
pub fn will_fund_digest(m: &SignOptionWillFundOffer) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    engine.input(b"option_will_fund");
    engine.input(&m.funding_pubkey.serialize());
    engine.input(&m.blockheight.to_be_bytes());
    engine.input(&m.channel_fee_base_max_msat.to_be_bytes());
    engine.input(&m.channel_fee_proportional_basis_max.to_be_bytes());
    sha256::Hash::from_engine(engine).to_byte_array()
}

/// `key` + `tweak` (both secrets; the tweak is a hash that is a valid scalar but for
/// probability 2^-128).
fn tweaked(key: &PrivateKey, tweak: [u8; 32]) -> Result<PrivateKey, BadRequestError> {
    let scalar = Scalar::from_be_bytes(tweak).map_err(|_| invalid("bolt12 tweak out of range"))?;
    let sum = key.expose_secret().add_tweak(&scalar).map_err(invalid)?;
    Ok(PrivateKey::new(sum))
}

/// An outgoing payment lightningd asks to pre-approve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentRequest<'a> {
    /// `preapprove_invoice`: the invoice string (BOLT-11 or BOLT-12), unparsed.
    Invoice {
        /// The invoice as lightningd sent it.
        invstring: &'a [u8],
    },
    /// `preapprove_keysend`.
    Keysend {
        /// The destination node.
        destination: &'a warden_wire::NodeId,
        /// The payment hash.
        payment_hash: [u8; 32],
        /// The amount in millisatoshi.
        amount_msat: u64,
    },
}

/// Decides whether an outgoing payment is approved (`payment-not-approved`,
/// `payment-velocity`, `payment-invoice-expired` belong here).
pub trait PaymentPolicy: Send + Sync {
    /// Approves `payment`, or refuses it with the rule that says why. With `check_only` the
    /// payment is only checked: nothing is recorded as spent.
    fn approve(&self, payment: &PaymentRequest<'_>, check_only: bool) -> Result<(), PolicyError>;
}

/// hsmd's semantics: every payment is approved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApproveAll;

impl PaymentPolicy for ApproveAll {
    fn approve(&self, _: &PaymentRequest<'_>, _: bool) -> Result<(), PolicyError> {
        Ok(())
    }
}

/// Whether `policy` approves `payment`. A refusal is an answer (`approved = false`), not a bad
/// request: a bad request from lightningd ends the whole signer.
pub fn approved(
    policy: &dyn PaymentPolicy,
    payment: &PaymentRequest<'_>,
    check_only: bool,
) -> bool {
    policy.approve(payment, check_only).is_ok()
}

/// `preapprove_invoice` (38) and `preapprove_invoice_check` (51), both answered with the
/// type-138 reply as hsmd does.
pub fn preapprove_invoice(
    policy: &dyn PaymentPolicy,
    invstring: &warden_wire::WireString,
    check_only: bool,
) -> Result<Vec<u8>, BadRequestError> {
    let payment = PaymentRequest::Invoice { invstring: invstring.as_bytes() };
    encode(&PreapproveInvoiceReply { approved: approved(policy, &payment, check_only) })
}

/// `preapprove_keysend` (39) and `preapprove_keysend_check` (52), both answered with the
/// type-139 reply as hsmd does.
pub fn preapprove_keysend(
    policy: &dyn PaymentPolicy,
    destination: &warden_wire::NodeId,
    payment_hash: &sha256::Hash,
    amount_msat: u64,
    check_only: bool,
) -> Result<Vec<u8>, BadRequestError> {
    let payment = PaymentRequest::Keysend {
        destination,
        payment_hash: payment_hash.to_byte_array(),
        amount_msat,
    };
    encode(&PreapproveKeysendReply { approved: approved(policy, &payment, check_only) })
}

/// `dev_memleak` (33): no leak.
pub fn dev_memleak() -> Result<Vec<u8>, BadRequestError> {
    encode(&DevMemleakReply { leak: false })
}

impl Signer {
    /// The payment policy: hsmd's [`ApproveAll`] until the policy work gives the signer its own.
    fn payment_policy(&self) -> &dyn PaymentPolicy {
        &ApproveAll
    }

    /// `preapprove_invoice` (38) and `preapprove_invoice_check` (51).
    pub(crate) fn preapprove_invoice(
        &self,
        invstring: &warden_wire::WireString,
        check_only: bool,
    ) -> Result<Vec<u8>, BadRequestError> {
        preapprove_invoice(self.payment_policy(), invstring, check_only)
    }

    /// `preapprove_keysend` (39) and `preapprove_keysend_check` (52).
    pub(crate) fn preapprove_keysend(
        &self,
        destination: &warden_wire::NodeId,
        payment_hash: &sha256::Hash,
        amount_msat: u64,
        check_only: bool,
    ) -> Result<Vec<u8>, BadRequestError> {
        preapprove_keysend(
            self.payment_policy(),
            destination,
            payment_hash,
            amount_msat,
            check_only,
        )
    }

    fn schnorr(&self, key: &PrivateKey, digest: [u8; 32]) -> secp256k1::schnorr::Signature {
        let keypair = Keypair::from_secret_key(&self.secp, key.expose_secret());
        self.secp.sign_schnorr_no_aux_rand(&Message::from_digest(digest), &keypair)
    }

    /// `sign_bolt12` (25).
    pub(crate) fn sign_bolt12(&self, m: &SignBolt12) -> Result<Vec<u8>, BadRequestError> {
        let digest = bolt12_sighash(
            m.messagename.as_bytes(),
            m.fieldname.as_bytes(),
            &m.merkleroot.to_byte_array(),
        );
        let sig = if m.publictweak.is_empty() {
            self.schnorr(self.keys.node_key(), digest)
        } else {
            let base = self.keys.wallet().bolt12_key();
            let mut engine = sha256::Hash::engine();
            engine.input(&self.keys.wallet().bolt12_pubkey(&self.secp).serialize());
            engine.input(&m.publictweak);
            let tweak = sha256::Hash::from_engine(engine).to_byte_array();
            self.schnorr(&tweaked(base, tweak)?, digest)
        };
        encode(&SignBolt12Reply { sig })
    }

    /// `sign_bolt12_2` (41).
    pub(crate) fn sign_bolt12_2(&self, m: &SignBolt12V2) -> Result<Vec<u8>, BadRequestError> {
        let digest = bolt12_sighash(
            m.messagename.as_bytes(),
            m.fieldname.as_bytes(),
            &m.merkleroot.to_byte_array(),
        );
        let sig = if m.publictweak.is_empty() {
            self.schnorr(self.keys.node_key(), digest)
        } else {
            let base = self.keys.derive_secret(&m.info);
            let mut engine = sha256::Hash::engine();
            engine.input(base.expose_secret());
            engine.input(&m.publictweak);
            let tweak = sha256::Hash::from_engine(engine).to_byte_array();
            self.schnorr(&tweaked(self.keys.node_key(), tweak)?, digest)
        };
        encode(&SignBolt12V2Reply { sig })
    }

    /// `sign_option_will_fund_offer` (26).
    pub(crate) fn sign_option_will_fund_offer(
        &self,
        m: &SignOptionWillFundOffer,
    ) -> Result<Vec<u8>, BadRequestError> {
        let digest = Message::from_digest(will_fund_digest(m));
        let rsig = self.secp.sign_ecdsa(&digest, self.keys.node_key().expose_secret());
        encode(&SignOptionWillFundOfferReply { rsig })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bolt12_sighash_is_the_bip340_tagged_hash() {
        let root = [7u8; 32];
        let expected = sha256::Hash::hash(
            &[
                sha256::Hash::hash(b"lightninginvoicesignature").to_byte_array(),
                sha256::Hash::hash(b"lightninginvoicesignature").to_byte_array(),
                root,
            ]
            .concat(),
        );
        assert_eq!(bolt12_sighash(b"invoice", b"signature", &root), expected.to_byte_array());
    }
}
