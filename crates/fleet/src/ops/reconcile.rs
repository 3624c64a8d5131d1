//! `reconcile`: the generic repairs of deploy-core, then the registry's own.

use deploy_core::reconcile::{self, ReconcileReport, Scope};
use deploy_core::{AgentRecord, AgentStatus, ExitStatus, RepairReport, TaskId};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::Services;
use crate::error::Error;

/// Everything a reconcile found and did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Reconciled {
    pub(crate) dry_run: bool,
    pub(crate) nothing_to_do: bool,
    #[serde(flatten)]
    pub(crate) found: ReconcileReport,
    #[serde(flatten)]
    pub(crate) repaired: RepairReport,
}

/// What a zombie's end is recorded with: its activity, as any end is.
fn with_activity(
    services: &Services,
) -> impl Fn(&TaskId, &AgentRecord, Option<ExitStatus>) -> Map<String, Value> + '_ {
    move |task, record, exit| {
        let success = exit.is_some_and(|e| e.success());
        super::activity::at_end(services, task, record, exit, success)
    }
}

/// How a zombie whose session is gone said it ended: its own final report, if it made one.
pub(crate) fn final_word(
    services: &Services,
) -> impl Fn(&TaskId, &AgentRecord) -> Option<(AgentStatus, String)> + '_ {
    move |task, record| super::reports::final_report(services, task, &record.id)
}

/// Abandoned deployments, zombies and orphans; then counters, the index and temp files.
pub(crate) fn run(
    services: &Services,
    task: Option<&TaskId>,
    dry_run: bool,
) -> Result<Reconciled, Error> {
    let annotate = with_activity(services);
    let reported = final_word(services);
    let found = reconcile::reconcile(
        &services.deployer(),
        Scope {
            task,
            dry_run,
            zombies: true,
            orphans: true,
            annotate: Some(&annotate),
            reported: Some(&reported),
        },
    )?;
    let repaired = services.registry.repair(task, dry_run)?;
    Ok(Reconciled {
        dry_run,
        nothing_to_do: found.is_empty() && repaired.is_empty(),
        found,
        repaired,
    })
}

/// Records the zombies of `task` — active agents whose session is gone or dead — with their
/// activity, as a full reconcile would; deployments in flight are left alone.
pub(crate) fn record_zombies(services: &Services, task: &TaskId) -> Result<(), Error> {
    let annotate = with_activity(services);
    let reported = final_word(services);
    reconcile::reconcile(
        &services.deployer(),
        Scope {
            task: Some(task),
            dry_run: false,
            zombies: true,
            orphans: false,
            annotate: Some(&annotate),
            reported: Some(&reported),
        },
    )?;
    Ok(())
}
