//! The remote protocol's calls and answers, carried in warden-link `Request` / `Reply` bodies
//! (see the encoding table in [`crate::remote`]).

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use bitcoin::secp256k1::schnorr;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::{ScriptBuf, Transaction, TxOut};
use lightning::bolt11_invoice::{RawBolt11Invoice, SignedRawBolt11Invoice};
use lightning::ln::chan_utils::{
    ChannelPublicKeys, ChannelTransactionParameters, CommitmentTransaction, HTLCOutputInCommitment,
    HolderCommitmentTransaction,
};
use lightning::ln::msgs::{
    UnsignedChannelAnnouncement, UnsignedChannelUpdate, UnsignedNodeAnnouncement,
};
use lightning::offers::invoice::UnsignedBolt12Invoice;
use lightning::sign::{HTLCDescriptor, SpendableOutputDescriptor};
use lightning::types::payment::PaymentPreimage;
use lightning::util::ser::{LengthReadable, Readable, ReadableArgs, Writeable};

/// `hello`: the node-level values the node side keeps for the session.
pub const HELLO: u16 = 62001;
/// `new_channel`: a fresh `channel_keys_id` and its public keys.
pub const NEW_CHANNEL: u16 = 62003;
/// `channel_pubkeys`: a channel's public keys.
pub const CHANNEL_PUBKEYS: u16 = 62005;
/// `points`: per-commitment points from an index down.
pub const POINTS: u16 = 62007;
/// `release_commitment_secret`.
pub const RELEASE_SECRET: u16 = 62009;
/// `validate_holder_commitment`.
pub const VALIDATE_HOLDER: u16 = 62011;
/// `validate_counterparty_revocation`.
pub const VALIDATE_REVOCATION: u16 = 62013;
/// `sign_counterparty_commitment`.
pub const SIGN_COUNTERPARTY: u16 = 62015;
/// `sign_holder_commitment`.
pub const SIGN_HOLDER: u16 = 62017;
/// `sign_closing_transaction`.
pub const SIGN_CLOSING: u16 = 62019;
/// `sign_justice_revoked_output`.
pub const SIGN_JUSTICE_OUTPUT: u16 = 62021;
/// `sign_justice_revoked_htlc`.
pub const SIGN_JUSTICE_HTLC: u16 = 62023;
/// `sign_holder_htlc_transaction`.
pub const SIGN_HOLDER_HTLC: u16 = 62025;
/// `sign_counterparty_htlc_transaction`.
pub const SIGN_COUNTERPARTY_HTLC: u16 = 62027;
/// `sign_holder_keyed_anchor_input`.
pub const SIGN_ANCHOR: u16 = 62029;
/// `sign_channel_announcement_with_funding_key`.
pub const SIGN_ANNOUNCEMENT: u16 = 62031;
/// `ecdh` with the node key.
pub const ECDH: u16 = 62033;
/// `sign_gossip_message`.
pub const SIGN_GOSSIP: u16 = 62035;

/// `spend_spendable_outputs`.
pub const SPEND_OUTPUTS: u16 = 62037;

/// `sign_invoice` (BOLT-11, `Recipient::Node`).
pub const SIGN_INVOICE: u16 = 62039;
/// `sign_bolt12_invoice`.
pub const SIGN_BOLT12_INVOICE: u16 = 62041;
/// `sign_message`.
pub const SIGN_MESSAGE: u16 = 62043;

/// The longest message `sign_message` carries (a link message is at most 65535 bytes).
pub const MAX_SIGNED_MESSAGE: usize = 60_000;

/// The most descriptors or outputs one `spend_spendable_outputs` call carries.
pub const MAX_SWEEP_ITEMS: u16 = 1024;

/// The most per-commitment points one `points` call returns.
pub const MAX_POINTS: u16 = 64;
/// The most preimages one call carries.
pub const MAX_PREIMAGES: u16 = 4096;

/// A gossip message to sign with the node key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gossip {
    /// A channel announcement.
    ChannelAnnouncement(UnsignedChannelAnnouncement),
    /// A channel update.
    ChannelUpdate(UnsignedChannelUpdate),
    /// A node announcement.
    NodeAnnouncement(UnsignedNodeAnnouncement),
}

