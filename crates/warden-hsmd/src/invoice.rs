//! The invoices lightningd asks to pre-approve (`preapprove_invoice` 38 / 51), read into what
//! the payment ledger decides on ([`PaymentRequest`]): payment hash, amount, payee, creation
//! time and expiry.
//!
//! - BOLT-11 (`lnbc…`, `lntb…`, `lnbcrt…`, …): parsed with `lightning-invoice` (LDK 0.2 line).
//!   The signature must verify against the payee field when the invoice has one, or yield the
//!   payee by recovery; the invoice's currency must be our network's.
//! - BOLT-12 (`lni1…`): bech32 characters without a checksum, optionally split by `+` and
//!   whitespace (BOLT-12 "Encoding"), holding a TLV stream. `lightning-invoice` does not read
//!   them, so only the fields needed are read here: `invoice_created_at` (164),
//!   `invoice_relative_expiry` (166, default 7200 s), `invoice_payment_hash` (168),
//!   `invoice_amount` (170), `invoice_node_id` (176), the chain (`invreq_chain` 80, else
//!   `offer_chains` 2, else bitcoin), and `signature` (240), checked as BIP-0340 over the
//!   BOLT-12 merkle root of the non-signature fields (BOLT-12 "Signature Calculation").
//!
//! Anything that does not read, verify, or match the network is not approved
//! (`payment-not-approved`): an invoice Warden cannot check is not one it approves.

use std::fmt;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::Network;
use lightning_invoice::{Bolt11Invoice, Bolt11SemanticError, Currency, SignedRawBolt11Invoice};
use secp256k1::{schnorr, Message, Secp256k1, Verification};
use warden_core::keys::NodeId;
use warden_core::policy::payment::PaymentRequest;
use warden_core::policy::{PolicyError, Rule};
use warden_core::tlv::Cursor;
use warden_core::units::Msat;

use crate::payments::bolt12_sighash;

/// BOLT-12's default `invoice_relative_expiry`.
pub const BOLT12_DEFAULT_EXPIRY: u64 = 7_200;
const BECH32_CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Why an invoice string is not approved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvoiceError {
    /// Not UTF-8 text.
    NotText,
    /// A BOLT-11 string that does not parse or is not well-formed.
    Bolt11(String),
    /// The signature does not verify (or the payee cannot be recovered from it).
    Signature,
    /// The invoice is for another network.
    Network {
        /// What the invoice is for.
        invoice: String,
        /// Our network.
        ours: Network,
    },
    /// A BOLT-12 string that does not decode, or lacks a field it must have.
    Bolt12(String),
    /// Neither a BOLT-11 nor a BOLT-12 invoice.
    Unknown,
}

impl fmt::Display for InvoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvoiceError::NotText => f.write_str("the invoice is not text"),
            InvoiceError::Bolt11(e) => write!(f, "the bolt11 invoice does not parse: {e}"),
            InvoiceError::Signature => f.write_str("the invoice's signature does not verify"),
            InvoiceError::Network { invoice, ours } => {
                write!(f, "the invoice is for {invoice}, the node runs on {ours}")
            }
            InvoiceError::Bolt12(e) => write!(f, "the bolt12 invoice does not decode: {e}"),
            InvoiceError::Unknown => f.write_str("neither a bolt11 nor a bolt12 invoice"),
        }
    }
}

impl std::error::Error for InvoiceError {}

impl InvoiceError {
    /// The refusal: `payment-not-approved`.
    pub fn refusal(&self) -> PolicyError {
        PolicyError::new(Rule::PaymentNotApproved, self.to_string())
    }
}

/// Reads `invstring` as lightningd sent it, for a node on `network`.
pub fn parse<C: Verification>(
    secp: &Secp256k1<C>,
    invstring: &[u8],
    network: Network,
) -> Result<PaymentRequest, InvoiceError> {
    let text = std::str::from_utf8(invstring).map_err(|_| InvoiceError::NotText)?.trim();
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("lni1") {
        parse_bolt12(secp, &lower, network)
    } else if lower.starts_with("ln") {
        parse_bolt11(&lower, network)
    } else {
        Err(InvoiceError::Unknown)
    }
}

