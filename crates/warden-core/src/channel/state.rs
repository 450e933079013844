//! A channel's enforcement state and the transitions the hsmd messages make on it.
//!
//! The ordering rules kept here are what stops a compromised node from making Warden sign two
//! conflicting states (DESIGN.md §3, invariant 2):
//! - our (holder) commitment `n` is validated only after `n - 1` was, and only while at most
//!   one older commitment is unrevoked;
//! - our commitment `n` is revoked only after `n + 1` was validated, and never after `n` (or
//!   an older one) was signed for broadcast;
//! - a revoked holder commitment is never signed for broadcast;
//! - the peer's commitment `n` is signed only after `n - 2` was revoked by the peer;
//! - the peer's revocation secret must match the point we signed with and chain (BOLT-03);
//! - nothing new is signed once the channel is closing.
//!
//! A retry of the last request with the same content is accepted without change (same answer);
//! a different request for the same number is refused (`commitment-retry-same`).
//! Every method checks everything before it changes anything.

use alloc::vec::Vec;

use bitcoin::{OutPoint, Txid};

use super::{ChannelSetup, ChannelSlot};
use crate::keys::{FundingPubkey, PerCommitmentPoint};
use crate::policy::revocation::{check_holder_revocation, check_peer_revocation, Revocation};
use crate::policy::{ensure, PolicyError, Rule};
use crate::secp256k1::{Secp256k1, Signing};
use crate::shachain::SecretStore;
use crate::tx::{Htlc, HtlcDirection, PaymentHash};
use crate::units::{CommitmentNumber, FeeratePerKw, Msat, Sat};

/// Who offered an HTLC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HtlcSide {
    /// We offered it (an outgoing payment or a forward).
    Holder,
    /// The peer offered it.
    Counterparty,
}

/// An HTLC in a commitment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HtlcInfo {
    /// Who offered it.
    pub offered_by: HtlcSide,
    /// Its amount.
    pub amount: Msat,
    /// Its payment hash.
    pub payment_hash: [u8; 32],
    /// Its absolute expiry height.
    pub cltv_expiry: u32,
}

impl HtlcInfo {
    /// The HTLC as BOLT-03 builds it on `broadcaster`'s commitment: offered by the broadcaster,
    /// or received.
    pub fn as_htlc(&self, broadcaster: super::commitment::Broadcaster) -> Htlc {
        use super::commitment::Broadcaster;
        let offered_by_broadcaster = matches!(
            (self.offered_by, broadcaster),
            (HtlcSide::Holder, Broadcaster::Holder)
                | (HtlcSide::Counterparty, Broadcaster::Counterparty)
        );
        Htlc {
            direction: if offered_by_broadcaster {
                HtlcDirection::Offered
            } else {
                HtlcDirection::Received
            },
            amount: self.amount,
            payment_hash: PaymentHash(self.payment_hash),
            cltv_expiry: self.cltv_expiry,
        }
    }
}

/// What a commitment transaction says, as Warden understood it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitmentContent {
    /// The commitment number.
    pub number: CommitmentNumber,
    /// The transaction's id.
    pub txid: Txid,
    /// The feerate the node stated.
    pub feerate: FeeratePerKw,
    /// The untrimmed HTLCs, in output order.
    pub htlcs: Vec<HtlcInfo>,
    /// The output index of each HTLC of `htlcs`.
    pub htlc_vouts: Vec<u32>,
    /// Our main output's value (zero when it is absent).
    pub to_holder: Sat,
    /// The peer's main output's value (zero when it is absent).
    pub to_counterparty: Sat,
}

/// A commitment of the peer that we signed, with the point it was built on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCounterpartyCommitment {
    /// What it says.
    pub content: CommitmentContent,
    /// The peer's per-commitment point of that commitment.
    pub point: PerCommitmentPoint,
}