/// One LDK signer call, as the node side sends it.
#[derive(Clone, Debug)]
pub enum Call {
    /// The node-level values: node id, the keys LDK needs locally, our scripts.
    Hello,
    /// `generate_channel_keys_id` then `pubkeys` of the new channel.
    NewChannel {
        /// LDK's `inbound`.
        inbound: bool,
        /// LDK's `user_channel_id`.
        user_channel_id: u128,
        /// Fresh bytes of the node side's: two channels with the same `user_channel_id` are
        /// two calls (a cached answer would give them one `channel_keys_id`).
        nonce: [u8; 32],
    },
    /// `derive_channel_signer(id).pubkeys()`.
    ChannelPubkeys {
        /// The channel.
        id: [u8; 32],
    },
    /// `get_per_commitment_point` for `idx`, `idx - 1`, … (`count` of them, at most
    /// [`MAX_POINTS`]).
    Points {
        /// The channel.
        id: [u8; 32],
        /// The first (highest) index.
        idx: u64,
        /// How many.
        count: u16,
    },
    /// `release_commitment_secret`.
    ReleaseSecret {
        /// The channel.
        id: [u8; 32],
        /// LDK's index.
        idx: u64,
    },
    /// `validate_holder_commitment`.
    ValidateHolder {
        /// The channel.
        id: [u8; 32],
        /// The commitment.
        tx: Box<HolderCommitmentTransaction>,
        /// The outbound preimages.
        preimages: Vec<PaymentPreimage>,
    },
    /// `validate_counterparty_revocation`.
    ValidateRevocation {
        /// The channel.
        id: [u8; 32],
        /// LDK's index.
        idx: u64,
        /// The peer's secret.
        secret: SecretKey,
    },
    /// `sign_counterparty_commitment`.
    SignCounterparty {
        /// The channel.
        id: [u8; 32],
        /// The parameters.
        params: Box<ChannelTransactionParameters>,
        /// The commitment.
        tx: Box<CommitmentTransaction>,
        /// The inbound preimages.
        inbound: Vec<PaymentPreimage>,
        /// The outbound preimages.
        outbound: Vec<PaymentPreimage>,
    },
    /// `sign_holder_commitment`.
    SignHolder {
        /// The channel.
        id: [u8; 32],
        /// The parameters.
        params: Box<ChannelTransactionParameters>,
        /// The commitment.
        tx: Box<HolderCommitmentTransaction>,
    },
    /// `sign_closing_transaction`, the closing transaction given by its parts (the funding
    /// outpoint is the parameters').
    SignClosing {
        /// The channel.
        id: [u8; 32],
        /// The parameters.
        params: Box<ChannelTransactionParameters>,
        /// What the holder gets.
        to_holder: u64,
        /// What the counterparty gets.
        to_counterparty: u64,
        /// The holder's script.
        holder_script: ScriptBuf,
        /// The counterparty's script.
        counterparty_script: ScriptBuf,
    },
    /// `sign_justice_revoked_output`.
    SignJusticeOutput {
        /// The channel.
        id: [u8; 32],
        /// The parameters.
        params: Box<ChannelTransactionParameters>,
        /// The justice transaction.
        tx: Transaction,
        /// The input.
        input: u32,
        /// The amount spent.
        amount: u64,
        /// The peer's revealed per-commitment secret.
        key: SecretKey,
    },
    /// `sign_justice_revoked_htlc`.
    SignJusticeHtlc {
        /// The channel.
        id: [u8; 32],
        /// The parameters.
        params: Box<ChannelTransactionParameters>,
        /// The justice transaction.
        tx: Transaction,
        /// The input.
        input: u32,
        /// The amount spent.
        amount: u64,
        /// The peer's revealed per-commitment secret.
        key: SecretKey,
        /// The HTLC.
        htlc: HTLCOutputInCommitment,
    },
    /// `sign_holder_htlc_transaction`.
    SignHolderHtlc {
        /// The channel.
        id: [u8; 32],
        /// The HTLC transaction.
        tx: Transaction,
        /// The input.
        input: u32,
        /// The descriptor.
        descriptor: Box<HTLCDescriptor>,
    },
    /// `sign_counterparty_htlc_transaction`.
    SignCounterpartyHtlc {
        /// The channel.
        id: [u8; 32],
        /// The parameters.
        params: Box<ChannelTransactionParameters>,
        /// The sweep.
        tx: Transaction,
        /// The input.
        input: u32,
        /// The amount spent.
        amount: u64,
        /// The peer's per-commitment point.
        point: PublicKey,
        /// The HTLC.
        htlc: HTLCOutputInCommitment,
    },
    /// `sign_holder_keyed_anchor_input`.
    SignAnchor {
        /// The channel.
        id: [u8; 32],
        /// The parameters.
        params: Box<ChannelTransactionParameters>,
        /// The anchor spend.
        tx: Transaction,
        /// The input.
        input: u32,
    },
    /// `sign_channel_announcement_with_funding_key`.
    SignAnnouncement {
        /// The channel.
        id: [u8; 32],
        /// The parameters.
        params: Box<ChannelTransactionParameters>,
        /// The announcement.
        msg: Box<UnsignedChannelAnnouncement>,
    },
    /// `ecdh` with the node key (`Recipient::Node`).
    Ecdh {
        /// The other key.
        point: PublicKey,
        /// The tweak, if any.
        tweak: Option<[u8; 32]>,
    },
    /// `sign_gossip_message`.
    SignGossip(Box<Gossip>),
    /// `spend_spendable_outputs`.
    SpendOutputs {
        /// The outputs to spend.
        descriptors: Vec<SpendableOutputDescriptor>,
        /// Outputs to pay besides the change.
        outputs: Vec<TxOut>,
        /// Where the change goes.
        change: ScriptBuf,
        /// The feerate (sat per 1000 weight).
        feerate: u32,
        /// The locktime, if any.
        locktime: Option<u32>,
    },
    /// `sign_invoice` for `Recipient::Node` (a phantom node's invoice is refused locally).
    SignInvoice(Box<RawBolt11Invoice>),
    /// `sign_bolt12_invoice`: the unsigned invoice's TLV stream (LDK's `Writeable`), checked
    /// to parse as an `UnsignedBolt12Invoice` when decoded.
    SignBolt12Invoice(Vec<u8>),
    /// `sign_message`: the message (at most [`MAX_SIGNED_MESSAGE`] bytes).
    SignMessage(Vec<u8>),
}

