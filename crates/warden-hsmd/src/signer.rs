//! The request handler: `init`, and the requests that need no channel state, answered byte
//! for byte as Core Lightning's `hsmd` answers them (`hsmd/libhsmd.c`).
//!
//! No I/O happens here except loading the `hsm_secret` at `init`; the server owns the file
//! descriptors. Every refusal is a [`BadRequestError`]; the server decides what it costs (the
//! client connection, or the whole process for the master).

use std::fmt;
use std::path::Path;

use bitcoin::{Network, NetworkKind};
use secp256k1::{All, Secp256k1};
use warden_core::keys::{NodeId as CoreNodeId, NodeKeys, PerCommitmentPoint};
use warden_core::rng::EntropySource;
use warden_core::secret::PerCommitmentSecret;
use warden_core::sign;
use warden_core::units::{CommitmentNumber, Dbid};
use warden_wire::msg::*;
use warden_wire::{Basepoints, Message, NodeId, Permissions, Request, Secret};

use warden_core::policy::PolicyError;

use crate::channels::{ChannelContext, ChannelStore, Channels, MemoryChannelStore};
use crate::durable::{Clock, OpenStoreError, SealedRedbChannelStore, SystemClock};
use crate::hsm_secret::{self, HsmSecretError};
use crate::permissions;
use crate::policy::Policy;
use crate::policy_file::{self, PolicyFileError};

/// The hsmd wire version Warden speaks.
pub const HSM_VERSION: u32 = 6;

/// The capabilities of the init reply, as Core Lightning's hsmd (v26.06) lists them.
pub const CAPABILITIES: [u32; 13] = [28, 56, 142, 147, 149, 29, 32, 34, 40, 41, 45, 51, 52];

/// Who a client is: the identity and permissions of its `client_hsmfd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientContext {
    /// The peer (or our own id, for global clients).
    pub id: NodeId,
    /// The channel's database id (0 if not per-channel).
    pub dbid: u64,
    /// What the client may ask for.
    pub permissions: Permissions,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadRequestError {
    /// The body could not be decoded.
    Malformed {
        /// The decoder's complaint.
        reason: String,
    },
    /// The client lacks the permission the request needs.
    PermissionDenied {
        /// The request type.
        msg_type: u16,
        /// The bit it needs.
        needed: Permissions,
        /// The client's bits.
        held: Permissions,
    },
    /// The type is not a request at all.
    UnknownType {
        /// The type.
        msg_type: u16,
    },
    /// A valid request that Warden does not answer yet.
    NotImplemented {
        /// The request's CSV name.
        name: &'static str,
    },
    /// `init` or `dev_preinit` on a connection where it is not expected.
    Unexpected {
        /// The request's CSV name.
        name: &'static str,
    },
    /// The request asks for something that cannot be derived (a bad key, index or number).
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// Policy refused the request: the rule and what it saw.
    Refused(PolicyError),
    /// In proxy mode: the remote signer refused the request (its description, as it reported
    /// it), or did not answer in time.
    Remote {
        /// What the signer reported, or why no answer came.
        description: String,
    },
}

impl fmt::Display for BadRequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRequestError::Malformed { reason } => write!(f, "could not parse request: {reason}"),
            BadRequestError::PermissionDenied { msg_type, needed, held } => write!(
                f,
                "permission denied (node-permission): type {msg_type} needs permission {:#x}, client has {:#x}",
                needed.0, held.0
            ),
            BadRequestError::UnknownType { msg_type } => {
                write!(f, "unknown request type {msg_type}")
            }
            BadRequestError::NotImplemented { name } => {
                write!(f, "{name} is not implemented by warden-hsmd yet")
            }
            BadRequestError::Unexpected { name } => write!(f, "unexpected {name}"),
            BadRequestError::Invalid { reason } => write!(f, "invalid request: {reason}"),
            BadRequestError::Refused(e) => write!(f, "{e}"),
            BadRequestError::Remote { description } => f.write_str(description),
        }
    }
}