/// One of our commitments that we validated, with the peer's signatures on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHolderCommitment {
    /// What it says.
    pub content: CommitmentContent,
    /// The peer's signature on the commitment (64-byte compact).
    pub counterparty_sig: [u8; 64],
    /// The peer's signatures on our HTLC transactions, in output order.
    pub htlc_sigs: Vec<[u8; 64]>,
}

/// Our side: the commitments we hold and can broadcast.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HolderSide {
    /// Commitments `0..next_number` were validated.
    pub next_number: u64,
    /// Commitments `0..revoked_below` were revoked.
    pub revoked_below: u64,
    /// The last validated commitment.
    pub current: Option<SignedHolderCommitment>,
    /// The lowest commitment number signed for broadcast, if any.
    pub broadcast_signed: Option<u64>,
}

/// The peer's side: the commitments we signed for the peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterpartySide {
    /// Commitments `0..next_number` were signed.
    pub next_number: u64,
    /// Commitments `0..revoked_below` were revoked by the peer (their secrets are stored).
    pub revoked_below: u64,
    /// The last commitment signed.
    pub current: Option<SignedCounterpartyCommitment>,
    /// The one before it (awaiting the peer's revocation).
    pub previous: Option<SignedCounterpartyCommitment>,
    /// The peer's revealed per-commitment secrets (BOLT-03 compact storage).
    pub secrets: SecretStore,
}

/// A splice candidate: a new funding output announced by a repeated `setup_channel` (one per
/// negotiated splice, or RBF attempt of one), with the commitments signed and validated on it.
///
/// While a splice is in flight Core Lightning's channeld signs and validates one commitment
/// per funding (the current one and each candidate) with the same number, point, HTLCs and
/// feerate; a candidate's balances are the current funding's commitment of that number plus
/// each side's relative amount. Revocations stay per number, across all fundings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpliceCandidate {
    /// The new funding outpoint.
    pub funding_outpoint: OutPoint,
    /// The new funding output's value.
    pub channel_value: Sat,
    /// The peer's funding key in the new 2-of-2.
    pub counterparty_funding_pubkey: FundingPubkey,
    /// What the splice adds to (positive) or takes from (negative) our balance, in satoshis.
    pub holder_relative: i64,
    /// What the splice adds to or takes from the peer's balance, in satoshis.
    pub counterparty_relative: i64,
    /// Our last commitment validated on this funding.
    pub holder: Option<SignedHolderCommitment>,
    /// The peer's last commitment signed on this funding.
    pub counterparty: Option<SignedCounterpartyCommitment>,
}

impl SpliceCandidate {
    /// The channel's setup as it reads on this funding: its outpoint, value and the peer's
    /// funding key in place of the current funding's, and the push moved by the peer's
    /// relative amount (so that commitment #0's checks read this funding's balances).
    pub fn setup_on(&self, setup: &ChannelSetup) -> ChannelSetup {
        let mut s = setup.clone();
        s.funding_outpoint = self.funding_outpoint;
        s.channel_value = self.channel_value;
        s.counterparty_funding_pubkey = self.counterparty_funding_pubkey;
        let push = i128::from(s.push_value.0) + i128::from(self.counterparty_relative) * 1000;
        s.push_value = Msat(u64::try_from(push.max(0)).unwrap_or(u64::MAX));
        s
    }
}

/// Everything Warden remembers of one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelState {
    /// Which channel.
    pub slot: ChannelSlot,
    /// The parameters, once `setup_channel` arrived (`None` for a channel only announced by
    /// `new_channel`).
    pub setup: Option<ChannelSetup>,
    /// Our commitments.
    pub holder: HolderSide,
    /// The peer's commitments.
    pub counterparty: CounterpartySide,
    /// Whether we signed a mutual close.
    pub mutual_close_signed: bool,
    /// Splice candidates: new funding outputs announced by repeated `setup_channel`s and not
    /// locked in yet (empty when no splice is in flight).
    pub splices: Vec<SpliceCandidate>,
    /// Whether Warden has chain evidence that the funding output is spent: onchaind asked for
    /// the sweep of an output of one of the channel's commitments, which exists only once a
    /// commitment is on chain (`commitment-funding-spent`).
    pub funding_spent: bool,
}

