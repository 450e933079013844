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
//!   plain reply (138, 139); lightningd accepts either reply type. Warden answers the same
//!   replies, but decides with its payment ledger (below).
//!
//! # The payment ledger (`payment-*` rules)
//!
//! [`Payments`] holds `warden-core`'s [`PaymentLedger`] behind a lock, its limits, and the
//! clock it reads (unix seconds, passed into the core). Pre-approvals parse the invoice
//! ([`crate::invoice`]) or take the keysend, and are approved by the allowlist, within the
//! velocity budget, or by the operator (`crate::approvals`: a payment refused for velocity is
//! submitted as pending; once approved, the same hash, payee and amount go through once), or
//! refused; a refusal is an answer (`approved = false`) and is recorded in the policy log,
//! never a bad request. Each commitment's HTLCs are accounted by
//! `channels.rs` (`sign_remote_commitment_tx`, `validate_commitment_tx`) through
//! [`Signer::account_htlcs`], after the channel's copy took the new commitment and before it
//! is persisted: a refusal drops the copy. The operator's enforcement filter applies
//! (`Policy::enforce`): a demoted refusal is logged and the plan applied anyway.
//!
//! Persistence: the velocity buckets and approvals ([`PaymentLedger::encode`]) live in the
//! node record (`durable.rs`, TLV type 3), written whenever they changed, after the channel
//! record and before the reply. The incoming and outgoing HTLCs are not persisted: at start
//! they are rebuilt from every channel record's current commitments
//! ([`PaymentLedger::restore_channel`]). A crash between the channel record and the node record
//! loses at most that one commitment's velocity charge.
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

use std::fmt;
use std::sync::{Mutex, MutexGuard};

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::Network;
use secp256k1::{Keypair, Message, Scalar};
use warden_core::channel::{ChannelSlot, HtlcInfo};
use warden_core::keys::NodeId as CoreNodeId;
use warden_core::policy::payment::{self, CommitmentSide, PaymentLedger, PaymentLimits};
use warden_core::policy::{PolicyError, Rule};
use warden_core::secret::PrivateKey;
use warden_core::units::Msat;
use warden_wire::msg::*;

use crate::approvals::{ApprovalRequest, ApprovalState, Approvals};
use crate::channels::{encode, invalid, ChannelStoreError, Channels};
use crate::durable::{Clock, SystemClock};
use crate::policy::Policy;
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

/// The payment ledger of a signer, its limits and its clock.
pub struct Payments {
    ledger: Mutex<PaymentLedger>,
    limits: Mutex<PaymentLimits>,
    clock: Mutex<Box<dyn Clock>>,
    /// The ledger generation last made durable; held while writing, so writes are ordered.
    written: Mutex<u64>,
    network: Network,
    /// The operator's approvals of payments refused for velocity (`approvals.rs`), if the
    /// signer has a directory for them.
    approvals: Option<Approvals>,
}

impl fmt::Debug for Payments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payments").field("network", &self.network).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change is planned, then applied in one step: a panic elsewhere cannot leave a
    // half-applied ledger behind.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why the payment ledger could not be restored at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentsRestoreError(pub String);

impl fmt::Display for PaymentsRestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the payment ledger does not decode: {}", self.0)
    }
}

impl std::error::Error for PaymentsRestoreError {}

impl Payments {
    /// The ledger of a node on `network` with `limits`: the persisted part from the store,
    /// the HTLCs rebuilt from every channel record.
    /// Operator approvals are read from `approvals`, when given.
    pub fn restore(
        channels: &Channels,
        limits: PaymentLimits,
        network: Network,
        approvals: Option<Approvals>,
    ) -> Result<Payments, PaymentsRestoreError> {
        let clock: Box<dyn Clock> = Box::new(SystemClock);
        let now = clock.now_unix_secs();
        let (bytes, states) = channels.with_store(|s| (s.load_payments(), s.states()));
        let mut ledger = match &bytes {
            Some(b) => PaymentLedger::decode(b).map_err(|e| PaymentsRestoreError(e.to_string()))?,
            None => PaymentLedger::new(),
        };
        for state in &states {
            let holder = state.holder.current.as_ref().map(|c| c.content.htlcs.as_slice());
            let theirs = state.counterparty.current.as_ref().map(|c| c.content.htlcs.as_slice());
            ledger.restore_channel(
                &limits,
                &state.slot,
                holder.unwrap_or_default(),
                theirs.unwrap_or_default(),
                now,
            );
        }
        let written = ledger.generation();
        Ok(Payments {
            ledger: Mutex::new(ledger),
            limits: Mutex::new(limits),
            clock: Mutex::new(clock),
            written: Mutex::new(written),
            network,
            approvals,
        })
    }

