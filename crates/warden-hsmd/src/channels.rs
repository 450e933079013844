//! Channel state behind a store, and the hsmd requests that read and change it.
//!
//! Every request that changes a channel follows one visible sequence: load the channel's
//! record, let `warden-core` check and apply the transition on a copy, sign, make the new record
//! durable in the [`ChannelStore`], and only then return the reply (DESIGN.md §3, invariant 1).
//! A refusal changes nothing: the copy is dropped.
//!
//! warden-hsmd keeps channels in `crate::durable::SealedRedbChannelStore` (sealed records and a
//! signed head in a redb file, each change one fsync'd batch); [`MemoryChannelStore`] serves
//! unit tests.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;

use bitcoin::hashes::Hash;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::transaction::Version;
use bitcoin::OutPoint;
use warden_core::channel::commitment::{
    check_counterparty_htlc_tx_with_keys, read_commitment, Broadcaster, CommitmentClaim, HolderKeys,
};
use warden_core::channel::{
    ChannelSetup, ChannelSlot, ChannelState, HtlcInfo, HtlcSide, SignedCounterpartyCommitment,
    SignedHolderCommitment,
};
use warden_core::keys::bolt3::derive_private_key_from_basepoint;
use warden_core::keys::{
    Basepoints, ChannelKeys, DelayedPaymentBasepoint, FundingPubkey, HtlcBasepoint,
    NodeId as CoreNodeId, PaymentBasepoint, PerCommitmentPoint, RevocationBasepoint,
};
use warden_core::policy::balance::{check_balance, check_splice_balance};
use warden_core::policy::channel::{check_shutdown_script, setup_refusals};
use warden_core::policy::close::check_mutual_close;
use warden_core::policy::commitment::commitment_refusals;
use warden_core::policy::htlc::check_htlc_feerate;
use warden_core::policy::node::check_new_channel;
use warden_core::policy::payment::CommitmentSide;
use warden_core::policy::{PolicyError, Rule};

use crate::policy::Policy;
use warden_core::secp256k1::{All, PublicKey, Secp256k1};
use warden_core::sign;
use warden_core::tx::funding::funding_witness_script;
use warden_core::tx::CommitmentKeys;
use warden_core::units::{CommitmentNumber, Dbid, FeeratePerKw, Msat, Sat};
use warden_wire::msg::*;
use warden_wire::{HsmHtlc, Message, NodeId, Secret, Side};

use crate::signer::{BadRequestError, ClientContext, Signer};
use crate::wallet::is_index_script;

/// A store failure: the state could not be made durable, so no reply may leave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelStoreError(pub String);

impl fmt::Display for ChannelStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "channel store: {}", self.0)
    }
}

impl std::error::Error for ChannelStoreError {}

/// Where channel records live. `persist` returns only once the record is durable: the reply
/// that the new state permits is released after it, never before.
pub trait ChannelStore: Send {
    /// The record of a channel, if any.
    fn load(&self, slot: &ChannelSlot) -> Option<ChannelState>;
    /// Makes `state` the durable record of its channel.
    fn persist(&mut self, state: &ChannelState) -> Result<(), ChannelStoreError>;
    /// Retires a channel's record.
    fn forget(&mut self, slot: &ChannelSlot) -> Result<(), ChannelStoreError>;
    /// The channel set up with funding outpoint `outpoint`, if any.
    fn find_by_funding(&self, outpoint: &OutPoint) -> Option<ChannelState>;
    /// The highest database id of a forgotten channel (0 if none).
    fn forgotten_high_water(&self) -> u64;
    /// Raises the high-water mark of forgotten database ids to at least `dbid`, durably.
    fn raise_forgotten_high_water(&mut self, dbid: u64) -> Result<(), ChannelStoreError>;
    /// How many channels are set up (`setup_channel` received), for `node-limits`; `None` when
    /// the store cannot count them (the rule is then not checked).
    fn channels_set_up(&self) -> Option<usize> {
        None
    }
    /// payments: the payment ledger's persisted part (velocity, approvals), if any. A store
    /// that keeps nothing across a restart (memory) need not keep it either.
    fn load_payments(&self) -> Option<Vec<u8>> {
        None
    }
    /// payments: makes `bytes` the durable payment ledger.
    fn persist_payments(&mut self, bytes: &[u8]) -> Result<(), ChannelStoreError> {
        let _ = bytes;
        Ok(())
    }
    /// payments: every channel record, to rebuild the payment ledger's HTLCs at start.
    fn states(&self) -> Vec<ChannelState> {
        Vec::new()
    }
}

/// Channels in memory (this increment's store: lost when the process ends).
#[derive(Debug, Default)]
pub struct MemoryChannelStore {
    channels: BTreeMap<ChannelSlot, ChannelState>,
    forgotten_high_water: u64,
}

impl ChannelStore for MemoryChannelStore {
    fn load(&self, slot: &ChannelSlot) -> Option<ChannelState> {
        self.channels.get(slot).cloned()
    }

    fn persist(&mut self, state: &ChannelState) -> Result<(), ChannelStoreError> {
        self.channels.insert(state.slot, state.clone());
        Ok(())
    }

    fn forget(&mut self, slot: &ChannelSlot) -> Result<(), ChannelStoreError> {
        self.channels.remove(slot);
        Ok(())
    }

    fn find_by_funding(&self, outpoint: &OutPoint) -> Option<ChannelState> {
        self.channels
            .values()
            .find(|c| c.setup.as_ref().is_some_and(|s| s.funding_outpoint == *outpoint))
            .cloned()
    }

    fn forgotten_high_water(&self) -> u64 {
        self.forgotten_high_water
    }

    fn raise_forgotten_high_water(&mut self, dbid: u64) -> Result<(), ChannelStoreError> {
        self.forgotten_high_water = self.forgotten_high_water.max(dbid);
        Ok(())
    }

    fn channels_set_up(&self) -> Option<usize> {
        Some(self.channels.values().filter(|c| c.setup.is_some()).count())
    }
}

impl crate::onchain::FundingLookup for Channels {
    fn channel_funded_at(&self, outpoint: &OutPoint) -> Option<ChannelState> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.find_by_funding(outpoint)
    }
}

/// The channels of one signer, serialized behind a lock.
pub struct Channels {
    store: Mutex<Box<dyn ChannelStore>>,
    /// Derived public data of the channels, remembered between requests.
    pub(crate) cache: ChannelCache,
}

