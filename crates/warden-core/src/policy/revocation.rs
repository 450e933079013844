//! Revocation rules: when our secret for commitment `n` may be released
//! (`revoke-new-commitment-validated`, `revoke-after-broadcast`) and when the peer's secret is
//! accepted (`revoke-peer-secret`), checked on the channel's state before
//! [`crate::channel::ChannelState`] records the revocation.

use crate::channel::state::{number, CounterpartySide, HolderSide};
use crate::keys::PerCommitmentPoint;
use crate::policy::{ensure, PolicyError, Rule};
use crate::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing};
use crate::shachain::SecretStore;

/// Whether a revocation changes anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// The commitment was already revoked: the same answer again, nothing changes.
    Repeated,
    /// The next commitment to revoke: record it.
    New,
}

/// `revoke_commitment_tx` of our commitment `n`: never after it was signed for broadcast
/// (`revoke-after-broadcast`: the hole where a node validates n+1, has n signed for
/// broadcast, then revokes n), never before commitment n+1 was validated with the peer's
/// signatures (`revoke-new-commitment-validated`), and in order (`commitment-number`). A
/// repeated revocation of an already revoked number gets the same secret.
pub fn check_holder_revocation(holder: &HolderSide, n: u64) -> Result<Revocation, PolicyError> {
    ensure!(
        holder.broadcast_signed.is_none_or(|b| b > n),
        Rule::RevokeAfterBroadcast,
        "our commitment {n} was signed for broadcast and can no longer be revoked"
    );
    if n < holder.revoked_below {
        return Ok(Revocation::Repeated);
    }
    ensure!(
        n.checked_add(1).is_some_and(|next| next < holder.next_number),
        Rule::RevokeNewCommitmentValidated,
        "our commitment {n} revoked before commitment {} was validated",
        n.saturating_add(1)
    );
    ensure!(
        n == holder.revoked_below,
        Rule::CommitmentNumber,
        "revocation of our commitment {n} skips commitment {}",
        holder.revoked_below
    );
    Ok(Revocation::New)
}

/// `validate_revocation` of the peer's commitment `n` with `secret`: in order
/// (`commitment-number`: the next unrevoked one, whose successor we signed), the secret of the
/// point we signed `n` with (`point`), and chaining with every secret before it in BOLT-03's
/// compact storage (`revoke-peer-secret`). Returns the secret store with it added for a new
/// revocation, `None` for a repeated one (which must carry the same secret).
pub fn check_peer_revocation<C: Signing>(
    secp: &Secp256k1<C>,
    counterparty: &CounterpartySide,
    point: Option<PerCommitmentPoint>,
    n: u64,
    secret: [u8; 32],
) -> Result<Option<SecretStore>, PolicyError> {
    let index = number(n)?.shachain_index();
    let c = counterparty;
    if n < c.revoked_below {
        ensure!(
            c.secrets.get(index) == Some(secret),
            Rule::RevokePeerSecret,
            "the peer's commitment {n} was revoked with another secret"
        );
        return Ok(None);
    }
    ensure!(
        n == c.revoked_below,
        Rule::CommitmentNumber,
        "revocation of the peer's commitment {n} skips commitment {}",
        c.revoked_below
    );
    ensure!(
        n.checked_add(1).is_some_and(|next| next < c.next_number),
        Rule::CommitmentNumber,
        "the peer revoked its commitment {n} before we signed its successor"
    );
    let key = SecretKey::from_slice(&secret).map_err(|_| {
        PolicyError::new(Rule::RevokePeerSecret, "the peer's secret is not a valid key")
    })?;
    let derived = PublicKey::from_secret_key(secp, &key);
    ensure!(
        point.map(|p| p.0) == Some(derived),
        Rule::RevokePeerSecret,
        "the peer's secret for commitment {n} does not match the point we signed with"
    );
    let mut secrets = c.secrets.clone();
    secrets.insert(index, secret).map_err(|e| {
        PolicyError::new(Rule::RevokePeerSecret, alloc::format!("the peer's secret: {e}"))
    })?;
    Ok(Some(secrets))
}