/// Bytes that do not decode as a call or an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError(pub String);

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "remote signer message: {}", self.0)
    }
}

impl std::error::Error for WireError {}

/// Appends LDK serializations to a buffer.
#[derive(Default)]
pub(crate) struct Out(pub(crate) Vec<u8>);

impl Out {
    pub(crate) fn tagged(tag: u16) -> Out {
        Out(tag.to_be_bytes().to_vec())
    }

    pub(crate) fn put<T: Writeable + ?Sized>(&mut self, v: &T) -> &mut Self {
        // Writing into a `Vec` cannot fail.
        let _ = v.write(&mut self.0);
        self
    }

    pub(crate) fn preimages(&mut self, p: &[PaymentPreimage]) -> &mut Self {
        let n = u16::try_from(p.len()).unwrap_or(u16::MAX).min(MAX_PREIMAGES);
        self.put(&n);
        for x in p.iter().take(usize::from(n)) {
            self.put(&x.0);
        }
        self
    }

    pub(crate) fn sig(&mut self, s: &Signature) -> &mut Self {
        self.0.extend_from_slice(&s.serialize_compact());
        self
    }
}

/// Reads LDK serializations from a byte slice, refusing trailing bytes at the end.
pub(crate) struct In<'a>(pub(crate) &'a [u8]);

impl In<'_> {
    pub(crate) fn get<T: Readable>(&mut self, what: &str) -> Result<T, WireError> {
        T::read(&mut self.0).map_err(|e| WireError(format!("{what}: {e:?}")))
    }

    /// A message read to the end of the bytes (gossip messages are always last).
    pub(crate) fn rest<T: LengthReadable>(&mut self, what: &str) -> Result<T, WireError> {
        T::read_from_fixed_length_buffer(&mut self.0)
            .map_err(|e| WireError(format!("{what}: {e:?}")))
    }

    pub(crate) fn params(&mut self) -> Result<Box<ChannelTransactionParameters>, WireError> {
        ChannelTransactionParameters::read(&mut self.0, None)
            .map(Box::new)
            .map_err(|e| WireError(format!("channel parameters: {e:?}")))
    }

    pub(crate) fn preimages(&mut self) -> Result<Vec<PaymentPreimage>, WireError> {
        let n: u16 = self.get("preimage count")?;
        if n > MAX_PREIMAGES {
            return Err(WireError(format!("{n} preimages, above {MAX_PREIMAGES}")));
        }
        (0..n).map(|_| self.get::<[u8; 32]>("preimage").map(PaymentPreimage)).collect()
    }

    pub(crate) fn sig(&mut self) -> Result<Signature, WireError> {
        let bytes: [u8; 64] = self
            .0
            .get(..64)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| WireError("signature: too short".into()))?;
        self.0 = self.0.get(64..).unwrap_or_default();
        Signature::from_compact(&bytes).map_err(|_| WireError("signature: invalid".into()))
    }

    pub(crate) fn input(&mut self) -> Result<u32, WireError> {
        self.get("input index")
    }

    pub(crate) fn end(&self) -> Result<(), WireError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(WireError(format!("{} trailing bytes", self.0.len())))
        }
    }
}

