//! Per-task limits and the one function that checks them. The registry calls [`check`] under its
//! lock (authoritative); the deployer calls it before any work starts (cheap, advisory).

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::id::{AgentId, AgentType, TaskId};
use crate::record::{AgentStatus, Parent, Registration, TaskSnapshot};
use crate::request::DeployRequest;

/// The limits of one task, with the Python server's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Agents ever registered in the task (`max_agents`).
    pub max_agents: u32,
    /// Agents active at once (`max_concurrent`).
    pub max_concurrent: u32,
    /// Deepest level below the orchestrator (`max_depth`); children of the orchestrator are 1.
    pub max_depth: u32,
}

impl Limits {
    /// The Python server's defaults: 45 agents in all, 20 at once, 5 levels deep. Every surface
    /// takes its defaults from here.
    pub const DEFAULT: Limits = Limits {
        max_agents: 45,
        max_concurrent: 20,
        max_depth: 5,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A limit that refused an agent; the message names the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// Too many active agents.
    #[error("limit max_concurrent = {limit} reached in task {task}: {active} agents are active")]
    Concurrent {
        /// The task.
        task: TaskId,
        /// Active agents now.
        active: u32,
        /// The limit.
        limit: u32,
    },
    /// Too many agents in total.
    #[error("limit max_agents = {limit} reached in task {task}: {total} agents were spawned")]
    Total {
        /// The task.
        task: TaskId,
        /// Agents spawned so far.
        total: u32,
        /// The limit.
        limit: u32,
    },
    /// Too deep.
    #[error(
        "limit max_depth = {limit} exceeded in task {task}: the agent would be at depth {depth}"
    )]
    Depth {
        /// The task.
        task: TaskId,
        /// The depth the agent would have.
        depth: u32,
        /// The limit.
        limit: u32,
    },
    /// A batch has more members than the task has room for.
    #[error(
        "a batch of {members} does not fit task {task}: {limit} = {value} leaves room for {room} more"
    )]
    Batch {
        /// The task.
        task: TaskId,
        /// The batch's members.
        members: u32,
        /// How many more agents the task takes now.
        room: u32,
        /// The limit that leaves no more room (`max_concurrent` or `max_agents`).
        limit: &'static str,
        /// Its value.
        value: u32,
    },
    /// An active agent of this type exists.
    #[error(
        "one active agent per type: task {task} already has an active {agent_type} agent ({existing}); allow duplicates to deploy another"
    )]
    DuplicateType {
        /// The task.
        task: TaskId,
        /// The type.
        agent_type: AgentType,
        /// The active agent of that type.
        existing: AgentId,
    },
}

/// What [`check`] needs to know about the candidate agent.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Its type.
    pub agent_type: &'a AgentType,
    /// Its parent.
    pub parent: &'a Parent,
    /// Whether another active agent of the same type is allowed.
    pub allow_duplicate: bool,
}

/// What [`check_view`] reads of a task: its limits, how many agents it ever had and has
/// active, its first active agent of the candidate's type, and the candidate's parent's depth. A registry that can count and select (SQLite)
/// builds it without reading every agent; [`check`] builds it from a snapshot.
#[derive(Debug, Clone)]
pub struct LimitView<'a> {
    /// The task.
    pub task: &'a TaskId,
    /// Its limits.
    pub limits: Limits,
    /// Agents ever registered in it.
    pub total: usize,
    /// Its active agents.
    pub active: usize,
    /// The first active agent (in registration order) of the candidate's type, if any.
    pub active_of_type: Option<AgentId>,
    /// The depth of the candidate's parent when it is an agent of the task; `None` when it is
    /// not one (and ignored for the orchestrator).
    pub parent_depth: Option<u32>,
}

/// What [`LimitView::count`] reads of one agent.
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    /// Its id.
    pub id: &'a AgentId,
    /// Its type.
    pub agent_type: &'a AgentType,
    /// Its status.
    pub status: &'a AgentStatus,
    /// Its depth.
    pub depth: u32,
}

impl<'a> LimitView<'a> {
    /// The view of a task whose agents are `agents`, in registration order, for `candidate`:
    /// counted in one pass over whatever form a registry holds them in.
    pub fn count<'b>(
        task: &'a TaskId,
        limits: Limits,
        agents: impl IntoIterator<Item = Counted<'b>>,
        candidate: Candidate<'_>,
    ) -> Self {
        let mut view = LimitView {
            task,
            limits,
            total: 0,
            active: 0,
            active_of_type: None,
            parent_depth: None,
        };
        for a in agents {
            view.total += 1;
            if a.status.is_active() {
                view.active += 1;
                if view.active_of_type.is_none() && a.agent_type == candidate.agent_type {
                    view.active_of_type = Some(a.id.clone());
                }
            }
            if let Parent::Agent(parent) = candidate.parent
                && view.parent_depth.is_none()
                && parent == a.id
            {
                view.parent_depth = Some(a.depth);
            }
        }
        view
    }
}

