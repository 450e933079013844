//! Payment rules: per payment hash, what we send must be covered by what we receive for that
//! hash, by an approved invoice (or keysend), or by the velocity budget.
//!
//! The [`PaymentLedger`] accounts, per payment hash:
//! - **incoming**: the HTLCs peers offered us, over all channels. A channel counts an incoming
//!   HTLC only once it is in both current commitments (the smaller of the two sides), which is
//!   when Core Lightning forwards it;
//! - **approved**: the amount of a pre-approved invoice or keysend (`preapprove_invoice` /
//!   `preapprove_keysend`), plus the routing fee cap on it;
//! - **outgoing**: the HTLCs we offered, over all channels. A channel counts the larger of its
//!   two current commitments (either may be broadcast), and each channel's contribution is
//!   replaced as each new commitment is signed or validated.
//!
//! What we send for a hash is its *spent* amount: the peak of the outgoing total while HTLCs with
//! the hash are in flight, added up over the episodes in which they are (a payment retried after
//! all its HTLCs were removed counts again: Warden cannot tell a failed HTLC from a fulfilled
//! one, and a hash whose preimage is known could be paid twice). Spent beyond incoming +
//! approved + fee cap is charged to the velocity budget — that is the auto-approval: lightningd's
//! `sendpay` with a raw route never asks for a pre-approval and must keep working within the
//! budget. Beyond the budget the commitment is refused: `payment-unbalanced` for a hash that is
//! known (an incoming HTLC or an approval), `payment-fee-cap` for a hash covered only by its
//! approval (what exceeds the approved amount is fee), `payment-velocity` for an unknown hash.
//! This holds whether or not the hash is known (VLS only warns on an unknown hash).
//!
//! A routed HTLC (an outgoing HTLC whose hash has an incoming HTLC) must expire at least
//! [`PaymentLimits::min_cltv_delta`] blocks before the incoming value that pays for it
//! (`payment-cltv-delta`): for every outgoing expiry t, the value offered at t or later is
//! covered by incoming value of the hash expiring at t + delta or later, so a hash shared by
//! several payments is covered value by value, and a small late incoming HTLC covers no large
//! forward.
//!
//! Every decision is two steps: `plan_*` computes the change and the verdict without touching
//! the ledger; `apply_*` applies a plan. A refusal therefore changes nothing, and an operator's
//! demotion applies the plan anyway. Charges are idempotent: the same outgoing set signed twice
//! (a retry, or a replay after a restart) does not raise the peak and is charged once.
//!
//! Time is passed in as unix seconds; the ledger never reads a clock.
//!
//! What is persisted ([`PaymentLedger::encode`]): the velocity buckets and the approvals (with
//! their spent and charged amounts). Incoming and outgoing HTLCs are rebuilt from the channel
//! records at start ([`PaymentLedger::restore_channel`]).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::{ensure, PolicyError, Rule};
use crate::channel::{ChannelSlot, HtlcInfo, HtlcSide};
use crate::keys::NodeId;
use crate::tlv::{TlvError, TlvReader, TlvWriter};
use crate::units::Msat;

/// A payment hash.
pub type PaymentHash = [u8; 32];

/// One hour, in seconds.
pub const HOUR: u64 = 3_600;
/// One day, in seconds.
pub const DAY: u64 = 86_400;
/// The width of one velocity bucket, in seconds (5 minutes: 288 buckets cover a day).
pub const BUCKET_SECS: u64 = 300;
/// The format byte of [`PaymentLedger::encode`].
pub const LEDGER_FORMAT: u8 = 0x01;

/// The payment limits (`[payment]` of the policy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentLimits {
    /// Payees (node ids) whose invoices and keysends are approved without a velocity charge.
    /// Empty by default.
    pub allowlist: Vec<NodeId>,
    /// The most value auto-approved (charged to velocity) in any hour; `None` is unlimited.
    pub velocity_per_hour: Option<Msat>,
    /// The most value auto-approved in any day; `None` is unlimited.
    pub velocity_per_day: Option<Msat>,
    /// The routing fee always allowed on top of an approved amount (10 sat).
    pub fee_cap_base: Msat,
    /// The routing fee allowed on top of an approved amount, in millionths of it (1 %).
    /// The cap is the larger of the two.
    pub fee_cap_ppm: u32,
    /// The least gap, in blocks, between the expiry of an incoming HTLC and of the outgoing
    /// HTLC that forwards it.
    pub min_cltv_delta: u32,
    /// How far, in seconds, the signer's clock may disagree with the invoice's creator: an
    /// invoice is refused once it expired longer ago than this, or when it was created further
    /// in the future than this.
    pub invoice_clock_skew_secs: u64,
    /// How long a keysend pre-approval stays valid, in seconds.
    pub keysend_approval_secs: u64,
    /// The most payment hashes tracked at once (`node-limits` beyond).
    pub max_tracked_payments: usize,
    /// The most value that may leave our side, in a day, without a visible HTLC: what goes
    /// into trimmed HTLCs we offer (dust payments and forwards), which Core Lightning's
    /// requests do not list. Bounds what a compromised node could move to the peer under
    /// cover of the trimmed-HTLC pool, update after update (`commitment-balance`); `None` is
    /// unlimited.
    pub trimmed_outflow_per_day: Option<Msat>,
}

impl PaymentLimits {
    /// Mainnet defaults:
    /// - no allowlisted payee;
    /// - velocity 1,000,000 sat per day and 250,000 sat per hour: a node pays everyday
    ///   invoices (and `sendpay` without pre-approval) out of the box, while a compromised node
    ///   can move at most that much without the operator's approval or allowlist;
    /// - fee cap max(10 sat, 1 %) (POLICY.md; Core Lightning's `pay` defaults to 0.5 % with a
    ///   5 sat exemption, below it);
    /// - CLTV delta 34 blocks (POLICY.md; Core Lightning's default `cltv-delta`);
    /// - clock skew 300 s; keysend approvals valid one hour; 10,000 tracked payment hashes.
    pub fn mainnet() -> PaymentLimits {
        PaymentLimits {
            allowlist: Vec::new(),
            velocity_per_hour: Some(Msat(250_000_000)),
            velocity_per_day: Some(Msat(1_000_000_000)),
            fee_cap_base: Msat(10_000),
            fee_cap_ppm: 10_000,
            min_cltv_delta: 34,
            invoice_clock_skew_secs: 300,
            keysend_approval_secs: HOUR,
            max_tracked_payments: 10_000,
            trimmed_outflow_per_day: Some(Msat(5_000_000_000)),
        }
    }

    /// Test-network defaults (testnet, signet, regtest): velocity 100 BTC per hour and per day
    /// (test coins: generous, so that test traffic never waits for approval), and a CLTV delta
    /// of 1 block — Core Lightning's own test framework runs regtest with `--cltv-delta=6` and
    /// some tests lower it further; 1 is the least gap that still leaves a block to claim the
    /// incoming HTLC once the outgoing one is fulfilled (0 would let the two race). The rest
    /// as on mainnet.
    pub fn test_network() -> PaymentLimits {
        PaymentLimits {
            velocity_per_hour: Some(Msat(10_000_000_000_000)),
            velocity_per_day: Some(Msat(10_000_000_000_000)),
            trimmed_outflow_per_day: Some(Msat(10_000_000_000_000)),
            min_cltv_delta: 1,
            ..PaymentLimits::mainnet()
        }
    }

