//! Channel flows driven through a running `warden-hsmd`, request by request as lightningd
//! and its subdaemons send them, on the client each one uses.
//!
//! Order of requests (Core Lightning):
//! - open (`lightningd/opening_common.c` `new_uncommitted_channel`, `openingd/openingd.c`):
//!   master `new_channel` → master `get_channel_basepoints` → openingd client
//!   `get_per_commitment_point(0)` → `setup_channel` → we fund: `sign_remote_commitment_tx`
//!   #0 then (on `funding_signed`) `validate_commitment_tx` #0; they fund: (on
//!   `funding_created`) `validate_commitment_tx` #0 then `sign_remote_commitment_tx` #0.
//! - lock-in (`channeld/channeld.c`): channeld client `get_per_commitment_point(1)` for our
//!   `channel_ready`, then, once both `channel_ready` are exchanged
//!   (`check_mutual_channel_ready` → `lock_signer_outpoint`), `check_outpoint` (repeated
//!   every 10 s until buried) → `lock_outpoint`.
//! - sending `commitment_signed` (`send_commit`, `calc_commitsigs`):
//!   `sign_remote_commitment_tx` then one `sign_remote_htlc_tx` per HTLC output, in order.
//! - receiving `revoke_and_ack` (`handle_peer_revoke_and_ack`): `validate_revocation`, then
//!   the watchtower's `sign_penalty_to_us` for the revoked commitment's to_local
//!   (`channeld/watchtower.c`).
//! - receiving `commitment_signed` (`handle_peer_commit_sig`): `validate_commitment_tx`, then
//!   (`send_revocation`) `revoke_commitment_tx` of the previous commitment.
//! - splice (`channeld/channeld.c`, see [`Node::splice`]): channeld `setup_channel` with the
//!   new funding, `get_per_commitment_point` + `validate_commitment_tx` and
//!   `sign_remote_commitment_tx` (+ HTLC transactions) of the CURRENT numbers on the new
//!   funding, lightningd `sign_withdrawal` of our wallet inputs, channeld `sign_splice_tx`;
//!   while in flight every update signs and validates one commitment per funding with the
//!   same number (one revocation); lock-in: `check_outpoint` then `lock_outpoint` of the new
//!   funding outpoint.
//! - mutual close (`closingd`): closingd client `sign_mutual_close_tx`.
//! - unilateral close (`lightningd/peer_control.c` `sign_last_tx`, `onchain_control.c`,
//!   `anchorspend.c`): master `sign_commitment_tx`, then the `sign_any_*` sweeps and
//!   `sign_anchorspend`, all on the master connection. With zero-fee anchors, each HTLC
//!   transaction signed with `sign_any_local_htlc_tx` (our signature
//!   `SIGHASH_SINGLE|ANYONECANPAY`) is at once given a wallet input for its fee, signed with
//!   `sign_htlc_tx_mingle` (`consider_onchain_htlc_tx_rebroadcast`).

use std::path::Path;

use bitcoin::{ecdsa, Psbt};
use warden_core::tx::{ChannelType, CommitmentOutputKind, HtlcTxKind, PaymentPreimage};
use warden_core::units::{FeeratePerKw, Msat, Sat};
use warden_wire::msg::*;
use warden_wire::Message;

use crate::channel::{
    Change, Channel, ChannelParams, CommitState, Expected, Funder, PsbtSigning, Signing, Splice,
    Who,
};
use crate::error::{scenario, FlowError, VerifyError};
use crate::hsmd::{Client, Hsmd};
use crate::perms;
use crate::rng::TestRng;
use crate::verify::{check_eq, check_signature};

/// Our node's `hsm_secret` in the flows (a legacy 32-byte secret).
pub const OUR_SECRET: [u8; 32] = [0x11; 32];
/// The peer's secret.
pub const PEER_SECRET: [u8; 32] = [0x22; 32];

/// Which commitment reaches the chain in [`Node::unilateral_close_with_sweeps`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unilateral {
    /// We drop our current commitment to chain.
    Ours,
    /// The peer broadcasts its current commitment.
    Theirs,
    /// The peer broadcasts its last revoked commitment.
    TheirRevoked,
}

