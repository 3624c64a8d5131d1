//! A task as reconcile reads it ([`Registry::roster`](crate::Registry::roster)): every agent's
//! id, status, checkout and host, and the whole record of the active ones only. An idle reconcile of a
//! task of 10,000 agents, most of them ended, reads that much and no more.

use std::collections::HashSet;

use crate::checkout::Checkout;
use crate::id::{AgentId, HostName, TaskId};
use crate::record::{AgentRecord, AgentStatus, TaskSnapshot};

/// One agent of a [`TaskRoster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// Its id.
    pub id: AgentId,
    /// Its status.
    pub status: AgentStatus,
    /// Its checkout, as recorded ([`Checkout::of`]).
    pub checkout: Option<Checkout>,
    /// The host it runs on, as recorded ([`AgentRecord::host`]).
    pub host: Option<HostName>,
    /// Its whole record: `Some` exactly when its status is active.
    pub record: Option<AgentRecord>,
}

/// Every agent of a task, in registration order, the active ones whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRoster {
    /// The task.
    pub id: TaskId,
    /// Its agents, in registration order.
    pub agents: Vec<RosterEntry>,
}

impl RosterEntry {
    /// The entry for `record`, which it keeps only if it is active.
    pub fn of(record: AgentRecord) -> RosterEntry {
        RosterEntry {
            id: record.id.clone(),
            status: record.status.clone(),
            checkout: Checkout::of(&record),
            host: record.host(),
            record: record.status.is_active().then_some(record),
        }
    }
}

impl TaskRoster {
    /// The roster of `snapshot` (what [`Registry::roster`](crate::Registry::roster) does by
    /// default).
    pub fn of(snapshot: TaskSnapshot) -> TaskRoster {
        TaskRoster {
            id: snapshot.id,
            agents: snapshot.agents.into_iter().map(RosterEntry::of).collect(),
        }
    }

    /// Whether `agent` is one of the task's.
    pub fn holds(&self, agent: &AgentId) -> bool {
        self.agents.iter().any(|a| &a.id == agent)
    }

    /// Every agent's id.
    pub fn ids(&self) -> HashSet<&AgentId> {
        self.agents.iter().map(|a| &a.id).collect()
    }

    /// The active agents' records.
    pub fn active(&self) -> impl Iterator<Item = &AgentRecord> {
        self.agents.iter().filter_map(|a| a.record.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{AgentType, SessionName};
    use crate::record::Parent;
    use serde_json::json;

    fn record(id: &str, status: AgentStatus) -> AgentRecord {
        let id = AgentId::parse(id).expect("valid id");
        let mut extra = crate::Extra::new();
        extra.insert(
            crate::checkout::CHECKOUT_FIELD,
            &json!({"repo": "/r", "base": "main", "base_ref": "abc", "branch": format!("fleet/{id}"),
                   "path": "/w", "state": "active"}),
        );
        AgentRecord {
            session: SessionName::for_agent(&id).expect("valid session"),
            id,
            agent_type: AgentType::parse("t").expect("valid type"),
            parent: Parent::Orchestrator,
            depth: 1,
            status,
            started_at: String::new(),
            confirmed: true,
            placement: None,
            extra,
        }
    }

    #[test]
    fn keeps_whole_records_of_active_agents_only() {
        let running = record("a-000001-000000", AgentStatus::Running);
        let done = record("b-000001-000000", AgentStatus::Completed);
        let entries = [RosterEntry::of(running.clone()), RosterEntry::of(done)];
        assert_eq!(entries[0].record.as_ref(), Some(&running));
        assert_eq!(entries[1].record, None);
        assert!(entries.iter().all(|e| e.checkout.is_some()));
    }
}
