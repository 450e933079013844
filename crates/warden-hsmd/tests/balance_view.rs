//! Property: over random legitimate update sequences (seeded, reproducible; both channel
//! types, either opener, HTLCs both ways, trimmed and not, fee changes), Warden's view of our
//! balance — read from the commitments it signed and validated, never from the node's claims —
//! equals the channel model's at every step; and between legitimate steps, requests that are
//! refused (value moved to the peer, a skipped number, a flipped byte) change nothing.
//!
//! Requests are built by `warden-testkit`'s channel model and answered in process.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use warden_core::channel::ChannelState;
use warden_core::policy::balance::our_value;
use warden_core::tx::ChannelType;
use warden_core::units::Msat;
use warden_hsmd::permissions;
use warden_hsmd::signer::{ClientContext, Outcome, Signer, StoreChoice};
use warden_testkit::flows::{random_changes, OUR_SECRET, PEER_SECRET};
use warden_testkit::rng::NoEntropy;
use warden_testkit::rng::TestRng;
use warden_testkit::{perms, Channel, ChannelParams, CommitState, Funder, Hsmd, Who};
use warden_wire::msg::*;
use warden_wire::Message;

struct Flow {
    signer: Signer,
    ch: Channel,
    _dir: tempfile::TempDir,
    refused: usize,
}

impl Flow {
    fn new(channel_type: ChannelType, funder: Funder) -> Flow {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hsm_secret"), OUR_SECRET).unwrap();
        let body = Hsmd::regtest_init().encode().unwrap();
        let (signer, _) =
            Signer::init_with(&body, dir.path(), &mut NoEntropy, StoreChoice::Memory).unwrap();
        let ch = Channel::new(ChannelParams::new(channel_type, funder), OUR_SECRET, PEER_SECRET)
            .unwrap();
        Flow { signer, ch, _dir: dir, refused: 0 }
    }

    fn ctx(&self, permissions: warden_wire::Permissions) -> ClientContext {
        if permissions == permissions::ALL {
            ClientContext { id: self.signer.node_id(), dbid: 0, permissions }
        } else {
            ClientContext { id: self.ch.peer_id(), dbid: self.ch.params().dbid, permissions }
        }
    }

    fn call<M: Message, R: Message>(&self, permissions: warden_wire::Permissions, m: &M) -> R {
        let body = m.encode().unwrap();
        match self.signer.handle(&self.ctx(permissions), &body) {
            Ok(Outcome::Reply(r)) => R::decode(&r).unwrap(),
            other => panic!("{}: {other:?}", M::NAME),
        }
    }

    fn state(&self) -> ChannelState {
        self.signer.channel_state(&self.ch.peer_id(), self.ch.params().dbid).unwrap()
    }

    /// Sends `body`, which must be refused, and checks that the channel did not change.
    fn refused(&mut self, what: &str, body: &[u8]) {
        let before = self.state();
        let outcome = self.signer.handle(&self.ctx(perms::CHANNELD), body);
        assert!(outcome.is_err(), "{what} was accepted");
        assert_eq!(self.state(), before, "{what} was refused but changed the channel");
        self.refused += 1;
    }

    fn open(&mut self) {
        let _: NewChannelReply = self.call(permissions::ALL, &self.ch.new_channel());
        let _: SetupChannelReply = self.call(perms::OPENINGD, &self.ch.setup_channel());
        let (sign, _) = self.ch.sign_remote_commitment(0, &self.ch.remote).unwrap();
        let (validate, _) = self.ch.validate_commitment(0, &self.ch.local).unwrap();
        if self.ch.params().funder == Funder::Us {
            let _: SignTxReply = self.call(perms::OPENINGD, &sign.request);
            let _: ValidateCommitmentTxReply = self.call(perms::OPENINGD, &validate);
        } else {
            let _: ValidateCommitmentTxReply = self.call(perms::OPENINGD, &validate);
            let _: SignTxReply = self.call(perms::OPENINGD, &sign.request);
        }
    }

    /// Warden's view of our value in its current commitments equals the model's.
    fn check_view(&self, step: &str) {
        let state = self.state();
        let setup = state.setup.as_ref().unwrap();
        let holder = &state.holder.current.as_ref().unwrap().content;
        let theirs = &state.counterparty.current.as_ref().unwrap().content;
        for (side, content, model) in
            [("ours", holder, &self.ch.local), ("theirs", theirs, &self.ch.remote)]
        {
            let warden = our_value(setup, content).unwrap().0;
            let expected = model.to_us.to_sat_floor().0;
            assert!(
                warden.abs_diff(expected) <= 1,
                "{step}: our value in {side} commitment: warden {warden} sat, model {expected} sat"
            );
        }
    }

    /// A copy of `state` with `amount` moved from us to the peer (no HTLC).
    fn theft(state: &CommitState, amount: Msat) -> CommitState {
        let mut stolen = state.clone();
        stolen.to_us = Msat(state.to_us.0 - amount.0);
        stolen.to_them = Msat(state.to_them.0 + amount.0);
        stolen
    }

