//! [`WardenChannelSigner`]: LDK's `ChannelSigner` + `EcdsaChannelSigner` for one channel,
//! every state-changing call checked by warden-core's channel state machine and policy.
//!
//! Each copy of a channel's signer (the `ChannelManager`'s and the `ChainMonitor`'s) holds the
//! same `Arc<Mutex<ChannelRecord>>`, taken from the manager's map by `channel_keys_id`. A call
//! works on a copy of the state, signs, and stores the copy only when everything succeeded: a
//! refusal changes nothing. A refusal returns `Err(())` (for LDK: "not ready", the channel
//! waits, or, from the two `validate_*` calls, the channel closes) and is recorded with its
//! [`Rule`] in the manager's refusal log.
//!
//! Calls and what guards them:
//! - `validate_holder_commitment`: `read_commitment` (see `channel::read_ldk_commitment`), the peer's signatures
//!   (`commitment-peer-signature`, `htlc-sighash`), `check_commitment`, `check_balance`,
//!   `ChannelState::validate_holder_commitment` (numbers, retries, closing);
//! - `release_commitment_secret`: `ChannelState::revoke_holder_commitment`
//!   (`revoke-new-commitment-validated`, `revoke-after-broadcast`, `commitment-number`);
//! - `validate_counterparty_revocation`: `ChannelState::validate_counterparty_revocation`
//!   (`revoke-peer-secret`: the secret matches the point we signed with and chains);
//! - `sign_counterparty_commitment`: `read_commitment`, `check_commitment`,
//!   `check_balance`, `ChannelState::sign_counterparty_commitment`; HTLC signatures over
//!   HTLC transactions rebuilt by warden-core;
//! - `sign_holder_commitment`: `verify`, the transaction Warden validated for that number
//!   (`commitment-structure`), `ChannelState::sign_holder_for_broadcast` (`sweep-holder-revoked`);
//! - `sign_closing_transaction`: LDK's closing `verify`, `policy::close::check_mutual_close`,
//!   `ChannelState::sign_mutual_close`;
//! - HTLC and justice sweeps: the HTLC transaction spends the output it names and pays the
//!   output BOLT-03 requires (`htlc-structure`); our sweeps pay our own scripts or the
//!   allowlist (`sweep-destination`);
//! - the channel announcement: it must name our funding key (`gossip-structure`).

use std::sync::{Arc, Mutex, MutexGuard};

use bitcoin::hashes::{sha256d, Hash};
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{OutPoint, Transaction, Txid};
use lightning::ln::chan_utils::{
    ChannelPublicKeys, ChannelTransactionParameters, ClosingTransaction, CommitmentTransaction,
    HTLCOutputInCommitment, HolderCommitmentTransaction,
};
use lightning::ln::msgs::UnsignedChannelAnnouncement;
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::sign::{ChannelSigner, HTLCDescriptor};
use lightning::types::payment::PaymentPreimage;
use lightning::util::ser::Writeable;
use warden_core::channel::commitment::Broadcaster;
use warden_core::channel::HtlcSide;
use warden_core::channel::{ChannelState, SignedCounterpartyCommitment, SignedHolderCommitment};
use warden_core::keys::bolt3::{derive_private_key_from_basepoint, derive_revocation_privkey};
use warden_core::keys::{FundingPubkey, PerCommitmentPoint};
use warden_core::policy::balance::{balance_terms, check_balance, trimmed_outflow};
use warden_core::policy::close::check_mutual_close;
use warden_core::policy::commitment::check_commitment;
use warden_core::policy::payment::CommitmentSide;
use warden_core::policy::{PolicyError, Rule};
use warden_core::secret::{PerCommitmentSecret, PrivateKey};
use warden_core::sign::{sign_hash_low_r, sign_p2wsh_input};
use warden_core::tx::scripts::{
    anchor_witness_script, funding_witness_script, to_local_witness_script,
};
use warden_core::tx::sighash::countersignatory_htlc_sighash_type;
use warden_core::tx::{build_htlc_tx, CommitmentKeys, Htlc, HtlcDirection, PaymentHash};
use warden_core::units::{Msat, Sat};

use crate::channel::{holder_keys, number_of_index, read_ldk_commitment, setup_of, ChannelRecord};
use crate::keys::ChannelSecrets;
use crate::manager::Shared;

/// The signer of one channel.
pub struct WardenChannelSigner {
    shared: Arc<Shared>,
    secrets: ChannelSecrets,
    pubkeys: ChannelPublicKeys,
    record: Arc<Mutex<ChannelRecord>>,
}

impl core::fmt::Debug for WardenChannelSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WardenChannelSigner")
            .field("channel_keys_id", &self.secrets.channel_keys_id())
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl Clone for WardenChannelSigner {
    fn clone(&self) -> Self {
        WardenChannelSigner {
            shared: Arc::clone(&self.shared),
            secrets: self.secrets.clone(),
            pubkeys: self.pubkeys.clone(),
            record: Arc::clone(&self.record),
        }
    }
}

