//! Recovery: what a deployment killed with SIGKILL (which runs no destructor) or an agent that
//! ended unobserved left behind, found and undone without timeouts or PID guessing.
//!
//! - **Abandoned deployments**: an intent whose lock can be taken has no owner; everything it
//!   names is rolled back ([`rollback_abandoned`]).
//! - **Zombies**: the registry says active, but the session is missing or its pane is dead: the
//!   agent is recorded as completed or error with its exit status, or terminated with reason
//!   `session_not_found`. Each is looked for where it was placed ([`Deployer::locate`]): fleet's
//!   own sessions in one listing, an adopted agent (the Python server's) by a probe of its exact
//!   session, and one placed where this run does not look is not judged.
//! - **Orphans**: fleet-tagged sessions that no registry entry and no intent account for: killed
//!   with the verified kill. Sessions fleet did not tag are never listed, so never touched.
//! - **Prompt files** nothing names (a crash of the machine can leave one): removed.
//! - **Checkouts** ([`CheckoutFix`]): worktrees and `fleet/` branches in the repositories the
//!   registry and the intents name that nothing accounts for are removed; an ended agent's
//!   checkout that was never retired is retired.
//!
//! Deployments in flight hold their intents: their agents and sessions are left alone.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

mod checkouts;
mod prompts;

pub use checkouts::CheckoutFix;

use crate::backend::{KillReport, Liveness, SessionBackend, SessionListing};
use crate::checkout::{Checkout, CheckoutState, branch_of};
use crate::deploy::Deployer;
use crate::end::{Cause, Ending, Files, end};
use crate::failure::CleanupReport;
use crate::guard::{
    CheckoutGuard, IntentGuard, Ledger, PromptGuard, RegistrationGuard, SessionGuard,
};
use crate::id::{AgentId, SessionName, TaskId};
use crate::journal::{IntentLease, IntentRecord};
use crate::record::{AgentRecord, AgentStatus, ExitStatus};
use crate::roster::TaskRoster;
use crate::whereabouts::Whereabouts;
use crate::{Error, failpoint};

/// Rolls back everything an abandoned intent names — registration, session and processes,
/// prompt file, checkout — then deletes the intent. The guards are rebuilt from the record's validated ids:
/// the session name and the prompt file's path are derived from them through the layout, never
/// read from the file. Each release is idempotent: what the dead deployment had not created yet
/// is reported as already gone. If something cannot be released, the intent is kept for the next
/// reconcile.
///
/// An agent the registry records as confirmed Live — or registered by another deployment than
/// this intent's (its `started_at` differs) — is not this intent's to undo: only the intent is
/// deleted, and the returned flag says so.
pub fn rollback_abandoned(
    env: &Deployer<'_>,
    lease: Box<dyn IntentLease>,
) -> (CleanupReport, Option<String>) {
    let record = lease.record().clone();
    let ledger = Ledger::default();
    if record.checkout.is_some() && env.checkouts.is_none() {
        let entry = IntentGuard::arm(lease, &ledger).keep(format!(
            "kept for a reconcile that can remove worktrees: it names the checkout {}",
            env.layout.worktree(&record.task, &record.agent)
        ));
        return (
            CleanupReport {
                entries: vec![entry],
            },
            None,
        );
    }
    if let Some(placed) = record
        .placement
        .as_deref()
        .filter(|p| *p != env.backend.placement())
    {
        // Its session is on a server this deployer does not look at: rolling back here would
        // report it gone while it runs there. Kept for a reconcile that looks there.
        let entry = IntentGuard::arm(lease, &ledger).keep(format!(
            "kept for a reconcile on {placed}, where its session was placed (this one looks at {})",
            env.backend.placement()
        ));
        return (
            CleanupReport {
                entries: vec![entry],
            },
            None,
        );
    }
    // Read before the intent has a guard: should the read panic, the bare lease drops, which
    // keeps the record (a guard dropped with nothing released before it would delete it).
    let registered = env.registry.read_task(&record.task);
    let intent = IntentGuard::arm(lease, &ledger);
    let registered = match registered {
        Ok(task) => task.agent(&record.agent).cloned(),
        Err(Error::UnknownTask(_)) => None,
        Err(e) => {
            // Cannot tell whether the agent is Live: keep the intent for the next reconcile.
            let entry = intent.keep(format!(
                "kept for the next reconcile: cannot read task {}: {e}",
                record.task
            ));
            return (
                CleanupReport {
                    entries: vec![entry],
                },
                None,
            );
        }
    };
    if let Some(r) = registered.filter(|r| r.confirmed || r.started_at != record.created_at) {
        let why = if r.confirmed {
            format!("the registry records {} as confirmed Live", r.id)
        } else {
            format!("{} was registered by another deployment", r.id)
        };
        tracing::warn!(agent = %r.id, "an abandoned intent names an agent it does not own: {why}; only the intent is removed");
        intent.release();
        return (ledger.report(), Some(why));
    }
    let files = env.layout.tracked_files(&record.task, &record.agent);
    // The repository is read from the record; the branch and the worktree are derived from the
    // ids, so nothing but fleet's own names can be removed.
    let checkout = record
        .checkout
        .as_ref()
        .zip(env.checkouts)
        .map(|(plan, checkouts)| {
            CheckoutGuard::arm(
                checkouts,
                plan.repo.clone(),
                branch_of(&record.agent),
                env.layout.worktree(&record.task, &record.agent),
                &ledger,
            )
        });
    let prompt = PromptGuard::arm(env.prompts, files.prompt_file, &ledger);
    // `begin` named the session with `for_agent`, and the journal checked the record against it.
    let session = SessionName::for_agent(&record.agent).ok().map(|name| {
        SessionGuard::arm(
            env.backend,
            name,
            record.agent.clone(),
            files.log_file,
            &ledger,
        )
    });
    let registration =
        RegistrationGuard::arm(env.registry, record.task.clone(), record.agent, &ledger);
    registration.release();
    if let Some(session) = session {
        session.release();
    }
    prompt.release();
    if let Some(checkout) = checkout {
        checkout.release();
    }
    intent.release();
    (ledger.report(), None)
}