impl std::error::Error for BadRequestError {}

/// Why `init` failed.
#[derive(Debug)]
pub enum InitError {
    /// The request is malformed or asks for what Warden does not support.
    BadRequest(BadRequestError),
    /// The `hsm_secret` could not be loaded: an [`InitReplyFailure`] when it has a code.
    Secret(HsmSecretError),
    /// The durable node state could not be opened, or does not verify (`node-state-stale`):
    /// the signer refuses to start rather than sign on it.
    NodeState(OpenStoreError),
    /// The operator's policy file is invalid: the signer refuses to start rather than run a
    /// policy other than the one written.
    Policy(PolicyFileError),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::BadRequest(e) => write!(f, "bad init: {e}"),
            InitError::Secret(e) => write!(f, "{e}"),
            InitError::NodeState(e) => write!(f, "{e}"),
            InitError::Policy(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::BadRequest(e) => Some(e),
            InitError::Secret(e) => Some(e),
            InitError::NodeState(e) => Some(e),
            InitError::Policy(e) => Some(e),
        }
    }
}

/// What a handled request produced.
#[derive(Debug)]
pub enum Outcome {
    /// A reply body to send on the same connection.
    Reply(Vec<u8>),
    /// A `client_hsmfd`: the reply body, then a new client with this context.
    NewClient {
        /// The reply body (type 109).
        reply: Vec<u8>,
        /// The new client's identity and permissions.
        client: ClientContext,
    },
}

/// replicas + audit: opens the sealed store (reconciled with `replicas`) and its audit log.
fn open_durable(
    dir: &Path,
    node_id: &NodeId,
    seed: &warden_core::secret::Seed,
    clock: Box<dyn Clock>,
    mut entropy: Box<dyn EntropySource>,
    replicas: Vec<crate::replica::Replica>,
) -> Result<(Box<dyn ChannelStore>, crate::audit::AuditLog), InitError> {
    let keys = warden_core::seal::WardenKeys::derive(seed)
        .map_err(|e| InitError::BadRequest(invalid(e)))?;
    let store = SealedRedbChannelStore::open_with_replicas(
        dir,
        node_id,
        keys,
        &mut *entropy,
        clock,
        replicas,
    )
    .map_err(InitError::NodeState)?;
    let audit = store.audit_log();
    Ok((Box::new(store), audit))
}

pub(crate) fn invalid(reason: impl fmt::Display) -> BadRequestError {
    BadRequestError::Invalid { reason: reason.to_string() }
}

pub(crate) fn encode<M: Message>(m: &M) -> Result<Vec<u8>, BadRequestError> {
    m.encode().map_err(|e| invalid(format_args!("cannot encode reply: {e}")))
}