fn refusal(rule: Rule, detail: impl Into<String>) -> PolicyError {
    PolicyError::new(rule, detail)
}

fn derivation(rule: Rule) -> impl Fn(warden_core::keys::bolt3::DerivationError) -> PolicyError {
    move |e| PolicyError::new(rule, format!("key derivation: {e}"))
}

impl WardenChannelSigner {
    pub(crate) fn new(
        shared: Arc<Shared>,
        secrets: ChannelSecrets,
        record: Arc<Mutex<ChannelRecord>>,
    ) -> WardenChannelSigner {
        let pubkeys = secrets.public_keys(&shared.secp);
        WardenChannelSigner { shared, secrets, pubkeys, record }
    }

    #[cfg(feature = "test-utils")]
    fn relay(&self) -> Option<Arc<dyn crate::ldk_test_utils::EvidenceRelay>> {
        self.shared.relay.lock().ok().and_then(|r| r.clone())
    }

    #[cfg(feature = "test-utils")]
    fn record(&self, call: impl FnOnce() -> crate::ldk_test_utils::RecordedCall) {
        if let Ok(mut r) = self.shared.recorder.lock() {
            if let Some(calls) = r.as_mut() {
                calls.push((self.secrets.channel_keys_id(), call()));
            }
        }
    }

    /// Signs input `input` of `tx` (a P2WSH output of `amount` locked by `script`) with `key`,
    /// `SIGHASH_ALL`; a signing failure is a refusal by `rule`.
    fn sign_input(
        &self,
        key: &PrivateKey,
        tx: &Transaction,
        input: usize,
        script: &bitcoin::Script,
        amount: Sat,
        rule: Rule,
    ) -> Result<Signature, PolicyError> {
        sign_p2wsh_input(self.secp(), key, tx, input, script, amount, EcdsaSighashType::All)
            .map(|sig| sig.signature)
            .map_err(|e| refusal(rule, format!("{e}")))
    }

    /// The revocation key of the peer's revoked commitment whose per-commitment secret is
    /// `per_commitment_key`, and that commitment's keys (the peer broadcasts it).
    fn revoked_keys(
        &self,
        setup: &warden_core::channel::ChannelSetup,
        channel_parameters: &ChannelTransactionParameters,
        per_commitment_key: &SecretKey,
    ) -> Result<(PrivateKey, CommitmentKeys), PolicyError> {
        let secret = PerCommitmentSecret::new(per_commitment_key.secret_bytes());
        let point = PerCommitmentPoint(PublicKey::from_secret_key(self.secp(), per_commitment_key));
        let key =
            derive_revocation_privkey(self.secp(), self.secrets.revocation_base_key(), &secret)
                .map_err(derivation(Rule::SweepStructure))?;
        let keys = CommitmentKeys::derive(
            self.secp(),
            &point,
            &setup.counterparty_basepoints,
            &holder_keys(channel_parameters).0,
        )
        .map_err(derivation(Rule::SweepStructure))?;
        Ok((key, keys))
    }

    fn secp(&self) -> &Secp256k1<All> {
        &self.shared.secp
    }