impl<'a> Candidate<'a> {
    /// The agent `registration` registers, as every registry checks it.
    pub fn of(registration: &'a Registration) -> Self {
        Candidate {
            agent_type: &registration.agent_type,
            parent: &registration.parent,
            allow_duplicate: registration.allow_duplicate,
        }
    }

    /// The agent `request` asks for, as a deployment checks it before anything exists.
    pub fn of_request(request: &'a DeployRequest) -> Self {
        Candidate {
            agent_type: &request.agent_type,
            parent: &request.parent,
            allow_duplicate: request.allow_duplicate,
        }
    }
}

/// Checks every limit of `task` for `candidate` and returns the depth it would have.
pub fn check(task: &TaskSnapshot, candidate: Candidate<'_>) -> Result<u32, Error> {
    let agents = task.agents.iter().map(|a| Counted {
        id: &a.id,
        agent_type: &a.agent_type,
        status: &a.status,
        depth: a.depth,
    });
    let view = LimitView::count(&task.id, task.limits, agents, candidate);
    check_view(&view, candidate)
}

/// [`check`] on what it reads of a task: the one place every limit is decided.
pub fn check_view(view: &LimitView<'_>, candidate: Candidate<'_>) -> Result<u32, Error> {
    let task = view.task;
    let depth = match (candidate.parent, view.parent_depth) {
        (Parent::Orchestrator, _) => 1,
        (Parent::Agent(_), Some(d)) => d + 1,
        (Parent::Agent(parent), None) => {
            return Err(Error::UnknownParent {
                task: task.clone(),
                parent: parent.clone(),
            });
        }
    };
    let limits = view.limits;
    if depth > limits.max_depth {
        return Err(LimitExceeded::Depth {
            task: task.clone(),
            depth,
            limit: limits.max_depth,
        }
        .into());
    }
    let total = saturate(view.total);
    if total >= limits.max_agents {
        return Err(LimitExceeded::Total {
            task: task.clone(),
            total,
            limit: limits.max_agents,
        }
        .into());
    }
    let active = saturate(view.active);
    if active >= limits.max_concurrent {
        return Err(LimitExceeded::Concurrent {
            task: task.clone(),
            active,
            limit: limits.max_concurrent,
        }
        .into());
    }
    if !candidate.allow_duplicate
        && let Some(existing) = &view.active_of_type
    {
        return Err(LimitExceeded::DuplicateType {
            task: task.clone(),
            agent_type: candidate.agent_type.clone(),
            existing: existing.clone(),
        }
        .into());
    }
    Ok(depth)
}

/// Checks that `members` agents fit the task `view` counts, before any of them is checked
/// alone: a batch that does not fit is refused as a whole, with how many would. Then each
/// member is checked with [`check_view`] on the task as the members before it left it.
pub fn check_room(view: &LimitView<'_>, members: usize) -> Result<(), Error> {
    let limits = view.limits;
    let concurrent = limits.max_concurrent.saturating_sub(saturate(view.active));
    let total = limits.max_agents.saturating_sub(saturate(view.total));
    let (room, limit, value) = if concurrent <= total {
        (concurrent, "max_concurrent", limits.max_concurrent)
    } else {
        (total, "max_agents", limits.max_agents)
    };
    let members = saturate(members);
    if members > room {
        return Err(LimitExceeded::Batch {
            task: view.task.clone(),
            members,
            room,
            limit,
            value,
        }
        .into());
    }
    Ok(())
}

