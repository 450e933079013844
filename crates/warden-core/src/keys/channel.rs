//! Per-channel keys: the channel seed, the five channel secrets, the shachain seed, and what
//! `hsmd` derives from them (per-commitment secrets and points, the to_remote output script,
//! the funding witness script).
//!
//! Sources (Core Lightning):
//! - `hsmd/libhsmd.c`, `hsm_channel_secret_base`: base = HKDF-SHA256(ikm = the **first 32
//!   bytes** of the secret, no salt, info `"peer seed"`).
//! - `hsmd/libhsmd.c`, `get_channel_seed`: channel seed = HKDF-SHA256(ikm = base, salt = the
//!   peer's 33-byte compressed node id ‖ `dbid` as a little-endian `u64`, info
//!   `"per-peer seed"`), 32 bytes.
//! - `common/derive_basepoints.c`, `derive_keys` / `derive_basepoints`: HKDF-SHA256(ikm =
//!   channel seed, no salt, info `"c-lightning"`), 192 bytes, read as six 32-byte fields in
//!   this order: funding, revocation, **htlc**, **payment**, delayed_payment, shaseed. There is
//!   no retry: `derive_basepoints` fails if a secret is not a valid key.
//! - `common/derive_basepoints.c`, `per_commit_secret` / `per_commit_point`: the secret of
//!   commitment `n` is BOLT-03 `generate_from_seed(shaseed, 2^48 - 1 - n)` and the point is
//!   its public key; `n` must be below 2^48.
//! - `hsmd/libhsmd.c`, `hsm_unilateral_close_privkey` (used by
//!   `handle_get_output_scriptpubkey`): with no commitment point the to_remote key is the
//!   payment basepoint secret (`option_static_remotekey`), otherwise the BOLT-03 simple
//!   derivation of it with that point; the script is always P2WPKH of that key.
//! - `bitcoin/script.c`, `bitcoin_redeem_2of2`: `2 <key1> <key2> 2 OP_CHECKMULTISIG` with
//!   the keys in ascending order of their compressed encodings (BOLT-03 funding output;
//!   built by [`crate::tx::scripts::funding_witness_script`]).

use core::fmt;

use bitcoin::{CompressedPublicKey, ScriptBuf};
use secp256k1::{PublicKey, Secp256k1, SecretKey, Signing};
use zeroize::Zeroize;

use super::bolt3::{self, DerivationError};
use super::kdf;
use super::node::NodeId;
use super::roles::{
    Basepoints, DelayedPaymentBasepoint, FundingPubkey, HtlcBasepoint, PaymentBasepoint,
    PerCommitmentPoint, RevocationBasepoint,
};
use crate::secret::{PerCommitmentSecret, PrivateKey, Secret32, Seed, ShachainSeed};
use crate::shachain;
use crate::tx::scripts;
use crate::units::{CommitmentNumber, Dbid};

/// The base from which every channel seed is derived.
pub struct ChannelSeedBase(Secret32);

impl ChannelSeedBase {
    /// The base, from the first 32 bytes of the secret.
    pub fn from_seed(seed: &Seed) -> ChannelSeedBase {
        ChannelSeedBase(Secret32::new(kdf::hkdf_sha256_32(&[], seed.first_32(), b"peer seed")))
    }

    /// The seed of the channel with database id `dbid` with `peer`.
    pub fn channel_seed(&self, peer: &NodeId, dbid: Dbid) -> Secret32 {
        let mut salt = [0u8; 33 + 8];
        let (id, db) = salt.split_at_mut(33);
        id.copy_from_slice(&peer.serialize());
        db.copy_from_slice(&dbid.0.to_le_bytes());
        Secret32::new(kdf::hkdf_sha256_32(&salt, self.0.expose_secret(), b"per-peer seed"))
    }
}

impl fmt::Debug for ChannelSeedBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ChannelSeedBase").field(&self.0).finish()
    }
}

/// The role of one of a channel's secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKeyRole {
    /// The funding key.
    Funding,
    /// The revocation basepoint secret.
    Revocation,
    /// The HTLC basepoint secret.
    Htlc,
    /// The payment basepoint secret.
    Payment,
    /// The delayed-payment basepoint secret.
    DelayedPayment,
}

/// A channel secret that is not a valid secp256k1 key (probability about 2^-128 per channel;
/// Core Lightning does not retry either).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidChannelKeyError {
    /// Which secret was invalid.
    pub role: ChannelKeyRole,
}

