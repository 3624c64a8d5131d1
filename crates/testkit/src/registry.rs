//! An in-memory registry with the real limit checks.

use std::collections::BTreeMap;
use std::sync::Mutex;

use deploy_core::checkout::CHECKOUT_FIELD;
use deploy_core::limits::{self, Candidate};
use deploy_core::{
    AgentId, AgentRecord, AgentStatus, BATCH_FIELD, Error, Extra, HOST_FIELD, Limits, NewTask,
    Registration, Registry, RepairReport, StatusUpdate, TaskId, TaskSnapshot, TaskSummary,
};

use crate::lock;

/// Everything a [`FakeRegistry`] holds; compare two to check a rollback restored the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryState {
    /// The tasks, with their agents.
    pub tasks: BTreeMap<TaskId, TaskSnapshot>,
    /// The global index: agent to task.
    pub global: BTreeMap<AgentId, TaskId>,
}

/// Tasks and a global index in memory; `register` runs deploy-core's limit checks.
#[derive(Debug, Default)]
pub struct FakeRegistry {
    state: Mutex<RegistryState>,
}

impl FakeRegistry {
    /// No tasks.
    pub fn new() -> Self {
        FakeRegistry::default()
    }

    /// Creates a task with a generated id.
    pub fn create_task(&self, limits: Limits) -> TaskId {
        let mut n = lock(&self.state).tasks.len();
        loop {
            n += 1;
            if let Ok(id) = TaskId::parse(&format!("TASK-FAKE-{n:04}"))
                && self.create_task_with_id(id.clone(), limits)
            {
                return id;
            }
        }
    }

    /// Creates a task with this id; `false` if it exists.
    pub fn create_task_with_id(&self, id: TaskId, limits: Limits) -> bool {
        let mut s = lock(&self.state);
        if s.tasks.contains_key(&id) {
            return false;
        }
        s.tasks.insert(
            id.clone(),
            TaskSnapshot {
                id: id.clone(),
                description: "fake task".into(),
                status: "INITIALIZED".into(),
                priority: "P1".into(),
                created_at: String::new(),
                workspace: format!("/fake-root/{id}"),
                limits,
                agents: Vec::new(),
                extra: Default::default(),
            },
        );
        true
    }

    /// Changes a task's limits (to set up states the limits would refuse).
    pub fn set_limits(&self, task: &TaskId, limits: Limits) -> bool {
        match lock(&self.state).tasks.get_mut(task) {
            Some(t) => {
                t.limits = limits;
                true
            }
            None => false,
        }
    }

    /// A copy of everything.
    pub fn snapshot(&self) -> RegistryState {
        lock(&self.state).clone()
    }
}

impl Registry for FakeRegistry {
    fn create_task(&self, new: &NewTask) -> Result<TaskSnapshot, Error> {
        new.validate()?;
        let id = self.create_task(new.limits);
        let mut s = lock(&self.state);
        let task = s
            .tasks
            .get_mut(&id)
            .ok_or_else(|| Error::UnknownTask(id.clone()))?;
        task.description = new.description.clone();
        task.priority = new.priority_or_default().to_owned();
        Ok(task.clone())
    }

    fn register_all(&self, registrations: &[Registration]) -> Result<Vec<AgentRecord>, Error> {
        let Some(first) = registrations.first() else {
            return Ok(Vec::new());
        };
        let mut s = lock(&self.state);
        for (i, r) in registrations.iter().enumerate() {
            let again = registrations[..i]
                .iter()
                .any(|earlier| earlier.agent == r.agent);
            if r.task != first.task {
                return Err(Error::InvalidRequest(format!(
                    "agents of tasks {} and {} cannot be registered together",
                    first.task, r.task
                )));
            }
            if again || s.global.contains_key(&r.agent) {
                return Err(Error::DuplicateAgent {
                    task: r.task.clone(),
                    agent: r.agent.clone(),
                });
            }
        }
        let task = s
            .tasks
            .get_mut(&first.task)
            .ok_or_else(|| Error::UnknownTask(first.task.clone()))?;
        let candidates: Vec<Candidate<'_>> = registrations.iter().map(Candidate::of).collect();
        let depths = limits::check_all(task, &candidates)?;
        let mut records = Vec::with_capacity(registrations.len());
        for (r, depth) in registrations.iter().zip(depths) {
            let mut extra: Extra = r
                .checkout
                .iter()
                .map(|c| (CHECKOUT_FIELD.to_owned(), c.to_value()))
                .collect();
            if let Some(batch) = &r.batch {
                extra.insert(BATCH_FIELD, &serde_json::json!(batch));
            }
            if let Some(host) = &r.host {
                extra.insert(HOST_FIELD, &serde_json::json!(host));
            }
            let record = AgentRecord {
                id: r.agent.clone(),
                agent_type: r.agent_type.clone(),
                session: r.session.clone(),
                parent: r.parent.clone(),
                depth,
                status: AgentStatus::Running,
                started_at: r.started_at.clone(),
                confirmed: false,
                placement: Some(r.placement.clone()),
                extra,
            };
            task.agents.push(record.clone());
            records.push(record);
        }
        for r in registrations {
            s.global.insert(r.agent.clone(), r.task.clone());
        }
        Ok(records)
    }