fn parse_bolt11(text: &str, network: Network) -> Result<PaymentRequest, InvoiceError> {
    let signed: SignedRawBolt11Invoice =
        text.parse().map_err(|e| InvoiceError::Bolt11(format!("{e}")))?;
    let invoice = Bolt11Invoice::from_signed(signed).map_err(|e| match e {
        Bolt11SemanticError::InvalidSignature => InvoiceError::Signature,
        other => InvoiceError::Bolt11(format!("{other}")),
    })?;
    if invoice.currency() != Currency::from(network) {
        return Err(InvoiceError::Network {
            invoice: format!("{:?}", invoice.currency()),
            ours: network,
        });
    }
    Ok(PaymentRequest {
        payment_hash: invoice.payment_hash().to_byte_array(),
        amount: invoice.amount_milli_satoshis().map(Msat),
        payee: Some(NodeId(invoice.get_payee_pub_key())),
        created_at: invoice.duration_since_epoch().as_secs(),
        expiry_secs: invoice.expiry_time().as_secs(),
    })
}

/// The bytes of a BOLT-12 string (`hrp1data`, `+` and whitespace removed, no checksum).
pub fn bolt12_bytes(text: &str) -> Result<(String, Vec<u8>), InvoiceError> {
    let joined: String = text.chars().filter(|c| *c != '+' && !c.is_whitespace()).collect();
    let (hrp, data) =
        joined.rsplit_once('1').ok_or_else(|| InvoiceError::Bolt12("no separator".into()))?;
    let mut out = Vec::with_capacity(data.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in data.bytes() {
        let v = BECH32_CHARSET.iter().position(|x| *x == c).ok_or_else(|| {
            InvoiceError::Bolt12(format!("{:?} is not a bech32 character", c as char))
        })?;
        acc = (acc << 5 | v as u32) & 0xfff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok((hrp.to_owned(), out))
}

/// One TLV record: its type, its whole encoding, and its value.
struct Tlv<'a> {
    ty: u64,
    raw: &'a [u8],
    value: &'a [u8],
}

fn tlvs(bytes: &[u8]) -> Result<Vec<Tlv<'_>>, InvoiceError> {
    let bad = |e: warden_core::tlv::TlvError| InvoiceError::Bolt12(e.to_string());
    let mut cursor = Cursor::new(bytes, 0);
    let mut out: Vec<Tlv<'_>> = Vec::new();
    while !cursor.is_empty() {
        let start = cursor.offset();
        let ty = cursor.bigsize().map_err(bad)?;
        let len = cursor.bigsize().map_err(bad)?;
        let len = usize::try_from(len).map_err(|_| InvoiceError::Bolt12("length".into()))?;
        let value = cursor.bytes(len).map_err(bad)?;
        if out.last().is_some_and(|l| l.ty >= ty) {
            return Err(InvoiceError::Bolt12(format!("tlv type {ty} out of order")));
        }
        let raw = bytes.get(start..cursor.offset()).unwrap_or_default();
        out.push(Tlv { ty, raw, value });
    }
    Ok(out)
}

fn tagged(tag: &[&[u8]], msg: &[&[u8]]) -> [u8; 32] {
    let mut t = sha256::Hash::engine();
    for part in tag {
        t.input(part);
    }
    let t = sha256::Hash::from_engine(t).to_byte_array();
    let mut e = sha256::Hash::engine();
    e.input(&t);
    e.input(&t);
    for part in msg {
        e.input(part);
    }
    sha256::Hash::from_engine(e).to_byte_array()
}

fn branch(a: [u8; 32], b: [u8; 32]) -> [u8; 32] {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    tagged(&[b"LnBranch"], &[&lo, &hi])
}

/// The BOLT-12 merkle root of a TLV stream's non-signature records (types outside 240..=1000).
pub fn bolt12_merkle_root(bytes: &[u8]) -> Result<[u8; 32], InvoiceError> {
    let records = tlvs(bytes)?;
    let first = records.first().ok_or_else(|| InvoiceError::Bolt12("no tlv".into()))?.raw;
    let mut level: Vec<[u8; 32]> = records
        .iter()
        .filter(|r| !(240..=1000).contains(&r.ty))
        .map(|r| {
            let mut ty = Vec::new();
            warden_core::tlv::write_bigsize(&mut ty, r.ty);
            let leaf = tagged(&[b"LnLeaf"], &[r.raw]);
            let nonce = tagged(&[b"LnNonce", first], &[&ty]);
            branch(leaf, nonce)
        })
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => branch(*a, *b),
                [a] => *a,
                _ => [0; 32],
            })
            .collect();
    }
    level.first().copied().ok_or_else(|| InvoiceError::Bolt12("no signed tlv".into()))
}