    /// The routing fee cap on `amount`: max(`fee_cap_base`, `fee_cap_ppm` of it).
    pub fn fee_cap(&self, amount: Msat) -> Msat {
        let ppm = u128::from(amount.0) * u128::from(self.fee_cap_ppm) / 1_000_000;
        Msat(u64::try_from(ppm).unwrap_or(u64::MAX).max(self.fee_cap_base.0))
    }

    /// Whether `payee` is allowlisted.
    pub fn is_allowlisted(&self, payee: &NodeId) -> bool {
        self.allowlist.contains(payee)
    }
}

/// Which of a channel's two commitments a set of HTLCs is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitmentSide {
    /// Our commitment (`validate_commitment_tx`).
    Holder,
    /// The peer's commitment (`sign_remote_commitment_tx`).
    Counterparty,
}

/// A payment's pre-approval: an invoice or a keysend, parsed by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRequest {
    /// The payment hash.
    pub payment_hash: PaymentHash,
    /// The amount; `None` for an invoice without an amount (its HTLCs are then charged to the
    /// velocity budget as they are offered).
    pub amount: Option<Msat>,
    /// The payee (the invoice's signer, or the keysend destination), if known.
    pub payee: Option<NodeId>,
    /// When the invoice was created (unix seconds).
    pub created_at: u64,
    /// How long after `created_at` it expires, in seconds.
    pub expiry_secs: u64,
}

/// The HTLCs of one hash in one commitment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Flow {
    /// HTLCs we offered.
    outgoing: Msat,
    /// The latest expiry of them.
    outgoing_max_cltv: u32,
    /// HTLCs the peer offered.
    incoming: Msat,
    /// Each HTLC we offered: (expiry, amount).
    outgoing_htlcs: Vec<(u32, Msat)>,
    /// Each HTLC the peer offered: (expiry, amount).
    incoming_htlcs: Vec<(u32, Msat)>,
}

type Flows = BTreeMap<PaymentHash, Flow>;

fn flows_of(htlcs: &[HtlcInfo]) -> Flows {
    let mut flows = Flows::new();
    for h in htlcs {
        let f = flows.entry(h.payment_hash).or_default();
        match h.offered_by {
            HtlcSide::Holder => {
                f.outgoing = add(f.outgoing, h.amount);
                f.outgoing_max_cltv = f.outgoing_max_cltv.max(h.cltv_expiry);
                f.outgoing_htlcs.push((h.cltv_expiry, h.amount));
            }
            HtlcSide::Counterparty => {
                f.incoming = add(f.incoming, h.amount);
                f.incoming_htlcs.push((h.cltv_expiry, h.amount));
            }
        }
    }
    flows
}

fn add(a: Msat, b: Msat) -> Msat {
    Msat(a.0.saturating_add(b.0))
}

fn sub(a: Msat, b: Msat) -> Msat {
    Msat(a.0.saturating_sub(b.0))
}

/// A channel's HTLCs, per side, per hash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ChannelFlows {
    holder: Flows,
    counterparty: Flows,
}

impl ChannelFlows {
    fn side(&self, side: CommitmentSide) -> &Flows {
        match side {
            CommitmentSide::Holder => &self.holder,
            CommitmentSide::Counterparty => &self.counterparty,
        }
    }

    fn side_mut(&mut self, side: CommitmentSide) -> &mut Flows {
        match side {
            CommitmentSide::Holder => &mut self.holder,
            CommitmentSide::Counterparty => &mut self.counterparty,
        }
    }
}

/// What the channel contributes for a hash, given each side's flow.
fn contribution(a: &Flow, b: &Flow) -> (Msat, Msat) {
    (a.outgoing.max(b.outgoing), a.incoming.min(b.incoming))
}

/// An approval of a payment hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Approval {
    /// The approved amount (0 for an invoice without an amount).
    pub amount: Msat,
    /// When the approval lapses (unix seconds): the invoice's expiry plus the clock skew.
    pub expires_at: u64,
    /// Whether the payee was allowlisted, or the operator approved the payment (no velocity
    /// was charged).
    pub allowlisted: bool,
}

/// What the ledger knows of one payment hash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Entry {
    approval: Option<Approval>,
    /// What we sent for the hash: peaks of outgoing over the episodes (see the module docs).
    spent: Msat,
    /// The outgoing peak of the episode in progress (0: no HTLC in flight).
    peak: Msat,
    /// What was charged to the velocity budget for the hash.
    charged: Msat,
    /// Incoming total over all channels (derived, not persisted).
    incoming: Msat,
    /// Outgoing total over all channels (derived, not persisted).
    outgoing: Msat,
}

impl Entry {
    /// The amount an approval covers, fee cap included.
    fn approved_cover(&self, limits: &PaymentLimits, now: u64) -> Msat {
        match self.approval {
            Some(a) if a.amount.0 > 0 && (now <= a.expires_at || self.peak.0 > 0) => {
                add(a.amount, limits.fee_cap(a.amount))
            }
            _ => Msat::ZERO,
        }
    }

    fn is_dead(&self, now: u64) -> bool {
        self.incoming.0 == 0
            && self.outgoing.0 == 0
            && self.approval.is_none_or(|a| now > a.expires_at)
    }
}

/// Value charged to the velocity budget, in buckets of [`BUCKET_SECS`], at most a day's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Velocity {
    /// (bucket index = unix seconds / `BUCKET_SECS`, amount), ascending.
    buckets: Vec<(u64, Msat)>,
}

impl Velocity {
    fn bucket_now(&self, now: u64) -> u64 {
        // A clock that goes back never reopens room: charge the latest bucket.
        let last = self.buckets.last().map_or(0, |b| b.0);
        (now / BUCKET_SECS).max(last)
    }

    /// What was charged in the `window` seconds up to `now`.
    pub fn spent(&self, now: u64, window: u64) -> Msat {
        let current = self.bucket_now(now);
        let first = current.saturating_sub(window / BUCKET_SECS).saturating_add(1);
        self.buckets.iter().filter(|(i, _)| *i >= first).fold(Msat::ZERO, |s, (_, a)| add(s, *a))
    }

    /// Whether `amount` more fits both budgets; `Err` names the window, what was spent in it,
    /// and its limit.
    fn fits(
        &self,
        limits: &PaymentLimits,
        now: u64,
        amount: Msat,
    ) -> Result<(), (&'static str, Msat, Msat)> {
        for (name, window, limit) in
            [("hour", HOUR, limits.velocity_per_hour), ("day", DAY, limits.velocity_per_day)]
        {
            if let Some(limit) = limit {
                let spent = self.spent(now, window);
                if add(spent, amount) > limit {
                    return Err((name, spent, limit));
                }
            }
        }
        Ok(())
    }

    fn charge(&mut self, now: u64, amount: Msat) {
        if amount.0 == 0 {
            return;
        }
        let index = self.bucket_now(now);
        match self.buckets.last_mut() {
            Some((i, a)) if *i == index => *a = add(*a, amount),
            _ => self.buckets.push((index, amount)),
        }
        let first = index.saturating_sub(DAY / BUCKET_SECS);
        self.buckets.retain(|(i, _)| *i > first);
    }
}

/// On-chain fees signed in the last day, per spend (`onchain-fee-range`'s daily velocity).
///
/// A node bumps the fee of one spend again and again (RBF of a withdrawal, the anchor CPFP of
/// a commitment toward a deadline): only one of the conflicting transactions confirms, so the
/// transactions that spend a common outpoint form one group, charged its highest fee once.
/// Groups older than a day are dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeeVelocity {
    /// Per group: when it was last charged, and the fee it holds.
    groups: BTreeMap<u64, (u64, u64)>,
    /// The group of each spent outpoint.
    spends: BTreeMap<bitcoin::OutPoint, u64>,
    /// The next group's number.
    next: u64,
}

