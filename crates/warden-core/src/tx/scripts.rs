//! BOLT-03 witness scripts.
//!
//! Every script a channel locks funds with: the 2-of-2 funding script, to_local (revocable,
//! then delayed), to_remote (P2WPKH, or a 1-block CSV P2WSH with anchors), the anchor, and the
//! offered and received HTLC scripts. Keys are the typed roles of [`crate::keys::roles`], named
//! from the point of view of the commitment's broadcaster ("local" in BOLT-03).

use bitcoin::hashes::{hash160, ripemd160, Hash};
use bitcoin::opcodes::all::{
    OP_CHECKMULTISIG, OP_CHECKSIG, OP_CHECKSIGVERIFY, OP_CLTV, OP_CSV, OP_DROP, OP_DUP, OP_ELSE,
    OP_ENDIF, OP_EQUAL, OP_EQUALVERIFY, OP_HASH160, OP_IF, OP_IFDUP, OP_NOTIF, OP_PUSHNUM_1,
    OP_PUSHNUM_16, OP_PUSHNUM_2, OP_SIZE, OP_SWAP,
};
use bitcoin::script::Builder;
use bitcoin::{ScriptBuf, WPubkeyHash};

use super::htlc::PaymentHash;
use super::ChannelType;
use crate::keys::roles::{
    DelayedPaymentPubkey, FundingPubkey, HtlcPubkey, PaymentBasepoint, RevocationPubkey,
};

/// The funding output's witness script: `2 <pubkey1> <pubkey2> 2 OP_CHECKMULTISIG`, with
/// `pubkey1` the lexicographically lesser of the two compressed keys (BOLT-03 "Funding
/// Transaction Output").
pub fn funding_witness_script(a: &FundingPubkey, b: &FundingPubkey) -> ScriptBuf {
    let (first, second) = sorted_funding_keys(a, b);
    Builder::new()
        .push_opcode(OP_PUSHNUM_2)
        .push_slice(first.serialize())
        .push_slice(second.serialize())
        .push_opcode(OP_PUSHNUM_2)
        .push_opcode(OP_CHECKMULTISIG)
        .into_script()
}

/// The two funding keys in the order the funding script lists them (lexicographic order of
/// the compressed encodings).
pub fn sorted_funding_keys<'a>(
    a: &'a FundingPubkey,
    b: &'a FundingPubkey,
) -> (&'a FundingPubkey, &'a FundingPubkey) {
    if a.serialize() <= b.serialize() {
        (a, b)
    } else {
        (b, a)
    }
}

/// The to_local witness script (BOLT-03 "to_local Output"), also the output script of HTLC
/// transactions:
///
/// ```text
/// OP_IF <revocationpubkey> OP_ELSE <to_self_delay> OP_CHECKSEQUENCEVERIFY OP_DROP
/// <local_delayedpubkey> OP_ENDIF OP_CHECKSIG
/// ```
pub fn to_local_witness_script(
    revocation: &RevocationPubkey,
    to_self_delay: u16,
    broadcaster_delayed: &DelayedPaymentPubkey,
) -> ScriptBuf {
    Builder::new()
        .push_opcode(OP_IF)
        .push_slice(revocation.serialize())
        .push_opcode(OP_ELSE)
        .push_int(i64::from(to_self_delay))
        .push_opcode(OP_CSV)
        .push_opcode(OP_DROP)
        .push_slice(broadcaster_delayed.serialize())
        .push_opcode(OP_ENDIF)
        .push_opcode(OP_CHECKSIG)
        .into_script()
}

/// The witness script of an HTLC transaction's output: the to_local script with the
/// broadcaster's revocation and delayed keys (BOLT-03 "HTLC-Timeout and HTLC-Success
/// Transactions").
pub fn htlc_tx_output_witness_script(
    revocation: &RevocationPubkey,
    to_self_delay: u16,
    broadcaster_delayed: &DelayedPaymentPubkey,
) -> ScriptBuf {
    to_local_witness_script(revocation, to_self_delay, broadcaster_delayed)
}

/// The to_remote scriptPubKey with `option_static_remotekey` and no anchors:
/// P2WPKH of the countersignatory's payment basepoint.
pub fn to_remote_p2wpkh_script_pubkey(payment: &PaymentBasepoint) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::hash(&payment.serialize()))
}

