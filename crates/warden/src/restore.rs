//! `warden restore`: rebuild the signer's local store from the seed and a replica, and
//! `warden scb`: Core Lightning static channel backups from the signer's records.
//!
//! ## Restore
//!
//! `warden restore --from postgres://…` reads every record of this node (the node id comes from
//! the seed in the data directory) from the PostgreSQL replica, verifies all of them and the
//! signed head with the seed's keys (and walks the audit trail), and writes them as the local
//! store (`warden/` in the data directory). The work is
//! [`warden_hsmd::replica::restore`]: a replica that does not verify is refused, naming what
//! failed, and nothing is written; a local store that holds anything is refused unless
//! `--force` (it is then kept as `warden/warden-store.redb.before-restore`); the restore is an
//! event of the audit trail, written to the store and the replica, so that the next start of
//! the signer (with the same replica configured) finds the two equal and serves.
//!
//! ## Static channel backups
//!
//! `--scb FILE` (or `warden scb --out FILE` on the local store) writes `{"scb": [hex, …]}`, the
//! shape of Core Lightning's `staticbackup` reply, whose items `recoverchannel` takes. Each item
//! is Core Lightning's `modern_scb_chan` (`common/scb_wire.csv`), built from what the signer
//! knows of the channel; see [`scb_chan`] and `docs/scb.md` for what it cannot know.

use std::io::Write;
use std::path::{Path, PathBuf};

use bitcoin::hashes::Hash;
use warden_core::channel::ChannelState;
use warden_core::seal::WardenKeys;
use warden_hsmd::channels::ChannelStore;
use warden_hsmd::durable::{SealedRedbChannelStore, SystemClock};
use warden_hsmd::hsm_secret::OsEntropy;
use warden_hsmd::replica::{restore, Replica};
use warden_wire::NodeId;

use crate::{datadir, say, CliError};

/// `warden restore`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The replica to restore from: a PostgreSQL connection string (`postgres://USER@HOST/DB`
    /// or `host=… dbname=…`), the one `warden run` or warden-hsmd wrote to.
    #[arg(long, value_name = "URL")]
    from: String,

    /// Replace a local store that is not empty (it is kept beside the new one as
    /// `warden-store.redb.before-restore`). Only if that store is lost, damaged or older than
    /// the replica: the replica wins, whatever the local store held.
    #[arg(long)]
    force: bool,

    /// Also write the restored channels as Core Lightning static channel backups (the JSON of
    /// `lightning-cli staticbackup`) to FILE, for `recoverchannel`.
    #[arg(long, value_name = "FILE")]
    scb: Option<PathBuf>,
}

/// `warden scb`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ScbArgs {
    /// Where to write the backups (the JSON of `lightning-cli staticbackup`); `-` for stdout.
    #[arg(long, value_name = "FILE", default_value = "-")]
    out: PathBuf,
}

/// The node id and store keys of the seed in `dir`.
fn identity(dir: &Path) -> Result<(NodeId, WardenKeys), CliError> {
    let seed = datadir::load_seed(dir)?;
    let secp = secp256k1::Secp256k1::new();
    let keys = warden_core::keys::NodeKeys::derive(&secp, &seed.seed, bitcoin::NetworkKind::Main)
        .map_err(|e| CliError::new(format!("cannot derive the node keys: {e}")))?;
    let node_id = NodeId::from(keys.node_id().to_public_key());
    let warden_keys = WardenKeys::derive(&seed.seed)
        .map_err(|e| CliError::new(format!("cannot derive the store keys: {e}")))?;
    Ok((node_id, warden_keys))
}

/// A name for the replica in messages and the audit trail: the connection string without its
/// user and password.
pub fn replica_name(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            let host = host.split_once('?').map_or(host, |(h, _)| h);
            format!("{scheme}://{host}")
        }
        // A key=value string: keep only host, port and dbname.
        None => {
            let kept: Vec<&str> = url
                .split_whitespace()
                .filter(|kv| {
                    kv.starts_with("host=") || kv.starts_with("port=") || kv.starts_with("dbname=")
                })
                .collect();
            format!("postgres ({})", kept.join(" "))
        }
    }
}