/// The agents of the deployments in flight: every intent on record, read now.
fn in_flight(env: &Deployer<'_>) -> Result<HashSet<AgentId>, Error> {
    Ok(env
        .journal
        .pending()?
        .into_iter()
        .map(|r| r.agent)
        .collect())
}

/// Takes every abandoned intent of `env.journal` and rolls each back.
pub fn rollback_all_abandoned(
    env: &Deployer<'_>,
) -> Result<Vec<(IntentRecord, CleanupReport)>, Error> {
    let leases = env.journal.take_abandoned()?;
    Ok(leases
        .into_iter()
        .map(|lease| {
            let record = lease.record().clone();
            (record, rollback_abandoned(env, lease).0)
        })
        .collect())
}

/// What a caller records with an agent's end besides its status: fields of the agent's entry
/// that deploy-core does not interpret (fleet: the agent's activity summary), given the agent
/// as registered and how it ended.
pub type Annotate<'a> =
    dyn Fn(&TaskId, &AgentRecord, Option<ExitStatus>) -> Map<String, Value> + 'a;

/// How an agent said it ended (fleet: its own final report), if it did: the status and reason
/// its end is recorded with when its session is found gone. An agent that reported its end and
/// whose session then vanished — its ender is ending it, between the kill and the record — ended
/// as it said; it was not terminated.
pub type Reported<'a> = dyn Fn(&TaskId, &AgentRecord) -> Option<(AgentStatus, String)> + 'a;

/// What [`reconcile`] looks at and may do.
#[derive(Clone, Copy, Default)]
pub struct Scope<'a> {
    /// Only this task (abandoned deployments, zombies and orphans tagged with it).
    pub task: Option<&'a TaskId>,
    /// Report only; change nothing.
    pub dry_run: bool,
    /// Look for zombies (one `list` of the backend when the scope has active agents).
    pub zombies: bool,
    /// Look for orphan sessions (one `list` of the backend).
    pub orphans: bool,
    /// What to record with each zombie's end ([`Ending::fields`](crate::end::Ending::fields)).
    pub annotate: Option<&'a Annotate<'a>>,
    /// How a zombie whose session is gone said it ended, if it did.
    pub reported: Option<&'a Reported<'a>>,
}

impl Scope<'_> {
    /// Everything, for real: every task, zombies and orphans, nothing annotated.
    pub fn everything() -> Scope<'static> {
        Scope {
            task: None,
            dry_run: false,
            zombies: true,
            orphans: true,
            annotate: None,
            reported: None,
        }
    }
}