/// Splits a message into its tag and body.
pub(crate) fn split_tag(msg: &[u8]) -> Result<(u16, &[u8]), WireError> {
    match msg {
        [a, b, rest @ ..] => Ok((u16::from_be_bytes([*a, *b]), rest)),
        _ => Err(WireError("no tag".into())),
    }
}

const GOSSIP_CHANNEL_ANNOUNCEMENT: u8 = 0;
const GOSSIP_CHANNEL_UPDATE: u8 = 1;
const GOSSIP_NODE_ANNOUNCEMENT: u8 = 2;

impl Call {
    /// The call's tag.
    pub fn tag(&self) -> u16 {
        match self {
            Call::Hello => HELLO,
            Call::NewChannel { .. } => NEW_CHANNEL,
            Call::ChannelPubkeys { .. } => CHANNEL_PUBKEYS,
            Call::Points { .. } => POINTS,
            Call::ReleaseSecret { .. } => RELEASE_SECRET,
            Call::ValidateHolder { .. } => VALIDATE_HOLDER,
            Call::ValidateRevocation { .. } => VALIDATE_REVOCATION,
            Call::SignCounterparty { .. } => SIGN_COUNTERPARTY,
            Call::SignHolder { .. } => SIGN_HOLDER,
            Call::SignClosing { .. } => SIGN_CLOSING,
            Call::SignJusticeOutput { .. } => SIGN_JUSTICE_OUTPUT,
            Call::SignJusticeHtlc { .. } => SIGN_JUSTICE_HTLC,
            Call::SignHolderHtlc { .. } => SIGN_HOLDER_HTLC,
            Call::SignCounterpartyHtlc { .. } => SIGN_COUNTERPARTY_HTLC,
            Call::SignAnchor { .. } => SIGN_ANCHOR,
            Call::SignAnnouncement { .. } => SIGN_ANNOUNCEMENT,
            Call::Ecdh { .. } => ECDH,
            Call::SignGossip(_) => SIGN_GOSSIP,
            Call::SpendOutputs { .. } => SPEND_OUTPUTS,
            Call::SignInvoice(_) => SIGN_INVOICE,
            Call::SignBolt12Invoice(_) => SIGN_BOLT12_INVOICE,
            Call::SignMessage(_) => SIGN_MESSAGE,
        }
    }

    /// The channel a call names, if it names one (`new_channel` names none: the signer
    /// generates its id).
    pub fn channel_keys_id(&self) -> Option<[u8; 32]> {
        match self {
            Call::ChannelPubkeys { id }
            | Call::Points { id, .. }
            | Call::ReleaseSecret { id, .. }
            | Call::ValidateHolder { id, .. }
            | Call::ValidateRevocation { id, .. }
            | Call::SignCounterparty { id, .. }
            | Call::SignHolder { id, .. }
            | Call::SignClosing { id, .. }
            | Call::SignJusticeOutput { id, .. }
            | Call::SignJusticeHtlc { id, .. }
            | Call::SignHolderHtlc { id, .. }
            | Call::SignCounterpartyHtlc { id, .. }
            | Call::SignAnchor { id, .. }
            | Call::SignAnnouncement { id, .. } => Some(*id),
            Call::Hello
            | Call::NewChannel { .. }
            | Call::Ecdh { .. }
            | Call::SignGossip(_)
            | Call::SpendOutputs { .. }
            | Call::SignInvoice(_)
            | Call::SignBolt12Invoice(_)
            | Call::SignMessage(_) => None,
        }
    }

