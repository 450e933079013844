//! Start-up and clients: `init` and its replies, `dev_preinit`, `client_hsmfd`, `dev_memleak`.
//!
//! lightningd sends these on hsmd's master connection: `dev_preinit` (developer mode only, no
//! reply), then `init`, then a `client_hsmfd` for each subdaemon (the reply comes with a new
//! file descriptor passed by `SCM_RIGHTS`, which is the binary's business, not this crate's).

use alloc::vec::Vec;

use bitcoin::bip32::Xpub;
use bitcoin::constants::ChainHash;
use secp256k1::PublicKey;

use crate::codec::{Reader, WireField, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::secret::{Passphrase, Secret};
use crate::tlv::{self, UnknownTlv};
use crate::types::{Bip32KeyVersion, DevChannelSecrets, NodeId, Permissions, WireString};

/// The TLV stream of `init` (`hsmd_init_tlvs`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitTlvs {
    /// Type 1: the passphrase of the `hsm_secret`, when lightningd was given one.
    pub hsm_passphrase: Option<Passphrase>,
    /// Records of unknown odd types, kept as they came.
    pub unknown: Vec<UnknownTlv>,
}

impl InitTlvs {
    /// The TLV type of `hsm_passphrase`.
    pub const HSM_PASSPHRASE: u64 = 1;
}

impl WireField for InitTlvs {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut out = InitTlvs::default();
        for raw in tlv::read_stream(r, &[Self::HSM_PASSPHRASE])? {
            match raw.tlv_type {
                Self::HSM_PASSPHRASE => {
                    out.hsm_passphrase = Some(tlv::read_value(raw, Passphrase::read)?);
                }
                _ => out.unknown.push(tlv::unknown(raw)),
            }
        }
        Ok(out)
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        let mut known = Vec::new();
        if let Some(p) = &self.hsm_passphrase {
            known.push((Self::HSM_PASSPHRASE, tlv::value_bytes(|w| p.write(w))?));
        }
        tlv::write_stream(w, known, &self.unknown)
    }
}

wire_message!(
    /// Starts hsmd: the chain, the wire versions lightningd speaks, and developer overrides.
    Init = 11, "hsmd_init" {
        /// The BIP-0032 version bytes of the chain.
        bip32_key_version: Bip32KeyVersion,
        /// The chain, by its genesis block hash (`chainparams`).
        chainparams: ChainHash,
        /// The key of an encrypted `hsm_secret` (lightningd now sends none; see the passphrase).
        hsm_encryption_key: Option<Secret>,
        /// Developer: the node private key to use.
        dev_force_privkey: Option<Secret>,
        /// Developer: the BIP-0032 seed to use.
        dev_force_bip32_seed: Option<Secret>,
        /// Developer: the channel secrets to use for every channel.
        dev_force_channel_secrets: Option<DevChannelSecrets>,
        /// Developer: the shachain seed to use for every channel.
        dev_force_channel_secrets_shaseed: Option<Secret>,
        /// The lowest hsmd wire version lightningd accepts.
        hsm_wire_min_version: u32,
        /// The highest hsmd wire version lightningd accepts.
        hsm_wire_max_version: u32,
        /// The TLV stream (the passphrase).
        tlvs: InitTlvs,
    }
);

impl Init {
    /// The `init` lightningd sends on `chainparams`'s chain with these BIP-32 versions: hsmd
    /// wire versions 5 to 6, no developer overrides, no passphrase.
    pub fn plain(bip32_key_version: Bip32KeyVersion, chainparams: ChainHash) -> Init {
        Init {
            bip32_key_version,
            chainparams,
            hsm_encryption_key: None,
            dev_force_privkey: None,
            dev_force_bip32_seed: None,
            dev_force_channel_secrets: None,
            dev_force_channel_secrets_shaseed: None,
            hsm_wire_min_version: 5,
            hsm_wire_max_version: 6,
            tlvs: InitTlvs::default(),
        }
    }
}

/// Which kind of `hsm_secret` hsmd loaded (`enum hsm_secret_type`, `common/hsm_secret.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HsmSecretType(pub u8);

impl HsmSecretType {
    /// `HSM_SECRET_PLAIN`: the legacy 32-byte secret.
    pub const PLAIN: HsmSecretType = HsmSecretType(0);
    /// `HSM_SECRET_ENCRYPTED`: the legacy 73-byte encrypted secret.
    pub const ENCRYPTED: HsmSecretType = HsmSecretType(1);
    /// `HSM_SECRET_MNEMONIC_NO_PASS`: a BIP-0039 mnemonic without passphrase.
    pub const MNEMONIC_NO_PASS: HsmSecretType = HsmSecretType(2);
    /// `HSM_SECRET_MNEMONIC_WITH_PASS`: a BIP-0039 mnemonic with a passphrase.
    pub const MNEMONIC_WITH_PASS: HsmSecretType = HsmSecretType(3);
}

/// The TLV stream of `init_reply_v4` (`hsmd_init_reply_v4_tlvs`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitReplyTlvs {
    /// Type 1: which kind of `hsm_secret` was loaded.
    pub hsm_secret_type: Option<HsmSecretType>,
    /// Type 2: the BIP-0086 base key (m/86'/0'/0'), for mnemonic secrets.
    pub bip86_base: Option<Xpub>,
    /// Records of unknown odd types, kept as they came.
    pub unknown: Vec<UnknownTlv>,
}

impl InitReplyTlvs {
    /// The TLV type of `hsm_secret_type`.
    pub const HSM_SECRET_TYPE: u64 = 1;
    /// The TLV type of `bip86_base`.
    pub const BIP86_BASE: u64 = 2;
}