    fn lock(&self) -> Result<MutexGuard<'_, ChannelRecord>, ()> {
        self.record.lock().map_err(|_| ())
    }

    /// Runs a policy-checked operation, recording a refusal under `op`. With a store, what
    /// the operation changed is durable before its result is returned; a refusal, or a write
    /// that failed, leaves the record as it was.
    fn guarded<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut ChannelRecord) -> Result<T, PolicyError>,
    ) -> Result<T, ()> {
        let mut record = self.lock()?;
        let before = self.shared.is_durable().then(|| record.clone());
        let result = f(&mut record).and_then(|v| match &before {
            Some(b) => self.shared.persist(self.secrets.channel_keys_id(), b, &record).map(|()| v),
            None => Ok(v),
        });
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                if let Some(b) = before {
                    *record = b;
                }
                self.shared.record_refusal(self.secrets.channel_keys_id(), op, e);
                Err(())
            }
        }
    }

    /// Our funding key for these parameters (tweaked after a splice).
    fn funding_key(
        &self,
        params: &ChannelTransactionParameters,
    ) -> Result<PrivateKey, PolicyError> {
        self.secrets
            .funding_key(params.splice_parent_funding_txid)
            .map_err(|e| PolicyError::new(Rule::ChannelUnknown, format!("funding key: {e}")))
    }

    /// Takes LDK's parameters into the record: the first populated set is checked and becomes
    /// the setup; later sets must agree with it. Then validates a holder commitment that was
    /// waiting for them.
    fn ensure_setup(
        &self,
        record: &mut ChannelRecord,
        params: &ChannelTransactionParameters,
    ) -> Result<(), PolicyError> {
        if !params.is_populated() {
            return Err(refusal(Rule::ChannelUnknown, "channel parameters are not populated"));
        }
        if record.params.as_ref() != Some(params) || record.state.setup.is_none() {
            // New parameters (the first, or after a splice): they must name this channel's
            // keys. Parameters equal to the last ones were checked when they arrived.
            let funding = self.funding_key(params)?.public_key(self.secp());
            let ours = &params.holder_pubkeys;
            let same_keys = ours.funding_pubkey == funding
                && ours.revocation_basepoint == self.pubkeys.revocation_basepoint
                && ours.delayed_payment_basepoint == self.pubkeys.delayed_payment_basepoint
                && ours.htlc_basepoint == self.pubkeys.htlc_basepoint
                && self
                    .secrets
                    .payment_keys()
                    .iter()
                    .any(|k| k.public_key(self.secp()) == ours.payment_point);
            if !same_keys {
                return Err(refusal(
                    Rule::ChannelUnknown,
                    "the channel parameters name holder keys that are not this channel's",
                ));
            }
            let mut setup = setup_of(params)?;
            if let Some(old) = record.state.setup.as_ref() {
                setup.push_value = old.push_value;
            }
            if record.state.setup.is_none() {
                warden_core::policy::channel::check_setup(&self.shared.config.limits, &setup)?;
            }
            let mut state = record.state.clone();
            state.apply_setup(setup)?;
            record.state = state;
            record.params = Some(params.clone());
        }
        if let Some((pending, preimages)) = record.pending_holder.take() {
            if let Err(e) = self.validate_holder(record, &pending, &preimages) {
                record.pending_holder = Some((pending, preimages));
                return Err(e);
            }
        }
        Ok(())
    }

    /// Fixes the push at the first commitment #0 (see `channel`'s documentation).
    fn fix_push(
        &self,
        record: &mut ChannelRecord,
        number: u64,
        to_counterparty: Sat,
    ) -> Result<(), PolicyError> {
        if record.push_known || number != 0 {
            return Ok(());
        }
        let limits = &self.shared.config.limits;
        let is_outbound = record.state.setup.as_ref().is_some_and(|s| s.is_outbound);
        if is_outbound && to_counterparty > limits.max_push {
            return Err(refusal(
                Rule::OnchainPush,
                format!("the channel opens with {to_counterparty} to the peer, above the push limit of {}", limits.max_push),
            ));
        }
        if let Some(setup) = record.state.setup.as_mut() {
            setup.push_value = Msat(to_counterparty.0.saturating_mul(1000));
        }
        record.push_known = true;
        Ok(())
    }

    fn validate_holder(
        &self,
        record: &mut ChannelRecord,
        holder_tx: &HolderCommitmentTransaction,
        preimages: &[PaymentPreimage],
    ) -> Result<(), PolicyError> {
        let params = record.params.clone().ok_or_else(|| {
            refusal(Rule::ChannelUnknown, "holder commitment before the channel parameters")
        })?;
        let setup = record.state.setup()?.clone();
        let (read, tx, order) =
            read_ldk_commitment(self.secp(), &setup, &params, holder_tx, Broadcaster::Holder)?;
        let htlc_type = countersignatory_htlc_sighash_type(read.channel_type);
        let mut htlc_sigs = Vec::with_capacity(order.len());
        for i in &order {
            let sig = holder_tx.counterparty_htlc_sigs.get(*i).ok_or_else(|| {
                refusal(Rule::CommitmentPeerSignature, "an htlc signature is missing")
            })?;
            htlc_sigs.push(bitcoin::ecdsa::Signature { signature: *sig, sighash_type: htlc_type });
        }
        let commitment_sig = bitcoin::ecdsa::Signature {
            signature: holder_tx.counterparty_sig,
            sighash_type: EcdsaSighashType::All,
        };
        let (_, holder_funding) = holder_keys(&params);
        read.verify_counterparty_signatures(
            self.secp(),
            &tx,
            &setup,
            &holder_funding,
            &commitment_sig,
            &htlc_sigs,
        )?;
        let content = read.content.clone();
        self.fix_push(record, content.number.get(), content.to_counterparty)?;
        let setup = record.state.setup()?.clone();
        check_commitment(&self.shared.config.limits, &setup, &content)?;
        let prev = record.state.holder.current.as_ref().map(|c| c.content.clone());
        if prev.as_ref().map(|p| p.number) != Some(content.number) {
            check_balance(&setup, prev.as_ref(), &content)?;
            if let Some(prev) = &prev {
                self.check_settled(&setup, prev, &content, preimages)?;
            }
        }
        let htlcs = content.htlcs.clone();
        let mut state = record.state.clone();
        state.validate_holder_commitment(SignedHolderCommitment {
            content,
            counterparty_sig: holder_tx.counterparty_sig.serialize_compact(),
            htlc_sigs: htlc_sigs.iter().map(|s| s.signature.serialize_compact()).collect(),
        })?;
        self.account(&state.slot, CommitmentSide::Holder, &htlcs, Msat::ZERO)?;
        record.state = state;
        Ok(())
    }

    fn sign_funding_spend(
        &self,
        params: &ChannelTransactionParameters,
        tx: &Transaction,
        input: usize,
    ) -> Result<Signature, PolicyError> {
        let key = self.funding_key(params)?;
        let theirs = params
            .counterparty_pubkeys()
            .ok_or_else(|| refusal(Rule::ChannelUnknown, "no counterparty keys"))?;
        // Before any splice our funding key is the base one, whose public key we hold.
        let ours = match params.splice_parent_funding_txid {
            None => self.pubkeys.funding_pubkey,
            Some(_) => key.public_key(self.secp()),
        };
        let script =
            funding_witness_script(&FundingPubkey(ours), &FundingPubkey(theirs.funding_pubkey));
        self.sign_input(
            &key,
            tx,
            input,
            &script,
            Sat(params.channel_value_satoshis),
            Rule::CommitmentStructure,
        )
    }

    fn sign_counterparty(
        &self,
        record: &mut ChannelRecord,
        params: &ChannelTransactionParameters,
        commitment_tx: &CommitmentTransaction,
        preimages: &[PaymentPreimage],
    ) -> Result<(Signature, Vec<Signature>), PolicyError> {
        self.ensure_setup(record, params)?;
        let setup = record.state.setup()?.clone();
        let (read, tx, order) = read_ldk_commitment(
            self.secp(),
            &setup,
            params,
            commitment_tx,
            Broadcaster::Counterparty,
        )?;
        let content = read.content.clone();
        self.fix_push(record, content.number.get(), content.to_counterparty)?;
        let setup = record.state.setup()?.clone();
        check_commitment(&self.shared.config.limits, &setup, &content)?;
        let prev = record.state.counterparty.current.as_ref().map(|c| c.content.clone());
        if prev.as_ref().map(|p| p.number) != Some(content.number) {
            check_balance(&setup, prev.as_ref(), &content)?;
            if let Some(prev) = &prev {
                self.check_settled(&setup, prev, &content, preimages)?;
            }
        }
        let point = PerCommitmentPoint(commitment_tx.per_commitment_point());
        let mut state: ChannelState = record.state.clone();
        state.sign_counterparty_commitment(SignedCounterpartyCommitment {
            content: content.clone(),
            point,
        })?;

        let commitment_sig = self.sign_funding_spend(params, &tx, 0)?;
        // HTLC signatures, in LDK's order, over HTLC transactions warden-core builds.
        let mut htlc_sigs: Vec<Option<Signature>> = vec![None; order.len()];
        if !content.htlcs.is_empty() {
            let keys = read
                .keys
                .ok_or_else(|| refusal(Rule::CommitmentStructure, "htlc keys were not derived"))?;
            let our_htlc_key = derive_private_key_from_basepoint(
                self.secrets.htlc_base_key(),
                &self.pubkeys.htlc_basepoint.to_public_key(),
                &point,
            )
            .map_err(derivation(Rule::HtlcStructure))?;
            let txid = tx.compute_txid();
            for ((h, vout), ldk_index) in content.htlcs.iter().zip(&read.htlc_vouts).zip(&order) {
                let htlc = h.as_htlc(Broadcaster::Counterparty);
                let built = build_htlc_tx(
                    read.channel_type,
                    OutPoint { txid, vout: *vout },
                    &htlc,
                    content.feerate,
                    setup.holder_selected_delay,
                    &keys,
                )
                .map_err(|e| refusal(Rule::HtlcStructure, format!("{e}")))?;
                warden_core::policy::htlc::check_htlc_feerate(
                    &self.shared.config.limits,
                    read.channel_type,
                    content.feerate,
                    built.fee,
                )?;
                let digest = built
                    .countersignatory_sighash()
                    .map_err(|e| refusal(Rule::HtlcStructure, format!("{e}")))?;
                let sig = sign_hash_low_r(self.secp(), &our_htlc_key, digest.as_ref());
                if let Some(slot) = htlc_sigs.get_mut(*ldk_index) {
                    *slot = Some(sig);
                }
            }
        }
        let htlc_sigs: Option<Vec<Signature>> = htlc_sigs.into_iter().collect();
        let htlc_sigs = htlc_sigs.ok_or_else(|| {
            refusal(Rule::CommitmentStructure, "an htlc of the commitment was not signed")
        })?;
        // What left our side without a visible HTLC since the peer's previous commitment (the
        // next number) counts against the day's budget, once (on the peer's side, as
        // warden-hsmd counts it).
        let trimmed = match &prev {
            Some(p) if p.number.get().checked_add(1) == Some(content.number.get()) => {
                let out = trimmed_outflow(&setup, p, &content)?;
                Msat(out.0.saturating_mul(1000))
            }
            _ => Msat::ZERO,
        };
        self.account(&state.slot, CommitmentSide::Counterparty, &content.htlcs, trimmed)?;
        record.state = state;
        Ok((commitment_sig, htlc_sigs))
    }

    fn sign_holder(
        &self,
        record: &mut ChannelRecord,
        params: &ChannelTransactionParameters,
        holder_tx: &HolderCommitmentTransaction,
        record_broadcast: bool,
    ) -> Result<Signature, PolicyError> {
        self.ensure_setup(record, params)?;
        // Before LDK's `verify`: it subtracts the index from 2^48 - 1 (an overflow above it).
        let n = number_of_index(holder_tx.commitment_number())?.get();
        let directed = params.as_holder_broadcastable();
        let trusted = holder_tx.verify(&directed, self.secp()).map_err(|()| {
            refusal(
                Rule::CommitmentStructure,
                "our commitment does not rebuild from the channel parameters",
            )
        })?;
        let tx = trusted.built_transaction().transaction.clone();
        let mut state = record.state.clone();
        if record_broadcast {
            if let Some(current) = state.holder.current.as_ref() {
                if current.content.number.get() == n && current.content.txid != tx.compute_txid() {
                    return Err(refusal(
                        Rule::CommitmentStructure,
                        format!("our commitment {n} is not the one Warden validated"),
                    ));
                }
            }
            state.sign_holder_for_broadcast(n)?;
        }
        let sig = self.sign_funding_spend(params, &tx, 0)?;
        record.state = state;
        Ok(sig)
    }

    /// The payment rules (`payment-*`, warden-core's `PaymentLedger`): the HTLCs of a new
    /// commitment of `side`, per payment hash, against what came in for the hash, its approval
    /// and the velocity budget; and `trimmed`, the value that left our side without a visible
    /// HTLC, against the day's budget for it (`commitment-balance`,
    /// `PaymentLimits::trimmed_outflow_per_day`). Applied at once when both pass; a retry of
    /// the same commitment changes nothing.
    fn account(
        &self,
        slot: &warden_core::channel::ChannelSlot,
        side: CommitmentSide,
        htlcs: &[warden_core::channel::HtlcInfo],
        trimmed: Msat,
    ) -> Result<(), PolicyError> {
        let now = self.shared.now();
        let limits = &self.shared.config.payments;
        let mut ledger =
            self.shared.ledger.lock().map_err(|_| {
                refusal(Rule::NodeStateStale, "the payment ledger's lock is poisoned")
            })?;
        let (plan, verdict) = ledger.plan_commitment(limits, slot, side, htlcs, now);
        verdict?;
        ledger.check_trimmed_outflow(limits, trimmed, now)?;
        ledger.apply_commitment(plan);
        ledger.charge_trimmed_outflow(trimmed, now);
        Ok(())
    }

    /// LDK's preimages (`commitment-balance`): an HTLC we offered that leaves the commitment
    /// without its preimage (LDK passes the preimage of every HTLC of ours settled since the
    /// last commitment; any other one was failed) must give its value back to us.
    /// [`check_balance`] bounds what leaves our side by the trimmed HTLCs, and cannot tell a
    /// fulfilled HTLC from a failed one; this requires that bound to hold with the failed ones'
    /// value counted too, so that a failed HTLC of ours cannot end in the peer's output.
    ///
    /// The peer's HTLCs are not checked this way: a node may fail an HTLC whose preimage it
    /// knows (two HTLCs of one payment hash, one fulfilled and one failed, as LDK does), and
    /// what it gives up then is the peer's to keep, not ours that leaves.
    fn check_settled(
        &self,
        setup: &warden_core::channel::ChannelSetup,
        prev: &warden_core::channel::CommitmentContent,
        new: &warden_core::channel::CommitmentContent,
        preimages: &[PaymentPreimage],
    ) -> Result<(), PolicyError> {
        let known = self.shared.learn_preimages(preimages);
        let mut remaining: Vec<&warden_core::channel::HtlcInfo> = new.htlcs.iter().collect();
        let mut owed: i128 = 0;
        for h in &prev.htlcs {
            if let Some(i) = remaining.iter().position(|n| *n == h) {
                remaining.swap_remove(i);
                continue;
            }
            if h.offered_by == HtlcSide::Holder && !known.contains(&h.payment_hash) {
                owed += i128::from(h.amount.to_sat_floor().0);
            }
        }
        if owed == 0 {
            return Ok(());
        }
        let (drop, trimmed) = balance_terms(setup, prev, new)?;
        if drop + owed > trimmed.max(0) {
            return Err(refusal(
                Rule::CommitmentBalance,
                format!(
                    "commitment {}: {owed} sat of our htlcs removed without their preimage \
                     (failed) did not come back to our side ({} sat left it, {} sat in \
                     trimmed htlcs)",
                    new.number.get(),
                    drop,
                    trimmed.max(0)
                ),
            ));
        }
        Ok(())
    }

    /// Whether a sweep's outputs all pay us (our destination or shutdown script) or the
    /// allowlist (`sweep-destination`).
    fn check_sweep_outputs(&self, tx: &Transaction) -> Result<(), PolicyError> {
        for (i, out) in tx.output.iter().enumerate() {
            if !self.shared.is_our_script(&out.script_pubkey) {
                return Err(refusal(
                    Rule::SweepDestination,
                    format!("output {i} of the sweep pays {}, not our wallet", out.script_pubkey),
                ));
            }
        }
        Ok(())
    }

    fn counterparty_basepoints(
        params: &ChannelTransactionParameters,
    ) -> Result<warden_core::keys::Basepoints, PolicyError> {
        let setup = setup_of(params)?;
        Ok(setup.counterparty_basepoints)
    }
}

