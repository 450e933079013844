//! Key derivation for LDK nodes: which secrets a 32-byte seed gives, node-wide and per channel.
//!
//! [`KeyScheme`] names the derivation: [`KeyScheme::Ldk`], the scheme of LDK 0.2's
//! `lightning::sign::KeysManager`, reproduced here so that a node moving from `KeysManager` to
//! Warden keeps its node id, its channels' keys and its on-chain scripts; and
//! [`KeyScheme::CoreLightning`], Core Lightning's `hsmd` scheme (warden-core's `keys`, the
//! derivation warden-hsmd uses). Everything outside this module asks [`NodeSecrets`] and
//! [`ChannelSecrets`] for keys and never knows which scheme produced them.
//!
//! # Core Lightning's scheme
//!
//! The seed is read as a 32-byte `hsm_secret`. The node key is `hsmd`'s (warden-core
//! `keys::node`), so the node id is the one lightningd would have with that secret. A channel's
//! keys are `hsmd`'s for (peer id, dbid) (`keys::channel`: HKDF of the channel seed base with
//! salt peer id ‖ dbid, split into funding, revocation, HTLC, payment and delayed-payment keys
//! and the shachain seed). The mapping from LDK's `channel_keys_id`:
//! - the dbid is the id's first 8 bytes, big-endian ([`cln_dbid_of`]); ids the manager makes
//!   ([`cln_channel_keys_id`]) carry a fresh dbid in those bytes and a tag in the other 24.
//!   Fresh dbids are above every dbid in the store and above a floor from the starting time
//!   (see `WardenKeysManager::new`), so a restart does not reuse one;
//! - the peer id is our own node id: LDK's `generate_channel_keys_id` and
//!   `derive_channel_signer` never name the peer, so the real one cannot enter the derivation.
//!
//! Limits: the channel keys are those `hsmd` derives for (our node id, dbid), not for the real
//! peer, so a channel of a Core Lightning node cannot be taken over by an LDK node (nor the
//! reverse); the node id, the node key's signatures and ECDH are the same. The to_remote key is
//! the payment basepoint (static_remotekey, as `hsmd`); there are no LDK-style static payment
//! keys. Sweeps and closes pay P2WPKH of the wallet keys `m/0/0/0` (destination) and `m/0/0/1`
//! (shutdown); LDK's inbound-payment, peer-storage and receive-auth keys are `hsmd`'s
//! `derive_secret` of `warden-ldk/…` labels.
//!
//! What is reproduced of LDK's scheme (facts, from LDK 0.2.7's documentation and behaviour):
//! - the master key is the BIP-0032 master of the seed; the node secret is `m/0'`, the
//!   destination script (sweeps of contestable outputs) is P2WPKH of `m/1'`, the shutdown
//!   script is P2WPKH of `m/2'`, the channel master key is `m/3'`, the inbound payment key
//!   material is `m/5'`, the peer storage key `m/6'`, the receive auth key `m/7'` and the
//!   static payment (to_remote) keys are `m/8'/i'` for `i < 1000`;
//! - a channel is named by a 32-byte `channel_keys_id`; its BIP-0032 child of the channel
//!   master key is the hardened index `u32(be_u64(id[0..8])) mod 2^31`, and its channel seed is
//!   `SHA256(id || seed || child secret)`;
//! - the commitment (shachain) seed is `SHA256(channel seed || "commitment seed")`; then each
//!   key is `SHA256(channel seed || previous key || label)` with the labels `funding key`,
//!   `revocation base key`, `payment key`, `delayed payment base key`, `HTLC base key`, each
//!   starting from the one before (the funding key from the commitment seed);
//! - the "v2" to_remote key is `m/8'/(le_u64(commitment seed[0..8]) mod 1000)'`, used instead
//!   of the "payment key" when the node was created with v2 remote-key derivation;
//! - a funding key after a splice is tweaked by `SHA256(parent funding txid || base funding
//!   secret)` (LDK's `compute_funding_key_tweak`, called here).
//!
//! `tests/key_compat.rs` checks node id, scripts and every channel key against
//! `lightning::sign::KeysManager` for the same seed and ids.

