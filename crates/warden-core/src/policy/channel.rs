//! Rules on a channel's parameters, checked at `setup_channel`.

use super::{ensure, Limits, PolicyError, Rule};
use crate::channel::ChannelSetup;

/// Checks a channel's setup: both `to_self_delay`s within the limits
/// (`channel-delay-range`), the channel value within the limit (`channel-size-max`) and a safe
/// commitment format (`channel-safe-type`).
pub fn check_setup(limits: &Limits, setup: &ChannelSetup) -> Result<(), PolicyError> {
    setup.channel_type()?;
    let range = limits.min_to_self_delay..=limits.max_to_self_delay;
    for (who, delay) in
        [("our", setup.holder_selected_delay), ("the peer's", setup.counterparty_selected_delay)]
    {
        ensure!(
            range.contains(&delay),
            Rule::ChannelDelayRange,
            "{who} to_self_delay of {delay} blocks is outside {}..={}",
            limits.min_to_self_delay,
            limits.max_to_self_delay
        );
    }
    ensure!(
        setup.channel_value <= limits.max_channel_value,
        Rule::ChannelSizeMax,
        "channel value {} is above the limit of {}",
        setup.channel_value,
        limits.max_channel_value
    );
    Ok(())
}
