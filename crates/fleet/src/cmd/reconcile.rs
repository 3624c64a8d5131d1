//! `fleet reconcile`: find and undo what crashes left behind.

use deploy_core::reconcile::{self, Scope};
use serde_json::json;

use crate::cli::ReconcileArgs;
use crate::config::{Config, Services};
use crate::{Error, emit};

pub(crate) fn run(cfg: &Config, args: &ReconcileArgs, json_mode: bool) -> Result<(), Error> {
    let services = Services::new(cfg)?;
    let env = services.deployer();
    let scope = Scope {
        task: args.task.as_ref(),
        dry_run: args.dry_run,
        orphans: true,
    };
    let report = reconcile::reconcile(&env, scope)?;
    let registry = &services.registry;
    let counters = registry.recount_tasks(args.task.as_ref(), args.dry_run)?;
    let index = registry.rebuild_global_with(args.dry_run)?;
    deploy_core::failpoint("reconcile::after_rebuild");
    let temps = registry.sweep_temps_with(args.dry_run)?;
    let nothing = report.is_empty() && counters.is_empty() && !index.changed && temps == 0;
    let value = json!({
        "dry_run": args.dry_run,
        "nothing_to_do": nothing,
        "abandoned": report.abandoned,
        "zombies": report.zombies,
        "orphans": report.orphans,
        "counters_fixed": counters,
        "index": index,
        "temp_files": temps,
    });
    emit(json_mode, &value, || {
        if nothing {
            return "nothing to do\n".to_owned();
        }
        let verb = |done: &str, would: &str| {
            if args.dry_run {
                would.to_owned()
            } else {
                done.to_owned()
            }
        };
        let mut out = String::new();
        for a in &report.abandoned {
            out.push_str(&format!(
                "abandoned deployment of {} in {}: {}\n",
                a.agent,
                a.task,
                if args.dry_run {
                    "would roll back".to_owned()
                } else {
                    a.cleanup.to_string().replace('\n', ";")
                }
            ));
        }
        for z in &report.zombies {
            out.push_str(&format!(
                "zombie {} in {}: {} -> {} ({}){}\n",
                z.agent,
                z.task,
                z.was,
                z.now,
                z.reason,
                if args.dry_run { " [dry run]" } else { "" }
            ));
        }
        for o in &report.orphans {
            out.push_str(&format!(
                "orphan session {}: {}\n",
                o.session,
                verb("killed", "would kill")
            ));
        }
        for t in &counters {
            out.push_str(&format!(
                "counters of {t}: {}\n",
                verb("corrected", "would correct")
            ));
        }
        if index.changed {
            out.push_str(&format!(
                "global index: {} (+{} -{})\n",
                verb("rebuilt", "would rebuild"),
                index.added.len(),
                index.removed.len()
            ));
        }
        if temps > 0 {
            out.push_str(&format!(
                "stale temp files: {temps} {}\n",
                verb("removed", "to remove")
            ));
        }
        out
    });
    Ok(())
}
