//! Checks of what hsmd returns: every signature is verified against the transaction the
//! testkit built (BIP-0143 sighash with the right witness script, value and sighash type).

use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{ecdsa, Psbt, ScriptBuf, Transaction, TxOut};
use secp256k1::{Message, PublicKey, Secp256k1, Verification};

use crate::error::{scenario, BuildError, VerifyError};

/// Verifies that `sig` is a signature by `key` of `digest` with sighash type `sighash_type`.
pub fn check_signature<C: Verification>(
    secp: &Secp256k1<C>,
    request: &'static str,
    digest: &Message,
    sig: &ecdsa::Signature,
    key: &PublicKey,
    sighash_type: EcdsaSighashType,
) -> Result<(), VerifyError> {
    if sig.sighash_type != sighash_type {
        return Err(VerifyError {
            request,
            what: format!("sighash type {:?}, expected {sighash_type:?}", sig.sighash_type),
        });
    }
    secp.verify_ecdsa(digest, &sig.signature, key).map_err(|e| VerifyError {
        request,
        what: format!("signature does not verify with key {key}: {e}"),
    })
}

/// Checks that hsmd returned `got` where `expected` is right.
pub fn check_eq<T: PartialEq + std::fmt::Debug>(
    request: &'static str,
    what: &str,
    got: &T,
    expected: &T,
) -> Result<(), VerifyError> {
    if got == expected {
        Ok(())
    } else {
        Err(VerifyError { request, what: format!("{what} is {got:?}, expected {expected:?}") })
    }
}

/// One input of a transaction as lightningd describes it in the PSBT of a `bitcoin_tx`: the
/// output it spends and, for P2WSH, its witness script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpentOutput {
    /// The output spent (amount and scriptPubKey: the PSBT's `witness_utxo`).
    pub txout: TxOut,
    /// The witness script (the PSBT's `witness_script`), if P2WSH.
    pub witness_script: Option<ScriptBuf>,
}

/// The PSBT (version 0) lightningd sends along a transaction: the unsigned transaction, and
/// for each input its `witness_utxo` (and witness script, as `bitcoin_tx_add_input` records
/// it).
pub fn psbt_for(tx: &Transaction, spent: &[SpentOutput]) -> Result<Psbt, BuildError> {
    if spent.len() != tx.input.len() {
        return Err(scenario(format!(
            "{} spent outputs for {} inputs",
            spent.len(),
            tx.input.len()
        )));
    }
    let mut unsigned = tx.clone();
    for input in &mut unsigned.input {
        input.witness = bitcoin::Witness::new();
        input.script_sig = ScriptBuf::new();
    }
    let mut psbt = Psbt::from_unsigned_tx(unsigned).map_err(|e| scenario(format!("psbt: {e}")))?;
    for (input, s) in psbt.inputs.iter_mut().zip(spent) {
        input.witness_utxo = Some(s.txout.clone());
        input.witness_script = s.witness_script.clone();
    }
    Ok(psbt)
}

/// A wallet's PSBT: an unsigned version-2 transaction spending `inputs` (each with its spent
/// output as `witness_utxo`, sequence RBF) to `outputs`, locktime 0.
pub fn unsigned_psbt(
    inputs: &[(bitcoin::OutPoint, TxOut)],
    outputs: Vec<TxOut>,
) -> Result<Psbt, BuildError> {
    let tx = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: inputs
            .iter()
            .map(|(op, _)| bitcoin::TxIn {
                previous_output: *op,
                script_sig: ScriptBuf::new(),
                sequence: bitcoin::Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: bitcoin::Witness::new(),
            })
            .collect(),
        output: outputs,
    };
    let mut psbt = Psbt::from_unsigned_tx(tx).map_err(|e| scenario(format!("psbt: {e}")))?;
    for (meta, (_, prev)) in psbt.inputs.iter_mut().zip(inputs) {
        meta.witness_utxo = Some(prev.clone());
    }
    Ok(psbt)
}

/// The `bitcoin_tx` of `tx` spending `spent`.
pub fn bitcoin_tx(
    tx: &Transaction,
    spent: &[SpentOutput],
) -> Result<warden_wire::BitcoinTx, BuildError> {
    Ok(warden_wire::BitcoinTx::new(tx.clone(), psbt_for(tx, spent)?))
}

/// The P2WSH output spent through `witness_script` with `value`.
pub fn p2wsh_spent(value: warden_core::units::Sat, witness_script: &ScriptBuf) -> SpentOutput {
    SpentOutput {
        txout: TxOut { value: value.to_amount(), script_pubkey: witness_script.to_p2wsh() },
        witness_script: Some(witness_script.clone()),
    }
}