use bitcoin::bip32::{ChildNumber, Xpriv};
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing};
use bitcoin::NetworkKind;
use bitcoin::{Network, ScriptBuf, Txid};
use lightning::ln::chan_utils::ChannelPublicKeys;
use lightning::ln::channel_keys::{DelayedPaymentBasepoint, HtlcBasepoint, RevocationBasepoint};
use warden_core::keys::{ChannelKeys, ChannelSeedBase, NodeId, NodeKeys};
use warden_core::secret::{PrivateKey, Secret32, Seed, ShachainSeed};
use warden_core::units::Dbid;

/// How many static payment keys LDK's v2 remote-key derivation cycles through.
pub const STATIC_PAYMENT_KEY_COUNT: u64 = 1000;

/// Which derivation turns the seed into keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyScheme {
    /// LDK's `KeysManager` derivation (see the module documentation). `v2_remote_key` selects
    /// the static to_remote keys of LDK 0.2 (`KeysManager::new(.., true)`).
    Ldk {
        /// Use the static (v2) to_remote payment keys.
        v2_remote_key: bool,
    },
    /// Core Lightning's `hsmd` derivation, the seed being a 32-byte `hsm_secret`
    /// (warden-core's `keys`): the node key and the per-channel keys of (peer id, dbid) exactly
    /// as `hsmd` derives them. See "Core Lightning's scheme" in the module documentation for
    /// how LDK's `channel_keys_id` maps to (peer id, dbid) and what that mapping cannot do.
    CoreLightning,
}

/// The tag in bytes 8..32 of a `channel_keys_id` made for [`KeyScheme::CoreLightning`].
const CLN_ID_TAG: &[u8] = b"warden-ldk/cln-channel";

/// The `channel_keys_id` of the Core Lightning channel with database id `dbid`: the dbid
/// (big-endian) in bytes 0..8, then the first 24 bytes of SHA-256(`"warden-ldk/cln-channel"`
/// ‖ dbid) (which tell such an id from a random one).
pub fn cln_channel_keys_id(dbid: u64) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    engine.input(CLN_ID_TAG);
    engine.input(&dbid.to_be_bytes());
    let tag = sha256::Hash::from_engine(engine).to_byte_array();
    let mut id = [0u8; 32];
    let (head, tail) = id.split_at_mut(8);
    head.copy_from_slice(&dbid.to_be_bytes());
    tail.copy_from_slice(tag.get(..24).unwrap_or(&[0; 24]));
    id
}

/// The dbid a `channel_keys_id` names under [`KeyScheme::CoreLightning`]: its first 8 bytes,
/// big-endian. An id that [`cln_channel_keys_id`] did not make (LDK made one before the node
/// moved to this scheme, or it is random) still names that dbid: its keys are those of the
/// dbid, and two such ids that share their first 8 bytes share their keys.
pub fn cln_dbid_of(channel_keys_id: &[u8; 32]) -> u64 {
    let mut head = [0u8; 8];
    head.copy_from_slice(channel_keys_id.get(..8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(head)
}

/// Why a key cannot be derived: BIP-0032 or SHA-256 output that is not a valid scalar (with
/// probability about 2^-128 per key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DerivationError;

impl core::fmt::Display for DerivationError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("key derivation produced an invalid key")
    }
}

impl std::error::Error for DerivationError {}

fn child(
    secp: &Secp256k1<impl Signing>,
    key: &Xpriv,
    index: u32,
) -> Result<Xpriv, DerivationError> {
    let n = ChildNumber::from_hardened_idx(index).map_err(|_| DerivationError)?;
    key.derive_priv(secp, &[n]).map_err(|_| DerivationError)
}

fn private(key: &Xpriv) -> PrivateKey {
    PrivateKey::new(key.private_key)
}

/// What channel keys are derived from, per scheme.
enum Derivation {
    Ldk { channel_master: Xpriv, static_payment: Xpriv },
    CoreLightning { channels: ChannelSeedBase },
}

/// The seed-level secrets of a node.
pub struct NodeSecrets {
    scheme: KeyScheme,
    seed: Secret32,
    node_key: PrivateKey,
    destination_key: PrivateKey,
    shutdown_key: PrivateKey,
    derivation: Derivation,
    inbound_payment_key: Secret32,
    peer_storage_key: Secret32,
    receive_auth_key: Secret32,
}

