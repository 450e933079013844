//! A model of one channel as lightningd and its subdaemons track it, and the exact hsmd
//! requests they send at each protocol step.
//!
//! The model holds the channel's fixed parameters ([`ChannelParams`]), the content of both
//! current commitments ([`CommitState`]: balances, feerate, HTLCs), and both commitment
//! numbers. Every transaction is built with warden-core's BOLT-03 builders. Each request
//! builder returns the request and, for signing requests, what the signature must verify
//! against ([`Expected`]); nothing here does I/O ([`crate::flows`] sends the requests).
//!
//! Core Lightning facts the requests follow:
//! - `hsm_htlc` lists (`sign_remote_commitment_tx`, `validate_commitment_tx`): the untrimmed
//!   HTLCs of that commitment, in output order (channeld walks its `htlc_map`), `side` = who
//!   offered the HTLC from our node's view (`htlc_state_owner`: `LOCAL` if we offered it),
//!   whatever the commitment.
//! - Commitment #0 (openingd `funder_finalize_channel_setup` / `fundee_channel`, dualopend
//!   `msg_for_remote_commit`, `validate_initial_commitment_signature` in
//!   `openingd/common.c`): no HTLCs and **feerate 0** ("unused since there are no htlcs").
//! - `setup_channel.local_to_self_delay` is `localconf.to_self_delay`: the delay *we* require,
//!   which applies to the peer's commitment (CLN's `channel_config.to_self_delay` is "the
//!   number of blocks that the other node's to-self outputs must be delayed");
//!   `remote_to_self_delay` applies to our commitment.
//! - `revoke_commitment_tx(n)` answers the secret of `n` and our point `n + 2`;
//!   `validate_commitment_tx(n)` answers our point `n + 1` (and, since wire version 5, no old
//!   secret).

use bitcoin::hashes::{sha256, Hash};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{CompressedPublicKey, NetworkKind, OutPoint, ScriptBuf, Sequence, TxOut};
use secp256k1::{All, Message as Digest, PublicKey, Secp256k1};
use warden_core::keys::{
    Basepoints, ChannelKeys, FundingPubkey, NodeId as CoreNodeId, NodeKeys, PerCommitmentPoint,
};
use warden_core::secret::Seed;
use warden_core::tx::{
    build_closing_tx, sweep, BuiltClosing, BuiltCommitment, ChannelType, ClosingOutput,
    ClosingSpec, CommitmentKeys, CommitmentOutputKind, CommitmentSpec, Htlc, HtlcDirection, HtlcTx,
    ObscuringFactor, Party, PaymentHash, PaymentPreimage, SpendFee, SpendTemplate,
};
use warden_core::units::{Dbid, FeeratePerKw, Msat, Sat};
use warden_wire::msg::*;
use warden_wire::{AmountMsat, HsmHtlc, HsmUtxo, Secret, Side, WirePsbt};

use crate::error::{scenario, BuildError, VerifyError};
use crate::peer::{commitment_number, Peer, PeerHtlc, PeerState, PeerView};
use crate::verify::{bitcoin_tx, check_eq, p2wsh_spent, psbt_for, SpentOutput};

/// Who opened (and funded) the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Funder {
    /// We did (`fundchannel`).
    Us,
    /// The peer did.
    Them,
}

/// One side of the channel, from our node's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Who {
    /// Our node.
    Us,
    /// The peer.
    Them,
}

impl Who {
    /// The other side.
    pub fn other(self) -> Who {
        match self {
            Who::Us => Who::Them,
            Who::Them => Who::Us,
        }
    }
}

/// The fixed parameters of a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelParams {
    /// The channel type (both include `option_static_remotekey`).
    pub channel_type: ChannelType,
    /// Who funds.
    pub funder: Funder,
    /// The channel's capacity.
    pub funding: Sat,
    /// What the funder pushes to the other side.
    pub push: Msat,
    /// CLN `localconf.to_self_delay`: the delay we require, on the peer's commitment.
    pub local_to_self_delay: u16,
    /// CLN `remoteconf.to_self_delay`: the delay the peer requires, on our commitment.
    pub remote_to_self_delay: u16,
    /// Our dust limit (our commitment).
    pub local_dust_limit: Sat,
    /// The peer's dust limit (its commitment).
    pub remote_dust_limit: Sat,
    /// The initial feerate of both commitments.
    pub feerate: FeeratePerKw,
    /// The channel's database id.
    pub dbid: u64,
    /// The funding outpoint.
    pub funding_outpoint: OutPoint,
}

impl ChannelParams {
    /// Parameters with distinct values on each side (so that a swapped delay or dust limit
    /// changes the transactions): 1,000,000 sat, 100,000 sat pushed, delays 144 (ours) and
    /// 720 (theirs), dust limits 546 and 354 sat, 2,500 sat/kw.
    pub fn new(channel_type: ChannelType, funder: Funder) -> ChannelParams {
        let txid = bitcoin::Txid::from_byte_array(
            sha256::Hash::hash(b"warden-testkit funding").to_byte_array(),
        );
        ChannelParams {
            channel_type,
            funder,
            funding: Sat(1_000_000),
            push: Msat(100_000_000),
            local_to_self_delay: 144,
            remote_to_self_delay: 720,
            local_dust_limit: Sat(546),
            remote_dust_limit: Sat(354),
            feerate: FeeratePerKw(2_500),
            dbid: 1,
            funding_outpoint: OutPoint { txid, vout: 1 },
        }
    }

    /// The BOLT-09 `channel_type` bitmap lightningd sends: `static_remotekey` (bit 12), and
    /// `anchors_zero_fee_htlc_tx` (bit 22) with it.
    pub fn wire_channel_type(&self) -> warden_wire::ChannelType {
        match self.channel_type {
            ChannelType::StaticRemoteKey => warden_wire::ChannelType(vec![0x10, 0x00]),
            ChannelType::AnchorsZeroFeeHtlc => warden_wire::ChannelType(vec![0x40, 0x10, 0x00]),
            // Bit 140 (LDK's staging bit): 18 bytes, the first one 0x10.
            ChannelType::ZeroFeeCommitments => {
                let mut bits = vec![0x10];
                bits.resize(18, 0);
                warden_wire::ChannelType(bits)
            }
        }
    }
}

/// One HTLC in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelHtlc {
    /// lightningd's HTLC id (unique per channel in the model).
    pub id: u64,
    /// Who offered it.
    pub offerer: Who,
    /// Its amount.
    pub amount: Msat,
    /// Its preimage (the model knows every preimage; a side uses it only when it may).
    pub preimage: [u8; 32],
    /// Its CLTV expiry.
    pub cltv_expiry: u32,
}

impl ModelHtlc {
    /// The payment hash.
    pub fn payment_hash(&self) -> PaymentHash {
        PaymentHash(sha256::Hash::hash(&self.preimage).to_byte_array())
    }
}

/// The content of one commitment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitState {
    /// Our balance (HTLCs excluded, before fee and anchors).
    pub to_us: Msat,
    /// The peer's balance.
    pub to_them: Msat,
    /// The feerate.
    pub feerate: FeeratePerKw,
    /// The HTLCs in flight, in order of addition.
    pub htlcs: Vec<ModelHtlc>,
}

/// One update, as `update_add_htlc`, `update_fulfill_htlc`, `update_fail_htlc` or
/// `update_fee` carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new HTLC.
    Add(ModelHtlc),
    /// The HTLC with this id is fulfilled (its amount goes to the receiver).
    Fulfill(u64),
    /// The HTLC with this id fails (its amount goes back to the offerer).
    Fail(u64),
    /// A new feerate (from the opener).
    Fee(FeeratePerKw),
}

fn balance_mut(state: &mut CommitState, who: Who) -> &mut Msat {
    match who {
        Who::Us => &mut state.to_us,
        Who::Them => &mut state.to_them,
    }
}

