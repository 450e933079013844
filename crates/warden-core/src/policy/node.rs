//! Rules on the node as a whole: `node-limits`, `node-unseal`.

use super::{ensure, Limits, PolicyError, Rule};

/// The context prefix of every blob sealed to the node-backup key (`warden seal`, the
/// `warden-backup` plugin): the only contexts whose keys the unseal request releases.
pub const NODE_BACKUP_CONTEXT_PREFIX: &[u8] = b"warden/node-backup/";

/// `node-unseal`: the keys of `contexts` are released only if every context is a node-backup
/// context ([`NODE_BACKUP_CONTEXT_PREFIX`]) and the release keeps the keys released in the
/// last hour (`released_last_hour`, not counting these) within
/// [`Limits::max_unseal_per_hour`].
pub fn check_unseal<'a>(
    limits: &Limits,
    contexts: impl IntoIterator<Item = &'a [u8]>,
    released_last_hour: u64,
) -> Result<(), PolicyError> {
    let mut asked: u64 = 0;
    for (i, context) in contexts.into_iter().enumerate() {
        ensure!(
            context.starts_with(NODE_BACKUP_CONTEXT_PREFIX),
            Rule::NodeUnseal,
            "item {i} asks for a key of context {:?}, which is not a node backup's",
            core::str::from_utf8(context).unwrap_or("<not UTF-8>")
        );
        asked = asked.saturating_add(1);
    }
    if let Some(max) = limits.max_unseal_per_hour {
        let total = released_last_hour.saturating_add(asked);
        ensure!(
            total <= max,
            Rule::NodeUnseal,
            "{asked} keys asked after {released_last_hour} released in the last hour, the \
             limit is {max} an hour",
        );
    }
    Ok(())
}

/// `node-limits`: a new channel is set up only while the node has fewer than
/// [`Limits::max_channels`] channels set up (`existing` of them, not counting the new one).
pub fn check_new_channel(limits: &Limits, existing: usize) -> Result<(), PolicyError> {
    ensure!(
        existing < limits.max_channels,
        Rule::NodeLimits,
        "the node already has {existing} channels, the limit is {}",
        limits.max_channels
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_a_count_of_existing_channels() {
        let l = Limits { max_channels: 2, ..Limits::mainnet() };
        assert!(check_new_channel(&l, 1).is_ok());
        assert_eq!(check_new_channel(&l, 2).err().map(|e| e.rule), Some(Rule::NodeLimits));
    }

    #[test]
    fn unseal_releases_only_node_backup_keys_within_the_hourly_limit() {
        let l = Limits { max_unseal_per_hour: Some(3), ..Limits::mainnet() };
        let backup: &[u8] = b"warden/node-backup/v1/db-write/1";
        assert!(check_unseal(&l, [backup, backup], 1).is_ok());
        let over = check_unseal(&l, [backup, backup], 2).unwrap_err();
        assert_eq!(over.rule, Rule::NodeUnseal);
        assert!(over.detail.contains("limit is 3"), "{}", over.detail);
        let other: &[u8] = b"warden/records";
        let wrong = check_unseal(&l, [backup, other], 0).unwrap_err();
        assert_eq!(wrong.rule, Rule::NodeUnseal);
        assert!(wrong.detail.contains("item 1"), "{}", wrong.detail);
        let unlimited = Limits { max_unseal_per_hour: None, ..Limits::mainnet() };
        assert!(check_unseal(&unlimited, [backup], u64::MAX).is_ok());
    }
}