/// The signer behind the master connection and every client, created by `init`.
pub struct Signer {
    pub(crate) secp: Secp256k1<All>,
    pub(crate) keys: NodeKeys,
    pub(crate) node_id: NodeId,
    pub(crate) channels: Channels,
    pub(crate) policy: Policy,
    /// payments: the payment ledger (`payment-*` rules).
    pub(crate) payments: crate::payments::Payments,
    /// What the operator approved once after a refusal (`approvals.rs`).
    pub(crate) approvals: crate::approvals::Approvals,
    wallet_scripts: std::sync::OnceLock<std::sync::Arc<crate::wallet::WalletScripts>>,
    /// audit: the durable store's audit trail (`audit.rs`), written from `handle`.
    audit: crate::audit::AuditLog,
    /// Warden's own keys (`warden/...` labels): the node-backup key of `extensions.rs`.
    pub(crate) warden_keys: warden_core::seal::WardenKeys,
    /// The node-backup keys released in the last hour (`extensions.rs`).
    pub(crate) unseals: crate::extensions::UnsealLedger,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

/// Where `init` takes the node's secret from.
enum SecretSource<'a> {
    /// `hsm_secret` in the lightning directory, created with this entropy if missing.
    LightningDir(&'a mut dyn EntropySource),
    /// Already loaded by the caller.
    Given(&'a hsm_secret::LoadedSecret),
}

/// Where a signer keeps its channel state.
pub enum StoreChoice {
    /// Sealed records in `<lightning dir>/warden/`, verified at `init` (the default).
    Durable {
        /// Stamps every signed head.
        clock: Box<dyn Clock>,
        /// Seeds the record nonces (32 bytes, drawn once at `init`).
        entropy: Box<dyn EntropySource>,
    },
    /// [`StoreChoice::Durable`] with these replicas instead of the environment's
    /// (`replica.rs`; `warden run` passes its configured ones).
    Replicated {
        /// Stamps every signed head.
        clock: Box<dyn Clock>,
        /// Seeds the record nonces (32 bytes, drawn once at `init`).
        entropy: Box<dyn EntropySource>,
        /// The replicas, reconciled at `init` and written before every reply.
        replicas: Vec<crate::replica::Replica>,
    },
    /// In memory only, lost when the signer is dropped (unit tests).
    Memory,
}

impl fmt::Debug for StoreChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreChoice::Durable { .. } => "Durable",
            StoreChoice::Replicated { .. } => "Replicated",
            StoreChoice::Memory => "Memory",
        })
    }
}

impl Signer {
    /// Handles `init`: checks the version range, loads (or creates) `dir/hsm_secret`, derives
    /// the keys, opens and verifies the durable channel store in `dir/warden/` (stamped with
    /// the system clock) and returns the signer with its `init_reply_v4` body.
    pub fn init(
        body: &[u8],
        dir: &Path,
        entropy: &mut dyn EntropySource,
    ) -> Result<(Signer, Vec<u8>), InitError> {
        let nonces = hsm_secret::OsEntropy::open()
            .map_err(|e| InitError::NodeState(OpenStoreError::Entropy(e)))?;
        let store =
            StoreChoice::Durable { clock: Box::new(SystemClock), entropy: Box::new(nonces) };
        Signer::init_with(body, dir, entropy, store)
    }

    /// [`Signer::init`] with the channel store chosen by the caller.
    pub fn init_with(
        body: &[u8],
        dir: &Path,
        entropy: &mut dyn EntropySource,
        store: StoreChoice,
    ) -> Result<(Signer, Vec<u8>), InitError> {
        Signer::init_from(body, dir, SecretSource::LightningDir(entropy), store)
    }

    /// [`Signer::init_with`] with a secret the caller loaded (the remote signer's own seed
    /// file) instead of `dir/hsm_secret`; init's `hsm_passphrase`, if any, is not used. `dir`
    /// holds the durable store (`dir/warden/`) and the policy file.
    pub fn init_with_secret(
        body: &[u8],
        secret: &hsm_secret::LoadedSecret,
        dir: &Path,
        store: StoreChoice,
    ) -> Result<(Signer, Vec<u8>), InitError> {
        Signer::init_from(body, dir, SecretSource::Given(secret), store)
    }