impl core::fmt::Debug for NodeSecrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Only the fingerprint of the seed: every other field is derived from it.
        f.debug_struct("NodeSecrets")
            .field("scheme", &self.scheme)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl NodeSecrets {
    /// Derives a node's secrets from its 32-byte seed.
    pub fn derive<C: Signing>(
        secp: &Secp256k1<C>,
        seed: &Secret32,
        scheme: KeyScheme,
    ) -> Result<NodeSecrets, DerivationError> {
        if scheme == KeyScheme::CoreLightning {
            return Self::derive_cln(secp, seed);
        }
        // The network only matters when the key is serialized, which never happens here.
        let master = Xpriv::new_master(Network::Testnet, seed.expose_secret())
            .map_err(|_| DerivationError)?;
        let bytes = |k: &Xpriv| Secret32::new(k.private_key.secret_bytes());
        Ok(NodeSecrets {
            scheme,
            seed: seed.clone(),
            node_key: private(&child(secp, &master, 0)?),
            destination_key: private(&child(secp, &master, 1)?),
            shutdown_key: private(&child(secp, &master, 2)?),
            derivation: Derivation::Ldk {
                channel_master: child(secp, &master, 3)?,
                static_payment: child(secp, &master, 8)?,
            },
            inbound_payment_key: bytes(&child(secp, &master, 5)?),
            peer_storage_key: bytes(&child(secp, &master, 6)?),
            receive_auth_key: bytes(&child(secp, &master, 7)?),
        })
    }

    /// Core Lightning's scheme (see the module documentation).
    fn derive_cln<C: Signing>(
        secp: &Secp256k1<C>,
        seed: &Secret32,
    ) -> Result<NodeSecrets, DerivationError> {
        let hsm_secret = Seed::from_legacy(*seed.expose_secret());
        let node =
            NodeKeys::derive(secp, &hsm_secret, NetworkKind::Test).map_err(|_| DerivationError)?;
        let wallet = |index| node.wallet().bitcoin_key(secp, index).map_err(|_| DerivationError);
        Ok(NodeSecrets {
            scheme: KeyScheme::CoreLightning,
            seed: seed.clone(),
            node_key: node.node_key().clone(),
            destination_key: wallet(0)?,
            shutdown_key: wallet(1)?,
            derivation: Derivation::CoreLightning {
                channels: ChannelSeedBase::from_seed(&hsm_secret),
            },
            inbound_payment_key: node.derive_secret(b"warden-ldk/inbound-payment-key"),
            peer_storage_key: node.derive_secret(b"warden-ldk/peer-storage-key"),
            receive_auth_key: node.derive_secret(b"warden-ldk/receive-auth-key"),
        })
    }

    /// The derivation in use.
    pub fn scheme(&self) -> KeyScheme {
        self.scheme
    }

    /// The node key (its public key is the node id).
    pub fn node_key(&self) -> &PrivateKey {
        &self.node_key
    }

    /// The key of the destination script (where contestable outputs are swept).
    pub fn destination_key(&self) -> &PrivateKey {
        &self.destination_key
    }

    /// The key of the shutdown script (where cooperative closes pay us).
    pub fn shutdown_key(&self) -> &PrivateKey {
        &self.shutdown_key
    }

    /// P2WPKH of the destination key.
    pub fn destination_script<C: Signing>(&self, secp: &Secp256k1<C>) -> ScriptBuf {
        p2wpkh(&self.destination_key.public_key(secp))
    }

    /// P2WPKH of the shutdown key.
    pub fn shutdown_script<C: Signing>(&self, secp: &Secp256k1<C>) -> ScriptBuf {
        p2wpkh(&self.shutdown_key.public_key(secp))
    }

    /// The key material of LDK's `ExpandedKey` (inbound payment secrets, offers).
    pub fn inbound_payment_key(&self) -> &Secret32 {
        &self.inbound_payment_key
    }

    /// The peer storage encryption key.
    pub fn peer_storage_key(&self) -> &Secret32 {
        &self.peer_storage_key
    }

    /// The key that authenticates our blinded message paths.
    pub fn receive_auth_key(&self) -> &Secret32 {
        &self.receive_auth_key
    }

    /// The static (v2) to_remote key of index `index` (taken modulo
    /// [`STATIC_PAYMENT_KEY_COUNT`]).
    pub fn static_payment_key<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        index: u64,
    ) -> Result<PrivateKey, DerivationError> {
        let Derivation::Ldk { static_payment, .. } = &self.derivation else {
            return Err(DerivationError);
        };
        let i = u32::try_from(index % STATIC_PAYMENT_KEY_COUNT).map_err(|_| DerivationError)?;
        Ok(private(&child(secp, static_payment, i)?))
    }

    /// The secrets of the channel named `channel_keys_id`.
    pub fn channel<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        channel_keys_id: &[u8; 32],
    ) -> Result<ChannelSecrets, DerivationError> {
        let channel_master = match (&self.derivation, self.scheme) {
            (Derivation::CoreLightning { channels }, _) => {
                return self.cln_channel(secp, channels, channel_keys_id)
            }
            (Derivation::Ldk { channel_master, .. }, _) => channel_master,
        };
        let v2_remote_key = matches!(self.scheme, KeyScheme::Ldk { v2_remote_key: true });
        let mut head = [0u8; 8];
        head.copy_from_slice(channel_keys_id.get(..8).ok_or(DerivationError)?);
        // LDK truncates the big-endian u64 of the first 8 bytes to 32 bits.
        let index = (u64::from_be_bytes(head) as u32) % (1 << 31);
        let channel_child = child(secp, channel_master, index)?;
        let mut engine = sha256::Hash::engine();
        engine.input(channel_keys_id);
        engine.input(self.seed.expose_secret());
        engine.input(&channel_child.private_key.secret_bytes());
        let channel_seed = Secret32::new(sha256::Hash::from_engine(engine).to_byte_array());

        let mut engine = sha256::Hash::engine();
        engine.input(channel_seed.expose_secret());
        engine.input(b"commitment seed");
        let commitment_seed = sha256::Hash::from_engine(engine).to_byte_array();

        let step = |previous: &[u8; 32], label: &[u8]| -> Result<PrivateKey, DerivationError> {
            let mut engine = sha256::Hash::engine();
            engine.input(channel_seed.expose_secret());
            engine.input(previous);
            engine.input(label);
            PrivateKey::from_slice(&sha256::Hash::from_engine(engine).to_byte_array())
                .ok_or(DerivationError)
        };
        let funding = step(&commitment_seed, b"funding key")?;
        let revocation = step(&funding.expose_secret().secret_bytes(), b"revocation base key")?;
        let payment_v1 = step(&revocation.expose_secret().secret_bytes(), b"payment key")?;
        let delayed =
            step(&payment_v1.expose_secret().secret_bytes(), b"delayed payment base key")?;
        let htlc = step(&delayed.expose_secret().secret_bytes(), b"HTLC base key")?;
        let mut low = [0u8; 8];
        low.copy_from_slice(commitment_seed.get(..8).ok_or(DerivationError)?);
        let payment_v2 = self.static_payment_key(secp, u64::from_le_bytes(low))?;
        let payment = if v2_remote_key { payment_v2.clone() } else { payment_v1.clone() };
        Ok(ChannelSecrets {
            channel_keys_id: *channel_keys_id,
            funding,
            revocation,
            payment,
            payment_v1,
            payment_v2,
            delayed,
            htlc,
            commitment_seed: ShachainSeed::new(commitment_seed),
        })
    }
}

