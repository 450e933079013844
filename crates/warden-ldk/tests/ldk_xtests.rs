#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::print_stdout, reason = "a test runner of its own (harness = false) reports here")]
//! LDK's exported functional tests (`lightning::get_xtests()`, feature `ldk-xtests`) run with
//! Warden as the signer of every node, through LDK's `SIGNER_FACTORY`.
//!
//! Each test runs on its own (the factory is a global), a panic is a failure unless the test
//! expects one, and every refusal Warden recorded during a failing test is printed with its
//! rule. The last line counts: `N passed, M failed`. Known failures, with the reason each
//! fails, are in `tests/ldk_xtests_known_failures.txt`; the runner fails (exit 1) when a test
//! outside that list fails. `WARDEN_XTESTS_FILTER=substring` runs only matching tests.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use lightning::util::test_utils::SIGNER_FACTORY;
use warden_ldk::ldk_test_utils::WardenSignerFactory;

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn known_failures() -> Vec<String> {
    include_str!("ldk_xtests_known_failures.txt")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| !name.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn main() {
    let factory = Arc::new(WardenSignerFactory::for_ldk_tests());
    SIGNER_FACTORY.set(factory.clone());
    std::panic::set_hook(Box::new(|info| {
        let location =
            info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        *LAST_PANIC.lock().unwrap() = Some(format!("{location}: {message}"));
    }));
    let filter = std::env::var("WARDEN_XTESTS_FILTER").ok();
    let known = known_failures();
    let mut tests = lightning::get_xtests();
    tests.sort_by_key(|t| t.test_name);
    let (mut passed, mut failed, mut unexpected) = (0usize, 0usize, Vec::new());
    let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
    for test in tests {
        if filter.as_deref().is_some_and(|f| !test.test_name.contains(f)) {
            continue;
        }
        *LAST_PANIC.lock().unwrap() = None;
        factory.take_refusals();
        let outcome = catch_unwind(AssertUnwindSafe(|| (test.test_fn)()));
        let panicked = outcome.is_err();
        let ok = panicked == test.should_panic;
        let refusals = factory.take_refusals();
        if ok {
            passed += 1;
            println!("ok      {}", test.test_name);
            let mut seen: Vec<String> = Vec::new();
            for r in &refusals {
                let line = format!("{} ({}: {})", r.error.rule, r.operation, r.error.detail);
                if !seen.contains(&line) {
                    println!("        refused, test passed: {line}");
                    seen.push(line);
                }
            }
        } else {
            failed += 1;
            let panic = LAST_PANIC.lock().unwrap().clone().unwrap_or_default();
            println!(
                "FAILED  {}\n        panic: {}",
                test.test_name,
                panic.lines().next().unwrap_or("")
            );
            let mut rules: Vec<String> = refusals
                .iter()
                .map(|r| format!("{} ({}: {})", r.error.rule, r.operation, r.error.detail))
                .collect();
            rules.dedup();
            for r in rules.iter().take(3) {
                println!("        refused: {r}");
            }
            if let Some(first) = refusals.first() {
                *by_rule
                    .entry(format!("{} in {}", first.error.rule, first.operation))
                    .or_default() += 1;
            } else {
                *by_rule.entry("no refusal".to_owned()).or_default() += 1;
            }
            if !known.iter().any(|k| k == test.test_name) {
                unexpected.push(test.test_name);
            }
        }
    }
    println!("\nfailures by first refusal:");
    for (rule, count) in &by_rule {
        println!("  {count:4}  {rule}");
    }
    if !unexpected.is_empty() {
        println!("\nfailing tests not in ldk_xtests_known_failures.txt:");
        for t in &unexpected {
            println!("  {t}");
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if !unexpected.is_empty() {
        std::process::exit(1);
    }
}