impl CommitState {
    /// The state after `changes`.
    pub fn apply(&self, changes: &[Change]) -> Result<CommitState, BuildError> {
        let mut next = self.clone();
        for change in changes {
            match *change {
                Change::Add(h) => {
                    let bal = balance_mut(&mut next, h.offerer);
                    *bal = bal
                        .checked_sub(h.amount)
                        .ok_or_else(|| scenario(format!("cannot afford htlc {}", h.id)))?;
                    next.htlcs.push(h);
                }
                Change::Fulfill(id) | Change::Fail(id) => {
                    let pos = next
                        .htlcs
                        .iter()
                        .position(|h| h.id == id)
                        .ok_or_else(|| scenario(format!("no htlc {id}")))?;
                    let h = next.htlcs.remove(pos);
                    let to = if matches!(change, Change::Fulfill(_)) {
                        h.offerer.other()
                    } else {
                        h.offerer
                    };
                    let bal = balance_mut(&mut next, to);
                    *bal = bal.checked_add(h.amount).ok_or_else(|| scenario("overflow"))?;
                }
                Change::Fee(f) => next.feerate = f,
            }
        }
        Ok(next)
    }
}

/// A splice in flight, as channeld tracks it (`struct inflight`): the new funding outpoint and
/// value, each side's relative amount, and the splice transaction (its first input spends the
/// current funding output, its first output is the new one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splice {
    /// The new funding outpoint.
    pub outpoint: OutPoint,
    /// The new funding output's value.
    pub value: Sat,
    /// What the splice adds to (or takes from) our balance, in satoshis.
    pub our_relative: i64,
    /// What it adds to or takes from the peer's.
    pub their_relative: i64,
    /// The splice transaction (unsigned).
    pub tx: bitcoin::Transaction,
    /// What each of its inputs spends.
    pub spent: Vec<SpentOutput>,
    /// Our wallet UTXO it spends (a splice-in) and the key that signs it.
    pub wallet_input: Option<(HsmUtxo, PublicKey)>,
}

impl CommitState {
    /// This commitment's content on splice `splice`: the same HTLCs and feerate, each balance
    /// moved by its side's relative amount (channeld's `channel_txs` with `splice_amnt`).
    pub fn spliced(&self, splice: &Splice) -> Result<CommitState, BuildError> {
        let moved = |v: Msat, rel: i64| -> Result<Msat, BuildError> {
            let msat = i128::from(v.0) + i128::from(rel) * 1000;
            u64::try_from(msat)
                .map(Msat)
                .map_err(|_| scenario("a splice takes more than a balance"))
        };
        Ok(CommitState {
            to_us: moved(self.to_us, splice.our_relative)?,
            to_them: moved(self.to_them, splice.their_relative)?,
            feerate: self.feerate,
            htlcs: self.htlcs.clone(),
        })
    }
}

/// What a signature hsmd returns must verify against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The BIP-0143 sighash.
    pub digest: Digest,
    /// The key that must have signed.
    pub key: PublicKey,
    /// The sighash type the signature must carry.
    pub sighash_type: EcdsaSighashType,
}

/// A signing request and what its signature must verify against.
#[derive(Clone, Debug)]
pub struct Signing<M> {
    /// The request.
    pub request: M,
    /// The expected signature.
    pub expect: Expected,
}

/// A wallet input of a PSBT hsmd must sign: P2WPKH, `SIGHASH_ALL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletInput {
    /// Its index in the PSBT.
    pub input: usize,
    /// What the signature must verify against.
    pub expect: Expected,
}

/// A PSBT signing request (`sign_anchorspend`, `sign_htlc_tx_mingle`): the request, the
/// channel input hsmd signs with a channel key (if any), and the wallet inputs.
#[derive(Clone, Debug)]
pub struct PsbtSigning<M> {
    /// The request.
    pub request: M,
    /// The unsigned transaction of the PSBT (hsmd must return it unchanged).
    pub tx: bitcoin::Transaction,
    /// The channel input (index, expected signature), if hsmd signs one.
    pub channel_input: Option<(usize, Expected)>,
    /// The wallet inputs.
    pub wallet_inputs: Vec<WalletInput>,
}

/// One channel, as lightningd tracks it, with the peer.
#[derive(Debug)]
pub struct Channel {
    secp: Secp256k1<All>,
    params: ChannelParams,
    our_node: NodeKeys,
    our_keys: ChannelKeys,
    peer: Peer,
    /// The content of our current commitment.
    pub local: CommitState,
    /// The content of the peer's current commitment.
    pub remote: CommitState,
    /// The number of our current commitment.
    pub local_num: u64,
    /// The number of the peer's current commitment.
    pub remote_num: u64,
    /// The peer's last revoked commitment (its number and content), for penalties.
    pub revoked_remote: Option<(u64, CommitState)>,
    /// Splices negotiated and not locked in yet (channeld's inflights), in order.
    pub splices: Vec<Splice>,
    next_htlc_id: u64,
}