impl ChannelSigner for WardenChannelSigner {
    fn get_per_commitment_point(
        &self,
        idx: u64,
        secp_ctx: &Secp256k1<All>,
    ) -> Result<PublicKey, ()> {
        self.secrets.commitment_point(secp_ctx, idx).map_err(|_| ())
    }

    fn release_commitment_secret(&self, idx: u64) -> Result<[u8; 32], ()> {
        #[cfg(feature = "test-utils")]
        self.record(|| crate::ldk_test_utils::RecordedCall::Release(idx));
        let (secret, _peer_funding) = self.guarded("release_commitment_secret", |record| {
            let n = number_of_index(idx)?.get();
            let mut state = record.state.clone();
            state.revoke_holder_commitment(n)?;
            record.state = state;
            let peer_funding = record
                .params
                .as_ref()
                .and_then(|p| p.counterparty_pubkeys())
                .map(|k| k.funding_pubkey);
            Ok((self.secrets.commitment_secret(idx), peer_funding))
        })?;
        #[cfg(feature = "test-utils")]
        if let (Some(peer), Some(relay)) = (_peer_funding, self.relay()) {
            relay.holder_revoked(&peer, idx, &secret);
        }
        Ok(secret)
    }

    fn validate_holder_commitment(
        &self,
        holder_tx: &HolderCommitmentTransaction,
        outbound_htlc_preimages: Vec<PaymentPreimage>,
    ) -> Result<(), ()> {
        #[cfg(feature = "test-utils")]
        self.record(|| {
            crate::ldk_test_utils::RecordedCall::ValidateHolder(
                Box::new(holder_tx.clone()),
                outbound_htlc_preimages.clone(),
            )
        });
        self.guarded("validate_holder_commitment", |record| {
            if record.params.is_none() {
                // An inbound channel's #0 comes before any call with the parameters: it is
                // validated when they arrive, and nothing is revoked or signed before that.
                record.pending_holder = Some((holder_tx.clone(), outbound_htlc_preimages));
                return Ok(());
            }
            self.validate_holder(record, holder_tx, &outbound_htlc_preimages)
        })
    }

