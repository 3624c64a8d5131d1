//! What fleet sees when it looks at a task: each agent's registry status beside its liveness.
//! An agent that ended by itself is recorded then and there (see
//! [`deploy_core::end::end`]); its logs are kept.

use std::collections::BTreeMap;

use deploy_core::end::{self, Cause, Ending, Files};
use deploy_core::reconcile::sessions_by_name;
use deploy_core::{
    AgentId, AgentRecord, AgentStatus, AgentType, BatchId, Deployer, ExitStatus, Parent,
    SessionListing, SessionName, TaskId, TaskSnapshot, Whereabouts,
};
use serde::Serialize;

use crate::config::Services;
use crate::error::Error;
use crate::ops::activity::{self, Totals};
use ::activity::Activity;

/// One agent as fleet sees it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AgentView {
    pub(crate) agent_id: AgentId,
    #[serde(rename = "type")]
    pub(crate) agent_type: AgentType,
    pub(crate) status: AgentStatus,
    pub(crate) liveness: Sighting,
    pub(crate) exit: Option<ExitStatus>,
    pub(crate) parent: Parent,
    pub(crate) depth: u32,
    pub(crate) session: SessionName,
    pub(crate) started_at: String,
    pub(crate) age_seconds: Option<i64>,
    /// What it is doing, from its own events.
    pub(crate) activity: Activity,
    /// Its last line of output, if it is still being read.
    pub(crate) last_line: Option<String>,
    /// The last text it wrote, from its stream's events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_text: Option<String>,
    /// Which stream it writes.
    #[serde(skip)]
    pub(crate) format: ::activity::Format,
    /// Its own checkout (`--worktree`), as recorded: where, and what is left of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) worktree: Option<deploy_core::Checkout>,
    /// The batch it was deployed with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) batch_id: Option<BatchId>,
    /// The host it runs on, when its deployer had a host identity (an agent of another host is
    /// `elsewhere`: never judged from here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<deploy_core::HostName>,
}

/// Which agents of the tasks looked at are shown.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Only<'a> {
    /// Every agent.
    Every,
    /// This agent, which must exist.
    Agent(&'a AgentId),
    /// This batch's members, of which there must be one; tasks without any are left out.
    Batch(&'a BatchId),
}

impl Only<'_> {
    fn keeps(self, a: &AgentView) -> bool {
        match self {
            Only::Every => true,
            Only::Agent(id) => &a.agent_id == id,
            Only::Batch(b) => a.batch_id.as_ref() == Some(b),
        }
    }
}

/// A sighting: what status saw of an agent's session — a probe's [`deploy_core::Liveness`]
/// without its details, fleet's own session as one listing of its backend saw it, an adopted
/// one (the Python server's) as a probe of its exact session saw it — or `elsewhere`. Shown as
/// the agent's `liveness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Sighting {
    Alive,
    Exited,
    Missing,
    /// Placed on a tmux server this configuration does not look at (another `--socket`), or
    /// on another host this workspace does not reach.
    Elsewhere,
    /// On another host this workspace reaches (`fleet host add`), which did not answer in
    /// time: shown as its registry entry says, without what it is doing.
    Unreachable,
}

impl Sighting {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Sighting::Alive => "alive",
            Sighting::Exited => "exited",
            Sighting::Missing => "missing",
            Sighting::Elsewhere => "elsewhere",
            Sighting::Unreachable => "unreachable",
        }
    }
}

/// One task as fleet sees it: its registry (after recording the agents that ended) and a view
/// of each agent.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TaskStatus {
    pub(crate) task_id: TaskId,
    pub(crate) description: String,
    pub(crate) status: String,
    pub(crate) active_count: usize,
    pub(crate) total_spawned: usize,
    pub(crate) completed_count: usize,
    pub(crate) max_concurrent: u32,
    pub(crate) max_agents: u32,
    /// Cost and tokens of all its agents.
    pub(crate) totals: Totals,
    pub(crate) agents: Vec<AgentView>,
    /// The task as the registry holds it now.
    #[serde(skip)]
    pub(crate) snapshot: TaskSnapshot,
}

