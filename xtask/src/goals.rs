//! The table of every figure that has a goal: measured, beside what it is compared with, its
//! ratio, its goal, met or not — written at the top of docs/BENCHMARKS.md and printed.

use std::fmt::Write as _;

/// What a figure must reach.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Goal {
    /// At most this many times its floor.
    Ratio(f64),
    /// At most this many milliseconds.
    Millis(f64),
}

/// One figure.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) what: String,
    /// Mean, in milliseconds.
    pub(crate) ms: f64,
    /// What it is compared with, and its mean in milliseconds.
    pub(crate) floor: Option<(String, f64)>,
    pub(crate) goal: Goal,
    /// Shown when the goal is not met: what stands between the figure and its goal, and what
    /// was tried.
    pub(crate) why: String,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        self.floor.as_ref().map(|(_, f)| self.ms / f)
    }

    pub(crate) fn met(&self) -> bool {
        match self.goal {
            Goal::Ratio(r) => self.ratio().is_some_and(|x| x <= r),
            Goal::Millis(m) => self.ms <= m,
        }
    }
}

/// The rows as a markdown table.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut md = String::from(
        "| figure | measured | compared with | ratio | goal | |\n|---|---:|---|---:|---:|---|\n",
    );
    for r in rows {
        let (floor, ratio) = match (&r.floor, r.ratio()) {
            (Some((what, ms)), Some(x)) => (format!("{what}: {ms:.2} ms"), format!("{x:.2}×")),
            _ => ("—".to_owned(), "—".to_owned()),
        };
        let goal = match r.goal {
            Goal::Ratio(x) => format!("≤ {x}×"),
            Goal::Millis(m) => format!("≤ {m} ms"),
        };
        let _ = writeln!(
            md,
            "| {} | {:.2} ms | {floor} | {ratio} | {goal} | {} |",
            r.what,
            r.ms,
            if r.met() { "met" } else { "**not met**" }
        );
    }
    md
}

/// The rows whose goal is not met, each with why, as markdown paragraphs (empty when every goal
/// is met).
pub(crate) fn not_met(rows: &[Row]) -> String {
    let mut md = String::new();
    for r in rows.iter().filter(|r| !r.met()) {
        let _ = writeln!(md, "- **{}** ({:.2} ms): {}", r.what, r.ms, r.why);
    }
    md
}