impl fmt::Debug for Channels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channels").finish_non_exhaustive()
    }
}

pub(crate) fn refused(e: PolicyError) -> BadRequestError {
    BadRequestError::Refused(e)
}

/// Applies the operator's filter to independent checks' refusals: each demoted one is logged
/// as a warning, the first other one refuses the request.
pub(crate) fn enforce_all(
    policy: &Policy,
    refusals: Vec<PolicyError>,
) -> Result<(), BadRequestError> {
    refusals.into_iter().try_for_each(|e| enforce(policy, Err(e)))
}

/// Applies the operator's filter to a check's outcome (a demoted refusal is logged as a
/// warning and passes).
pub(crate) fn enforce(
    policy: &Policy,
    outcome: Result<(), PolicyError>,
) -> Result<(), BadRequestError> {
    policy.enforce(outcome).map_err(refused)
}

fn store_failed(e: ChannelStoreError) -> BadRequestError {
    BadRequestError::Invalid { reason: e.to_string() }
}

pub(crate) fn encode<M: Message>(m: &M) -> Result<Vec<u8>, BadRequestError> {
    m.encode().map_err(|e| BadRequestError::Invalid { reason: format!("cannot encode reply: {e}") })
}

pub(crate) fn number(n: u64) -> Result<CommitmentNumber, BadRequestError> {
    CommitmentNumber::new(n)
        .map_err(|e| refused(PolicyError::new(Rule::CommitmentNumber, e.to_string())))
}

/// The channel a request names, as warden-core's slot.
pub fn slot(peer: &NodeId, dbid: u64) -> Result<ChannelSlot, BadRequestError> {
    let peer = CoreNodeId::from_slice(peer.as_bytes()).ok_or_else(|| BadRequestError::Invalid {
        reason: format!("peer id {peer} is not a valid point"),
    })?;
    Ok(ChannelSlot { peer, dbid: Dbid(dbid) })
}

fn htlcs(list: &[HsmHtlc]) -> Vec<HtlcInfo> {
    list.iter()
        .map(|h| HtlcInfo {
            offered_by: match h.side {
                Side::Local => HtlcSide::Holder,
                Side::Remote => HtlcSide::Counterparty,
            },
            amount: Msat(h.amount.0),
            payment_hash: h.payment_hash.to_byte_array(),
            cltv_expiry: h.cltv_expiry,
        })
        .collect()
}

fn setup_from_wire(m: &SetupChannel) -> ChannelSetup {
    let script = |s: &bitcoin::ScriptBuf| (!s.is_empty()).then(|| s.clone());
    ChannelSetup {
        is_outbound: m.is_outbound,
        channel_value: Sat(m.channel_value.to_sat()),
        push_value: Msat(m.push_value.0),
        funding_outpoint: OutPoint { txid: m.funding_txid, vout: u32::from(m.funding_txout) },
        holder_selected_delay: m.local_to_self_delay,
        holder_shutdown_script: script(&m.local_shutdown_script),
        holder_shutdown_wallet_index: m.local_shutdown_wallet_index,
        counterparty_basepoints: Basepoints {
            revocation: RevocationBasepoint(m.remote_basepoints.revocation),
            payment: PaymentBasepoint(m.remote_basepoints.payment),
            htlc: HtlcBasepoint(m.remote_basepoints.htlc),
            delayed_payment: DelayedPaymentBasepoint(m.remote_basepoints.delayed_payment),
        },
        counterparty_funding_pubkey: FundingPubkey(m.remote_funding_pubkey),
        counterparty_selected_delay: m.remote_to_self_delay,
        counterparty_shutdown_script: script(&m.remote_shutdown_script),
        channel_type_features: m.channel_type.0.clone(),
    }
}

/// How many channels [`ChannelCache`] remembers (an arbitrary one is dropped beyond).
const CACHED_CHANNELS: usize = 10_000;
/// How many recent per-commitment points (ours) and peer commitment keys it keeps per channel.
const CACHED_RECENT: usize = 4;

/// Public data a channel derives from the seed, remembered so that a commitment round does not
/// redo its point multiplications: the channel's basepoints and funding key, our recent
/// per-commitment points, and the keys of the peer's recent commitments.
///
/// Only an optimisation, never a source of truth for a decision: every entry is a pure function
/// of the seed and what it is keyed by (the slot; the commitment number; the peer's basepoints
/// and point), so a hit returns exactly what deriving again would, and a miss derives. No secret
/// is kept here.
#[derive(Debug, Default)]
pub struct ChannelCache {
    channels: Mutex<HashMap<ChannelSlot, CachedChannel>>,
}

#[derive(Clone, Debug)]
struct CachedChannel {
    basepoints: Basepoints,
    funding: FundingPubkey,
    /// Our per-commitment points, most recent last.
    points: VecDeque<(CommitmentNumber, PerCommitmentPoint)>,
    /// The keys of the peer's commitments we read, with the peer basepoints they were derived
    /// from (the point is in the keys), most recent last.
    remote_keys: VecDeque<(Basepoints, CommitmentKeys)>,
}

fn push_recent<T>(list: &mut VecDeque<T>, item: T) {
    if list.len() >= CACHED_RECENT {
        list.pop_front();
    }
    list.push_back(item);
}

impl ChannelCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelSlot, CachedChannel>> {
        // The map holds only derived public data; a panic elsewhere leaves it consistent.
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The channel's basepoints and funding key (derived from `keys` on a miss).
    pub(crate) fn constants(
        &self,
        secp: &Secp256k1<All>,
        slot: &ChannelSlot,
        keys: &ChannelKeys,
    ) -> (Basepoints, FundingPubkey) {
        if let Some(c) = self.lock().get(slot) {
            return (c.basepoints, c.funding);
        }
        let basepoints = keys.basepoints(secp);
        let funding = keys.funding_pubkey(secp);
        let mut map = self.lock();
        if map.len() >= CACHED_CHANNELS && !map.contains_key(slot) {
            if let Some(victim) = map.keys().next().copied() {
                map.remove(&victim);
            }
        }
        map.entry(*slot).or_insert_with(|| CachedChannel {
            basepoints,
            funding,
            points: VecDeque::new(),
            remote_keys: VecDeque::new(),
        });
        (basepoints, funding)
    }

