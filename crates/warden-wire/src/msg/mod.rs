//! Every hsmd message, one struct each, with the type numbers of Core Lightning's
//! `hsmd/hsmd_wire.csv` and `common/status_wire.csv`.
//!
//! - [`init`]: start-up and clients (`init`, `dev_preinit`, `client_hsmfd`, `dev_memleak`).
//! - [`channel`]: channel lifecycle and commitment points and secrets.
//! - [`sign`]: signatures on channel transactions (commitments, HTLC transactions, closes,
//!   splices, sweeps of our outputs).
//! - [`wallet`]: on-chain wallet (PSBT signing, addresses, messages, derived secrets).
//! - [`gossip`]: ECDH and gossip signatures.
//! - [`payment`]: invoices, BOLT-12 and payment pre-approval.
//! - [`status`]: what hsmd sends lightningd on its status connection.
//! - [`warden`]: Warden's extension messages (type numbers 61000–61999, outside Core
//!   Lightning's range): node-backup unseal, the node-backup public key, the signer's status.
//!
//! [`Request`] decodes any request by its type number, [`Reply`] any reply, [`Status`] any
//! status message.
//!
//! Not here, because the current CSV no longer has them: `hsmd_sign_local_htlc_tx` (16, replaced
//! by `sign_any_local_htlc_tx`) and `hsmd_init_reply_v2` (113, replaced by `init_reply_v4`).
//!
//! Decoding is stricter than hsmd in one way, on purpose: bytes left after the last field of a
//! message are refused ([`DecodeError::TrailingBytes`]). hsmd's generated `fromwire_*` functions
//! end with `return cursor != NULL;` and so ignore trailing bytes; lightningd never sends any,
//! and a signer that fails closed should not sign a message it did not wholly read. (A message
//! that ends with a TLV stream has no trailing bytes: the stream is the rest of the message.)

use alloc::vec::Vec;

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::frame;

/// An hsmd message: its type number and the encoding of its fields.
pub trait Message: Sized {
    /// The message type (the first two bytes of the body).
    const TYPE: u16;
    /// The message's name in Core Lightning's CSV.
    const NAME: &'static str;

    /// Writes the fields (everything after the type).
    fn write_fields(&self, w: &mut Writer) -> Result<(), EncodeError>;

    /// Reads the fields (everything after the type).
    fn read_fields(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// The message body: the type, then the fields.
    fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::new();
        w.write_u16(Self::TYPE);
        self.write_fields(&mut w)?;
        Ok(w.into_bytes())
    }

    /// The message as a frame (length, then body).
    fn encode_frame(&self) -> Result<Vec<u8>, EncodeError> {
        frame::encode_frame(&self.encode()?)
    }

    /// Decodes a message body, which must be of this type and hold nothing more.
    fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let found = r.read_u16()?;
        if found != Self::TYPE {
            return Err(DecodeError::UnexpectedType { expected: Self::TYPE, found });
        }
        let msg = Self::read_fields(&mut r)?;
        r.finish()?;
        Ok(msg)
    }
}

/// Defines a message struct whose fields are encoded in order, each by its [`WireField`]
/// implementation.
///
/// [`WireField`]: crate::codec::WireField
macro_rules! wire_message {
    (
        $(#[$meta:meta])*
        $name:ident = $ty:literal, $csv:literal {
            $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[doc = ""]
        #[doc = concat!("Type ", stringify!($ty), ", `", $csv, "`.")]
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $fty, )*
        }

        impl $crate::msg::Message for $name {
            const TYPE: u16 = $ty;
            const NAME: &'static str = $csv;

            fn write_fields(
                &self,
                w: &mut $crate::codec::Writer,
            ) -> Result<(), $crate::error::EncodeError> {
                $(
                    $crate::codec::WireField::write(&self.$field, w)
                        .map_err(|e| e.in_field(stringify!($field)))?;
                )*
                let _ = w;
                Ok(())
            }

            fn read_fields(
                r: &mut $crate::codec::Reader<'_>,
            ) -> Result<Self, $crate::error::DecodeError> {
                let _ = &r;
                Ok($name { $( $field: $crate::codec::WireField::read(r)?, )* })
            }
        }
    };
}

pub mod channel;
pub mod gossip;
pub mod init;
pub mod payment;
pub mod sign;
pub mod status;
pub mod wallet;
pub mod warden;

pub use channel::*;
pub use gossip::*;
pub use init::*;
pub use payment::*;
pub use sign::*;
pub use status::*;
pub use wallet::*;
pub use warden::*;