impl WireField for InitReplyTlvs {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut out = InitReplyTlvs::default();
        for raw in tlv::read_stream(r, &[Self::HSM_SECRET_TYPE, Self::BIP86_BASE])? {
            match raw.tlv_type {
                Self::HSM_SECRET_TYPE => {
                    out.hsm_secret_type =
                        Some(HsmSecretType(tlv::read_value(raw, |v| v.read_u8())?));
                }
                Self::BIP86_BASE => out.bip86_base = Some(tlv::read_value(raw, Xpub::read)?),
                _ => out.unknown.push(tlv::unknown(raw)),
            }
        }
        Ok(out)
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        let mut known = Vec::new();
        if let Some(t) = self.hsm_secret_type {
            known.push((Self::HSM_SECRET_TYPE, alloc::vec![t.0]));
        }
        if let Some(x) = &self.bip86_base {
            known.push((Self::BIP86_BASE, tlv::value_bytes(|w| x.write(w))?));
        }
        tlv::write_stream(w, known, &self.unknown)
    }
}

wire_message!(
    /// hsmd started: its wire version, capabilities, node id and wallet keys.
    InitReplyV4 = 114, "hsmd_init_reply_v4" {
        /// The hsmd wire version in use.
        hsm_version: u32,
        /// The message types hsmd supports beyond the base set (by convention, capabilities are
        /// message numbers).
        hsm_capabilities: Vec<u32>,
        /// The node id.
        node_id: NodeId,
        /// The wallet's BIP-0032 base key (m/0/0).
        bip32: Xpub,
        /// The BOLT-12 base key.
        bolt12: PublicKey,
        /// The TLV stream (secret type, BIP-0086 base key).
        tlvs: InitReplyTlvs,
    }
);

wire_message!(
    /// hsmd could not start (a wrong passphrase, for example): lightningd exits with
    /// `error_code`.
    InitReplyFailure = 115, "hsmd_init_reply_failure" {
        /// The error code (`enum hsm_secret_error`).
        error_code: u32,
        /// What went wrong.
        error_message: WireString,
    }
);

/// The TLV stream of `dev_preinit` (`hsmd_dev_preinit_tlvs`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DevPreinitTlvs {
    /// Type 1: refuse every pre-approval.
    pub fail_preapprove: Option<bool>,
    /// Type 3: do not advertise the `*_check` pre-approval messages.
    pub no_preapprove_check: Option<bool>,
    /// Type 5: warn when a signature needed much grinding.
    pub warn_on_overgrind: Option<bool>,
    /// Records of unknown odd types, kept as they came.
    pub unknown: Vec<UnknownTlv>,
}

impl DevPreinitTlvs {
    /// The TLV type of `fail_preapprove`.
    pub const FAIL_PREAPPROVE: u64 = 1;
    /// The TLV type of `no_preapprove_check`.
    pub const NO_PREAPPROVE_CHECK: u64 = 3;
    /// The TLV type of `warn_on_overgrind`.
    pub const WARN_ON_OVERGRIND: u64 = 5;
}

impl WireField for DevPreinitTlvs {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let known = [Self::FAIL_PREAPPROVE, Self::NO_PREAPPROVE_CHECK, Self::WARN_ON_OVERGRIND];
        let mut out = DevPreinitTlvs::default();
        for raw in tlv::read_stream(r, &known)? {
            match raw.tlv_type {
                Self::FAIL_PREAPPROVE => {
                    out.fail_preapprove = Some(tlv::read_value(raw, bool::read)?);
                }
                Self::NO_PREAPPROVE_CHECK => {
                    out.no_preapprove_check = Some(tlv::read_value(raw, bool::read)?);
                }
                Self::WARN_ON_OVERGRIND => {
                    out.warn_on_overgrind = Some(tlv::read_value(raw, bool::read)?);
                }
                _ => out.unknown.push(tlv::unknown(raw)),
            }
        }
        Ok(out)
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        let mut known = Vec::new();
        let fields = [
            (Self::FAIL_PREAPPROVE, self.fail_preapprove),
            (Self::NO_PREAPPROVE_CHECK, self.no_preapprove_check),
            (Self::WARN_ON_OVERGRIND, self.warn_on_overgrind),
        ];
        for (t, v) in fields {
            if let Some(v) = v {
                known.push((t, alloc::vec![u8::from(v)]));
            }
        }
        tlv::write_stream(w, known, &self.unknown)
    }
}

wire_message!(
    /// Developer flags, sent before `init` in developer mode. hsmd sends no reply.
    DevPreinit = 99, "hsmd_dev_preinit" {
        /// The flags.
        tlvs: DevPreinitTlvs,
    }
);

wire_message!(
    /// Asks for a new client connection for a subdaemon, with an identity and permissions.
    ClientHsmfd = 9, "hsmd_client_hsmfd" {
        /// The identity requests will use (the peer, or our own node id for global clients).
        id: NodeId,
        /// The channel's database id (0 for a client that is not per-channel).
        dbid: u64,
        /// What the client may ask for.
        permissions: Permissions,
    }
);

wire_message!(
    /// The new client is ready; its file descriptor follows, passed by `SCM_RIGHTS`.
    ClientHsmfdReply = 109, "hsmd_client_hsmfd_reply" {}
);

wire_message!(
    /// Developer: asks whether hsmd leaks memory.
    DevMemleak = 33, "hsmd_dev_memleak" {}
);

wire_message!(
    /// Whether hsmd found a memory leak.
    DevMemleakReply = 133, "hsmd_dev_memleak_reply" {
        /// True if it found one.
        leak: bool,
    }
);