/// What charging a transaction's fee would change (see [`PaymentLedger::plan_onchain_fee`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeePlan {
    inputs: Vec<bitcoin::OutPoint>,
    fee: u64,
    now: u64,
}

impl FeeVelocity {
    /// The group (and its fee) that `inputs` conflict with, if one was charged in the day up
    /// to `now`: the one holding the highest fee.
    fn conflict(&self, inputs: &[bitcoin::OutPoint], now: u64) -> Option<(u64, u64)> {
        inputs
            .iter()
            .filter_map(|o| self.spends.get(o))
            .filter_map(|g| self.groups.get(g).map(|(at, fee)| (*g, *at, *fee)))
            .filter(|(_, at, _)| now.saturating_sub(*at) < DAY)
            .max_by_key(|(_, _, fee)| *fee)
            .map(|(g, _, fee)| (g, fee))
    }

    /// The fees charged in the day up to `now`: each group once, at its highest fee.
    fn spent(&self, now: u64) -> u64 {
        self.groups
            .values()
            .filter(|(at, _)| now.saturating_sub(*at) < DAY)
            .fold(0u64, |sum, (_, fee)| sum.saturating_add(*fee))
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = TlvWriter::new();
        w.u64(0, self.next);
        let mut groups = Vec::with_capacity(self.groups.len() * 24);
        for (g, (at, fee)) in &self.groups {
            for v in [g, at, fee] {
                groups.extend_from_slice(&v.to_be_bytes());
            }
        }
        w.record(2, &groups);
        let mut spends = Vec::with_capacity(self.spends.len() * 44);
        for (o, g) in &self.spends {
            spends.extend_from_slice(&bitcoin::hashes::Hash::to_byte_array(o.txid));
            spends.extend_from_slice(&o.vout.to_be_bytes());
            spends.extend_from_slice(&g.to_be_bytes());
        }
        w.record(4, &spends);
        w.into_bytes()
    }

    fn decode(rec: &crate::tlv::Record<'_>) -> Result<FeeVelocity, TlvError> {
        let mut r = TlvReader::new(rec.value, rec.offset);
        let next = r.required(0)?.u64()?;
        let mut groups = BTreeMap::new();
        for b in r.required(2)?.chunks::<24>()? {
            let (g, rest) = b.split_at(8);
            let (at, fee) = rest.split_at(8);
            groups.insert(be64(g), (be64(at), be64(fee)));
        }
        let mut spends = BTreeMap::new();
        for b in r.required(4)?.chunks::<44>()? {
            let (txid, rest) = b.split_at(32);
            let (vout, g) = rest.split_at(4);
            let mut t = [0u8; 32];
            t.copy_from_slice(txid);
            let mut v = [0u8; 4];
            v.copy_from_slice(vout);
            let outpoint = bitcoin::OutPoint {
                txid: bitcoin::hashes::Hash::from_byte_array(t),
                vout: u32::from_be_bytes(v),
            };
            spends.insert(outpoint, be64(g));
        }
        r.finish()?;
        Ok(FeeVelocity { groups, spends, next })
    }
}

impl PaymentLedger {
    /// Plans charging `fee` (satoshis) of a transaction spending `inputs` at `now` to the daily
    /// on-chain fee budget `limit` (`None`: unlimited): refused with `onchain-fee-range` when
    /// what it pays beyond the group of spends it conflicts with does not fit. Nothing changes
    /// until [`PaymentLedger::apply_onchain_fee`].
    pub fn plan_onchain_fee(
        &self,
        inputs: &[bitcoin::OutPoint],
        fee: u64,
        now: u64,
        limit: Option<u64>,
    ) -> Result<FeePlan, PolicyError> {
        let earlier = self.fees.conflict(inputs, now).map_or(0, |(_, f)| f);
        let extra = fee.saturating_sub(earlier);
        if let Some(limit) = limit {
            let spent = self.fees.spent(now);
            if spent.saturating_add(extra) > limit {
                return Err(PolicyError::new(
                    Rule::OnchainFeeRange,
                    alloc::format!(
                        "on-chain fees of {spent} sat were signed in the last day; {extra} sat \
                         more (a fee of {fee} sat, {earlier} sat of it already charged to a \
                         conflicting spend) exceed the daily limit of {limit} sat"
                    ),
                ));
            }
        }
        Ok(FeePlan { inputs: inputs.to_vec(), fee, now })
    }

    /// Records a planned fee charge: the transaction joins the group it conflicts with (which
    /// then holds the higher of the two fees), or starts one.
    pub fn apply_onchain_fee(&mut self, plan: FeePlan) {
        let FeePlan { inputs, fee, now } = plan;
        let f = &mut self.fees;
        f.groups.retain(|_, (at, _)| now.saturating_sub(*at) < DAY);
        let groups = &f.groups;
        f.spends.retain(|_, g| groups.contains_key(g));
        let group = match f.conflict(&inputs, now) {
            Some((g, earlier)) => {
                f.groups.insert(g, (now, earlier.max(fee)));
                g
            }
            None => {
                let g = f.next;
                f.next = f.next.wrapping_add(1);
                f.groups.insert(g, (now, fee));
                g
            }
        };
        for o in inputs {
            f.spends.insert(o, group);
        }
        self.generation = self.generation.wrapping_add(1);
    }

    /// Checks that `amount` more value leaving our side without a visible HTLC fits the day's
    /// budget (`commitment-balance`); nothing changes.
    pub fn check_trimmed_outflow(
        &self,
        limits: &PaymentLimits,
        amount: Msat,
        now: u64,
    ) -> Result<(), PolicyError> {
        let Some(limit) = limits.trimmed_outflow_per_day else { return Ok(()) };
        let spent = self.trimmed.spent(now, DAY);
        ensure!(
            add(spent, amount) <= limit,
            Rule::CommitmentBalance,
            "{amount} more would leave our side without a visible htlc, after {spent} in the \
             last day: above the daily limit of {limit} (trimmed htlcs are invisible to the \
             signer; this bounds what can move under their cover)"
        );
        Ok(())
    }

    /// Records `amount` of value that left our side without a visible HTLC.
    pub fn charge_trimmed_outflow(&mut self, amount: Msat, now: u64) {
        if amount.0 > 0 {
            self.trimmed.charge(now, amount);
            self.generation = self.generation.wrapping_add(1);
        }
    }

    /// The on-chain fees charged in the day up to `now`, in satoshis.
    pub fn onchain_fees_spent(&self, now: u64) -> u64 {
        self.fees.spent(now)
    }
}

/// A hash's change in a commitment plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HashChange {
    hash: PaymentHash,
    entry: Entry,
    charge: Msat,
}

/// What a new commitment changes in the ledger (from [`PaymentLedger::plan_commitment`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitmentPlan {
    slot: ChannelSlot,
    side: CommitmentSide,
    flows: Flows,
    changes: Vec<HashChange>,
    now: u64,
}

impl CommitmentPlan {
    /// The total charged to the velocity budget.
    pub fn charge(&self) -> Msat {
        self.changes.iter().fold(Msat::ZERO, |s, c| add(s, c.charge))
    }
}

/// What a pre-approval changes in the ledger (from [`PaymentLedger::plan_approval`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalPlan {
    hash: PaymentHash,
    approval: Approval,
    charge: Msat,
    now: u64,
}