/// `warden restore`.
pub fn run_restore(dir: &Path, args: &RestoreArgs) -> Result<(), CliError> {
    let (node_id, keys) = identity(dir)?;
    let name = replica_name(&args.from);
    let replica = Replica::postgres(&name, &args.from, &node_id)
        .map_err(|e| CliError::new(format!("cannot reach the replica {name}: {e}")))?;
    let mut entropy =
        OsEntropy::open().map_err(|e| CliError::new(format!("cannot open /dev/urandom: {e}")))?;
    let (report, store) =
        restore(dir, &node_id, keys, replica, args.force, &mut entropy, Box::new(SystemClock))
            .map_err(|e| {
                let hint = match e {
                    warden_hsmd::replica::RestoreError::LocalNotEmpty { .. } => {
                        " (pass --force to replace it)"
                    }
                    _ => "",
                };
                CliError::new(format!("restore refused: {e}{hint}"))
            })?;
    let mut text = format!("{report}.\n");
    if let Some(file) = &args.scb {
        let (written, skipped) = write_scb(&store.states(), file)?;
        text.push_str(&scb_summary(written, skipped, file));
    }
    drop(store);
    text.push_str(
        "The signer is ready: start it with the same replica configured (`warden run`, or \
         warden-hsmd with WARDEN_REPLICA_POSTGRES).\n",
    );
    say(&text)
}

/// `warden scb`: the backups of the channels in the local store.
pub fn run_scb(dir: &Path, args: &ScbArgs) -> Result<(), CliError> {
    let (node_id, keys) = identity(dir)?;
    let mut entropy =
        OsEntropy::open().map_err(|e| CliError::new(format!("cannot open /dev/urandom: {e}")))?;
    let store =
        SealedRedbChannelStore::open(dir, &node_id, keys, &mut entropy, Box::new(SystemClock))
            .map_err(|e| {
                CliError::new(format!(
                    "cannot open the store in {}: {e} (stop `warden run` first: the store is \
                     locked while it runs)",
                    dir.join(warden_hsmd::durable::STORE_DIR).display()
                ))
            })?;
    let states = store.states();
    drop(store);
    let (written, skipped) = write_scb(&states, &args.out)?;
    if args.out.as_os_str() != "-" {
        say(&scb_summary(written, skipped, &args.out))?;
    }
    Ok(())
}

fn scb_summary(written: usize, skipped: usize, file: &Path) -> String {
    let mut text = format!(
        "Wrote {written} static channel backups to {} (for `lightning-cli recoverchannel`).\n",
        file.display()
    );
    if skipped > 0 {
        text.push_str(&format!(
            "{skipped} channels were left out: not set up (no funding outpoint yet).\n"
        ));
    }
    text.push_str(
        "The signer does not know the peers' network addresses: each backup names 0.0.0.0:0, and \
         Core Lightning must find the peer from gossip (see docs/scb.md).\n",
    );
    text
}

/// Writes `{"scb": [...]}` for the set-up channels of `states`; returns (written, skipped).
fn write_scb(states: &[ChannelState], file: &Path) -> Result<(usize, usize), CliError> {
    let items: Vec<String> = states.iter().filter_map(scb_chan).map(|b| hex(&b)).collect();
    let json = serde_json::json!({ "scb": items });
    let text = format!("{json}\n");
    let result = if file.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    } else {
        write_new(file, text.as_bytes())
    };
    result.map_err(|e| CliError::new(format!("cannot write {}: {e}", file.display())))?;
    Ok((items.len(), states.len() - items.len()))
}

/// Writes a file mode 0600 (the backups name peers and funding outpoints).
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `wireaddr_internal` type `ADDR_INTERNAL_WIREADDR`.
const ADDR_INTERNAL_WIREADDR: u8 = 4;
/// `wireaddr` type IPv4.
const ADDR_TYPE_IPV4: u8 = 1;
/// `scb_tlvs` type of the peer's basepoints.
const TLV_BASEPOINTS: u8 = 3;
/// `scb_tlvs` type of the opener (`enum side`: 0 local, 1 remote).
const TLV_OPENER: u8 = 5;
/// `scb_tlvs` type of the delay on our own outputs (the one the peer chose).
const TLV_REMOTE_TO_SELF_DELAY: u8 = 7;

