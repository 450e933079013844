//! The BOLT-08 `Noise_XK_secp256k1_ChaChaPoly_SHA256` handshake as a sans-I/O state machine.
//!
//! Each state is a value consumed by the step that reads the peer's act, so a failed step
//! leaves nothing to continue with: the caller can only drop the connection, as BOLT-08
//! requires. The initiator knows the responder's static key in advance (XK); the responder is
//! given the initiator's static key to pin and refuses any other after act three.

use alloc::boxed::Box;

use secp256k1::PublicKey;
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{decrypt_with_ad, ecdh, encrypt_with_ad, hkdf, sha256_concat, Key32};
use crate::error::{Act, HandshakeError, RemoteKeyMismatch};
use crate::keys::{EphemeralSecretKey, StaticSecretKey};
use crate::transport::Transport;

/// Size of act one.
pub const ACT_ONE_LEN: usize = 50;
/// Size of act two.
pub const ACT_TWO_LEN: usize = 50;
/// Size of act three.
pub const ACT_THREE_LEN: usize = 66;

const PROTOCOL_NAME: &[u8] = b"Noise_XK_secp256k1_ChaChaPoly_SHA256";
const PROLOGUE: &[u8] = b"lightning";
const VERSION: u8 = 0;

/// The chaining key `ck` and the handshake hash `h`.
struct SymmetricState {
    ck: Key32,
    h: [u8; 32],
}

impl SymmetricState {
    /// Handshake state initialization, with the responder's static key mixed in.
    fn new(responder_static: &PublicKey) -> Self {
        let h0 = sha256_concat(PROTOCOL_NAME, &[]);
        let ck = Zeroizing::new(h0);
        let h = sha256_concat(&h0, PROLOGUE);
        let mut st = SymmetricState { ck, h };
        st.mix_hash(&responder_static.serialize());
        st
    }

    fn mix_hash(&mut self, data: &[u8]) {
        self.h = sha256_concat(&self.h, data);
    }

    /// `ck, temp_k = HKDF(ck, ss)`; returns `temp_k`.
    fn mix_key(&mut self, ss: &[u8; 32]) -> Key32 {
        let (ck, temp_k) = hkdf(&self.ck, ss);
        self.ck = ck;
        temp_k
    }

    /// Splits into the two transport keys `HKDF(ck, zero)`, keeping `ck` for key rotation.
    fn split(self) -> (Key32, Key32, Key32) {
        let (k1, k2) = hkdf(&self.ck, &[]);
        (Zeroizing::new(*self.ck), k1, k2)
    }
}

impl Drop for SymmetricState {
    fn drop(&mut self) {
        self.h.zeroize();
    }
}

/// Checks an act's length and version and splits off the version byte.
fn check_act(act: Act, expected: usize, msg: &[u8]) -> Result<&[u8], HandshakeError> {
    if msg.len() != expected {
        return Err(HandshakeError::WrongLength { act, expected, actual: msg.len() });
    }
    match msg.split_first() {
        Some((&VERSION, rest)) => Ok(rest),
        Some((&version, _)) => Err(HandshakeError::UnknownVersion { act, version }),
        None => Err(HandshakeError::WrongLength { act, expected, actual: 0 }),
    }
}

/// Parses `re ‖ c` of acts one and two (`rest` is exactly 49 bytes, checked by `check_act`).
fn parse_ephemeral(act: Act, rest: &[u8]) -> Result<(PublicKey, &[u8]), HandshakeError> {
    let (key, tag) = rest.split_at(rest.len().min(33));
    let re = PublicKey::from_slice(key).map_err(|_| HandshakeError::InvalidPublicKey { act })?;
    Ok((re, tag))
}

/// Writes `0 ‖ e.pub ‖ c` for acts one and two.
fn write_ephemeral_act(e: &PublicKey, c: &[u8]) -> [u8; ACT_ONE_LEN] {
    let mut out = [VERSION; ACT_ONE_LEN];
    if let Some((_, rest)) = out.split_first_mut() {
        let (key, tag) = rest.split_at_mut(33);
        key.copy_from_slice(&e.serialize());
        tag.copy_from_slice(c);
    }
    out
}

/// The initiator after sending act one, waiting for act two.
pub struct InitiatorHandshake<'a> {
    local_static: &'a StaticSecretKey,
    remote_static: PublicKey,
    ephemeral: EphemeralSecretKey,
    st: SymmetricState,
}

impl<'a> InitiatorHandshake<'a> {
    /// Starts a handshake to the responder whose static key is `remote_static`, with the
    /// caller's fresh `ephemeral` key; returns the state and act one to send.
    pub fn new(
        local_static: &'a StaticSecretKey,
        remote_static: PublicKey,
        ephemeral: EphemeralSecretKey,
    ) -> (Self, [u8; ACT_ONE_LEN]) {
        let mut st = SymmetricState::new(&remote_static);
        let e_pub = ephemeral.public_key();
        st.mix_hash(&e_pub.serialize());
        let ss = ecdh(&remote_static, &ephemeral.0);
        let temp_k1 = st.mix_key(&ss);
        let c = encrypt_with_ad(&temp_k1, 0, &st.h, &[]);
        st.mix_hash(&c);
        let act_one = write_ephemeral_act(&e_pub, &c);
        (InitiatorHandshake { local_static, remote_static, ephemeral, st }, act_one)
    }

