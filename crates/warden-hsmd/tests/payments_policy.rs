//! The payment rules through `Signer::handle`: one mutation per `payment-*` rule (asserting
//! the `Rule`), approvals by allowlist and velocity, BOLT-11 invoices built and signed with
//! `lightning-invoice`, and the velocity budget across a restart of the durable store.
//!
//! Channels are driven with `warden-testkit`'s channel model, answered in process; the signer
//! reads a fixed clock (`Signer::set_payment_clock`).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use std::path::Path;
use std::time::Duration;

use bitcoin::hashes::{sha256, Hash};
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use secp256k1::{PublicKey, Secp256k1, SecretKey};
use warden_core::keys::NodeId as CoreNodeId;
use warden_core::policy::payment::{PaymentLimits, DAY};
use warden_core::policy::Rule;
use warden_core::rng::EntropySource;
use warden_core::tx::ChannelType;
use warden_core::units::Msat;
use warden_hsmd::durable::Clock;
use warden_hsmd::payments::PaymentRequest;
use warden_hsmd::permissions;
use warden_hsmd::signer::{BadRequestError, ClientContext, Outcome, Signer, StoreChoice};
use warden_testkit::channel::{Change, CommitState};
use warden_testkit::flows::{OUR_SECRET, PEER_SECRET};
use warden_testkit::rng::NoEntropy;
use warden_testkit::rng::TestRng;
use warden_testkit::{perms, Channel, ChannelParams, Funder, Hsmd, Who};
use warden_wire::msg::*;
use warden_wire::{AmountMsat, Message, WireString};

const NOW: u64 = 1_800_000_000;

struct Stream(TestRng);
impl EntropySource for Stream {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.0.next_u64() as u8;
        }
    }
}

struct FixedClock(u64);
impl Clock for FixedClock {
    fn now_unix_secs(&self) -> u64 {
        self.0
    }
}

/// A small budget: 10,000 sat per hour, 20,000 sat per day (test-network CLTV delta of 1).
fn small_budget() -> PaymentLimits {
    PaymentLimits {
        velocity_per_hour: Some(Msat(10_000_000)),
        velocity_per_day: Some(Msat(20_000_000)),
        ..PaymentLimits::test_network()
    }
}

/// A regtest signer on the durable store in `dir`, at `NOW`, with `limits`.
fn start(dir: &Path, run: u64, limits: PaymentLimits) -> Signer {
    let body = Hsmd::regtest_init().encode().unwrap();
    let store = StoreChoice::Durable {
        clock: Box::new(FixedClock(NOW)),
        entropy: Box::new(Stream(TestRng::new(run))),
    };
    let (s, _) = Signer::init_with(&body, dir, &mut NoEntropy, store).unwrap();
    s.set_payment_clock(Box::new(FixedClock(NOW)));
    s.set_payment_limits(limits);
    s
}

fn new_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hsm_secret"), OUR_SECRET).unwrap();
    dir
}

fn key(b: u8) -> SecretKey {
    SecretKey::from_slice(&[b; 32]).unwrap()
}

fn pubkey(b: u8) -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::new(), &key(b))
}

