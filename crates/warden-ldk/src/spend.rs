//! Signing LDK's `SpendableOutputDescriptor`s (the outputs a closed channel leaves us):
//! our to_remote output on the peer's commitment, our delayed to_local output, and outputs
//! already paying our destination or shutdown script. Every input is signed with a key Warden
//! derives itself, only when the output's script is the one that key controls.

use bitcoin::hashes::Hash;
use bitcoin::psbt::Psbt;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Transaction, Witness};
use lightning::sign::SpendableOutputDescriptor;
use warden_core::keys::bolt3::derive_private_key_from_basepoint;
use warden_core::keys::{
    DelayedPaymentPubkey, PaymentBasepoint, PerCommitmentPoint, RevocationPubkey,
};
use warden_core::secret::PrivateKey;
use warden_core::sign::{sign_hash_low_r, sign_p2wsh_input};
use warden_core::tx::scripts::{to_local_witness_script, to_remote_anchors_witness_script};
use warden_core::units::Sat;

use crate::manager::Shared;

fn p2wpkh_witness(
    shared: &Shared,
    tx: &Transaction,
    index: usize,
    key: &PrivateKey,
    value: bitcoin::Amount,
) -> Result<Witness, ()> {
    let public = bitcoin::PublicKey::new(key.public_key(&shared.secp));
    let spk = crate::keys::p2wpkh(&public.inner);
    let digest = SighashCache::new(tx)
        .p2wpkh_signature_hash(index, &spk, value, EcdsaSighashType::All)
        .map_err(|_| ())?;
    let signature = sign_hash_low_r(&shared.secp, key, digest.as_byte_array());
    let sig = bitcoin::ecdsa::Signature { signature, sighash_type: EcdsaSighashType::All };
    Ok(Witness::p2wpkh(&sig, &public.inner))
}

/// Signs every input of `psbt` that spends one of `descriptors`.
pub(crate) fn sign_sweep(
    shared: &Shared,
    descriptors: &[&SpendableOutputDescriptor],
    mut psbt: Psbt,
) -> Result<Transaction, ()> {
    let secp = &shared.secp;
    for descriptor in descriptors {
        let outpoint = descriptor.spendable_outpoint().into_bitcoin_outpoint();
        let index =
            psbt.unsigned_tx.input.iter().position(|i| i.previous_output == outpoint).ok_or(())?;
        let tx = &psbt.unsigned_tx;
        let witness = match descriptor {
            SpendableOutputDescriptor::StaticPaymentOutput(d) => {
                let secrets = shared.node.channel(secp, &d.channel_keys_id).map_err(|_| ())?;
                let anchors = d
                    .channel_transaction_parameters
                    .as_ref()
                    .is_some_and(|p| p.channel_type_features.supports_anchors_zero_fee_htlc_tx());
                let mut found = None;
                for key in secrets.payment_keys() {
                    let point = PaymentBasepoint(key.public_key(secp));
                    if anchors {
                        let script = to_remote_anchors_witness_script(&point);
                        if script.to_p2wsh() == d.output.script_pubkey {
                            let sig = sign_p2wsh_input(
                                secp,
                                key,
                                tx,
                                index,
                                &script,
                                Sat(d.output.value.to_sat()),
                                EcdsaSighashType::All,
                            )
                            .map_err(|_| ())?;
                            let mut w = Witness::new();
                            w.push_ecdsa_signature(&sig);
                            w.push(script.as_bytes());
                            found = Some(w);
                            break;
                        }
                    } else {
                        if crate::keys::p2wpkh(&point.0) == d.output.script_pubkey {
                            found = Some(p2wpkh_witness(shared, tx, index, key, d.output.value)?);
                            break;
                        }
                    }
                }
                found.ok_or(())?
            }
            SpendableOutputDescriptor::DelayedPaymentOutput(d) => {
                let secrets = shared.node.channel(secp, &d.channel_keys_id).map_err(|_| ())?;
                if tx.input.get(index).map(|i| i.sequence.0) != Some(u32::from(d.to_self_delay)) {
                    return Err(());
                }
                let base = secrets.delayed_payment_base_key();
                let point = PerCommitmentPoint(d.per_commitment_point);
                let key = derive_private_key_from_basepoint(base, &base.public_key(secp), &point)
                    .map_err(|_| ())?;
                let delayed = DelayedPaymentPubkey(key.public_key(secp));
                let revocation = RevocationPubkey(d.revocation_pubkey.to_public_key());
                let script = to_local_witness_script(&revocation, d.to_self_delay, &delayed);
                if script.to_p2wsh() != d.output.script_pubkey {
                    return Err(());
                }
                let sig = sign_p2wsh_input(
                    secp,
                    &key,
                    tx,
                    index,
                    &script,
                    Sat(d.output.value.to_sat()),
                    EcdsaSighashType::All,
                )
                .map_err(|_| ())?;
                let mut w = Witness::new();
                w.push_ecdsa_signature(&sig);
                w.push([]);
                w.push(script.as_bytes());
                w
            }
            SpendableOutputDescriptor::StaticOutput { output, .. } => {
                let key = if output.script_pubkey == *shared.destination_script() {
                    shared.node.destination_key()
                } else if output.script_pubkey == *shared.shutdown_script() {
                    shared.node.shutdown_key()
                } else {
                    return Err(());
                };
                p2wpkh_witness(shared, tx, index, key, output.value)?
            }
        };
        let input = psbt.inputs.get_mut(index).ok_or(())?;
        input.final_script_witness = Some(witness);
    }
    Ok(psbt.extract_tx_unchecked_fee_rate())
}