    /// Reads act two; on success returns act three to send and the transport. The responder
    /// is authenticated by act two's tag (only the holder of the pinned static key could
    /// compute it).
    pub fn read_act_two(
        self,
        act_two: &[u8],
    ) -> Result<([u8; ACT_THREE_LEN], Transport), HandshakeError> {
        let InitiatorHandshake { local_static, remote_static, ephemeral, mut st } = self;
        let rest = check_act(Act::Two, ACT_TWO_LEN, act_two)?;
        let (re, c) = parse_ephemeral(Act::Two, rest)?;
        st.mix_hash(&re.serialize());
        let ss = ecdh(&re, &ephemeral.0);
        let temp_k2 = st.mix_key(&ss);
        decrypt_with_ad(&temp_k2, 0, &st.h, c)
            .map_err(|_| HandshakeError::BadMac { act: Act::Two })?;
        st.mix_hash(c);

        let c = encrypt_with_ad(&temp_k2, 1, &st.h, &local_static.public_key().serialize());
        st.mix_hash(&c);
        let ss = ecdh(&re, &local_static.0);
        let temp_k3 = st.mix_key(&ss);
        let t = encrypt_with_ad(&temp_k3, 0, &st.h, &[]);
        let (ck, sk, rk) = st.split();

        let mut act_three = [VERSION; ACT_THREE_LEN];
        if let Some((_, rest)) = act_three.split_first_mut() {
            let (head, tail) = rest.split_at_mut(49);
            head.copy_from_slice(&c);
            tail.copy_from_slice(&t);
        }
        Ok((act_three, Transport::new(ck, sk, rk, remote_static)))
    }
}

/// The responder before act one.
pub struct ResponderHandshake<'a> {
    local_static: &'a StaticSecretKey,
    pinned_remote: PublicKey,
    ephemeral: EphemeralSecretKey,
}

impl<'a> ResponderHandshake<'a> {
    /// Prepares to answer an initiator that must authenticate as `pinned_remote`, with the
    /// caller's fresh `ephemeral` key.
    pub fn new(
        local_static: &'a StaticSecretKey,
        pinned_remote: PublicKey,
        ephemeral: EphemeralSecretKey,
    ) -> Self {
        ResponderHandshake { local_static, pinned_remote, ephemeral }
    }

    /// Reads act one; on success returns the next state and act two to send. A tag failure
    /// here means the initiator does not know our static key.
    pub fn read_act_one(
        self,
        act_one: &[u8],
    ) -> Result<(ResponderAwaitingActThree, [u8; ACT_TWO_LEN]), HandshakeError> {
        let ResponderHandshake { local_static, pinned_remote, ephemeral } = self;
        let mut st = SymmetricState::new(&local_static.public_key());
        let rest = check_act(Act::One, ACT_ONE_LEN, act_one)?;
        let (re, c) = parse_ephemeral(Act::One, rest)?;
        st.mix_hash(&re.serialize());
        let ss = ecdh(&re, &local_static.0);
        let temp_k1 = st.mix_key(&ss);
        decrypt_with_ad(&temp_k1, 0, &st.h, c)
            .map_err(|_| HandshakeError::BadMac { act: Act::One })?;
        st.mix_hash(c);

        let e_pub = ephemeral.public_key();
        st.mix_hash(&e_pub.serialize());
        let ss = ecdh(&re, &ephemeral.0);
        let temp_k2 = st.mix_key(&ss);
        let c = encrypt_with_ad(&temp_k2, 0, &st.h, &[]);
        st.mix_hash(&c);
        let act_two = write_ephemeral_act(&e_pub, &c);
        let next = ResponderAwaitingActThree { pinned_remote, ephemeral, temp_k2, st };
        Ok((next, act_two))
    }
}

/// The responder after sending act two, waiting for act three.
pub struct ResponderAwaitingActThree {
    pinned_remote: PublicKey,
    ephemeral: EphemeralSecretKey,
    temp_k2: Key32,
    st: SymmetricState,
}

impl ResponderAwaitingActThree {
    /// Reads act three: recovers the initiator's static key, checks the final tag (proof that
    /// the initiator holds that key), then refuses any key but the pinned one.
    pub fn read_act_three(self, act_three: &[u8]) -> Result<Transport, HandshakeError> {
        let ResponderAwaitingActThree { pinned_remote, ephemeral, temp_k2, mut st } = self;
        let rest = check_act(Act::Three, ACT_THREE_LEN, act_three)?;
        let (c, t) = rest.split_at(rest.len().min(49));
        let rs_bytes =
            decrypt_with_ad(&temp_k2, 1, &st.h, c).map_err(|_| HandshakeError::StaticKeyMac)?;
        let rs = PublicKey::from_slice(&rs_bytes)
            .map_err(|_| HandshakeError::InvalidPublicKey { act: Act::Three })?;
        st.mix_hash(c);
        let ss = ecdh(&rs, &ephemeral.0);
        let temp_k3 = st.mix_key(&ss);
        decrypt_with_ad(&temp_k3, 0, &st.h, t)
            .map_err(|_| HandshakeError::BadMac { act: Act::Three })?;
        if rs != pinned_remote {
            return Err(HandshakeError::UnexpectedRemoteKey(Box::new(RemoteKeyMismatch {
                expected: pinned_remote,
                actual: rs,
            })));
        }
        let (ck, rk, sk) = st.split();
        Ok(Transport::new(ck, sk, rk, rs))
    }
}

macro_rules! redacted_debug {
    ($name:ident $(<$lt:lifetime>)?, $remote:ident) => {
        impl core::fmt::Debug for $name $(<$lt>)? {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field(stringify!($remote), &self.$remote)
                    .finish_non_exhaustive()
            }
        }
    };
}

redacted_debug!(InitiatorHandshake<'_>, remote_static);
redacted_debug!(ResponderHandshake<'_>, pinned_remote);
redacted_debug!(ResponderAwaitingActThree, pinned_remote);