    fn init_from(
        body: &[u8],
        dir: &Path,
        secret: SecretSource<'_>,
        store: StoreChoice,
    ) -> Result<(Signer, Vec<u8>), InitError> {
        let bad = InitError::BadRequest;
        let init = Init::decode(body)
            .map_err(|e| bad(BadRequestError::Malformed { reason: e.to_string() }))?;
        if init.hsm_wire_min_version > HSM_VERSION || init.hsm_wire_max_version < HSM_VERSION {
            return Err(bad(invalid(format_args!(
                "lightningd speaks hsmd versions {} to {}, warden-hsmd speaks {HSM_VERSION}",
                init.hsm_wire_min_version, init.hsm_wire_max_version
            ))));
        }
        if init.hsm_encryption_key.is_some()
            || init.dev_force_privkey.is_some()
            || init.dev_force_bip32_seed.is_some()
            || init.dev_force_channel_secrets.is_some()
            || init.dev_force_channel_secrets_shaseed.is_some()
        {
            return Err(bad(BadRequestError::NotImplemented {
                name: "hsmd_init with hsm_encryption_key or dev_force_*",
            }));
        }
        let network = Network::from_chain_hash(init.chainparams)
            .ok_or_else(|| bad(invalid("unknown chain")))?;
        let owned;
        let loaded = match secret {
            SecretSource::LightningDir(entropy) => {
                let passphrase = init.tlvs.hsm_passphrase.as_ref().map(|p| p.expose_secret());
                owned = hsm_secret::load_or_create(dir, passphrase, entropy)
                    .map_err(InitError::Secret)?;
                &owned
            }
            SecretSource::Given(loaded) => loaded,
        };
        let secp = Secp256k1::new();
        let keys = NodeKeys::derive(&secp, &loaded.seed, NetworkKind::from(network))
            .map_err(|e| bad(invalid(e)))?;
        let node_id = NodeId::from(keys.node_id().to_public_key());
        let warden_keys =
            warden_core::seal::WardenKeys::derive(&loaded.seed).map_err(|e| bad(invalid(e)))?;
        let reply = InitReplyV4 {
            hsm_version: HSM_VERSION,
            hsm_capabilities: CAPABILITIES.to_vec(),
            node_id,
            bip32: keys.wallet_xpub(&secp),
            bolt12: keys.wallet().bolt12_pubkey(&secp),
            tlvs: InitReplyTlvs {
                hsm_secret_type: Some(loaded.secret_type),
                bip86_base: keys.wallet().bip86_base_xpub(&secp),
                unknown: Vec::new(),
            },
        };
        let reply = encode(&reply).map_err(bad)?;
        // replicas + audit: `Durable` takes its replicas from the environment
        // (`WARDEN_REPLICA_POSTGRES`, replica.rs), `Replicated` from the caller; the open
        // report's alarms are in the audit trail.
        let (store, audit): (Box<dyn ChannelStore>, crate::audit::AuditLog) = match store {
            StoreChoice::Memory => {
                (Box::new(MemoryChannelStore::default()), crate::audit::AuditLog::disabled())
            }
            StoreChoice::Durable { clock, entropy } => {
                let replicas = crate::replica::from_env(&node_id).map_err(InitError::NodeState)?;
                open_durable(dir, &node_id, &loaded.seed, clock, entropy, replicas)?
            }
            StoreChoice::Replicated { clock, entropy, replicas } => {
                open_durable(dir, &node_id, &loaded.seed, clock, entropy, replicas)?
            }
        };
        let channels = Channels::new(store);
        let policy = Policy::new(
            policy_file::load(policy_file::locate(dir).as_deref(), network)
                .map_err(InitError::Policy)?,
        );
        let approvals = crate::approvals::Approvals::new(&dir.join(crate::durable::STORE_DIR));
        // payments: the ledger's velocity and approvals, and the HTLCs of every channel.
        let payments = crate::payments::Payments::restore(
            &channels,
            policy.payment.clone(),
            network,
            Some(approvals.clone()),
        )
        .map_err(|e| {
            InitError::NodeState(OpenStoreError::Stale(
                crate::durable::NodeStateStaleError::Decode {
                    name: "node".into(),
                    reason: e.to_string(),
                },
            ))
        })?;
        Ok((
            Signer {
                secp,
                keys,
                node_id,
                channels,
                policy,
                payments,
                approvals,
                wallet_scripts: Default::default(),
                audit,
                warden_keys,
                unseals: Default::default(),
            },
            reply,
        ))
    }

    /// The scripts of our wallet's first indexes, derived on first use.
    pub(crate) fn wallet_scripts(&self) -> std::sync::Arc<crate::wallet::WalletScripts> {
        std::sync::Arc::clone(self.wallet_scripts.get_or_init(|| {
            std::sync::Arc::new(crate::wallet::WalletScripts::derive(&self.secp, &self.keys))
        }))
    }