    fn now(&self) -> u64 {
        lock(&self.clock).now_unix_secs()
    }

    fn limits(&self) -> PaymentLimits {
        lock(&self.limits).clone()
    }

    /// Accounts `htlcs`, the HTLCs of `slot`'s new `side` commitment, at the current time.
    fn account(
        &self,
        policy: &Policy,
        slot: &ChannelSlot,
        side: CommitmentSide,
        htlcs: &[HtlcInfo],
    ) -> Result<(), PolicyError> {
        let (now, limits) = (self.now(), self.limits());
        let mut ledger = lock(&self.ledger);
        let (plan, verdict) = ledger.plan_commitment(&limits, slot, side, htlcs, now);
        policy.enforce(verdict)?;
        ledger.apply_commitment(plan);
        Ok(())
    }

    /// Decides a pre-approval, and records it unless `check_only`. A payment refused for
    /// velocity or approval (`payment-velocity`, `payment-not-approved`) goes through if the
    /// operator approved exactly it (hash, payee, amount; the approval is used once), and is
    /// otherwise submitted for approval (`<lightning dir>/warden/approvals/pending/`).
    fn approve(
        &self,
        policy: &Policy,
        request: &payment::PaymentRequest,
        check_only: bool,
    ) -> Result<(), PolicyError> {
        let (now, limits) = (self.now(), self.limits());
        let mut ledger = lock(&self.ledger);
        let (plan, verdict) = ledger.plan_approval(&limits, request, now);
        let plan = match verdict {
            Err(e) if matches!(e.rule, Rule::PaymentVelocity | Rule::PaymentNotApproved) => {
                match self.operator_approved(request, check_only, &e) {
                    true => {
                        let (plan, verdict) = ledger.plan_operator_approval(&limits, request, now);
                        policy.enforce(verdict)?;
                        plan
                    }
                    false => {
                        policy.enforce(Err(e))?;
                        plan
                    }
                }
            }
            verdict => {
                policy.enforce(verdict)?;
                plan
            }
        };
        if !check_only {
            ledger.apply_approval(plan);
        }
        Ok(())
    }

    /// Whether the operator approved `request` (consumed unless `check_only`); if not, it is
    /// submitted as pending with the refusal `why`.
    fn operator_approved(
        &self,
        request: &payment::PaymentRequest,
        check_only: bool,
        why: &PolicyError,
    ) -> bool {
        let Some(approvals) = &self.approvals else { return false };
        let asked = ApprovalRequest::Payment {
            payment_hash: request.payment_hash,
            payee: request.payee.map(|p| p.0.serialize()),
            amount: request.amount,
        };
        let approved = match check_only {
            true => approvals.state(&asked.id()) == Some(ApprovalState::Approved),
            false => approvals.take(&asked).unwrap_or(false),
        };
        if !approved && !check_only {
            // A pending file that cannot be written only means the operator is not asked.
            let _ = approvals.submit(&asked, &why.to_string());
        }
        approved
    }

    /// Whether `amount` more value leaving our side without a visible HTLC fits the day's
    /// budget (`commitment-balance`, through the enforcement filter); nothing changes.
    fn check_trimmed_outflow(&self, policy: &Policy, amount: Msat) -> Result<(), PolicyError> {
        let (now, limits) = (self.now(), self.limits());
        policy.enforce(lock(&self.ledger).check_trimmed_outflow(&limits, amount, now))
    }