/// The most splice candidates (RBF attempts of splices in flight) a channel keeps.
pub const MAX_SPLICE_CANDIDATES: usize = 16;

/// Each side's relative amount of a splice from its `setup_channel` (see
/// [`ChannelState::apply_setup`]): `(ours, the peer's)` in satoshis.
fn splice_relatives(old: &ChannelSetup, new: &ChannelSetup) -> Result<(i64, i64), PolicyError> {
    let old_value = i128::from(old.channel_value.0);
    let new_value = i128::from(new.channel_value.0);
    let delta = new_value - old_value;
    let push = new.push_value.0;
    // The channeld read: the other side's relative satoshis, raw (a negative one wrapped).
    let raw = i128::from(push as i64);
    let counterparty = if (-old_value..=new_value).contains(&raw) {
        raw
    } else if push % 1000 == 0 && i128::from(push / 1000) <= new_value {
        // The fundee's relative amount in millisatoshis.
        let fundee = i128::from(push / 1000);
        if new.is_outbound {
            fundee
        } else {
            delta - fundee
        }
    } else {
        return Err(PolicyError::new(
            Rule::CommitmentBalance,
            alloc::format!(
                "splice to {}: push value {push} is no relative amount of a {} channel",
                new.funding_outpoint,
                new.channel_value
            ),
        ));
    };
    let holder = delta - counterparty;
    let fits = |v: i128| i64::try_from(v).ok().filter(|_| v >= -old_value && v <= new_value);
    match (fits(holder), fits(counterparty)) {
        (Some(h), Some(c)) => Ok((h, c)),
        _ => Err(PolicyError::new(
            Rule::CommitmentBalance,
            alloc::format!(
                "splice to {}: relative amounts {holder} and {counterparty} sat do not fit a channel of {} then {}",
                new.funding_outpoint,
                old.channel_value,
                new.channel_value
            ),
        )),
    }
}

/// A commitment on a splice candidate against the current funding's commitment of the same
/// number: same number, HTLCs and feerate (commitment #0 states feerate 0 on the current
/// funding only). Balances and transaction differ.
fn same_but_funding(main: &CommitmentContent, new: &CommitmentContent) -> Result<(), PolicyError> {
    let n = new.number.get();
    ensure!(
        main.number == new.number,
        Rule::CommitmentNumber,
        "commitment {n} compared with commitment {} of the current funding",
        main.number
    );
    ensure!(
        main.htlcs == new.htlcs,
        Rule::CommitmentStructure,
        "commitment {n} on a splice carries other htlcs than on the current funding ({} vs {})",
        new.htlcs.len(),
        main.htlcs.len()
    );
    ensure!(
        main.feerate == new.feerate || (n == 0 && main.feerate.0 == 0),
        Rule::CommitmentStructure,
        "commitment {n} on a splice states feerate {}, on the current funding {}",
        new.feerate,
        main.feerate
    );
    Ok(())
}

/// The commitment number `n`, or `commitment-number` when it is beyond 48 bits.
pub(crate) fn number(n: u64) -> Result<CommitmentNumber, PolicyError> {
    CommitmentNumber::new(n)
        .map_err(|e| PolicyError::new(Rule::CommitmentNumber, alloc::format!("{e}")))
}

impl ChannelState {
    /// A channel announced by `new_channel`, not set up yet.
    pub fn new(slot: ChannelSlot) -> ChannelState {
        ChannelState {
            slot,
            setup: None,
            holder: HolderSide::default(),
            counterparty: CounterpartySide::default(),
            mutual_close_signed: false,
            splices: Vec::new(),
            funding_spent: false,
        }
    }

    /// The setup, or `channel-unknown` when the channel was never set up.
    pub fn setup(&self) -> Result<&ChannelSetup, PolicyError> {
        self.setup.as_ref().ok_or_else(|| {
            PolicyError::new(
                Rule::ChannelUnknown,
                alloc::format!("channel {} was never set up", self.slot.dbid),
            )
        })
    }

