//! Rules on the node's on-chain transactions that the channel state decides: the allowlist of
//! destinations outside our wallet, `onchain-push` and `onchain-funding-countersigned`.
//!
//! The transaction-level checks (inputs, fee, format, which output is ours, and the hook where
//! approvals lift `onchain-unknown-destination`) live with the requests in warden-hsmd
//! (`onchain.rs`), which call these.

use alloc::collections::BTreeSet;
use alloc::string::String;
use core::fmt;
use core::str::FromStr;

use bitcoin::{Address, Network, Script, ScriptBuf};

use super::{ensure, Limits, PolicyError, Rule};
use crate::channel::ChannelState;
use crate::units::Sat;

/// Output scripts the operator declared as destinations of theirs outside the wallet (a cold
/// wallet, an exchange deposit address). An allowlisted script is a valid destination of a
/// withdrawal (`onchain-unknown-destination`), a mutual close (`close-destination`) and a sweep
/// (`sweep-destination`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    scripts: BTreeSet<ScriptBuf>,
}

/// An allowlist entry that is not an address of the network the signer runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowlistError {
    /// The entry as given.
    pub entry: String,
    /// Why it was refused.
    pub reason: String,
}

impl fmt::Display for AllowlistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "allowlist entry {:?}: {}", self.entry, self.reason)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AllowlistError {}

impl Allowlist {
    /// An allowlist of these scripts.
    pub fn from_scripts(scripts: impl IntoIterator<Item = ScriptBuf>) -> Allowlist {
        Allowlist { scripts: scripts.into_iter().collect() }
    }

    /// An allowlist of addresses, each of which must be valid for `network` (an address of
    /// another network is refused, never silently kept: it could never be paid).
    pub fn from_addresses<'a>(
        network: Network,
        addresses: impl IntoIterator<Item = &'a str>,
    ) -> Result<Allowlist, AllowlistError> {
        let mut scripts = BTreeSet::new();
        for entry in addresses {
            let err = |reason: String| AllowlistError { entry: entry.into(), reason };
            let unchecked =
                Address::from_str(entry.trim()).map_err(|e| err(alloc::format!("{e}")))?;
            let address = unchecked
                .require_network(network)
                .map_err(|_| err(alloc::format!("not an address of {network}")))?;
            scripts.insert(address.script_pubkey());
        }
        Ok(Allowlist { scripts })
    }

    /// Whether `script` is allowlisted.
    pub fn contains(&self, script: &Script) -> bool {
        self.scripts.contains(script)
    }

    /// How many scripts are allowlisted.
    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    /// Whether nothing is allowlisted.
    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }
}

/// `onchain-push`: when we opened `state`'s channel, what we give the peer at the start —
/// `setup_channel`'s push value less what the peer brought to the funding transaction
/// (`peer_contribution`, the value of the inputs we do not sign less the outputs that are
/// neither ours nor a funding output) — is within [`Limits::max_push`].
///
/// Core Lightning's `setup_channel` states, for a dual-funded open, the accepter's own
/// contribution in the push field, so a push is only a gift when the peer did not bring it.
/// The rule is checked when Warden signs the funding transaction: before that, the commitments
/// of the channel spend nothing.
pub fn check_push(
    limits: &Limits,
    state: &ChannelState,
    peer_contribution: Sat,
) -> Result<(), PolicyError> {
    let setup = state.setup()?;
    if !setup.is_outbound {
        return Ok(());
    }
    let push = setup.push_value.to_sat_floor();
    let gift = push.checked_sub(peer_contribution).unwrap_or(Sat::ZERO);
    ensure!(
        gift <= limits.max_push,
        Rule::OnchainPush,
        "channel {} gives the peer {gift} at the start ({push} pushed, {peer_contribution} \
         brought by the peer), above the limit of {}",
        state.slot.dbid,
        limits.max_push
    );
    Ok(())
}

/// `onchain-funding-countersigned`: the funding transaction of `state`'s channel is signed only
/// once our commitment #0 was validated with the peer's signatures (`validate_commitment_tx`
/// at 0): otherwise the funds could be locked in a 2-of-2 we cannot spend alone.
pub fn check_funding_countersigned(state: &ChannelState) -> Result<(), PolicyError> {
    state.setup()?;
    ensure!(
        state.holder.next_number > 0,
        Rule::OnchainFundingCountersigned,
        "channel {} is funded before our commitment #0 was validated with the peer's signature",
        state.slot.dbid
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn addresses_of_the_network_only() {
        let regtest = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
        let mainnet = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
        let list = Allowlist::from_addresses(Network::Regtest, [regtest]).unwrap();
        assert_eq!(list.len(), 1);
        let script = Address::from_str(regtest).unwrap().assume_checked().script_pubkey();
        assert!(list.contains(&script));
        let e = Allowlist::from_addresses(Network::Regtest, [mainnet]).unwrap_err();
        assert_eq!(e.entry, mainnet);
        assert!(Allowlist::from_addresses(Network::Bitcoin, ["not an address"]).is_err());
        assert!(Allowlist::from_addresses(Network::Bitcoin, [mainnet]).is_ok());
        assert!(Allowlist::default().is_empty());
    }
}
