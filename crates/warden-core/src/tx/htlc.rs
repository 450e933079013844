//! HTLCs and their second-stage transactions (BOLT-03 "HTLC-Timeout and HTLC-Success
//! Transactions").
//!
//! An HTLC output of the broadcaster's commitment is spent by the broadcaster through an
//! HTLC-timeout transaction (an HTLC it offered, after `cltv_expiry`) or an HTLC-success
//! transaction (an HTLC it received, with the preimage). Both need the countersignatory's
//! signature, pay the amount minus a fee (zero with zero-fee anchors) to a to_local-style
//! script, and are version 2 with one input and one output.

use core::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::sighash::EcdsaSighashType;

use bitcoin::{ecdsa, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use secp256k1::Message;

use super::commitment_keys::CommitmentKeys;
use super::scripts::{
    htlc_tx_output_witness_script, offered_htlc_witness_script, received_htlc_witness_script,
};
use super::sighash::{countersignatory_htlc_sighash_type, p2wsh_sighash, SighashError};
use super::ChannelType;
use crate::units::{FeeratePerKw, Msat, Sat};

/// The SHA-256 payment hash of an HTLC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PaymentHash(pub [u8; 32]);

/// The preimage of a payment hash.
///
/// Until the HTLC settles the preimage is what claims the money, so it is handled like a
/// secret: not `Copy`, and `Debug` prints only its payment hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PaymentPreimage([u8; 32]);

impl PaymentPreimage {
    /// Wraps 32 preimage bytes.
    pub fn new(bytes: [u8; 32]) -> PaymentPreimage {
        PaymentPreimage(bytes)
    }

    /// The raw bytes.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// The payment hash `SHA256(preimage)`.
    pub fn payment_hash(&self) -> PaymentHash {
        PaymentHash(sha256::Hash::hash(&self.0).to_byte_array())
    }
}

impl fmt::Debug for PaymentPreimage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hash = self.payment_hash().0;
        write!(
            f,
            "PaymentPreimage(hash:{:02x}{:02x}{:02x}{:02x}…)",
            hash[0], hash[1], hash[2], hash[3]
        )
    }
}

/// The direction of an HTLC, seen from the commitment's broadcaster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HtlcDirection {
    /// The broadcaster offered the HTLC (it pays out with the preimage, or times out back to
    /// the broadcaster through an HTLC-timeout transaction).
    Offered,
    /// The broadcaster received the HTLC (it claims it with the preimage through an
    /// HTLC-success transaction).
    Received,
}

/// An HTLC committed to in a commitment transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Htlc {
    /// Offered or received, from the broadcaster's view.
    pub direction: HtlcDirection,
    /// The amount; the output carries it rounded down to whole satoshis.
    pub amount: Msat,
    /// The payment hash.
    pub payment_hash: PaymentHash,
    /// The absolute block height after which the offerer can time the HTLC out.
    pub cltv_expiry: u32,
}

impl Htlc {
    /// The value of the HTLC's output: the amount rounded down to whole satoshis.
    pub fn output_value(&self) -> Sat {
        self.amount.to_sat_floor()
    }

    /// The HTLC output's witness script in the commitment with `keys`.
    pub fn witness_script(&self, channel_type: ChannelType, keys: &CommitmentKeys) -> ScriptBuf {
        match self.direction {
            HtlcDirection::Offered => offered_htlc_witness_script(
                channel_type,
                &keys.revocation,
                &keys.broadcaster_htlc,
                &keys.countersignatory_htlc,
                &self.payment_hash,
            ),
            HtlcDirection::Received => received_htlc_witness_script(
                channel_type,
                &keys.revocation,
                &keys.broadcaster_htlc,
                &keys.countersignatory_htlc,
                &self.payment_hash,
                self.cltv_expiry,
            ),
        }
    }

    /// The kind of second-stage transaction that spends this HTLC on the broadcaster's
    /// commitment.
    pub fn htlc_tx_kind(&self) -> HtlcTxKind {
        match self.direction {
            HtlcDirection::Offered => HtlcTxKind::Timeout,
            HtlcDirection::Received => HtlcTxKind::Success,
        }
    }

