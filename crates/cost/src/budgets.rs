//! A budget file (`cost-budgets.toml` of a crate with a cost test): one line per workload, the
//! instructions one message may cost; and the verdict on a measured cost.

use std::collections::BTreeMap;
use std::path::Path;

/// How far over its budget a workload may go before the test fails: the counts are exact, so
/// this is room for a compiler update or other CPU features, not for noise.
pub const TOLERANCE_PERCENT: f64 = 3.0;

/// Below its budget by more than this, a workload's report line suggests lowering the budget.
const LOWER_PERCENT: f64 = 5.0;

/// A budget file's workloads and their instructions per message.
pub struct Budgets {
    /// The file as reports name it, from the top of the repository.
    pub file: &'static str,
    pub by_name: BTreeMap<String, u64>,
}

impl Budgets {
    /// Reads the budget file of the crate whose directory is `manifest_dir` (its
    /// `CARGO_MANIFEST_DIR`): `cost-budgets.toml` there, shown as `file` (its path from the top
    /// of the repository).
    pub fn of_crate(manifest_dir: &str, file: &'static str) -> Result<Budgets, String> {
        Budgets::load(&Path::new(manifest_dir).join("cost-budgets.toml"), file)
    }

    /// Reads `path`, shown as `file` (its path from the top of the repository).
    pub fn load(path: &Path, file: &'static str) -> Result<Budgets, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
        let by_name = toml::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
        Ok(Budgets { file, by_name })
    }
}

/// One workload's measured cost against its budget.
pub struct Judged {
    /// The budget file.
    pub file: &'static str,
    pub name: &'static str,
    /// What the workload stands for.
    pub what: &'static str,
    pub measured: u64,
    pub budget: u64,
}

impl Judged {
    /// How far the measured cost is over (positive) or under the budget, in percent.
    pub fn percent(&self) -> f64 {
        (self.measured as f64 / self.budget.max(1) as f64 - 1.0) * 100.0
    }

    pub fn over(&self) -> bool {
        self.percent() > TOLERANCE_PERCENT
    }

    /// The report line: name, measured, budget, difference, and what to do.
    pub fn line(&self) -> String {
        let advice = if self.over() {
            "OVER BUDGET"
        } else if self.percent() < -LOWER_PERCENT {
            "ok; cheaper now: lower the budget to the measured number"
        } else {
            "ok"
        };
        format!(
            "{:<20} {:>10} {:>10} {:>+7.1}%  {advice}",
            self.name,
            self.measured,
            self.budget,
            self.percent()
        )
    }

    /// What a failure says about this workload: by how much, and how to update the budget.
    pub fn failure(&self) -> String {
        format!(
            "workload `{name}` ({what}) costs {measured} instructions per message, {pct:.1}% over its \
             budget of {budget} (more than {TOLERANCE_PERCENT}% over fails). Find what made \
             the receive path slower (docs/benchmarks.md, \"The cost test\": callgrind_annotate \
             shows where). If the cost is wanted, raise its line in {file} to \
             `{name} = {measured}` and give the reason in the commit message: a raised budget \
             without a reason is not merged.",
            file = self.file,
            name = self.name,
            what = self.what,
            measured = self.measured,
            budget = self.budget,
            pct = self.percent(),
        )
    }
}

/// Header of the report table.
pub fn header() -> String {
    format!(
        "{:<20} {:>10} {:>10} {:>8}",
        "workload", "instr/msg", "budget", "diff"
    )
}