/// Our node (lightningd and its subdaemons) with one channel, talking to a running hsmd.
#[derive(Debug)]
pub struct Node {
    /// The hsmd process.
    pub hsmd: Hsmd,
    /// The channel model.
    pub channel: Channel,
    /// Whether channeld's watchtower code asks for `sign_penalty_to_us` after each
    /// `revoke_and_ack` (Core Lightning always does; on by default).
    pub watchtower: bool,
    channeld: Option<Client>,
}

fn sign_tx<M: Message>(
    client: &mut Client,
    ch: &Channel,
    s: &Signing<M>,
) -> Result<ecdsa::Signature, FlowError> {
    let reply: SignTxReply = client.call(&s.request)?;
    check(ch, M::NAME, &s.expect, &reply.sig)?;
    Ok(reply.sig)
}

fn check(
    ch: &Channel,
    name: &'static str,
    e: &Expected,
    sig: &ecdsa::Signature,
) -> Result<(), VerifyError> {
    check_signature(ch.secp(), name, &e.digest, sig, &e.key, e.sighash_type)
}

impl Node {
    /// Starts hsmd (`bin`) with our secret, sends `init` and checks the node id.
    pub fn start(bin: &Path, params: ChannelParams) -> Result<Node, FlowError> {
        Node::attach(Hsmd::spawn(bin, &OUR_SECRET)?, params)
    }

    /// [`Node::start`] with an hsmd the caller started (for example in proxy mode, with
    /// [`Hsmd::spawn_with_env`]): sends `init` and checks the node id.
    pub fn attach(mut hsmd: Hsmd, params: ChannelParams) -> Result<Node, FlowError> {
        let channel = Channel::new(params, OUR_SECRET, PEER_SECRET)?;
        let reply = hsmd.init(&Hsmd::regtest_init())?;
        check_eq(Init::NAME, "node id", &reply.node_id, &channel.our_id())?;
        Ok(Node { hsmd, channel, watchtower: true, channeld: None })
    }

    /// Fails if hsmd reported a bad request, a failure, or a policy refusal or warning (a
    /// legitimate flow runs with zero of each) on its status connection.
    pub fn assert_clean(&self) -> Result<(), VerifyError> {
        let bad = self.hsmd.status().bad_requests();
        let failures = self.hsmd.status().failures();
        let policy = self.hsmd.status().policy_events();
        if bad.is_empty() && failures.is_empty() && policy.is_empty() {
            Ok(())
        } else {
            Err(VerifyError {
                request: "status",
                what: format!(
                    "bad requests {bad:?}, failures {failures:?}, policy refusals or warnings \
                     {policy:?}"
                ),
            })
        }
    }

    /// Opens the channel (we fund or they fund, as the parameters say) and locks it in.
    pub fn open(&mut self) -> Result<(), FlowError> {
        let ch = &self.channel;
        let master = self.hsmd.master();
        let _: NewChannelReply = master.call(&ch.new_channel())?;
        let bp: GetChannelBasepointsReply = master.call(&ch.get_channel_basepoints())?;
        ch.check_basepoints(&bp)?;

        let mut openingd =
            self.hsmd.client("openingd", ch.peer_id(), ch.params().dbid, perms::OPENINGD)?;
        let (req, point) = ch.get_per_commitment_point(0)?;
        let reply: GetPerCommitmentPointReply = openingd.call(&req)?;
        check_eq(GetPerCommitmentPoint::NAME, "point 0", &reply.per_commitment_point, &point)?;
        let _: SetupChannelReply = openingd.call(&ch.setup_channel())?;
        let validate = |c: &mut Client| -> Result<(), FlowError> {
            let (req, point) = ch.validate_commitment(0, &ch.local)?;
            let reply: ValidateCommitmentTxReply = c.call(&req)?;
            ch.check_validate_reply(&reply, &point)?;
            Ok(())
        };
        let (sign_remote, _) = ch.sign_remote_commitment(0, &ch.remote)?;
        match ch.params().funder {
            Funder::Us => {
                sign_tx(&mut openingd, ch, &sign_remote)?;
                validate(&mut openingd)?;
            }
            Funder::Them => {
                validate(&mut openingd)?;
                sign_tx(&mut openingd, ch, &sign_remote)?;
            }
        }
        drop(openingd);

        let mut channeld =
            self.hsmd.client("channeld", ch.peer_id(), ch.params().dbid, perms::CHANNELD)?;
        // Our `channel_ready` carries our point #1.
        let (req, point) = ch.get_per_commitment_point(1)?;
        let reply: GetPerCommitmentPointReply = channeld.call(&req)?;
        check_eq(GetPerCommitmentPoint::NAME, "point 1", &reply.per_commitment_point, &point)?;
        // Once both `channel_ready` are exchanged (`check_mutual_channel_ready`).
        let buried: CheckOutpointReply = channeld.call(&ch.check_outpoint())?;
        if !buried.is_buried {
            return Err(VerifyError {
                request: CheckOutpoint::NAME,
                what: "funding outpoint not buried (channeld would retry every 10 s)".into(),
            }
            .into());
        }
        let _: LockOutpointReply = channeld.call(&ch.lock_outpoint())?;
        self.channeld = Some(channeld);
        Ok(())
    }