    /// Whether the channel is closing: a mutual close or one of our commitments was signed.
    pub fn is_closing(&self) -> bool {
        self.mutual_close_signed || self.holder.broadcast_signed.is_some()
    }

    fn ensure_open(&self) -> Result<(), PolicyError> {
        ensure!(
            !self.funding_spent,
            Rule::CommitmentFundingSpent,
            "channel {}: a commitment of it is on chain (onchaind swept its outputs), so its \
             funding output is spent: no new state is signed",
            self.slot.dbid
        );
        ensure!(
            !self.is_closing(),
            Rule::CommitmentChannelClosed,
            "channel {} is closing: no new state is signed",
            self.slot.dbid
        );
        Ok(())
    }

    /// Applies `setup_channel`. Before any commitment a repeated setup replaces the first
    /// (same keys, role and type). Once commitments exist, a repeated setup of the current
    /// funding outpoint changes nothing (Core Lightning's splice setups carry no shutdown
    /// scripts: the channel's stay), and a setup with another outpoint is a splice candidate
    /// (see [`SpliceCandidate`]; the same outpoint again must say the same).
    ///
    /// A splice's `push_value` is the peer's relative amount: the channeld read puts the
    /// other side's relative satoshis raw into that millisatoshi field (a negative amount
    /// wraps as a `u64`). A later fix (UNVERIFIED upstream) sends the fundee's relative amount
    /// times 1000; when the raw reading is impossible (beyond the new channel value) and the
    /// value reads as such, that reading is used. The split is checked again by every
    /// commitment on the candidate and by `sign_splice_tx` against what our wallet puts in or
    /// takes out.
    pub fn apply_setup(&mut self, setup: ChannelSetup) -> Result<(), PolicyError> {
        setup.channel_type()?;
        let Some(old) = &self.setup else {
            self.setup = Some(setup);
            return Ok(());
        };
        ensure!(
            old.counterparty_basepoints == setup.counterparty_basepoints
                && old.counterparty_funding_pubkey == setup.counterparty_funding_pubkey
                && old.is_outbound == setup.is_outbound
                && old.channel_type_features == setup.channel_type_features,
            Rule::ChannelUnknown,
            "setup of channel {} repeated with other keys, role or type",
            self.slot.dbid
        );
        if self.holder.next_number == 0 && self.counterparty.next_number == 0 {
            self.setup = Some(setup);
            return Ok(());
        }
        if setup.funding_outpoint == old.funding_outpoint {
            ensure!(
                setup.channel_value == old.channel_value,
                Rule::ChannelUnknown,
                "setup of channel {} repeated for its funding {} with another value ({}, not {})",
                self.slot.dbid,
                old.funding_outpoint,
                setup.channel_value,
                old.channel_value
            );
            return Ok(());
        }
        self.ensure_open()?;
        let (holder_relative, counterparty_relative) = splice_relatives(old, &setup)?;
        let candidate = SpliceCandidate {
            funding_outpoint: setup.funding_outpoint,
            channel_value: setup.channel_value,
            counterparty_funding_pubkey: setup.counterparty_funding_pubkey,
            holder_relative,
            counterparty_relative,
            holder: None,
            counterparty: None,
        };
        if let Some(known) =
            self.splices.iter().find(|c| c.funding_outpoint == setup.funding_outpoint)
        {
            ensure!(
                known.channel_value == candidate.channel_value
                    && known.holder_relative == holder_relative
                    && known.counterparty_relative == counterparty_relative,
                Rule::ChannelUnknown,
                "splice candidate {} of channel {} set up again with another value or split",
                setup.funding_outpoint,
                self.slot.dbid
            );
            return Ok(());
        }
        // Candidates on which no commitment was exchanged gave nothing out: a splice aborted
        // before its commitments (channeld never tells the signer) is dropped to make room.
        let mut splices = self.splices.clone();
        if splices.len() >= MAX_SPLICE_CANDIDATES {
            splices.retain(|c| c.holder.is_some() || c.counterparty.is_some());
        }
        ensure!(
            splices.len() < MAX_SPLICE_CANDIDATES,
            Rule::NodeLimits,
            "channel {} already has {} splice candidates",
            self.slot.dbid,
            self.splices.len()
        );
        splices.push(candidate);
        self.splices = splices;
        Ok(())
    }

