//! The channel peer: its own seed, node id, channel keys (basepoints, funding key,
//! per-commitment secrets and points), and what it does with them: sign our commitment and
//! our HTLC transactions (as in `commitment_signed`), and build both commitments from its own
//! point of view.
//!
//! The peer derives its keys with warden-core exactly as a Core Lightning peer would (its
//! channel seed from its own secret, our node id and its database id for the channel).

use bitcoin::{ecdsa, NetworkKind};
use secp256k1::{All, Secp256k1};
use warden_core::keys::{
    bolt3, Basepoints, ChannelKeys, FundingPubkey, NodeId as CoreNodeId, NodeKeys,
    PerCommitmentPoint,
};
use warden_core::secret::{PerCommitmentSecret, PrivateKey, Seed};
use warden_core::sign::sign_hash_low_r;
use warden_core::tx::{
    BuiltCommitment, ChannelType, CommitmentKeys, CommitmentSpec, Htlc, HtlcDirection,
    ObscuringFactor, Party, PaymentHash,
};
use warden_core::units::{CommitmentNumber, Dbid, FeeratePerKw, Msat, Sat};

use crate::error::{scenario, BuildError};

/// A commitment number, refusing numbers of 2^48 and above.
pub(crate) fn commitment_number(n: u64) -> Result<CommitmentNumber, BuildError> {
    CommitmentNumber::new(n).map_err(|e| scenario(e.to_string()))
}

/// The channel peer and its keys for one channel.
#[derive(Debug)]
pub struct Peer {
    secp: Secp256k1<All>,
    node: NodeKeys,
    keys: ChannelKeys,
}

/// What the peer knows of the channel, in its own terms ("peer" = itself, "counterparty" =
/// our node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerView {
    /// The channel type.
    pub channel_type: ChannelType,
    /// The funding outpoint.
    pub funding_outpoint: bitcoin::OutPoint,
    /// The funding value.
    pub funding_value: Sat,
    /// Whether the peer opened (funded) the channel.
    pub peer_is_opener: bool,
    /// Our basepoints, as `open_channel`/`accept_channel` gave them.
    pub counterparty_basepoints: Basepoints,
    /// Our funding key.
    pub counterparty_funding: FundingPubkey,
    /// The delay the peer requires on our outputs (applies to our commitment).
    pub delay_on_counterparty: u16,
    /// The delay we require on the peer's outputs (applies to its commitment).
    pub delay_on_peer: u16,
    /// The peer's dust limit (its commitment).
    pub peer_dust_limit: Sat,
    /// Our dust limit (our commitment).
    pub counterparty_dust_limit: Sat,
}

/// One HTLC as the peer tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerHtlc {
    /// Whether the peer offered it.
    pub offered_by_peer: bool,
    /// Its amount.
    pub amount: Msat,
    /// Its payment hash.
    pub payment_hash: PaymentHash,
    /// Its CLTV expiry.
    pub cltv_expiry: u32,
}

/// The content of one commitment as the peer tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerState {
    /// The peer's balance.
    pub to_peer: Msat,
    /// Our balance.
    pub to_counterparty: Msat,
    /// The feerate.
    pub feerate: FeeratePerKw,
    /// The HTLCs, in the order both sides agree on (the order of addition).
    pub htlcs: Vec<PeerHtlc>,
}

impl Peer {
    /// The peer with secret `seed` (a 32-byte legacy `hsm_secret`) for channel `dbid` with
    /// the node `counterparty`.
    pub fn new(seed: [u8; 32], counterparty: &CoreNodeId, dbid: u64) -> Result<Peer, BuildError> {
        let secp = Secp256k1::new();
        let node = NodeKeys::derive(&secp, &Seed::from_legacy(seed), NetworkKind::Test)
            .map_err(|e| scenario(format!("peer node keys: {e}")))?;
        let keys = node
            .channel_keys(counterparty, Dbid(dbid))
            .map_err(|e| scenario(format!("peer channel keys: {e}")))?;
        Ok(Peer { secp, node, keys })
    }

    /// The peer's node id.
    pub fn node_id(&self) -> CoreNodeId {
        self.node.node_id()
    }

    /// The peer's node id as hsmd messages carry it.
    pub fn wire_node_id(&self) -> warden_wire::NodeId {
        warden_wire::NodeId::from(self.node.node_id().to_public_key())
    }

    /// The peer's basepoints.
    pub fn basepoints(&self) -> Basepoints {
        self.keys.basepoints(&self.secp)
    }

    /// The peer's funding key.
    pub fn funding_pubkey(&self) -> FundingPubkey {
        self.keys.funding_pubkey(&self.secp)
    }

    /// The peer's channel keys.
    pub fn keys(&self) -> &ChannelKeys {
        &self.keys
    }

    /// The peer's per-commitment point `n`.
    pub fn per_commitment_point(&self, n: u64) -> Result<PerCommitmentPoint, BuildError> {
        self.keys
            .per_commitment_point(&self.secp, commitment_number(n)?)
            .map_err(|e| scenario(e.to_string()))
    }

    /// The peer's per-commitment secret `n` (revealed in `revoke_and_ack`).
    pub fn per_commitment_secret(&self, n: u64) -> Result<PerCommitmentSecret, BuildError> {
        Ok(self.keys.per_commitment_secret(commitment_number(n)?))
    }