    /// We send `commitment_signed` for the peer's next commitment with content `next`: on the
    /// current funding, then (splices in flight: `send_commit`) on each splice with the same
    /// number and point, each with its HTLC signatures.
    fn send_commitment_signed(&mut self, next: &CommitState) -> Result<(), FlowError> {
        let n = self.channel.remote_num + 1;
        let mut requests = Vec::new();
        let fundings: Vec<Option<Splice>> =
            std::iter::once(None).chain(self.channel.splices.iter().cloned().map(Some)).collect();
        for splice in &fundings {
            let state = match splice {
                Some(s) => next.spliced(s)?,
                None => next.clone(),
            };
            let (sign_remote, built) =
                self.channel.sign_remote_commitment_on(n, &state, splice.as_ref())?;
            requests.push((sign_remote, self.channel.sign_remote_htlc_txs(&built)?));
        }
        let ch = &self.channel;
        let c = self.channeld.as_mut().ok_or_else(|| scenario("channeld is not running"))?;
        for (sign_remote, htlcs) in &requests {
            sign_tx(c, ch, sign_remote)?;
            for h in htlcs {
                sign_tx(c, ch, h)?;
            }
        }
        Ok(())
    }

    /// The peer's `revoke_and_ack` for its current commitment; its next one is `next`.
    fn receive_revoke_and_ack(&mut self, next: CommitState) -> Result<(), FlowError> {
        let old = self.channel.remote_num;
        let req = self.channel.validate_revocation(old)?;
        let penalty = match self.watchtower {
            true => self.channel.penalty(old, &self.channel.remote)?,
            false => None,
        };
        let ch = &self.channel;
        let c = self.channeld.as_mut().ok_or_else(|| scenario("channeld is not running"))?;
        let _: ValidateRevocationReply = c.call(&req)?;
        if let Some(p) = &penalty {
            sign_tx(c, ch, p)?;
        }
        let revoked = std::mem::replace(&mut self.channel.remote, next);
        self.channel.revoked_remote = Some((old, revoked));
        self.channel.remote_num = old + 1;
        Ok(())
    }

    /// The peer's `commitment_signed` for our next commitment with content `next`; we
    /// revoke the current one.
    fn receive_commitment_signed(&mut self, next: CommitState) -> Result<(), FlowError> {
        let n = self.channel.local_num + 1;
        let mut validations = vec![self.channel.validate_commitment(n, &next)?];
        // Splices in flight: one commitment_signed per splice follows, same number and point.
        for s in &self.channel.splices {
            validations.push(self.channel.validate_commitment_on(n, &next.spliced(s)?, Some(s))?);
        }
        let (revoke, expected) = self.channel.revoke_commitment(n - 1)?;
        let ch = &self.channel;
        let c = self.channeld.as_mut().ok_or_else(|| scenario("channeld is not running"))?;
        for (req, point) in &validations {
            let reply: ValidateCommitmentTxReply = c.call(req)?;
            ch.check_validate_reply(&reply, point)?;
        }
        let reply: RevokeCommitmentTxReply = c.call(&revoke)?;
        check_eq(RevokeCommitmentTx::NAME, "reply", &reply, &expected)?;
        self.channel.local = next;
        self.channel.local_num = n;
        Ok(())
    }

