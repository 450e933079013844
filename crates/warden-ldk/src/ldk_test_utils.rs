//! Warden in LDK's own test utilities (feature `test-utils`): a `TestSignerFactory` that
//! makes every `TestKeysInterface` of LDK's functional tests a [`WardenKeysManager`], so
//! LDK's exported tests (`lightning::get_xtests()`) run with Warden as the signer.
//!
//! LDK wraps each channel signer in its `TestChannelSigner`, which does not forward
//! `validate_holder_commitment` and `validate_counterparty_revocation` to the signer it wraps:
//! under that wrapper Warden would never learn that a holder commitment was validated or that
//! the peer revoked, and its ordering rules would refuse everything that depends on it.
//!
//! In LDK's tests both sides of every channel are Warden, in one process, so the evidence
//! those two calls carry exists at the other side: when the peer's Warden signs our
//! commitment, its signatures (with the commitment) are exactly what our
//! `validate_holder_commitment` would receive; when the peer's Warden releases a
//! per-commitment secret, it is exactly what our `validate_counterparty_revocation` would
//! receive. [`EvidenceRelay`] carries them across, and the receiving Warden runs its own full
//! `validate_*` on them: every check runs (LDK's `verify`, warden-core's reading, the peer's
//! signatures, the balance, the numbers, the secret against the point), nothing is trusted
//! and no rule is relaxed. Only the moment differs: the evidence arrives as the peer produces
//! it rather than when LDK would have forwarded it, one message earlier.
//!
//! The relay exists only with the `test-utils` feature and only when this factory made the
//! managers; a production manager never has one.

use std::any::Any;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bitcoin::absolute::LockTime;
use bitcoin::secp256k1::ecdh::SharedSecret;
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, Signature};
use bitcoin::secp256k1::{schnorr, All, PublicKey, Scalar, Secp256k1, SecretKey};
use bitcoin::{ScriptBuf, Transaction, TxOut};
use lightning::bolt11_invoice::RawBolt11Invoice;
use lightning::ln::chan_utils::{
    ChannelTransactionParameters, CommitmentTransaction, HolderCommitmentTransaction,
};
use lightning::ln::inbound_payment::ExpandedKey;
use lightning::ln::msgs::UnsignedGossipMessage;
use lightning::ln::script::ShutdownScript;
use lightning::offers::invoice::UnsignedBolt12Invoice;
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::sign::{
    ChannelSigner, EntropySource, NodeSigner, OutputSpender, PeerStorageKey, ReceiveAuthKey,
    Recipient, SignerProvider, SpendableOutputDescriptor,
};
use lightning::types::payment::PaymentPreimage;
use lightning::util::dyn_signer::{DynKeysInterfaceTrait, DynSigner, DynSignerTrait, InnerSign};
use lightning::util::test_utils::TestSignerFactory;

use crate::{KeyScheme, Refusal, WardenChannelSigner, WardenConfig, WardenKeysManager};

impl DynSignerTrait for WardenChannelSigner {}

impl InnerSign for WardenChannelSigner {
    fn box_clone(&self) -> Box<dyn InnerSign> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Carries the evidence of the two `validate_*` calls LDK's test wrapper does not forward from
/// one side's Warden to the other's (see the module documentation).
pub trait EvidenceRelay: Send + Sync {
    /// The peer (funding key `signer_funding`) signed the commitment of the channel side whose
    /// funding key is `holder_funding`, with `preimages` (those LDK gave the peer's signer: the
    /// HTLCs settled with a preimage since the last commitment, which include every one the
    /// holder's `validate_holder_commitment` would have received).
    fn counterparty_signed(
        &self,
        holder_funding: &PublicKey,
        signer_funding: &PublicKey,
        tx: &CommitmentTransaction,
        sig: &Signature,
        htlc_sigs: &[Signature],
        preimages: &[PaymentPreimage],
    );

    /// The side whose peer has funding key `peer_funding` released the secret of its
    /// commitment `idx`.
    fn holder_revoked(&self, peer_funding: &PublicKey, idx: u64, secret: &[u8; 32]);
}

/// Delivers relayed evidence to every manager the factory made (only the one holding the
/// channel acts on it).
#[derive(Debug, Default)]
struct Relay {
    managers: Mutex<Vec<Weak<WardenKeysManager>>>,
}

impl Relay {
    fn live(&self) -> Vec<Arc<WardenKeysManager>> {
        self.managers
            .lock()
            .map(|m| m.iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default()
    }
}

impl EvidenceRelay for Relay {
    fn counterparty_signed(
        &self,
        holder_funding: &PublicKey,
        signer_funding: &PublicKey,
        tx: &CommitmentTransaction,
        sig: &Signature,
        htlc_sigs: &[Signature],
        preimages: &[PaymentPreimage],
    ) {
        let live = self.live();
        for manager in live {
            if let Some(id) = manager.channel_keys_id_of(holder_funding) {
                let holder_tx = HolderCommitmentTransaction::new(
                    tx.clone(),
                    *sig,
                    htlc_sigs.to_vec(),
                    holder_funding,
                    signer_funding,
                );
                let _ = manager
                    .derive_channel_signer(id)
                    .validate_holder_commitment(&holder_tx, preimages.to_vec());
            }
        }
    }

