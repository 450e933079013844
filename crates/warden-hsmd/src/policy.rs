//! The policy in force and what it did: the operator's [`PolicyConfig`] plus a [`PolicyLog`]
//! of refusals and demoted warnings (counted by rule, the latest kept for `status`, each
//! written to the status log as it happens).
//!
//! A demoted rule never passes silently: its refusal becomes a warning that is logged loudly
//! (Core Lightning's `status_log` at level `unusual`) and counted. A refusal is logged at level
//! `broken`, the level lightningd reserves for what an operator must look at.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};

use warden_core::policy::{PolicyConfig, PolicyError, Rule};

/// How many of the latest events [`PolicyLog::recent`] keeps.
pub const RECENT_EVENTS: usize = 32;

/// Whether an event refused the request or only warned (a demoted rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The request was refused.
    Refused,
    /// A demoted rule would have refused; the request went on.
    Warned,
}

/// One refusal or warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyEvent {
    /// Refused or warned.
    pub kind: EventKind,
    /// The rule and what it saw (never a secret).
    pub error: PolicyError,
}

impl fmt::Display for PolicyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            EventKind::Refused => write!(f, "policy: {}", self.error),
            EventKind::Warned => write!(
                f,
                "policy WARNING (demoted by the operator, NOT enforced) {}: {}",
                self.error.rule.tag(),
                self.error.detail
            ),
        }
    }
}

/// Where events are written as they happen (the server's status log).
pub type EventSink = Arc<dyn Fn(&PolicyEvent) + Send + Sync>;

#[derive(Debug, Default)]
struct Counts {
    refused: BTreeMap<Rule, u64>,
    warned: BTreeMap<Rule, u64>,
    recent: VecDeque<PolicyEvent>,
}

/// Refusals and warnings, counted by rule.
#[derive(Default)]
pub struct PolicyLog {
    counts: Mutex<Counts>,
    sink: OnceLock<EventSink>,
}

impl fmt::Debug for PolicyLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyLog").field("counts", &self.counts).finish_non_exhaustive()
    }
}

impl PolicyLog {
    /// Sets where events are written; only the first call has an effect.
    pub fn set_sink(&self, sink: EventSink) {
        let _ = self.sink.set(sink);
    }

    /// Records `event`, and writes it to the sink.
    pub fn record(&self, event: PolicyEvent) {
        if let Some(sink) = self.sink.get() {
            sink(&event);
        }
        // A poisoned lock only means a thread panicked while counting; the counts stay usable.
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let by_rule = match event.kind {
            EventKind::Refused => &mut counts.refused,
            EventKind::Warned => &mut counts.warned,
        };
        *by_rule.entry(event.error.rule).or_default() += 1;
        if counts.recent.len() == RECENT_EVENTS {
            counts.recent.pop_front();
        }
        counts.recent.push_back(event);
    }

    /// Refusals so far, by rule.
    pub fn refusals(&self) -> BTreeMap<Rule, u64> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).refused.clone()
    }

    /// Warnings (demoted refusals) so far, by rule.
    pub fn warnings(&self) -> BTreeMap<Rule, u64> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).warned.clone()
    }

    /// The latest events, oldest first.
    pub fn recent(&self) -> Vec<PolicyEvent> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).recent.iter().cloned().collect()
    }
}

/// The policy in force: the configuration (reached through `Deref`) and its log.
#[derive(Debug)]
pub struct Policy {
    config: PolicyConfig,
    log: PolicyLog,
}

impl Policy {
    /// `config`, with an empty log.
    pub fn new(config: PolicyConfig) -> Policy {
        Policy { config, log: PolicyLog::default() }
    }

    /// The configuration.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// What the policy refused and warned about.
    pub fn log(&self) -> &PolicyLog {
        &self.log
    }

    /// Applies the operator's filter to a check's outcome: a demoted refusal is logged as a
    /// warning and passes; any other refusal is returned (the caller's request fails, and
    /// [`Policy::refused`] records it once it leaves the signer).
    pub fn enforce(&self, outcome: Result<(), PolicyError>) -> Result<(), PolicyError> {
        match self.config.enforcement.apply(outcome)? {
            Some(error) => {
                crate::audit::note_warning(error.rule.tag());
                self.log.record(PolicyEvent { kind: EventKind::Warned, error });
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Records a refusal on its way out to the client.
    pub fn refused(&self, error: &PolicyError) {
        self.log.record(PolicyEvent { kind: EventKind::Refused, error: error.clone() });
    }
}

impl Deref for Policy {
    type Target = PolicyConfig;

    fn deref(&self) -> &PolicyConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demoted_refusals_warn_and_are_counted_others_refuse() {
        let mut config = PolicyConfig::test_network();
        config.enforcement.demote("channel-delay-range").unwrap();
        let policy = Policy::new(config);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink_seen = Arc::clone(&seen);
        policy.log().set_sink(Arc::new(move |e: &PolicyEvent| {
            sink_seen.lock().unwrap().push(e.to_string());
        }));

        let soft = PolicyError::new(Rule::ChannelDelayRange, "delay 3 below 144");
        assert_eq!(policy.enforce(Err(soft)), Ok(()));
        let hard = PolicyError::new(Rule::ChannelSizeMax, "too big");
        assert_eq!(policy.enforce(Err(hard.clone())), Err(hard.clone()));
        policy.refused(&hard);
        assert_eq!(policy.enforce(Ok(())), Ok(()));

        assert_eq!(policy.log().warnings(), BTreeMap::from([(Rule::ChannelDelayRange, 1)]));
        assert_eq!(policy.log().refusals(), BTreeMap::from([(Rule::ChannelSizeMax, 1)]));
        let lines = seen.lock().unwrap().clone();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("NOT enforced") && lines[0].contains("channel-delay-range"));
        assert!(lines[1].contains("channel-size-max"));
    }

    #[test]
    fn recent_keeps_the_latest_events() {
        let policy = Policy::new(PolicyConfig::mainnet());
        for i in 0..RECENT_EVENTS + 5 {
            policy.refused(&PolicyError::new(Rule::CloseValue, format!("event {i}")));
        }
        let recent = policy.log().recent();
        assert_eq!(recent.len(), RECENT_EVENTS);
        assert_eq!(recent[0].error.detail, "event 5");
        assert_eq!(policy.log().refusals()[&Rule::CloseValue], (RECENT_EVENTS + 5) as u64);
    }
}