    /// The peer's signature on our commitment (`commitment_signed.signature`).
    pub fn sign_commitment(&self, ours: &BuiltCommitment) -> Result<ecdsa::Signature, BuildError> {
        let digest = ours.sighash()?;
        let signature = sign_hash_low_r(&self.secp, self.keys.funding_key(), digest.as_ref());
        Ok(ecdsa::Signature::sighash_all(signature))
    }

    /// The peer's signatures on the HTLC transactions of our commitment, in output order
    /// (`commitment_signed.htlc_signature`): its HTLC key for our per-commitment point,
    /// `SIGHASH_ALL`, or `SIGHASH_SINGLE|ANYONECANPAY` with anchors.
    pub fn sign_htlc_txs(
        &self,
        ours: &BuiltCommitment,
    ) -> Result<Vec<ecdsa::Signature>, BuildError> {
        let key = self.htlc_key(&ours.keys.per_commitment_point)?;
        let mut sigs = Vec::new();
        for htlc_tx in ours.htlc_txs()? {
            let digest = htlc_tx.countersignatory_sighash()?;
            let signature = sign_hash_low_r(&self.secp, &key, digest.as_ref());
            sigs.push(ecdsa::Signature {
                signature,
                sighash_type: htlc_tx.countersignatory_sighash_type(),
            });
        }
        Ok(sigs)
    }

    /// The peer's HTLC private key on the commitment with `point`.
    pub fn htlc_key(&self, point: &PerCommitmentPoint) -> Result<PrivateKey, BuildError> {
        Ok(bolt3::derive_private_key(&self.secp, self.keys.htlc_basepoint_secret(), point)?)
    }

    fn obscuring(&self, view: &PeerView) -> ObscuringFactor {
        let ours = self.basepoints().payment;
        let theirs = view.counterparty_basepoints.payment;
        if view.peer_is_opener {
            ObscuringFactor::from_payment_basepoints(&ours, &theirs)
        } else {
            ObscuringFactor::from_payment_basepoints(&theirs, &ours)
        }
    }

    /// Our commitment `n` as the peer builds it to sign it: we broadcast, with our
    /// per-commitment point `counterparty_point`.
    pub fn counterparty_commitment(
        &self,
        view: &PeerView,
        n: u64,
        counterparty_point: &PerCommitmentPoint,
        state: &PeerState,
    ) -> Result<BuiltCommitment, BuildError> {
        let keys = CommitmentKeys::derive(
            &self.secp,
            counterparty_point,
            &view.counterparty_basepoints,
            &self.basepoints(),
        )?;
        let spec = CommitmentSpec {
            channel_type: view.channel_type,
            funding_outpoint: view.funding_outpoint,
            funding_value: view.funding_value,
            broadcaster_funding_pubkey: view.counterparty_funding,
            countersignatory_funding_pubkey: self.funding_pubkey(),
            obscuring_factor: self.obscuring(view),
            commitment_number: commitment_number(n)?,
            keys,
            to_self_delay: view.delay_on_counterparty,
            dust_limit: view.counterparty_dust_limit,
            feerate: state.feerate,
            opener: if view.peer_is_opener { Party::Countersignatory } else { Party::Broadcaster },
            to_broadcaster: state.to_counterparty,
            to_countersignatory: state.to_peer,
            htlcs: htlcs(state, false),
        };
        Ok(spec.build()?)
    }

    /// The peer's own commitment `n` (it broadcasts).
    pub fn own_commitment(
        &self,
        view: &PeerView,
        n: u64,
        state: &PeerState,
    ) -> Result<BuiltCommitment, BuildError> {
        let keys = CommitmentKeys::derive(
            &self.secp,
            &self.per_commitment_point(n)?,
            &self.basepoints(),
            &view.counterparty_basepoints,
        )?;
        let spec = CommitmentSpec {
            channel_type: view.channel_type,
            funding_outpoint: view.funding_outpoint,
            funding_value: view.funding_value,
            broadcaster_funding_pubkey: self.funding_pubkey(),
            countersignatory_funding_pubkey: view.counterparty_funding,
            obscuring_factor: self.obscuring(view),
            commitment_number: commitment_number(n)?,
            keys,
            to_self_delay: view.delay_on_peer,
            dust_limit: view.peer_dust_limit,
            feerate: state.feerate,
            opener: if view.peer_is_opener { Party::Broadcaster } else { Party::Countersignatory },
            to_broadcaster: state.to_peer,
            to_countersignatory: state.to_counterparty,
            htlcs: htlcs(state, true),
        };
        Ok(spec.build()?)
    }
}

/// The HTLCs of `state` from the view of a broadcaster that is the peer (`peer_broadcasts`)
/// or us.
fn htlcs(state: &PeerState, peer_broadcasts: bool) -> Vec<Htlc> {
    state
        .htlcs
        .iter()
        .map(|h| Htlc {
            direction: if h.offered_by_peer == peer_broadcasts {
                HtlcDirection::Offered
            } else {
                HtlcDirection::Received
            },
            amount: h.amount,
            payment_hash: h.payment_hash,
            cltv_expiry: h.cltv_expiry,
        })
        .collect()
}
