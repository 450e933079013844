//! Rules on a channel's parameters, checked at `setup_channel`: delays, size, type, and our
//! upfront shutdown script.

use alloc::string::String;

use bitcoin::Script;

use super::onchain::Allowlist;
use alloc::vec::Vec;

use super::{check, ensure, first_refusal, Limits, PolicyError, Rule};
use crate::channel::ChannelSetup;

/// Checks a channel's setup: both `to_self_delay`s within the limits
/// (`channel-delay-range`), the channel value within the limit (`channel-size-max`) and a safe
/// commitment format (`channel-safe-type`). The first refusal; [`setup_refusals`] gives all.
pub fn check_setup(limits: &Limits, setup: &ChannelSetup) -> Result<(), PolicyError> {
    first_refusal(setup_refusals(limits, setup))
}

/// Every refusal of [`check_setup`], each rule checked whatever the others found (so that a
/// demoted rule never hides the ones after it).
pub fn setup_refusals(limits: &Limits, setup: &ChannelSetup) -> Vec<PolicyError> {
    let mut out = Vec::new();
    if let Err(e) = setup.channel_type() {
        out.push(e);
    }
    let range = limits.min_to_self_delay..=limits.max_to_self_delay;
    for (who, delay) in
        [("our", setup.holder_selected_delay), ("the peer's", setup.counterparty_selected_delay)]
    {
        check!(
            out,
            range.contains(&delay),
            Rule::ChannelDelayRange,
            "{who} to_self_delay of {delay} blocks is outside {}..={}",
            limits.min_to_self_delay,
            limits.max_to_self_delay
        );
    }
    check!(
        out,
        setup.channel_value <= limits.max_channel_value,
        Rule::ChannelSizeMax,
        "channel value {} is above the limit of {}",
        setup.channel_value,
        limits.max_channel_value
    );
    out
}

/// `channel-shutdown-script`: our upfront shutdown script, when there is one, pays our wallet
/// or the allowlist — otherwise a mutual close of the channel could only pay a stranger.
///
/// `is_ours(script, index)` says whether `script` is a wallet script: when lightningd names
/// the wallet index of the script (`local_shutdown_wallet_index`, sent when `close_to` is one
/// of our addresses) the key at that index is derived and its scripts compared; a script
/// without an index may still be one of the wallet's first indexes.
pub fn check_shutdown_script(
    setup: &ChannelSetup,
    allowlist: &Allowlist,
    is_ours: impl Fn(&Script, Option<u32>) -> bool,
) -> Result<(), PolicyError> {
    let Some(script) = setup.holder_shutdown_script.as_ref() else {
        return Ok(());
    };
    let index = setup.holder_shutdown_wallet_index;
    ensure!(
        allowlist.contains(script) || is_ours(script, index),
        Rule::ChannelShutdownScript,
        "our upfront shutdown script {script} is neither our wallet's{} nor allowlisted",
        match index {
            Some(i) => alloc::format!(" (wallet index {i})"),
            None => String::new(),
        }
    );
    Ok(())
}