impl fmt::Display for InvalidChannelKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the channel's {:?} secret is not a valid key", self.role)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for InvalidChannelKeyError {}

/// A per-commitment secret that is not a valid secp256k1 key (probability about 2^-128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerCommitmentPointError {
    /// The commitment whose secret was invalid.
    pub commitment: CommitmentNumber,
}

impl fmt::Display for PerCommitmentPointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the per-commitment secret of commitment {} is not a valid key", self.commitment)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PerCommitmentPointError {}

/// One side's secrets of a channel, derived from its channel seed.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelKeys {
    funding: PrivateKey,
    revocation: PrivateKey,
    htlc: PrivateKey,
    payment: PrivateKey,
    delayed_payment: PrivateKey,
    shaseed: ShachainSeed,
}

impl ChannelKeys {
    /// Splits HKDF(`channel_seed`, `"c-lightning"`) into the channel's secrets.
    pub fn from_channel_seed(
        channel_seed: &Secret32,
    ) -> Result<ChannelKeys, InvalidChannelKeyError> {
        let mut okm = [0u8; 192];
        kdf::hkdf_sha256(&mut okm, &[], channel_seed.expose_secret(), b"c-lightning");
        let keys = Self::split(&okm);
        okm.zeroize();
        keys
    }

    fn split(okm: &[u8; 192]) -> Result<ChannelKeys, InvalidChannelKeyError> {
        let mut fields = okm.chunks_exact(32);
        let mut key = |role| {
            fields.next().and_then(PrivateKey::from_slice).ok_or(InvalidChannelKeyError { role })
        };
        // Field order of `struct keys` in common/derive_basepoints.c: f, r, h, p, d, shaseed.
        let funding = key(ChannelKeyRole::Funding)?;
        let revocation = key(ChannelKeyRole::Revocation)?;
        let htlc = key(ChannelKeyRole::Htlc)?;
        let payment = key(ChannelKeyRole::Payment)?;
        let delayed_payment = key(ChannelKeyRole::DelayedPayment)?;
        let shaseed = okm
            .last_chunk::<32>()
            .map(|s| ShachainSeed::new(*s))
            .expect("192 bytes hold a 32-byte suffix");
        Ok(ChannelKeys { funding, revocation, htlc, payment, delayed_payment, shaseed })
    }

    /// The funding private key.
    pub fn funding_key(&self) -> &PrivateKey {
        &self.funding
    }

    /// The revocation basepoint secret.
    pub fn revocation_basepoint_secret(&self) -> &PrivateKey {
        &self.revocation
    }

    /// The HTLC basepoint secret.
    pub fn htlc_basepoint_secret(&self) -> &PrivateKey {
        &self.htlc
    }

    /// The payment basepoint secret.
    pub fn payment_basepoint_secret(&self) -> &PrivateKey {
        &self.payment
    }

    /// The delayed-payment basepoint secret.
    pub fn delayed_payment_basepoint_secret(&self) -> &PrivateKey {
        &self.delayed_payment
    }

    /// The shachain seed of our per-commitment secrets.
    pub fn shachain_seed(&self) -> &ShachainSeed {
        &self.shaseed
    }

    /// The funding public key.
    pub fn funding_pubkey<C: Signing>(&self, secp: &Secp256k1<C>) -> FundingPubkey {
        FundingPubkey(self.funding.public_key(secp))
    }

    /// The four basepoints.
    pub fn basepoints<C: Signing>(&self, secp: &Secp256k1<C>) -> Basepoints {
        Basepoints {
            revocation: RevocationBasepoint(self.revocation.public_key(secp)),
            payment: PaymentBasepoint(self.payment.public_key(secp)),
            htlc: HtlcBasepoint(self.htlc.public_key(secp)),
            delayed_payment: DelayedPaymentBasepoint(self.delayed_payment.public_key(secp)),
        }
    }

    /// The per-commitment secret of commitment `n`.
    pub fn per_commitment_secret(&self, n: CommitmentNumber) -> PerCommitmentSecret {
        PerCommitmentSecret::new(shachain::generate_from_seed(
            self.shaseed.expose_secret(),
            n.shachain_index(),
        ))
    }