    /// A splice we initiate, moving `relative_amount` satoshis into (positive) or out of
    /// (negative) our balance (see [`Channel::splice`]), as Core Lightning's channeld asks hsmd
    /// once the interactive construction is done (`splice_initiator_user_finalized`,
    /// `interactive_send_commitments`, `resume_splice_negotiation`): `setup_channel` with the
    /// new funding, then — the accepter signs first — `get_per_commitment_point` of our current
    /// number and `validate_commitment_tx` of our CURRENT commitment rebuilt on the new funding
    /// (no revocation), then `sign_remote_commitment_tx` of the peer's CURRENT commitment on it
    /// (its current point) and its HTLC transactions; lightningd's `sign_withdrawal` of our
    /// wallet input (a splice-in); and `sign_splice_tx` of the channel's input. The splice then
    /// stays in flight until [`Node::splice_lock`]: every update signs and validates one
    /// commitment per funding.
    ///
    /// Read from a pre-batching channeld (no `start_batch`); UNVERIFIED for the newest Core
    /// Lightning: the `push_value` encoding (raw satoshis of the other side here; a fixed
    /// variant sends the fundee's times 1000 — Warden reads both), whether a batch is signed
    /// in another order than current funding first, and whether `lock_outpoint` is still
    /// sent at a splice's lock-in (Warden also locks in on the first update on the splice).
    pub fn splice(&mut self, relative_amount: i64) -> Result<(), FlowError> {
        let splice = self.channel.splice(relative_amount)?;
        self.splice_with(splice)
    }

    /// [`Node::splice`] of a splice built by the caller (a test may change it first).
    pub fn splice_with(&mut self, splice: Splice) -> Result<(), FlowError> {
        let ch = &self.channel;
        let setup = ch.splice_setup_channel(&splice);
        let (point_req, point) = ch.get_per_commitment_point(ch.local_num)?;
        let (validate, next_point) =
            ch.validate_commitment_on(ch.local_num, &ch.local.spliced(&splice)?, Some(&splice))?;
        let (sign_remote, built) = ch.sign_remote_commitment_on(
            ch.remote_num,
            &ch.remote.spliced(&splice)?,
            Some(&splice),
        )?;
        let htlcs = ch.sign_remote_htlc_txs(&built)?;
        let withdrawal = ch.sign_splice_wallet_input(&splice)?;
        let sign_splice = ch.sign_splice(&splice)?;
        let c = self.channeld.as_mut().ok_or_else(|| scenario("channeld is not running"))?;
        let _: SetupChannelReply = c.call(&setup)?;
        let reply: GetPerCommitmentPointReply = c.call(&point_req)?;
        check_eq(
            GetPerCommitmentPoint::NAME,
            "current point",
            &reply.per_commitment_point,
            &point,
        )?;
        let reply: ValidateCommitmentTxReply = c.call(&validate)?;
        ch.check_validate_reply(&reply, &next_point)?;
        sign_tx(c, ch, &sign_remote)?;
        for h in &htlcs {
            sign_tx(c, ch, h)?;
        }
        if let Some(w) = &withdrawal {
            let reply: SignWithdrawalReply = self.hsmd.master().call(&w.request)?;
            check_psbt(ch, SignWithdrawal::NAME, w, reply.psbt.psbt())?;
        }
        let c = self.channeld.as_mut().ok_or_else(|| scenario("channeld is not running"))?;
        sign_tx(c, ch, &sign_splice)?;
        self.channel.splices.push(splice);
        Ok(())
    }