    fn validate_counterparty_revocation(&self, idx: u64, secret: &SecretKey) -> Result<(), ()> {
        #[cfg(feature = "test-utils")]
        self.record(|| crate::ldk_test_utils::RecordedCall::ValidateRevocation(idx, *secret));
        self.guarded("validate_counterparty_revocation", |record| {
            let n = number_of_index(idx)?.get();
            let mut state = record.state.clone();
            state.validate_counterparty_revocation(self.secp(), n, secret.secret_bytes())?;
            record.state = state;
            Ok(())
        })
    }

    fn pubkeys(&self, _secp_ctx: &Secp256k1<All>) -> ChannelPublicKeys {
        self.pubkeys.clone()
    }

    fn new_funding_pubkey(
        &self,
        splice_parent_funding_txid: Txid,
        secp_ctx: &Secp256k1<All>,
    ) -> PublicKey {
        match self.secrets.funding_key(Some(splice_parent_funding_txid)) {
            Ok(k) => k.public_key(secp_ctx),
            // The tweak is a SHA-256 output: it is never the negated key. Should it be, the
            // base key is returned and the splice's keys will not match: no signature follows.
            Err(_) => self.pubkeys.funding_pubkey,
        }
    }

    fn channel_keys_id(&self) -> [u8; 32] {
        self.secrets.channel_keys_id()
    }
}