    /// Records `amount` of value that left our side without a visible HTLC.
    fn charge_trimmed_outflow(&self, amount: Msat) {
        let now = self.now();
        lock(&self.ledger).charge_trimmed_outflow(amount, now);
    }

    /// Charges an on-chain transaction's `fee` (spending `inputs`) to the daily fee budget
    /// (`onchain-fee-range`); a demoted refusal still records the fee.
    fn charge_onchain_fee(
        &self,
        policy: &Policy,
        inputs: &[bitcoin::OutPoint],
        fee: u64,
    ) -> Result<(), PolicyError> {
        let now = self.now();
        let limit = policy.limits.max_onchain_fee_per_day.map(|s| s.0);
        let mut ledger = lock(&self.ledger);
        let plan = match ledger.plan_onchain_fee(inputs, fee, now, limit) {
            Ok(plan) => plan,
            Err(e) => {
                policy.enforce(Err(e))?;
                ledger.plan_onchain_fee(inputs, fee, now, None)?
            }
        };
        ledger.apply_onchain_fee(plan);
        Ok(())
    }

    /// Writes the ledger's persisted part if it changed since it was last written.
    fn persist(&self, channels: &Channels) -> Result<(), ChannelStoreError> {
        // Lock order: `written`, then the ledger (released before the store is taken); a
        // channel update holds the store and then takes the ledger, never `written`.
        let mut written = lock(&self.written);
        let (generation, bytes) = {
            let ledger = lock(&self.ledger);
            if ledger.generation() == *written {
                return Ok(());
            }
            (ledger.generation(), ledger.encode())
        };
        channels.with_store(|s| s.persist_payments(&bytes))?;
        *written = generation;
        Ok(())
    }
}

/// The signer's payment policy: the ledger, the allowlist and the velocity budget.
struct LedgerPolicy<'a> {
    signer: &'a Signer,
}

impl PaymentPolicy for LedgerPolicy<'_> {
    fn approve(&self, payment: &PaymentRequest<'_>, check_only: bool) -> Result<(), PolicyError> {
        let payments = &self.signer.payments;
        let request = match payment {
            PaymentRequest::Invoice { invstring } => {
                crate::invoice::parse(&self.signer.secp, invstring, payments.network)
                    .map_err(|e| e.refusal())?
            }
            PaymentRequest::Keysend { destination, payment_hash, amount_msat } => {
                payment::PaymentRequest {
                    payment_hash: *payment_hash,
                    amount: Some(Msat(*amount_msat)),
                    payee: CoreNodeId::from_slice(destination.as_bytes()),
                    created_at: payments.now(),
                    expiry_secs: payments.limits().keysend_approval_secs,
                }
            }
        };
        payments.approve(&self.signer.policy, &request, check_only)?;
        if !check_only {
            payments.persist(&self.signer.channels).map_err(|e| {
                PolicyError::new(
                    Rule::PaymentNotApproved,
                    format!("the approval could not be made durable: {e}"),
                )
            })?;
        }
        Ok(())
    }
}

/// `dev_memleak` (33): no leak.
pub fn dev_memleak() -> Result<Vec<u8>, BadRequestError> {
    encode(&DevMemleakReply { leak: false })
}

