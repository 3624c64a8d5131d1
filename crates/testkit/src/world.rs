//! The fakes, wrapped, sharing one fault plan.

use deploy_core::{Deployer, HostName, Layout, Limits, TaskId};

use crate::{
    FakeBackend, FakeCheckouts, FakeJournal, FakePromptStore, FakeRegistry, FaultPlan, Faults,
    Faulty,
};

/// A complete fake environment for [`Deployer`].
#[derive(Debug)]
pub struct World {
    /// The layout paths are computed from (nothing is written there).
    pub layout: Layout,
    /// The session backend.
    pub backend: Faulty<FakeBackend>,
    /// The registry.
    pub registry: Faulty<FakeRegistry>,
    /// The prompt store.
    pub prompts: Faulty<FakePromptStore>,
    /// The intent journal.
    pub journal: Faulty<FakeJournal>,
    /// The checkouts.
    pub checkouts: Faulty<FakeCheckouts>,
    /// The fault plan and counters shared by all.
    pub faults: Faults,
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    /// Fakes with no faults.
    pub fn new() -> Self {
        World::with_plan(FaultPlan::new())
    }

    /// Fakes that follow `plan`.
    pub fn with_plan(plan: FaultPlan) -> Self {
        let faults = Faults::new(plan);
        World {
            layout: Layout::new("/fake-root"),
            backend: Faulty::new(FakeBackend::new(), faults.clone()),
            registry: Faulty::new(FakeRegistry::new(), faults.clone()),
            prompts: Faulty::new(FakePromptStore::new(), faults.clone()),
            journal: Faulty::new(FakeJournal::new(), faults.clone()),
            checkouts: Faulty::new(FakeCheckouts::new(), faults.clone()),
            faults,
        }
    }

    /// A deployer over the wrapped fakes, without a host identity.
    pub fn deployer(&self) -> Deployer<'_> {
        Deployer {
            layout: &self.layout,
            backend: &self.backend,
            registry: &self.registry,
            prompts: &self.prompts,
            journal: &self.journal,
            adopted: None,
            checkouts: Some(&self.checkouts),
            host: None,
        }
    }

    /// A deployer over the wrapped fakes that runs on `host`: two such deployers on different
    /// hosts share the registry, as hosts share a Postgres database.
    pub fn deployer_on<'w>(&'w self, host: &'w HostName) -> Deployer<'w> {
        Deployer {
            host: Some(host),
            ..self.deployer()
        }
    }

    /// Creates a task (no faults apply).
    pub fn create_task(&self, limits: Limits) -> TaskId {
        self.registry.inner().create_task(limits)
    }

    /// Whether no session, prompt file, intent or checkout exists.
    pub fn holds_nothing(&self) -> bool {
        self.backend.inner().session_count() == 0
            && self.prompts.inner().is_empty()
            && self.journal.inner().is_empty()
            && self.checkouts.inner().is_empty()
    }
}
