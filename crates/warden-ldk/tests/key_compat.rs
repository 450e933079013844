#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
//! Warden's LDK key scheme gives the keys LDK's own `KeysManager` gives for the same seed and
//! `channel_keys_id`: node id, scripts, node-level keys, every channel key and point.

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning::sign::{
    ChannelSigner, EntropySource, KeysManager, NodeSigner, Recipient, SignerProvider,
};
use warden_ldk::{KeyScheme, WardenConfig, WardenKeysManager};

fn pair(seed: [u8; 32], v2: bool) -> (KeysManager, WardenKeysManager) {
    let ldk = KeysManager::new(&seed, 1_700_000_000, 123_456_789, v2);
    let warden = WardenKeysManager::new(
        &seed,
        KeyScheme::Ldk { v2_remote_key: v2 },
        WardenConfig::test_network(),
        1_700_000_000,
        123_456_789,
    )
    .unwrap();
    (ldk, warden)
}

#[test]
fn node_keys_equal_ldk_keys_manager() {
    for (seed, v2) in [([7u8; 32], true), ([0x42; 32], false)] {
        let (ldk, warden) = pair(seed, v2);
        assert_eq!(
            ldk.get_node_id(Recipient::Node).unwrap(),
            warden.get_node_id(Recipient::Node).unwrap()
        );
        assert!(warden.get_node_id(Recipient::PhantomNode).is_err());
        assert_eq!(ldk.get_destination_script([0; 32]), warden.get_destination_script([0; 32]));
        assert_eq!(
            ldk.get_shutdown_scriptpubkey().unwrap().into_inner(),
            warden.get_shutdown_scriptpubkey().unwrap().into_inner()
        );
        assert!(ldk.get_expanded_key() == warden.get_expanded_key());
        assert!(ldk.get_peer_storage_key() == warden.get_peer_storage_key());
        assert!(ldk.get_receive_auth_key() == warden.get_receive_auth_key());
        let other = PublicKey::from_secret_key(
            &Secp256k1::new(),
            &SecretKey::from_slice(&[3; 32]).unwrap(),
        );
        assert_eq!(
            ldk.ecdh(Recipient::Node, &other, None).unwrap(),
            warden.ecdh(Recipient::Node, &other, None).unwrap()
        );
    }
}

#[test]
fn channel_keys_equal_ldk_keys_manager() {
    let secp = Secp256k1::new();
    for v2 in [true, false] {
        let (ldk, warden) = pair([9u8; 32], v2);
        let mut ids = vec![[0u8; 32], [0xff; 32]];
        for user_channel_id in [0u128, 1, u128::MAX] {
            ids.push(ldk.generate_channel_keys_id(false, user_channel_id));
            ids.push(warden.generate_channel_keys_id(true, user_channel_id));
        }
        for id in ids {
            let a = ldk.derive_channel_signer(id);
            let b = warden.derive_channel_signer(id);
            assert_eq!(a.pubkeys(&secp), b.pubkeys(&secp), "v2 {v2} id {id:?}");
            assert_eq!(a.channel_keys_id(), b.channel_keys_id());
            for idx in [(1u64 << 48) - 1, (1 << 48) - 2, 1000, 0] {
                assert_eq!(
                    a.get_per_commitment_point(idx, &secp).unwrap(),
                    b.get_per_commitment_point(idx, &secp).unwrap()
                );
            }
            let txid = bitcoin::Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros());
            assert_eq!(a.new_funding_pubkey(txid, &secp), b.new_funding_pubkey(txid, &secp));
        }
    }
}

#[test]
fn channel_keys_ids_are_unique_and_entropy_changes() {
    let (_, warden) = pair([1u8; 32], true);
    let a = warden.generate_channel_keys_id(false, 5);
    let b = warden.generate_channel_keys_id(false, 5);
    assert_ne!(a, b);
    assert_ne!(warden.get_secure_random_bytes(), warden.get_secure_random_bytes());
}