impl EcdsaChannelSigner for WardenChannelSigner {
    fn sign_counterparty_commitment(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        commitment_tx: &CommitmentTransaction,
        inbound_htlc_preimages: Vec<PaymentPreimage>,
        outbound_htlc_preimages: Vec<PaymentPreimage>,
        _secp_ctx: &Secp256k1<All>,
    ) -> Result<(Signature, Vec<Signature>), ()> {
        let preimages: Vec<PaymentPreimage> =
            inbound_htlc_preimages.into_iter().chain(outbound_htlc_preimages).collect();
        #[cfg(feature = "test-utils")]
        self.record(|| {
            crate::ldk_test_utils::RecordedCall::SignCounterparty(
                Box::new(channel_parameters.clone()),
                Box::new(commitment_tx.clone()),
                preimages.clone(),
            )
        });
        let (sig, htlc_sigs) = self.guarded("sign_counterparty_commitment", |record| {
            self.sign_counterparty(record, channel_parameters, commitment_tx, &preimages)
        })?;
        #[cfg(feature = "test-utils")]
        if let (Some(peer), Some(relay)) = (channel_parameters.counterparty_pubkeys(), self.relay())
        {
            let ours = self.funding_key(channel_parameters).map(|k| k.public_key(self.secp()));
            if let Ok(ours) = ours {
                relay.counterparty_signed(
                    &peer.funding_pubkey,
                    &ours,
                    commitment_tx,
                    &sig,
                    &htlc_sigs,
                    &preimages,
                );
            }
        }
        Ok((sig, htlc_sigs))
    }