impl Channel {
    /// A channel between our node (legacy 32-byte `hsm_secret` `our_secret`) and a peer with
    /// secret `peer_secret`, before any commitment.
    pub fn new(
        params: ChannelParams,
        our_secret: [u8; 32],
        peer_secret: [u8; 32],
    ) -> Result<Channel, BuildError> {
        let secp = Secp256k1::new();
        let our_node = NodeKeys::derive(&secp, &Seed::from_legacy(our_secret), NetworkKind::Test)
            .map_err(|e| scenario(format!("our node keys: {e}")))?;
        let peer = Peer::new(peer_secret, &our_node.node_id(), params.dbid)?;
        let our_keys = our_node
            .channel_keys(&peer.node_id(), Dbid(params.dbid))
            .map_err(|e| scenario(format!("our channel keys: {e}")))?;
        let total = params.funding.to_msat().ok_or_else(|| scenario("funding overflow"))?;
        let funder_balance =
            total.checked_sub(params.push).ok_or_else(|| scenario("push above funding"))?;
        let (to_us, to_them) = match params.funder {
            Funder::Us => (funder_balance, params.push),
            Funder::Them => (params.push, funder_balance),
        };
        let state = CommitState { to_us, to_them, feerate: params.feerate, htlcs: Vec::new() };
        Ok(Channel {
            secp,
            params,
            our_node,
            our_keys,
            peer,
            local: state.clone(),
            remote: state,
            local_num: 0,
            remote_num: 0,
            revoked_remote: None,
            splices: Vec::new(),
            next_htlc_id: 0,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &ChannelParams {
        &self.params
    }

    /// The peer.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Our channel keys (what hsmd derives for this channel; tests use them to stand in for
    /// hsmd).
    pub fn our_keys(&self) -> &ChannelKeys {
        &self.our_keys
    }

    /// Our node keys.
    pub fn our_node_keys(&self) -> &NodeKeys {
        &self.our_node
    }

    /// The secp256k1 context.
    pub fn secp(&self) -> &Secp256k1<All> {
        &self.secp
    }

    /// Our node id (what hsmd's `init` must answer).
    pub fn our_id(&self) -> warden_wire::NodeId {
        warden_wire::NodeId::from(self.our_node.node_id().to_public_key())
    }

    /// Our node id as warden-core's type.
    pub fn our_core_id(&self) -> CoreNodeId {
        self.our_node.node_id()
    }

    /// The peer's node id.
    pub fn peer_id(&self) -> warden_wire::NodeId {
        self.peer.wire_node_id()
    }

    /// Our basepoints (as hsmd derives them).
    pub fn our_basepoints(&self) -> Basepoints {
        self.our_keys.basepoints(&self.secp)
    }

    /// Our funding key.
    pub fn our_funding(&self) -> FundingPubkey {
        self.our_keys.funding_pubkey(&self.secp)
    }

    /// Our per-commitment point `n`.
    pub fn our_point(&self, n: u64) -> Result<PerCommitmentPoint, BuildError> {
        self.our_keys
            .per_commitment_point(&self.secp, commitment_number(n)?)
            .map_err(|e| scenario(e.to_string()))
    }

    /// A P2WPKH script of our wallet key `m/0/0/index` (sweep and close destinations).
    /// P2TR (BIP-0086 tweak, no script tree) of our wallet key `m/0/0/index`, as lightningd
    /// pays anchor-spend change (`scriptpubkey_p2tr(bip32_pubkey(final_key_idx))`).
    pub fn wallet_p2tr_script(&self, index: u32) -> Result<ScriptBuf, BuildError> {
        let key = self
            .our_node
            .wallet()
            .bitcoin_key(&self.secp, index)
            .map_err(|e| scenario(format!("wallet key: {e}")))?;
        let (xonly, _) = key.public_key(&self.secp).x_only_public_key();
        Ok(ScriptBuf::new_p2tr(&self.secp, xonly, None))
    }

    /// P2WPKH of our wallet key `m/0/0/index`.
    pub fn wallet_script(&self, index: u32) -> Result<ScriptBuf, BuildError> {
        let key = self
            .our_node
            .wallet()
            .bitcoin_key(&self.secp, index)
            .map_err(|e| scenario(format!("wallet key: {e}")))?;
        let pk = CompressedPublicKey(key.public_key(&self.secp));
        Ok(ScriptBuf::new_p2wpkh(&pk.wpubkey_hash()))
    }

    /// Allocates a new HTLC id.
    pub fn new_htlc(
        &mut self,
        offerer: Who,
        amount: Msat,
        preimage: [u8; 32],
        cltv: u32,
    ) -> ModelHtlc {
        let id = self.next_htlc_id;
        self.next_htlc_id += 1;
        ModelHtlc { id, offerer, amount, preimage, cltv_expiry: cltv }
    }

    /// The sighash type hsmd uses for our signatures on HTLC transactions and HTLC claims
    /// (`do_sign_local_htlc_tx`, `do_sign_remote_htlc_to_us` in `hsmd/libhsmd.c`):
    /// `SIGHASH_SINGLE|ANYONECANPAY` with anchors (so lightningd can add fee inputs
    /// afterwards), `SIGHASH_ALL` otherwise.
    pub fn htlc_sighash_type(&self) -> EcdsaSighashType {
        if self.params.channel_type.has_anchors() {
            EcdsaSighashType::SinglePlusAnyoneCanPay
        } else {
            EcdsaSighashType::All
        }
    }

    /// A wallet UTXO of `value` at key index `index` (P2WPKH of `m/0/0/index`), at an
    /// outpoint made from `tag`: the `hsm_utxo` lightningd sends, the spent output for the
    /// PSBT, and the key that must sign it.
    pub fn wallet_utxo(
        &self,
        index: u32,
        value: Sat,
        tag: &[u8],
    ) -> Result<(HsmUtxo, SpentOutput, PublicKey), BuildError> {
        let key = self
            .our_node
            .wallet()
            .bitcoin_key(&self.secp, index)
            .map_err(|e| scenario(format!("wallet key: {e}")))?
            .public_key(&self.secp);
        let script = self.wallet_script(index)?;
        let outpoint = OutPoint {
            txid: bitcoin::Txid::from_byte_array(sha256::Hash::hash(tag).to_byte_array()),
            vout: 0,
        };
        let utxo = HsmUtxo {
            outpoint,
            amount: value.to_amount(),
            keyindex: index,
            legacy_is_p2sh: false,
            script_pubkey: script.clone(),
            close_info: None,
            legacy_is_in_coinbase: false,
        };
        let spent = SpentOutput {
            txout: TxOut { value: value.to_amount(), script_pubkey: script },
            witness_script: None,
        };
        Ok((utxo, spent, key))
    }

    fn obscuring(&self) -> ObscuringFactor {
        let ours = self.our_basepoints().payment;
        let theirs = self.peer.basepoints().payment;
        match self.params.funder {
            Funder::Us => ObscuringFactor::from_payment_basepoints(&ours, &theirs),
            Funder::Them => ObscuringFactor::from_payment_basepoints(&theirs, &ours),
        }
    }

    fn core_htlcs(state: &CommitState, broadcaster: Who) -> Vec<Htlc> {
        state
            .htlcs
            .iter()
            .map(|h| Htlc {
                direction: if h.offerer == broadcaster {
                    HtlcDirection::Offered
                } else {
                    HtlcDirection::Received
                },
                amount: h.amount,
                payment_hash: h.payment_hash(),
                cltv_expiry: h.cltv_expiry,
            })
            .collect()
    }

    /// Our commitment `n` with content `state`.
    pub fn our_commitment(
        &self,
        n: u64,
        state: &CommitState,
    ) -> Result<BuiltCommitment, BuildError> {
        self.our_commitment_on(n, state, None)
    }

    /// Our commitment `n` with content `state` on the current funding, or on splice `splice`.
    pub fn our_commitment_on(
        &self,
        n: u64,
        state: &CommitState,
        splice: Option<&Splice>,
    ) -> Result<BuiltCommitment, BuildError> {
        self.commitment_on(Who::Us, n, state, splice)
    }

    /// The peer's commitment `n` with content `state`.
    pub fn their_commitment(
        &self,
        n: u64,
        state: &CommitState,
    ) -> Result<BuiltCommitment, BuildError> {
        self.their_commitment_on(n, state, None)
    }

    /// The peer's commitment `n` with content `state` on the current funding, or on splice
    /// `splice`.
    pub fn their_commitment_on(
        &self,
        n: u64,
        state: &CommitState,
        splice: Option<&Splice>,
    ) -> Result<BuiltCommitment, BuildError> {
        self.commitment_on(Who::Them, n, state, splice)
    }

    /// `broadcaster`'s commitment `n` with content `state` (balances as we see them) on the
    /// current funding, or on splice `splice`.
    fn commitment_on(
        &self,
        broadcaster: Who,
        n: u64,
        state: &CommitState,
        splice: Option<&Splice>,
    ) -> Result<BuiltCommitment, BuildError> {
        let (funding_outpoint, funding_value) = self.funding_of(splice);
        let ours = broadcaster == Who::Us;
        let (point, local, remote) = match broadcaster {
            Who::Us => (self.our_point(n)?, self.our_basepoints(), self.peer.basepoints()),
            Who::Them => {
                (self.peer.per_commitment_point(n)?, self.peer.basepoints(), self.our_basepoints())
            }
        };
        let keys = CommitmentKeys::derive(&self.secp, &point, &local, &remote)?;
        let (our_funding, their_funding) = (self.our_funding(), self.peer.funding_pubkey());
        let we_open = self.params.funder == Funder::Us;
        let spec = CommitmentSpec {
            channel_type: self.params.channel_type,
            funding_outpoint,
            funding_value,
            broadcaster_funding_pubkey: if ours { our_funding } else { their_funding },
            countersignatory_funding_pubkey: if ours { their_funding } else { our_funding },
            obscuring_factor: self.obscuring(),
            commitment_number: commitment_number(n)?,
            keys,
            // The broadcaster's outputs wait the delay the other side chose.
            to_self_delay: if ours {
                self.params.remote_to_self_delay
            } else {
                self.params.local_to_self_delay
            },
            dust_limit: if ours {
                self.params.local_dust_limit
            } else {
                self.params.remote_dust_limit
            },
            feerate: state.feerate,
            opener: if we_open == ours { Party::Broadcaster } else { Party::Countersignatory },
            to_broadcaster: if ours { state.to_us } else { state.to_them },
            to_countersignatory: if ours { state.to_them } else { state.to_us },
            htlcs: Self::core_htlcs(state, broadcaster),
        };
        Ok(spec.build()?)
    }

    /// The channel as the peer sees it.
    pub fn peer_view(&self) -> PeerView {
        PeerView {
            channel_type: self.params.channel_type,
            funding_outpoint: self.params.funding_outpoint,
            funding_value: self.params.funding,
            peer_is_opener: self.params.funder == Funder::Them,
            counterparty_basepoints: self.our_basepoints(),
            counterparty_funding: self.our_funding(),
            delay_on_counterparty: self.params.remote_to_self_delay,
            delay_on_peer: self.params.local_to_self_delay,
            peer_dust_limit: self.params.remote_dust_limit,
            counterparty_dust_limit: self.params.local_dust_limit,
        }
    }

    /// `state` as the peer tracks it.
    pub fn peer_state(state: &CommitState) -> PeerState {
        PeerState {
            to_peer: state.to_them,
            to_counterparty: state.to_us,
            feerate: state.feerate,
            htlcs: state
                .htlcs
                .iter()
                .map(|h| PeerHtlc {
                    offered_by_peer: h.offerer == Who::Them,
                    amount: h.amount,
                    payment_hash: h.payment_hash(),
                    cltv_expiry: h.cltv_expiry,
                })
                .collect(),
        }
    }

    /// The `hsm_htlc` list lightningd sends with a commitment: its untrimmed HTLCs in output
    /// order, `side` = who offered.
    pub fn hsm_htlcs(
        built: &BuiltCommitment,
        state: &CommitState,
    ) -> Result<Vec<HsmHtlc>, BuildError> {
        let mut out = Vec::new();
        for o in &built.outputs {
            if let CommitmentOutputKind::Htlc { index, .. } = o.kind {
                let h = state.htlcs.get(index).ok_or_else(|| scenario("htlc index"))?;
                out.push(HsmHtlc {
                    side: match h.offerer {
                        Who::Us => Side::Local,
                        Who::Them => Side::Remote,
                    },
                    amount: AmountMsat(h.amount.0),
                    payment_hash: sha256::Hash::from_byte_array(h.payment_hash().0),
                    cltv_expiry: h.cltv_expiry,
                });
            }
        }
        Ok(out)
    }

    /// The funding output as the commitment and close transactions spend it.
    pub fn funding_spent(&self) -> SpentOutput {
        let script = warden_core::tx::scripts::funding_witness_script(
            &self.our_funding(),
            &self.peer.funding_pubkey(),
        );
        p2wsh_spent(self.params.funding, &script)
    }

    fn commitment_tx(&self, built: &BuiltCommitment) -> Result<warden_wire::BitcoinTx, BuildError> {
        bitcoin_tx(&built.tx, &[self.funding_spent_of(built.funding_value)])
    }

    /// The funding output of value `value` (the current one, or a splice's).
    fn funding_spent_of(&self, value: Sat) -> SpentOutput {
        let script = warden_core::tx::scripts::funding_witness_script(
            &self.our_funding(),
            &self.peer.funding_pubkey(),
        );
        p2wsh_spent(value, &script)
    }

    /// The funding outpoint and value: the current funding's, or splice `splice`'s.
    fn funding_of(&self, splice: Option<&Splice>) -> (OutPoint, Sat) {
        match splice {
            Some(s) => (s.outpoint, s.value),
            None => (self.params.funding_outpoint, self.params.funding),
        }
    }

    // --- lightningd (master) -------------------------------------------------------------

    /// `new_channel` (lightningd, `new_uncommitted_channel`, before openingd starts).
    pub fn new_channel(&self) -> NewChannel {
        NewChannel { id: self.peer_id(), dbid: self.params.dbid }
    }

    /// `get_channel_basepoints` (lightningd, right after `new_channel`).
    pub fn get_channel_basepoints(&self) -> GetChannelBasepoints {
        GetChannelBasepoints { peerid: self.peer_id(), dbid: self.params.dbid }
    }

    /// Checks the basepoints hsmd gave against our own derivation.
    pub fn check_basepoints(&self, reply: &GetChannelBasepointsReply) -> Result<(), VerifyError> {
        let b = self.our_basepoints();
        let expected = warden_wire::Basepoints {
            revocation: b.revocation.0,
            payment: b.payment.0,
            htlc: b.htlc.0,
            delayed_payment: b.delayed_payment.0,
        };
        check_eq(GetChannelBasepoints::NAME, "basepoints", &reply.basepoints, &expected)?;
        check_eq(
            GetChannelBasepoints::NAME,
            "funding key",
            &reply.funding_pubkey,
            &self.our_funding().0,
        )
    }

    // --- openingd / channeld (channel client) --------------------------------------------

    /// `get_per_commitment_point(n)` and the point it must answer.
    pub fn get_per_commitment_point(
        &self,
        n: u64,
    ) -> Result<(GetPerCommitmentPoint, PublicKey), BuildError> {
        Ok((GetPerCommitmentPoint { n }, self.our_point(n)?.0))
    }

    /// `setup_channel` (openingd, once both sides agreed on the parameters).
    pub fn setup_channel(&self) -> SetupChannel {
        let p = self.peer.basepoints();
        SetupChannel {
            is_outbound: self.params.funder == Funder::Us,
            channel_value: self.params.funding.to_amount(),
            push_value: AmountMsat(self.params.push.0),
            funding_txid: self.params.funding_outpoint.txid,
            funding_txout: u16::try_from(self.params.funding_outpoint.vout).unwrap_or(u16::MAX),
            local_to_self_delay: self.params.local_to_self_delay,
            local_shutdown_script: ScriptBuf::new(),
            local_shutdown_wallet_index: None,
            remote_basepoints: warden_wire::Basepoints {
                revocation: p.revocation.0,
                payment: p.payment.0,
                htlc: p.htlc.0,
                delayed_payment: p.delayed_payment.0,
            },
            remote_funding_pubkey: self.peer.funding_pubkey().0,
            remote_to_self_delay: self.params.remote_to_self_delay,
            remote_shutdown_script: ScriptBuf::new(),
            channel_type: self.params.wire_channel_type(),
        }
    }

    /// `sign_remote_commitment_tx` for the peer's commitment `n` with content `state` (feerate
    /// field 0 for commitment #0, as openingd sends it), and the commitment.
    pub fn sign_remote_commitment(
        &self,
        n: u64,
        state: &CommitState,
    ) -> Result<(Signing<SignRemoteCommitmentTx>, BuiltCommitment), BuildError> {
        self.sign_remote_commitment_on(n, state, None)
    }

    /// [`Channel::sign_remote_commitment`] on splice `splice` (`state` is the content on that
    /// funding: [`CommitState::spliced`]); channeld states the real feerate even at #0.
    pub fn sign_remote_commitment_on(
        &self,
        n: u64,
        state: &CommitState,
        splice: Option<&Splice>,
    ) -> Result<(Signing<SignRemoteCommitmentTx>, BuiltCommitment), BuildError> {
        let built = self.their_commitment_on(n, state, splice)?;
        let request = SignRemoteCommitmentTx {
            tx: self.commitment_tx(&built)?,
            remote_funding_key: self.peer.funding_pubkey().0,
            remote_per_commit: self.peer.per_commitment_point(n)?.0,
            option_static_remotekey: true,
            commit_num: n,
            htlcs: Self::hsm_htlcs(&built, state)?,
            feerate: if n == 0 && splice.is_none() { 0 } else { state.feerate.0 },
        };
        let expect = Expected {
            digest: built.sighash()?,
            key: self.our_funding().0,
            sighash_type: EcdsaSighashType::All,
        };
        Ok((Signing { request, expect }, built))
    }

    /// The `sign_remote_htlc_tx` requests channeld sends after `sign_remote_commitment_tx`,
    /// one per HTLC transaction of the peer's commitment, in output order.
    pub fn sign_remote_htlc_txs(
        &self,
        theirs: &BuiltCommitment,
    ) -> Result<Vec<Signing<SignRemoteHtlcTx>>, BuildError> {
        let mut out = Vec::new();
        for htlc_tx in theirs.htlc_txs()? {
            let spent = p2wsh_spent(htlc_tx.htlc_value, &htlc_tx.htlc_witness_script);
            out.push(Signing {
                request: SignRemoteHtlcTx {
                    tx: bitcoin_tx(&htlc_tx.tx, &[spent])?,
                    wscript: htlc_tx.htlc_witness_script.clone(),
                    remote_per_commit_point: theirs.keys.per_commitment_point.0,
                    option_anchor_outputs: self.params.channel_type.has_anchors(),
                },
                expect: Expected {
                    digest: htlc_tx.countersignatory_sighash()?,
                    key: theirs.keys.countersignatory_htlc.0,
                    sighash_type: htlc_tx.countersignatory_sighash_type(),
                },
            });
        }
        Ok(out)
    }

    /// `validate_commitment_tx` for our commitment `n` with content `state`, carrying the
    /// peer's signatures (feerate field 0 for commitment #0), and the point hsmd must answer
    /// (our point `n + 1`).
    pub fn validate_commitment(
        &self,
        n: u64,
        state: &CommitState,
    ) -> Result<(ValidateCommitmentTx, PublicKey), BuildError> {
        self.validate_commitment_on(n, state, None)
    }

    /// [`Channel::validate_commitment`] on splice `splice` (`state` is the content on that
    /// funding); channeld states the real feerate even at #0.
    pub fn validate_commitment_on(
        &self,
        n: u64,
        state: &CommitState,
        splice: Option<&Splice>,
    ) -> Result<(ValidateCommitmentTx, PublicKey), BuildError> {
        let built = self.our_commitment_on(n, state, splice)?;
        let sig = self.peer.sign_commitment(&built)?;
        // channeld records the peer's signature in the PSBT before asking hsmd
        // (`psbt_input_set_signature` in `handle_peer_commit_sig`).
        let mut psbt = psbt_for(&built.tx, &[self.funding_spent_of(built.funding_value)])?;
        if let Some(input) = psbt.inputs.first_mut() {
            input.partial_sigs.insert(bitcoin::PublicKey::new(self.peer.funding_pubkey().0), sig);
        }
        let request = ValidateCommitmentTx {
            tx: warden_wire::BitcoinTx::new(built.tx.clone(), psbt),
            htlcs: Self::hsm_htlcs(&built, state)?,
            commit_num: n,
            feerate: if n == 0 && splice.is_none() { 0 } else { state.feerate.0 },
            sig,
            htlc_sigs: self.peer.sign_htlc_txs(&built)?,
        };
        Ok((request, self.our_point(n + 1)?.0))
    }

    /// Checks a `validate_commitment_tx` reply.
    pub fn check_validate_reply(
        &self,
        reply: &ValidateCommitmentTxReply,
        expected_point: &PublicKey,
    ) -> Result<(), VerifyError> {
        let name = ValidateCommitmentTx::NAME;
        check_eq(name, "old secret", &reply.old_commitment_secret.is_some(), &false)?;
        check_eq(name, "next point", &reply.next_per_commitment_point, expected_point)
    }

    /// `revoke_commitment_tx(n)` and what it must answer (our secret `n`, our point `n + 2`).
    pub fn revoke_commitment(
        &self,
        n: u64,
    ) -> Result<(RevokeCommitmentTx, RevokeCommitmentTxReply), BuildError> {
        let secret = self.our_keys.per_commitment_secret(commitment_number(n)?);
        Ok((
            RevokeCommitmentTx { commit_num: n },
            RevokeCommitmentTxReply {
                old_commitment_secret: Secret::new(*secret.expose_secret()),
                next_per_commitment_point: self.our_point(n + 2)?.0,
            },
        ))
    }

    /// `validate_revocation(n)` with the peer's secret `n` (channeld, on `revoke_and_ack`).
    pub fn validate_revocation(&self, n: u64) -> Result<ValidateRevocation, BuildError> {
        let secret = self.peer.per_commitment_secret(n)?;
        Ok(ValidateRevocation {
            revoke_num: n,
            per_commitment_secret: Secret::new(*secret.expose_secret()),
        })
    }

    /// The penalty transaction channeld's watchtower code (`channeld/watchtower.c`,
    /// `penalty_tx_create`) asks hsmd to sign with `sign_penalty_to_us` after the peer revoked
    /// its commitment `n` with content `state`: it spends the peer's to_local output with the
    /// revocation key, sequence `0xFFFFFFFF`, locktime 0, to our wallet. `None` when the
    /// output is missing or not above our dust limit.
    pub fn penalty(
        &self,
        n: u64,
        state: &CommitState,
    ) -> Result<Option<Signing<SignPenaltyToUs>>, BuildError> {
        let built = self.their_commitment(n, state)?;
        let Some((vout, out)) = built.output(CommitmentOutputKind::ToBroadcaster) else {
            return Ok(None);
        };
        if out.value <= self.params.local_dust_limit {
            return Ok(None);
        }
        let mut template = sweep::spend_revoked_to_local(
            built.outpoint(vout),
            out.value,
            &built.keys.revocation,
            self.params.local_to_self_delay,
            &built.keys.broadcaster_delayed_payment,
            self.wallet_script(1)?,
            SpendFee::Feerate(FeeratePerKw(253)),
        )?;
        if let Some(input) = template.tx.input.first_mut() {
            input.sequence = Sequence::MAX;
        }
        let secret = self.peer.per_commitment_secret(n)?;
        let spent = p2wsh_spent(template.value, &template.witness_script);
        Ok(Some(Signing {
            request: SignPenaltyToUs {
                revocation_secret: Secret::new(*secret.expose_secret()),
                tx: bitcoin_tx(&template.tx, &[spent])?,
                wscript: template.witness_script.clone(),
            },
            expect: Expected {
                digest: template.sighash()?,
                key: built.keys.revocation.0,
                sighash_type: EcdsaSighashType::All,
            },
        }))
    }

    // --- funding lock (channeld) ---------------------------------------------------------

    /// `check_outpoint` for the funding outpoint (channeld, `lock_signer_outpoint`).
    pub fn check_outpoint(&self) -> CheckOutpoint {
        CheckOutpoint {
            funding_txid: self.params.funding_outpoint.txid,
            funding_txout: u16::try_from(self.params.funding_outpoint.vout).unwrap_or(u16::MAX),
        }
    }

    /// `lock_outpoint` for the funding outpoint (channeld, once `check_outpoint` said buried).
    pub fn lock_outpoint(&self) -> LockOutpoint {
        LockOutpoint {
            funding_txid: self.params.funding_outpoint.txid,
            funding_txout: u16::try_from(self.params.funding_outpoint.vout).unwrap_or(u16::MAX),
        }
    }

    // --- closes --------------------------------------------------------------------------

    /// The mutual close transaction closingd negotiates (no HTLCs in flight): the opener pays
    /// `fee`; our output goes to our wallet key 2.
    pub fn closing_tx(&self, fee: Sat) -> Result<BuiltClosing, BuildError> {
        if !self.local.htlcs.is_empty() {
            return Err(scenario("mutual close with htlcs in flight"));
        }
        let mut ours = self.local.to_us.to_sat_floor();
        let mut theirs = self.local.to_them.to_sat_floor();
        let payer = match self.params.funder {
            Funder::Us => &mut ours,
            Funder::Them => &mut theirs,
        };
        *payer = payer.checked_sub(fee).ok_or_else(|| scenario("opener cannot pay close fee"))?;
        let peer_script = ScriptBuf::new_p2wpkh(
            &CompressedPublicKey(self.peer.basepoints().payment.0).wpubkey_hash(),
        );
        let spec = ClosingSpec {
            funding_outpoint: self.params.funding_outpoint,
            funding_value: self.params.funding,
            holder: ClosingOutput { script_pubkey: self.wallet_script(2)?, value: ours },
            counterparty: ClosingOutput { script_pubkey: peer_script, value: theirs },
            dust_limit: self.params.local_dust_limit,
            lock_time: bitcoin::absolute::LockTime::ZERO,
        };
        Ok(build_closing_tx(&spec)?)
    }

    /// `sign_mutual_close_tx` (closingd).
    pub fn sign_mutual_close(&self, fee: Sat) -> Result<Signing<SignMutualCloseTx>, BuildError> {
        let closing = self.closing_tx(fee)?;
        let expect = Expected {
            digest: closing.sighash(
                self.params.funding,
                &self.our_funding(),
                &self.peer.funding_pubkey(),
            )?,
            key: self.our_funding().0,
            sighash_type: EcdsaSighashType::All,
        };
        Ok(Signing {
            request: SignMutualCloseTx {
                tx: bitcoin_tx(&closing.tx, &[self.funding_spent()])?,
                remote_funding_key: self.peer.funding_pubkey().0,
            },
            expect,
        })
    }

    /// `sign_commitment_tx` for our current commitment (lightningd, `sign_last_tx`, when it
    /// drops the channel to chain), and the commitment.
    pub fn sign_commitment(
        &self,
    ) -> Result<(Signing<SignCommitmentTx>, BuiltCommitment), BuildError> {
        let built = self.our_commitment(self.local_num, &self.local)?;
        let request = SignCommitmentTx {
            peer_id: self.peer_id(),
            channel_dbid: self.params.dbid,
            tx: self.commitment_tx(&built)?,
            remote_funding_key: self.peer.funding_pubkey().0,
            commit_num: self.local_num,
        };
        let expect = Expected {
            digest: built.sighash()?,
            key: self.our_funding().0,
            sighash_type: EcdsaSighashType::All,
        };
        Ok((Signing { request, expect }, built))
    }

    /// `sign_any_delayed_payment_to_us` for an output of our commitment (`outpoint`, `value`)
    /// or of one of its HTLC transactions, locked by to_local-style `witness_script` with our
    /// delayed key for commitment `commit_num` (lightningd, for onchaind).
    pub fn sign_delayed_to_us(
        &self,
        built: &BuiltCommitment,
        outpoint: OutPoint,
        value: Sat,
    ) -> Result<Signing<SignAnyDelayedPaymentToUs>, BuildError> {
        let template = sweep::spend_delayed_to_local(
            outpoint,
            value,
            &built.keys.revocation,
            self.params.remote_to_self_delay,
            &built.keys.broadcaster_delayed_payment,
            self.wallet_script(3)?,
            SpendFee::Feerate(FeeratePerKw(253)),
        )?;
        let spent = p2wsh_spent(template.value, &template.witness_script);
        Ok(Signing {
            request: SignAnyDelayedPaymentToUs {
                commit_num: self.local_num,
                tx: bitcoin_tx(&template.tx, &[spent])?,
                wscript: template.witness_script.clone(),
                input: 0,
                peerid: self.peer_id(),
                channel_dbid: self.params.dbid,
            },
            expect: Expected {
                digest: template.sighash()?,
                key: built.keys.broadcaster_delayed_payment.0,
                sighash_type: EcdsaSighashType::All,
            },
        })
    }

    /// `sign_any_local_htlc_tx` for one HTLC transaction of our commitment `built`.
    pub fn sign_local_htlc_tx(
        &self,
        built: &BuiltCommitment,
        htlc_tx: &HtlcTx,
    ) -> Result<Signing<SignAnyLocalHtlcTx>, BuildError> {
        let spent = p2wsh_spent(htlc_tx.htlc_value, &htlc_tx.htlc_witness_script);
        Ok(Signing {
            request: SignAnyLocalHtlcTx {
                commit_num: self.local_num,
                tx: bitcoin_tx(&htlc_tx.tx, &[spent])?,
                wscript: htlc_tx.htlc_witness_script.clone(),
                option_anchor_outputs: self.params.channel_type.has_anchors(),
                input: 0,
                peerid: self.peer_id(),
                channel_dbid: self.params.dbid,
            },
            expect: Expected {
                digest: htlc_tx.sighash(self.htlc_sighash_type())?,
                key: built.keys.broadcaster_htlc.0,
                sighash_type: self.htlc_sighash_type(),
            },
        })
    }

    /// `sign_any_remote_htlc_to_us` for every HTLC output of the peer's commitment `built`
    /// (content `state`): HTLCs the peer offered are claimed with the preimage, HTLCs we
    /// offered are reclaimed after their expiry.
    pub fn sign_remote_htlcs_to_us(
        &self,
        built: &BuiltCommitment,
        state: &CommitState,
    ) -> Result<Vec<Signing<SignAnyRemoteHtlcToUs>>, BuildError> {
        let mut out = Vec::new();
        for (vout, o) in built.outputs.iter().enumerate() {
            let CommitmentOutputKind::Htlc { index, htlc } = o.kind else { continue };
            let model = state.htlcs.get(index).ok_or_else(|| scenario("htlc index"))?;
            let outpoint = built.outpoint(u32::try_from(vout).map_err(|_| scenario("vout"))?);
            let dest = self.wallet_script(4)?;
            let fee = SpendFee::Feerate(FeeratePerKw(253));
            let ct = self.params.channel_type;
            let template: SpendTemplate = match model.offerer {
                Who::Them => sweep::claim_offered_htlc(
                    ct,
                    outpoint,
                    &htlc,
                    &built.keys,
                    PaymentPreimage::new(model.preimage),
                    dest,
                    fee,
                )?,
                Who::Us => {
                    sweep::reclaim_received_htlc(ct, outpoint, &htlc, &built.keys, dest, fee)?
                }
            };
            let spent = p2wsh_spent(template.value, &template.witness_script);
            out.push(Signing {
                request: SignAnyRemoteHtlcToUs {
                    remote_per_commitment_point: built.keys.per_commitment_point.0,
                    tx: bitcoin_tx(&template.tx, &[spent])?,
                    wscript: template.witness_script.clone(),
                    option_anchor_outputs: ct.has_anchors(),
                    input: 0,
                    peerid: self.peer_id(),
                    channel_dbid: self.params.dbid,
                },
                expect: Expected {
                    digest: warden_core::tx::p2wsh_sighash(
                        &template.tx,
                        0,
                        &template.witness_script,
                        template.value,
                        self.htlc_sighash_type(),
                    )?,
                    key: built.keys.countersignatory_htlc.0,
                    sighash_type: self.htlc_sighash_type(),
                },
            });
        }
        Ok(out)
    }

    /// `sign_any_penalty_to_us` for every output of the peer's revoked commitment `n`
    /// (content `state`) we can take: its to_local and its HTLC outputs.
    pub fn sign_penalties_to_us(
        &self,
        n: u64,
        state: &CommitState,
    ) -> Result<Vec<Signing<SignAnyPenaltyToUs>>, BuildError> {
        let built = self.their_commitment(n, state)?;
        let secret = self.peer.per_commitment_secret(n)?;
        let mut out = Vec::new();
        for (vout, o) in built.outputs.iter().enumerate() {
            let outpoint = built.outpoint(u32::try_from(vout).map_err(|_| scenario("vout"))?);
            let dest = self.wallet_script(5)?;
            let fee = SpendFee::Feerate(FeeratePerKw(253));
            let template = match o.kind {
                CommitmentOutputKind::ToBroadcaster => sweep::spend_revoked_to_local(
                    outpoint,
                    o.value,
                    &built.keys.revocation,
                    self.params.local_to_self_delay,
                    &built.keys.broadcaster_delayed_payment,
                    dest,
                    fee,
                )?,
                CommitmentOutputKind::Htlc { htlc, .. } => sweep::spend_revoked_htlc(
                    self.params.channel_type,
                    outpoint,
                    &htlc,
                    &built.keys,
                    dest,
                    fee,
                )?,
                _ => continue,
            };
            let spent = p2wsh_spent(template.value, &template.witness_script);
            out.push(Signing {
                request: SignAnyPenaltyToUs {
                    revocation_secret: Secret::new(*secret.expose_secret()),
                    tx: bitcoin_tx(&template.tx, &[spent])?,
                    wscript: template.witness_script.clone(),
                    input: 0,
                    peerid: self.peer_id(),
                    channel_dbid: self.params.dbid,
                },
                expect: Expected {
                    digest: template.sighash()?,
                    key: built.keys.revocation.0,
                    sighash_type: EcdsaSighashType::All,
                },
            });
        }
        Ok(out)
    }

    /// `sign_anchorspend` for our anchor on our commitment `built` (lightningd,
    /// `lightningd/anchorspend.c`): a PSBT spending the anchor and one wallet UTXO (key index
    /// 6, 50,000 sat) to a change output of our wallet. `None` without our anchor. hsmd signs
    /// the wallet inputs (`sign_our_inputs`) and the anchor with the funding key
    /// (`wally_psbt_sign`, a partial signature).
    pub fn sign_anchorspend(
        &self,
        built: &BuiltCommitment,
    ) -> Result<Option<PsbtSigning<SignAnchorspend>>, BuildError> {
        let Some((vout, anchor)) = built.output(CommitmentOutputKind::BroadcasterAnchor) else {
            return Ok(None);
        };
        let anchor_script =
            anchor.witness_script.clone().ok_or_else(|| scenario("anchor without script"))?;
        let (utxo, wallet_spent, wallet_key) =
            self.wallet_utxo(6, Sat(50_000), b"warden-testkit anchor fee utxo")?;
        // lightningd (`anchor_psbt`) puts the wallet UTXOs first and appends the anchor with
        // its witness script, its witness UTXO and our funding key as a key path; the change
        // is P2TR of the wallet key `final_key_idx`.
        let tx = bitcoin::Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![
                bitcoin::TxIn {
                    previous_output: utxo.outpoint,
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    ..Default::default()
                },
                bitcoin::TxIn {
                    previous_output: built.outpoint(vout),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    ..Default::default()
                },
            ],
            output: vec![TxOut {
                value: bitcoin::Amount::from_sat(50_000 + anchor.value.0 - 5_000),
                script_pubkey: self.wallet_p2tr_script(7)?,
            }],
        };
        let spent = [wallet_spent.clone(), p2wsh_spent(anchor.value, &anchor_script)];
        let mut psbt = psbt_for(&tx, &spent)?;
        let funding = self.our_funding().0;
        if let Some(input) = psbt.inputs.get_mut(1) {
            input.bip32_derivation.insert(
                funding,
                (bitcoin::bip32::Fingerprint::default(), bitcoin::bip32::DerivationPath::default()),
            );
        }
        let digest = warden_core::tx::p2wsh_sighash(
            &tx,
            1,
            &anchor_script,
            anchor.value,
            EcdsaSighashType::All,
        )?;
        Ok(Some(PsbtSigning {
            tx: tx.clone(),
            request: SignAnchorspend {
                peerid: self.peer_id(),
                channel_dbid: self.params.dbid,
                inputs: vec![utxo],
                psbt: WirePsbt::new(psbt),
            },
            channel_input: Some((
                1,
                Expected { digest, key: funding, sighash_type: EcdsaSighashType::All },
            )),
            wallet_inputs: vec![WalletInput {
                input: 0,
                expect: p2wpkh_expected(&tx, 0, &wallet_spent, wallet_key)?,
            }],
        }))
    }

    /// `sign_htlc_tx_mingle` (lightningd, `consider_onchain_htlc_tx_rebroadcast`, always for
    /// zero-fee anchors HTLC transactions): the HTLC transaction `htlc_tx` of our commitment,
    /// already carrying its final witness (`witness`), with one wallet UTXO (key index 8,
    /// 30,000 sat) added for its fee and a change output. hsmd signs only the wallet input.
    pub fn sign_htlc_tx_mingle(
        &self,
        htlc_tx: &HtlcTx,
        witness: bitcoin::Witness,
    ) -> Result<PsbtSigning<SignHtlcTxMingle>, BuildError> {
        let (utxo, wallet_spent, wallet_key) =
            self.wallet_utxo(8, Sat(30_000), b"warden-testkit htlc fee utxo")?;
        let mut tx = htlc_tx.tx.clone();
        tx.input.push(bitcoin::TxIn {
            previous_output: utxo.outpoint,
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            ..Default::default()
        });
        tx.output.push(TxOut {
            value: bitcoin::Amount::from_sat(30_000 - 3_000),
            script_pubkey: self.wallet_script(9)?,
        });
        let spent =
            [p2wsh_spent(htlc_tx.htlc_value, &htlc_tx.htlc_witness_script), wallet_spent.clone()];
        let mut psbt = psbt_for(&tx, &spent)?;
        if let Some(input) = psbt.inputs.first_mut() {
            input.final_script_witness = Some(witness);
        }
        Ok(PsbtSigning {
            tx: tx.clone(),
            request: SignHtlcTxMingle {
                peerid: self.peer_id(),
                channel_dbid: self.params.dbid,
                inputs: vec![utxo],
                psbt: WirePsbt::new(psbt),
            },
            channel_input: None,
            wallet_inputs: vec![WalletInput {
                input: 1,
                expect: p2wpkh_expected(&tx, 1, &wallet_spent, wallet_key)?,
            }],
        })
    }
}

/// The splice requests (channeld and, for our wallet inputs, lightningd).
impl Channel {
    /// A splice we initiate moving `relative` satoshis into (positive) or out of (negative) our
    /// balance, the peer adding nothing, 1,000 sat of fee ours. It spends the current funding
    /// output (input 0) and, for a splice-in, our wallet UTXO (key index 12, `relative` +
    /// 10,000 sat, change to index 13); a splice-out pays `-relative` less the fee to our
    /// wallet (index 13). The new funding output (output 0) is the same 2-of-2.
    pub fn splice(&self, relative: i64) -> Result<Splice, BuildError> {
        let fee = 1_000i64;
        let new_value = i64::try_from(self.params.funding.0)
            .ok()
            .and_then(|v| v.checked_add(relative))
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| scenario("a splice beyond the channel"))?;
        let script = warden_core::tx::scripts::funding_witness_script(
            &self.our_funding(),
            &self.peer.funding_pubkey(),
        );
        let amount = |v: i64| {
            u64::try_from(v)
                .map(bitcoin::Amount::from_sat)
                .map_err(|_| scenario("a splice output below zero"))
        };
        let mut input = vec![bitcoin::TxIn {
            previous_output: self.params.funding_outpoint,
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            ..Default::default()
        }];
        let mut spent = vec![self.funding_spent()];
        let mut output = vec![TxOut {
            value: bitcoin::Amount::from_sat(new_value),
            script_pubkey: script.to_p2wsh(),
        }];
        let mut wallet_input = None;
        if relative > 0 {
            let value = relative + 10_000;
            let tag = format!("warden-testkit splice utxo {}", self.splices.len());
            let (utxo, wallet_spent, key) =
                self.wallet_utxo(12, Sat(amount(value)?.to_sat()), tag.as_bytes())?;
            input.push(bitcoin::TxIn {
                previous_output: utxo.outpoint,
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                ..Default::default()
            });
            spent.push(wallet_spent);
            output.push(TxOut {
                value: amount(10_000 - fee)?,
                script_pubkey: self.wallet_script(13)?,
            });
            wallet_input = Some((utxo, key));
        } else {
            output.push(TxOut {
                value: amount(-relative - fee)?,
                script_pubkey: self.wallet_script(13)?,
            });
        }
        let tx = bitcoin::Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input,
            output,
        };
        Ok(Splice {
            outpoint: OutPoint { txid: tx.compute_txid(), vout: 0 },
            value: Sat(new_value),
            our_relative: relative,
            their_relative: 0,
            tx,
            spent,
            wallet_input,
        })
    }