    /// Our per-commitment point of commitment `n` (derived from `keys` on a miss).
    fn point(
        &self,
        secp: &Secp256k1<All>,
        slot: &ChannelSlot,
        keys: &ChannelKeys,
        n: CommitmentNumber,
    ) -> Result<PerCommitmentPoint, BadRequestError> {
        let hit = self
            .lock()
            .get(slot)
            .and_then(|c| c.points.iter().find(|(m, _)| *m == n).map(|(_, p)| *p));
        if let Some(p) = hit {
            return Ok(p);
        }
        let point = keys.per_commitment_point(secp, n).map_err(invalid)?;
        if let Some(c) = self.lock().get_mut(slot) {
            if !c.points.iter().any(|(m, _)| *m == n) {
                push_recent(&mut c.points, (n, point));
            }
        }
        Ok(point)
    }

    /// The keys of the peer's commitment with `point`, if they were derived from the peer's
    /// `basepoints` when that commitment was read.
    fn remote_keys(
        &self,
        slot: &ChannelSlot,
        point: &PerCommitmentPoint,
        basepoints: &Basepoints,
    ) -> Option<CommitmentKeys> {
        self.lock().get(slot).and_then(|c| {
            c.remote_keys
                .iter()
                .find(|(b, k)| k.per_commitment_point == *point && b == basepoints)
                .map(|(_, k)| *k)
        })
    }

    /// Remembers the keys of a peer commitment, derived from the peer's `basepoints`.
    fn remember_remote_keys(
        &self,
        slot: &ChannelSlot,
        basepoints: &Basepoints,
        keys: &CommitmentKeys,
    ) {
        if let Some(c) = self.lock().get_mut(slot) {
            let known = c.remote_keys.iter().any(|(b, k)| {
                k.per_commitment_point == keys.per_commitment_point && b == basepoints
            });
            if !known {
                push_recent(&mut c.remote_keys, (*basepoints, *keys));
            }
        }
    }

    /// Drops what is remembered of a channel.
    fn forget(&self, slot: &ChannelSlot) {
        self.lock().remove(slot);
    }
}

/// What a channel request needs from the signer: its secp context and the channel's keys.
#[derive(Debug)]
pub struct ChannelContext<'a> {
    /// The secp256k1 context.
    pub secp: &'a Secp256k1<All>,
    /// The policy in force.
    pub policy: &'a Policy,
    /// The signer (its wallet keys recognise our outputs, derived only when needed).
    pub signer: &'a Signer,
    /// The keys of the channel the request names.
    pub keys: ChannelKeys,
    /// The channel the request names.
    pub slot: ChannelSlot,
    /// Our basepoints of that channel (the public keys of `keys`' basepoint secrets).
    pub basepoints: Basepoints,
    /// Our funding key of that channel (the public key of `keys`' funding key).
    pub funding: FundingPubkey,
    /// Where derived public data of the channel is remembered.
    pub cache: &'a ChannelCache,
}

impl ChannelContext<'_> {
    /// Our per-commitment point of commitment `n`.
    fn per_commitment_point(
        &self,
        n: CommitmentNumber,
    ) -> Result<PerCommitmentPoint, BadRequestError> {
        self.cache.point(self.secp, &self.slot, &self.keys, n)
    }
}

impl Channels {
    /// Channels kept in `store`.
    pub fn new(store: Box<dyn ChannelStore>) -> Channels {
        Channels { store: Mutex::new(store), cache: ChannelCache::default() }
    }

    /// Loads the channel, applies `f` to a copy, persists the copy, then returns `f`'s reply.
    /// A refusal by `f` or a store failure leaves the record as it was.
    pub(crate) fn update<R>(
        &self,
        slot: ChannelSlot,
        create: bool,
        f: impl FnOnce(&mut ChannelState) -> Result<R, BadRequestError>,
    ) -> Result<R, BadRequestError> {
        self.update_with_store(slot, create, |state, _| f(state))
    }

    /// [`Channels::update`], with `f` also reading the rest of the store (under the same lock).
    fn update_with_store<R>(
        &self,
        slot: ChannelSlot,
        create: bool,
        f: impl FnOnce(&mut ChannelState, &dyn ChannelStore) -> Result<R, BadRequestError>,
    ) -> Result<R, BadRequestError> {
        // A poisoned lock only means another thread panicked between load and persist of its
        // own copy; the store itself is consistent, so go on.
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = match store.load(&slot) {
            Some(s) => s,
            None if create => {
                // Core Lightning's database ids only grow: a new channel at or below the id of
                // a forgotten one would re-derive a forgotten channel's keys.
                let high_water = store.forgotten_high_water();
                if slot.dbid.0 <= high_water {
                    return Err(refused(PolicyError::new(
                        Rule::ChannelDbidReuse,
                        format!(
                            "{} is at or below {high_water}, the highest id of a forgotten channel",
                            slot.dbid
                        ),
                    )));
                }
                ChannelState::new(slot)
            }
            None => {
                return Err(refused(PolicyError::new(
                    Rule::ChannelUnknown,
                    format!("no channel with {} and peer {}", slot.dbid, slot.peer),
                )))
            }
        };
        let reply = f(&mut state, &**store)?;
        store.persist(&state).map_err(store_failed)?;
        Ok(reply)
    }

    /// payments: runs `f` on the store (the payment ledger's persistence and restore).
    pub(crate) fn with_store<R>(&self, f: impl FnOnce(&mut dyn ChannelStore) -> R) -> R {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        f(store.as_mut())
    }

    /// Records, durably, that the channel's funding output is spent (a commitment of it is on
    /// chain): `commitment-funding-spent` refuses any new state from then on.
    pub(crate) fn mark_funding_spent(&self, slot: ChannelSlot) -> Result<(), BadRequestError> {
        if self.snapshot(&slot)?.funding_spent {
            return Ok(());
        }
        self.update(slot, false, |state| {
            state.funding_spent = true;
            Ok(())
        })
    }