    /// The fee of this HTLC's second-stage transaction at `feerate`.
    pub fn htlc_tx_fee(&self, channel_type: ChannelType, feerate: FeeratePerKw) -> Sat {
        match self.direction {
            HtlcDirection::Offered => channel_type.htlc_timeout_fee(feerate),
            HtlcDirection::Received => channel_type.htlc_success_fee(feerate),
        }
    }

    /// Whether the HTLC is trimmed from the commitment: its amount minus its second-stage fee
    /// is below the broadcaster's dust limit (BOLT-03 "Trimmed Outputs").
    pub fn is_trimmed(
        &self,
        channel_type: ChannelType,
        feerate: FeeratePerKw,
        dust_limit: Sat,
    ) -> bool {
        let fee = self.htlc_tx_fee(channel_type, feerate);
        match dust_limit.checked_add(fee) {
            Some(threshold) => self.output_value() < threshold,
            // A threshold beyond u64 is above any amount.
            None => true,
        }
    }
}

/// The two kinds of HTLC transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HtlcTxKind {
    /// Spends an HTLC the broadcaster offered, after its `cltv_expiry` (locktime =
    /// `cltv_expiry`).
    Timeout,
    /// Spends an HTLC the broadcaster received, with the preimage (locktime 0).
    Success,
}

/// An HTLC output too small to pay its HTLC transaction's fee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HtlcTxError {
    /// The HTLC's output value is below the second-stage fee (a trimmed HTLC has no HTLC
    /// transaction).
    AmountBelowFee {
        /// The HTLC output value.
        value: Sat,
        /// The fee the HTLC transaction would pay.
        fee: Sat,
    },
}

impl fmt::Display for HtlcTxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HtlcTxError::AmountBelowFee { value, fee } => {
                write!(f, "htlc output of {value} cannot pay an htlc transaction fee of {fee}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HtlcTxError {}

/// Why an HTLC transaction's witness cannot be assembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HtlcWitnessError {
    /// An HTLC-success witness needs the preimage.
    MissingPreimage,
    /// An HTLC-timeout witness takes no preimage.
    UnexpectedPreimage,
    /// The preimage does not hash to the HTLC's payment hash.
    WrongPreimage,
}

impl fmt::Display for HtlcWitnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HtlcWitnessError::MissingPreimage => "an htlc-success witness needs the preimage",
            HtlcWitnessError::UnexpectedPreimage => "an htlc-timeout witness takes no preimage",
            HtlcWitnessError::WrongPreimage => "the preimage does not match the payment hash",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HtlcWitnessError {}

/// An unsigned HTLC-success or HTLC-timeout transaction, with what signing it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HtlcTx {
    /// The unsigned transaction.
    pub tx: Transaction,
    /// Success or timeout.
    pub kind: HtlcTxKind,
    /// The channel type it was built for.
    pub channel_type: ChannelType,
    /// The HTLC it spends.
    pub htlc: Htlc,
    /// The witness script of the commitment's HTLC output (the script being spent).
    pub htlc_witness_script: ScriptBuf,
    /// The value of the HTLC output being spent.
    pub htlc_value: Sat,
    /// The fee the transaction pays.
    pub fee: Sat,
    /// The witness script of the transaction's output (to_local style).
    pub output_witness_script: ScriptBuf,
}