    fn holder_revoked(&self, peer_funding: &PublicKey, idx: u64, secret: &[u8; 32]) {
        let Ok(secret) = SecretKey::from_slice(secret) else { return };
        for manager in self.live() {
            if let Some(id) = manager.channel_keys_id_of(peer_funding) {
                let _ = manager
                    .derive_channel_signer(id)
                    .validate_counterparty_revocation(idx, &secret);
            }
        }
    }
}

/// One call of the commitment round, recorded with its arguments so it can be replayed against
/// another signer of the same keys (LDK's `InMemorySigner`: the keys are LDK's own scheme).
#[derive(Clone, Debug)]
pub enum RecordedCall {
    /// `sign_counterparty_commitment`, with the preimages LDK passed (inbound and outbound).
    SignCounterparty(
        Box<ChannelTransactionParameters>,
        Box<CommitmentTransaction>,
        Vec<PaymentPreimage>,
    ),
    /// `validate_holder_commitment`, with the preimages LDK passed.
    ValidateHolder(Box<HolderCommitmentTransaction>, Vec<PaymentPreimage>),
    /// `release_commitment_secret`.
    Release(u64),
    /// `validate_counterparty_revocation`.
    ValidateRevocation(u64, SecretKey),
}

/// Replays `calls` on `signer`; returns the index of the first call that failed.
pub fn replay<S: EcdsaChannelSigner>(
    signer: &S,
    calls: &[RecordedCall],
    secp: &Secp256k1<All>,
) -> Result<(), usize> {
    for (i, call) in calls.iter().enumerate() {
        let ok = match call {
            RecordedCall::SignCounterparty(params, tx, preimages) => signer
                .sign_counterparty_commitment(params, tx, preimages.clone(), Vec::new(), secp)
                .is_ok(),
            RecordedCall::ValidateHolder(tx, preimages) => {
                signer.validate_holder_commitment(tx, preimages.clone()).is_ok()
            }
            RecordedCall::Release(idx) => signer.release_commitment_secret(*idx).is_ok(),
            RecordedCall::ValidateRevocation(idx, secret) => {
                signer.validate_counterparty_revocation(*idx, secret).is_ok()
            }
        };
        if !ok {
            return Err(i);
        }
    }
    Ok(())
}

/// A [`WardenKeysManager`] behind LDK's dynamic keys interface.
#[derive(Debug, Clone)]
pub struct DynWardenKeys(pub Arc<WardenKeysManager>);

impl EntropySource for DynWardenKeys {
    fn get_secure_random_bytes(&self) -> [u8; 32] {
        self.0.get_secure_random_bytes()
    }
}

impl NodeSigner for DynWardenKeys {
    fn get_expanded_key(&self) -> ExpandedKey {
        self.0.get_expanded_key()
    }
    fn get_peer_storage_key(&self) -> PeerStorageKey {
        self.0.get_peer_storage_key()
    }
    fn get_receive_auth_key(&self) -> ReceiveAuthKey {
        self.0.get_receive_auth_key()
    }
    fn get_node_id(&self, recipient: Recipient) -> Result<PublicKey, ()> {
        self.0.get_node_id(recipient)
    }
    fn ecdh(
        &self,
        recipient: Recipient,
        other_key: &PublicKey,
        tweak: Option<&Scalar>,
    ) -> Result<SharedSecret, ()> {
        self.0.ecdh(recipient, other_key, tweak)
    }
    fn sign_invoice(
        &self,
        invoice: &RawBolt11Invoice,
        recipient: Recipient,
    ) -> Result<RecoverableSignature, ()> {
        self.0.sign_invoice(invoice, recipient)
    }
    fn sign_bolt12_invoice(
        &self,
        invoice: &UnsignedBolt12Invoice,
    ) -> Result<schnorr::Signature, ()> {
        self.0.sign_bolt12_invoice(invoice)
    }
    fn sign_gossip_message(&self, msg: UnsignedGossipMessage) -> Result<Signature, ()> {
        self.0.sign_gossip_message(msg)
    }
    fn sign_message(&self, msg: &[u8]) -> Result<String, ()> {
        self.0.sign_message(msg)
    }
}

impl SignerProvider for DynWardenKeys {
    type EcdsaSigner = DynSigner;