/// The to_remote witness script with anchors: `<remotepubkey> OP_CHECKSIGVERIFY 1
/// OP_CHECKSEQUENCEVERIFY` (BOLT-03 "to_remote Output").
pub fn to_remote_anchors_witness_script(payment: &PaymentBasepoint) -> ScriptBuf {
    Builder::new()
        .push_slice(payment.serialize())
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_opcode(OP_PUSHNUM_1)
        .push_opcode(OP_CSV)
        .into_script()
}

/// An anchor output's witness script (BOLT-03 "to_local_anchor and to_remote_anchor Output"):
///
/// ```text
/// <local_funding_pubkey/remote_funding_pubkey> OP_CHECKSIG OP_IFDUP
/// OP_NOTIF OP_16 OP_CHECKSEQUENCEVERIFY OP_ENDIF
/// ```
pub fn anchor_witness_script(funding: &FundingPubkey) -> ScriptBuf {
    Builder::new()
        .push_slice(funding.serialize())
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_IFDUP)
        .push_opcode(OP_NOTIF)
        .push_opcode(OP_PUSHNUM_16)
        .push_opcode(OP_CSV)
        .push_opcode(OP_ENDIF)
        .into_script()
}

/// The scriptPubKey of the shared anchor of a zero-fee-commitment channel: pay-to-anchor,
/// `OP_1 <0x4e73>` (a witness v1 program anyone may spend with an empty witness).
pub fn shared_anchor_script_pubkey() -> ScriptBuf {
    Builder::new().push_opcode(OP_PUSHNUM_1).push_slice([0x4e, 0x73]).into_script()
}

/// The common opening of both HTLC scripts: the revocation branch and the countersignatory's
/// HTLC key (`OP_DUP OP_HASH160 <RIPEMD160(SHA256(revocationpubkey))> OP_EQUAL OP_IF
/// OP_CHECKSIG OP_ELSE <remote_htlcpubkey> OP_SWAP OP_SIZE 32 OP_EQUAL`).
fn htlc_script_prefix(
    revocation: &RevocationPubkey,
    countersignatory_htlc: &HtlcPubkey,
) -> Builder {
    Builder::new()
        .push_opcode(OP_DUP)
        .push_opcode(OP_HASH160)
        .push_slice(hash160::Hash::hash(&revocation.serialize()).to_byte_array())
        .push_opcode(OP_EQUAL)
        .push_opcode(OP_IF)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ELSE)
        .push_slice(countersignatory_htlc.serialize())
        .push_opcode(OP_SWAP)
        .push_opcode(OP_SIZE)
        .push_int(32)
        .push_opcode(OP_EQUAL)
}

/// Appends the anchors' `1 OP_CHECKSEQUENCEVERIFY OP_DROP` (when the channel type has
/// anchors) and the final `OP_ENDIF`.
fn htlc_script_suffix(builder: Builder, channel_type: ChannelType) -> ScriptBuf {
    let builder = if channel_type.has_anchors() {
        builder.push_opcode(OP_PUSHNUM_1).push_opcode(OP_CSV).push_opcode(OP_DROP)
    } else {
        builder
    };
    builder.push_opcode(OP_ENDIF).into_script()
}

/// `RIPEMD160(payment_hash)`, the hash the HTLC scripts compare the preimage's HASH160 with.
fn payment_hash_ripemd(payment_hash: &PaymentHash) -> [u8; 20] {
    ripemd160::Hash::hash(&payment_hash.0).to_byte_array()
}