impl std::fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("task", &self.task)
            .field("dry_run", &self.dry_run)
            .field("zombies", &self.zombies)
            .field("orphans", &self.orphans)
            .field("annotate", &self.annotate.is_some())
            .field("reported", &self.reported.is_some())
            .finish()
    }
}

/// An abandoned deployment and its rollback.
#[derive(Debug, Clone, Serialize)]
pub struct Abandoned {
    /// The task.
    pub task: TaskId,
    /// The agent it was deploying.
    pub agent: AgentId,
    /// Its session.
    pub session: SessionName,
    /// What the rollback did (empty in a dry run).
    pub cleanup: CleanupReport,
    /// Why only the intent was removed, when the agent it names is not its to undo (confirmed
    /// Live, or registered by another deployment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_owned: Option<String>,
}

/// A registry entry whose agent is gone.
#[derive(Debug, Clone, Serialize)]
pub struct Zombie {
    /// The task.
    pub task: TaskId,
    /// The agent.
    pub agent: AgentId,
    /// Its session.
    pub session: SessionName,
    /// The status it had.
    pub was: AgentStatus,
    /// The status it has now (or would have, in a dry run).
    pub now: AgentStatus,
    /// How it ended, if known.
    pub exit: Option<ExitStatus>,
    /// Why it was recorded so.
    pub reason: String,
    /// Where its session was placed (`None`: by another orchestrator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
    /// What is recorded with its end besides its status ([`Scope::annotate`]).
    #[serde(skip)]
    pub fields: Map<String, Value>,
}

/// A fleet session nothing accounts for.
#[derive(Debug, Clone, Serialize)]
pub struct Orphan {
    /// The session.
    pub session: SessionName,
    /// Its agent tag.
    pub agent: AgentId,
    /// Its task tag.
    pub task: Option<TaskId>,
    /// What the kill did (none in a dry run).
    pub killed: Option<KillReport>,
    /// Whether its prompt file was removed with it (derived from its tags through the layout).
    pub prompt_removed: bool,
}

/// What [`reconcile`] found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileReport {
    /// Abandoned deployments.
    pub abandoned: Vec<Abandoned>,
    /// Zombies.
    pub zombies: Vec<Zombie>,
    /// Orphan sessions.
    pub orphans: Vec<Orphan>,
    /// Checkouts removed or retired.
    pub checkouts: Vec<CheckoutFix>,
    /// Prompt files nothing names (a crash of the machine can leave one), removed.
    pub prompts: Vec<camino::Utf8PathBuf>,
    /// What could not be looked at (a repository that moved or vanished): reported on every
    /// reconcile until fixed, never fatal.
    pub problems: Vec<String>,
}

impl ReconcileReport {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.abandoned.is_empty()
            && self.zombies.is_empty()
            && self.orphans.is_empty()
            && self.checkouts.is_empty()
            && self.prompts.is_empty()
    }
}

/// Every fleet session of `backend`, by name, from one `list`.
pub fn sessions_by_name(
    backend: &dyn SessionBackend,
) -> Result<BTreeMap<SessionName, SessionListing>, Error> {
    Ok(backend
        .list()?
        .into_iter()
        .map(|s| (s.session.clone(), s))
        .collect())
}

/// Retires `agent`'s checkout if it is active: the checkout with its new state, or `None` when
/// there was nothing to do or it failed (logged; it stays active for reconcile to retry). A
/// recorded checkout whose branch or worktree is not the one fleet derives from the task and
/// agent ids is left alone: a registry field never names what fleet removes.
pub fn retire(
    env: &Deployer<'_>,
    task: &TaskId,
    agent: &AgentId,
    checkout: &Checkout,
) -> Option<Checkout> {
    if checkout.state != CheckoutState::Active {
        return None;
    }
    let (branch, path) = (branch_of(agent), env.layout.worktree(task, agent));
    if checkout.branch != branch || checkout.path != path {
        tracing::warn!(
            %agent,
            "its recorded checkout names branch {} at {}, not fleet's {branch} at {path}: left alone",
            checkout.branch,
            checkout.path
        );
        return None;
    }
    let checkouts = env.checkouts?;
    match checkouts.retire(checkout) {
        Ok(state) => Some(Checkout {
            state,
            ..checkout.clone()
        }),
        Err(e) => {
            tracing::warn!(%agent, "its checkout stays as it is: {e}");
            None
        }
    }
}

