//! Recognising our own wallet's outputs.
//!
//! Sweeps, anchor spends and HTLC mingles may only pay our wallet, and a withdrawal's change
//! must be ours. lightningd does not always say which key an output uses (an anchor spend's
//! change is P2TR of `bip32_pubkey(final_key_idx)` with no key origin), so Warden recognises
//! wallet outputs by script: every script of the wallet keys `0..WALLET_WINDOW` (a bounded
//! window, like a wallet's gap limit), derived once per signer, or — beyond the window — a
//! PSBT output whose BIP-32 derivation or taproot key origin names an index that Warden
//! derives itself and finds to give exactly that script. A claimed path is never trusted.
//!
//! The scripts of one index: P2WPKH, P2TR (BIP-0086 tweak, no script tree) and P2SH-P2WPKH
//! (lightningd's older `p2sh-segwit` addresses) of the `m/0/0/i` key, and for mnemonic
//! secrets also of the BIP-0086 key `m/86'/0'/0'/0/i`.

use std::collections::HashSet;

use bitcoin::bip32::{ChildNumber, DerivationPath};
use bitcoin::psbt::Output as PsbtOutput;
use bitcoin::{CompressedPublicKey, ScriptBuf};
use warden_core::keys::NodeKeys;
use warden_core::secp256k1::{All, PublicKey, Secp256k1};

/// How many wallet indexes are recognised without a key origin in the PSBT.
pub const WALLET_WINDOW: u32 = 1_000;

/// P2WPKH, P2TR and P2SH-P2WPKH of one public key.
fn key_scripts(secp: &Secp256k1<All>, pk: &PublicKey) -> [ScriptBuf; 3] {
    let (xonly, _) = pk.x_only_public_key();
    let p2wpkh = ScriptBuf::new_p2wpkh(&CompressedPublicKey(*pk).wpubkey_hash());
    let p2sh = ScriptBuf::new_p2sh(&p2wpkh.script_hash());
    [p2wpkh, ScriptBuf::new_p2tr(secp, xonly, None), p2sh]
}

/// The public keys of wallet index `i`: the `m/0/0/i` key, and for mnemonic secrets the
/// BIP-0086 key.
fn index_keys(secp: &Secp256k1<All>, keys: &NodeKeys, i: u32) -> Vec<PublicKey> {
    let wallet = keys.wallet();
    let mut out = Vec::with_capacity(2);
    if let Ok(k) = wallet.bitcoin_key(secp, i) {
        out.push(k.public_key(secp));
    }
    if wallet.uses_bip86() {
        if let Ok(k) = wallet.bip86_key(secp, i) {
            out.push(k.public_key(secp));
        }
    }
    out
}

/// Every script wallet index `i` can pay to.
pub fn index_scripts(secp: &Secp256k1<All>, keys: &NodeKeys, i: u32) -> Vec<ScriptBuf> {
    index_keys(secp, keys, i).iter().flat_map(|pk| key_scripts(secp, pk)).collect()
}

/// Whether `script` is a script of wallet index `index` (its keys derived here).
pub fn is_index_script(
    secp: &Secp256k1<All>,
    keys: &NodeKeys,
    index: u32,
    script: &bitcoin::Script,
) -> bool {
    index_keys(secp, keys, index).iter().any(|pk| key_scripts(secp, pk).iter().any(|s| s == script))
}

/// The scripts of the wallet indexes `0..WALLET_WINDOW`.
pub struct WalletScripts {
    scripts: HashSet<ScriptBuf>,
}

impl std::fmt::Debug for WalletScripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletScripts").field("len", &self.scripts.len()).finish()
    }
}

impl WalletScripts {
    /// Derives the window's scripts (a few milliseconds per hundred indexes).
    pub fn derive(secp: &Secp256k1<All>, keys: &NodeKeys) -> WalletScripts {
        let scripts = (0..WALLET_WINDOW).flat_map(|i| index_scripts(secp, keys, i)).collect();
        WalletScripts { scripts }
    }

    /// Whether `script` is a script of the window.
    pub fn contains(&self, script: &ScriptBuf) -> bool {
        self.scripts.contains(script)
    }
}

fn last_normal_index(path: &DerivationPath) -> Option<u32> {
    match path.as_ref().last()? {
        ChildNumber::Normal { index } => Some(*index),
        ChildNumber::Hardened { .. } => None,
    }
}

/// Whether an output with `script` (and its PSBT metadata, if any) pays our wallet.
pub fn pays_wallet(
    secp: &Secp256k1<All>,
    keys: &NodeKeys,
    window: &WalletScripts,
    script: &ScriptBuf,
    meta: Option<&PsbtOutput>,
) -> bool {
    if window.contains(script) {
        return true;
    }
    let Some(meta) = meta else { return false };
    // A claim counts only if the key it names is the key Warden derives at that index and
    // that key's script is the output's.
    let by_key = meta.bip32_derivation.iter().any(|(pk, (_, path))| {
        last_normal_index(path).is_some_and(|i| {
            index_keys(secp, keys, i).contains(pk) && key_scripts(secp, pk).contains(script)
        })
    });
    let by_xonly = meta.tap_key_origins.iter().any(|(xonly, (_, (_, path)))| {
        last_normal_index(path).is_some_and(|i| {
            index_keys(secp, keys, i).iter().any(|pk| {
                pk.x_only_public_key().0 == *xonly && key_scripts(secp, pk).contains(script)
            })
        })
    });
    by_key || by_xonly
}