    /// A splice the peer initiates moving `relative` satoshis into (positive) or out of
    /// (negative) its balance, we add nothing (channeld's accepter: `accepter_relative` 0), the
    /// peer pays the 1,000-sat fee. A splice-in spends the peer's UTXO (`relative` + 10,000
    /// sat, change to the peer); a splice-out pays `-relative` less the fee to the peer. No
    /// wallet input of ours: lightningd signs nothing but `sign_splice_tx`.
    pub fn peer_splice(&self, relative: i64) -> Result<Splice, BuildError> {
        let fee = 1_000i64;
        let new_value = i64::try_from(self.params.funding.0)
            .ok()
            .and_then(|v| v.checked_add(relative))
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| scenario("a splice beyond the channel"))?;
        let amount = |v: i64| {
            u64::try_from(v)
                .map(bitcoin::Amount::from_sat)
                .map_err(|_| scenario("a splice output below zero"))
        };
        let script = warden_core::tx::scripts::funding_witness_script(
            &self.our_funding(),
            &self.peer.funding_pubkey(),
        );
        let peer_wallet = ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array(
            sha256::Hash::hash(b"warden-testkit peer wallet").to_byte_array()[..20]
                .try_into()
                .map_err(|_| scenario("hash length"))?,
        ));
        let mut input = vec![bitcoin::TxIn {
            previous_output: self.params.funding_outpoint,
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            ..Default::default()
        }];
        let mut spent = vec![self.funding_spent()];
        let mut output = vec![TxOut {
            value: bitcoin::Amount::from_sat(new_value),
            script_pubkey: script.to_p2wsh(),
        }];
        if relative > 0 {
            let tag = format!("warden-testkit peer splice utxo {}", self.splices.len());
            input.push(bitcoin::TxIn {
                previous_output: OutPoint {
                    txid: bitcoin::Txid::from_byte_array(
                        sha256::Hash::hash(tag.as_bytes()).to_byte_array(),
                    ),
                    vout: 0,
                },
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                ..Default::default()
            });
            spent.push(SpentOutput {
                txout: TxOut {
                    value: amount(relative + 10_000)?,
                    script_pubkey: peer_wallet.clone(),
                },
                witness_script: None,
            });
            output.push(TxOut { value: amount(10_000 - fee)?, script_pubkey: peer_wallet });
        } else {
            output.push(TxOut { value: amount(-relative - fee)?, script_pubkey: peer_wallet });
        }
        let tx = bitcoin::Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input,
            output,
        };
        Ok(Splice {
            outpoint: OutPoint { txid: tx.compute_txid(), vout: 0 },
            value: Sat(new_value),
            our_relative: 0,
            their_relative: relative,
            tx,
            spent,
            wallet_input: None,
        })
    }

    /// `setup_channel` for splice `splice` (channeld `update_hsmd_with_splice`): the new value
    /// and outpoint, the peer's relative satoshis raw in `push_value` (a negative amount
    /// wrapped), no shutdown scripts, everything else as at the open.
    pub fn splice_setup_channel(&self, splice: &Splice) -> SetupChannel {
        SetupChannel {
            channel_value: splice.value.to_amount(),
            push_value: AmountMsat(splice.their_relative as u64),
            funding_txid: splice.outpoint.txid,
            funding_txout: u16::try_from(splice.outpoint.vout).unwrap_or(u16::MAX),
            ..self.setup_channel()
        }
    }

    /// `sign_splice_tx` (channeld, `resume_splice_negotiation`): our signature of the splice's
    /// input spending the current funding output.
    pub fn sign_splice(&self, splice: &Splice) -> Result<Signing<SignSpliceTx>, BuildError> {
        let script = warden_core::tx::scripts::funding_witness_script(
            &self.our_funding(),
            &self.peer.funding_pubkey(),
        );
        let digest = warden_core::tx::p2wsh_sighash(
            &splice.tx,
            0,
            &script,
            self.params.funding,
            EcdsaSighashType::All,
        )?;
        Ok(Signing {
            request: SignSpliceTx {
                tx: bitcoin_tx(&splice.tx, &splice.spent)?,
                remote_funding_key: self.peer.funding_pubkey().0,
                input_index: 0,
            },
            expect: Expected {
                digest,
                key: self.our_funding().0,
                sighash_type: EcdsaSighashType::All,
            },
        })
    }

    /// `sign_withdrawal` of a splice-in's wallet input (the user's `signpsbt` before
    /// `splice_signed`), if the splice has one.
    pub fn sign_splice_wallet_input(
        &self,
        splice: &Splice,
    ) -> Result<Option<PsbtSigning<SignWithdrawal>>, BuildError> {
        let Some((utxo, key)) = &splice.wallet_input else { return Ok(None) };
        let psbt = psbt_for(&splice.tx, &splice.spent)?;
        let (input, spent) = splice
            .tx
            .input
            .iter()
            .zip(&splice.spent)
            .enumerate()
            .find(|(_, (i, _))| i.previous_output == utxo.outpoint)
            .map(|(j, (_, s))| (j, s.clone()))
            .ok_or_else(|| scenario("the splice does not spend its wallet utxo"))?;
        Ok(Some(PsbtSigning {
            tx: splice.tx.clone(),
            request: SignWithdrawal { inputs: vec![utxo.clone()], psbt: WirePsbt::new(psbt) },
            channel_input: None,
            wallet_inputs: vec![WalletInput {
                input,
                expect: p2wpkh_expected(&splice.tx, input, &spent, *key)?,
            }],
        }))
    }

    /// `check_outpoint` for an outpoint (channeld's `lock_signer_outpoint` at a splice's
    /// lock-in).
    pub fn check_outpoint_of(&self, outpoint: &OutPoint) -> CheckOutpoint {
        CheckOutpoint {
            funding_txid: outpoint.txid,
            funding_txout: u16::try_from(outpoint.vout).unwrap_or(u16::MAX),
        }
    }

    /// `lock_outpoint` for an outpoint.
    pub fn lock_outpoint_of(&self, outpoint: &OutPoint) -> LockOutpoint {
        LockOutpoint {
            funding_txid: outpoint.txid,
            funding_txout: u16::try_from(outpoint.vout).unwrap_or(u16::MAX),
        }
    }

    /// Lock-in of splice `index` in the model (channeld's `channel_update_funding`): it becomes
    /// the funding, both current commitments move by the relative amounts, the other splices
    /// are dropped.
    pub fn lock_splice(&mut self, index: usize) -> Result<(), BuildError> {
        let splice = self.splices.get(index).cloned().ok_or_else(|| scenario("no such splice"))?;
        self.local = self.local.spliced(&splice)?;
        self.remote = self.remote.spliced(&splice)?;
        self.params.funding_outpoint = splice.outpoint;
        self.params.funding = splice.value;
        self.splices.clear();
        Ok(())
    }
}

/// What the signature of P2WPKH input `input` of `tx` (spending `spent`) by `key` must verify
/// against (`SIGHASH_ALL`).
fn p2wpkh_expected(
    tx: &bitcoin::Transaction,
    input: usize,
    spent: &SpentOutput,
    key: PublicKey,
) -> Result<Expected, BuildError> {
    let mut cache = bitcoin::sighash::SighashCache::new(tx);
    let sighash = cache
        .p2wpkh_signature_hash(
            input,
            &spent.txout.script_pubkey,
            spent.txout.value,
            EcdsaSighashType::All,
        )
        .map_err(|e| scenario(format!("p2wpkh sighash: {e}")))?;
    Ok(Expected {
        digest: Digest::from_digest(sighash.to_byte_array()),
        key,
        sighash_type: EcdsaSighashType::All,
    })
}