/// Looks at `task` (or every task), from one listing of the backend, recording agents that
/// ended by themselves; with `agent`, keeps only that agent, which must exist.
pub(crate) fn run(
    services: &Services,
    task: Option<&TaskId>,
    only: Only<'_>,
) -> Result<Vec<TaskStatus>, Error> {
    let env = services.deployer();
    let ids = match task {
        Some(t) => vec![t.clone()],
        None => services.registry.task_ids()?,
    };
    // The backend lists its sessions — most of a look's time — while the registry is read
    // and the agents' logs are read ahead, in no set order. Neither order records a wrong end:
    // a look records only agents whose session it saw exited (one it did not list is shown
    // missing, never recorded here), and reads the log of an agent found exited again.
    let (sessions, read) = std::thread::scope(|s| {
        // Without a thread to spare (a process limit), the listing runs first, here.
        let listing = std::thread::Builder::new()
            .name("fleet-listing".into())
            .spawn_scoped(s, || sessions_by_name(env.backend))
            .map_err(|_| sessions_by_name(env.backend));
        let read = ids
            .iter()
            .map(|id| {
                let snapshot = services.registry.read_task(id)?;
                let mut book = activity::Book::open(services, id);
                book.read_ahead(&snapshot.agents);
                Ok((snapshot, book))
            })
            .collect::<Result<Vec<_>, Error>>();
        let sessions = match listing {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(listed) => listed,
        };
        (sessions, read)
    });
    let sessions = sessions?;
    let mut tasks = Vec::new();
    for (mut snapshot, book) in read? {
        let id = snapshot.id.clone();
        let (mut agents, recorded) = observe(&env, &snapshot, &sessions, book);
        agents.retain(|a| only.keeps(a));
        if matches!(only, Only::Batch(_)) && agents.is_empty() {
            continue;
        }
        if recorded {
            snapshot = services.registry.read_task(&id)?; // the counters after the recorded ends
        }
        tasks.push(TaskStatus {
            task_id: snapshot.id.clone(),
            description: snapshot.description.clone(),
            status: super::task::status_word(
                &snapshot.status,
                snapshot.active_count(),
                snapshot.agents.len(),
            ),
            active_count: snapshot.active_count(),
            total_spawned: snapshot.agents.len(),
            completed_count: snapshot.completed_count(),
            max_concurrent: snapshot.limits.max_concurrent,
            max_agents: snapshot.limits.max_agents,
            totals: Totals::of(agents.iter().map(|a| &a.activity)),
            agents,
            snapshot,
        });
    }
    crate::ops::remote::gather(services, &mut tasks);
    if tasks.iter().all(|t| t.agents.is_empty()) {
        match (only, task) {
            (Only::Every, _) => {}
            (Only::Agent(agent), Some(t)) => {
                return Err(deploy_core::Error::UnknownAgent {
                    task: t.clone(),
                    agent: agent.clone(),
                }
                .into());
            }
            (Only::Agent(agent), None) => {
                return Err(Error::Refused(format!("unknown agent {agent} in any task")));
            }
            (Only::Batch(batch), Some(t)) => {
                return Err(Error::Refused(format!(
                    "no agent of batch {batch} in task {t}"
                )));
            }
            (Only::Batch(batch), None) => {
                return Err(Error::Refused(format!(
                    "no agent of batch {batch} in any task"
                )));
            }
        }
    }
    Ok(tasks)
}