    /// A copy of a channel's record, for requests that read it without changing it.
    pub(crate) fn snapshot(&self, slot: &ChannelSlot) -> Result<ChannelState, BadRequestError> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.load(slot).ok_or_else(|| {
            refused(PolicyError::new(
                Rule::ChannelUnknown,
                format!("no channel with {} and peer {}", slot.dbid, slot.peer),
            ))
        })
    }

    /// `new_channel`: announces a channel (idempotent).
    pub fn new_channel(&self, m: &NewChannel) -> Result<Vec<u8>, BadRequestError> {
        self.update(slot(&m.id, m.dbid)?, true, |_| encode(&NewChannelReply {}))
    }

    /// `forget_channel`: retires a channel's record.
    pub fn forget_channel(&self, m: &ForgetChannel) -> Result<Vec<u8>, BadRequestError> {
        let slot = slot(&m.id, m.dbid)?;
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.raise_forgotten_high_water(slot.dbid.0).map_err(store_failed)?;
        store.forget(&slot).map_err(store_failed)?;
        self.cache.forget(&slot);
        encode(&ForgetChannelReply {})
    }

    /// `setup_channel` on the channel's client: the channel's parameters
    /// (`channel-delay-range`, `channel-size-max`, `channel-safe-type`), our upfront shutdown
    /// script (`channel-shutdown-script`: the wallet key at `local_shutdown_wallet_index` is
    /// derived and its scripts compared, or the script is allowlisted), and for a channel set
    /// up for the first time the node's channel count (`node-limits`). A repeated setup (a
    /// splice) is not a new channel. The push is checked when the funding is signed
    /// (`onchain-push`, see `onchain.rs`).
    pub fn setup_channel(
        &self,
        signer: &Signer,
        client: &ClientContext,
        m: &SetupChannel,
    ) -> Result<Vec<u8>, BadRequestError> {
        let policy = &signer.policy;
        let setup = setup_from_wire(m);
        enforce_all(policy, setup_refusals(&policy.limits, &setup))?;
        if setup.channel_type().is_ok_and(|t| t.has_shared_anchor()) {
            // Core Lightning does not negotiate zero-fee commitments (LDK does, through
            // warden-ldk): a Core Lightning channel of that type is not one hsmd's messages
            // can carry through its life.
            enforce(
                policy,
                Err(PolicyError::new(
                    Rule::ChannelSafeType,
                    "option_zero_fee_commitments is not a Core Lightning channel type",
                )),
            )?;
        }
        let is_ours = |script: &bitcoin::Script, index: Option<u32>| {
            index.is_some_and(|i| is_index_script(&signer.secp, &signer.keys, i, script))
                || signer.wallet_scripts().contains(&script.to_owned())
        };
        enforce(policy, check_shutdown_script(&setup, &policy.allowlist, is_ours))?;
        self.update_with_store(slot(&client.id, client.dbid)?, true, |state, store| {
            if state.setup.is_none() {
                if let Some(existing) = store.channels_set_up() {
                    enforce(policy, check_new_channel(&policy.limits, existing))?;
                }
            }
            state.apply_setup(setup).map_err(refused)?;
            encode(&SetupChannelReply {})
        })
    }

    /// `sign_remote_commitment_tx`: reads the peer's commitment against the channel state,
    /// records it, and signs it with our funding key.
    pub fn sign_remote_commitment_tx(
        &self,
        ctx: &ChannelContext<'_>,
        client: &ClientContext,
        m: &SignRemoteCommitmentTx,
    ) -> Result<Vec<u8>, BadRequestError> {
        let secp = ctx.secp;
        let n = number(m.commit_num)?;
        let list = htlcs(&m.htlcs);
        let reply = self.update(slot(&client.id, client.dbid)?, false, |state| {
            // splices: the funding the transaction spends (the current one or a candidate's).
            let candidate = splice_of(state, m.tx.tx(), n, state.counterparty.next_number)?;
            let setup = state.setup().map_err(refused)?.clone();
            let setup = candidate_setup(state, candidate).unwrap_or(setup);
            check_remote_funding_key(&setup, &m.remote_funding_key)?;
            let point = PerCommitmentPoint(m.remote_per_commit);
            let read = read_commitment(
                secp,
                &setup,
                HolderKeys { basepoints: &ctx.basepoints, funding: &ctx.funding },
                CommitmentClaim {
                    broadcaster: Broadcaster::Counterparty,
                    number: n,
                    point: &point,
                    feerate: FeeratePerKw(m.feerate),
                    htlcs: &list,
                    tx: m.tx.tx(),
                },
            )
            .map_err(refused)?;
            enforce_all(
                ctx.policy,
                commitment_refusals(&ctx.policy.limits, &setup, &read.content),
            )?;
            let main = state.counterparty.current.as_ref().map(|c| &c.content);
            enforce(ctx.policy, check_balances(state, &setup, candidate, main, n, &read.content))?;
            // What left our side without a visible HTLC since the peer's previous commitment
            // (a new number, on the current funding) counts against the day's budget.
            let trimmed_outflow = match (
                candidate,
                main.filter(|c| c.number.get().checked_add(1) == Some(n.get())),
            ) {
                (None, Some(prev)) => {
                    ctx.signer.check_trimmed_outflow(&setup, prev, &read.content)?
                }
                _ => Msat::ZERO,
            };
            // For the `sign_remote_htlc_tx` requests of this commitment that follow.
            if let Some(keys) = &read.keys {
                ctx.cache.remember_remote_keys(&ctx.slot, &setup.counterparty_basepoints, keys);
            }
            let signed = SignedCounterpartyCommitment { content: read.content, point };
            match candidate {
                None => state.sign_counterparty_commitment(signed).map(|_| ()),
                Some(i) => state.sign_candidate_counterparty_commitment(i, signed).map(|_| ()),
            }
            .map_err(refused)?;
            // payments: account this commitment's HTLCs per payment hash (payment-* rules);
            // a refusal drops this copy of the state.
            ctx.signer.account_htlcs(&ctx.slot, CommitmentSide::Counterparty, &list)?;
            ctx.signer.charge_trimmed_outflow(trimmed_outflow);
            let sig = sign_funding_input(ctx, &setup, m.tx.tx())?;
            encode(&SignTxReply { sig })
        })?;
        // payments: the ledger's changes are durable before the reply leaves.
        ctx.signer.persist_payments()?;
        Ok(reply)
    }

    /// `validate_commitment_tx`: reads our commitment, checks the peer's signatures, records
    /// it, and returns the next per-commitment point.
    pub fn validate_commitment_tx(
        &self,
        ctx: &ChannelContext<'_>,
        client: &ClientContext,
        m: &ValidateCommitmentTx,
    ) -> Result<Vec<u8>, BadRequestError> {
        let secp = ctx.secp;
        let n = number(m.commit_num)?;
        let next = number(m.commit_num.saturating_add(1))?;
        let list = htlcs(&m.htlcs);
        let reply = self.update(slot(&client.id, client.dbid)?, false, |state| {
            // splices: the funding the transaction spends (the current one or a candidate's).
            let candidate = splice_of(state, m.tx.tx(), n, state.holder.next_number)?;
            let setup = state.setup().map_err(refused)?.clone();
            let setup = candidate_setup(state, candidate).unwrap_or(setup);
            let point = ctx.per_commitment_point(n)?;
            let tx = m.tx.tx();
            let read = read_commitment(
                secp,
                &setup,
                HolderKeys { basepoints: &ctx.basepoints, funding: &ctx.funding },
                CommitmentClaim {
                    broadcaster: Broadcaster::Holder,
                    number: n,
                    point: &point,
                    feerate: FeeratePerKw(m.feerate),
                    htlcs: &list,
                    tx,
                },
            )
            .map_err(refused)?;
            read.verify_counterparty_signatures(
                secp,
                tx,
                &setup,
                &ctx.funding,
                &m.sig,
                &m.htlc_sigs,
            )
            .map_err(refused)?;
            enforce_all(
                ctx.policy,
                commitment_refusals(&ctx.policy.limits, &setup, &read.content),
            )?;
            let main = state.holder.current.as_ref().map(|c| &c.content);
            enforce(ctx.policy, check_balances(state, &setup, candidate, main, n, &read.content))?;
            let validated = SignedHolderCommitment {
                content: read.content,
                counterparty_sig: m.sig.signature.serialize_compact(),
                htlc_sigs: m.htlc_sigs.iter().map(|s| s.signature.serialize_compact()).collect(),
            };
            match candidate {
                None => state.validate_holder_commitment(validated),
                Some(i) => state.validate_candidate_holder_commitment(i, validated),
            }
            .map_err(refused)?;
            // payments: account this commitment's HTLCs per payment hash (payment-* rules);
            // a refusal drops this copy of the state.
            ctx.signer.account_htlcs(&ctx.slot, CommitmentSide::Holder, &list)?;
            let next_point = ctx.per_commitment_point(next)?;
            encode(&ValidateCommitmentTxReply {
                old_commitment_secret: None,
                next_per_commitment_point: next_point.0,
            })
        })?;
        // payments: the ledger's changes are durable before the reply leaves.
        ctx.signer.persist_payments()?;
        Ok(reply)
    }

    /// `revoke_commitment_tx`: releases the secret of our commitment `n` once `n + 1` is
    /// validated and `n` was never signed for broadcast; returns the point of `n + 2`.
    pub fn revoke_commitment_tx(
        &self,
        ctx: &ChannelContext<'_>,
        client: &ClientContext,
        m: &RevokeCommitmentTx,
    ) -> Result<Vec<u8>, BadRequestError> {
        let n = number(m.commit_num)?;
        let after_next = number(m.commit_num.saturating_add(2))?;
        self.update(slot(&client.id, client.dbid)?, false, |state| {
            state.revoke_holder_commitment(n.get()).map_err(refused)?;
            let secret = ctx.keys.per_commitment_secret(n);
            let next_point = ctx.per_commitment_point(after_next)?;
            encode(&RevokeCommitmentTxReply {
                old_commitment_secret: Secret::new(*secret.expose_secret()),
                next_per_commitment_point: next_point.0,
            })
        })
    }

    /// `validate_revocation`: checks and stores the peer's revocation secret.
    pub fn validate_revocation(
        &self,
        ctx: &ChannelContext<'_>,
        client: &ClientContext,
        m: &ValidateRevocation,
    ) -> Result<Vec<u8>, BadRequestError> {
        self.update(slot(&client.id, client.dbid)?, false, |state| {
            state
                .validate_counterparty_revocation(
                    ctx.secp,
                    m.revoke_num,
                    *m.per_commitment_secret.expose_secret(),
                )
                .map_err(refused)?;
            encode(&ValidateRevocationReply {})
        })
    }

    /// `sign_remote_htlc_tx`: signs the peer's HTLC transaction of the commitment we signed
    /// last (or the one before), after checking it is exactly the one that commitment implies.
    pub fn sign_remote_htlc_tx(
        &self,
        ctx: &ChannelContext<'_>,
        client: &ClientContext,
        m: &SignRemoteHtlcTx,
    ) -> Result<Vec<u8>, BadRequestError> {
        let secp = ctx.secp;
        let state = self.snapshot(&slot(&client.id, client.dbid)?)?;
        let setup = state.setup().map_err(refused)?;
        let tx = m.tx.tx();
        let spent = tx.input.first().map(|i| i.previous_output.txid);
        // splices: or the peer's commitment on a splice candidate (same point and HTLCs).
        let commitment = [&state.counterparty.current, &state.counterparty.previous]
            .into_iter()
            .chain(state.splices.iter().map(|c| &c.counterparty))
            .flatten()
            .find(|c| Some(c.content.txid) == spent && c.point.0 == m.remote_per_commit_point)
            .ok_or_else(|| {
                refused(PolicyError::new(
                    Rule::HtlcStructure,
                    "the htlc transaction does not spend a commitment of the peer that we signed",
                ))
            })?;
        let anchors = setup.channel_type().map_err(refused)?.has_anchors();
        if m.option_anchor_outputs != anchors {
            return Err(refused(PolicyError::new(
                Rule::HtlcSighash,
                "option_anchor_outputs disagrees with the channel type",
            )));
        }
        let peer = &setup.counterparty_basepoints;
        let keys = match ctx.cache.remote_keys(&ctx.slot, &commitment.point, peer) {
            Some(keys) => keys,
            None => CommitmentKeys::derive(secp, &commitment.point, peer, &ctx.basepoints)
                .map_err(|e| {
                    refused(PolicyError::new(Rule::HtlcStructure, format!("htlc keys: {e}")))
                })?,
        };
        let built = check_counterparty_htlc_tx_with_keys(setup, &keys, commitment, tx, &m.wscript)
            .map_err(refused)?;
        enforce(
            ctx.policy,
            check_htlc_feerate(
                &ctx.policy.limits,
                built.channel_type,
                commitment.content.feerate,
                built.fee,
            ),
        )?;
        debug_assert_eq!(ctx.keys.htlc_basepoint_secret().public_key(secp), ctx.basepoints.htlc.0);
        let key = derive_private_key_from_basepoint(
            ctx.keys.htlc_basepoint_secret(),
            &ctx.basepoints.htlc.0,
            &commitment.point,
        )
        .map_err(invalid)?;
        let sighash_type = built.countersignatory_sighash_type();
        let digest = built.sighash(sighash_type).map_err(invalid)?;
        let signature = sign::sign_hash_low_r(secp, &key, digest.as_ref());
        encode(&SignTxReply { sig: bitcoin::ecdsa::Signature { signature, sighash_type } })
    }

    /// `sign_commitment_tx`: signs our current commitment for broadcast (a unilateral close);
    /// from then on it is never revoked.
    pub fn sign_commitment_tx(
        &self,
        ctx: &ChannelContext<'_>,
        m: &SignCommitmentTx,
    ) -> Result<Vec<u8>, BadRequestError> {
        let n = number(m.commit_num)?;
        self.update(slot(&m.peer_id, m.channel_dbid)?, false, |state| {
            let setup = state.setup().map_err(refused)?.clone();
            check_remote_funding_key(&setup, &m.remote_funding_key)?;
            state.sign_holder_for_broadcast(n.get()).map_err(refused)?;
            let txid = m.tx.tx().compute_txid();
            let current = state.holder.current.as_ref().map(|c| (c.content.number, c.content.txid));
            if current != Some((n, txid)) {
                return Err(refused(PolicyError::new(
                    Rule::CommitmentStructure,
                    format!(
                        "commitment {n} to broadcast is not the commitment we validated ({txid})"
                    ),
                )));
            }
            let sig = sign_funding_input(ctx, &setup, m.tx.tx())?;
            encode(&SignCommitmentTxReply { sig })
        })
    }

    /// `sign_mutual_close_tx`: signs a mutual close that spends the funding output into at
    /// most two outputs (destination and value rules are the policy's).
    pub fn sign_mutual_close_tx(
        &self,
        ctx: &ChannelContext<'_>,
        client: &ClientContext,
        m: &SignMutualCloseTx,
    ) -> Result<Vec<u8>, BadRequestError> {
        self.update(slot(&client.id, client.dbid)?, false, |state| {
            let setup = state.setup().map_err(refused)?.clone();
            check_remote_funding_key(&setup, &m.remote_funding_key)?;
            let tx = m.tx.tx();
            let structure_ok = tx.version == Version::TWO
                && tx.input.len() == 1
                && tx.input.first().map(|i| i.previous_output) == Some(setup.funding_outpoint)
                && !tx.output.is_empty()
                && tx.output.len() <= 2;
            if !structure_ok {
                return Err(refused(PolicyError::new(
                    Rule::CloseStructure,
                    format!(
                        "mutual close must spend only the funding outpoint into one or two outputs \
                         (version {}, {} inputs, {} outputs)",
                        tx.version.0,
                        tx.input.len(),
                        tx.output.len()
                    ),
                )));
            }
            let is_ours = |script: &bitcoin::ScriptBuf| {
                let wallet = ctx.signer.wallet_scripts();
                crate::wallet::pays_wallet(ctx.secp, &ctx.signer.keys, &wallet, script, None)
            };
            let policy = ctx.policy;
            enforce(
                policy,
                check_mutual_close(&policy.limits, &policy.allowlist, state, tx, is_ours),
            )?;
            state.sign_mutual_close().map_err(refused)?;
            let sig = sign_funding_input(ctx, &setup, tx)?;
            encode(&SignTxReply { sig })
        })
    }
}

