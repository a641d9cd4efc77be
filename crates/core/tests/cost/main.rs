//! The cost test (issue 18): instructions per received message, counted by callgrind, for each
//! workload of workloads.rs, against the budgets in crates/core/cost-budgets.toml. A workload
//! more than 3% over its budget fails the test, which names it, says by how much and how to
//! update the budget. See docs/benchmarks.md, "The cost test".
//!
//! Counting instructions rather than timing makes the test deterministic on a shared machine:
//! the same binary gives the same count on every run.

#[path = "../common/mod.rs"]
mod common;

mod budgets;
mod callgrind;
mod workloads;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use workloads::{workload, Workload, REDUNDANT_SINGLE, WORKLOADS};

/// Every workload delivers what it should, natively: the cost test measures working code.
#[test]
fn workloads_deliver_their_values() {
    for w in &WORKLOADS {
        // Past the end of every packet set (Sparkplug's seq wraps after 256).
        w.feed().run(300);
    }
}

#[test]
fn the_budget_file_names_every_workload_once() {
    let budgets = budgets::load().unwrap();
    let names: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
    let listed: Vec<&str> = budgets.keys().map(String::as_str).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(
        listed,
        sorted,
        "{}: one line `name = instructions` per workload",
        budgets::FILE
    );
}

/// The measured run: started by `cost_within_budgets` under callgrind, with the workload and
/// the message count in the environment.
#[test]
#[ignore = "the measured run of cost_within_budgets, which starts it under callgrind"]
fn measured_run() {
    let name = std::env::var(callgrind::WORKLOAD_VAR).unwrap();
    let messages: u64 = std::env::var(callgrind::MESSAGES_VAR)
        .unwrap()
        .parse()
        .unwrap();
    let w = workload(&name).unwrap_or_else(|| panic!("no workload {name}"));
    w.feed().run(messages);
    // Ends here, before the harness times and reports the test: formatting a different
    // duration each run would add a few instructions of noise to the count.
    std::process::exit(0);
}

/// Instructions per message of `w`: the runs of n and 2n messages, subtracted.
fn per_message(
    scratch: &callgrind::Scratch,
    preload: Option<&Path>,
    w: &Workload,
) -> Result<u64, String> {
    let once = callgrind::instructions(scratch, preload, w.name, w.messages)?;
    let twice = callgrind::instructions(scratch, preload, w.name, 2 * w.messages)?;
    let more = twice.checked_sub(once).ok_or_else(|| {
        format!(
            "{}: {} messages took fewer instructions ({twice}) than {} ({once})",
            w.name,
            2 * w.messages,
            w.messages
        )
    })?;
    Ok((more as f64 / w.messages as f64).round() as u64)
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "the budgets are instructions of release builds: cargo test --release"
)]
fn cost_within_budgets() {
    let version = callgrind::available().unwrap_or_else(|why| {
        panic!(
            "the cost test needs valgrind's callgrind: {why}. Install it (Debian: apt-get \
             install valgrind; tests/run.sh installs it)"
        )
    });
    let budgets = budgets::load().unwrap();
    let scratch = callgrind::Scratch::new();
    // Without the fixed seeds the counts still hold, to within ~0.1%; the report says so.
    let (preload, seeds) = match callgrind::fixed_random(&scratch) {
        Ok(library) => (Some(library), "fixed hash seeds".to_string()),
        Err(why) => (
            None,
            format!("random hash seeds, counts vary by up to ~0.1%: {why}"),
        ),
    };
    // The workloads on as many threads as there are cores, each running its two valgrinds.
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some(w) = WORKLOADS.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let r = per_message(&scratch, preload.as_deref(), w);
                    results.lock().unwrap().push((w, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(w, _)| WORKLOADS.iter().position(|x| x.name == w.name));

    let mut report = vec![
        format!("cost test ({version}, {seeds}), instructions per received message:"),
        budgets::header(),
    ];
    let mut failures = Vec::new();
    let measured_of = |name: &str| {
        results
            .iter()
            .find_map(|(w, r)| (w.name == name).then(|| r.as_ref().ok().copied()).flatten())
    };
    let (twice, single) = REDUNDANT_SINGLE;
    let ratio = match (measured_of(twice), measured_of(single)) {
        (Some(t), Some(s)) if s > 0 => Some(format!(
            "{twice} / {single}: {:.2}x (issue 21: a redundant line receiving every message \
             twice, at most 1.5x a single line receiving it once)",
            t as f64 / s as f64
        )),
        _ => None,
    };
    for (w, r) in results {
        match r {
            Ok(measured) => {
                let Some(&budget) = budgets.get(w.name) else {
                    failures.push(format!(
                        "workload `{}` has no budget: add `{} = {measured}` to {}",
                        w.name,
                        w.name,
                        budgets::FILE
                    ));
                    continue;
                };
                let judged = budgets::Judged {
                    name: w.name,
                    what: w.what,
                    measured,
                    budget,
                };
                report.push(judged.line());
                if judged.over() {
                    failures.push(judged.failure());
                }
            }
            Err(e) => failures.push(e),
        }
    }
    report.extend(ratio);
    let report = report.join("\n");
    eprintln!("{report}");
    assert!(failures.is_empty(), "{report}\n\n{}", failures.join("\n\n"));
}