/// Builds the HTLC transaction spending `htlc`, found at `htlc_outpoint` of the broadcaster's
/// commitment with `keys` (BOLT-03):
///
/// - version 2 (3 with zero-fee commitments), locktime 0 (success) or `cltv_expiry` (timeout);
/// - one input, sequence 0 (or 1 with anchors);
/// - one output of the HTLC value minus the fee (`feerate * 703 / 1000` for success,
///   `feerate * 663 / 1000` for timeout, zero with anchors) to P2WSH of the to_local script
///   with the broadcaster's revocation and delayed keys and `to_self_delay`.
pub fn build_htlc_tx(
    channel_type: ChannelType,
    htlc_outpoint: OutPoint,
    htlc: &Htlc,
    feerate: FeeratePerKw,
    to_self_delay: u16,
    keys: &CommitmentKeys,
) -> Result<HtlcTx, HtlcTxError> {
    let kind = htlc.htlc_tx_kind();
    let htlc_value = htlc.output_value();
    let fee = htlc.htlc_tx_fee(channel_type, feerate);
    let value = htlc_value
        .checked_sub(fee)
        .ok_or(HtlcTxError::AmountBelowFee { value: htlc_value, fee })?;
    let lock_time = match kind {
        HtlcTxKind::Success => LockTime::ZERO,
        HtlcTxKind::Timeout => LockTime::from_consensus(htlc.cltv_expiry),
    };
    let output_witness_script = htlc_tx_output_witness_script(
        &keys.revocation,
        to_self_delay,
        &keys.broadcaster_delayed_payment,
    );
    let tx = Transaction {
        version: channel_type.tx_version(),
        lock_time,
        input: alloc::vec![TxIn {
            previous_output: htlc_outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::from_consensus(u32::from(channel_type.htlc_csv())),
            witness: Witness::new(),
        }],
        output: alloc::vec![TxOut {
            value: value.to_amount(),
            script_pubkey: output_witness_script.to_p2wsh(),
        }],
    };
    Ok(HtlcTx {
        tx,
        kind,
        channel_type,
        htlc: *htlc,
        htlc_witness_script: htlc.witness_script(channel_type, keys),
        htlc_value,
        fee,
        output_witness_script,
    })
}

impl HtlcTx {
    /// The sighash type of the countersignatory's signature (`SIGHASH_ALL`, or
    /// `SIGHASH_SINGLE|ANYONECANPAY` with anchors).
    pub fn countersignatory_sighash_type(&self) -> EcdsaSighashType {
        countersignatory_htlc_sighash_type(self.channel_type)
    }

    /// The sighash the broadcaster signs (`SIGHASH_ALL`).
    pub fn broadcaster_sighash(&self) -> Result<Message, SighashError> {
        self.sighash(EcdsaSighashType::All)
    }

    /// The sighash the countersignatory signs.
    pub fn countersignatory_sighash(&self) -> Result<Message, SighashError> {
        self.sighash(self.countersignatory_sighash_type())
    }

    /// The BIP-0143 sighash of the input with `sighash_type`.
    pub fn sighash(&self, sighash_type: EcdsaSighashType) -> Result<Message, SighashError> {
        p2wsh_sighash(&self.tx, 0, &self.htlc_witness_script, self.htlc_value, sighash_type)
    }

    /// The input witness (BOLT-03), the countersignatory's signature first:
    ///
    /// - success: `0 <remotehtlcsig> <localhtlcsig> <payment_preimage> <script>`;
    /// - timeout: `0 <remotehtlcsig> <localhtlcsig> <> <script>`.
    pub fn witness(
        &self,
        countersignatory_sig: &ecdsa::Signature,
        broadcaster_sig: &ecdsa::Signature,
        preimage: Option<&PaymentPreimage>,
    ) -> Result<Witness, HtlcWitnessError> {
        let mut witness = Witness::new();
        witness.push([]);
        witness.push_ecdsa_signature(countersignatory_sig);
        witness.push_ecdsa_signature(broadcaster_sig);
        match (self.kind, preimage) {
            (HtlcTxKind::Success, None) => return Err(HtlcWitnessError::MissingPreimage),
            (HtlcTxKind::Success, Some(p)) if p.payment_hash() != self.htlc.payment_hash => {
                return Err(HtlcWitnessError::WrongPreimage)
            }
            (HtlcTxKind::Success, Some(p)) => witness.push(p.expose_secret()),
            (HtlcTxKind::Timeout, Some(_)) => return Err(HtlcWitnessError::UnexpectedPreimage),
            (HtlcTxKind::Timeout, None) => witness.push([]),
        }
        witness.push(self.htlc_witness_script.as_bytes());
        Ok(witness)
    }

    /// The signed transaction: [`HtlcTx::witness`] placed on the input.
    pub fn into_signed(
        self,
        countersignatory_sig: &ecdsa::Signature,
        broadcaster_sig: &ecdsa::Signature,
        preimage: Option<&PaymentPreimage>,
    ) -> Result<Transaction, HtlcWitnessError> {
        let witness = self.witness(countersignatory_sig, broadcaster_sig, preimage)?;
        let mut tx = self.tx;
        if let Some(input) = tx.input.first_mut() {
            input.witness = witness;
        }
        Ok(tx)
    }
}