    fn sign_holder_commitment(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        commitment_tx: &HolderCommitmentTransaction,
        _secp_ctx: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.guarded("sign_holder_commitment", |record| {
            self.sign_holder(record, channel_parameters, commitment_tx, true)
        })
    }

    /// Signs one of our commitments without the state rules (it may be revoked): LDK's tests
    /// use it to broadcast revoked states. It exists only with the `test-utils` feature.
    #[cfg(feature = "test-utils")]
    fn unsafe_sign_holder_commitment(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        commitment_tx: &HolderCommitmentTransaction,
        _secp_ctx: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.guarded("unsafe_sign_holder_commitment", |record| {
            self.sign_holder(record, channel_parameters, commitment_tx, false)
        })
    }

    fn sign_justice_revoked_output(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        justice_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_key: &SecretKey,
        _secp_ctx: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.guarded("sign_justice_revoked_output", |record| {
            self.ensure_setup(record, channel_parameters)?;
            self.check_sweep_outputs(justice_tx)?;
            let setup = record.state.setup()?.clone();
            let (key, keys) = self.revoked_keys(&setup, channel_parameters, per_commitment_key)?;
            let script = to_local_witness_script(
                &keys.revocation,
                setup.holder_selected_delay,
                &keys.broadcaster_delayed_payment,
            );
            self.sign_input(&key, justice_tx, input, &script, Sat(amount), Rule::SweepStructure)
        })
    }

    fn sign_justice_revoked_htlc(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        justice_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_key: &SecretKey,
        htlc: &HTLCOutputInCommitment,
        _secp_ctx: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.guarded("sign_justice_revoked_htlc", |record| {
            self.ensure_setup(record, channel_parameters)?;
            self.check_sweep_outputs(justice_tx)?;
            let setup = record.state.setup()?.clone();
            let channel_type = setup.channel_type()?;
            let (key, keys) = self.revoked_keys(&setup, channel_parameters, per_commitment_key)?;
            let h = ldk_htlc(htlc);
            let script = h.witness_script(channel_type, &keys);
            self.sign_input(&key, justice_tx, input, &script, Sat(amount), Rule::SweepStructure)
        })
    }

    fn sign_holder_htlc_transaction(
        &self,
        htlc_tx: &Transaction,
        input: usize,
        htlc_descriptor: &HTLCDescriptor,
        _secp_ctx: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.guarded("sign_holder_htlc_transaction", |record| {
            let params = &htlc_descriptor.channel_derivation_parameters.transaction_parameters;
            self.ensure_setup(record, params)?;
            let setup = record.state.setup()?.clone();
            let channel_type = setup.channel_type()?;
            let idx = htlc_descriptor.per_commitment_number;
            let n = number_of_index(idx)?.get();
            let ours = self
                .secrets
                .commitment_point(self.secp(), idx)
                .map_err(|e| refusal(Rule::HtlcStructure, format!("{e}")))?;
            if ours != htlc_descriptor.per_commitment_point {
                return Err(refusal(
                    Rule::HtlcStructure,
                    format!("the point of our commitment {n} is not ours"),
                ));
            }
            // A revoked commitment of ours is not refused here: its HTLC transactions spend
            // outputs only a commitment on chain holds, and Warden never signs a revoked one
            // for broadcast (`sweep-holder-revoked` on `sign_holder_commitment`); what they
            // pay is as revocable as the commitment itself, so signing them loses nothing.
            let point = PerCommitmentPoint(ours);
            let keys = CommitmentKeys::derive(
                self.secp(),
                &point,
                &holder_keys(params).0,
                &setup.counterparty_basepoints,
            )
            .map_err(derivation(Rule::HtlcStructure))?;
            let vout = htlc_descriptor
                .htlc
                .transaction_output_index
                .ok_or_else(|| refusal(Rule::HtlcStructure, "the htlc has no output"))?;
            let outpoint = OutPoint { txid: htlc_descriptor.commitment_txid, vout };
            let built = build_htlc_tx(
                channel_type,
                outpoint,
                &ldk_htlc(&htlc_descriptor.htlc),
                warden_core::units::FeeratePerKw(htlc_descriptor.feerate_per_kw),
                setup.counterparty_selected_delay,
                &keys,
            )
            .map_err(|e| refusal(Rule::HtlcStructure, format!("{e}")))?;
            let txin = htlc_tx
                .input
                .get(input)
                .ok_or_else(|| refusal(Rule::HtlcStructure, "no such input"))?;
            let paired = htlc_tx.output.get(input);
            if txin.previous_output != outpoint || paired != built.tx.output.first() {
                return Err(refusal(
                    Rule::HtlcStructure,
                    format!("the htlc transaction of output {vout} is not the one BOLT-03 builds"),
                ));
            }
            let key = derive_private_key_from_basepoint(
                self.secrets.htlc_base_key(),
                &self.pubkeys.htlc_basepoint.to_public_key(),
                &point,
            )
            .map_err(derivation(Rule::HtlcStructure))?;
            self.sign_input(
                &key,
                htlc_tx,
                input,
                &built.htlc_witness_script,
                built.htlc_value,
                Rule::HtlcStructure,
            )
        })
    }