    /// The index of the splice candidate at `outpoint`, if any.
    pub fn splice_index(&self, outpoint: &OutPoint) -> Option<usize> {
        self.splices.iter().position(|c| c.funding_outpoint == *outpoint)
    }

    /// Records that we signed the peer's commitment on splice candidate `index`
    /// (`sign_remote_commitment_tx` spending the candidate's outpoint). Its number must be the
    /// peer's current one on the current funding (the first commitment on a candidate re-signs
    /// that number; later updates sign the current funding first, then each candidate), with
    /// the same point, HTLCs and feerate. The same number on another funding is no retry; on
    /// the same funding it must be the same commitment (`commitment-retry-same`). Returns
    /// `false` for a retry (nothing changed). The balances are the policy's
    /// (`policy::balance::check_splice_balance`).
    pub fn sign_candidate_counterparty_commitment(
        &mut self,
        index: usize,
        commitment: SignedCounterpartyCommitment,
    ) -> Result<bool, PolicyError> {
        self.setup()?;
        let n = commitment.content.number.get();
        let candidate = self.candidate(index)?;
        if let Some(signed) =
            candidate.counterparty.as_ref().filter(|c| c.content.number.get() == n)
        {
            ensure!(
                *signed == commitment,
                Rule::CommitmentRetrySame,
                "the peer's commitment {n} on splice {} was already signed with other content or point",
                candidate.funding_outpoint
            );
            return Ok(false);
        }
        self.ensure_open()?;
        let main = self
            .counterparty
            .current
            .as_ref()
            .filter(|c| c.content.number.get() == n)
            .ok_or_else(|| {
                PolicyError::new(
                    Rule::CommitmentNumber,
                    alloc::format!(
                        "the peer's commitment {n} on splice {} is not the number signed last on the current funding ({})",
                        candidate.funding_outpoint,
                        self.counterparty.next_number.saturating_sub(1)
                    ),
                )
            })?;
        ensure!(
            main.point == commitment.point,
            Rule::CommitmentStructure,
            "the peer's commitment {n} on splice {} uses another point than on the current funding",
            candidate.funding_outpoint
        );
        same_but_funding(&main.content, &commitment.content)?;
        if let Some(c) = self.splices.get_mut(index) {
            c.counterparty = Some(commitment);
        }
        Ok(true)
    }

    /// Records that our commitment on splice candidate `index` was validated with the peer's
    /// signatures (`validate_commitment_tx` spending the candidate's outpoint): the same rules
    /// as [`ChannelState::sign_candidate_counterparty_commitment`], against our current
    /// commitment on the current funding.
    pub fn validate_candidate_holder_commitment(
        &mut self,
        index: usize,
        commitment: SignedHolderCommitment,
    ) -> Result<(), PolicyError> {
        self.setup()?;
        let n = commitment.content.number.get();
        let candidate = self.candidate(index)?;
        ensure!(
            n >= self.holder.revoked_below,
            Rule::CommitmentHolderRevoked,
            "our commitment {n} was already revoked"
        );
        if let Some(valid) = candidate.holder.as_ref().filter(|c| c.content.number.get() == n) {
            ensure!(
                valid.content == commitment.content,
                Rule::CommitmentRetrySame,
                "our commitment {n} on splice {} was already validated with other content",
                candidate.funding_outpoint
            );
            return Ok(());
        }
        self.ensure_open()?;
        let main = self
            .holder
            .current
            .as_ref()
            .filter(|c| c.content.number.get() == n)
            .ok_or_else(|| {
                PolicyError::new(
                    Rule::CommitmentNumber,
                    alloc::format!(
                        "our commitment {n} on splice {} is not the number validated last on the current funding ({})",
                        candidate.funding_outpoint,
                        self.holder.next_number.saturating_sub(1)
                    ),
                )
            })?;
        same_but_funding(&main.content, &commitment.content)?;
        if let Some(c) = self.splices.get_mut(index) {
            c.holder = Some(commitment);
        }
        Ok(())
    }

