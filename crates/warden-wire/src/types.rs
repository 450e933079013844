//! The composite wire types of hsmd messages: node ids, strings, amounts, channel basepoints and
//! types, HTLCs and wallet UTXOs.
//!
//! Each encoding follows the Core Lightning function named on the type.

use alloc::vec::Vec;
use core::fmt;

use bitcoin::hashes::sha256;
use bitcoin::{Amount, OutPoint, ScriptBuf, Txid};
use secp256k1::PublicKey;

use crate::codec::{Reader, WireElement, WireField, Writer};
use crate::error::{DecodeError, EncodeError, InvalidWireStringError};
use crate::secret::Secret;

/// Writes bytes as lower-case hex.
pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// A node id: 33 bytes that should be a compressed public key (`node_id`).
///
/// hsmd's `fromwire_node_id` copies the bytes without checking the point, so neither does this
/// decoder; [`NodeId::to_public_key`] checks it when a key is needed.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId([u8; 33]);

impl NodeId {
    /// A node id from its 33 bytes.
    pub const fn from_bytes(bytes: [u8; 33]) -> NodeId {
        NodeId(bytes)
    }

    /// The 33 bytes.
    pub fn as_bytes(&self) -> &[u8; 33] {
        &self.0
    }

    /// The node's public key, or `None` if the bytes are not a valid compressed point.
    pub fn to_public_key(&self) -> Option<PublicKey> {
        PublicKey::from_slice(&self.0).ok()
    }
}

impl From<PublicKey> for NodeId {
    fn from(pk: PublicKey) -> NodeId {
        NodeId(pk.serialize())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeId(")?;
        write_hex(f, &self.0)?;
        f.write_str(")")
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl WireField for NodeId {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NodeId(r.read_array()?))
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(&self.0);
        Ok(())
    }
}

/// An amount in millisatoshis (`amount_msat`, a `u64`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AmountMsat(pub u64);

impl fmt::Display for AmountMsat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} msat", self.0)
    }
}

impl WireField for AmountMsat {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AmountMsat(r.read_u64()?))
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u64(self.0);
        Ok(())
    }
}

/// A short channel id (`short_channel_id`: a `u64`, block height in the top 3 bytes, then the
/// transaction index in 3 bytes, then the output index in 2). No hsmd message carries one today;
/// it is here for Warden's own messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShortChannelId(pub u64);

impl ShortChannelId {
    /// The block height of the funding transaction.
    pub fn block(self) -> u32 {
        (self.0 >> 40) as u32
    }

    /// The funding transaction's index in its block.
    pub fn tx_index(self) -> u32 {
        ((self.0 >> 16) & 0xff_ffff) as u32
    }

    /// The funding output's index.
    pub fn output_index(self) -> u16 {
        (self.0 & 0xffff) as u16
    }
}

impl fmt::Display for ShortChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.block(), self.tx_index(), self.output_index())
    }
}

impl WireField for ShortChannelId {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ShortChannelId(r.read_u64()?))
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u64(self.0);
        Ok(())
    }
}

/// Reads a `wirestring` (`fromwire_wirestring`): bytes up to a NUL, none of them below 0x20.
/// Returns the bytes without the NUL.
pub(crate) fn read_wirestring(r: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
    let offset = r.offset();
    let rest = r.clone().read_rest();
    let mut len = None;
    for (i, &b) in rest.iter().enumerate() {
        if b == 0 {
            len = Some(i);
            break;
        }
        if b < 0x20 {
            break;
        }
    }
    let len = len.ok_or(DecodeError::InvalidWireString { offset })?;
    let bytes = r.read_bytes(len)?.to_vec();
    r.read_u8()?;
    Ok(bytes)
}

/// Writes a `wirestring`: the bytes, then a NUL.
pub(crate) fn write_wirestring(w: &mut Writer, bytes: &[u8]) {
    w.write_bytes(bytes);
    w.write_u8(0);
}

/// A `wirestring`: text sent NUL-terminated, with no byte below 0x20.
///
/// hsmd does not require UTF-8 (bytes of 0x80 and above pass), so the bytes are kept as they
/// came; [`WireString::as_str`] reads them as UTF-8 when they are.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct WireString(Vec<u8>);

impl WireString {
    /// A wire string from bytes (without the NUL), refusing a byte below 0x20.
    pub fn new(bytes: Vec<u8>) -> Result<WireString, InvalidWireStringError> {
        match bytes.iter().position(|&b| b < 0x20) {
            Some(index) => Err(InvalidWireStringError { index }),
            None => Ok(WireString(bytes)),
        }
    }

    /// The bytes, without the terminating NUL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text, if the bytes are UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.0).ok()
    }
}

impl TryFrom<&str> for WireString {
    type Error = InvalidWireStringError;
    fn try_from(s: &str) -> Result<WireString, InvalidWireStringError> {
        WireString::new(s.as_bytes().to_vec())
    }
}

impl fmt::Debug for WireString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => write!(f, "WireString({s:?})"),
            None => {
                f.write_str("WireString(0x")?;
                write_hex(f, &self.0)?;
                f.write_str(")")
            }
        }
    }
}

