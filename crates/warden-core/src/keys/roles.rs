//! One public-key type per key role.
//!
//! BOLT-03 derives several keys per commitment from several basepoints; passing the HTLC
//! basepoint where the delayed-payment basepoint belongs builds a transaction that looks right
//! and loses money. Each role therefore has its own type (as LDK's `ln/channel_keys.rs` does).

use core::fmt;

use secp256k1::PublicKey;

/// Defines a public-key newtype for one role.
macro_rules! key_role {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub PublicKey);

        impl $name {
            /// The underlying public key.
            pub fn to_public_key(&self) -> PublicKey {
                self.0
            }

            /// The 33-byte compressed encoding.
            pub fn serialize(&self) -> [u8; 33] {
                self.0.serialize()
            }
        }

        impl From<PublicKey> for $name {
            fn from(pk: PublicKey) -> $name {
                $name(pk)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
    };
}

key_role!(
    /// A channel funding key: one of the two keys of the 2-of-2 funding output.
    FundingPubkey
);
key_role!(
    /// The basepoint from which the peer derives revocation keys for our commitments.
    RevocationBasepoint
);
key_role!(
    /// The payment basepoint (with `static_remotekey`, the to_remote key itself).
    PaymentBasepoint
);
key_role!(
    /// The basepoint of HTLC keys.
    HtlcBasepoint
);
key_role!(
    /// The basepoint of delayed-payment (to_local) keys.
    DelayedPaymentBasepoint
);
key_role!(
    /// A per-commitment point.
    PerCommitmentPoint
);
key_role!(
    /// A revocation public key, derived for one commitment.
    RevocationPubkey
);
key_role!(
    /// An HTLC public key, derived for one commitment.
    HtlcPubkey
);
key_role!(
    /// A delayed-payment public key, derived for one commitment.
    DelayedPaymentPubkey
);
key_role!(
    /// A payment public key, derived for one commitment (without `static_remotekey`).
    PaymentPubkey
);

/// The four basepoints of one side of a channel, as Core Lightning's `struct basepoints` holds
/// them (the funding key is separate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Basepoints {
    /// Revocation basepoint.
    pub revocation: RevocationBasepoint,
    /// Payment basepoint.
    pub payment: PaymentBasepoint,
    /// HTLC basepoint.
    pub htlc: HtlcBasepoint,
    /// Delayed-payment basepoint.
    pub delayed_payment: DelayedPaymentBasepoint,
}
