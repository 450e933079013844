//! The permission sets lightningd asks for when it opens an hsmd client for each subdaemon.
//!
//! Each set is what Core Lightning's lightningd passes to `hsm_get_client_fd` (per-channel
//! clients: the peer's id and the channel's database id) or `hsm_get_global_fd` (our own id,
//! database id 0):
//!
//! | subdaemon | source (Core Lightning) | permissions |
//! |---|---|---|
//! | `openingd` | `lightningd/opening_control.c`, `peer_start_openingd` | `COMMITMENT_POINT \| SIGN_REMOTE_TX` |
//! | `dualopend` | `lightningd/dual_open_control.c`, `start_fresh_dualopend` / `peer_restart_dualopend` | `COMMITMENT_POINT \| SIGN_REMOTE_TX \| SIGN_WILL_FUND_OFFER \| LOCK_OUTPOINT` (see [`DUALOPEND`]) |
//! | `channeld` | `lightningd/channel_control.c`, `peer_start_channeld` | `SIGN_GOSSIP \| ECDH \| COMMITMENT_POINT \| SIGN_REMOTE_TX \| SIGN_ONCHAIN_TX \| SIGN_CLOSING_TX \| SIGN_SPLICE_TX \| LOCK_OUTPOINT` |
//! | `closingd` | `lightningd/closing_control.c`, `peer_start_closingd` | `SIGN_CLOSING_TX \| COMMITMENT_POINT` |
//! | `onchaind` | `lightningd/onchain_control.c`, `onchaind_funding_spent` | `SIGN_ONCHAIN_TX \| COMMITMENT_POINT` |
//! | `connectd` | `lightningd/connect_control.c`, `connectd_init` (global) | `ECDH` |
//! | `gossipd` | `lightningd/gossip_control.c`, `gossip_init` (global) | `ECDH \| SIGN_GOSSIP` |
//!
//! lightningd itself uses the master connection, which holds every permission.

use warden_wire::Permissions;

const fn union(sets: &[Permissions]) -> Permissions {
    let mut bits = 0;
    let mut rest = sets;
    while let [first, tail @ ..] = rest {
        bits |= first.0;
        rest = tail;
    }
    Permissions(bits)
}

/// `lightning_openingd` (v1 channel establishment).
pub const OPENINGD: Permissions =
    union(&[Permissions::COMMITMENT_POINT, Permissions::SIGN_REMOTE_TX]);

/// `lightning_dualopend` (v2 channel establishment). The `dual_open_control.c` found in the
/// reference index (an older release) passes the first three; current `openingd/dualopend.c`
/// calls `lock_signer_outpoint` (`check_outpoint`, `lock_outpoint`) on its hsmd connection,
/// which hsmd only allows with `LOCK_OUTPOINT`, so current releases must pass it too.
pub const DUALOPEND: Permissions = union(&[
    Permissions::COMMITMENT_POINT,
    Permissions::SIGN_REMOTE_TX,
    Permissions::SIGN_WILL_FUND_OFFER,
    Permissions::LOCK_OUTPOINT,
]);

/// `lightning_channeld` (normal operation, splices, shutdown, watchtower penalties).
pub const CHANNELD: Permissions = union(&[
    Permissions::SIGN_GOSSIP,
    Permissions::ECDH,
    Permissions::COMMITMENT_POINT,
    Permissions::SIGN_REMOTE_TX,
    Permissions::SIGN_ONCHAIN_TX,
    Permissions::SIGN_CLOSING_TX,
    Permissions::SIGN_SPLICE_TX,
    Permissions::LOCK_OUTPOINT,
]);

/// `lightning_closingd` (mutual close negotiation).
pub const CLOSINGD: Permissions =
    union(&[Permissions::SIGN_CLOSING_TX, Permissions::COMMITMENT_POINT]);

/// `lightning_onchaind` (after the funding output is spent; lightningd signs the sweeps on
/// the master connection with the `sign_any_*` messages).
pub const ONCHAIND: Permissions =
    union(&[Permissions::SIGN_ONCHAIN_TX, Permissions::COMMITMENT_POINT]);

/// `lightning_connectd` (a global client, with our own node id and database id 0).
pub const CONNECTD: Permissions = Permissions::ECDH;

/// `lightning_gossipd` (a global client, with our own node id and database id 0).
pub const GOSSIPD: Permissions = union(&[Permissions::ECDH, Permissions::SIGN_GOSSIP]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_have_the_expected_bits() {
        assert_eq!(OPENINGD.0, 8 | 16);
        assert_eq!(DUALOPEND.0, 8 | 16 | 64 | 256);
        assert_eq!(CHANNELD.0, 2 | 1 | 8 | 16 | 4 | 32 | 128 | 256);
        assert_eq!(CLOSINGD.0, 32 | 8);
        assert_eq!(ONCHAIND.0, 4 | 8);
        assert_eq!(CONNECTD.0, 1);
        assert_eq!(GOSSIPD.0, 1 | 2);
        assert!(!CHANNELD.contains(Permissions::MASTER));
    }
}
