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

    /// Adds the addresses of an account extended public key (an operator's cold wallet): the
    /// receive and change chains (`xpub/0/i`, `xpub/1/i`) for `i < window`, each as P2WPKH,
    /// P2SH-P2WPKH and P2TR (BIP-86 key path). The key must be of `network`'s kind (`xpub`
    /// on mainnet, `tpub` on test networks).
    pub fn add_xpub<C: secp256k1::Verification>(
        &mut self,
        secp: &secp256k1::Secp256k1<C>,
        network: Network,
        xpub: &str,
        window: u32,
    ) -> Result<(), AllowlistError> {
        use bitcoin::bip32::{ChildNumber, Xpub};
        use bitcoin::{CompressedPublicKey, NetworkKind};
        let err = |reason: String| AllowlistError { entry: xpub.into(), reason };
        let key = Xpub::from_str(xpub.trim()).map_err(|e| err(alloc::format!("{e}")))?;
        if key.network != NetworkKind::from(network) {
            return Err(err(alloc::format!("not an extended public key of {network}")));
        }
        for chain in [0u32, 1] {
            let chain_key = key
                .ckd_pub(secp, ChildNumber::Normal { index: chain })
                .map_err(|e| err(alloc::format!("{e}")))?;
            for i in 0..window {
                let child = chain_key
                    .ckd_pub(secp, ChildNumber::Normal { index: i })
                    .map_err(|e| err(alloc::format!("{e}")))?;
                let pk = CompressedPublicKey(child.public_key);
                let wpkh = ScriptBuf::new_p2wpkh(&pk.wpubkey_hash());
                self.scripts.insert(ScriptBuf::new_p2sh(&wpkh.script_hash()));
                self.scripts.insert(wpkh);
                let (xonly, _) = child.public_key.x_only_public_key();
                self.scripts.insert(ScriptBuf::new_p2tr(secp, xonly, None));
            }
        }
        Ok(())
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
    fn an_xpubs_receive_and_change_addresses_are_allowlisted() {
        use bitcoin::bip32::{ChildNumber, Xpriv, Xpub};
        let secp = secp256k1::Secp256k1::new();
        let xpriv = Xpriv::new_master(Network::Regtest, &[7u8; 32]).unwrap();
        let xpub = Xpub::from_priv(&secp, &xpriv);
        let mut list = Allowlist::default();
        list.add_xpub(&secp, Network::Regtest, &xpub.to_string(), 5).unwrap();
        assert_eq!(list.len(), 2 * 5 * 3);
        let child = |chain, i| {
            let path = [ChildNumber::Normal { index: chain }, ChildNumber::Normal { index: i }];
            bitcoin::CompressedPublicKey(xpub.derive_pub(&secp, &path).unwrap().public_key)
        };
        let change4 = ScriptBuf::new_p2wpkh(&child(1, 4).wpubkey_hash());
        assert!(list.contains(&change4));
        let receive5 = ScriptBuf::new_p2wpkh(&child(0, 5).wpubkey_hash());
        assert!(!list.contains(&receive5), "beyond the window");
        let mainnet = list.add_xpub(&secp, Network::Bitcoin, &xpub.to_string(), 5);
        assert!(mainnet.is_err(), "a tpub is not a mainnet key");
        assert!(list.add_xpub(&secp, Network::Regtest, "xpub-nonsense", 5).is_err());
    }

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