impl NodeSecrets {
    /// The peer id Core Lightning's per-channel derivation is salted with: our own node id
    /// (LDK never tells the signer the peer; see the module documentation).
    pub fn cln_peer<C: Signing>(&self, secp: &Secp256k1<C>) -> NodeId {
        NodeId(self.node_key.public_key(secp))
    }

    fn cln_channel<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        channels: &ChannelSeedBase,
        channel_keys_id: &[u8; 32],
    ) -> Result<ChannelSecrets, DerivationError> {
        let dbid = Dbid(cln_dbid_of(channel_keys_id));
        let seed = channels.channel_seed(&self.cln_peer(secp), dbid);
        let keys = ChannelKeys::from_channel_seed(&seed).map_err(|_| DerivationError)?;
        let payment = keys.payment_basepoint_secret().clone();
        Ok(ChannelSecrets {
            channel_keys_id: *channel_keys_id,
            funding: keys.funding_key().clone(),
            revocation: keys.revocation_basepoint_secret().clone(),
            payment: payment.clone(),
            payment_v1: payment.clone(),
            payment_v2: payment,
            delayed: keys.delayed_payment_basepoint_secret().clone(),
            htlc: keys.htlc_basepoint_secret().clone(),
            commitment_seed: keys.shachain_seed().clone(),
        })
    }
}