    fn confirm_all(&self, task: &TaskId, agents: &[AgentId]) -> Result<(), Error> {
        let mut s = lock(&self.state);
        let t = s
            .tasks
            .get_mut(task)
            .ok_or_else(|| Error::UnknownTask(task.clone()))?;
        if let Some(missing) = agents.iter().find(|id| t.agent(id).is_none()) {
            return Err(Error::UnknownAgent {
                task: task.clone(),
                agent: missing.clone(),
            });
        }
        for a in t.agents.iter_mut().filter(|a| agents.contains(&a.id)) {
            a.confirmed = true;
        }
        Ok(())
    }

    fn unregister(&self, task: &TaskId, agent: &AgentId) -> Result<bool, Error> {
        let mut s = lock(&self.state);
        let t = s
            .tasks
            .get_mut(task)
            .ok_or_else(|| Error::UnknownTask(task.clone()))?;
        let before = t.agents.len();
        t.agents.retain(|a| &a.id != agent);
        let removed = t.agents.len() != before;
        let indexed = s.global.remove(agent).is_some();
        Ok(removed || indexed)
    }

    fn update_status(
        &self,
        task: &TaskId,
        agent: &AgentId,
        update: &StatusUpdate,
    ) -> Result<(), Error> {
        self.update_statuses(task, &[(agent.clone(), update.clone())])
    }

    fn update_statuses(
        &self,
        task: &TaskId,
        updates: &[(AgentId, StatusUpdate)],
    ) -> Result<(), Error> {
        let mut s = lock(&self.state);
        let t = s
            .tasks
            .get_mut(task)
            .ok_or_else(|| Error::UnknownTask(task.clone()))?;
        // All or nothing: check every agent first.
        if let Some((agent, _)) = updates.iter().find(|(a, _)| t.agent(a).is_none()) {
            return Err(Error::UnknownAgent {
                task: task.clone(),
                agent: agent.clone(),
            });
        }
        for (agent, update) in updates {
            if let Some(a) = t.agents.iter_mut().find(|a| &a.id == agent) {
                a.status = update.status.clone();
                a.extra.extend(&update.fields);
            }
        }
        Ok(())
    }

    fn annotate(
        &self,
        task: &TaskId,
        agent: &AgentId,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), Error> {
        let mut s = lock(&self.state);
        let a = s
            .tasks
            .get_mut(task)
            .ok_or_else(|| Error::UnknownTask(task.clone()))?
            .agents
            .iter_mut()
            .find(|a| &a.id == agent)
            .ok_or_else(|| Error::UnknownAgent {
                task: task.clone(),
                agent: agent.clone(),
            })?;
        a.extra.extend(fields);
        Ok(())
    }

    fn read_task(&self, task: &TaskId) -> Result<TaskSnapshot, Error> {
        lock(&self.state)
            .tasks
            .get(task)
            .cloned()
            .ok_or_else(|| Error::UnknownTask(task.clone()))
    }

    fn list_tasks(&self) -> Result<Vec<TaskSummary>, Error> {
        Ok(lock(&self.state)
            .tasks
            .values()
            .map(TaskSnapshot::summary)
            .collect())
    }

    /// Counters are derived and there is no separate storage: nothing can drift.
    fn repair(&self, task: Option<&TaskId>, _dry_run: bool) -> Result<RepairReport, Error> {
        if let Some(t) = task {
            self.read_task(t)?;
        }
        Ok(RepairReport::default())
    }
}
