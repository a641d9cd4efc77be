//! The harness of the cost tests (issue 18): each workload of a test binary runs twice under
//! valgrind's callgrind, with n and 2n messages, and the difference divided by n is its cost
//! in instructions per message, judged against the test's budget file. The core's receive path
//! (crates/core/tests/cost) and the plugin's hand-over to the host (crates/plugin, `event_cost`)
//! use it. See docs/benchmarks.md, "The cost test".
//!
//! Counting instructions rather than timing makes the tests deterministic on a shared machine:
//! the same binary gives the same count on every run.

pub mod budgets;
pub mod callgrind;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub use budgets::{Budgets, Judged};

/// A workload as the harness runs it.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Its key in the budget file.
    pub name: &'static str,
    /// What it stands for, in the report.
    pub what: &'static str,
    /// Messages of the shorter measured run (the longer has twice as many).
    pub messages: u64,
}

/// What a cost test found: the report, each workload's cost, and what fails.
pub struct Verdict {
    pub report: Vec<String>,
    pub measured: Vec<(&'static str, u64)>,
    pub failures: Vec<String>,
}

impl Verdict {
    /// Prints the report and fails the test with every failure.
    pub fn assert(self) {
        let report = self.report.join("\n");
        eprintln!("{report}");
        assert!(
            self.failures.is_empty(),
            "{report}\n\n{}",
            self.failures.join("\n\n")
        );
    }
}

/// How a test binary is measured: its ignored test that runs one workload, and what one
/// message is in the report's title.
pub struct Measured<'a> {
    /// The measured test's full path in the binary (`measured_run`, `ffi::event_cost::...`).
    pub test: &'a str,
    pub unit: &'a str,
}

/// Measures every workload (on as many threads as there are cores, at most four) and judges
/// each against `budgets`. Panics with how to install valgrind when it cannot be run.
pub fn measure(workloads: &[Workload], budgets: &Budgets, how: Measured) -> Verdict {
    let version = callgrind::available().unwrap_or_else(|why| {
        panic!(
            "the cost test needs valgrind's callgrind: {why}. Install it (Debian: apt-get \
             install valgrind; tests/run.sh installs it)"
        )
    });
    let scratch = callgrind::Scratch::new();
    // Without the fixed seeds the counts still hold, to within ~0.1%; the report says so.
    let (preload, seeds) = match callgrind::fixed_random(&scratch) {
        Ok(library) => (Some(library), "fixed hash seeds".to_string()),
        Err(why) => (
            None,
            format!("random hash seeds, counts vary by up to ~0.1%: {why}"),
        ),
    };
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some(w) = workloads.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let r = per_message(&scratch, preload.as_deref(), how.test, w);
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((w, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(w, _)| workloads.iter().position(|x| x.name == w.name));

    let mut verdict = Verdict {
        report: vec![
            format!(
                "cost test ({version}, {seeds}), instructions per {}:",
                how.unit
            ),
            budgets::header(),
        ],
        measured: Vec::new(),
        failures: Vec::new(),
    };
    for (w, r) in results {
        let measured = match r {
            Ok(measured) => measured,
            Err(e) => {
                verdict.failures.push(e);
                continue;
            }
        };
        verdict.measured.push((w.name, measured));
        let Some(&budget) = budgets.by_name.get(w.name) else {
            verdict.failures.push(format!(
                "workload `{}` has no budget: add `{} = {measured}` to {}",
                w.name, w.name, budgets.file
            ));
            continue;
        };
        let judged = Judged {
            file: budgets.file,
            name: w.name,
            what: w.what,
            measured,
            budget,
        };
        verdict.report.push(judged.line());
        if judged.over() {
            verdict.failures.push(judged.failure());
        }
    }
    verdict
}

/// Instructions per message of `w`: the runs of n and 2n messages, subtracted.
fn per_message(
    scratch: &callgrind::Scratch,
    preload: Option<&Path>,
    test: &str,
    w: &Workload,
) -> Result<u64, String> {
    let once = callgrind::instructions(scratch, preload, test, w.name, w.messages)?;
    let twice = callgrind::instructions(scratch, preload, test, w.name, 2 * w.messages)?;
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

/// The names a budget file lists against those of the workloads: `Err` says what differs.
pub fn same_names(budgets: &Budgets, workloads: &[Workload]) -> Result<(), String> {
    let mut names: Vec<&str> = workloads.iter().map(|w| w.name).collect();
    names.sort_unstable();
    let listed: Vec<&str> = budgets.by_name.keys().map(String::as_str).collect();
    if listed == names {
        Ok(())
    } else {
        Err(format!(
            "{} lists {listed:?}, the workloads are {names:?}: one line `name = instructions` \
             per workload",
            budgets.file
        ))
    }
}