    /// The call's bytes: its tag, then its arguments.
    pub fn encode(&self) -> Vec<u8> {
        let mut o = Out::tagged(self.tag());
        match self {
            Call::Hello => {}
            Call::NewChannel { inbound, user_channel_id, nonce } => {
                o.put(inbound).put(user_channel_id).put(nonce);
            }
            Call::ChannelPubkeys { id } => {
                o.put(id);
            }
            Call::Points { id, idx, count } => {
                o.put(id).put(idx).put(count);
            }
            Call::ReleaseSecret { id, idx } => {
                o.put(id).put(idx);
            }
            Call::ValidateHolder { id, tx, preimages } => {
                o.put(id).put(&**tx).preimages(preimages);
            }
            Call::ValidateRevocation { id, idx, secret } => {
                o.put(id).put(idx).put(secret);
            }
            Call::SignCounterparty { id, params, tx, inbound, outbound } => {
                o.put(id).put(&**params).put(&**tx).preimages(inbound).preimages(outbound);
            }
            Call::SignHolder { id, params, tx } => {
                o.put(id).put(&**params).put(&**tx);
            }
            Call::SignClosing {
                id,
                params,
                to_holder,
                to_counterparty,
                holder_script,
                counterparty_script,
            } => {
                o.put(id)
                    .put(&**params)
                    .put(to_holder)
                    .put(to_counterparty)
                    .put(holder_script)
                    .put(counterparty_script);
            }
            Call::SignJusticeOutput { id, params, tx, input, amount, key } => {
                o.put(id).put(&**params).put(tx).put(input).put(amount).put(key);
            }
            Call::SignJusticeHtlc { id, params, tx, input, amount, key, htlc } => {
                o.put(id).put(&**params).put(tx).put(input).put(amount).put(key).put(htlc);
            }
            Call::SignHolderHtlc { id, tx, input, descriptor } => {
                o.put(id).put(tx).put(input).put(&**descriptor);
            }
            Call::SignCounterpartyHtlc { id, params, tx, input, amount, point, htlc } => {
                o.put(id).put(&**params).put(tx).put(input).put(amount).put(point).put(htlc);
            }
            Call::SignAnchor { id, params, tx, input } => {
                o.put(id).put(&**params).put(tx).put(input);
            }
            Call::SignAnnouncement { id, params, msg } => {
                o.put(id).put(&**params).put(&**msg);
            }
            Call::Ecdh { point, tweak } => {
                o.put(point);
                match tweak {
                    Some(t) => o.put(&true).put(t),
                    None => o.put(&false),
                };
            }
            Call::SignGossip(g) => {
                match &**g {
                    Gossip::ChannelAnnouncement(m) => o.put(&GOSSIP_CHANNEL_ANNOUNCEMENT).put(m),
                    Gossip::ChannelUpdate(m) => o.put(&GOSSIP_CHANNEL_UPDATE).put(m),
                    Gossip::NodeAnnouncement(m) => o.put(&GOSSIP_NODE_ANNOUNCEMENT).put(m),
                };
            }
            Call::SpendOutputs { descriptors, outputs, change, feerate, locktime } => {
                let n = u16::try_from(descriptors.len()).unwrap_or(u16::MAX).min(MAX_SWEEP_ITEMS);
                o.put(&n);
                for d in descriptors.iter().take(usize::from(n)) {
                    o.put(d);
                }
                let n = u16::try_from(outputs.len()).unwrap_or(u16::MAX).min(MAX_SWEEP_ITEMS);
                o.put(&n);
                for out in outputs.iter().take(usize::from(n)) {
                    o.put(out);
                }
                o.put(change).put(feerate);
                match locktime {
                    Some(l) => o.put(&true).put(l),
                    None => o.put(&false),
                };
            }
            Call::SignInvoice(raw) => {
                // The invoice travels as the bech32 text of LDK's own encoder, with a
                // placeholder signature (the signer signs the parsed invoice's hash).
                if let Some(text) = invoice_text(raw) {
                    o.0.extend_from_slice(text.as_bytes());
                }
            }
            Call::SignBolt12Invoice(bytes) | Call::SignMessage(bytes) => {
                o.0.extend_from_slice(bytes);
            }
        }
        o.0
    }

