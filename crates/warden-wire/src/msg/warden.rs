//! Warden's extension messages: requests Core Lightning's hsmd does not have, carried on the
//! same connections and framing as hsmd's own.
//!
//! Their type numbers live in 61000–61999, far outside `hsmd_wire.csv` (requests below 100,
//! replies at request + 100, status messages at 0xFFF0 and above), and follow hsmd's habit of
//! numbering a reply 100 above its request. lightningd never sends them: the clients are
//! Warden's own tools (`warden unseal`, `warden backup restore`), which speak to `warden-hsmd`
//! as lightningd does, over the master connection. In proxy mode the proxy forwards them over
//! the link like any request, so the remote signer answers them.
//!
//! | type | name | fields |
//! |---|---|---|
//! | 61001 | `warden_unseal` | `num_items: u16`, then per item: `ephemeral: point` (33), `context_len: u16`, `context` |
//! | 61101 | `warden_unseal_reply` | `num_keys: u16`, then `num_keys × secret` (32 each), one per item, in order |
//! | 61003 | `warden_node_backup_pubkey` | (none) |
//! | 61103 | `warden_node_backup_pubkey_reply` | `pubkey: point` (33) |
//! | 61005 | `warden_status` | (none) |
//! | 61105 | `warden_status_reply` | `json_len: u16`, `json`: the signer's health as a JSON object |
//!
//! `warden_unseal` asks for the keys of blobs sealed to the node-backup key (warden-core
//! `seal::ecies`): for each item, k = HKDF(x(p·R) ‖ R ‖ P, info = context). The signer releases
//! keys only for node-backup contexts and within its rate limit (policy rule `node-unseal`),
//! and writes each release to its audit trail before the reply leaves.

use alloc::vec::Vec;

use secp256k1::PublicKey;

use crate::codec::{Reader, WireElement, WireField, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::secret::Secret;

/// The first type number of Warden's extension range.
pub const WARDEN_TYPES_START: u16 = 61000;
/// The last type number of Warden's extension range.
pub const WARDEN_TYPES_END: u16 = 61999;

/// Whether `msg_type` is one of Warden's extension numbers.
pub fn is_warden_type(msg_type: u16) -> bool {
    (WARDEN_TYPES_START..=WARDEN_TYPES_END).contains(&msg_type)
}

/// One sealed blob to unseal: its ephemeral point R and the context it was sealed for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsealItem {
    /// The blob's ephemeral public key R.
    pub ephemeral: PublicKey,
    /// The context string the blob was sealed with (at most 65535 bytes).
    pub context: Vec<u8>,
}

impl WireField for UnsealItem {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(UnsealItem { ephemeral: PublicKey::read(r)?, context: Vec::<u8>::read(r)? })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.ephemeral.write(w)?;
        self.context.write(w)
    }
}

impl WireElement for UnsealItem {
    /// The point and the context's length.
    const MIN_WIRE_SIZE: usize = 33 + 2;
}

wire_message!(
    /// Asks for the keys of blobs sealed to the node-backup key (Warden extension).
    WardenUnseal = 61001, "warden_unseal" {
        /// The blobs, by ephemeral point and context.
        items: Vec<UnsealItem>,
    }
);

wire_message!(
    /// The key of each blob, in the order asked (Warden extension).
    WardenUnsealReply = 61101, "warden_unseal_reply" {
        /// One 32-byte key per item.
        keys: Vec<Secret>,
    }
);

wire_message!(
    /// Asks for the node-backup public key, the key node backups are sealed to (Warden
    /// extension).
    WardenNodeBackupPubkey = 61003, "warden_node_backup_pubkey" {}
);

wire_message!(
    /// The node-backup public key (Warden extension).
    WardenNodeBackupPubkeyReply = 61103, "warden_node_backup_pubkey_reply" {
        /// The key.
        pubkey: PublicKey,
    }
);

wire_message!(
    /// Asks for the signer's health: what the proxy shows on the node's side (Warden
    /// extension).
    WardenStatus = 61005, "warden_status" {}
);

wire_message!(
    /// The signer's health as a JSON object (UTF-8): node id, channels, store sequence,
    /// refusals and warnings by rule, open alarms (Warden extension).
    WardenStatusReply = 61105, "warden_status_reply" {
        /// The JSON text.
        json: Vec<u8>,
    }
);