fn age_seconds(started_at: &str) -> Option<i64> {
    let start = chrono::NaiveDateTime::parse_from_str(started_at, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Some((chrono::Local::now().naive_local() - start).num_seconds())
}

/// How one agent's session looks: from the listing of fleet's own sessions, by a probe of an
/// adopted one, not at all for one placed elsewhere.
fn look(
    place: &Whereabouts<'_>,
    a: &AgentRecord,
    sessions: &BTreeMap<SessionName, SessionListing>,
) -> (Sighting, Option<ExitStatus>) {
    match place {
        Whereabouts::Own(_) => match sessions.get(&a.session) {
            None => (Sighting::Missing, None),
            Some(s) => match s.exited {
                None => (Sighting::Alive, None),
                Some(status) => (Sighting::Exited, Some(status)),
            },
        },
        Whereabouts::Adopted(backend) => match backend.probe(&a.session) {
            Ok(deploy_core::Liveness::Alive) => (Sighting::Alive, None),
            Ok(deploy_core::Liveness::Exited { status, .. }) => (Sighting::Exited, Some(status)),
            Ok(deploy_core::Liveness::Missing) => (Sighting::Missing, None),
            Err(e) => {
                tracing::warn!(agent = %a.id, error = %e, "cannot probe its session");
                (Sighting::Elsewhere, None)
            }
        },
        Whereabouts::Elsewhere(_) => (Sighting::Elsewhere, None),
    }
}

/// Looks at one task: records fleet's own agents that ended by themselves — all of the task's
/// at once — and returns the views, and whether anything was recorded (then the task's registry
/// changed since `task` was read). An adopted agent is only looked at: reconcile records its
/// end.
fn observe(
    env: &Deployer<'_>,
    task: &TaskSnapshot,
    sessions: &BTreeMap<SessionName, SessionListing>,
    mut book: activity::Book<'_>,
) -> (Vec<AgentView>, bool) {
    let mut views = Vec::new();
    let mut ended: Vec<(usize, Ending)> = Vec::new();
    for a in &task.agents {
        let place = env.locate(a);
        let (liveness, exit) = look(&place, a, sessions);
        let exit = exit.or_else(|| recorded_exit(a));
        let own = matches!(place, Whereabouts::Own(_));
        let seen = if let (true, true, Some(exit)) = (own, a.status.is_active(), exit) {
            let seen = book.end(a, Some(exit), exit.success());
            let mut ending = Ending::of(a, Cause::Exited(Some(exit)));
            ending.fields = activity::end_fields(&seen);
            ended.push((views.len(), ending));
            seen
        } else {
            book.of(a, exit.map(|e| e.success()))
        };
        views.push(view(a, a.status.clone(), liveness, exit, seen));
    }
    // The places are kept now: should recording the ends fail, the next look reads their logs
    // again from where they were.
    book.close();
    if ended.is_empty() {
        return (views, false);
    }
    let endings: Vec<Ending> = ended.iter().map(|(_, e)| e.clone()).collect();
    match end::end(env, &task.id, &endings, Files::Keep) {
        Ok(done) => {
            for ((i, ending), done) in ended.into_iter().zip(done) {
                tracing::info!(agent = %ending.agent, cause = ?ending.cause, "agent ended by itself; recorded as {}", done.status);
                views[i].status = done.status;
            }
            (views, true)
        }
        // Shown as they are (exited, still active); the next look or reconcile records them.
        Err(e) => {
            tracing::warn!(task = %task.id, error = %e, "cannot record the ends of its agents yet");
            (views, false)
        }
    }
}

/// The exit status recorded with an agent's end (`exit_status`, as [`ExitStatus`] serializes:
/// `{"code": n}` or `{"signal": n}`); an unknown one tells nothing.
fn recorded_exit(a: &AgentRecord) -> Option<ExitStatus> {
    a.extra
        .parse::<ExitStatus>("exit_status")
        .filter(|e| *e != ExitStatus::Unknown)
}

fn view(
    a: &AgentRecord,
    status: AgentStatus,
    liveness: Sighting,
    exit: Option<ExitStatus>,
    seen: activity::Seen,
) -> AgentView {
    AgentView {
        agent_id: a.id.clone(),
        agent_type: a.agent_type.clone(),
        status,
        liveness,
        exit,
        parent: a.parent.clone(),
        depth: a.depth,
        session: a.session.clone(),
        started_at: a.started_at.clone(),
        age_seconds: age_seconds(&a.started_at),
        activity: seen.activity,
        last_line: seen.context.last_line,
        last_text: seen.context.last_text,
        format: seen.context.format,
        worktree: deploy_core::Checkout::of(a),
        batch_id: a.batch(),
        host: a.host(),
    }
}
