//! Gossip signatures: `cannouncement_sig` (2), `sign_any_cannouncement` (4), `cupdate_sig` (3)
//! and `node_announcement_sig` (6), each signed only after the message parses strictly as the
//! BOLT-07 message it claims to be (rule `gossip-structure`).
//!
//! Core Lightning's `hsmd/libhsmd.c` (`handle_sign_cannouncement`, `handle_channel_update_sig`,
//! `handle_sign_node_announcement`) checks only the length and the type, then signs SHA256d of
//! the bytes after the signatures — with the **funding key** for a `channel_announcement`.
//! SHA256d over caller-chosen bytes is exactly how a BIP-0143 sighash is made, so hsmd is a
//! funding-key oracle: a "channel announcement" whose tail is the BIP-0143 preimage of a
//! transaction spending the funding output gets a valid signature on that spend.
//!
//! The checks themselves are warden-core's (`policy::gossip`, where the argument why a
//! parsed message cannot be a transaction sighash — `message-oracle` — is written down).
//!
//! Signatures are ground to a low R exactly as hsmd's `sign_hash` does
//! ([`sign::sign_hash_low_r`]), so a message that passes the checks gets hsmd's signature.

use warden_core::sign;

use warden_core::policy::gossip::{
    check_channel_announcement, check_channel_update, check_node_announcement, AnnouncedChannel,
    ONE_SIG_SIGNED_FROM,
};
use warden_wire::msg::*;

use crate::channels::{encode, invalid, refused, slot};
use crate::signer::{BadRequestError, ClientContext, Signer};

impl Signer {
    /// `cannouncement_sig` (2) from the channel's client, or `sign_any_cannouncement` (4) from
    /// lightningd: the node and funding signatures of a `channel_announcement` of the channel
    /// (`peer`, `dbid`), after checking it is one.
    fn checked_cannouncement(
        &self,
        peer: &warden_wire::NodeId,
        dbid: u64,
        ca: &[u8],
    ) -> Result<(secp256k1::ecdsa::Signature, secp256k1::ecdsa::Signature), BadRequestError> {
        let secp = &self.secp;
        let slot = slot(peer, dbid)?;
        let state = self.channels.snapshot(&slot)?;
        let setup = state.setup().map_err(refused)?;
        let keys = self.channel_keys(peer, dbid)?;
        let channel = AnnouncedChannel {
            our_node_id: self.keys.node_id().serialize(),
            peer_node_id: slot.peer.serialize(),
            our_funding_key: keys.funding_pubkey(secp).serialize(),
            peer_funding_key: setup.counterparty_funding_pubkey.serialize(),
            funding_vout: setup.funding_outpoint.vout,
        };
        check_channel_announcement(ca, &channel).map_err(refused)?;
        sign::sign_channel_announcement(secp, self.keys.node_key(), keys.funding_key(), ca)
            .map_err(invalid)
    }

    /// `cannouncement_sig` (2): the channel is the client's.
    pub(crate) fn cannouncement_sig(
        &self,
        client: &ClientContext,
        m: &CannouncementSig,
    ) -> Result<Vec<u8>, BadRequestError> {
        let (node_signature, bitcoin_signature) =
            self.checked_cannouncement(&client.id, client.dbid, &m.ca)?;
        encode(&CannouncementSigReply { node_signature, bitcoin_signature })
    }

    /// `sign_any_cannouncement` (4): lightningd names the channel.
    pub(crate) fn sign_any_cannouncement(
        &self,
        m: &SignAnyCannouncement,
    ) -> Result<Vec<u8>, BadRequestError> {
        let (node_signature, bitcoin_signature) =
            self.checked_cannouncement(&m.peerid, m.channel_dbid, &m.ca)?;
        encode(&SignAnyCannouncementReply { node_signature, bitcoin_signature })
    }

    /// `cupdate_sig` (3): signs a `channel_update` of exactly BOLT-07's fields and returns it
    /// with the signature in place (hsmd re-encodes the parsed update; with nothing trailing
    /// that is the request's bytes with the signature replaced). From a channel's client, the
    /// direction bit must be ours (0 when our node id is the lesser).
    pub(crate) fn cupdate_sig(
        &self,
        client: &ClientContext,
        m: &CupdateSig,
    ) -> Result<Vec<u8>, BadRequestError> {
        let cu = &m.cu;
        let ours = self.keys.node_id().serialize();
        let we_are_first = (client.dbid != 0 && client.id.as_bytes() != &ours)
            .then(|| ours.as_slice() < client.id.as_bytes().as_slice());
        check_channel_update(cu, we_are_first).map_err(refused)?;
        let signed = cu.get(ONE_SIG_SIGNED_FROM..).unwrap_or_default();
        let sig =
            sign::sign_channel_update(&self.secp, self.keys.node_key(), cu).map_err(invalid)?;
        let mut out = Vec::with_capacity(cu.len());
        out.extend_from_slice(cu.get(..2).unwrap_or_default());
        out.extend_from_slice(&sig.serialize_compact());
        out.extend_from_slice(signed);
        encode(&CupdateSigReply { cu: out })
    }

    /// `node_announcement_sig` (6): signs a `node_announcement` of our node id whose fields
    /// all parse, followed only by a well-formed TLV stream.
    pub(crate) fn node_announcement_sig(
        &self,
        m: &NodeAnnouncementSig,
    ) -> Result<Vec<u8>, BadRequestError> {
        let ann = &m.announcement;
        check_node_announcement(ann, &self.keys.node_id().serialize()).map_err(refused)?;
        let signature =
            sign::sign_node_announcement(&self.secp, self.keys.node_key(), ann).map_err(invalid)?;
        encode(&NodeAnnouncementSigReply { signature })
    }
}