    /// Decodes a call: an unknown tag, a short or malformed argument, or trailing bytes is an
    /// error (never a panic).
    pub fn decode(msg: &[u8]) -> Result<Call, WireError> {
        let (tag, body) = split_tag(msg)?;
        let mut r = In(body);
        let call = match tag {
            HELLO => Call::Hello,
            NEW_CHANNEL => Call::NewChannel {
                inbound: r.get("inbound")?,
                user_channel_id: r.get("user_channel_id")?,
                nonce: r.get("nonce")?,
            },
            CHANNEL_PUBKEYS => Call::ChannelPubkeys { id: r.get("channel_keys_id")? },
            POINTS => {
                let id = r.get("channel_keys_id")?;
                let idx = r.get("index")?;
                let count: u16 = r.get("count")?;
                if count == 0 || count > MAX_POINTS {
                    return Err(WireError(format!("{count} points asked (1 to {MAX_POINTS})")));
                }
                Call::Points { id, idx, count }
            }
            RELEASE_SECRET => {
                Call::ReleaseSecret { id: r.get("channel_keys_id")?, idx: r.get("index")? }
            }
            VALIDATE_HOLDER => Call::ValidateHolder {
                id: r.get("channel_keys_id")?,
                tx: Box::new(r.get("holder commitment")?),
                preimages: r.preimages()?,
            },
            VALIDATE_REVOCATION => Call::ValidateRevocation {
                id: r.get("channel_keys_id")?,
                idx: r.get("index")?,
                secret: r.get("secret")?,
            },
            SIGN_COUNTERPARTY => Call::SignCounterparty {
                id: r.get("channel_keys_id")?,
                params: r.params()?,
                tx: Box::new(r.get("commitment")?),
                inbound: r.preimages()?,
                outbound: r.preimages()?,
            },
            SIGN_HOLDER => Call::SignHolder {
                id: r.get("channel_keys_id")?,
                params: r.params()?,
                tx: Box::new(r.get("holder commitment")?),
            },
            SIGN_CLOSING => Call::SignClosing {
                id: r.get("channel_keys_id")?,
                params: r.params()?,
                to_holder: r.get("to_holder")?,
                to_counterparty: r.get("to_counterparty")?,
                holder_script: r.get("holder script")?,
                counterparty_script: r.get("counterparty script")?,
            },
            SIGN_JUSTICE_OUTPUT => Call::SignJusticeOutput {
                id: r.get("channel_keys_id")?,
                params: r.params()?,
                tx: r.get("transaction")?,
                input: r.input()?,
                amount: r.get("amount")?,
                key: r.get("per-commitment key")?,
            },
            SIGN_JUSTICE_HTLC => Call::SignJusticeHtlc {
                id: r.get("channel_keys_id")?,
                params: r.params()?,
                tx: r.get("transaction")?,
                input: r.input()?,
                amount: r.get("amount")?,
                key: r.get("per-commitment key")?,
                htlc: r.get("htlc")?,
            },
            SIGN_HOLDER_HTLC => Call::SignHolderHtlc {
                id: r.get("channel_keys_id")?,
                tx: r.get("transaction")?,
                input: r.input()?,
                descriptor: Box::new(r.get("htlc descriptor")?),
            },
            SIGN_COUNTERPARTY_HTLC => Call::SignCounterpartyHtlc {
                id: r.get("channel_keys_id")?,
                params: r.params()?,
                tx: r.get("transaction")?,
                input: r.input()?,
                amount: r.get("amount")?,
                point: r.get("per-commitment point")?,
                htlc: r.get("htlc")?,
            },
            SIGN_ANCHOR => Call::SignAnchor {
                id: r.get("channel_keys_id")?,
                params: r.params()?,
                tx: r.get("transaction")?,
                input: r.input()?,
            },
            SIGN_ANNOUNCEMENT => Call::SignAnnouncement {
                id: r.get("channel_keys_id")?,
                params: r.params()?,
                msg: Box::new(r.rest("channel announcement")?),
            },
            ECDH => {
                let point = r.get("point")?;
                let tweak = if r.get::<bool>("tweak flag")? { Some(r.get("tweak")?) } else { None };
                Call::Ecdh { point, tweak }
            }
            SIGN_GOSSIP => {
                let kind: u8 = r.get("gossip kind")?;
                let g = match kind {
                    GOSSIP_CHANNEL_ANNOUNCEMENT => {
                        Gossip::ChannelAnnouncement(r.rest("channel announcement")?)
                    }
                    GOSSIP_CHANNEL_UPDATE => Gossip::ChannelUpdate(r.rest("channel update")?),
                    GOSSIP_NODE_ANNOUNCEMENT => {
                        Gossip::NodeAnnouncement(r.rest("node announcement")?)
                    }
                    k => return Err(WireError(format!("unknown gossip kind {k}"))),
                };
                Call::SignGossip(Box::new(g))
            }
            SPEND_OUTPUTS => {
                let n: u16 = r.get("descriptor count")?;
                if n > MAX_SWEEP_ITEMS {
                    return Err(WireError(format!("{n} descriptors, above {MAX_SWEEP_ITEMS}")));
                }
                let descriptors =
                    (0..n).map(|_| r.get("descriptor")).collect::<Result<Vec<_>, _>>()?;
                let n: u16 = r.get("output count")?;
                if n > MAX_SWEEP_ITEMS {
                    return Err(WireError(format!("{n} outputs, above {MAX_SWEEP_ITEMS}")));
                }
                let outputs = (0..n).map(|_| r.get("output")).collect::<Result<Vec<_>, _>>()?;
                let change = r.get("change script")?;
                let feerate = r.get("feerate")?;
                let locktime =
                    if r.get::<bool>("locktime flag")? { Some(r.get("locktime")?) } else { None };
                Call::SpendOutputs { descriptors, outputs, change, feerate, locktime }
            }
            SIGN_INVOICE => {
                let text = core::str::from_utf8(r.0)
                    .map_err(|_| WireError("invoice: not UTF-8".into()))?;
                let signed: SignedRawBolt11Invoice =
                    text.parse().map_err(|e| WireError(format!("invoice: {e}")))?;
                r.0 = &[];
                Call::SignInvoice(Box::new(signed.into_parts().0))
            }
            SIGN_BOLT12_INVOICE => {
                let bytes = r.0.to_vec();
                UnsignedBolt12Invoice::try_from(bytes.clone())
                    .map_err(|e| WireError(format!("bolt12 invoice: {e:?}")))?;
                r.0 = &[];
                Call::SignBolt12Invoice(bytes)
            }
            SIGN_MESSAGE => {
                if r.0.len() > MAX_SIGNED_MESSAGE {
                    return Err(WireError(format!(
                        "a message of {} bytes, above {MAX_SIGNED_MESSAGE}",
                        r.0.len()
                    )));
                }
                let bytes = r.0.to_vec();
                r.0 = &[];
                Call::SignMessage(bytes)
            }
            t => return Err(WireError(format!("unknown call tag {t}"))),
        };
        r.end()?;
        Ok(call)
    }
}

