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

use bitcoin::Txid;

use super::{ChannelSetup, ChannelSlot};
use crate::keys::PerCommitmentPoint;
use crate::policy::{ensure, PolicyError, Rule};
use crate::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing};
use crate::shachain::SecretStore;
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
}

fn number(n: u64) -> Result<CommitmentNumber, PolicyError> {
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
            !self.is_closing(),
            Rule::CommitmentChannelClosed,
            "channel {} is closing: no new state is signed",
            self.slot.dbid
        );
        Ok(())
    }

    /// Applies `setup_channel`. A repeated setup must be identical, except that a splice may
    /// move the channel to a new funding outpoint and value (validated by the splice rules).
    pub fn apply_setup(&mut self, setup: ChannelSetup) -> Result<(), PolicyError> {
        setup.channel_type()?;
        if let Some(old) = &self.setup {
            ensure!(
                old.counterparty_basepoints == setup.counterparty_basepoints
                    && old.counterparty_funding_pubkey == setup.counterparty_funding_pubkey
                    && old.is_outbound == setup.is_outbound
                    && old.channel_type_features == setup.channel_type_features,
                Rule::ChannelUnknown,
                "setup of channel {} repeated with other keys, role or type",
                self.slot.dbid
            );
        }
        self.setup = Some(setup);
        Ok(())
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
        let h = &self.holder;
        ensure!(
            h.broadcast_signed.is_none_or(|b| b > n),
            Rule::RevokeAfterBroadcast,
            "our commitment {n} was signed for broadcast and can no longer be revoked"
        );
        if n < h.revoked_below {
            return Ok(());
        }
        ensure!(
            n.checked_add(1).is_some_and(|next| next < h.next_number),
            Rule::RevokeNewCommitmentValidated,
            "our commitment {n} revoked before commitment {} was validated",
            n.saturating_add(1)
        );
        ensure!(
            n == h.revoked_below,
            Rule::CommitmentNumber,
            "revocation of our commitment {n} skips commitment {}",
            h.revoked_below
        );
        self.holder.revoked_below = n.saturating_add(1);
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
        let index = number(n)?.shachain_index();
        let c = &self.counterparty;
        if n < c.revoked_below {
            ensure!(
                c.secrets.get(index) == Some(secret),
                Rule::RevokePeerSecret,
                "the peer's commitment {n} was revoked with another secret"
            );
            return Ok(());
        }
        ensure!(
            n == c.revoked_below,
            Rule::CommitmentNumber,
            "revocation of the peer's commitment {n} skips commitment {}",
            c.revoked_below
        );
        ensure!(
            n.checked_add(1).is_some_and(|next| next < c.next_number),
            Rule::CommitmentNumber,
            "the peer revoked its commitment {n} before we signed its successor"
        );
        let key = SecretKey::from_slice(&secret).map_err(|_| {
            PolicyError::new(Rule::RevokePeerSecret, "the peer's secret is not a valid key")
        })?;
        let point = PublicKey::from_secret_key(secp, &key);
        ensure!(
            self.counterparty_point(n).map(|p| p.0) == Some(point),
            Rule::RevokePeerSecret,
            "the peer's secret for commitment {n} does not match the point we signed with"
        );
        let mut secrets = self.counterparty.secrets.clone();
        secrets.insert(index, secret).map_err(|e| {
            PolicyError::new(Rule::RevokePeerSecret, alloc::format!("the peer's secret: {e}"))
        })?;
        self.counterparty.secrets = secrets;
        self.counterparty.revoked_below = n.saturating_add(1);
        Ok(())
    }

    /// Records that we signed a mutual close: no new state is signed after it.
    pub fn sign_mutual_close(&mut self) -> Result<(), PolicyError> {
        self.setup()?;
        self.mutual_close_signed = true;
        Ok(())
    }
}