/// splices: the splice candidate a commitment transaction spends, if it spends one (`None`:
/// the current funding, or an outpoint `read_commitment` then refuses). A commitment with the
/// side's next number `next` on a candidate is the first update after both `splice_locked`
/// (lightningd's `check_outpoint` / `lock_outpoint` may not have arrived): the candidate is
/// locked in on `state` first (a refusal drops the copy).
fn splice_of(
    state: &mut ChannelState,
    tx: &bitcoin::Transaction,
    n: CommitmentNumber,
    next: u64,
) -> Result<Option<usize>, BadRequestError> {
    let Some(spent) = tx.input.first().map(|i| i.previous_output) else { return Ok(None) };
    let Some(index) = state.splice_index(&spent) else { return Ok(None) };
    if n.get() == next && n.get() > 0 {
        state.lock_funding(&spent).map_err(refused)?;
        return Ok(None);
    }
    Ok(Some(index))
}

/// splices: the channel's setup as it reads on candidate `index`.
fn candidate_setup(state: &ChannelState, index: Option<usize>) -> Option<ChannelSetup> {
    let setup = state.setup.as_ref()?;
    state.splices.get(index?).map(|c| c.setup_on(setup))
}

/// `commitment-balance` (and the fee and dust checks of [`check_balance`]) of a new commitment
/// `new` with number `n`: against the side's previous commitment on the current funding, or —
/// on splice candidate `candidate` — against the current funding's commitment of the same
/// number `main` plus the relative amounts (`check_splice_balance`; without such a commitment
/// the state refuses the number).
fn check_balances(
    state: &ChannelState,
    setup: &ChannelSetup,
    candidate: Option<usize>,
    main: Option<&warden_core::channel::CommitmentContent>,
    n: CommitmentNumber,
    new: &warden_core::channel::CommitmentContent,
) -> Result<(), PolicyError> {
    match candidate.and_then(|i| state.splices.get(i)) {
        None => {
            let prev = main.filter(|c| c.number.get().checked_add(1) == Some(n.get()));
            check_balance(setup, prev, new)
        }
        Some(c) => {
            check_balance(setup, None, new)?;
            match main.filter(|m| m.number == n) {
                Some(main) => check_splice_balance(setup, c, main, new),
                None => Ok(()),
            }
        }
    }
}