impl Signer {
    /// The payment policy: the payment ledger (`payment-*` rules).
    fn payment_policy(&self) -> LedgerPolicy<'_> {
        LedgerPolicy { signer: self }
    }

    /// What the payment policy decides on `payment` (a refusal is also recorded in the policy
    /// log): the decision behind `preapprove_*`'s `approved`.
    pub fn payment_decision(
        &self,
        payment: &PaymentRequest<'_>,
        check_only: bool,
    ) -> Result<(), PolicyError> {
        let decision = self.payment_policy().approve(payment, check_only);
        if let Err(e) = &decision {
            self.policy.refused(e);
        }
        decision
    }

    /// Replaces the payment limits in force (the policy file's `[payment]`, or a test's).
    pub fn set_payment_limits(&self, limits: PaymentLimits) {
        *lock(&self.payments.limits) = limits;
    }

    /// Replaces the clock the payment rules read (tests).
    pub fn set_payment_clock(&self, clock: Box<dyn Clock>) {
        *lock(&self.payments.clock) = clock;
    }

    /// A copy of the payment ledger (tests, status).
    pub fn payment_ledger(&self) -> PaymentLedger {
        lock(&self.payments.ledger).clone()
    }

    /// Accounts the HTLCs of `slot`'s new `side` commitment per payment hash (the `payment-*`
    /// rules, through the operator's enforcement filter). Called by `channels.rs` on the
    /// channel's copy, before it is persisted.
    pub(crate) fn account_htlcs(
        &self,
        slot: &ChannelSlot,
        side: CommitmentSide,
        htlcs: &[HtlcInfo],
    ) -> Result<(), BadRequestError> {
        self.payments.account(&self.policy, slot, side, htlcs).map_err(BadRequestError::Refused)
    }

    /// What left our side between the peer's commitment `prev` and its successor `new` without
    /// a visible HTLC (trimmed HTLCs we offered, or value moved under their cover), checked
    /// against the day's budget (`commitment-balance` over time); charge it with
    /// [`Signer::charge_trimmed_outflow`] once the request is otherwise accepted.
    pub(crate) fn check_trimmed_outflow(
        &self,
        setup: &warden_core::channel::ChannelSetup,
        prev: &warden_core::channel::CommitmentContent,
        new: &warden_core::channel::CommitmentContent,
    ) -> Result<Msat, BadRequestError> {
        let out = warden_core::policy::balance::trimmed_outflow(setup, prev, new)
            .map_err(BadRequestError::Refused)?;
        let amount = Msat(out.0.saturating_mul(1000));
        self.payments
            .check_trimmed_outflow(&self.policy, amount)
            .map_err(BadRequestError::Refused)?;
        Ok(amount)
    }

    /// Records what [`Signer::check_trimmed_outflow`] found (persisted with the payment ledger
    /// before the reply).
    pub(crate) fn charge_trimmed_outflow(&self, amount: Msat) {
        self.payments.charge_trimmed_outflow(amount);
    }

    /// Charges the fee of `tx` (spending `prevouts`) to the daily on-chain fee budget
    /// (`onchain-fee-range`); persisted with the payment ledger before the reply.
    pub(crate) fn charge_onchain_fee(
        &self,
        tx: &bitcoin::Transaction,
        prevouts: &[bitcoin::TxOut],
    ) -> Result<(), BadRequestError> {
        let inputs: u64 = prevouts.iter().map(|o| o.value.to_sat()).fold(0, u64::saturating_add);
        let outputs: u64 = tx.output.iter().map(|o| o.value.to_sat()).fold(0, u64::saturating_add);
        let fee = inputs.saturating_sub(outputs);
        let spent: Vec<bitcoin::OutPoint> = tx.input.iter().map(|i| i.previous_output).collect();
        self.payments
            .charge_onchain_fee(&self.policy, &spent, fee)
            .map_err(BadRequestError::Refused)
    }

    /// Makes the payment ledger's changes durable (after the channel record, before the reply).
    pub(crate) fn persist_payments(&self) -> Result<(), BadRequestError> {
        self.payments.persist(&self.channels).map_err(invalid)
    }

    /// `preapprove_invoice` (38) and `preapprove_invoice_check` (51).
    pub(crate) fn preapprove_invoice(
        &self,
        invstring: &warden_wire::WireString,
        check_only: bool,
    ) -> Result<Vec<u8>, BadRequestError> {
        let payment = PaymentRequest::Invoice { invstring: invstring.as_bytes() };
        let approved = self.payment_decision(&payment, check_only).is_ok();
        encode(&PreapproveInvoiceReply { approved })
    }

    /// `preapprove_keysend` (39) and `preapprove_keysend_check` (52).
    pub(crate) fn preapprove_keysend(
        &self,
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
        let approved = self.payment_decision(&payment, check_only).is_ok();
        encode(&PreapproveKeysendReply { approved })
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