impl WireField for WireString {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(WireString(read_wirestring(r)?))
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        write_wirestring(w, &self.0);
        Ok(())
    }
}

/// The BIP-0032 version bytes of the chain (`bip32_key_version`: two `u32`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bip32KeyVersion {
    /// The version of extended public keys (0x043587cf for test networks).
    pub pubkey_version: u32,
    /// The version of extended private keys (0x04358394 for test networks).
    pub privkey_version: u32,
}

impl WireField for Bip32KeyVersion {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Bip32KeyVersion { pubkey_version: r.read_u32()?, privkey_version: r.read_u32()? })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u32(self.pubkey_version);
        w.write_u32(self.privkey_version);
        Ok(())
    }
}

/// A BOLT-02 channel type: its feature bitmap (`channel_type`: a `u16` length, then the bytes,
/// most significant byte first, as `wire/channel_type_wiregen.c` encodes it).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ChannelType(pub Vec<u8>);

impl ChannelType {
    /// Whether feature bit `bit` is set (BOLT-09 numbering: bit 0 is the lowest bit of the
    /// last byte).
    pub fn has_bit(&self, bit: usize) -> bool {
        let byte_from_end = bit / 8;
        let Some(index) = self.0.len().checked_sub(byte_from_end.saturating_add(1)) else {
            return false;
        };
        self.0.get(index).is_some_and(|b| b & (1u8 << (bit % 8)) != 0)
    }
}

impl fmt::Debug for ChannelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelType(0x")?;
        write_hex(f, &self.0)?;
        f.write_str(")")
    }
}

impl WireField for ChannelType {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ChannelType(Vec::<u8>::read(r)?))
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.0.write(w)
    }
}

/// A channel's four basepoints (`basepoints`, in the order `towire_basepoints` writes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Basepoints {
    /// The revocation basepoint.
    pub revocation: PublicKey,
    /// The payment basepoint.
    pub payment: PublicKey,
    /// The HTLC basepoint.
    pub htlc: PublicKey,
    /// The delayed-payment basepoint.
    pub delayed_payment: PublicKey,
}

impl WireField for Basepoints {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Basepoints {
            revocation: PublicKey::read(r)?,
            payment: PublicKey::read(r)?,
            htlc: PublicKey::read(r)?,
            delayed_payment: PublicKey::read(r)?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.revocation.write(w)?;
        self.payment.write(w)?;
        self.htlc.write(w)?;
        self.delayed_payment.write(w)
    }
}

/// Forced channel secrets for tests (`secrets`, `--dev-force-channel-secrets`), in the order
/// `towire_secrets` writes them (delayed-payment before HTLC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevChannelSecrets {
    /// The funding private key.
    pub funding_privkey: Secret,
    /// The revocation basepoint secret.
    pub revocation_basepoint_secret: Secret,
    /// The payment basepoint secret.
    pub payment_basepoint_secret: Secret,
    /// The delayed-payment basepoint secret.
    pub delayed_payment_basepoint_secret: Secret,
    /// The HTLC basepoint secret.
    pub htlc_basepoint_secret: Secret,
}

impl WireField for DevChannelSecrets {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DevChannelSecrets {
            funding_privkey: Secret::read(r)?,
            revocation_basepoint_secret: Secret::read(r)?,
            payment_basepoint_secret: Secret::read(r)?,
            delayed_payment_basepoint_secret: Secret::read(r)?,
            htlc_basepoint_secret: Secret::read(r)?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.funding_privkey.write(w)?;
        self.revocation_basepoint_secret.write(w)?;
        self.payment_basepoint_secret.write(w)?;
        self.delayed_payment_basepoint_secret.write(w)?;
        self.htlc_basepoint_secret.write(w)
    }
}

/// Which side offered an HTLC (`enum side`, one byte: `fromwire_side`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Offered by us (`LOCAL`, 0).
    Local,
    /// Offered by the peer (`REMOTE`, 1).
    Remote,
}

impl WireField for Side {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.offset();
        match r.read_u8()? {
            0 => Ok(Side::Local),
            1 => Ok(Side::Remote),
            value => Err(DecodeError::InvalidSide { offset, value }),
        }
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u8(match self {
            Side::Local => 0,
            Side::Remote => 1,
        });
        Ok(())
    }
}

/// An HTLC of a commitment (`hsm_htlc` subtype of `hsmd_wire.csv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HsmHtlc {
    /// Who offered it.
    pub side: Side,
    /// Its amount.
    pub amount: AmountMsat,
    /// Its payment hash.
    pub payment_hash: sha256::Hash,
    /// Its absolute CLTV expiry.
    pub cltv_expiry: u32,
}