    fn sign_counterparty_htlc_transaction(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        htlc_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_point: &PublicKey,
        htlc: &HTLCOutputInCommitment,
        _secp_ctx: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.guarded("sign_counterparty_htlc_transaction", |record| {
            self.ensure_setup(record, channel_parameters)?;
            self.check_sweep_outputs(htlc_tx)?;
            let setup = record.state.setup()?.clone();
            let channel_type = setup.channel_type()?;
            let point = PerCommitmentPoint(*per_commitment_point);
            let keys = CommitmentKeys::derive(
                self.secp(),
                &point,
                &Self::counterparty_basepoints(channel_parameters)?,
                &holder_keys(channel_parameters).0,
            )
            .map_err(derivation(Rule::HtlcStructure))?;
            let script = ldk_htlc(htlc).witness_script(channel_type, &keys);
            let key = derive_private_key_from_basepoint(
                self.secrets.htlc_base_key(),
                &self.pubkeys.htlc_basepoint.to_public_key(),
                &point,
            )
            .map_err(derivation(Rule::HtlcStructure))?;
            self.sign_input(&key, htlc_tx, input, &script, Sat(amount), Rule::HtlcStructure)
        })
    }

    fn sign_closing_transaction(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        closing_tx: &ClosingTransaction,
        _secp_ctx: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.guarded("sign_closing_transaction", |record| {
            self.ensure_setup(record, channel_parameters)?;
            let funding = channel_parameters
                .funding_outpoint
                .ok_or_else(|| refusal(Rule::CloseStructure, "no funding outpoint"))?;
            let trusted = closing_tx.verify(funding.into_bitcoin_outpoint()).map_err(|()| {
                refusal(Rule::CloseStructure, "the closing transaction does not rebuild")
            })?;
            let tx = trusted.built_transaction().clone();
            check_mutual_close(
                &self.shared.config.limits,
                &self.shared.config.allowlist,
                &record.state,
                &tx,
                |s| self.shared.is_our_script(s),
            )?;
            let mut state = record.state.clone();
            state.sign_mutual_close()?;
            let sig = self.sign_funding_spend(channel_parameters, &tx, 0)?;
            record.state = state;
            Ok(sig)
        })
    }

    fn sign_holder_keyed_anchor_input(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        anchor_tx: &Transaction,
        input: usize,
        _secp_ctx: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.guarded("sign_holder_keyed_anchor_input", |record| {
            self.ensure_setup(record, channel_parameters)?;
            let key = self.funding_key(channel_parameters)?;
            let script = anchor_witness_script(&FundingPubkey(key.public_key(self.secp())));
            self.sign_input(
                &key,
                anchor_tx,
                input,
                &script,
                warden_core::tx::ANCHOR_OUTPUT_VALUE,
                Rule::SweepStructure,
            )
        })
    }

    fn sign_channel_announcement_with_funding_key(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        msg: &UnsignedChannelAnnouncement,
        _secp_ctx: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.guarded("sign_channel_announcement_with_funding_key", |_record| {
            let key = self.funding_key(channel_parameters)?;
            let ours = key.public_key(self.secp()).serialize();
            let named = [msg.bitcoin_key_1.as_slice(), msg.bitcoin_key_2.as_slice()];
            if !named.contains(&ours.as_slice()) {
                return Err(refusal(
                    Rule::GossipStructure,
                    "the channel announcement does not name our funding key",
                ));
            }
            let digest = sha256d::Hash::hash(&msg.encode()).to_byte_array();
            Ok(sign_hash_low_r(self.secp(), &key, &digest))
        })
    }

    fn sign_splice_shared_input(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        tx: &Transaction,
        input_index: usize,
        _secp_ctx: &Secp256k1<All>,
    ) -> Signature {
        // LDK's trait gives this call no way to refuse. Splices are not policy-checked yet, so
        // Warden refuses them all: the signature returned is over no transaction (an all-zero
        // digest), which no splice can use, and the refusal is recorded.
        let refused =
            self.guarded("sign_splice_shared_input", |_record| -> Result<Signature, PolicyError> {
                let _ = (channel_parameters, tx, input_index);
                Err(refusal(Rule::OnchainUnknownDestination, "splices are not policy-checked yet"))
            });
        match refused {
            Ok(sig) => sig,
            Err(()) => sign_hash_low_r(self.secp(), self.secrets.payment_key(), &[0u8; 32]),
        }
    }
}

/// warden-core's HTLC of an LDK HTLC (`offered` from the broadcaster's view).
fn ldk_htlc(h: &HTLCOutputInCommitment) -> Htlc {
    Htlc {
        direction: if h.offered { HtlcDirection::Offered } else { HtlcDirection::Received },
        amount: Msat(h.amount_msat),
        payment_hash: PaymentHash(h.payment_hash.0),
        cltv_expiry: h.cltv_expiry,
    }
}