/// Finds and (unless `scope.dry_run`) repairs abandoned deployments, zombies and orphans.
///
/// Order matters against concurrent deployments: sessions are listed *before* the intents are
/// read, so every session listed was either accounted for by an intent at that moment or
/// already registered; a zombie candidate whose session was not listed is probed again before
/// it is declared missing.
pub fn reconcile(env: &Deployer<'_>, scope: Scope<'_>) -> Result<ReconcileReport, Error> {
    let mut report = ReconcileReport::default();
    let in_scope = |task: &TaskId| scope.task.is_none_or(|t| t == task);

    for lease in env.journal.take_abandoned()? {
        let r = lease.record().clone();
        if !in_scope(&r.task) {
            continue; // dropping the lease releases it, record kept
        }
        let (cleanup, not_owned) = if scope.dry_run {
            (CleanupReport::default(), None)
        } else {
            rollback_abandoned(env, lease)
        };
        report.abandoned.push(Abandoned {
            task: r.task,
            agent: r.agent,
            session: r.session,
            cleanup,
            not_owned,
        });
        failpoint("reconcile::after_abandoned");
    }

    let listed = if scope.orphans {
        // The registry reads ahead while the backend lists: what it reads is only kept, and
        // read again below, after the listing and the intents, as the order above requires.
        let registry = env.registry;
        let listed = std::thread::scope(|s| {
            if scope.task.is_none() {
                s.spawn(|| registry.prefetch());
            }
            sessions_by_name(env.backend)
        });
        Some(listed?)
    } else {
        None
    };
    let in_flight = in_flight(env)?;

    let tasks: Vec<TaskId> = match scope.task {
        _ if !scope.zombies && !scope.orphans => Vec::new(),
        Some(t) => vec![t.clone()],
        None => env.registry.task_ids()?,
    };
    // Each task's roster: the ended agents' ids, statuses and checkouts, the active ones whole.
    let mut rosters: BTreeMap<TaskId, Arc<TaskRoster>> = BTreeMap::new();
    for id in tasks {
        rosters.insert(id.clone(), env.registry.roster(&id)?);
    }
    // Each candidate with where its session is: only fleet's own sessions are listed; an
    // adopted agent is probed by its exact name, and one placed elsewhere is not judged.
    let candidates: Vec<(&TaskId, &AgentRecord, Whereabouts<'_>)> = rosters
        .values()
        .flat_map(|t| t.active().map(move |a| (&t.id, a)))
        .filter(|(_, a)| scope.zombies && !in_flight.contains(&a.id))
        .map(|(t, a)| (t, a, env.locate(a)))
        .collect();
    let own = |place: &Whereabouts<'_>| matches!(place, Whereabouts::Own(_));
    let listed = match (listed, candidates.iter().any(|(_, _, p)| own(p))) {
        (Some(l), _) => Some(l),
        (None, true) => Some(sessions_by_name(env.backend)?),
        (None, false) => None,
    };

    // A candidate not in the listing may have started after it: one listing more, taken now,
    // tells (rather than a probe per candidate).
    let relisted = if candidates
        .iter()
        .any(|(_, a, p)| own(p) && !listed.as_ref().is_some_and(|l| l.contains_key(&a.session)))
    {
        Some(sessions_by_name(env.backend)?)
    } else {
        None
    };
    let mut by_task: BTreeMap<TaskId, Vec<Zombie>> = BTreeMap::new();
    // Each zombie as `end::end` takes it, made from its record (its checkout included).
    let mut gone_by_task: BTreeMap<TaskId, Vec<Ending>> = BTreeMap::new();
    for (task, agent, place) in candidates {
        let exit = match place {
            Whereabouts::Own(_) => {
                let seen = listed
                    .as_ref()
                    .and_then(|l| l.get(&agent.session))
                    .or_else(|| relisted.as_ref().and_then(|l| l.get(&agent.session)));
                match seen {
                    Some(l) => match l.exited {
                        None => continue, // alive
                        Some(status) => Some(status),
                    },
                    None => None,
                }
            }
            Whereabouts::Adopted(backend) => match backend.probe(&agent.session)? {
                Liveness::Alive => continue,
                Liveness::Exited { status, .. } => Some(status),
                Liveness::Missing => None,
            },
            Whereabouts::Elsewhere(_) => continue,
        };
        let fields = match (scope.annotate, scope.dry_run) {
            (Some(annotate), false) => annotate(task, agent, exit),
            _ => Map::new(),
        };
        // A session gone without an exit status: the agent's own word on its end, if it gave
        // one, is all there is to go by.
        let said = match (exit, scope.reported) {
            (None, Some(reported)) => reported(task, agent),
            _ => None,
        };
        let (cause, reason) = match (said, exit) {
            (Some((status, reason)), _) => (
                Cause::Ended {
                    status,
                    reason: reason.clone(),
                },
                reason,
            ),
            (None, Some(status)) => (Cause::Exited(exit), format!("the agent {status}")),
            (None, None) => (Cause::Exited(None), "session_not_found".to_owned()),
        };
        let ending = Ending {
            fields: fields.clone(),
            ..Ending::of(agent, cause)
        };
        let now = ending.cause.status();
        gone_by_task.entry(task.clone()).or_default().push(ending);
        by_task.entry(task.clone()).or_default().push(Zombie {
            fields,
            task: task.clone(),
            was: agent.status.clone(),
            placement: agent.placement.clone(),
            agent: agent.id.clone(),
            session: agent.session.clone(),
            now,
            exit,
            reason,
        });
    }
    for (task, zombies) in by_task {
        if !scope.dry_run {
            let gone = gone_by_task.remove(&task).unwrap_or_default();
            end(env, &task, &gone, Files::Keep)?;
        }
        report.zombies.extend(zombies);
        failpoint("reconcile::after_zombie");
    }

    if scope.orphans {
        // The active agents, by task, then (only if a session is not among them) every
        // registered agent: one look each instead of a scan of the task per session.
        let active_ids: HashSet<(&TaskId, &AgentId)> = rosters
            .iter()
            .flat_map(|(t, roster)| roster.active().map(move |a| (t, &a.id)))
            .collect();
        let registered_ids = std::cell::OnceCell::new();
        let is_registered = |t: &TaskId, a: &AgentId| {
            active_ids.contains(&(t, a))
                || registered_ids
                    .get_or_init(|| {
                        rosters
                            .iter()
                            .flat_map(|(t, roster)| roster.agents.iter().map(move |a| (t, &a.id)))
                            .collect::<HashSet<(&TaskId, &AgentId)>>()
                    })
                    .contains(&(t, a))
        };
        for s in listed.into_iter().flat_map(BTreeMap::into_values) {
            let in_task_scope = match (&s.task, scope.task) {
                (_, None) => true,
                (Some(t), Some(wanted)) => t == wanted,
                (None, Some(_)) => false,
            };
            if in_flight.contains(&s.agent) || !in_task_scope {
                continue;
            }
            let registered = match &s.task {
                Some(t) => match rosters.get(t) {
                    Some(_) => is_registered(t, &s.agent),
                    None => match env.registry.read_task(t) {
                        Ok(snap) => snap.agent(&s.agent).is_some(),
                        Err(Error::UnknownTask(_)) => false,
                        Err(e) => return Err(e),
                    },
                },
                None => false,
            };
            if registered {
                continue;
            }
            let (killed, prompt_removed) = if scope.dry_run {
                (None, false)
            } else {
                let killed = env.backend.kill(&s.session, &s.agent)?;
                // Its prompt file goes with it: nothing else accounts for it either.
                let removed = match &s.task {
                    Some(t) => env
                        .prompts
                        .remove(&env.layout.tracked_files(t, &s.agent).prompt_file)?,
                    None => false,
                };
                (Some(killed), removed)
            };
            report.orphans.push(Orphan {
                session: s.session,
                agent: s.agent,
                task: s.task,
                killed,
                prompt_removed,
            });
            failpoint("reconcile::after_orphan");
        }
    }
    if scope.orphans {
        checkouts::reconcile(env, scope, &rosters, &in_flight, &mut report)?;
        prompts::reconcile(env, scope.dry_run, &rosters, &mut report)?;
    }
    Ok(report)
}