/// Defines an enum over message types that decodes a body by its type number.
macro_rules! message_enum {
    ($(#[$meta:meta])* $enum:ident { $( $variant:ident ),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum $enum {
            $(
                #[doc = concat!("A [`", stringify!($variant), "`].")]
                $variant($variant),
            )*
        }

        impl $enum {
            /// Every type number this enum decodes.
            pub const TYPES: &'static [u16] = &[ $( <$variant as Message>::TYPE ),* ];

            /// Decodes a message body by its type number.
            pub fn decode(body: &[u8]) -> Result<$enum, DecodeError> {
                let t = frame::peek_type(body)?;
                $(
                    if t == <$variant as Message>::TYPE {
                        return <$variant as Message>::decode(body).map($enum::$variant);
                    }
                )*
                Err(DecodeError::UnknownType { msg_type: t })
            }

            /// The message body.
            pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
                match self {
                    $( $enum::$variant(m) => m.encode(), )*
                }
            }

            /// The message type number.
            pub fn msg_type(&self) -> u16 {
                match self {
                    $( $enum::$variant(_) => <$variant as Message>::TYPE, )*
                }
            }

            /// The message's name in Core Lightning's CSV.
            pub fn name(&self) -> &'static str {
                match self {
                    $( $enum::$variant(_) => <$variant as Message>::NAME, )*
                }
            }
        }

        $(
            impl From<$variant> for $enum {
                fn from(m: $variant) -> $enum {
                    $enum::$variant(m)
                }
            }
        )*
    };
}

message_enum!(
    /// Any request lightningd or one of its subdaemons sends hsmd.
    Request {
        Ecdh,
        CannouncementSig,
        CupdateSig,
        SignAnyCannouncement,
        SignCommitmentTx,
        NodeAnnouncementSig,
        SignWithdrawal,
        SignInvoice,
        ClientHsmfd,
        GetChannelBasepoints,
        Init,
        SignDelayedPaymentToUs,
        SignRemoteHtlcToUs,
        SignPenaltyToUs,
        GetPerCommitmentPoint,
        SignRemoteCommitmentTx,
        SignRemoteHtlcTx,
        SignMutualCloseTx,
        CheckFutureSecret,
        SignMessage,
        GetOutputScriptpubkey,
        SignBolt12,
        SignOptionWillFundOffer,
        DeriveSecret,
        CheckPubkey,
        SignSpliceTx,
        NewChannel,
        SetupChannel,
        CheckOutpoint,
        DevMemleak,
        ForgetChannel,
        ValidateCommitmentTx,
        ValidateRevocation,
        LockOutpoint,
        PreapproveInvoice,
        PreapproveKeysend,
        RevokeCommitmentTx,
        SignBolt12V2,
        Bip137SignMessage,
        PreapproveInvoiceCheck,
        PreapproveKeysendCheck,
        CheckBip86Pubkey,
        DevPreinit,
        SignAnyDelayedPaymentToUs,
        SignAnyRemoteHtlcToUs,
        SignAnyPenaltyToUs,
        SignAnyLocalHtlcTx,
        SignAnchorspend,
        SignHtlcTxMingle,
        WardenUnseal,
        WardenNodeBackupPubkey,
        WardenStatus,
    }
);

message_enum!(
    /// Any reply hsmd sends to a request.
    Reply {
        EcdhReply,
        CannouncementSigReply,
        CupdateSigReply,
        SignAnyCannouncementReply,
        SignCommitmentTxReply,
        NodeAnnouncementSigReply,
        SignWithdrawalReply,
        SignInvoiceReply,
        ClientHsmfdReply,
        GetChannelBasepointsReply,
        SignTxReply,
        InitReplyV4,
        InitReplyFailure,
        GetPerCommitmentPointReply,
        CheckFutureSecretReply,
        SignMessageReply,
        GetOutputScriptpubkeyReply,
        SignBolt12Reply,
        SignOptionWillFundOfferReply,
        DeriveSecretReply,
        CheckPubkeyReply,
        NewChannelReply,
        SetupChannelReply,
        CheckOutpointReply,
        DevMemleakReply,
        ForgetChannelReply,
        ValidateCommitmentTxReply,
        ValidateRevocationReply,
        LockOutpointReply,
        PreapproveInvoiceReply,
        PreapproveKeysendReply,
        RevokeCommitmentTxReply,
        SignBolt12V2Reply,
        Bip137SignMessageReply,
        SignAnchorspendReply,
        SignHtlcTxMingleReply,
        PreapproveInvoiceCheckReply,
        PreapproveKeysendCheckReply,
        CheckBip86PubkeyReply,
        WardenUnsealReply,
        WardenNodeBackupPubkeyReply,
        WardenStatusReply,
    }
);

message_enum!(
    /// Any message hsmd sends lightningd on its status connection (file descriptor 0), outside
    /// a request and its reply.
    Status {
        ClientBadRequest,
        StatusLog,
        StatusFail,
    }
);