    /// The node id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// What Warden holds of the channel with `peer` and database id `dbid` (for `status` and
    /// tests), if it was ever set up.
    pub fn channel_state(
        &self,
        peer: &NodeId,
        dbid: u64,
    ) -> Option<warden_core::channel::ChannelState> {
        let slot = crate::channels::slot(peer, dbid).ok()?;
        self.channels.snapshot(&slot).ok()
    }

    /// Handles one request body from `client`. A policy refusal is also recorded in the
    /// policy log (counted, kept for `status`, written to the status log).
    pub fn handle(&self, client: &ClientContext, body: &[u8]) -> Result<Outcome, BadRequestError> {
        // audit: every decision is recorded (audit.rs); a state change's entry is written in
        // the batch that makes the change durable.
        let mut outcome = self.audit.decide(client, body, || self.dispatch(client, body));
        if let Err(BadRequestError::Refused(e)) = &outcome {
            self.policy.refused(e);
        }
        // unseal: a release of node-backup keys is in the durable audit trail before the
        // keys leave; if the trail cannot be written, no key leaves.
        if outcome.is_ok() && warden_wire::frame::peek_type(body).ok() == Some(WardenUnseal::TYPE) {
            if let Err(e) = self.audit.flush() {
                outcome = Err(invalid(format_args!(
                    "the audit trail could not be written, so no key is released: {e}"
                )));
            }
        }
        outcome
    }

    /// audit: the audit trail of the durable store (its start's replica alarms, `flush`).
    pub fn audit_log(&self) -> &crate::audit::AuditLog {
        &self.audit
    }

    /// What the policy refused and warned about.
    pub fn policy_log(&self) -> &crate::policy::PolicyLog {
        self.policy.log()
    }