    /// Lock-in (`check_outpoint` / `lock_outpoint` naming a candidate, or the first update
    /// after both `splice_locked` spending one): the candidate at `outpoint` becomes the
    /// channel's funding, its commitments the current ones, and every other candidate is
    /// dropped. Returns `false` when nothing changes (the outpoint is the current funding or
    /// no candidate's). A candidate whose commitments of the current numbers were not both
    /// exchanged is refused (`onchain-funding-countersigned`).
    pub fn lock_funding(&mut self, outpoint: &OutPoint) -> Result<bool, PolicyError> {
        let setup = self.setup()?;
        if setup.funding_outpoint == *outpoint {
            return Ok(false);
        }
        let Some(index) = self.splice_index(outpoint) else { return Ok(false) };
        let candidate = self.candidate(index)?;
        let number_of = |c: Option<&CommitmentContent>| c.map(|c| c.number);
        let holder = candidate.holder.clone().filter(|c| {
            Some(c.content.number) == number_of(self.holder.current.as_ref().map(|m| &m.content))
        });
        let counterparty = candidate.counterparty.clone().filter(|c| {
            Some(c.content.number)
                == number_of(self.counterparty.current.as_ref().map(|m| &m.content))
        });
        let (Some(holder), Some(counterparty)) = (holder, counterparty) else {
            return Err(PolicyError::new(
                Rule::OnchainFundingCountersigned,
                alloc::format!(
                    "splice {outpoint} of channel {} locked before both current commitments were exchanged on it",
                    self.slot.dbid
                ),
            ));
        };
        let mut setup = setup.clone();
        setup.funding_outpoint = candidate.funding_outpoint;
        setup.channel_value = candidate.channel_value;
        setup.counterparty_funding_pubkey = candidate.counterparty_funding_pubkey;
        self.setup = Some(setup);
        self.holder.current = Some(holder);
        self.counterparty.current = Some(counterparty);
        self.splices.clear();
        Ok(true)
    }

    fn candidate(&self, index: usize) -> Result<&SpliceCandidate, PolicyError> {
        self.splices.get(index).ok_or_else(|| {
            PolicyError::new(
                Rule::ChannelUnknown,
                alloc::format!("channel {} has no splice candidate {index}", self.slot.dbid),
            )
        })
    }

    /// Records that our commitment `content.number` was validated with the peer's signatures
    /// (`validate_commitment_tx`).
    pub fn validate_holder_commitment(
        &mut self,
        commitment: SignedHolderCommitment,
    ) -> Result<(), PolicyError> {
        self.setup()?;
        let n = commitment.content.number.get();
        let h = &self.holder;
        if n.checked_add(1) == Some(h.next_number) {
            // A retry of the last validation: same content, same answer (the peer's signatures
            // of the first validation are kept).
            ensure!(
                n >= h.revoked_below,
                Rule::CommitmentHolderRevoked,
                "our commitment {n} was already revoked"
            );
            ensure!(
                h.current.as_ref().map(|c| &c.content) == Some(&commitment.content),
                Rule::CommitmentRetrySame,
                "our commitment {n} was already validated with other content"
            );
            return Ok(());
        }
        self.ensure_open()?;
        ensure!(
            n >= h.revoked_below,
            Rule::CommitmentHolderRevoked,
            "our commitment {n} was already revoked"
        );
        ensure!(
            n == h.next_number,
            Rule::CommitmentNumber,
            "our commitment {n} is not the next one ({})",
            h.next_number
        );
        ensure!(
            n <= h.revoked_below.saturating_add(1),
            Rule::CommitmentNumber,
            "our commitment {n} validated before commitment {} was revoked",
            n.saturating_sub(2)
        );
        self.holder.current = Some(commitment);
        self.holder.next_number = n.saturating_add(1);
        Ok(())
    }