impl Request {
    /// The type numbers of the replies hsmd may answer this request with: one for most
    /// requests, success or failure for `init`, none for `dev_preinit` (lightningd reads no
    /// reply to it).
    pub fn reply_types(&self) -> &'static [u16] {
        match self {
            Request::Ecdh(_) => &[EcdhReply::TYPE],
            Request::CannouncementSig(_) => &[CannouncementSigReply::TYPE],
            Request::CupdateSig(_) => &[CupdateSigReply::TYPE],
            Request::SignAnyCannouncement(_) => &[SignAnyCannouncementReply::TYPE],
            Request::SignCommitmentTx(_) => &[SignCommitmentTxReply::TYPE],
            Request::NodeAnnouncementSig(_) => &[NodeAnnouncementSigReply::TYPE],
            Request::SignWithdrawal(_) => &[SignWithdrawalReply::TYPE],
            Request::SignInvoice(_) => &[SignInvoiceReply::TYPE],
            Request::ClientHsmfd(_) => &[ClientHsmfdReply::TYPE],
            Request::GetChannelBasepoints(_) => &[GetChannelBasepointsReply::TYPE],
            Request::Init(_) => &[InitReplyV4::TYPE, InitReplyFailure::TYPE],
            Request::SignDelayedPaymentToUs(_)
            | Request::SignRemoteHtlcToUs(_)
            | Request::SignPenaltyToUs(_)
            | Request::SignRemoteCommitmentTx(_)
            | Request::SignRemoteHtlcTx(_)
            | Request::SignMutualCloseTx(_)
            | Request::SignSpliceTx(_)
            | Request::SignAnyDelayedPaymentToUs(_)
            | Request::SignAnyRemoteHtlcToUs(_)
            | Request::SignAnyPenaltyToUs(_)
            | Request::SignAnyLocalHtlcTx(_) => &[SignTxReply::TYPE],
            Request::GetPerCommitmentPoint(_) => &[GetPerCommitmentPointReply::TYPE],
            Request::CheckFutureSecret(_) => &[CheckFutureSecretReply::TYPE],
            Request::SignMessage(_) => &[SignMessageReply::TYPE],
            Request::GetOutputScriptpubkey(_) => &[GetOutputScriptpubkeyReply::TYPE],
            Request::SignBolt12(_) => &[SignBolt12Reply::TYPE],
            Request::SignOptionWillFundOffer(_) => &[SignOptionWillFundOfferReply::TYPE],
            Request::DeriveSecret(_) => &[DeriveSecretReply::TYPE],
            Request::CheckPubkey(_) => &[CheckPubkeyReply::TYPE],
            Request::NewChannel(_) => &[NewChannelReply::TYPE],
            Request::SetupChannel(_) => &[SetupChannelReply::TYPE],
            Request::CheckOutpoint(_) => &[CheckOutpointReply::TYPE],
            Request::DevMemleak(_) => &[DevMemleakReply::TYPE],
            Request::ForgetChannel(_) => &[ForgetChannelReply::TYPE],
            Request::ValidateCommitmentTx(_) => &[ValidateCommitmentTxReply::TYPE],
            Request::ValidateRevocation(_) => &[ValidateRevocationReply::TYPE],
            Request::LockOutpoint(_) => &[LockOutpointReply::TYPE],
            Request::PreapproveInvoice(_) => &[PreapproveInvoiceReply::TYPE],
            Request::PreapproveKeysend(_) => &[PreapproveKeysendReply::TYPE],
            Request::RevokeCommitmentTx(_) => &[RevokeCommitmentTxReply::TYPE],
            Request::SignBolt12V2(_) => &[SignBolt12V2Reply::TYPE],
            Request::Bip137SignMessage(_) => &[Bip137SignMessageReply::TYPE],
            Request::PreapproveInvoiceCheck(_) => &[PreapproveInvoiceCheckReply::TYPE],
            Request::PreapproveKeysendCheck(_) => &[PreapproveKeysendCheckReply::TYPE],
            Request::CheckBip86Pubkey(_) => &[CheckBip86PubkeyReply::TYPE],
            Request::DevPreinit(_) => &[],
            Request::SignAnchorspend(_) => &[SignAnchorspendReply::TYPE],
            Request::SignHtlcTxMingle(_) => &[SignHtlcTxMingleReply::TYPE],
            Request::WardenUnseal(_) => &[WardenUnsealReply::TYPE],
            Request::WardenNodeBackupPubkey(_) => &[WardenNodeBackupPubkeyReply::TYPE],
            Request::WardenStatus(_) => &[WardenStatusReply::TYPE],
        }
    }
}