    /// Lock-in of the last splice (`check_mutual_splice_locked`): channeld's
    /// `lock_signer_outpoint` asks `check_outpoint` then `lock_outpoint` for the new funding
    /// outpoint; from then on updates are on the new funding only.
    pub fn splice_lock(&mut self) -> Result<(), FlowError> {
        let index = self
            .channel
            .splices
            .len()
            .checked_sub(1)
            .ok_or_else(|| scenario("no splice in flight"))?;
        let outpoint = self.channel.splices.get(index).map(|s| s.outpoint).unwrap_or_default();
        let ch = &self.channel;
        let c = self.channeld.as_mut().ok_or_else(|| scenario("channeld is not running"))?;
        let buried: CheckOutpointReply = c.call(&ch.check_outpoint_of(&outpoint))?;
        check_eq(CheckOutpoint::NAME, "buried", &buried.is_buried, &true)?;
        let _: LockOutpointReply = c.call(&ch.lock_outpoint_of(&outpoint))?;
        self.channel.lock_splice(index)?;
        Ok(())
    }

    /// One update round: `initiator` sends `changes` and the first `commitment_signed`; both
    /// commitments move on by one.
    pub fn round(&mut self, initiator: Who, changes: &[Change]) -> Result<(), FlowError> {
        self.preapprove_our_payments(changes)?;
        let remote_next = self.channel.remote.apply(changes)?;
        let local_next = self.channel.local.apply(changes)?;
        match initiator {
            Who::Us => {
                self.send_commitment_signed(&remote_next)?;
                self.receive_revoke_and_ack(remote_next)?;
                self.receive_commitment_signed(local_next)?;
            }
            Who::Them => {
                self.receive_commitment_signed(local_next)?;
                self.send_commitment_signed(&remote_next)?;
                self.receive_revoke_and_ack(remote_next)?;
            }
        }
        Ok(())
    }

    /// payments: lightningd pre-approves each payment it sends (`preapprove_keysend`, on the
    /// master connection) before channeld offers its HTLC; every one must be approved.
    fn preapprove_our_payments(&mut self, changes: &[Change]) -> Result<(), FlowError> {
        let destination = self.channel.peer_id();
        for change in changes {
            if let Change::Add(h) = change {
                if h.offerer != Who::Us {
                    continue;
                }
                let m = PreapproveKeysend {
                    destination,
                    payment_hash: bitcoin::hashes::Hash::from_byte_array(h.payment_hash().0),
                    amount_msat: warden_wire::AmountMsat(h.amount.0),
                };
                let reply: PreapproveKeysendReply = self.hsmd.master().call(&m)?;
                check_eq(PreapproveKeysend::NAME, "approved", &reply.approved, &true)?;
            }
        }
        Ok(())
    }

    /// `n` rounds of random HTLC traffic (adds of trimmed and untrimmed amounts, fulfills and
    /// fails, in both directions), reproducible from `seed`.
    pub fn update_rounds(&mut self, n: usize, seed: u64) -> Result<(), FlowError> {
        let mut rng = TestRng::new(seed);
        for _ in 0..n {
            let initiator = if rng.chance(50) { Who::Us } else { Who::Them };
            let changes = random_changes(&mut self.channel, &mut rng, initiator);
            self.round(initiator, &changes)?;
        }
        Ok(())
    }

    /// An `update_fee` from the opener to `feerate`, in its own round.
    pub fn update_fee(&mut self, feerate: FeeratePerKw) -> Result<(), FlowError> {
        let opener = match self.channel.params().funder {
            Funder::Us => Who::Us,
            Funder::Them => Who::Them,
        };
        self.round(opener, &[Change::Fee(feerate)])
    }

    /// Settles every HTLC in flight (each receiver fulfills), then closes cooperatively:
    /// closingd signs the mutual close at the base fee of the current feerate.
    pub fn cooperative_close(&mut self) -> Result<(), FlowError> {
        for receiver in [Who::Us, Who::Them] {
            let settle: Vec<Change> = self
                .channel
                .local
                .htlcs
                .iter()
                .filter(|h| h.offerer != receiver)
                .map(|h| Change::Fulfill(h.id))
                .collect();
            if !settle.is_empty() {
                self.round(receiver, &settle)?;
            }
        }
        self.channeld = None;
        let ch = &self.channel;
        let mut closingd =
            self.hsmd.client("closingd", ch.peer_id(), ch.params().dbid, perms::CLOSINGD)?;
        let fee = ch.local.feerate.fee_for_weight(724);
        let s = ch.sign_mutual_close(fee)?;
        sign_tx(&mut closingd, ch, &s)?;
        Ok(())
    }