/// The witness script of an HTLC the broadcaster offered (BOLT-03 "Offered HTLC Outputs"):
///
/// ```text
/// OP_DUP OP_HASH160 <RIPEMD160(SHA256(revocationpubkey))> OP_EQUAL
/// OP_IF
///     OP_CHECKSIG
/// OP_ELSE
///     <remote_htlcpubkey> OP_SWAP OP_SIZE 32 OP_EQUAL
///     OP_NOTIF
///         OP_DROP 2 OP_SWAP <local_htlcpubkey> 2 OP_CHECKMULTISIG
///     OP_ELSE
///         OP_HASH160 <RIPEMD160(payment_hash)> OP_EQUALVERIFY
///         OP_CHECKSIG
///     OP_ENDIF
///     [1 OP_CHECKSEQUENCEVERIFY OP_DROP]   (anchors only)
/// OP_ENDIF
/// ```
pub fn offered_htlc_witness_script(
    channel_type: ChannelType,
    revocation: &RevocationPubkey,
    broadcaster_htlc: &HtlcPubkey,
    countersignatory_htlc: &HtlcPubkey,
    payment_hash: &PaymentHash,
) -> ScriptBuf {
    let builder = htlc_script_prefix(revocation, countersignatory_htlc)
        .push_opcode(OP_NOTIF)
        .push_opcode(OP_DROP)
        .push_opcode(OP_PUSHNUM_2)
        .push_opcode(OP_SWAP)
        .push_slice(broadcaster_htlc.serialize())
        .push_opcode(OP_PUSHNUM_2)
        .push_opcode(OP_CHECKMULTISIG)
        .push_opcode(OP_ELSE)
        .push_opcode(OP_HASH160)
        .push_slice(payment_hash_ripemd(payment_hash))
        .push_opcode(OP_EQUALVERIFY)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ENDIF);
    htlc_script_suffix(builder, channel_type)
}

/// The witness script of an HTLC the broadcaster received (BOLT-03 "Received HTLC Outputs"):
///
/// ```text
/// OP_DUP OP_HASH160 <RIPEMD160(SHA256(revocationpubkey))> OP_EQUAL
/// OP_IF
///     OP_CHECKSIG
/// OP_ELSE
///     <remote_htlcpubkey> OP_SWAP OP_SIZE 32 OP_EQUAL
///     OP_IF
///         OP_HASH160 <RIPEMD160(payment_hash)> OP_EQUALVERIFY
///         2 OP_SWAP <local_htlcpubkey> 2 OP_CHECKMULTISIG
///     OP_ELSE
///         OP_DROP <cltv_expiry> OP_CHECKLOCKTIMEVERIFY OP_DROP
///         OP_CHECKSIG
///     OP_ENDIF
///     [1 OP_CHECKSEQUENCEVERIFY OP_DROP]   (anchors only)
/// OP_ENDIF
/// ```
pub fn received_htlc_witness_script(
    channel_type: ChannelType,
    revocation: &RevocationPubkey,
    broadcaster_htlc: &HtlcPubkey,
    countersignatory_htlc: &HtlcPubkey,
    payment_hash: &PaymentHash,
    cltv_expiry: u32,
) -> ScriptBuf {
    let builder = htlc_script_prefix(revocation, countersignatory_htlc)
        .push_opcode(OP_IF)
        .push_opcode(OP_HASH160)
        .push_slice(payment_hash_ripemd(payment_hash))
        .push_opcode(OP_EQUALVERIFY)
        .push_opcode(OP_PUSHNUM_2)
        .push_opcode(OP_SWAP)
        .push_slice(broadcaster_htlc.serialize())
        .push_opcode(OP_PUSHNUM_2)
        .push_opcode(OP_CHECKMULTISIG)
        .push_opcode(OP_ELSE)
        .push_opcode(OP_DROP)
        .push_int(i64::from(cltv_expiry))
        .push_opcode(OP_CLTV)
        .push_opcode(OP_DROP)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ENDIF);
    htlc_script_suffix(builder, channel_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};

    fn key(byte: u8) -> PublicKey {
        let secp = Secp256k1::signing_only();
        PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&[byte; 32]).unwrap())
    }

    #[test]
    fn funding_script_sorts_keys() {
        let (a, b) = (FundingPubkey(key(1)), FundingPubkey(key(2)));
        assert_eq!(funding_witness_script(&a, &b), funding_witness_script(&b, &a));
    }

    #[test]
    fn small_delays_use_small_integer_opcodes() {
        let s =
            to_local_witness_script(&RevocationPubkey(key(1)), 16, &DelayedPaymentPubkey(key(2)));
        // OP_IF <33> OP_ELSE OP_16 OP_CSV ...
        assert_eq!(s.as_bytes()[36], OP_PUSHNUM_16.to_u8());
    }
}