    fn generate_channel_keys_id(&self, inbound: bool, user_channel_id: u128) -> [u8; 32] {
        self.0.generate_channel_keys_id(inbound, user_channel_id)
    }
    fn derive_channel_signer(&self, channel_keys_id: [u8; 32]) -> DynSigner {
        DynSigner::new(self.0.derive_channel_signer(channel_keys_id))
    }
    fn get_destination_script(&self, channel_keys_id: [u8; 32]) -> Result<ScriptBuf, ()> {
        self.0.get_destination_script(channel_keys_id)
    }
    fn get_shutdown_scriptpubkey(&self) -> Result<ShutdownScript, ()> {
        self.0.get_shutdown_scriptpubkey()
    }
}

impl OutputSpender for DynWardenKeys {
    fn spend_spendable_outputs(
        &self,
        descriptors: &[&SpendableOutputDescriptor],
        outputs: Vec<TxOut>,
        change_destination_script: ScriptBuf,
        feerate_sat_per_1000_weight: u32,
        locktime: Option<LockTime>,
        secp_ctx: &Secp256k1<All>,
    ) -> Result<Transaction, ()> {
        self.0.spend_spendable_outputs(
            descriptors,
            outputs,
            change_destination_script,
            feerate_sat_per_1000_weight,
            locktime,
            secp_ctx,
        )
    }
}

impl DynKeysInterfaceTrait for DynWardenKeys {}

/// LDK's `TestSignerFactory` making Warden keys managers (LDK's key scheme, the given
/// configuration), relaying evidence between them, and gathering their refusals for a test
/// runner. It holds no manager alive: a test's nodes are dropped with the test.
#[derive(Debug)]
pub struct WardenSignerFactory {
    config: WardenConfig,
    refusals: Arc<Mutex<Vec<Refusal>>>,
    relay: Arc<Relay>,
}

impl WardenSignerFactory {
    /// A factory whose managers check against `config`.
    pub fn new(config: WardenConfig) -> WardenSignerFactory {
        WardenSignerFactory { config, refusals: Arc::default(), relay: Arc::default() }
    }

    /// The configuration LDK's functional tests run with: test-network limits, and the one
    /// destination LDK's tests sweep to (`check_spendable_outputs!` pays a bare `OP_RETURN`)
    /// on the allowlist, as an operator allowlists its wallet. `sweep-destination` still runs
    /// on every sweep; nothing else is allowlisted.
    pub fn for_ldk_tests() -> WardenSignerFactory {
        let op_return = ScriptBuf::from_bytes(vec![bitcoin::opcodes::all::OP_RETURN.to_u8()]);
        WardenSignerFactory::new(WardenConfig {
            allowlist: warden_core::policy::onchain::Allowlist::from_scripts([op_return]),
            ..WardenConfig::test_network()
        })
    }

    /// The refusals of every manager this factory made, since the last call, oldest first.
    pub fn take_refusals(&self) -> Vec<Refusal> {
        self.refusals.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default()
    }
}

impl TestSignerFactory for WardenSignerFactory {
    fn make_signer(
        &self,
        seed: &[u8; 32],
        now: Duration,
        v2_remote_key_derivation: bool,
    ) -> Box<dyn DynKeysInterfaceTrait<EcdsaSigner = DynSigner>> {
        let manager = WardenKeysManager::new(
            seed,
            KeyScheme::Ldk { v2_remote_key: v2_remote_key_derivation },
            self.config.clone(),
            now.as_secs(),
            now.subsec_nanos(),
        );
        let manager = match manager {
            Ok(m) => Arc::new(m),
            Err(e) => panic_in_test_utils(e),
        };
        if let Ok(mut managers) = self.relay.managers.lock() {
            managers.retain(|m| m.strong_count() > 0);
            managers.push(Arc::downgrade(&manager));
        }
        manager.set_test_hooks(
            Arc::clone(&self.relay) as Arc<dyn EvidenceRelay>,
            Arc::clone(&self.refusals),
        );
        Box::new(DynWardenKeys(manager))
    }
}

#[allow(clippy::panic, reason = "LDK's factory cannot fail; a seed without keys is a broken test")]
fn panic_in_test_utils(e: crate::keys::DerivationError) -> ! {
    panic!("warden keys manager: {e}")
}