/// A `tu64` / `tu32`: big-endian, at most 8 bytes.
fn truncated(value: &[u8], what: &str) -> Result<u64, InvoiceError> {
    if value.len() > 8 {
        return Err(InvoiceError::Bolt12(format!("{what} is longer than 8 bytes")));
    }
    Ok(value.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
}

fn parse_bolt12<C: Verification>(
    secp: &Secp256k1<C>,
    text: &str,
    network: Network,
) -> Result<PaymentRequest, InvoiceError> {
    let (hrp, bytes) = bolt12_bytes(text)?;
    if hrp != "lni" {
        return Err(InvoiceError::Unknown);
    }
    let records = tlvs(&bytes)?;
    let field = |ty: u64| records.iter().find(|r| r.ty == ty).map(|r| r.value);
    let missing = |name: &str| InvoiceError::Bolt12(format!("no {name}"));
    let ours = network.chain_hash();
    let chain_ok = match (field(80), field(2)) {
        (Some(chain), _) => chain == ours.as_bytes(),
        (None, Some(chains)) => chains.chunks(32).any(|c| c == ours.as_bytes()),
        (None, None) => network == Network::Bitcoin,
    };
    if !chain_ok {
        return Err(InvoiceError::Network { invoice: "another chain".into(), ours: network });
    }
    let hash: [u8; 32] = field(168)
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| missing("32-byte invoice_payment_hash"))?;
    let amount = truncated(field(170).ok_or_else(|| missing("invoice_amount"))?, "amount")?;
    let created_at =
        truncated(field(164).ok_or_else(|| missing("invoice_created_at"))?, "created_at")?;
    let expiry_secs = match field(166) {
        Some(v) => truncated(v, "relative_expiry")?,
        None => BOLT12_DEFAULT_EXPIRY,
    };
    let node =
        field(176).and_then(NodeId::from_slice).ok_or_else(|| missing("valid invoice_node_id"))?;
    let sig = field(240)
        .and_then(|v| schnorr::Signature::from_slice(v).ok())
        .ok_or_else(|| missing("64-byte signature"))?;
    let digest = bolt12_sighash(b"invoice", b"signature", &bolt12_merkle_root(&bytes)?);
    let (key, _) = node.0.x_only_public_key();
    secp.verify_schnorr(&sig, &Message::from_digest(digest), &key)
        .map_err(|_| InvoiceError::Signature)?;
    Ok(PaymentRequest {
        payment_hash: hash,
        amount: Some(Msat(amount)),
        payee: Some(node),
        created_at,
        expiry_secs,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// BOLT-12 `bolt12/signature-test.json` (lightning/bolts), the `invoice_request` vector:
    /// the string decodes, its merkle root is the vector's, and its signature (field 240, by
    /// `invreq_payer_id` 88) verifies over the `invoice_request` `signature` tagged hash.
    #[test]
    fn the_bolt12_signature_vector_decodes_and_verifies() {
        let s = "lnr1qqyqqqqqqqqqqqqqqcp4256ypqqkgzshgysy6ct5dpjk6ct5d93kzmpq23ex2ct5d9ek293pqthvwfzadd7jejes8q9lhc4rvjxd022zv5l44g6qah82ru5rdpnpjkppqvjx204vgdzgsqpvcp4mldl3plscny0rt707gvpdh6ndydfacz43euzqhrurageg3n7kafgsek6gz3e9w52parv8gs2hlxzk95tzeswywffxlkeyhml0hh46kndmwf4m6xma3tkq2lu04qz3slje2rfthc89vss";
        // Split as a long string may be.
        let split = format!("{}+\n  {}", &s[..40], &s[40..]);
        let (hrp, bytes) = bolt12_bytes(&split).unwrap();
        assert_eq!(hrp, "lnr");
        let root = bolt12_merkle_root(&bytes).unwrap();
        assert_eq!(
            root.to_vec(),
            hex("608407c18ad9a94d9ea2bcdbe170b6c20c462a7833a197621c916f78cf18e624")
        );
        let digest = bolt12_sighash(b"invoice_request", b"signature", &root);
        assert_eq!(
            digest.to_vec(),
            hex("aefe3aa88a69772c246dcaef75ed3e7566c08ecc4e9f995233526a5651fc34cd")
        );
        let records = tlvs(&bytes).unwrap();
        let payer = records.iter().find(|r| r.ty == 88).unwrap().value;
        let sig = records.iter().find(|r| r.ty == 240).unwrap().value;
        let secp = Secp256k1::verification_only();
        let (key, _) = secp256k1::PublicKey::from_slice(payer).unwrap().x_only_public_key();
        let sig = schnorr::Signature::from_slice(sig).unwrap();
        secp.verify_schnorr(&sig, &Message::from_digest(digest), &key).unwrap();
    }

    fn record(out: &mut Vec<u8>, ty: u64, value: &[u8]) {
        warden_core::tlv::write_bigsize(out, ty);
        warden_core::tlv::write_bigsize(out, value.len() as u64);
        out.extend_from_slice(value);
    }

    fn bech32_chars(bytes: &[u8]) -> String {
        let (mut acc, mut bits, mut out) = (0u32, 0u32, String::new());
        for b in bytes {
            acc = acc << 8 | u32::from(*b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(BECH32_CHARSET[((acc >> bits) & 31) as usize] as char);
            }
        }
        if bits > 0 {
            out.push(BECH32_CHARSET[((acc << (5 - bits)) & 31) as usize] as char);
        }
        out
    }

    /// A regtest BOLT-12 invoice with the fields Warden reads, signed by `signer`.
    fn bolt12(amount: u64, created: u64, signer: u8, tamper: bool) -> String {
        let secp = Secp256k1::new();
        let keypair = secp256k1::Keypair::from_seckey_slice(&secp, &[signer; 32]).unwrap();
        let mut tlv = Vec::new();
        record(&mut tlv, 80, Network::Regtest.chain_hash().as_bytes());
        record(&mut tlv, 164, &created.to_be_bytes()[3..]);
        record(&mut tlv, 166, &600u32.to_be_bytes()[2..]);
        record(&mut tlv, 168, &[9; 32]);
        record(&mut tlv, 170, &amount.to_be_bytes()[5..]);
        record(&mut tlv, 176, &keypair.public_key().serialize());
        let digest = bolt12_sighash(b"invoice", b"signature", &bolt12_merkle_root(&tlv).unwrap());
        let sig = secp.sign_schnorr_no_aux_rand(&Message::from_digest(digest), &keypair);
        if tamper {
            // Another amount under the same signature.
            let at = tlv.len() - 33 - 2 - 1;
            tlv[at] ^= 1;
        }
        record(&mut tlv, 240, sig.as_ref());
        format!("lni1{}", bech32_chars(&tlv))
    }

    #[test]
    fn bolt12_invoices_are_read_and_their_signature_checked() {
        let secp = Secp256k1::verification_only();
        let inv = bolt12(1_234_567, 1_800_000_000, 0x51, false);
        let r = parse(&secp, inv.as_bytes(), Network::Regtest).unwrap();
        assert_eq!(r.payment_hash, [9; 32]);
        assert_eq!(r.amount, Some(Msat(1_234_567)));
        assert_eq!(r.created_at, 1_800_000_000);
        assert_eq!(r.expiry_secs, 600);
        let payee = secp256k1::Keypair::from_seckey_slice(&Secp256k1::new(), &[0x51; 32])
            .unwrap()
            .public_key();
        assert_eq!(r.payee, Some(NodeId(payee)));
        // Upper case, split with `+`, reads the same.
        let split = format!("{}+ \n{}", &inv[..30], &inv[30..]).to_ascii_uppercase();
        assert_eq!(parse(&secp, split.as_bytes(), Network::Regtest), Ok(r));
        let tampered = bolt12(1_234_567, 1_800_000_000, 0x51, true);
        assert_eq!(
            parse(&secp, tampered.as_bytes(), Network::Regtest),
            Err(InvoiceError::Signature)
        );
        assert!(matches!(
            parse(&secp, inv.as_bytes(), Network::Testnet),
            Err(InvoiceError::Network { .. })
        ));
    }

    #[test]
    fn other_strings_are_not_invoices() {
        let secp = Secp256k1::verification_only();
        assert_eq!(parse(&secp, b"hello", Network::Regtest), Err(InvoiceError::Unknown));
        assert_eq!(parse(&secp, &[0xff], Network::Regtest), Err(InvoiceError::NotText));
        // No chain named: bitcoin, not regtest; on bitcoin, the fields are missing.
        assert!(matches!(
            parse(&secp, b"lni1qqqq", Network::Regtest),
            Err(InvoiceError::Network { .. })
        ));
        assert!(matches!(
            parse(&secp, b"lni1qqqq", Network::Bitcoin),
            Err(InvoiceError::Bolt12(_))
        ));
        assert!(matches!(
            parse(&secp, b"lnbcrt1xyz", Network::Regtest),
            Err(InvoiceError::Bolt11(_))
        ));
    }
}