/// Per payment hash accounting of incoming HTLCs, approvals and outgoing HTLCs, and the
/// velocity budget (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaymentLedger {
    entries: BTreeMap<PaymentHash, Entry>,
    channels: BTreeMap<ChannelSlot, ChannelFlows>,
    velocity: Velocity,
    /// On-chain fees signed in the last day (`onchain-fee-range`'s velocity).
    fees: FeeVelocity,
    /// Value that left our side without a visible HTLC (`commitment-balance` over time).
    trimmed: Velocity,
    /// Bumped by every change of what [`PaymentLedger::encode`] writes.
    generation: u64,
}

impl PaymentLedger {
    /// An empty ledger.
    pub fn new() -> PaymentLedger {
        PaymentLedger::default()
    }

    /// A counter bumped by every change of the persisted part: persist when it moved.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// What was charged to velocity in the `window` seconds up to `now`.
    pub fn velocity_spent(&self, now: u64, window: u64) -> Msat {
        self.velocity.spent(now, window)
    }

    /// How many payment hashes are tracked.
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }

    /// The approval of `hash`, if any.
    pub fn approval(&self, hash: &PaymentHash) -> Option<Approval> {
        self.entries.get(hash).and_then(|e| e.approval)
    }

    /// The incoming and outgoing totals of `hash` over all channels.
    pub fn totals(&self, hash: &PaymentHash) -> (Msat, Msat) {
        self.entries.get(hash).map_or((Msat::ZERO, Msat::ZERO), |e| (e.incoming, e.outgoing))
    }

    /// What of `hash`'s forwarded value no incoming HTLC of the same hash covers in time, with
    /// `slot`'s `side` counted as `flows`: the largest, over each outgoing expiry `t`, of the
    /// value we offered expiring at `t` or later less the value offered to us expiring at
    /// `t + delta` or later (every outgoing HTLC needs incoming value that outlives it by the
    /// gap: we learn the preimage downstream at `t` at the latest and must claim upstream
    /// before the incoming HTLC times out). With that `t`. Across every channel; per channel
    /// the commitment with more outgoing value and the one with less incoming value (an
    /// incoming HTLC counts once both commitments carry it, as in the balance).
    fn uncovered_forward(
        &self,
        hash: &PaymentHash,
        slot: &ChannelSlot,
        side: CommitmentSide,
        flows: &Flows,
        delta: u32,
    ) -> (Msat, u32) {
        let none = Flow::default();
        let mut outgoing: Vec<(u32, Msat)> = Vec::new();
        let mut incoming: Vec<(u32, Msat)> = Vec::new();
        let mut take = |holder: &Flow, counterparty: &Flow| {
            let out = if holder.outgoing >= counterparty.outgoing { holder } else { counterparty };
            let inc = if holder.incoming <= counterparty.incoming { holder } else { counterparty };
            outgoing.extend_from_slice(&out.outgoing_htlcs);
            incoming.extend_from_slice(&inc.incoming_htlcs);
        };
        let new = flows.get(hash).unwrap_or(&none);
        for (s, ch) in &self.channels {
            let get = |each: CommitmentSide| -> &Flow {
                if s == slot && each == side {
                    new
                } else {
                    ch.side(each).get(hash).unwrap_or(&none)
                }
            };
            take(get(CommitmentSide::Holder), get(CommitmentSide::Counterparty));
        }
        if !self.channels.contains_key(slot) {
            take(new, new);
        }
        let mut worst = (Msat::ZERO, 0u32);
        for &(t, _) in &outgoing {
            let out: Msat =
                outgoing.iter().filter(|(e, _)| *e >= t).fold(Msat::ZERO, |a, (_, v)| add(a, *v));
            let needed = t.saturating_add(delta);
            let inc: Msat = incoming
                .iter()
                .filter(|(e, _)| *e >= needed)
                .fold(Msat::ZERO, |a, (_, v)| add(a, *v));
            let short = sub(out, inc);
            if short > worst.0 {
                worst = (short, t);
            }
        }
        worst
    }

    /// Plans replacing `slot`'s `side` commitment HTLCs with `htlcs` at `now`: the plan, and
    /// the verdict (`payment-unbalanced`, `-fee-cap`, `-velocity`, `-cltv-delta`,
    /// `node-limits`). The ledger is not changed.
    pub fn plan_commitment(
        &self,
        limits: &PaymentLimits,
        slot: &ChannelSlot,
        side: CommitmentSide,
        htlcs: &[HtlcInfo],
        now: u64,
    ) -> (CommitmentPlan, Result<(), PolicyError>) {
        let flows = flows_of(htlcs);
        let empty = ChannelFlows::default();
        let channel = self.channels.get(slot).unwrap_or(&empty);
        let old = channel.side(side);
        let other = match side {
            CommitmentSide::Holder => &channel.counterparty,
            CommitmentSide::Counterparty => &channel.holder,
        };
        let mut hashes: Vec<PaymentHash> = old.keys().chain(flows.keys()).copied().collect();
        hashes.sort_unstable();
        hashes.dedup();
        let mut verdict = Ok(());
        let mut changes = Vec::new();
        let mut charged_so_far = Msat::ZERO;
        let mut new_entries = 0usize;
        for hash in hashes {
            let before = old.get(&hash).cloned().unwrap_or_default();
            let after = flows.get(&hash).cloned().unwrap_or_default();
            let theirs = other.get(&hash).cloned().unwrap_or_default();
            if before == after {
                continue;
            }
            let (old_out, old_in) = contribution(&before, &theirs);
            let (new_out, new_in) = contribution(&after, &theirs);
            let existing = self.entries.get(&hash);
            new_entries += usize::from(existing.is_none());
            let mut e = existing.copied().unwrap_or_default();
            e.outgoing = add(sub(e.outgoing, old_out), new_out);
            e.incoming = add(sub(e.incoming, old_in), new_in);
            let mut charge = Msat::ZERO;
            if e.outgoing.0 == 0 {
                e.peak = Msat::ZERO;
            } else if e.outgoing > e.peak {
                e.spent = add(e.spent, sub(e.outgoing, e.peak));
                e.peak = e.outgoing;
                let cover = add(e.incoming, e.approved_cover(limits, now));
                charge = sub(sub(e.spent, cover), e.charged);
                e.charged = add(e.charged, charge);
            }
            if charge.0 > 0 && verdict.is_ok() {
                let total = add(charged_so_far, charge);
                if let Err((window, spent, limit)) = self.velocity.fits(limits, now, total) {
                    let rule = if e.incoming.0 > 0 {
                        Rule::PaymentUnbalanced
                    } else if e.approved_cover(limits, now).0 > 0 {
                        Rule::PaymentFeeCap
                    } else if e.approval.is_some() {
                        Rule::PaymentUnbalanced
                    } else {
                        Rule::PaymentVelocity
                    };
                    verdict = Err(PolicyError::new(
                        rule,
                        format!(
                            "payment {} sends {} against {} incoming and {} approved (fee cap \
                             included); the {} uncovered does not fit the velocity budget \
                             ({} of {} per {window} spent)",
                            hex_short(&hash),
                            e.spent,
                            e.incoming,
                            e.approved_cover(limits, now),
                            charge,
                            spent,
                            limit
                        ),
                    ));
                }
            }
            charged_so_far = add(charged_so_far, charge);
            // A routed HTLC: what we forward must be covered by incoming HTLCs of the hash that
            // outlive it by the gap. What is our own payment needs no incoming HTLC: the value
            // beyond the incoming one (bounded by the balance above), or what the operator's
            // pre-approval of the hash covers (we pay an invoice whose hash someone also sent
            // us an HTLC with: that HTLC is not what pays for ours).
            if after.outgoing > before.outgoing && e.incoming.0 > 0 && verdict.is_ok() {
                let delta = limits.min_cltv_delta;
                let (short, expiry) = self.uncovered_forward(&hash, slot, side, &flows, delta);
                let approved = e.outgoing.min(e.approved_cover(limits, now));
                let own = sub(e.outgoing, e.incoming).max(approved);
                if short > own {
                    verdict = Err(PolicyError::new(
                        Rule::PaymentCltvDelta,
                        format!(
                            "payment {}: {} forwarded with expiry {expiry} or later has no \
                             incoming htlc expiring at least {delta} blocks after it",
                            hex_short(&hash),
                            sub(short, own),
                        ),
                    ));
                }
            }
            changes.push(HashChange { hash, entry: e, charge });
        }
        // Entries that lapsed are dropped only as they are touched: count live ones only when
        // the plain count is over the bound.
        if verdict.is_ok()
            && new_entries > 0
            && self.entries.len().saturating_add(new_entries) > limits.max_tracked_payments
        {
            let live = self.entries.values().filter(|e| !e.is_dead(now)).count();
            if live.saturating_add(new_entries) > limits.max_tracked_payments {
                verdict = Err(PolicyError::new(
                    Rule::NodeLimits,
                    format!(
                        "{} payment hashes would be tracked, above the maximum of {}",
                        live.saturating_add(new_entries),
                        limits.max_tracked_payments
                    ),
                ));
            }
        }
        (CommitmentPlan { slot: *slot, side, flows, changes, now }, verdict)
    }

    /// Applies a plan of [`PaymentLedger::plan_commitment`].
    pub fn apply_commitment(&mut self, plan: CommitmentPlan) {
        let charge = plan.charge();
        let mut persisted_changed = charge.0 > 0;
        for c in plan.changes {
            if c.entry.is_dead(plan.now) {
                if let Some(old) = self.entries.remove(&c.hash) {
                    persisted_changed |= old.approval.is_some();
                }
            } else {
                persisted_changed |= c.entry.approval.is_some();
                self.entries.insert(c.hash, c.entry);
            }
        }
        self.velocity.charge(plan.now, charge);
        let channel = self.channels.entry(plan.slot).or_default();
        *channel.side_mut(plan.side) = plan.flows;
        if channel.holder.is_empty() && channel.counterparty.is_empty() {
            self.channels.remove(&plan.slot);
        }
        if persisted_changed {
            self.generation = self.generation.wrapping_add(1);
        }
    }

    /// Plans and, when allowed, applies a commitment (what the tests and a caller without an
    /// enforcement filter use).
    pub fn check_commitment(
        &mut self,
        limits: &PaymentLimits,
        slot: &ChannelSlot,
        side: CommitmentSide,
        htlcs: &[HtlcInfo],
        now: u64,
    ) -> Result<(), PolicyError> {
        let (plan, verdict) = self.plan_commitment(limits, slot, side, htlcs, now);
        verdict?;
        self.apply_commitment(plan);
        Ok(())
    }

    /// Plans the pre-approval of `request` at `now`: the plan, and the verdict
    /// (`payment-invoice-expired`, `payment-velocity`, `payment-not-approved`, `node-limits`).
    /// An allowlisted payee is approved without a velocity charge; otherwise the amount not
    /// yet approved for the hash is charged to the velocity budget. An invoice without an
    /// amount is approved with nothing covered: its HTLCs are charged as they are offered.
    pub fn plan_approval(
        &self,
        limits: &PaymentLimits,
        request: &PaymentRequest,
        now: u64,
    ) -> (ApprovalPlan, Result<(), PolicyError>) {
        self.plan_approval_by(limits, request, now, false)
    }

    /// [`PaymentLedger::plan_approval`] of a payment the operator approved (one that was
    /// refused for velocity or approval): like an allowlisted payee's, no velocity is charged;
    /// the invoice must still be current.
    pub fn plan_operator_approval(
        &self,
        limits: &PaymentLimits,
        request: &PaymentRequest,
        now: u64,
    ) -> (ApprovalPlan, Result<(), PolicyError>) {
        self.plan_approval_by(limits, request, now, true)
    }

    fn plan_approval_by(
        &self,
        limits: &PaymentLimits,
        request: &PaymentRequest,
        now: u64,
        by_operator: bool,
    ) -> (ApprovalPlan, Result<(), PolicyError>) {
        let skew = limits.invoice_clock_skew_secs;
        let expires = request.created_at.saturating_add(request.expiry_secs);
        let allowlisted =
            by_operator || request.payee.as_ref().is_some_and(|p| limits.is_allowlisted(p));
        let amount = request.amount.unwrap_or(Msat::ZERO);
        let existing = self.entries.get(&request.payment_hash);
        let previous = existing.and_then(|e| e.approval).map_or(Msat::ZERO, |a| a.amount);
        let approval = Approval {
            amount: amount.max(previous),
            expires_at: expires.saturating_add(skew),
            allowlisted,
        };
        let charge = if allowlisted { Msat::ZERO } else { sub(amount, previous) };
        let plan = ApprovalPlan { hash: request.payment_hash, approval, charge, now };
        let hash = hex_short(&request.payment_hash);
        let verdict = if now.saturating_add(skew) < request.created_at {
            Err(PolicyError::new(
                Rule::PaymentInvoiceExpired,
                format!(
                    "invoice for {hash} is created at {}, {} s in the future (skew {skew} s)",
                    request.created_at,
                    request.created_at - now
                ),
            ))
        } else if now > expires.saturating_add(skew) {
            Err(PolicyError::new(
                Rule::PaymentInvoiceExpired,
                format!("invoice for {hash} expired at {expires}, now is {now} (skew {skew} s)"),
            ))
        } else if existing.is_none()
            && self.entries.values().filter(|e| !e.is_dead(now)).count()
                >= limits.max_tracked_payments
        {
            Err(PolicyError::new(
                Rule::NodeLimits,
                format!("{} payment hashes tracked already", limits.max_tracked_payments),
            ))
        } else {
            match self.velocity.fits(limits, now, charge) {
                Ok(()) => Ok(()),
                Err((window, spent, limit)) => {
                    let (rule, why) = if charge > limit {
                        (Rule::PaymentNotApproved, "it exceeds the whole velocity budget")
                    } else {
                        (Rule::PaymentVelocity, "it does not fit the velocity budget left")
                    };
                    Err(PolicyError::new(
                        rule,
                        format!(
                            "payment {hash} of {amount} to a payee that is not allowlisted: \
                             {why} ({spent} of {limit} per {window} spent)"
                        ),
                    ))
                }
            }
        };
        (plan, verdict)
    }

    /// Applies a plan of [`PaymentLedger::plan_approval`].
    pub fn apply_approval(&mut self, plan: ApprovalPlan) {
        self.prune(plan.now);
        let e = self.entries.entry(plan.hash).or_default();
        // Charged: the approval itself was charged; HTLCs beyond it are charged as they come.
        e.approval = Some(plan.approval);
        self.velocity.charge(plan.now, plan.charge);
        self.generation = self.generation.wrapping_add(1);
    }

    /// Plans and, when allowed, applies a pre-approval.
    pub fn approve(
        &mut self,
        limits: &PaymentLimits,
        request: &PaymentRequest,
        now: u64,
    ) -> Result<(), PolicyError> {
        let (plan, verdict) = self.plan_approval(limits, request, now);
        verdict?;
        self.apply_approval(plan);
        Ok(())
    }

    /// Drops the hashes with no HTLC in any current commitment whose approval lapsed.
    pub fn prune(&mut self, now: u64) {
        let before = self.entries.len();
        self.entries.retain(|_, e| !e.is_dead(now));
        if self.entries.len() != before {
            self.generation = self.generation.wrapping_add(1);
        }
    }

    /// Restores a channel's current HTLCs at start (from its record), without charging: the
    /// HTLCs of a commitment that was signed before were accounted then. For a hash whose
    /// state was not persisted (no approval), the outgoing in flight is taken as the peak and
    /// its uncovered part as already charged.
    pub fn restore_channel(
        &mut self,
        limits: &PaymentLimits,
        slot: &ChannelSlot,
        holder: &[HtlcInfo],
        counterparty: &[HtlcInfo],
        now: u64,
    ) {
        for (side, htlcs) in
            [(CommitmentSide::Holder, holder), (CommitmentSide::Counterparty, counterparty)]
        {
            let (mut plan, _) = self.plan_commitment(limits, slot, side, htlcs, now);
            for c in &mut plan.changes {
                c.charge = Msat::ZERO;
            }
            self.apply_commitment(plan);
        }
    }

    /// The persisted part: format byte, then a TLV stream — type 0 the velocity buckets
    /// (8-byte bucket index, 8-byte msat each), type 2 the approvals (32-byte hash, 8-byte
    /// amount, 8-byte expiry, 1-byte allowlisted flag, 8-byte spent, 8-byte peak, 8-byte
    /// charged each). Integers are big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = TlvWriter::new();
        let mut buckets = Vec::with_capacity(self.velocity.buckets.len() * 16);
        for (i, a) in &self.velocity.buckets {
            buckets.extend_from_slice(&i.to_be_bytes());
            buckets.extend_from_slice(&a.0.to_be_bytes());
        }
        w.record(0, &buckets);
        let mut approvals = Vec::new();
        for (hash, e) in &self.entries {
            let Some(a) = e.approval else { continue };
            approvals.extend_from_slice(hash);
            approvals.extend_from_slice(&a.amount.0.to_be_bytes());
            approvals.extend_from_slice(&a.expires_at.to_be_bytes());
            approvals.push(u8::from(a.allowlisted));
            approvals.extend_from_slice(&e.spent.0.to_be_bytes());
            approvals.extend_from_slice(&e.peak.0.to_be_bytes());
            approvals.extend_from_slice(&e.charged.0.to_be_bytes());
        }
        w.record(2, &approvals);
        if !self.fees.groups.is_empty() {
            w.record(5, &self.fees.encode());
        }
        if !self.trimmed.buckets.is_empty() {
            let mut buckets = Vec::with_capacity(self.trimmed.buckets.len() * 16);
            for (i, a) in &self.trimmed.buckets {
                buckets.extend_from_slice(&i.to_be_bytes());
                buckets.extend_from_slice(&a.0.to_be_bytes());
            }
            w.record(7, &buckets);
        }
        let mut out = vec![LEDGER_FORMAT];
        out.extend_from_slice(&w.into_bytes());
        out
    }

    /// Reads what [`PaymentLedger::encode`] wrote (the channels' HTLCs are restored after).
    pub fn decode(bytes: &[u8]) -> Result<PaymentLedger, TlvError> {
        let (&format, body) =
            bytes.split_first().ok_or(TlvError::MissingRecord { offset: 0, ty: 0 })?;
        let mut r = TlvReader::new(body, 1);
        if format != LEDGER_FORMAT {
            return Err(TlvError::UnknownEvenType { offset: 0, ty: u64::from(format) });
        }
        let mut ledger = PaymentLedger::new();
        for b in r.required(0)?.chunks::<16>()? {
            let (i, a) = b.split_at(8);
            ledger.velocity.buckets.push((be64(i), Msat(be64(a))));
        }
        for b in r.required(2)?.chunks::<73>()? {
            let (hash, rest) = b.split_at(32);
            let mut h = [0u8; 32];
            h.copy_from_slice(hash);
            let (amount, rest) = rest.split_at(8);
            let (expires, rest) = rest.split_at(8);
            let (flag, rest) = rest.split_at(1);
            let (spent, rest) = rest.split_at(8);
            let (peak, charged) = rest.split_at(8);
            let approval = Approval {
                amount: Msat(be64(amount)),
                expires_at: be64(expires),
                allowlisted: flag != [0],
            };
            ledger.entries.insert(
                h,
                Entry {
                    approval: Some(approval),
                    spent: Msat(be64(spent)),
                    peak: Msat(be64(peak)),
                    charged: Msat(be64(charged)),
                    incoming: Msat::ZERO,
                    outgoing: Msat::ZERO,
                },
            );
        }
        if let Some(fees) = r.optional(5)? {
            ledger.fees = FeeVelocity::decode(&fees)?;
        }
        if let Some(trimmed) = r.optional(7)? {
            for b in trimmed.chunks::<16>()? {
                let (i, a) = b.split_at(8);
                ledger.trimmed.buckets.push((be64(i), Msat(be64(a))));
            }
        }
        r.finish()?;
        Ok(ledger)
    }
}

fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    if let Some(src) = b.get(..8) {
        a.copy_from_slice(src);
    }
    u64::from_be_bytes(a)
}

/// The first 8 bytes of a hash, hex (enough to find it in lightningd's logs).
fn hex_short(hash: &PaymentHash) -> String {
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    #[test]
    fn onchain_fees_count_each_spend_and_each_bump_once() {
        let op = |n: u8| bitcoin::OutPoint {
            txid: bitcoin::hashes::Hash::from_byte_array([n; 32]),
            vout: 0,
        };
        let mut l = PaymentLedger::new();
        let charge = |l: &mut PaymentLedger, inputs: &[bitcoin::OutPoint], fee| {
            let plan = l.plan_onchain_fee(inputs, fee, NOW, Some(3_000))?;
            l.apply_onchain_fee(plan);
            Ok::<_, PolicyError>(())
        };
        // Two different spends in the same second with the same fee: both count.
        charge(&mut l, &[op(1)], 1_000).unwrap();
        charge(&mut l, &[op(2)], 1_000).unwrap();
        assert_eq!(l.onchain_fees_spent(NOW), 2_000);
        // A bump of the first (sharing an input) adds only what it pays beyond it.
        charge(&mut l, &[op(1), op(3)], 1_400).unwrap();
        assert_eq!(l.onchain_fees_spent(NOW), 2_400);
        let refused = l.plan_onchain_fee(&[op(4)], 700, NOW, Some(3_000)).unwrap_err();
        assert_eq!(refused.rule, Rule::OnchainFeeRange);
        // The ledger survives its encoding; a day later the budget is free again.
        let back = PaymentLedger::decode(&l.encode()).unwrap();
        assert_eq!(back.onchain_fees_spent(NOW), 2_400);
        assert_eq!(back.onchain_fees_spent(NOW + DAY), 0);
    }
    use crate::units::Dbid;
    use secp256k1::{PublicKey, Secp256k1, SecretKey};

    const NOW: u64 = 1_800_000_000;

    fn node(b: u8) -> NodeId {
        let secp = Secp256k1::signing_only();
        NodeId(PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&[b; 32]).unwrap()))
    }

    fn slot(dbid: u64) -> ChannelSlot {
        ChannelSlot { peer: node(9), dbid: Dbid(dbid) }
    }

    fn htlc(by: HtlcSide, msat: u64, hash: u8, cltv: u32) -> HtlcInfo {
        HtlcInfo { offered_by: by, amount: Msat(msat), payment_hash: [hash; 32], cltv_expiry: cltv }
    }

    fn out(msat: u64, hash: u8) -> HtlcInfo {
        htlc(HtlcSide::Holder, msat, hash, 500)
    }

    fn inc(msat: u64, hash: u8, cltv: u32) -> HtlcInfo {
        htlc(HtlcSide::Counterparty, msat, hash, cltv)
    }

    /// A small budget: 1,000 sat per hour, 2,000 per day, CLTV delta 10.
    fn limits() -> PaymentLimits {
        PaymentLimits {
            velocity_per_hour: Some(Msat(1_000_000)),
            velocity_per_day: Some(Msat(2_000_000)),
            min_cltv_delta: 10,
            ..PaymentLimits::mainnet()
        }
    }

    /// Both commitments of `slot` carry `htlcs`.
    fn both(
        l: &mut PaymentLedger,
        s: u64,
        htlcs: &[HtlcInfo],
        now: u64,
    ) -> Result<(), PolicyError> {
        let limits = limits();
        l.check_commitment(&limits, &slot(s), CommitmentSide::Counterparty, htlcs, now)?;
        l.check_commitment(&limits, &slot(s), CommitmentSide::Holder, htlcs, now)
    }

    fn rule(r: Result<(), PolicyError>) -> Rule {
        r.unwrap_err().rule
    }

    fn request(hash: u8, msat: Option<u64>, payee: u8) -> PaymentRequest {
        PaymentRequest {
            payment_hash: [hash; 32],
            amount: msat.map(Msat),
            payee: Some(node(payee)),
            created_at: NOW - 60,
            expiry_secs: 3_600,
        }
    }

    #[test]
    fn defaults_are_documented_values() {
        let m = PaymentLimits::mainnet();
        assert_eq!(m.fee_cap(Msat(100_000)), Msat(10_000), "10 sat floor");
        assert_eq!(m.fee_cap(Msat(10_000_000)), Msat(100_000), "1 %");
        assert_eq!(m.min_cltv_delta, 34);
        assert_eq!(m.velocity_per_day, Some(Msat(1_000_000_000)));
        assert!(PaymentLimits::test_network().min_cltv_delta <= 1);
    }

    #[test]
    fn unknown_hashes_are_charged_to_velocity_once() {
        let mut l = PaymentLedger::new();
        both(&mut l, 1, &[out(600_000, 1)], NOW).unwrap();
        assert_eq!(l.velocity_spent(NOW, HOUR), Msat(600_000));
        // The same set again (a retry, a replay): charged once.
        both(&mut l, 1, &[out(600_000, 1)], NOW).unwrap();
        assert_eq!(l.velocity_spent(NOW, HOUR), Msat(600_000));
        // Beyond the hourly budget: refused, and nothing changes.
        let before = l.clone();
        assert_eq!(
            rule(both(&mut l, 1, &[out(600_000, 1), out(500_000, 2)], NOW)),
            Rule::PaymentVelocity
        );
        assert_eq!(l, before);
        // An hour later the hourly window has room again; the day still counts.
        both(&mut l, 1, &[out(600_000, 1), out(500_000, 2)], NOW + HOUR).unwrap();
        assert_eq!(l.velocity_spent(NOW + HOUR, DAY), Msat(1_100_000));
        assert_eq!(l.velocity_spent(NOW + HOUR, HOUR), Msat(500_000));
    }

    #[test]
    fn a_known_hash_is_refused_beyond_its_cover_and_the_budget() {
        let mut l = PaymentLedger::new();
        // 5,000 sat arrive for hash 7 on channel 1.
        both(&mut l, 1, &[inc(5_000_000, 7, 800)], NOW).unwrap();
        // Forwarding 4,990 sat on channel 2 is covered: no charge.
        both(&mut l, 2, &[out(4_990_000, 7)], NOW).unwrap();
        assert_eq!(l.velocity_spent(NOW, DAY), Msat::ZERO);
        // Sending 7,000 sat for it: 2,000 uncovered, above the 1,000 sat hour budget.
        let before = l.clone();
        let r = l.check_commitment(
            &limits(),
            &slot(2),
            CommitmentSide::Counterparty,
            &[out(7_000_000, 7)],
            NOW,
        );
        assert_eq!(rule(r), Rule::PaymentUnbalanced);
        assert_eq!(l, before);
        // 500 sat uncovered fits the budget and is charged.
        both(&mut l, 2, &[out(5_500_000, 7)], NOW).unwrap();
        assert_eq!(l.velocity_spent(NOW, DAY), Msat(500_000));
    }

    #[test]
    fn an_incoming_htlc_counts_once_in_both_commitments() {
        let mut l = PaymentLedger::new();
        let limits = limits();
        l.check_commitment(
            &limits,
            &slot(1),
            CommitmentSide::Holder,
            &[inc(5_000_000, 7, 800)],
            NOW,
        )
        .unwrap();
        assert_eq!(l.totals(&[7; 32]).0, Msat::ZERO);
        l.check_commitment(
            &limits,
            &slot(1),
            CommitmentSide::Counterparty,
            &[inc(5_000_000, 7, 800)],
            NOW,
        )
        .unwrap();
        assert_eq!(l.totals(&[7; 32]).0, Msat(5_000_000));
    }

    #[test]
    fn routed_htlcs_keep_the_cltv_delta() {
        let mut l = PaymentLedger::new();
        both(&mut l, 1, &[inc(5_000_000, 7, 800)], NOW).unwrap();
        let short = htlc(HtlcSide::Holder, 4_990_000, 7, 795);
        let before = l.clone();
        assert_eq!(rule(both(&mut l, 2, &[short], NOW)), Rule::PaymentCltvDelta);
        assert_eq!(l, before);
        both(&mut l, 2, &[htlc(HtlcSide::Holder, 4_990_000, 7, 790)], NOW).unwrap();
        // Not routed (no incoming): no CLTV rule.
        both(&mut l, 3, &[htlc(HtlcSide::Holder, 1_000, 8, 10_000)], NOW).unwrap();
    }

    /// Two payments sharing a hash (reused by a payer, or by an attacker to grief a forward)
    /// are each forwarded with their own gap: accepted. Value forwarded beyond what timely
    /// incoming HTLCs bring is refused, however many incoming HTLCs the hash has.
    #[test]
    fn a_shared_hash_is_covered_value_by_value() {
        let mut l = PaymentLedger::new();
        both(&mut l, 1, &[inc(5_000_000, 7, 200)], NOW).unwrap();
        both(&mut l, 2, &[inc(3_000_000, 7, 400)], NOW).unwrap();
        // Each forward is 10 blocks before its own incoming HTLC; the earliest incoming
        // (200) is not 10 blocks after the latest outgoing (390).
        both(&mut l, 3, &[htlc(HtlcSide::Holder, 4_990_000, 7, 190)], NOW).unwrap();
        both(&mut l, 4, &[htlc(HtlcSide::Holder, 2_990_000, 7, 390)], NOW).unwrap();

        // A small incoming HTLC with a late expiry does not cover a large forward: the large
        // incoming one expires first.
        let mut l = PaymentLedger::new();
        both(&mut l, 1, &[inc(5_000_000, 9, 200)], NOW).unwrap();
        both(&mut l, 2, &[inc(10_000, 9, 400)], NOW).unwrap();
        let before = l.clone();
        let late = htlc(HtlcSide::Holder, 4_990_000, 9, 390);
        assert_eq!(rule(both(&mut l, 3, &[late], NOW)), Rule::PaymentCltvDelta);
        assert_eq!(l, before);
        // What the late incoming HTLC covers may go late; the rest must go early.
        both(&mut l, 3, &[htlc(HtlcSide::Holder, 9_000, 9, 390)], NOW).unwrap();
        both(&mut l, 4, &[htlc(HtlcSide::Holder, 4_980_000, 9, 190)], NOW).unwrap();

        // Our own payment of an invoice we approved, whose hash someone also sent us an HTLC
        // with (expiring early): not a forward, no gap needed.
        let mut l = PaymentLedger::new();
        l.approve(&limits(), &request(11, Some(800_000), 3), NOW).unwrap();
        both(&mut l, 1, &[inc(5_000_000, 11, 200)], NOW).unwrap();
        both(&mut l, 2, &[htlc(HtlcSide::Holder, 805_000, 11, 390)], NOW).unwrap();
        // Beyond what the approval covers (800 sat and its fee cap), it is a forward again.
        let more =
            [htlc(HtlcSide::Holder, 805_000, 11, 390), htlc(HtlcSide::Holder, 1_000_000, 11, 390)];
        assert_eq!(rule(both(&mut l, 2, &more, NOW)), Rule::PaymentCltvDelta);
    }

    #[test]
    fn approvals_cover_the_amount_and_the_fee_cap() {
        let mut l = PaymentLedger::new();
        let limits = limits();
        // 900 sat: within the 1,000 sat hour budget, charged at approval.
        l.approve(&limits, &request(5, Some(900_000), 3), NOW).unwrap();
        assert_eq!(l.velocity_spent(NOW, HOUR), Msat(900_000));
        // Approving the same invoice again charges nothing.
        l.approve(&limits, &request(5, Some(900_000), 3), NOW).unwrap();
        assert_eq!(l.velocity_spent(NOW, HOUR), Msat(900_000));
        // Paying it with the capped fee (10 sat) is covered.
        both(&mut l, 1, &[out(910_000, 5)], NOW).unwrap();
        assert_eq!(l.velocity_spent(NOW, HOUR), Msat(900_000));
        // A fee above the cap must come out of the budget: 100 sat left, 190 asked.
        let r = both(&mut l, 1, &[out(1_100_000, 5)], NOW);
        assert_eq!(rule(r), Rule::PaymentFeeCap);
        both(&mut l, 1, &[out(1_000_000, 5)], NOW).unwrap();
        assert_eq!(l.velocity_spent(NOW, HOUR), Msat(990_000));
    }

    #[test]
    fn preapproval_rules() {
        let mut l = PaymentLedger::new();
        let mut limits = limits();
        // Beyond the whole budget: only an approval or the allowlist can pass it.
        assert_eq!(
            rule(l.approve(&limits, &request(1, Some(5_000_000), 3), NOW)),
            Rule::PaymentNotApproved
        );
        limits.allowlist.push(node(3));
        l.approve(&limits, &request(1, Some(5_000_000), 3), NOW).unwrap();
        assert_eq!(l.velocity_spent(NOW, DAY), Msat::ZERO);
        // Within the budget, until it is spent.
        l.approve(&limits, &request(2, Some(800_000), 4), NOW).unwrap();
        let before = l.clone();
        assert_eq!(
            rule(l.approve(&limits, &request(3, Some(800_000), 4), NOW)),
            Rule::PaymentVelocity
        );
        assert_eq!(l, before);
        // Expired, and from the future beyond the skew.
        let mut old = request(4, Some(1_000), 4);
        old.created_at = NOW - 3_600 - limits.invoice_clock_skew_secs - 1;
        assert_eq!(rule(l.approve(&limits, &old, NOW)), Rule::PaymentInvoiceExpired);
        old.created_at = NOW + limits.invoice_clock_skew_secs + 1;
        assert_eq!(rule(l.approve(&limits, &old, NOW)), Rule::PaymentInvoiceExpired);
        old.created_at = NOW + limits.invoice_clock_skew_secs;
        l.approve(&limits, &old, NOW).unwrap();
    }

    #[test]
    fn an_operator_approval_passes_the_budget_but_not_the_expiry() {
        let mut l = PaymentLedger::new();
        let limits = limits();
        let big = request(1, Some(5_000_000), 3);
        let (_, verdict) = l.plan_approval(&limits, &big, NOW);
        assert_eq!(rule(verdict), Rule::PaymentNotApproved);
        let (plan, verdict) = l.plan_operator_approval(&limits, &big, NOW);
        verdict.unwrap();
        l.apply_approval(plan);
        assert_eq!(l.velocity_spent(NOW, DAY), Msat::ZERO);
        assert!(l.approval(&[1; 32]).unwrap().allowlisted);
        let (_, verdict) = l.plan_operator_approval(&limits, &big, NOW + DAY);
        assert_eq!(rule(verdict), Rule::PaymentInvoiceExpired);
    }

    #[test]
    fn a_retried_payment_counts_again_once_its_htlcs_are_gone() {
        let mut l = PaymentLedger::new();
        both(&mut l, 1, &[out(400_000, 1)], NOW).unwrap();
        both(&mut l, 1, &[], NOW).unwrap();
        assert_eq!(l.tracked(), 0, "an unknown hash with no HTLC left is dropped");
        both(&mut l, 1, &[out(400_000, 1)], NOW).unwrap();
        assert_eq!(l.velocity_spent(NOW, HOUR), Msat(800_000));
        // MPP parts replaced while others are in flight do not raise the peak.
        both(&mut l, 1, &[out(100_000, 1), out(300_000, 1)], NOW).unwrap();
        assert_eq!(l.velocity_spent(NOW, HOUR), Msat(800_000));
    }

    #[test]
    fn the_ledger_is_bounded() {
        let mut l = PaymentLedger::new();
        let mut limits = PaymentLimits::test_network();
        limits.max_tracked_payments = 2;
        l.check_commitment(&limits, &slot(1), CommitmentSide::Holder, &[out(1, 1), out(1, 2)], NOW)
            .unwrap();
        let r = l.check_commitment(
            &limits,
            &slot(1),
            CommitmentSide::Holder,
            &[out(1, 1), out(1, 2), out(1, 3)],
            NOW,
        );
        assert_eq!(rule(r), Rule::NodeLimits);
        // Approvals lapse and are dropped once no HTLC is left.
        l.check_commitment(&limits, &slot(1), CommitmentSide::Holder, &[], NOW).unwrap();
        l.approve(&limits, &request(5, Some(1_000), 3), NOW).unwrap();
        assert_eq!(l.tracked(), 1);
        l.prune(NOW + 2 * HOUR);
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn persisted_state_round_trips_and_channels_are_restored() {
        let mut l = PaymentLedger::new();
        let limits = limits();
        l.approve(&limits, &request(5, Some(900_000), 3), NOW).unwrap();
        both(&mut l, 1, &[out(950_000, 5), out(50_000, 6), inc(70_000, 8, 900)], NOW).unwrap();
        let mut back = PaymentLedger::decode(&l.encode()).unwrap();
        let htlcs = [out(950_000, 5), out(50_000, 6), inc(70_000, 8, 900)];
        back.restore_channel(&limits, &slot(1), &htlcs, &htlcs, NOW);
        assert_eq!(back.velocity_spent(NOW, DAY), l.velocity_spent(NOW, DAY));
        assert_eq!(back.totals(&[5; 32]), l.totals(&[5; 32]));
        assert_eq!(back.totals(&[8; 32]), l.totals(&[8; 32]));
        assert_eq!(back.approval(&[5; 32]), l.approval(&[5; 32]));
        // A replay after the restart is not charged again.
        let spent = back.velocity_spent(NOW, DAY);
        both(&mut back, 1, &htlcs, NOW).unwrap();
        assert_eq!(back.velocity_spent(NOW, DAY), spent);
        assert!(PaymentLedger::decode(&[2]).is_err());
        assert!(PaymentLedger::decode(&[]).is_err());
    }
}
