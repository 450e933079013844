//! Rules on the node as a whole: `node-limits`.

use super::{ensure, Limits, PolicyError, Rule};

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
}