#[test]
fn debug_output_redacts_secrets() {
    let (_, warden) = pair([0x5a; 32], true);
    let text = format!("{warden:?} {:?}", warden.derive_channel_signer([2; 32]));
    assert!(!text.contains(&"5a".repeat(32)));
    assert!(!text.to_lowercase().contains("5a5a5a5a5a5a5a5a"));
}

/// Core Lightning's scheme: the node id and every channel key are warden-core's (the
/// derivation warden-hsmd answers lightningd with, byte-identical to `hsmd`'s) for the same
/// 32-byte `hsm_secret`, the channel being (our node id, the dbid the `channel_keys_id`
/// carries).
#[test]
fn core_lightning_scheme_keys_equal_warden_core_derivation() {
    use bitcoin::NetworkKind;
    use warden_core::keys::NodeKeys;
    use warden_core::secret::Seed;
    use warden_core::units::{CommitmentNumber, Dbid};
    use warden_ldk::keys::{cln_channel_keys_id, cln_dbid_of};

    let secp = Secp256k1::new();
    for secret in [[0x11u8; 32], [0xa7; 32]] {
        let core = NodeKeys::derive(&secp, &Seed::from_legacy(secret), NetworkKind::Test).unwrap();
        let warden = WardenKeysManager::new(
            &secret,
            KeyScheme::CoreLightning,
            WardenConfig::test_network(),
            1_700_000_000,
            5,
        )
        .unwrap();
        assert_eq!(warden.get_node_id(Recipient::Node).unwrap(), core.node_id().0);
        let ldk = KeysManager::new(&secret, 1_700_000_000, 5, true);
        assert_ne!(ldk.get_node_id(Recipient::Node).unwrap(), core.node_id().0);

        // Ids the manager makes carry fresh dbids; explicit ids carry the dbid asked for.
        let made: Vec<[u8; 32]> =
            (0..3).map(|i| warden.generate_channel_keys_id(i % 2 == 0, 77)).collect();
        let dbids: Vec<u64> = made.iter().map(cln_dbid_of).collect();
        assert!(dbids.windows(2).all(|w| w[1] == w[0] + 1), "{dbids:?}");
        for dbid in dbids.iter().copied().chain([1, 2, 1 << 40]) {
            let id = cln_channel_keys_id(dbid);
            assert_eq!(cln_dbid_of(&id), dbid);
            let theirs = core.channel_keys(&core.node_id(), Dbid(dbid)).unwrap();
            let ours = warden.derive_channel_signer(id);
            let keys = ours.pubkeys(&secp);
            let basepoints = theirs.basepoints(&secp);
            assert_eq!(keys.funding_pubkey, theirs.funding_pubkey(&secp).0);
            assert_eq!(keys.revocation_basepoint.to_public_key(), basepoints.revocation.0);
            assert_eq!(keys.payment_point, basepoints.payment.0);
            assert_eq!(keys.htlc_basepoint.to_public_key(), basepoints.htlc.0);
            assert_eq!(
                keys.delayed_payment_basepoint.to_public_key(),
                basepoints.delayed_payment.0
            );
            for n in [0u64, 1, 2, 1000] {
                let idx = (1u64 << 48) - 1 - n;
                let point =
                    theirs.per_commitment_point(&secp, CommitmentNumber::new(n).unwrap()).unwrap();
                assert_eq!(ours.get_per_commitment_point(idx, &secp).unwrap(), point.0);
                assert!(
                    ours.release_commitment_secret(idx).is_err(),
                    "nothing was validated: no secret is released"
                );
            }
        }
        // Another dbid, other keys.
        let a = warden.derive_channel_signer(cln_channel_keys_id(1)).pubkeys(&secp);
        let b = warden.derive_channel_signer(cln_channel_keys_id(2)).pubkeys(&secp);
        assert_ne!(a.funding_pubkey, b.funding_pubkey);
    }
}