/// The identity of a call's bytes: the same call (same tag, same arguments) has the same key,
/// so a retry finds the answer of the first attempt.
pub fn call_key(msg: &[u8]) -> [u8; 32] {
    sha256::Hash::hash(msg).to_byte_array()
}

/// The link request id of a call key (never 0: id 0 refuses the link itself).
pub fn request_id(key: &[u8; 32]) -> u64 {
    let mut head = [0u8; 8];
    head.copy_from_slice(key.get(..8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(head).max(1)
}

/// What `hello` returns: the node-level values the node side serves locally.
#[derive(Clone)]
pub struct Hello {
    /// The node id.
    pub node_id: PublicKey,
    /// LDK's inbound payment key material (`get_expanded_key`).
    pub inbound_payment_key: [u8; 32],
    /// The peer storage key.
    pub peer_storage_key: [u8; 32],
    /// The receive auth key.
    pub receive_auth_key: [u8; 32],
    /// Where contestable outputs are swept.
    pub destination_script: ScriptBuf,
    /// The script cooperative closes pay us.
    pub shutdown_script: ScriptBuf,
}

impl Drop for Hello {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.inbound_payment_key.zeroize();
        self.peer_storage_key.zeroize();
        self.receive_auth_key.zeroize();
    }
}

impl core::fmt::Debug for Hello {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Hello").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

impl Hello {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut o = Out::tagged(HELLO);
        o.put(&self.node_id)
            .put(&self.inbound_payment_key)
            .put(&self.peer_storage_key)
            .put(&self.receive_auth_key)
            .put(&self.destination_script)
            .put(&self.shutdown_script);
        o.0
    }

    pub(crate) fn decode(body: &[u8]) -> Result<Hello, WireError> {
        let mut r = In(body);
        let hello = Hello {
            node_id: r.get("node id")?,
            inbound_payment_key: r.get("inbound payment key")?,
            peer_storage_key: r.get("peer storage key")?,
            receive_auth_key: r.get("receive auth key")?,
            destination_script: r.get("destination script")?,
            shutdown_script: r.get("shutdown script")?,
        };
        r.end()?;
        Ok(hello)
    }
}

/// Reads an answer's body (after the tag, which must be `tag`).
pub(crate) fn answer_body(tag: u16, msg: &[u8]) -> Result<&[u8], WireError> {
    let (got, body) = split_tag(msg)?;
    if got != tag {
        return Err(WireError(format!("answer tagged {got} to a call tagged {tag}")));
    }
    Ok(body)
}

/// Decodes a `new_channel` answer.
pub(crate) fn decode_new_channel(body: &[u8]) -> Result<([u8; 32], ChannelPublicKeys), WireError> {
    let mut r = In(body);
    let id = r.get("channel_keys_id")?;
    let keys = r.get("channel public keys")?;
    r.end()?;
    Ok((id, keys))
}

/// Decodes an answer that is one value.
pub(crate) fn decode_one<T: Readable>(body: &[u8], what: &str) -> Result<T, WireError> {
    let mut r = In(body);
    let v = r.get(what)?;
    r.end()?;
    Ok(v)
}

/// Decodes an answer that is one signature.
pub(crate) fn decode_sig(body: &[u8]) -> Result<Signature, WireError> {
    let mut r = In(body);
    let s = r.sig()?;
    r.end()?;
    Ok(s)
}

/// Decodes a `sign_counterparty_commitment` answer.
pub(crate) fn decode_sigs(body: &[u8]) -> Result<(Signature, Vec<Signature>), WireError> {
    let mut r = In(body);
    let s = r.sig()?;
    let n: u16 = r.get("htlc signature count")?;
    let htlcs = (0..n).map(|_| r.sig()).collect::<Result<Vec<_>, _>>()?;
    r.end()?;
    Ok((s, htlcs))
}

/// A BOLT-11 invoice's bech32 text with a placeholder signature (`None` only if the
/// placeholder is not a valid signature, which it is).
fn invoice_text(raw: &RawBolt11Invoice) -> Option<String> {
    let id = RecoveryId::from_i32(0).ok()?;
    let placeholder = RecoverableSignature::from_compact(&[1; 64], id).ok()?;
    let signed = raw.clone().sign(|_| Ok::<_, ()>(placeholder)).ok()?;
    Some(signed.to_string())
}

/// Encodes a `sign_invoice` answer: the compact signature and its recovery id.
pub(crate) fn encode_recoverable(o: &mut Out, s: &RecoverableSignature) {
    let (id, bytes) = s.serialize_compact();
    o.0.extend_from_slice(&bytes);
    o.0.push(u8::try_from(id.to_i32()).unwrap_or(u8::MAX));
}

/// Decodes a `sign_invoice` answer.
pub(crate) fn decode_recoverable(body: &[u8]) -> Result<RecoverableSignature, WireError> {
    match body {
        [sig @ .., id] if sig.len() == 64 => {
            let id = RecoveryId::from_i32(i32::from(*id))
                .map_err(|_| WireError("recovery id: invalid".into()))?;
            RecoverableSignature::from_compact(sig, id)
                .map_err(|_| WireError("invoice signature: invalid".into()))
        }
        _ => Err(WireError(format!("invoice signature: {} bytes, not 65", body.len()))),
    }
}

/// Decodes a `sign_bolt12_invoice` answer.
pub(crate) fn decode_schnorr(body: &[u8]) -> Result<schnorr::Signature, WireError> {
    schnorr::Signature::from_slice(body)
        .map_err(|_| WireError(format!("schnorr signature: {} bytes, invalid", body.len())))
}

/// Decodes a `sign_message` answer (LDK's zbase32 text).
pub(crate) fn decode_text(body: &[u8]) -> Result<String, WireError> {
    core::str::from_utf8(body)
        .map(str::to_owned)
        .map_err(|_| WireError("signed message: not UTF-8".into()))
}

/// Decodes a `points` answer.
pub(crate) fn decode_points(body: &[u8]) -> Result<Vec<PublicKey>, WireError> {
    let mut r = In(body);
    let n: u16 = r.get("point count")?;
    if n > MAX_POINTS {
        return Err(WireError(format!("{n} points, above {MAX_POINTS}")));
    }
    let points = (0..n).map(|_| r.get("point")).collect::<Result<Vec<_>, _>>()?;
    r.end()?;
    Ok(points)
}