    /// Refused requests aimed at the next step; none may change the channel.
    fn attacks(&mut self, rng: &mut TestRng, local_next: &CommitState, remote_next: &CommitState) {
        let n = self.ch.local_num + 1;
        let m = self.ch.remote_num + 1;
        // Beyond the trimmed-HTLC pool (at most the dust exposure limit), which Warden cannot
        // see into: value moved without a visible HTLC is refused above it (policy/balance.rs).
        let amount = Msat(60_000_000 + rng.below(100_000) * 1000);
        // What we hold in both next commitments.
        let ours = local_next.to_us.0.min(remote_next.to_us.0);
        if ours > 2 * amount.0 {
            let (validate, _) =
                self.ch.validate_commitment(n, &Flow::theft(local_next, amount)).unwrap();
            self.refused("validate giving our value away", &validate.encode().unwrap());
            let (sign, _) =
                self.ch.sign_remote_commitment(m, &Flow::theft(remote_next, amount)).unwrap();
            self.refused("sign giving our value away", &sign.request.encode().unwrap());
        }
        let (skip, _) = self.ch.validate_commitment(n + 1, local_next).unwrap();
        self.refused("validate of a skipped number", &skip.encode().unwrap());
        let (revoke, _) = self.ch.revoke_commitment(n).unwrap();
        self.refused("revoke of the current commitment", &revoke.encode().unwrap());
        let (valid, _) = self.ch.validate_commitment(n, local_next).unwrap();
        let mut bytes = valid.encode().unwrap();
        // Flip one bit past the 2-byte type: a malformed request, another transaction, a
        // broken signature or a wrong number. A flip Warden accepted would make the next
        // legitimate request a conflicting retry, and the flow would fail.
        let at = 2 + rng.below(bytes.len() as u64 - 2) as usize;
        bytes[at] ^= 1 << rng.below(8);
        // Warden reads nothing else of the PSBT that wraps the transaction (amounts, scripts
        // and keys come from its own state), and a stated feerate is only checked against
        // what the transaction pays within the trimmed-HTLC allowance: a flip there may pass
        // if the transaction and every signature are the valid ones.
        let same_meaning = ValidateCommitmentTx::decode(&bytes).is_ok_and(|d| {
            d.tx.tx() == valid.tx.tx()
                && (&d.htlcs, d.commit_num, &d.sig, &d.htlc_sigs)
                    == (&valid.htlcs, valid.commit_num, &valid.sig, &valid.htlc_sigs)
        });
        if !same_meaning {
            self.refused(&format!("validate with bit flipped at byte {at}"), &bytes);
        }
    }

    fn send_commitment_signed(&mut self, next: &CommitState) {
        let m = self.ch.remote_num + 1;
        let (sign, built) = self.ch.sign_remote_commitment(m, next).unwrap();
        let _: SignTxReply = self.call(perms::CHANNELD, &sign.request);
        for h in self.ch.sign_remote_htlc_txs(&built).unwrap() {
            let _: SignTxReply = self.call(perms::CHANNELD, &h.request);
        }
    }

    fn receive_revoke_and_ack(&mut self, next: CommitState) {
        let old = self.ch.remote_num;
        let revocation = self.ch.validate_revocation(old).unwrap();
        let _: ValidateRevocationReply = self.call(perms::CHANNELD, &revocation);
        let revoked = std::mem::replace(&mut self.ch.remote, next);
        self.ch.revoked_remote = Some((old, revoked));
        self.ch.remote_num = old + 1;
    }

    fn receive_commitment_signed(&mut self, next: CommitState) {
        let n = self.ch.local_num + 1;
        let (validate, point) = self.ch.validate_commitment(n, &next).unwrap();
        let reply: ValidateCommitmentTxReply = self.call(perms::CHANNELD, &validate);
        self.ch.check_validate_reply(&reply, &point).unwrap();
        let (revoke, expected) = self.ch.revoke_commitment(n - 1).unwrap();
        let reply: RevokeCommitmentTxReply = self.call(perms::CHANNELD, &revoke);
        assert_eq!(reply, expected);
        self.ch.local = next;
        self.ch.local_num = n;
    }

    fn round(&mut self, rng: &mut TestRng, step: &str) {
        let initiator = if rng.chance(50) { Who::Us } else { Who::Them };
        let changes = random_changes(&mut self.ch, rng, initiator);
        let local_next = self.ch.local.apply(&changes).unwrap();
        let remote_next = self.ch.remote.apply(&changes).unwrap();
        self.attacks(rng, &local_next, &remote_next);
        match initiator {
            Who::Us => {
                self.send_commitment_signed(&remote_next);
                self.receive_revoke_and_ack(remote_next);
                self.receive_commitment_signed(local_next);
            }
            Who::Them => {
                self.receive_commitment_signed(local_next);
                self.send_commitment_signed(&remote_next);
                self.receive_revoke_and_ack(remote_next);
            }
        }
        self.check_view(step);
    }
}

#[test]
fn wardens_balance_view_follows_the_model_and_refusals_change_nothing() {
    let cases = [
        (ChannelType::AnchorsZeroFeeHtlc, Funder::Us),
        (ChannelType::AnchorsZeroFeeHtlc, Funder::Them),
        (ChannelType::StaticRemoteKey, Funder::Us),
        (ChannelType::StaticRemoteKey, Funder::Them),
    ];
    for seed in 1..=3u64 {
        for (channel_type, funder) in cases {
            let mut flow = Flow::new(channel_type, funder);
            let mut rng = TestRng::new(seed * 1000 + u64::from(funder == Funder::Us));
            flow.open();
            flow.check_view("open");
            for round in 0..30 {
                flow.round(
                    &mut rng,
                    &format!("{channel_type:?}/{funder:?} seed {seed} round {round}"),
                );
            }
            // Two attacks every round (skip, early revoke), thefts whenever we hold enough, flips.
            assert!(flow.refused > 2 * 30, "{}", flow.refused);
        }
    }
}