    /// A unilateral close of the kind given, and every sweep lightningd asks hsmd to sign for
    /// onchaind.
    pub fn unilateral_close_with_sweeps(&mut self, kind: Unilateral) -> Result<(), FlowError> {
        self.channeld = None;
        let ch = &self.channel;
        let _onchaind =
            self.hsmd.client("onchaind", ch.peer_id(), ch.params().dbid, perms::ONCHAIND)?;
        let master = self.hsmd.master();
        match kind {
            Unilateral::Ours => {
                let (s, built) = ch.sign_commitment()?;
                let reply: SignCommitmentTxReply = master.call(&s.request)?;
                check(ch, SignCommitmentTx::NAME, &s.expect, &reply.sig)?;
                if let Some((vout, out)) = built.output(CommitmentOutputKind::ToBroadcaster) {
                    let d = ch.sign_delayed_to_us(&built, built.outpoint(vout), out.value)?;
                    sign_tx(master, ch, &d)?;
                }
                let peer_sigs = ch.peer().sign_htlc_txs(&built)?;
                for (i, htlc_tx) in built.htlc_txs()?.iter().enumerate() {
                    let s = ch.sign_local_htlc_tx(&built, htlc_tx)?;
                    let ours = sign_tx(master, ch, &s)?;
                    if ch.params().channel_type.has_anchors() {
                        // Zero-fee HTLC transaction: lightningd adds a wallet input for the
                        // fee right away and asks hsmd to sign it.
                        let theirs =
                            peer_sigs.get(i).ok_or_else(|| scenario("missing peer htlc sig"))?;
                        let preimage = ch
                            .local
                            .htlcs
                            .iter()
                            .find(|h| h.payment_hash() == htlc_tx.htlc.payment_hash)
                            .filter(|_| htlc_tx.kind == HtlcTxKind::Success)
                            .map(|h| PaymentPreimage::new(h.preimage));
                        let witness = htlc_tx
                            .witness(theirs, &ours, preimage.as_ref())
                            .map_err(|e| scenario(e.to_string()))?;
                        let m = ch.sign_htlc_tx_mingle(htlc_tx, witness)?;
                        let reply: SignHtlcTxMingleReply = master.call(&m.request)?;
                        check_psbt(ch, SignHtlcTxMingle::NAME, &m, reply.psbt.psbt())?;
                    }
                    if i == 0 {
                        // The second stage: the HTLC transaction's delayed output.
                        let value = htlc_tx
                            .tx
                            .output
                            .first()
                            .map(|o| Sat(o.value.to_sat()))
                            .ok_or_else(|| scenario("htlc tx without output"))?;
                        let outpoint =
                            bitcoin::OutPoint { txid: htlc_tx.tx.compute_txid(), vout: 0 };
                        let d = ch.sign_delayed_to_us(&built, outpoint, value)?;
                        sign_tx(master, ch, &d)?;
                    }
                }
                if let Some(a) = ch.sign_anchorspend(&built)? {
                    let reply: SignAnchorspendReply = master.call(&a.request)?;
                    check_psbt(ch, SignAnchorspend::NAME, &a, reply.psbt.psbt())?;
                }
            }
            Unilateral::Theirs => {
                let built = ch.their_commitment(ch.remote_num, &ch.remote)?;
                for s in ch.sign_remote_htlcs_to_us(&built, &ch.remote)? {
                    sign_tx(master, ch, &s)?;
                }
            }
            Unilateral::TheirRevoked => {
                let (n, state) = ch
                    .revoked_remote
                    .as_ref()
                    .ok_or_else(|| scenario("no revoked commitment yet"))?;
                for s in ch.sign_penalties_to_us(*n, state)? {
                    sign_tx(master, ch, &s)?;
                }
            }
        }
        Ok(())
    }
}