    fn dispatch(&self, client: &ClientContext, body: &[u8]) -> Result<Outcome, BadRequestError> {
        let msg_type = warden_wire::frame::peek_type(body)
            .map_err(|e| BadRequestError::Malformed { reason: e.to_string() })?;
        let needed =
            permissions::required(msg_type).ok_or(BadRequestError::UnknownType { msg_type })?;
        if !client.permissions.contains(needed) {
            return Err(BadRequestError::PermissionDenied {
                msg_type,
                needed,
                held: client.permissions,
            });
        }
        let request = Request::decode(body)
            .map_err(|e| BadRequestError::Malformed { reason: e.to_string() })?;
        let secp = &self.secp;
        let reply = match request {
            Request::Ecdh(m) => {
                let ss = sign::ecdh(self.keys.node_key(), &m.point);
                encode(&EcdhReply { ss: Secret::new(*ss.expose_secret()) })?
            }
            Request::DeriveSecret(m) => {
                let s = self.keys.derive_secret(&m.info);
                encode(&DeriveSecretReply { secret: Secret::new(*s.expose_secret()) })?
            }
            Request::SignMessage(m) => {
                let sig = sign::sign_message(secp, self.keys.node_key(), &m.msg);
                encode(&SignMessageReply { sig })?
            }
            Request::SignInvoice(m) => {
                let sig = sign::sign_invoice(secp, self.keys.node_key(), &m.hrp, &m.u5bytes)
                    .map_err(invalid)?;
                encode(&SignInvoiceReply { sig })?
            }
            Request::Bip137SignMessage(m) => {
                let key = self.keys.wallet().utxo_key(secp, m.keyidx).map_err(invalid)?;
                encode(&Bip137SignMessageReply { sig: sign::sign_bip137(secp, &key, &m.msg) })?
            }
            Request::CheckPubkey(m) => {
                let ok =
                    self.keys.wallet().check_pubkey(secp, m.index, &m.pubkey).map_err(invalid)?;
                encode(&CheckPubkeyReply { ok })?
            }
            Request::CheckBip86Pubkey(m) => {
                let key = self.keys.wallet().bip86_key(secp, m.index).map_err(invalid)?;
                encode(&CheckBip86PubkeyReply { ok: key.public_key(secp) == m.pubkey })?
            }
            Request::GetChannelBasepoints(m) => {
                let ck = self.channel_keys(&m.peerid, m.dbid)?;
                let b = ck.basepoints(secp);
                encode(&GetChannelBasepointsReply {
                    basepoints: Basepoints {
                        revocation: b.revocation.0,
                        payment: b.payment.0,
                        htlc: b.htlc.0,
                        delayed_payment: b.delayed_payment.0,
                    },
                    funding_pubkey: ck.funding_pubkey(secp).0,
                })?
            }
            Request::GetOutputScriptpubkey(m) => {
                let ck = self.channel_keys(&m.peer_id, m.channel_id)?;
                let point = m.commitment_point.map(PerCommitmentPoint);
                let script = ck.to_remote_script(secp, point.as_ref()).map_err(invalid)?;
                encode(&GetOutputScriptpubkeyReply { script })?
            }
            Request::SignAnyCannouncement(m) => self.sign_any_cannouncement(&m)?,
            Request::GetPerCommitmentPoint(m) => {
                let ck = self.channel_keys(&client.id, client.dbid)?;
                let n = CommitmentNumber::new(m.n).map_err(invalid)?;
                let point = ck.per_commitment_point(secp, n).map_err(invalid)?;
                encode(&GetPerCommitmentPointReply {
                    per_commitment_point: point.0,
                    old_commitment_secret: None,
                })?
            }
            Request::CheckFutureSecret(m) => {
                let ck = self.channel_keys(&client.id, client.dbid)?;
                let n = CommitmentNumber::new(m.n).map_err(invalid)?;
                let suggested = PerCommitmentSecret::new(*m.commitment_secret.expose_secret());
                encode(&CheckFutureSecretReply { correct: ck.check_future_secret(n, &suggested) })?
            }
            Request::ClientHsmfd(m) => {
                let reply = encode(&ClientHsmfdReply {})?;
                let client = ClientContext { id: m.id, dbid: m.dbid, permissions: m.permissions };
                return Ok(Outcome::NewClient { reply, client });
            }
            Request::NewChannel(m) => self.channels.new_channel(&m)?,
            Request::ForgetChannel(m) => self.channels.forget_channel(&m)?,
            Request::SetupChannel(m) => self.channels.setup_channel(self, client, &m)?,
            Request::SignRemoteCommitmentTx(m) => {
                let ctx = self.channel_context(&client.id, client.dbid)?;
                self.channels.sign_remote_commitment_tx(&ctx, client, &m)?
            }
            Request::ValidateCommitmentTx(m) => {
                let ctx = self.channel_context(&client.id, client.dbid)?;
                self.channels.validate_commitment_tx(&ctx, client, &m)?
            }
            Request::RevokeCommitmentTx(m) => {
                let ctx = self.channel_context(&client.id, client.dbid)?;
                self.channels.revoke_commitment_tx(&ctx, client, &m)?
            }
            Request::ValidateRevocation(m) => {
                let ctx = self.channel_context(&client.id, client.dbid)?;
                self.channels.validate_revocation(&ctx, client, &m)?
            }
            Request::SignRemoteHtlcTx(m) => {
                let ctx = self.channel_context(&client.id, client.dbid)?;
                self.channels.sign_remote_htlc_tx(&ctx, client, &m)?
            }
            Request::SignCommitmentTx(m) => {
                let ctx = self.channel_context(&m.peer_id, m.channel_dbid)?;
                self.channels.sign_commitment_tx(&ctx, &m)?
            }
            Request::SignMutualCloseTx(m) => {
                let ctx = self.channel_context(&client.id, client.dbid)?;
                self.channels.sign_mutual_close_tx(&ctx, client, &m)?
            }
            // Warden has no chain view yet: like hsmd, it reports the outpoint buried
            // (commitment-funding-spent needs chain evidence). splices: an outpoint of a splice
            // candidate locks it in (channels.rs).
            Request::CheckOutpoint(m) => self.channels.check_outpoint(client, &m)?,
            Request::LockOutpoint(m) => self.channels.lock_outpoint(client, &m)?,
            Request::SignDelayedPaymentToUs(m) => {
                crate::sweeps::sign_delayed_payment_to_us(self, client, &m)?
            }
            Request::SignRemoteHtlcToUs(m) => {
                crate::sweeps::sign_remote_htlc_to_us(self, client, &m)?
            }
            Request::SignPenaltyToUs(m) => crate::sweeps::sign_penalty_to_us(self, client, &m)?,
            Request::SignAnyDelayedPaymentToUs(m) => {
                crate::sweeps::sign_any_delayed_payment_to_us(self, client, &m)?
            }
            Request::SignAnyRemoteHtlcToUs(m) => {
                crate::sweeps::sign_any_remote_htlc_to_us(self, client, &m)?
            }
            Request::SignAnyPenaltyToUs(m) => {
                crate::sweeps::sign_any_penalty_to_us(self, client, &m)?
            }
            Request::SignAnyLocalHtlcTx(m) => {
                crate::sweeps::sign_any_local_htlc_tx(self, client, &m)?
            }
            Request::CannouncementSig(m) => self.cannouncement_sig(client, &m)?,
            Request::CupdateSig(m) => self.cupdate_sig(client, &m)?,
            Request::NodeAnnouncementSig(m) => self.node_announcement_sig(&m)?,
            Request::SignBolt12(m) => self.sign_bolt12(&m)?,
            Request::SignBolt12V2(m) => self.sign_bolt12_2(&m)?,
            Request::SignOptionWillFundOffer(m) => self.sign_option_will_fund_offer(&m)?,
            Request::PreapproveInvoice(m) => self.preapprove_invoice(&m.invstring, false)?,
            Request::PreapproveInvoiceCheck(m) => {
                self.preapprove_invoice(&m.invstring, m.check_only)?
            }
            Request::PreapproveKeysend(m) => {
                self.preapprove_keysend(&m.destination, &m.payment_hash, m.amount_msat.0, false)?
            }
            Request::PreapproveKeysendCheck(m) => self.preapprove_keysend(
                &m.destination,
                &m.payment_hash,
                m.amount_msat.0,
                m.check_only,
            )?,
            Request::DevMemleak(_) => crate::payments::dev_memleak()?,
            Request::SignWithdrawal(m) => crate::onchain::sign_withdrawal(self, &m)?,
            Request::SignAnchorspend(m) => crate::onchain::sign_anchorspend(self, &m)?,
            Request::SignHtlcTxMingle(m) => crate::onchain::sign_htlc_tx_mingle(self, &m)?,
            Request::SignSpliceTx(m) => crate::onchain::sign_splice_tx(self, client, &m)?,
            Request::WardenUnseal(m) => self.warden_unseal(&m)?,
            Request::WardenNodeBackupPubkey(_) => self.node_backup_pubkey()?,
            Request::WardenStatus(_) => self.warden_status()?,
            Request::Init(_) | Request::DevPreinit(_) => {
                return Err(BadRequestError::Unexpected { name: request.name() })
            }
        };
        Ok(Outcome::Reply(reply))
    }