fn refused_rule<T: std::fmt::Debug>(r: Result<T, BadRequestError>) -> Rule {
    match r {
        Err(BadRequestError::Refused(e)) => e.rule,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The lightningd side of one channel, answered in process.
struct Flow {
    ch: Channel,
}

impl Flow {
    fn new() -> Flow {
        let params = ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
        Flow { ch: Channel::new(params, OUR_SECRET, PEER_SECRET).unwrap() }
    }

    fn ctx(&self, s: &Signer, permissions: warden_wire::Permissions) -> ClientContext {
        match permissions == permissions::ALL {
            true => ClientContext { id: s.node_id(), dbid: 0, permissions },
            false => {
                ClientContext { id: self.ch.peer_id(), dbid: self.ch.params().dbid, permissions }
            }
        }
    }

    fn try_call<M: Message, R: Message>(
        &self,
        s: &Signer,
        permissions: warden_wire::Permissions,
        m: &M,
    ) -> Result<R, BadRequestError> {
        match s.handle(&self.ctx(s, permissions), &m.encode().unwrap())? {
            Outcome::Reply(r) => Ok(R::decode(&r).unwrap()),
            Outcome::NewClient { .. } => panic!("unexpected new client"),
        }
    }

    fn call<M: Message, R: Message>(
        &self,
        s: &Signer,
        permissions: warden_wire::Permissions,
        m: &M,
    ) -> R {
        self.try_call(s, permissions, m).unwrap_or_else(|e| panic!("{}: {e}", M::NAME))
    }

    fn open(&mut self, s: &Signer) {
        let _: NewChannelReply = self.call(s, permissions::ALL, &self.ch.new_channel());
        let _: SetupChannelReply = self.call(s, perms::OPENINGD, &self.ch.setup_channel());
        let (sign, _) = self.ch.sign_remote_commitment(0, &self.ch.remote).unwrap();
        let _: SignTxReply = self.call(s, perms::OPENINGD, &sign.request);
        let (validate, point) = self.ch.validate_commitment(0, &self.ch.local).unwrap();
        let reply: ValidateCommitmentTxReply = self.call(s, perms::OPENINGD, &validate);
        self.ch.check_validate_reply(&reply, &point).unwrap();
    }

    /// Validates our next commitment `next` and revokes the current one.
    fn receive_commitment_signed(
        &mut self,
        s: &Signer,
        next: CommitState,
    ) -> Result<(), BadRequestError> {
        let n = self.ch.local_num + 1;
        let (validate, point) = self.ch.validate_commitment(n, &next).unwrap();
        let reply: ValidateCommitmentTxReply = self.try_call(s, perms::CHANNELD, &validate)?;
        self.ch.check_validate_reply(&reply, &point).unwrap();
        let (revoke, expected) = self.ch.revoke_commitment(n - 1).unwrap();
        let reply: RevokeCommitmentTxReply = self.call(s, perms::CHANNELD, &revoke);
        assert_eq!(reply, expected);
        self.ch.local = next;
        self.ch.local_num = n;
        Ok(())
    }

    /// Signs the peer's next commitment `next` (and its HTLC transactions) and takes the
    /// peer's revocation of the current one.
    fn send_commitment_signed(
        &mut self,
        s: &Signer,
        next: CommitState,
    ) -> Result<(), BadRequestError> {
        let m = self.ch.remote_num + 1;
        let (sign, built) = self.ch.sign_remote_commitment(m, &next).unwrap();
        let _: SignTxReply = self.try_call(s, perms::CHANNELD, &sign.request)?;
        for h in self.ch.sign_remote_htlc_txs(&built).unwrap() {
            let _: SignTxReply = self.call(s, perms::CHANNELD, &h.request);
        }
        let old = self.ch.remote_num;
        let revocation = self.ch.validate_revocation(old).unwrap();
        let _: ValidateRevocationReply = self.call(s, perms::CHANNELD, &revocation);
        let revoked = std::mem::replace(&mut self.ch.remote, next);
        self.ch.revoked_remote = Some((old, revoked));
        self.ch.remote_num = old + 1;
        Ok(())
    }

    /// One round: `initiator` sends `changes`; both commitments move on by one.
    fn round(
        &mut self,
        s: &Signer,
        initiator: Who,
        changes: &[Change],
    ) -> Result<(), BadRequestError> {
        let remote_next = self.ch.remote.apply(changes).unwrap();
        let local_next = self.ch.local.apply(changes).unwrap();
        match initiator {
            Who::Us => {
                self.send_commitment_signed(s, remote_next)?;
                self.receive_commitment_signed(s, local_next)
            }
            Who::Them => {
                self.receive_commitment_signed(s, local_next)?;
                self.send_commitment_signed(s, remote_next)
            }
        }
    }

    /// An HTLC of `msat` offered by `who` for the hash of `preimage`.
    fn add(&mut self, who: Who, msat: u64, preimage: [u8; 32], cltv: u32) -> Change {
        Change::Add(self.ch.new_htlc(who, Msat(msat), preimage, cltv))
    }
}

fn hash_of(preimage: [u8; 32]) -> [u8; 32] {
    sha256::Hash::hash(&preimage).to_byte_array()
}

/// A regtest BOLT-11 invoice for `msat` to the hash of `preimage`, created at `created`
/// (unix seconds) and valid for an hour, signed by `signer` (naming `payee` in its `n` field
/// when given).
fn invoice(msat: u64, preimage: [u8; 32], created: u64, signer: u8, payee: Option<u8>) -> String {
    let mut builder = InvoiceBuilder::new(Currency::Regtest)
        .description("warden test".into())
        .payment_hash(sha256::Hash::hash(&preimage))
        .payment_secret(PaymentSecret([7; 32]))
        .duration_since_epoch(Duration::from_secs(created))
        .min_final_cltv_expiry_delta(18)
        .amount_milli_satoshis(msat)
        .expiry_time(Duration::from_secs(3_600));
    if let Some(p) = payee {
        builder = builder.payee_pub_key(pubkey(p));
    }
    let secp = Secp256k1::new();
    let signed = builder
        .try_build_signed::<_, ()>(|digest| Ok(secp.sign_ecdsa_recoverable(digest, &key(signer))))
        .unwrap();
    signed.to_string()
}

fn preapprove(s: &Signer, invstring: &str) -> bool {
    let flow = Flow::new();
    let m = PreapproveInvoiceCheck {
        invstring: WireString::new(invstring.as_bytes().to_vec()).unwrap(),
        check_only: false,
    };
    let reply: PreapproveInvoiceReply = flow.call(s, permissions::ALL, &m);
    reply.approved
}

fn decision(s: &Signer, invstring: &str) -> Result<(), Rule> {
    s.payment_decision(&PaymentRequest::Invoice { invstring: invstring.as_bytes() }, false)
        .map_err(|e| e.rule)
}

fn keysend(s: &Signer, preimage: [u8; 32], msat: u64) -> bool {
    let flow = Flow::new();
    let m = PreapproveKeysend {
        destination: warden_wire::NodeId::from(pubkey(0x31)),
        payment_hash: sha256::Hash::hash(&preimage),
        amount_msat: AmountMsat(msat),
    };
    let reply: PreapproveKeysendReply = flow.call(s, permissions::ALL, &m);
    reply.approved
}

#[test]
fn an_unbalanced_outgoing_htlc_for_a_known_hash_is_refused() {
    let dir = new_dir();
    let s = start(dir.path(), 1, small_budget());
    let mut flow = Flow::new();
    flow.open(&s);
    // The peer offers 20,000 sat for hash h: known, and covered once in both commitments.
    let incoming = flow.add(Who::Them, 20_000_000, [1; 32], 700);
    flow.round(&s, Who::Them, &[incoming]).unwrap();
    assert_eq!(s.payment_ledger().totals(&hash_of([1; 32])).0, Msat(20_000_000));
    // We offer 35,000 sat for h: 15,000 sat uncovered, beyond the 10,000 sat budget.
    let outgoing = flow.add(Who::Us, 35_000_000, [1; 32], 600);
    assert_eq!(refused_rule(flow.round(&s, Who::Us, &[outgoing])), Rule::PaymentUnbalanced);
}

#[test]
fn an_outgoing_htlc_for_an_unknown_hash_beyond_the_budget_is_refused() {
    let dir = new_dir();
    let s = start(dir.path(), 1, small_budget());
    let mut flow = Flow::new();
    flow.open(&s);
    // Within the budget: `sendpay` without a pre-approval keeps working.
    let small = flow.add(Who::Us, 6_000_000, [2; 32], 600);
    flow.round(&s, Who::Us, &[small]).unwrap();
    assert_eq!(s.payment_ledger().velocity_spent(NOW, DAY), Msat(6_000_000));
    // 20,000 sat for an unknown hash: beyond it.
    let big = flow.add(Who::Us, 20_000_000, [3; 32], 600);
    assert_eq!(refused_rule(flow.round(&s, Who::Us, &[big])), Rule::PaymentVelocity);
}

#[test]
fn a_routed_htlc_with_a_too_small_cltv_delta_is_refused() {
    let dir = new_dir();
    let s = start(dir.path(), 1, PaymentLimits::test_network());
    let mut flow = Flow::new();
    flow.open(&s);
    let incoming = flow.add(Who::Them, 20_000_000, [4; 32], 700);
    flow.round(&s, Who::Them, &[incoming]).unwrap();
    // Forwarded with the same expiry: below the test networks' delta of 1 block.
    let same = flow.add(Who::Us, 19_000_000, [4; 32], 700);
    assert_eq!(refused_rule(flow.round(&s, Who::Us, &[same])), Rule::PaymentCltvDelta);
    // One block earlier is enough there.
    let ok = flow.add(Who::Us, 19_000_000, [4; 32], 699);
    flow.round(&s, Who::Us, &[ok]).unwrap();
}

#[test]
fn a_fee_above_the_cap_on_an_approved_payment_beyond_the_budget_is_refused() {
    let dir = new_dir();
    let s = start(dir.path(), 1, small_budget());
    let mut flow = Flow::new();
    flow.open(&s);
    // A 5,000 sat keysend, approved within the budget (5,000 sat left).
    assert!(keysend(&s, [5; 32], 5_000_000));
    // Paid with a 50 sat fee: within the cap (1 %).
    let ok = flow.add(Who::Us, 5_050_000, [5; 32], 600);
    flow.round(&s, Who::Us, &[ok]).unwrap();
    assert_eq!(s.payment_ledger().velocity_spent(NOW, DAY), Msat(5_000_000));
    // Another part of 20,000 sat: 20,000 sat of "fee", beyond the budget left.
    let part = flow.add(Who::Us, 20_000_000, [5; 32], 600);
    assert_eq!(refused_rule(flow.round(&s, Who::Us, &[part])), Rule::PaymentFeeCap);
}

#[test]
fn a_refused_request_leaves_the_state_unchanged() {
    let dir = new_dir();
    let s = start(dir.path(), 1, small_budget());
    let mut flow = Flow::new();
    flow.open(&s);
    let peer = flow.ch.peer_id();
    let dbid = flow.ch.params().dbid;
    let channel = s.channel_state(&peer, dbid).unwrap();
    let ledger = s.payment_ledger();
    let big = flow.add(Who::Us, 20_000_000, [6; 32], 600);
    assert_eq!(refused_rule(flow.round(&s, Who::Us, &[big])), Rule::PaymentVelocity);
    assert_eq!(s.channel_state(&peer, dbid).unwrap(), channel);
    assert_eq!(s.payment_ledger(), ledger);
    // The same number, now within the budget, is signed: nothing was consumed.
    let small = flow.add(Who::Us, 7_000_000, [6; 32], 600);
    flow.round(&s, Who::Us, &[small]).unwrap();
    assert_eq!(s.payment_ledger().velocity_spent(NOW, DAY), Msat(7_000_000));
    // Nor do refused pre-approvals.
    let ledger = s.payment_ledger();
    assert!(!keysend(&s, [7; 32], 50_000_000));
    assert_eq!(s.payment_ledger(), ledger);
}

#[test]
fn an_expired_invoice_is_refused() {
    let dir = new_dir();
    let s = start(dir.path(), 1, PaymentLimits::test_network());
    let skew = PaymentLimits::test_network().invoice_clock_skew_secs;
    let fresh = invoice(10_000_000, [8; 32], NOW - 60, 0x41, None);
    assert_eq!(decision(&s, &fresh), Ok(()));
    let expired = invoice(10_000_000, [9; 32], NOW - 3_600 - skew - 1, 0x41, None);
    assert_eq!(decision(&s, &expired), Err(Rule::PaymentInvoiceExpired));
    assert!(!preapprove(&s, &expired));
    let future = invoice(10_000_000, [10; 32], NOW + skew + 60, 0x41, None);
    assert_eq!(decision(&s, &future), Err(Rule::PaymentInvoiceExpired));
}

#[test]
fn an_invoice_with_a_bad_signature_is_refused() {
    let dir = new_dir();
    let s = start(dir.path(), 1, PaymentLimits::test_network());
    // Names payee 0x41 but is signed by 0x42.
    let forged = invoice(10_000_000, [11; 32], NOW - 60, 0x42, Some(0x41));
    assert_eq!(decision(&s, &forged), Err(Rule::PaymentNotApproved));
    assert!(!preapprove(&s, &forged));
    let good = invoice(10_000_000, [11; 32], NOW - 60, 0x41, Some(0x41));
    assert!(preapprove(&s, &good));
    // Another network's invoice is not approved either.
    let mainnet = invoice(10_000_000, [12; 32], NOW - 60, 0x41, None).replacen("lnbcrt", "lnbc", 1);
    assert_eq!(decision(&s, &mainnet), Err(Rule::PaymentNotApproved));
}

#[test]
fn an_allowlisted_payee_is_approved_beyond_the_velocity_budget() {
    let dir = new_dir();
    let mut limits = small_budget();
    limits.allowlist.push(CoreNodeId(pubkey(0x41)));
    let s = start(dir.path(), 1, limits);
    let mut flow = Flow::new();
    flow.open(&s);
    // 50,000 sat: beyond the whole budget unless the payee is allowlisted.
    let stranger = invoice(50_000_000, [13; 32], NOW - 60, 0x42, None);
    assert_eq!(decision(&s, &stranger), Err(Rule::PaymentNotApproved));
    let friend = invoice(50_000_000, [14; 32], NOW - 60, 0x41, None);
    assert!(preapprove(&s, &friend));
    assert_eq!(s.payment_ledger().velocity_spent(NOW, DAY), Msat::ZERO);
    // And its HTLCs, fee included, are covered.
    let pay = flow.add(Who::Us, 50_400_000, [14; 32], 600);
    flow.round(&s, Who::Us, &[pay]).unwrap();
    assert_eq!(s.payment_ledger().velocity_spent(NOW, DAY), Msat::ZERO);
}

#[test]
fn velocity_survives_a_restart() {
    let dir = new_dir();
    let mut flow = Flow::new();
    let s = start(dir.path(), 1, small_budget());
    flow.open(&s);
    assert!(keysend(&s, [15; 32], 4_000_000));
    let part = flow.add(Who::Us, 5_000_000, [16; 32], 600);
    flow.round(&s, Who::Us, &[part]).unwrap();
    let before = s.payment_ledger();
    assert_eq!(before.velocity_spent(NOW, DAY), Msat(9_000_000));
    drop(s);

    let s = start(dir.path(), 2, small_budget());
    let after = s.payment_ledger();
    assert_eq!(after.velocity_spent(NOW, DAY), Msat(9_000_000));
    assert_eq!(after.approval(&hash_of([15; 32])), before.approval(&hash_of([15; 32])));
    assert_eq!(after.totals(&hash_of([16; 32])), before.totals(&hash_of([16; 32])));
    // 9,000 of the hour's 10,000 sat are spent: 2,000 more do not fit after the restart.
    let refused = s.payment_decision(
        &PaymentRequest::Keysend {
            destination: &warden_wire::NodeId::from(pubkey(0x31)),
            payment_hash: hash_of([17; 32]),
            amount_msat: 2_000_000,
        },
        false,
    );
    assert_eq!(refused.unwrap_err().rule, Rule::PaymentVelocity);
    // The HTLCs restored from the channel record are not charged again by the next round.
    let incoming = flow.add(Who::Them, 20_000_000, [18; 32], 700);
    flow.round(&s, Who::Them, &[incoming]).unwrap();
    assert_eq!(s.payment_ledger().velocity_spent(NOW, DAY), Msat(9_000_000));
}

#[test]
fn a_payment_beyond_the_budget_waits_for_the_operator() {
    use warden_hsmd::approvals::{ApprovalRequest, ApprovalState, Approvals};
    let dir = new_dir();
    let s = start(dir.path(), 1, small_budget());
    let destination = warden_wire::NodeId::from(pubkey(0x31));
    let ask = |msat: u64| {
        s.payment_decision(
            &PaymentRequest::Keysend {
                destination: &destination,
                payment_hash: hash_of([20; 32]),
                amount_msat: msat,
            },
            false,
        )
    };
    assert_eq!(ask(50_000_000).unwrap_err().rule, Rule::PaymentNotApproved);
    // The refusal is pending for the operator, who approves it.
    let approvals = Approvals::new(&dir.path().join(warden_hsmd::durable::STORE_DIR));
    let request = ApprovalRequest::Payment {
        payment_hash: hash_of([20; 32]),
        payee: Some(pubkey(0x31).serialize()),
        amount: Some(Msat(50_000_000)),
    };
    assert_eq!(approvals.state(&request.id()), Some(ApprovalState::Pending));
    approvals.decide(&request.id(), true).unwrap();
    // Another amount is another request; the approved one goes through, without velocity.
    assert_eq!(ask(60_000_000).unwrap_err().rule, Rule::PaymentNotApproved);
    ask(50_000_000).unwrap();
    assert_eq!(approvals.state(&request.id()), Some(ApprovalState::Used));
    assert_eq!(s.payment_ledger().velocity_spent(NOW, DAY), Msat::ZERO);
    // And its HTLCs are covered.
    let mut flow = Flow::new();
    flow.open(&s);
    let pay = flow.add(Who::Us, 50_100_000, [20; 32], 600);
    flow.round(&s, Who::Us, &[pay]).unwrap();
    assert_eq!(s.payment_ledger().velocity_spent(NOW, DAY), Msat::ZERO);
}