/// [`check`] for agents registered together (a batch): the room for all of them first
/// ([`check_room`]), then each in turn as if those before it were registered. Returns each
/// one's depth.
pub fn check_all(task: &TaskSnapshot, candidates: &[Candidate<'_>]) -> Result<Vec<u32>, Error> {
    let mut task = task.clone();
    let mut depths = Vec::with_capacity(candidates.len());
    for (i, candidate) in candidates.iter().enumerate() {
        if i == 0 && candidates.len() > 1 {
            let agents = task.agents.iter().map(|a| Counted {
                id: &a.id,
                agent_type: &a.agent_type,
                status: &a.status,
                depth: a.depth,
            });
            check_room(
                &LimitView::count(&task.id, task.limits, agents, *candidate),
                candidates.len(),
            )?;
        }
        let depth = check(&task, *candidate)?;
        depths.push(depth);
        // Counted as registered for those after it; only what the check reads matters.
        let id = crate::id::AgentId::parse(&format!("batch-member-{i}"))?;
        task.agents.push(crate::record::AgentRecord {
            id: id.clone(),
            agent_type: candidate.agent_type.clone(),
            session: crate::id::SessionName::for_agent(&id)?,
            parent: candidate.parent.clone(),
            depth,
            status: AgentStatus::Running,
            started_at: String::new(),
            confirmed: false,
            placement: None,
            extra: crate::extra::Extra::default(),
        });
    }
    Ok(depths)
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::SessionName;
    use crate::record::{AgentRecord, AgentStatus};

    fn task(limits: Limits, agents: &[(&str, &str, u32, AgentStatus)]) -> TaskSnapshot {
        TaskSnapshot {
            id: TaskId::parse("T").unwrap(),
            description: String::new(),
            status: "INITIALIZED".into(),
            priority: "P1".into(),
            created_at: String::new(),
            workspace: String::new(),
            limits,
            extra: Default::default(),
            agents: agents
                .iter()
                .map(|(id, ty, depth, status)| AgentRecord {
                    id: AgentId::parse(id).unwrap(),
                    agent_type: AgentType::parse(ty).unwrap(),
                    session: SessionName::parse(&format!("agent_{id}")).unwrap(),
                    parent: Parent::Orchestrator,
                    depth: *depth,
                    status: status.clone(),
                    started_at: String::new(),
                    confirmed: false,
                    placement: None,
                    extra: Default::default(),
                })
                .collect(),
        }
    }

    fn cand<'a>(ty: &'a AgentType, parent: &'a Parent, dup: bool) -> Candidate<'a> {
        Candidate {
            agent_type: ty,
            parent,
            allow_duplicate: dup,
        }
    }

    #[test]
    fn depth_is_parents_plus_one_and_enforced() {
        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        let t = task(
            limits,
            &[
                ("a", "x", 1, AgentStatus::Running),
                ("b", "y", 2, AgentStatus::Running),
            ],
        );
        let ty = AgentType::parse("z").unwrap();
        assert_eq!(
            check(&t, cand(&ty, &Parent::Orchestrator, false)).unwrap(),
            1
        );
        let pa = Parent::parse("a").unwrap();
        assert_eq!(check(&t, cand(&ty, &pa, false)).unwrap(), 2);
        let pb = Parent::parse("b").unwrap();
        let err = check(&t, cand(&ty, &pb, false)).unwrap_err().to_string();
        assert!(
            err.contains("max_depth = 2") && err.contains("depth 3"),
            "{err}"
        );
        let pc = Parent::parse("c").unwrap();
        let err = check(&t, cand(&ty, &pc, false)).unwrap_err().to_string();
        assert_eq!(err, "unknown parent agent c in task T");
    }

    #[test]
    fn concurrent_counts_only_active_agents() {
        let limits = Limits {
            max_concurrent: 2,
            ..Limits::default()
        };
        let t = task(
            limits,
            &[
                ("a", "x", 1, AgentStatus::Running),
                ("b", "y", 1, AgentStatus::Completed),
                ("c", "z", 1, AgentStatus::Blocked),
            ],
        );
        let ty = AgentType::parse("w").unwrap();
        let err = check(&t, cand(&ty, &Parent::Orchestrator, false))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("max_concurrent = 2") && err.contains("2 agents are active"),
            "{err}"
        );
    }

    #[test]
    fn total_counts_every_agent_ever() {
        let limits = Limits {
            max_agents: 2,
            ..Limits::default()
        };
        let t = task(
            limits,
            &[
                ("a", "x", 1, AgentStatus::Terminated),
                ("b", "y", 1, AgentStatus::Completed),
            ],
        );
        let ty = AgentType::parse("w").unwrap();
        let err = check(&t, cand(&ty, &Parent::Orchestrator, false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_agents = 2"), "{err}");
    }

    #[test]
    fn one_active_agent_per_type_unless_allowed() {
        let t = task(
            Limits::default(),
            &[
                ("a", "x", 1, AgentStatus::Working),
                ("b", "y", 1, AgentStatus::Completed),
            ],
        );
        let x = AgentType::parse("x").unwrap();
        let err = check(&t, cand(&x, &Parent::Orchestrator, false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("already has an active x agent (a)"), "{err}");
        assert!(check(&t, cand(&x, &Parent::Orchestrator, true)).is_ok());
        let y = AgentType::parse("y").unwrap();
        assert!(check(&t, cand(&y, &Parent::Orchestrator, false)).is_ok());
    }
}