/// P2WPKH of a public key.
pub fn p2wpkh(key: &PublicKey) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::CompressedPublicKey(*key).wpubkey_hash())
}

/// The secrets of one channel.
#[derive(Clone)]
pub struct ChannelSecrets {
    channel_keys_id: [u8; 32],
    funding: PrivateKey,
    revocation: PrivateKey,
    /// The to_remote key in use (`payment_v1` or `payment_v2`).
    payment: PrivateKey,
    payment_v1: PrivateKey,
    payment_v2: PrivateKey,
    delayed: PrivateKey,
    htlc: PrivateKey,
    commitment_seed: ShachainSeed,
}

impl core::fmt::Debug for ChannelSecrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChannelSecrets")
            .field("funding", &self.funding)
            .field("commitment_seed", &self.commitment_seed)
            .finish_non_exhaustive()
    }
}

impl ChannelSecrets {
    /// The channel's name.
    pub fn channel_keys_id(&self) -> [u8; 32] {
        self.channel_keys_id
    }

    /// The funding key, tweaked for a splice when `splice_parent` is set.
    pub fn funding_key(&self, splice_parent: Option<Txid>) -> Result<PrivateKey, DerivationError> {
        match splice_parent {
            None => Ok(self.funding.clone()),
            Some(txid) => {
                let tweak =
                    lightning::sign::compute_funding_key_tweak(self.funding.expose_secret(), &txid);
                self.funding
                    .expose_secret()
                    .add_tweak(&tweak)
                    .map(PrivateKey::new)
                    .map_err(|_| DerivationError)
            }
        }
    }

    /// The revocation basepoint secret.
    pub fn revocation_base_key(&self) -> &PrivateKey {
        &self.revocation
    }

    /// The payment (to_remote) key in use.
    pub fn payment_key(&self) -> &PrivateKey {
        &self.payment
    }

    /// Both payment keys a to_remote output of this channel may pay (v1, v2).
    pub fn payment_keys(&self) -> [&PrivateKey; 2] {
        [&self.payment_v1, &self.payment_v2]
    }

    /// The delayed-payment basepoint secret.
    pub fn delayed_payment_base_key(&self) -> &PrivateKey {
        &self.delayed
    }

    /// The HTLC basepoint secret.
    pub fn htlc_base_key(&self) -> &PrivateKey {
        &self.htlc
    }

    /// The shachain seed of our per-commitment secrets.
    pub fn commitment_seed(&self) -> &ShachainSeed {
        &self.commitment_seed
    }

    /// The per-commitment secret of LDK index `idx` (counting down from 2^48 - 1; it is the
    /// BOLT-03 shachain index itself).
    pub fn commitment_secret(&self, idx: u64) -> [u8; 32] {
        warden_core::shachain::generate_from_seed(self.commitment_seed.expose_secret(), idx)
    }

    /// The per-commitment point of LDK index `idx`.
    pub fn commitment_point<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        idx: u64,
    ) -> Result<PublicKey, DerivationError> {
        let secret =
            SecretKey::from_slice(&self.commitment_secret(idx)).map_err(|_| DerivationError)?;
        Ok(PublicKey::from_secret_key(secp, &secret))
    }

    /// The channel's public keys, as LDK's `ChannelSigner::pubkeys` returns them.
    pub fn public_keys<C: Signing>(&self, secp: &Secp256k1<C>) -> ChannelPublicKeys {
        ChannelPublicKeys {
            funding_pubkey: self.funding.public_key(secp),
            revocation_basepoint: RevocationBasepoint::from(self.revocation.public_key(secp)),
            payment_point: self.payment.public_key(secp),
            delayed_payment_basepoint: DelayedPaymentBasepoint::from(self.delayed.public_key(secp)),
            htlc_basepoint: HtlcBasepoint::from(self.htlc.public_key(secp)),
        }
    }
}
