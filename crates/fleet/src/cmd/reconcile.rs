//! `fleet reconcile`: find and undo what crashes left behind.

use crate::cli::ReconcileArgs;
use crate::config::Services;
use crate::error::Error;
use crate::ops::reconcile::{self, Reconciled};
use crate::output::emit;

pub(crate) fn run(services: &Services, args: &ReconcileArgs, json_mode: bool) -> Result<(), Error> {
    let r = reconcile::run(services, args.task.as_ref(), args.dry_run)?;
    emit(json_mode, &r, || text(&r));
    Ok(())
}

/// The report as lines: one per thing found, saying what was (or would be) done.
fn text(r: &Reconciled) -> String {
    let mut out = String::new();
    for p in &r.found.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    if r.nothing_to_do {
        out.push_str("nothing to do\n");
        return out;
    }
    let verb = |done: &str, would: &str| (if r.dry_run { would } else { done }).to_owned();
    for a in &r.found.abandoned {
        out.push_str(&format!(
            "abandoned deployment of {} in {}: {}\n",
            a.agent,
            a.task,
            verb("rolled back", "would roll back")
        ));
    }
    for z in &r.found.zombies {
        out.push_str(&format!(
            "zombie {} in {}: {} -> {} ({}){}\n",
            z.agent,
            z.task,
            z.was,
            z.now,
            z.reason,
            if r.dry_run { " [dry run]" } else { "" }
        ));
    }
    for o in &r.found.orphans {
        out.push_str(&format!(
            "orphan session {}: {}\n",
            o.session,
            verb("killed", "would kill")
        ));
    }
    for p in &r.found.prompts {
        out.push_str(&format!(
            "prompt file {p}, named by nothing: {}\n",
            verb("removed", "would remove")
        ));
    }
    for c in &r.found.checkouts {
        let what = match (&c.path, &c.branch) {
            (Some(path), Some(branch)) => format!("worktree {path} (branch {branch})"),
            (Some(path), None) => format!("worktree {path}"),
            (None, Some(branch)) => format!("branch {branch}"),
            (None, None) => "checkout".to_owned(),
        };
        let done = match (c.task.is_some(), r.dry_run) {
            (true, false) => format!("retired: {}", c.action),
            (true, true) => "would retire".to_owned(),
            (false, false) => "unaccounted for: removed".to_owned(),
            (false, true) => "unaccounted for: would remove".to_owned(),
        };
        out.push_str(&format!("{what} of {} in {}: {done}\n", c.agent, c.repo));
    }
    for t in &r.repaired.counters_fixed {
        out.push_str(&format!(
            "counters of {t}: {}\n",
            verb("corrected", "would correct")
        ));
    }
    if r.repaired.index.as_ref().is_some_and(|i| i.changed) {
        out.push_str(&format!(
            "global index: {}\n",
            verb("rebuilt", "would rebuild")
        ));
    }
    if r.repaired.temp_files > 0 {
        out.push_str(&format!(
            "stale temp files: {} {}\n",
            r.repaired.temp_files,
            verb("removed", "to remove")
        ));
    }
    out
}