    /// The per-commitment point of commitment `n`.
    pub fn per_commitment_point<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        n: CommitmentNumber,
    ) -> Result<PerCommitmentPoint, PerCommitmentPointError> {
        let secret = self.per_commitment_secret(n);
        let mut sk = SecretKey::from_slice(secret.expose_secret())
            .map_err(|_| PerCommitmentPointError { commitment: n })?;
        let point = PublicKey::from_secret_key(secp, &sk);
        sk.non_secure_erase();
        Ok(PerCommitmentPoint(point))
    }

    /// Whether `suggested` is the per-commitment secret of commitment `n`, compared in
    /// constant time (`hsmd`'s `handle_check_future_secret`).
    pub fn check_future_secret(
        &self,
        n: CommitmentNumber,
        suggested: &PerCommitmentSecret,
    ) -> bool {
        self.per_commitment_secret(n) == *suggested
    }

    /// The key of our output on the peer's commitment: the payment basepoint secret itself
    /// without a point (`option_static_remotekey`, anchors), else its BOLT-03 derivation with
    /// `commitment_point`.
    pub fn to_remote_key<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        commitment_point: Option<&PerCommitmentPoint>,
    ) -> Result<PrivateKey, DerivationError> {
        match commitment_point {
            None => Ok(self.payment.clone()),
            Some(point) => bolt3::derive_private_key(secp, &self.payment, point),
        }
    }

    /// P2WPKH of [`ChannelKeys::to_remote_key`] (`hsmd`'s `get_output_scriptpubkey`).
    pub fn to_remote_script<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        commitment_point: Option<&PerCommitmentPoint>,
    ) -> Result<ScriptBuf, DerivationError> {
        let key = self.to_remote_key(secp, commitment_point)?;
        let pk = CompressedPublicKey(key.public_key(secp));
        Ok(ScriptBuf::new_p2wpkh(&pk.wpubkey_hash()))
    }

    /// The funding output's witness script with the peer's funding key (the keys sorted as
    /// `bitcoin_redeem_2of2` and BOLT-03 sort them).
    pub fn funding_witness_script<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        remote: &FundingPubkey,
    ) -> ScriptBuf {
        scripts::funding_witness_script(&self.funding_pubkey(secp), remote)
    }
}

impl fmt::Debug for ChannelKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelKeys")
            .field("funding", &self.funding)
            .field("revocation", &self.revocation)
            .field("htlc", &self.htlc)
            .field("payment", &self.payment)
            .field("delayed_payment", &self.delayed_payment)
            .field("shaseed", &self.shaseed)
            .finish()
    }
}

