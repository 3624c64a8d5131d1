//! A batch of 20 (`fleet deploy --count 20`, grace 0) against 20 raw `tmux new-session` run one
//! after another — the backend's own start command line, as a deployment alone makes it — and
//! against 20 separate `fleet deploy` processes, interleaved in one run.

use std::path::Path;

use crate::procs::{Env, Stats, raw_tmux_start, time};

/// Members of each batch.
pub(crate) const MEMBERS: usize = 20;
/// Batches (and rounds of each floor).
const RUNS: usize = 8;
/// The goal: at most this many times the 20 raw starts.
pub(crate) const GOAL: f64 = 1.3;

/// What one run measured, in milliseconds per 20 agents.
pub(crate) struct Batch {
    /// `fleet deploy --count 20`, whole process.
    pub(crate) batch: Stats,
    /// 20 raw `tmux new-session`, one after another.
    pub(crate) raw: Stats,
    /// 20 `fleet deploy` processes, one after another.
    pub(crate) separate: Stats,
}

fn deploy<'a>(task: &'a str, count: &'a str) -> [&'a str; 14] {
    [
        "deploy",
        "--task",
        task,
        "--type",
        "bench",
        "--prompt",
        "p",
        "--allow-duplicate",
        "--count",
        count,
        "--startup-grace-ms",
        "0",
        "--",
        "sleep",
    ]
}

/// Runs the three, interleaved, each round in a task of its own (a batch's members count
/// against its task's limits, and a task of 20 × 3 × rounds would make later rounds slower).
pub(crate) fn run(fleet: &Path, scratch: &Path) -> Result<Batch, String> {
    let env = Env::new(fleet, scratch, "batch")?;
    env.tmux(&["new-session", "-d", "-s", "keepalive", "sleep", "3600"])?;
    let root = env.root.to_string_lossy().into_owned();
    let members = MEMBERS.to_string();
    let (mut batch, mut raw, mut separate) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..RUNS {
        let task = env.task()?;
        let mut args = deploy(&task, &members).to_vec();
        args.push("300");
        batch.push(time(|| env.ok(&args))?.0);
        raw.push(
            time(|| {
                (0..MEMBERS)
                    .try_for_each(|i| raw_tmux_start(&env, &format!("raw-{round}-{i}"), &root))
            })?
            .0,
        );
        let task = env.task()?;
        let mut one = deploy(&task, "1").to_vec();
        one.push("300");
        separate.push(time(|| (0..MEMBERS).try_for_each(|_| env.ok(&one).map(drop)))?.0);
    }
    Ok(Batch {
        batch: Stats(batch),
        raw: Stats(raw),
        separate: Stats(separate),
    })
}

/// The section of docs/BENCHMARKS.md.
pub(crate) fn section(b: &Batch) -> String {
    let ratio = b.batch.mean() / b.raw.mean();
    format!(
        "`fleet deploy --count {MEMBERS} --startup-grace-ms 0` — every member's intent, prompt \
         file and gated session (started in parallel), one registration of all {MEMBERS}, the \
         gates, one confirmation — against {MEMBERS} raw `tmux new-session` (the backend's own \
         start command line) run one after another, and against {MEMBERS} separate `fleet \
         deploy` processes; interleaved, {RUNS} rounds.\n\n\
         | what ({MEMBERS} agents) | time | ratio |\n|---|---:|---:|\n\
         | `fleet deploy --count {MEMBERS}`, whole process | {} | {ratio:.2}× |\n\
         | {MEMBERS} raw `tmux new-session`, one after another | {} | 1× |\n\
         | {MEMBERS} `fleet deploy` processes, one after another | {} | {:.2}× |\n\n\
         Goal: at most {GOAL}× the raw starts; measured {ratio:.2}× — {}.\n",
        b.batch.show(),
        b.raw.show(),
        b.separate.show(),
        b.separate.mean() / b.raw.mean(),
        if ratio <= GOAL { "met" } else { "not met" }
    )
}
