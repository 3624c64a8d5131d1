//! Recovery of deployments whose process died (SIGKILL runs no destructor).

use crate::deploy::{Deployer, Held, undo};
use crate::failure::CleanupReport;
use crate::journal::{IntentLease, IntentRecord};

/// Rolls back everything an abandoned intent names — registration, session and processes,
/// prompt file — then deletes the intent. Each step is idempotent: what the dead deployment
/// had not created yet is reported as already gone. If something cannot be released, the
/// intent is kept for the next reconcile.
pub fn rollback_abandoned(env: &Deployer<'_>, lease: Box<dyn IntentLease>) -> CleanupReport {
    let record = lease.record().clone();
    let mut held = Held {
        task: record.task,
        agent: record.agent,
        session_name: record.session,
        registered: true,
        session: true,
        prompt: Some(record.prompt_file),
        intent: Some(lease),
    };
    undo(env, &mut held)
}

/// Takes every abandoned intent of `env.journal` and rolls each back.
pub fn rollback_all_abandoned(
    env: &Deployer<'_>,
) -> Result<Vec<(IntentRecord, CleanupReport)>, crate::Error> {
    let leases = env.journal.take_abandoned()?;
    Ok(leases
        .into_iter()
        .map(|lease| {
            let record = lease.record().clone();
            (record, rollback_abandoned(env, lease))
        })
        .collect())
}