/// Verifies that `point` is the per-commitment point of `secret` (a revealed secret's check).
pub fn point_matches_secret<C: Signing>(
    secp: &Secp256k1<C>,
    secret: &PerCommitmentSecret,
    point: &PerCommitmentPoint,
) -> bool {
    match SecretKey::from_slice(secret.expose_secret()) {
        Ok(mut sk) => {
            let ok = PublicKey::from_secret_key(secp, &sk) == point.0;
            sk.non_secure_erase();
            ok
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{format, string::String, vec::Vec};

    fn n(v: u64) -> CommitmentNumber {
        CommitmentNumber::new(v).unwrap()
    }

    fn peer() -> NodeId {
        let secp = Secp256k1::signing_only();
        NodeId(PrivateKey::from_slice(&[1; 32]).unwrap().public_key(&secp))
    }

    #[test]
    fn channel_seed_mixes_peer_and_little_endian_dbid() {
        let base = ChannelSeedBase::from_seed(&Seed::from_legacy([4; 32]));
        let expected_base = kdf::hkdf_sha256_32(&[], &[4; 32], b"peer seed");
        let mut salt = Vec::from(peer().serialize());
        salt.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0]);
        let expected = kdf::hkdf_sha256_32(&salt, &expected_base, b"per-peer seed");
        assert_eq!(base.channel_seed(&peer(), Dbid(7)).expose_secret(), &expected);
        assert_ne!(base.channel_seed(&peer(), Dbid(7)), base.channel_seed(&peer(), Dbid(8)));
    }

    #[test]
    fn channel_seed_base_uses_first_32_bytes() {
        let mut bytes = [4u8; 64];
        bytes[50] = 0;
        let a = ChannelSeedBase::from_seed(&Seed::from_bip39_seed(bytes));
        let b = ChannelSeedBase::from_seed(&Seed::from_legacy([4; 32]));
        assert_eq!(a.channel_seed(&peer(), Dbid(1)), b.channel_seed(&peer(), Dbid(1)));
    }

    #[test]
    fn keys_are_read_in_f_r_h_p_d_order() {
        let seed = Secret32::new([8; 32]);
        let mut okm = [0u8; 192];
        kdf::hkdf_sha256(&mut okm, &[], &[8; 32], b"c-lightning");
        let keys = ChannelKeys::from_channel_seed(&seed).unwrap();
        let field = |i: usize| okm.get(i * 32..i * 32 + 32).unwrap().to_vec();
        assert_eq!(keys.funding.expose_secret().secret_bytes().to_vec(), field(0));
        assert_eq!(keys.revocation.expose_secret().secret_bytes().to_vec(), field(1));
        assert_eq!(keys.htlc.expose_secret().secret_bytes().to_vec(), field(2));
        assert_eq!(keys.payment.expose_secret().secret_bytes().to_vec(), field(3));
        assert_eq!(keys.delayed_payment.expose_secret().secret_bytes().to_vec(), field(4));
        assert_eq!(keys.shaseed.expose_secret().to_vec(), field(5));
    }

    #[test]
    fn invalid_secret_fails_without_retry() {
        let mut okm = [0x55u8; 192];
        // The HTLC field (third) is all 0xff: above the curve order.
        okm[64..96].copy_from_slice(&[0xff; 32]);
        assert_eq!(
            ChannelKeys::split(&okm).unwrap_err(),
            InvalidChannelKeyError { role: ChannelKeyRole::Htlc }
        );
        okm[64..96].copy_from_slice(&[0x55; 32]);
        okm[96..128].copy_from_slice(&[0; 32]);
        assert_eq!(
            ChannelKeys::split(&okm).unwrap_err(),
            InvalidChannelKeyError { role: ChannelKeyRole::Payment }
        );
    }

    #[test]
    fn per_commitment_secret_is_shachain_of_reversed_index() {
        let keys = ChannelKeys::from_channel_seed(&Secret32::new([8; 32])).unwrap();
        let seed = *keys.shachain_seed().expose_secret();
        let s0 = keys.per_commitment_secret(n(0));
        assert_eq!(s0.expose_secret(), &shachain::generate_from_seed(&seed, (1 << 48) - 1));
        let secp = Secp256k1::new();
        let p0 = keys.per_commitment_point(&secp, n(0)).unwrap();
        assert!(point_matches_secret(&secp, &s0, &p0));
        assert!(keys.check_future_secret(n(0), &s0));
        assert!(!keys.check_future_secret(n(1), &s0));
    }

    #[test]
    fn funding_script_is_order_independent() {
        let secp = Secp256k1::signing_only();
        let a = ChannelKeys::from_channel_seed(&Secret32::new([8; 32])).unwrap();
        let b = ChannelKeys::from_channel_seed(&Secret32::new([9; 32])).unwrap();
        let (pa, pb) = (a.funding_pubkey(&secp), b.funding_pubkey(&secp));
        assert_eq!(a.funding_witness_script(&secp, &pb), b.funding_witness_script(&secp, &pa));
    }

    #[test]
    fn to_remote_with_point_is_tweaked() {
        let secp = Secp256k1::new();
        let keys = ChannelKeys::from_channel_seed(&Secret32::new([8; 32])).unwrap();
        let point = keys.per_commitment_point(&secp, n(3)).unwrap();
        let plain = keys.to_remote_script(&secp, None).unwrap();
        let tweaked = keys.to_remote_script(&secp, Some(&point)).unwrap();
        assert!(plain.is_p2wpkh() && tweaked.is_p2wpkh());
        assert_ne!(plain, tweaked);
        let expected =
            bolt3::derive_payment_pubkey(&secp, &keys.basepoints(&secp).payment, &point).unwrap();
        assert_eq!(keys.to_remote_key(&secp, Some(&point)).unwrap().public_key(&secp), expected.0);
    }

    #[test]
    fn debug_redacts_channel_secrets() {
        let keys = ChannelKeys::from_channel_seed(&Secret32::new([8; 32])).unwrap();
        let printed = format!("{keys:?}");
        let hex: String = keys
            .funding
            .expose_secret()
            .secret_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!printed.contains(&hex));
        assert!(printed.contains("ShachainSeed(fp:"));
    }
}
