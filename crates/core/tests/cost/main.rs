//! The cost test (issue 18): instructions per received message, counted by callgrind, for each
//! workload of workloads.rs, against the budgets in crates/core/cost-budgets.toml. A workload
//! more than 3% over its budget fails the test, which names it, says by how much and how to
//! update the budget. The harness (two runs under callgrind, the budget file, the verdict) is
//! crates/cost; see docs/benchmarks.md, "The cost test".

#[path = "../common/mod.rs"]
mod common;

mod workloads;

use mqtt_line_cost::{measure, same_names, Budgets, Measured};
use workloads::{workload, REDUNDANT_SINGLE, WORKLOADS};

const BUDGET_FILE: &str = "crates/core/cost-budgets.toml";

fn budgets() -> Budgets {
    Budgets::of_crate(env!("CARGO_MANIFEST_DIR"), BUDGET_FILE).unwrap()
}

/// The workloads as the harness runs them.
fn measured() -> Vec<mqtt_line_cost::Workload> {
    WORKLOADS
        .iter()
        .map(|w| mqtt_line_cost::Workload {
            name: w.name,
            what: w.what,
            messages: w.messages,
        })
        .collect()
}

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
    same_names(&budgets(), &measured()).unwrap();
}

/// The measured run: started by `cost_within_budgets` under callgrind, with the workload and
/// the message count in the environment.
#[test]
#[ignore = "the measured run of cost_within_budgets, which starts it under callgrind"]
fn measured_run() {
    let (name, messages) = mqtt_line_cost::callgrind::requested().unwrap();
    let w = workload(&name).unwrap_or_else(|| panic!("no workload {name}"));
    w.feed().run(messages);
    // Ends here, before the harness times and reports the test: formatting a different
    // duration each run would add a few instructions of noise to the count.
    std::process::exit(0);
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "the budgets are instructions of release builds: cargo test --release"
)]
fn cost_within_budgets() {
    let how = Measured {
        test: "measured_run",
        unit: "received message",
    };
    let mut verdict = measure(&measured(), &budgets(), how);
    let of = |name: &str| {
        verdict
            .measured
            .iter()
            .find_map(|&(n, m)| (n == name).then_some(m))
    };
    let (twice, single) = REDUNDANT_SINGLE;
    if let (Some(t), Some(s)) = (of(twice), of(single)) {
        verdict.report.push(format!(
            "{twice} / {single}: {:.2}x (issue 21: a redundant line receiving every message \
             twice, at most 1.5x a single line receiving it once)",
            t as f64 / s.max(1) as f64
        ));
    }
    verdict.assert();
}
