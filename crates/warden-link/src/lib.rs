//! Warden's node<->signer link: BOLT-08 `Noise_XK_secp256k1_ChaChaPoly_SHA256` with both
//! static keys pinned.
//!
//! The node host and the network are untrusted (DESIGN §1): the link must keep requests and
//! replies confidential, refuse anything altered, replayed or injected, and talk only to the
//! one peer whose key is configured. BOLT-08 gives the first two; pinning gives the third:
//! the initiator names the responder's static key before it starts (XK), and the responder
//! refuses any initiator whose authenticated static key is not the pinned one.
//!
//! - [`handshake`]: the three acts as a sans-I/O state machine ([`InitiatorHandshake`],
//!   [`ResponderHandshake`], [`ResponderAwaitingActThree`]); each step consumes its state.
//! - [`transport`]: framing, nonces and key rotation ([`Transport`], split into
//!   [`Encryptor`] and [`Decryptor`]); an authentication failure poisons the receiver.
//! - [`keys`]: the static and ephemeral secret keys, injected by the caller (no randomness
//!   is drawn here), zeroized, with redacted `Debug`.
//! - [`frame`]: Warden's messages over the link (hsmd requests with their client context,
//!   replies, refusals, heartbeat), strictly decoded, chunked to fit BOLT-08 messages.
//! - `stream` (feature `std`): [`LinkStream`], blocking wrappers over `Read + Write`, and its
//!   split halves [`LinkReader`] / [`LinkWriter`].
//!
//! The protocol code is `#![no_std]` + `alloc` and does no I/O.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub use secp256k1;

mod crypto;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod keys;
#[cfg(feature = "std")]
pub mod stream;
pub mod transport;

pub use error::{Act, FramePart, HandshakeError, RemoteKeyMismatch, TransportError};
pub use frame::{ClientContext, ErrorReply, FrameError, LinkMessage, Reply, Request};
pub use handshake::{InitiatorHandshake, ResponderAwaitingActThree, ResponderHandshake};
pub use keys::{EphemeralSecretKey, InvalidSecretKeyError, StaticSecretKey};
#[cfg(feature = "std")]
pub use stream::{LinkError, LinkReader, LinkStream, LinkWriter};
pub use transport::{Decryptor, Encryptor, Transport, MAX_MESSAGE_LEN};