/// splices: `check_outpoint` / `lock_outpoint` (channeld's `lock_signer_outpoint`, at the
/// original lock-in and at a splice's): an outpoint of a splice candidate locks it in (it
/// becomes the funding; the other candidates are dropped). Any other outpoint changes
/// nothing. Warden has no chain view: `check_outpoint` answers buried, as hsmd does.
impl Channels {
    /// `check_outpoint` (32 → 132).
    pub fn check_outpoint(
        &self,
        client: &ClientContext,
        m: &CheckOutpoint,
    ) -> Result<Vec<u8>, BadRequestError> {
        let outpoint = OutPoint { txid: m.funding_txid, vout: u32::from(m.funding_txout) };
        self.lock_candidate(client, &outpoint)?;
        encode(&CheckOutpointReply { is_buried: true })
    }

    /// `lock_outpoint` (37 → 137).
    pub fn lock_outpoint(
        &self,
        client: &ClientContext,
        m: &LockOutpoint,
    ) -> Result<Vec<u8>, BadRequestError> {
        let outpoint = OutPoint { txid: m.funding_txid, vout: u32::from(m.funding_txout) };
        self.lock_candidate(client, &outpoint)?;
        encode(&LockOutpointReply {})
    }

    fn lock_candidate(
        &self,
        client: &ClientContext,
        outpoint: &OutPoint,
    ) -> Result<(), BadRequestError> {
        let slot = slot(&client.id, client.dbid)?;
        let is_candidate = {
            let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
            store.load(&slot).is_some_and(|s| s.splice_index(outpoint).is_some())
        };
        if !is_candidate {
            return Ok(());
        }
        self.update(slot, false, |state| state.lock_funding(outpoint).map(|_| ()).map_err(refused))
    }
}