    /// Checks that our commitment `n` may be revoked (`revoke_commitment_tx`) and records it.
    /// A repeated revocation of an already revoked number is accepted (same secret).
    pub fn revoke_holder_commitment(&mut self, n: u64) -> Result<(), PolicyError> {
        self.setup()?;
        if check_holder_revocation(&self.holder, n)? == Revocation::New {
            self.holder.revoked_below = n.saturating_add(1);
        }
        Ok(())
    }

    /// Checks that our commitment `n` may be signed for broadcast (`sign_commitment_tx`) and
    /// records it: from then on it is never revoked and no new state is signed.
    pub fn sign_holder_for_broadcast(&mut self, n: u64) -> Result<(), PolicyError> {
        self.setup()?;
        let h = &self.holder;
        ensure!(
            n >= h.revoked_below,
            Rule::SweepHolderRevoked,
            "our commitment {n} is revoked: broadcasting it would forfeit the channel"
        );
        ensure!(
            n < h.next_number,
            Rule::CommitmentNumber,
            "our commitment {n} was never validated"
        );
        self.holder.broadcast_signed = Some(h.broadcast_signed.map_or(n, |b| b.min(n)));
        Ok(())
    }

    /// Records that we signed the peer's commitment (`sign_remote_commitment_tx`). Returns
    /// `false` when it is a retry of the last one (nothing changed).
    pub fn sign_counterparty_commitment(
        &mut self,
        commitment: SignedCounterpartyCommitment,
    ) -> Result<bool, PolicyError> {
        self.setup()?;
        let n = commitment.content.number.get();
        let c = &self.counterparty;
        if n.checked_add(1) == Some(c.next_number) {
            ensure!(
                c.current.as_ref() == Some(&commitment),
                Rule::CommitmentRetrySame,
                "the peer's commitment {n} was already signed with other content or point"
            );
            return Ok(false);
        }
        self.ensure_open()?;
        ensure!(
            n == c.next_number,
            Rule::CommitmentNumber,
            "the peer's commitment {n} is not the next one ({})",
            c.next_number
        );
        ensure!(
            n < 2 || c.revoked_below >= n - 1,
            Rule::CommitmentNumber,
            "the peer's commitment {n} requested before commitment {} was revoked",
            n.saturating_sub(2)
        );
        let previous = self.counterparty.current.take();
        self.counterparty.previous = previous;
        self.counterparty.current = Some(commitment);
        self.counterparty.next_number = n.saturating_add(1);
        Ok(true)
    }

    /// The per-commitment point we signed the peer's commitment `n` with, if it is the current
    /// or the previous one.
    pub fn counterparty_point(&self, n: u64) -> Option<PerCommitmentPoint> {
        [&self.counterparty.current, &self.counterparty.previous]
            .into_iter()
            .flatten()
            .find(|c| c.content.number.get() == n)
            .map(|c| c.point)
    }

    /// Checks the peer's revocation of its commitment `n` (`validate_revocation`) and stores the
    /// secret.
    pub fn validate_counterparty_revocation<C: Signing>(
        &mut self,
        secp: &Secp256k1<C>,
        n: u64,
        secret: [u8; 32],
    ) -> Result<(), PolicyError> {
        self.setup()?;
        let point = self.counterparty_point(n);
        if let Some(secrets) = check_peer_revocation(secp, &self.counterparty, point, n, secret)? {
            self.counterparty.secrets = secrets;
            self.counterparty.revoked_below = n.saturating_add(1);
        }
        Ok(())
    }

    /// Records that we signed a mutual close: no new state is signed after it.
    pub fn sign_mutual_close(&mut self) -> Result<(), PolicyError> {
        self.setup()?;
        self.mutual_close_signed = true;
        Ok(())
    }
}