/// Checks a PSBT hsmd signed: same transaction as asked, and a valid signature on the channel
/// input and on every wallet input.
fn check_psbt<M>(
    ch: &Channel,
    name: &'static str,
    asked: &PsbtSigning<M>,
    signed: &Psbt,
) -> Result<(), VerifyError> {
    let err = |what: String| VerifyError { request: name, what };
    check_eq(name, "signed transaction", &signed.unsigned_tx, &asked.tx)?;
    let mut checks: Vec<(usize, &Expected)> =
        asked.wallet_inputs.iter().map(|w| (w.input, &w.expect)).collect();
    if let Some((input, expect)) = &asked.channel_input {
        checks.push((*input, expect));
    }
    for (input, expect) in checks {
        let sig = psbt_signature(signed, input, &expect.key)
            .map_err(|what| err(format!("input {input}: {what}")))?;
        check(ch, name, expect, &sig)?;
    }
    Ok(())
}

/// The signature by `key` on input `input` of a signed PSBT: a partial signature, or the
/// first element of a final witness.
fn psbt_signature(
    psbt: &Psbt,
    input: usize,
    key: &secp256k1::PublicKey,
) -> Result<ecdsa::Signature, String> {
    let psbt_input = psbt.inputs.get(input).ok_or("input missing")?;
    if let Some(sig) = psbt_input.partial_sigs.get(&bitcoin::PublicKey::new(*key)) {
        return Ok(*sig);
    }
    let witness = psbt_input.final_script_witness.as_ref().ok_or("input not signed")?;
    let first = witness.nth(0).ok_or("empty witness")?;
    ecdsa::Signature::from_slice(first).map_err(|e| format!("bad signature: {e}"))
}

/// The changes of one random round from `initiator`: one to three of an HTLC add (amounts
/// that are trimmed on both commitments, on one only, or on neither), a fulfill or fail of an
/// HTLC the other side offered, and (from the opener) a feerate change. Balances keep a reserve
/// so that every commitment can be built.
pub fn random_changes(ch: &mut Channel, rng: &mut TestRng, initiator: Who) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut state = ch.local.clone();
    let opener = match ch.params().funder {
        Funder::Us => Who::Us,
        Funder::Them => Who::Them,
    };
    let count = 1 + rng.below(3);
    for _ in 0..count {
        let removable: Vec<u64> =
            state.htlcs.iter().filter(|h| h.offerer != initiator).map(|h| h.id).collect();
        let roll = rng.below(100);
        let change = if roll < 15 && initiator == opener {
            let range = match ch.params().channel_type {
                ChannelType::StaticRemoteKey => (1_000, 8_000),
                ChannelType::AnchorsZeroFeeHtlc => (253, 3_000),
                ChannelType::ZeroFeeCommitments => (0, 1),
            };
            Change::Fee(FeeratePerKw(
                u32::try_from(range.0 + rng.below(range.1 - range.0)).unwrap_or(range.0 as u32),
            ))
        } else if roll < 55 && !removable.is_empty() {
            let id = removable
                .get(usize::try_from(rng.below(removable.len() as u64)).unwrap_or(0))
                .copied()
                .unwrap_or(0);
            if rng.chance(70) {
                Change::Fulfill(id)
            } else {
                Change::Fail(id)
            }
        } else {
            let amount = match rng.below(4) {
                0 => Msat(400_000),
                1 => Msat(2_000_000 + rng.below(1_000_000)),
                2 => Msat(20_000_000),
                _ => Msat(1_000 + rng.below(40_000_000)),
            };
            let balance = match initiator {
                Who::Us => state.to_us,
                Who::Them => state.to_them,
            };
            // Keep a reserve, and room for the fee and anchors if the initiator pays them.
            let reserve = Msat(if initiator == opener { 60_000_000 } else { 20_000_000 });
            let affordable = balance.checked_sub(amount).is_some_and(|left| left >= reserve);
            if state.htlcs.len() >= 8 || !affordable {
                continue;
            }
            let cltv = 500 + u32::try_from(rng.below(1_000)).unwrap_or(0);
            Change::Add(ch.new_htlc(initiator, amount, rng.bytes32(), cltv))
        };
        if let Ok(next) = state.apply(&[change]) {
            state = next;
            changes.push(change);
        }
    }
    if changes.is_empty() {
        changes.push(Change::Add(ch.new_htlc(initiator, Msat(400_000), rng.bytes32(), 700)));
    }
    changes
}