    pub(crate) fn channel_context(
        &self,
        peer: &NodeId,
        dbid: u64,
    ) -> Result<ChannelContext<'_>, BadRequestError> {
        let keys = self.channel_keys(peer, dbid)?;
        let slot = crate::channels::slot(peer, dbid)?;
        let cache = &self.channels.cache;
        let (basepoints, funding) = cache.constants(&self.secp, &slot, &keys);
        Ok(ChannelContext {
            secp: &self.secp,
            policy: &self.policy,
            signer: self,
            keys,
            slot,
            basepoints,
            funding,
            cache,
        })
    }

    pub(crate) fn channel_keys(
        &self,
        peer: &NodeId,
        dbid: u64,
    ) -> Result<warden_core::keys::ChannelKeys, BadRequestError> {
        let peer = CoreNodeId::from_slice(peer.as_bytes())
            .ok_or_else(|| invalid(format_args!("peer id {peer} is not a valid point")))?;
        self.keys.channel_keys(&peer, Dbid(dbid)).map_err(invalid)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    use warden_testkit::rng::NoEntropy;

    /// lightningd's regtest `init` (the testkit's, so every test sends the same one).
    fn init_body() -> Vec<u8> {
        warden_testkit::Hsmd::regtest_init().encode().unwrap()
    }

    fn signer() -> (tempfile::TempDir, Signer) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hsm_secret"), [0x42; 32]).unwrap();
        let (s, _) = Signer::init(&init_body(), dir.path(), &mut NoEntropy).unwrap();
        (dir, s)
    }

    fn master(s: &Signer) -> ClientContext {
        ClientContext { id: s.node_id(), dbid: 0, permissions: permissions::ALL }
    }

    fn reply(s: &Signer, body: &[u8]) -> Vec<u8> {
        match s.handle(&master(s), body).unwrap() {
            Outcome::Reply(r) => r,
            Outcome::NewClient { .. } => panic!("unexpected new client"),
        }
    }

    #[test]
    fn wallet_checks_and_bip137() {
        let (_dir, s) = signer();
        let secp = Secp256k1::new();
        let key = s.keys.wallet().bitcoin_key(&secp, 3).unwrap().public_key(&secp);
        let ok = CheckPubkey { index: 3, pubkey: key }.encode().unwrap();
        assert_eq!(
            CheckPubkeyReply::decode(&reply(&s, &ok)).unwrap(),
            CheckPubkeyReply { ok: true }
        );
        let wrong = CheckPubkey { index: 4, pubkey: key }.encode().unwrap();
        assert!(!CheckPubkeyReply::decode(&reply(&s, &wrong)).unwrap().ok);
        // A legacy secret has no BIP-86 keys: refused, not answered `false`.
        let bip86 = CheckBip86Pubkey { index: 0, pubkey: key }.encode().unwrap();
        assert!(matches!(s.handle(&master(&s), &bip86), Err(BadRequestError::Invalid { .. })));
        let sign = Bip137SignMessage { msg: b"hi".to_vec(), keyidx: 3 }.encode().unwrap();
        let sig = Bip137SignMessageReply::decode(&reply(&s, &sign)).unwrap().sig;
        let digest = secp256k1::Message::from_digest(sign::bip137_digest(b"hi"));
        assert_eq!(secp.recover_ecdsa(&digest, &sig).unwrap(), key);
    }

    #[test]
    fn refusals_are_typed() {
        let (_dir, s) = signer();
        let channel = ClientContext {
            id: NodeId::from(s.keys.node_id().to_public_key()),
            dbid: 1,
            permissions: Permissions::COMMITMENT_POINT,
        };
        let ecdh = Ecdh { point: s.keys.node_id().to_public_key() }.encode().unwrap();
        assert!(matches!(
            s.handle(&channel, &ecdh),
            Err(BadRequestError::PermissionDenied { msg_type: 1, .. })
        ));
        let far = GetPerCommitmentPoint { n: 1 << 48 }.encode().unwrap();
        assert!(matches!(s.handle(&channel, &far), Err(BadRequestError::Invalid { .. })));
        assert!(matches!(s.handle(&channel, &[0]), Err(BadRequestError::Malformed { .. })));
        assert!(matches!(
            s.handle(&master(&s), &init_body()),
            Err(BadRequestError::Unexpected { .. })
        ));
    }

    #[test]
    fn version_range_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hsm_secret"), [0x42; 32]).unwrap();
        let mut init = Init::decode(&init_body()).unwrap();
        init.hsm_wire_max_version = 5;
        let err = Signer::init(&init.encode().unwrap(), dir.path(), &mut NoEntropy).unwrap_err();
        assert!(matches!(err, InitError::BadRequest(BadRequestError::Invalid { .. })));
    }
}