pub(crate) fn invalid(e: impl fmt::Display) -> BadRequestError {
    BadRequestError::Invalid { reason: e.to_string() }
}

pub(crate) fn check_remote_funding_key(
    setup: &ChannelSetup,
    key: &PublicKey,
) -> Result<(), BadRequestError> {
    if setup.counterparty_funding_pubkey.0 != *key {
        return Err(refused(PolicyError::new(
            Rule::CommitmentStructure,
            "the remote funding key differs from the channel's",
        )));
    }
    Ok(())
}

/// Signs input 0 (the funding outpoint) with our funding key over the channel's funding
/// script and value — the value Warden holds, not what the node's PSBT claims.
pub(crate) fn sign_funding_input(
    ctx: &ChannelContext<'_>,
    setup: &ChannelSetup,
    tx: &bitcoin::Transaction,
) -> Result<bitcoin::ecdsa::Signature, BadRequestError> {
    let script = funding_witness_script(&ctx.funding, &setup.counterparty_funding_pubkey);
    sign::sign_p2wsh_input(
        ctx.secp,
        ctx.keys.funding_key(),
        tx,
        0,
        &script,
        setup.channel_value,
        EcdsaSighashType::All,
    )
    .map_err(invalid)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    fn peer() -> NodeId {
        let secp = Secp256k1::new();
        let sk = secp256k1::SecretKey::from_slice(&[3; 32]).unwrap();
        NodeId::from(PublicKey::from_secret_key(&secp, &sk))
    }

    fn rule(r: Result<Vec<u8>, BadRequestError>) -> Rule {
        match r {
            Err(BadRequestError::Refused(e)) => e.rule,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_cache_answers_what_deriving_answers() {
        let secp = Secp256k1::new();
        let keys =
            ChannelKeys::from_channel_seed(&warden_core::secret::Secret32::new([8; 32])).unwrap();
        let cache = ChannelCache::default();
        let slot = slot(&peer(), 7).unwrap();
        let n = CommitmentNumber::new(5).unwrap();
        for _ in 0..2 {
            let (basepoints, funding) = cache.constants(&secp, &slot, &keys);
            assert_eq!(basepoints, keys.basepoints(&secp));
            assert_eq!(funding, keys.funding_pubkey(&secp));
            let point = cache.point(&secp, &slot, &keys, n).unwrap();
            assert_eq!(point, keys.per_commitment_point(&secp, n).unwrap());
        }
        // Peer keys are found only for the point and the peer basepoints they were derived with.
        let (ours, _) = cache.constants(&secp, &slot, &keys);
        let theirs = ChannelKeys::from_channel_seed(&warden_core::secret::Secret32::new([9; 32]))
            .unwrap()
            .basepoints(&secp);
        let point = keys.per_commitment_point(&secp, n).unwrap();
        let derived = CommitmentKeys::derive(&secp, &point, &theirs, &ours).unwrap();
        assert_eq!(cache.remote_keys(&slot, &point, &theirs), None);
        cache.remember_remote_keys(&slot, &theirs, &derived);
        assert_eq!(cache.remote_keys(&slot, &point, &theirs), Some(derived));
        assert_eq!(cache.remote_keys(&slot, &point, &ours), None);
        let other = keys.per_commitment_point(&secp, CommitmentNumber::new(6).unwrap()).unwrap();
        assert_eq!(cache.remote_keys(&slot, &other, &theirs), None);
        // A forgotten channel is forgotten.
        cache.forget(&slot);
        assert_eq!(cache.remote_keys(&slot, &point, &theirs), None);
        assert!(cache.lock().is_empty());
    }

    #[test]
    fn a_forgotten_dbid_is_never_set_up_again() {
        let c = Channels::new(Box::new(MemoryChannelStore::default()));
        let new = |dbid| c.new_channel(&NewChannel { id: peer(), dbid });
        new(3).unwrap();
        new(5).unwrap();
        c.forget_channel(&ForgetChannel { id: peer(), dbid: 5 }).unwrap();
        assert_eq!(rule(new(5)), Rule::ChannelDbidReuse);
        assert_eq!(rule(new(4)), Rule::ChannelDbidReuse);
        // A channel that still exists below the mark is not new: it may be announced again.
        new(3).unwrap();
        new(6).unwrap();
    }
}

#[cfg(test)]
mod policy_tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use crate::policy::Policy;
    use crate::signer::{Outcome, StoreChoice};
    use warden_testkit::flows::{OUR_SECRET, PEER_SECRET};
    use warden_testkit::{Channel, ChannelParams, Funder};

    use warden_testkit::rng::NoEntropy;

    #[test]
    fn node_limits_caps_new_channels_not_splices() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hsm_secret"), OUR_SECRET).unwrap();
        let body = warden_testkit::Hsmd::regtest_init().encode().unwrap();
        let (mut s, _) =
            Signer::init_with(&body, dir.path(), &mut NoEntropy, StoreChoice::Memory).unwrap();
        let mut config = warden_core::policy::PolicyConfig::test_network();
        config.limits.max_channels = 1;
        s.policy = Policy::new(config);
        let channel = |dbid| {
            let mut p =
                ChannelParams::new(warden_core::tx::ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
            p.dbid = dbid;
            Channel::new(p, OUR_SECRET, PEER_SECRET).unwrap()
        };
        let setup = |ch: &Channel| {
            let client = ClientContext {
                id: ch.peer_id(),
                dbid: ch.params().dbid,
                permissions: crate::permissions::ALL,
            };
            s.handle(&client, &ch.setup_channel().encode().unwrap())
        };
        let (one, two) = (channel(1), channel(2));
        assert!(matches!(setup(&one), Ok(Outcome::Reply(_))));
        // The same channel again (a splice's setup) is not a new channel.
        assert!(matches!(setup(&one), Ok(Outcome::Reply(_))));
        match setup(&two) {
            Err(BadRequestError::Refused(e)) => assert_eq!(e.rule, Rule::NodeLimits),
            other => panic!("expected node-limits, got {other:?}"),
        }
        // Nothing of the refused channel was kept; once a channel is forgotten there is room.
        assert!(s.channels.snapshot(&slot(&two.peer_id(), 2).unwrap()).is_err());
        s.channels.forget_channel(&ForgetChannel { id: one.peer_id(), dbid: 1 }).unwrap();
        assert!(matches!(setup(&two), Ok(Outcome::Reply(_))));
    }

    /// Replaces the outputs paying `from` in a request's transaction (and its PSBT).
    fn redirect(
        tx: &warden_wire::BitcoinTx,
        from: &bitcoin::Script,
        to: &bitcoin::ScriptBuf,
    ) -> warden_wire::BitcoinTx {
        let mut t = tx.tx().clone();
        let mut p = tx.psbt().psbt().clone();
        for out in t.output.iter_mut().chain(p.unsigned_tx.output.iter_mut()) {
            if out.script_pubkey.as_script() == from {
                out.script_pubkey = to.clone();
            }
        }
        warden_wire::BitcoinTx::new(t, p)
    }

    #[test]
    fn allowlisted_scripts_are_close_and_sweep_destinations() {
        use warden_core::policy::onchain::Allowlist;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hsm_secret"), OUR_SECRET).unwrap();
        let body = warden_testkit::Hsmd::regtest_init().encode().unwrap();
        let (mut s, _) =
            Signer::init_with(&body, dir.path(), &mut NoEntropy, StoreChoice::Memory).unwrap();
        let sk = secp256k1::SecretKey::from_slice(&[0x77; 32]).unwrap();
        let cold = bitcoin::ScriptBuf::new_p2wpkh(
            &bitcoin::CompressedPublicKey(sk.public_key(&s.secp)).wpubkey_hash(),
        );
        let ch = Channel::new(
            ChannelParams::new(warden_core::tx::ChannelType::StaticRemoteKey, Funder::Us),
            OUR_SECRET,
            PEER_SECRET,
        )
        .unwrap();
        let client = ClientContext {
            id: ch.peer_id(),
            dbid: ch.params().dbid,
            permissions: crate::permissions::ALL,
        };
        let master =
            ClientContext { id: s.node_id(), dbid: 0, permissions: crate::permissions::ALL };
        let call = |s: &Signer, c: &ClientContext, body: Vec<u8>| s.handle(c, &body);
        let refused = |r: Result<Outcome, BadRequestError>| match r {
            Err(BadRequestError::Refused(e)) => e.rule,
            other => panic!("expected a refusal, got {other:?}"),
        };
        call(&s, &client, ch.setup_channel().encode().unwrap()).unwrap();
        let (sign, _) = ch.sign_remote_commitment(0, &ch.remote).unwrap();
        call(&s, &client, sign.request.encode().unwrap()).unwrap();
        let (validate, _) = ch.validate_commitment(0, &ch.local).unwrap();
        call(&s, &client, validate.encode().unwrap()).unwrap();

        // The mutual close pays our share to the cold wallet: refused, then allowlisted.
        let fee = ch.local.feerate.fee_for_weight(724);
        let mut close = ch.sign_mutual_close(fee).unwrap().request;
        close.tx = redirect(&close.tx, &ch.wallet_script(2).unwrap(), &cold);
        assert_eq!(refused(call(&s, &client, close.encode().unwrap())), Rule::CloseDestination);
        let mut config = warden_core::policy::PolicyConfig::test_network();
        config.allowlist = Allowlist::from_scripts([cold.clone()]);
        s.policy = Policy::new(config);
        call(&s, &client, close.encode().unwrap()).unwrap();

        // A sweep of our delayed output to the cold wallet (after a unilateral close; a new
        // signer, as the mutual close above ends the channel's updates).
        let (sign, built) = ch.sign_commitment().unwrap();
        let dir2 = tempfile::tempdir().unwrap();
        std::fs::write(dir2.path().join("hsm_secret"), OUR_SECRET).unwrap();
        let (mut s2, _) =
            Signer::init_with(&body, dir2.path(), &mut NoEntropy, StoreChoice::Memory).unwrap();
        let master2 = ClientContext { id: s2.node_id(), ..master };
        call(&s2, &client, ch.setup_channel().encode().unwrap()).unwrap();
        let (sign0, _) = ch.sign_remote_commitment(0, &ch.remote).unwrap();
        call(&s2, &client, sign0.request.encode().unwrap()).unwrap();
        call(&s2, &client, validate.encode().unwrap()).unwrap();
        call(&s2, &master2, sign.request.encode().unwrap()).unwrap();
        let (vout, out) =
            built.output(warden_core::tx::CommitmentOutputKind::ToBroadcaster).unwrap();
        let mut sweep =
            ch.sign_delayed_to_us(&built, built.outpoint(vout), out.value).unwrap().request;
        sweep.tx = redirect(&sweep.tx, &ch.wallet_script(3).unwrap(), &cold);
        assert_eq!(refused(call(&s2, &master2, sweep.encode().unwrap())), Rule::SweepDestination);
        let mut config = warden_core::policy::PolicyConfig::test_network();
        config.allowlist = Allowlist::from_scripts([cold]);
        s2.policy = Policy::new(config);
        call(&s2, &master2, sweep.encode().unwrap()).unwrap();
    }
}