/// The v1 channel id (BOLT 2): the funding txid with its last two bytes XORed with the output
/// index (big-endian).
pub fn channel_id_v1(outpoint: &bitcoin::OutPoint) -> [u8; 32] {
    let mut id = outpoint.txid.to_byte_array();
    let vout = u16::try_from(outpoint.vout).unwrap_or(u16::MAX).to_be_bytes();
    if let Some(tail) = id.get_mut(30..32) {
        for (b, v) in tail.iter_mut().zip(vout) {
            *b ^= v;
        }
    }
    id
}

/// One channel as Core Lightning's `modern_scb_chan`, or `None` if it is not set up yet:
///
/// | field | bytes | from |
/// |---|---|---|
/// | `id` | u64 | the channel's dbid |
/// | `cid` | 32 | the v1 channel id of the funding outpoint (see docs/scb.md for dual-funded channels) |
/// | `node_id` | 33 | the peer's node id |
/// | `addr` | `wireaddr_internal` | unknown to the signer: `ADDR_INTERNAL_WIREADDR`, not websocket, IPv4 0.0.0.0 port 0 |
/// | `funding` | 32 + u32 | the funding txid (internal byte order) and output index |
/// | `funding_sats` | u64 | the channel value |
/// | `type` | u16 length + bytes | the channel type's feature bits |
/// | `tlvs` | u32 length + TLV stream | 3: the peer's basepoints (revocation, payment, htlc, delayed payment); 5: the opener; 7: the delay on our outputs |
///
/// The `shachain` TLV (1, the peer's revealed secrets) is left out: Core Lightning treats the
/// TLVs as optional.
pub fn scb_chan(state: &ChannelState) -> Option<Vec<u8>> {
    let setup = state.setup.as_ref()?;
    let mut out = Vec::with_capacity(200);
    out.extend_from_slice(&state.slot.dbid.0.to_be_bytes());
    out.extend_from_slice(&channel_id_v1(&setup.funding_outpoint));
    out.extend_from_slice(&state.slot.peer.0.serialize());
    out.push(ADDR_INTERNAL_WIREADDR);
    out.push(0); // is_websocket
    out.push(ADDR_TYPE_IPV4);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&setup.funding_outpoint.txid.to_byte_array());
    out.extend_from_slice(&setup.funding_outpoint.vout.to_be_bytes());
    out.extend_from_slice(&setup.channel_value.0.to_be_bytes());
    let features = &setup.channel_type_features;
    out.extend_from_slice(&u16::try_from(features.len()).ok()?.to_be_bytes());
    out.extend_from_slice(features);
    let mut tlvs = Vec::with_capacity(4 * 33 + 16);
    let b = &setup.counterparty_basepoints;
    tlvs.push(TLV_BASEPOINTS);
    tlvs.push(4 * 33);
    for point in [&b.revocation.0, &b.payment.0, &b.htlc.0, &b.delayed_payment.0] {
        tlvs.extend_from_slice(&point.serialize());
    }
    tlvs.extend_from_slice(&[TLV_OPENER, 1, u8::from(!setup.is_outbound)]);
    tlvs.extend_from_slice(&[TLV_REMOTE_TO_SELF_DELAY, 2]);
    tlvs.extend_from_slice(&setup.counterparty_selected_delay.to_be_bytes());
    out.extend_from_slice(&u32::try_from(tlvs.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&tlvs);
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;
    use bitcoin::{OutPoint, Txid};
    use warden_core::channel::{ChannelSetup, ChannelSlot};
    use warden_core::keys::{
        Basepoints, DelayedPaymentBasepoint, FundingPubkey, HtlcBasepoint, NodeId as CoreNodeId,
        PaymentBasepoint, RevocationBasepoint,
    };
    use warden_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
    use warden_core::units::{Dbid, Msat, Sat};

    fn pk(b: u8) -> PublicKey {
        PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[b; 32]).unwrap())
    }

    /// Reads `n` bytes at the cursor.
    fn take<'a>(buf: &mut &'a [u8], n: usize) -> &'a [u8] {
        let (head, tail) = buf.split_at(n);
        *buf = tail;
        head
    }

    #[test]
    fn a_channel_encodes_as_core_lightnings_modern_scb_chan() {
        let txid = Txid::from_byte_array(core::array::from_fn(|i| i as u8));
        let mut state = ChannelState::new(ChannelSlot { peer: CoreNodeId(pk(9)), dbid: Dbid(42) });
        assert!(scb_chan(&state).is_none(), "no setup, no backup");
        state.setup = Some(ChannelSetup {
            is_outbound: false,
            channel_value: Sat(1_234_567),
            push_value: Msat(0),
            funding_outpoint: OutPoint { txid, vout: 0x0102 },
            holder_selected_delay: 144,
            holder_shutdown_script: None,
            holder_shutdown_wallet_index: None,
            counterparty_basepoints: Basepoints {
                revocation: RevocationBasepoint(pk(1)),
                payment: PaymentBasepoint(pk(2)),
                htlc: HtlcBasepoint(pk(3)),
                delayed_payment: DelayedPaymentBasepoint(pk(4)),
            },
            counterparty_funding_pubkey: FundingPubkey(pk(5)),
            counterparty_selected_delay: 720,
            counterparty_shutdown_script: None,
            channel_type_features: vec![0x40, 0x10, 0x00],
        });
        let bytes = scb_chan(&state).unwrap();
        let mut c = bytes.as_slice();
        assert_eq!(take(&mut c, 8), 42u64.to_be_bytes(), "id: the dbid");
        let cid = take(&mut c, 32);
        assert_eq!(&cid[..30], &txid.to_byte_array()[..30]);
        assert_eq!(cid[30], 30 ^ 0x01, "BOLT 2: txid XOR output index, big-endian");
        assert_eq!(cid[31], 31 ^ 0x02);
        assert_eq!(take(&mut c, 33), pk(9).serialize(), "node_id");
        assert_eq!(take(&mut c, 1), [4], "ADDR_INTERNAL_WIREADDR");
        assert_eq!(take(&mut c, 1), [0], "not a websocket");
        assert_eq!(take(&mut c, 1), [1], "IPv4");
        assert_eq!(take(&mut c, 6), [0; 6], "0.0.0.0 port 0: unknown");
        assert_eq!(take(&mut c, 32), txid.to_byte_array(), "funding txid");
        assert_eq!(take(&mut c, 4), 0x0102u32.to_be_bytes(), "funding vout");
        assert_eq!(take(&mut c, 8), 1_234_567u64.to_be_bytes(), "funding_sats");
        assert_eq!(take(&mut c, 2), 3u16.to_be_bytes(), "channel type length");
        assert_eq!(take(&mut c, 3), [0x40, 0x10, 0x00]);
        let len = u32::from_be_bytes(take(&mut c, 4).try_into().unwrap()) as usize;
        assert_eq!(len, c.len(), "the TLV stream ends the item");
        assert_eq!(take(&mut c, 2), [3, 132], "basepoints");
        for b in 1..=4 {
            assert_eq!(take(&mut c, 33), pk(b).serialize());
        }
        assert_eq!(take(&mut c, 3), [5, 1, 1], "opener: remote (the peer funded)");
        assert_eq!(take(&mut c, 2), [7, 2]);
        assert_eq!(take(&mut c, 2), 720u16.to_be_bytes(), "the delay on our outputs");
        assert!(c.is_empty());
    }

    #[test]
    fn replica_names_carry_no_password() {
        assert_eq!(
            replica_name("postgres://warden:s3cret@db.example:5432/warden?sslmode=require"),
            "postgres://db.example:5432/warden"
        );
        let kv = replica_name("host=/tmp port=5433 user=warden password=s3cret dbname=w");
        assert!(!kv.contains("s3cret") && kv.contains("port=5433"), "{kv}");
    }
}
