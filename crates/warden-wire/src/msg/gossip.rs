//! ECDH with the node key and the signatures of gossip messages.
//!
//! `ecdh` comes from `connectd` (and others with the ECDH permission); the gossip signatures
//! come from `channeld` and `gossipd`, and `sign_any_cannouncement` from lightningd.

use alloc::vec::Vec;

use secp256k1::ecdsa::Signature;
use secp256k1::PublicKey;

use crate::secret::Secret;
use crate::types::NodeId;

wire_message!(
    /// ECDH of the node key with `point`.
    Ecdh = 1, "hsmd_ecdh_req" {
        /// The other side's point.
        point: PublicKey,
    }
);

wire_message!(
    /// The shared secret.
    EcdhReply = 100, "hsmd_ecdh_resp" {
        /// The shared secret (SHA-256 of the compressed shared point).
        ss: Secret,
    }
);

wire_message!(
    /// Signs a `channel_announcement` of this client's channel.
    CannouncementSig = 2, "hsmd_cannouncement_sig_req" {
        /// The announcement.
        ca: Vec<u8>,
    }
);

wire_message!(
    /// Our node and bitcoin signatures on the announcement.
    CannouncementSigReply = 102, "hsmd_cannouncement_sig_reply" {
        /// The node key's signature.
        node_signature: Signature,
        /// The funding key's signature.
        bitcoin_signature: Signature,
    }
);

wire_message!(
    /// Signs a `channel_announcement` of a named channel (lightningd).
    SignAnyCannouncement = 4, "hsmd_sign_any_cannouncement_req" {
        /// The announcement.
        ca: Vec<u8>,
        /// The peer.
        peerid: NodeId,
        /// The channel's database id.
        channel_dbid: u64,
    }
);

wire_message!(
    /// Our node and bitcoin signatures on the announcement.
    SignAnyCannouncementReply = 104, "hsmd_sign_any_cannouncement_reply" {
        /// The node key's signature.
        node_signature: Signature,
        /// The funding key's signature.
        bitcoin_signature: Signature,
    }
);

wire_message!(
    /// Signs a `channel_update`.
    CupdateSig = 3, "hsmd_cupdate_sig_req" {
        /// The update, with a placeholder signature.
        cu: Vec<u8>,
    }
);

wire_message!(
    /// The update with our signature in place.
    CupdateSigReply = 103, "hsmd_cupdate_sig_reply" {
        /// The signed update.
        cu: Vec<u8>,
    }
);

wire_message!(
    /// Signs a `node_announcement`.
    NodeAnnouncementSig = 6, "hsmd_node_announcement_sig_req" {
        /// The announcement.
        announcement: Vec<u8>,
    }
);

wire_message!(
    /// The node key's signature on the announcement.
    NodeAnnouncementSigReply = 106, "hsmd_node_announcement_sig_reply" {
        /// The signature.
        signature: Signature,
    }
);
