//! `fleet reconcile`: find and undo what crashes left behind.

use serde_json::Value;

use crate::cli::ReconcileArgs;
use crate::config::{Config, Services};
use crate::{Error, emit, ops};

pub(crate) fn run(cfg: &Config, args: &ReconcileArgs, json_mode: bool) -> Result<(), Error> {
    let value = ops::reconcile(&Services::new(cfg)?, args.task.as_ref(), args.dry_run)?;
    let nothing = value["nothing_to_do"] == true;
    emit(json_mode, &value, || text(&value, args.dry_run, nothing));
    Ok(())
}

/// The report as lines: one per thing found, saying what was (or would be) done.
fn text(v: &Value, dry_run: bool, nothing: bool) -> String {
    if nothing {
        return "nothing to do\n".to_owned();
    }
    let verb = |done: &str, would: &str| (if dry_run { would } else { done }).to_owned();
    let list = |key: &str| v[key].as_array().cloned().unwrap_or_default();
    let s = |x: &Value| x.as_str().unwrap_or_default().to_owned();
    let mut out = String::new();
    for a in list("abandoned") {
        out.push_str(&format!(
            "abandoned deployment of {} in {}: {}\n",
            s(&a["agent"]),
            s(&a["task"]),
            verb("rolled back", "would roll back")
        ));
    }
    for z in list("zombies") {
        out.push_str(&format!(
            "zombie {} in {}: {} -> {} ({}){}\n",
            s(&z["agent"]),
            s(&z["task"]),
            s(&z["was"]),
            s(&z["now"]),
            s(&z["reason"]),
            if dry_run { " [dry run]" } else { "" }
        ));
    }
    for o in list("orphans") {
        out.push_str(&format!(
            "orphan session {}: {}\n",
            s(&o["session"]),
            verb("killed", "would kill")
        ));
    }
    for t in list("counters_fixed") {
        out.push_str(&format!(
            "counters of {}: {}\n",
            s(&t),
            verb("corrected", "would correct")
        ));
    }
    if v["index"]["changed"] == true {
        out.push_str(&format!(
            "global index: {}\n",
            verb("rebuilt", "would rebuild")
        ));
    }
    if v["temp_files"].as_u64().unwrap_or(0) > 0 {
        out.push_str(&format!(
            "stale temp files: {} {}\n",
            v["temp_files"],
            verb("removed", "to remove")
        ));
    }
    out
}