impl WireField for HsmHtlc {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(HsmHtlc {
            side: Side::read(r)?,
            amount: AmountMsat::read(r)?,
            payment_hash: sha256::Hash::read(r)?,
            cltv_expiry: r.read_u32()?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.side.write(w)?;
        self.amount.write(w)?;
        self.payment_hash.write(w)?;
        w.write_u32(self.cltv_expiry);
        Ok(())
    }
}

impl WireElement for HsmHtlc {
    const MIN_WIRE_SIZE: usize = 1 + 8 + 32 + 4;
}

/// What hsmd needs to spend an output of a peer's unilateral close to us
/// (`unilateral_close_info`, inside [`HsmUtxo`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CloseInfo {
    /// The database id of the closed channel.
    pub channel_id: u64,
    /// The peer of the closed channel.
    pub peer_id: NodeId,
    /// The per-commitment point of the close, if the output's key depends on it.
    pub commitment_point: Option<PublicKey>,
    /// Whether the channel had anchor outputs.
    pub option_anchors: bool,
    /// The CSV delay of the output.
    pub csv: u32,
}

/// A wallet output being spent (`hsm_utxo`, `hsmd/hsm_utxo.c`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HsmUtxo {
    /// The output.
    pub outpoint: OutPoint,
    /// Its value.
    pub amount: Amount,
    /// Its BIP-0032 key index in the wallet.
    pub keyindex: u32,
    /// A byte that used to be `is_p2sh`: `towire_hsm_utxo` always sends false and hsmd ignores
    /// it (kept so a message re-encodes byte for byte).
    pub legacy_is_p2sh: bool,
    /// Its script.
    pub script_pubkey: ScriptBuf,
    /// Present when the output came from a peer's unilateral close.
    pub close_info: Option<CloseInfo>,
    /// A byte that used to be `is_in_coinbase`: always sent false and ignored by hsmd.
    pub legacy_is_in_coinbase: bool,
}

impl WireField for HsmUtxo {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let txid = Txid::read(r)?;
        let vout = r.read_u32()?;
        let amount = Amount::read(r)?;
        let keyindex = r.read_u32()?;
        let legacy_is_p2sh = r.read_bool()?;
        let script_pubkey = ScriptBuf::read(r)?;
        let close_info = if r.read_bool()? {
            Some(CloseInfo {
                channel_id: r.read_u64()?,
                peer_id: NodeId::read(r)?,
                commitment_point: Option::<PublicKey>::read(r)?,
                option_anchors: r.read_bool()?,
                csv: r.read_u32()?,
            })
        } else {
            None
        };
        let legacy_is_in_coinbase = r.read_bool()?;
        Ok(HsmUtxo {
            outpoint: OutPoint { txid, vout },
            amount,
            keyindex,
            legacy_is_p2sh,
            script_pubkey,
            close_info,
            legacy_is_in_coinbase,
        })
    }

    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.outpoint.txid.write(w)?;
        w.write_u32(self.outpoint.vout);
        self.amount.write(w)?;
        w.write_u32(self.keyindex);
        w.write_bool(self.legacy_is_p2sh);
        self.script_pubkey.write(w)?;
        match &self.close_info {
            Some(ci) => {
                w.write_bool(true);
                w.write_u64(ci.channel_id);
                ci.peer_id.write(w)?;
                ci.commitment_point.write(w)?;
                w.write_bool(ci.option_anchors);
                w.write_u32(ci.csv);
            }
            None => w.write_bool(false),
        }
        w.write_bool(self.legacy_is_in_coinbase);
        Ok(())
    }
}

impl WireElement for HsmUtxo {
    /// txid, vout, amount, keyindex, is_p2sh, script length, close_info flag, is_in_coinbase.
    const MIN_WIRE_SIZE: usize = 32 + 4 + 8 + 4 + 1 + 2 + 1 + 1;
}

/// The permissions of an hsmd client (`permissions` of `client_hsmfd`, `hsmd/permissions.h`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Permissions(pub u64);

impl Permissions {
    /// `HSM_PERM_ECDH`.
    pub const ECDH: Permissions = Permissions(1);
    /// `HSM_PERM_SIGN_GOSSIP`.
    pub const SIGN_GOSSIP: Permissions = Permissions(2);
    /// `HSM_PERM_SIGN_ONCHAIN_TX`.
    pub const SIGN_ONCHAIN_TX: Permissions = Permissions(4);
    /// `HSM_PERM_COMMITMENT_POINT`.
    pub const COMMITMENT_POINT: Permissions = Permissions(8);
    /// `HSM_PERM_SIGN_REMOTE_TX`.
    pub const SIGN_REMOTE_TX: Permissions = Permissions(16);
    /// `HSM_PERM_SIGN_CLOSING_TX`.
    pub const SIGN_CLOSING_TX: Permissions = Permissions(32);
    /// `HSM_PERM_SIGN_WILL_FUND_OFFER`.
    pub const SIGN_WILL_FUND_OFFER: Permissions = Permissions(64);
    /// `HSM_PERM_SIGN_SPLICE_TX`.
    pub const SIGN_SPLICE_TX: Permissions = Permissions(128);
    /// `HSM_PERM_LOCK_OUTPOINT`.
    pub const LOCK_OUTPOINT: Permissions = Permissions(256);
    /// `HSM_PERM_MASTER`.
    pub const MASTER: Permissions = Permissions(1024);

    /// Whether every bit of `other` is set here.
    pub fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }
}

impl WireField for Permissions {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Permissions(r.read_u64()?))
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u64(self.0);
        Ok(())
    }
}
