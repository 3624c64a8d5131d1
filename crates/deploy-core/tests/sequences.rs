//! Property tests over *sequences* of operations, after sled's `test_tree_failpoints.rs`:
//! deployments (some stopped in flight, as a concurrent deployer would be), agents exiting,
//! kills, reconciles, and `Restart` — every in-memory state forgotten without running a
//! destructor and every lock released, as SIGKILL does — under one fault plan whose k-th-call
//! rules count calls across the whole sequence, so they fire in the middle of anything.
//!
//! A reference model tracks which agents went Live and which must still be running. After every
//! step: no limit is exceeded and every resource (session, prompt file, registration) is
//! accounted for — by a registration or by an intent on record, which is what lets reconcile
//! find it. At the end, with the faults lifted and the deployments in flight dropped: a
//! reconcile leaves exactly the running agents the model expects, each registered, alive and
//! with its prompt file, nothing else, no intent — and a second reconcile finds nothing.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use deploy_core::batch::{BatchRegistered, BatchStarted, BatchWritten};
use deploy_core::checkout::{BRANCH_PREFIX, CHECKOUT_FIELD};
use deploy_core::reconcile::{self, ReconcileReport, Scope};
use deploy_core::{
    AgentId, AgentStatus, AgentType, AnyDeployment, BatchFailure, BatchId, BatchRequest, Checkout,
    CheckoutRequest, CheckoutState, DeployRequest, ExitStatus, Limits, LiveBatch, Liveness,
    StatusUpdate, TaskId,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use testkit::{FaultKind, FaultPlan, FaultRule, Op, StopAt, World, advance};

const TYPES: [&str; 3] = ["investigator", "builder", "fixer"];
const REPO: &str = "/repo";

#[derive(Debug, Clone)]
enum Action {
    /// Deploy an agent; with `stop_at`, leave it in flight at that state.
    Deploy {
        type_idx: usize,
        dies_at_start: bool,
        stop_at: Option<StopAt>,
        worktree: bool,
    },
    /// Deploy a batch of agents (each: its type, whether it dies at start); with `stop_at`,
    /// leave it in flight at that state.
    Batch {
        members: Vec<(usize, bool)>,
        stop_at: Option<StopAt>,
        worktree: bool,
    },
    /// Carry a deployment in flight on to Live.
    Resume(usize),
    /// Carry a batch in flight on to Live.
    ResumeBatch(usize),
    /// The agent of a running session exits, leaving work in its checkout if it has one:
    /// (uncommitted changes, commits).
    Exit(usize, i32, (bool, u32)),
    /// Kill a registered agent as `fleet kill` does: verified kill, recorded terminated, prompt
    /// file removed.
    Kill(usize),
    /// A full reconcile.
    Reconcile,
    /// SIGKILL of the process: forget the deployments in flight, release their locks.
    Restart,
}

#[derive(Debug, Clone)]
struct Case {
    limits: Limits,
    actions: Vec<Action>,
    faults: Vec<FaultRule>,
}

fn action_strategy() -> impl Strategy<Value = Action> {
    let stop = prop_oneof![
        4 => Just(None),
        1 => Just(Some(StopAt::PromptWritten)),
        1 => Just(Some(StopAt::SessionStarted)),
        1 => Just(Some(StopAt::Registered)),
    ];
    prop_oneof![
        6 => (0..3usize, prop::bool::weighted(0.15), stop, any::<bool>()).prop_map(
            |(type_idx, dies_at_start, stop_at, worktree)| Action::Deploy {
                type_idx,
                dies_at_start,
                stop_at,
                worktree,
            }
        ),
        2 => (
            proptest::collection::vec((0..3usize, prop::bool::weighted(0.1)), 1..4),
            prop_oneof![
                3 => Just(None),
                1 => Just(Some(StopAt::PromptWritten)),
                1 => Just(Some(StopAt::SessionStarted)),
                1 => Just(Some(StopAt::Registered)),
            ],
            any::<bool>()
        )
            .prop_map(|(members, stop_at, worktree)| Action::Batch {
                members,
                stop_at,
                worktree
            }),
        1 => any::<usize>().prop_map(Action::Resume),
        1 => any::<usize>().prop_map(Action::ResumeBatch),
        2 => (any::<usize>(), 0..3i32, (any::<bool>(), 0..2u32))
            .prop_map(|(i, code, work)| Action::Exit(i, code, work)),
        2 => any::<usize>().prop_map(Action::Kill),
        2 => Just(Action::Reconcile),
        1 => Just(Action::Restart),
    ]
}

fn fault_strategy() -> impl Strategy<Value = FaultRule> {
    // The operations a sequence calls (no capture, no task creation, no storage repair).
    let called: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|op| !matches!(op, Op::Capture | Op::CreateTask | Op::Repair))
        .collect();
    (
        proptest::sample::select(called),
        // Calls are counted across the sequence: a deployment makes about one call of each of
        // its operations, a reconcile several, so the first few calls fire mid-sequence.
        1u32..=4,
        prop_oneof![
            3 => Just(FaultKind::Transient),
            2 => Just(FaultKind::Persistent),
            1 => Just(FaultKind::Panic),
        ],
    )
        .prop_map(|(op, nth, kind)| FaultRule { op, nth, kind })
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        (1u32..4, 2u32..8),
        proptest::collection::vec(action_strategy(), 1..16),
        proptest::collection::vec(fault_strategy(), 0..5),
    )
        .prop_map(|((max_concurrent, max_agents), actions, faults)| Case {
            limits: Limits {
                max_agents,
                max_concurrent,
                max_depth: 5,
            },
            actions,
            faults,
        })
}

// ---- the model and the world ---------------------------------------------------------------

/// What the model knows.
#[derive(Debug, Default)]
struct Model {
    /// Every agent that ever went Live.
    went_live: BTreeSet<AgentId>,
    /// Live agents nothing has ended: they must be running at the end.
    running: BTreeSet<AgentId>,
    /// Every batch that began, with its members: each must be wholly confirmed or not at all.
    batches: BTreeMap<BatchId, BTreeSet<AgentId>>,
    /// Agents whose process exited, with the status code: one that exited 0 before its
    /// deployment confirmed it finished (it may go Live, then ends); any other code must fail
    /// its deployment.
    exited: BTreeMap<AgentId, i32>,
    /// What broke the model's rules as it happened (checked after the step).
    broken: Vec<String>,
}

impl Model {
    /// `agent`'s deployment went Live.
    fn live(&mut self, agent: &AgentId) {
        self.went_live.insert(agent.clone());
        match self.exited.get(agent) {
            None => {
                self.running.insert(agent.clone());
            }
            Some(0) => {}
            Some(code) => self
                .broken
                .push(format!("{agent} went Live after it exited with {code}")),
        }
    }
}

/// A batch in flight, at the state a step left it.
enum BatchInFlight<'a> {
    Written(BatchWritten<'a>),
    Started(BatchStarted<'a>),
    Registered(BatchRegistered<'a>),
}

/// Deploys a batch up to `stop_at` (or Live).
fn deploy_batch<'a>(
    world: &'a World,
    members: Vec<DeployRequest>,
    stop_at: Option<StopAt>,
    model: &mut Model,
) -> Option<BatchInFlight<'a>> {
    let request = BatchRequest {
        batch: None,
        members,
    };
    let written = guarded(|| world.deployer().begin_batch(request))?.ok()?;
    model.batches.insert(
        written.batch().clone(),
        written.agents().into_iter().collect(),
    );
    if stop_at == Some(StopAt::PromptWritten) {
        return Some(BatchInFlight::Written(written));
    }
    resume_batch(BatchInFlight::Written(written), stop_at, model)
}

/// Carries a batch in flight on to `stop_at` (or Live).
fn resume_batch<'a>(
    state: BatchInFlight<'a>,
    stop_at: Option<StopAt>,
    model: &mut Model,
) -> Option<BatchInFlight<'a>> {
    let result = guarded(
        move || -> Result<Result<LiveBatch, BatchInFlight<'a>>, BatchFailure> {
            let started = match state {
                BatchInFlight::Written(w) => w.start_sessions()?,
                BatchInFlight::Started(s) => s,
                BatchInFlight::Registered(r) => return r.confirm_live().map(Ok),
            };
            if stop_at == Some(StopAt::SessionStarted) {
                return Ok(Err(BatchInFlight::Started(started)));
            }
            let registered = started.register()?;
            if stop_at == Some(StopAt::Registered) {
                return Ok(Err(BatchInFlight::Registered(registered)));
            }
            registered.confirm_live().map(Ok)
        },
    );
    match result {
        Some(Ok(Ok(live))) => {
            for m in live.members() {
                model.live(&m.record().id);
            }
            None
        }
        Some(Ok(Err(in_flight))) => Some(in_flight),
        Some(Err(_)) | None => None,
    }
}

fn request(task: &TaskId, type_idx: usize, dies_at_start: bool, worktree: bool) -> DeployRequest {
    let command = if dies_at_start {
        vec!["fake-exit".to_owned(), "3".to_owned()]
    } else {
        vec!["agent".to_owned()]
    };
    let mut r = DeployRequest::new(
        task.clone(),
        AgentType::parse(TYPES[type_idx]).unwrap(),
        "work",
        command,
    );
    r.allow_duplicate = true;
    r.startup_grace = Duration::ZERO;
    r.checkout = worktree.then(|| CheckoutRequest {
        repo: REPO.into(),
        base: None,
        keep: false,
    });
    r
}

/// Runs `f`; an injected panic counts as a failed operation, as it would for a caller that
/// catches it (the MCP server does).
fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// Advances a fresh deployment to `stop_at` (or Live).
fn deploy<'a>(
    world: &'a World,
    req: DeployRequest,
    stop_at: Option<StopAt>,
    model: &mut Model,
) -> Option<AnyDeployment<'a>> {
    let result = guarded(|| advance(world.deployer(), req, stop_at));
    match result {
        Some(Ok(AnyDeployment::Live(live))) => {
            model.live(&live.record().id);
            None
        }
        Some(Ok(in_flight)) => Some(in_flight),
        Some(Err(_)) | None => None,
    }
}

/// Carries a deployment in flight on to Live.
fn resume(state: AnyDeployment<'_>, model: &mut Model) {
    let result = guarded(move || match state {
        AnyDeployment::PromptWritten(p) => p.start_session()?.register()?.confirm_live(),
        AnyDeployment::SessionStarted(s) => s.register()?.confirm_live(),
        AnyDeployment::Registered(r) => r.confirm_live(),
        AnyDeployment::Live(l) => Ok(l),
    });
    if let Some(Ok(live)) = result {
        model.live(&live.record().id);
    }
}

/// `fleet kill`'s sequence of calls (`ops::kill`): release (session, prompt file, checkout
/// retired), then record; stops at the first failure.
fn kill(world: &World, task: &TaskId, agent: &AgentId) {
    let registry = &world.registry;
    let _ = guarded(|| -> Result<(), deploy_core::Error> {
        let record = deploy_core::Registry::read_task(registry, task)?
            .agent(agent)
            .cloned()
            .ok_or_else(|| deploy_core::Error::UnknownAgent {
                task: task.clone(),
                agent: agent.clone(),
            })?;
        deploy_core::SessionBackend::kill(&world.backend, &record.session, agent)?;
        let prompt = world.layout.tracked_files(task, agent).prompt_file;
        deploy_core::PromptStore::remove(&world.prompts, &prompt)?;
        let mut update = StatusUpdate::now(AgentStatus::Terminated);
        if let Some(retired) = Checkout::of(&record)
            .and_then(|c| reconcile::retire(&world.deployer(), task, agent, &c))
        {
            update
                .fields
                .insert(CHECKOUT_FIELD.into(), retired.to_value());
        }
        if record.status.is_active() {
            update.reason = Some("killed".into());
            deploy_core::Registry::update_status(registry, task, agent, &update)?;
        } else if !update.fields.is_empty() {
            deploy_core::Registry::annotate(registry, task, agent, &update.fields)?;
        }
        Ok(())
    });
}

fn reconcile_once(world: &World) -> Option<ReconcileReport> {
    guarded(|| reconcile::reconcile(&world.deployer(), Scope::everything()).ok()).flatten()
}

// ---- the checks ----------------------------------------------------------------------------

/// After every step: limits hold, and every resource is accounted for by a registration or an
/// intent on record (so that reconcile can find it).
fn check_step(world: &World, task: &TaskId, model: &Model, step: usize) -> Result<(), String> {
    if let Some(broken) = model.broken.first() {
        return Err(format!("step {step}: {broken}"));
    }
    let state = world.registry.inner().snapshot();
    let t = &state.tasks[task];
    if t.active_count() > t.limits.max_concurrent as usize {
        return Err(format!(
            "step {step}: {} active agents over max_concurrent {}",
            t.active_count(),
            t.limits.max_concurrent
        ));
    }
    if t.agents.len() > t.limits.max_agents as usize {
        return Err(format!(
            "step {step}: {} agents over max_agents {}",
            t.agents.len(),
            t.limits.max_agents
        ));
    }
    let registered: BTreeSet<AgentId> = t.agents.iter().map(|a| a.id.clone()).collect();
    let intents: BTreeSet<AgentId> = world
        .journal
        .inner()
        .records()
        .into_iter()
        .map(|(r, _)| r.agent)
        .collect();
    let accounted = |agent: &AgentId| registered.contains(agent) || intents.contains(agent);
    for s in world.backend.inner().sessions() {
        if !accounted(&s.spec.agent) {
            return Err(format!(
                "step {step}: session of {} is accounted for by nothing",
                s.spec.agent
            ));
        }
    }
    for agent in prompt_owners(world, task) {
        if !accounted(&agent) {
            return Err(format!(
                "step {step}: prompt file of {agent} is accounted for by nothing"
            ));
        }
    }
    for (_, branch) in world.checkouts.inner().branches().keys() {
        let agent = AgentId::parse(branch.trim_start_matches(BRANCH_PREFIX)).unwrap();
        if !accounted(&agent) {
            return Err(format!(
                "step {step}: branch {branch} is accounted for by nothing"
            ));
        }
    }
    for (batch, members) in &model.batches {
        let confirmed = t
            .agents
            .iter()
            .filter(|a| a.confirmed && members.contains(&a.id))
            .count();
        if confirmed != 0 && confirmed != members.len() {
            return Err(format!(
                "step {step}: batch {batch} has {confirmed} of {} members confirmed",
                members.len()
            ));
        }
    }
    for agent in &registered {
        if !model.went_live.contains(agent) && !intents.contains(agent) {
            return Err(format!(
                "step {step}: {agent} is registered, never went Live, and has no intent"
            ));
        }
    }
    Ok(())
}

/// The agents whose prompt file exists.
fn prompt_owners(world: &World, task: &TaskId) -> Vec<AgentId> {
    let dir = world.layout.task_dir(task);
    world
        .prompts
        .inner()
        .files()
        .keys()
        .filter_map(|path| {
            let name = path.strip_prefix(&dir).ok()?.as_str();
            let id = name.strip_prefix("agent_prompt_")?.strip_suffix(".txt")?;
            AgentId::parse(id).ok()
        })
        .collect()
}

/// At the end, faults lifted: exactly the running agents remain, whole; nothing else.
fn check_end(
    world: &World,
    task: &TaskId,
    model: &Model,
    second: &ReconcileReport,
) -> Result<(), String> {
    if !second.is_empty() {
        return Err(format!("a second reconcile found something: {second:?}"));
    }
    if !world.journal.inner().is_empty() {
        return Err(format!(
            "intents left: {:?}",
            world.journal.inner().records()
        ));
    }
    let state = world.registry.inner().snapshot();
    let t = &state.tasks[task];
    for (batch, members) in &model.batches {
        let registered = members.iter().filter(|m| t.agent(m).is_some()).count();
        if registered != 0 && registered != members.len() {
            return Err(format!(
                "batch {batch}: {registered} of {} members registered after reconcile",
                members.len()
            ));
        }
    }
    let active: BTreeSet<AgentId> = t
        .agents
        .iter()
        .filter(|a| a.status.is_active())
        .map(|a| a.id.clone())
        .collect();
    for a in &t.agents {
        if !model.went_live.contains(&a.id) {
            return Err(format!("{} is registered but never went Live", a.id));
        }
    }
    for agent in &model.running {
        if !active.contains(agent) {
            return Err(format!(
                "{agent} went Live, nothing ended it, but it is not active"
            ));
        }
    }
    let sessions = world.backend.inner().sessions();
    let alive: BTreeSet<AgentId> = sessions
        .iter()
        .filter(|s| s.liveness == Liveness::Alive)
        .map(|s| s.spec.agent.clone())
        .collect();
    for s in &sessions {
        if !active.contains(&s.spec.agent) || s.liveness != Liveness::Alive {
            return Err(format!(
                "session of {} left ({:?}; active: {})",
                s.spec.agent,
                s.liveness,
                active.contains(&s.spec.agent)
            ));
        }
    }
    if active != alive {
        return Err(format!(
            "active agents {active:?} but running sessions {alive:?}"
        ));
    }
    let prompts: BTreeSet<AgentId> = prompt_owners(world, task).into_iter().collect();
    if prompts != active {
        return Err(format!(
            "prompt files {prompts:?} but active agents {active:?}"
        ));
    }
    check_checkouts(world, t)
}

/// Each recorded checkout is what its agent's state says: active ones whole, ended ones retired
/// to exactly what holds work; no branch of an agent the registry does not know.
fn check_checkouts(world: &World, t: &deploy_core::TaskSnapshot) -> Result<(), String> {
    let branches = world.checkouts.inner().branches();
    for (_, branch) in branches.keys() {
        let id = AgentId::parse(branch.trim_start_matches(BRANCH_PREFIX)).unwrap();
        if t.agent(&id).is_none() {
            return Err(format!("branch {branch} of an unregistered agent"));
        }
    }
    for a in &t.agents {
        let Some(c) = Checkout::of(a) else { continue };
        let held = branches.get(&(REPO.into(), c.branch.clone()));
        let ok = match (a.status.is_active(), c.state, held) {
            (true, CheckoutState::Active, Some(h)) => h.path.is_some(),
            (false, CheckoutState::KeptDirty, Some(h)) => h.path.is_some() && h.dirty,
            (false, CheckoutState::BranchOnly, Some(h)) => h.path.is_none() && h.commits > 0,
            (false, CheckoutState::Removed, None) => true,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "{} ({}) records its checkout {:?} but holds {held:?}",
                a.id, a.status, c.state
            ));
        }
    }
    Ok(())
}

/// Runs one case; returns how many fault rules fired.
fn run(case: &Case) -> Result<usize, String> {
    testkit::silence_injected_panics();
    let world = World::new();
    let task = world.create_task(case.limits);
    world.faults.set_plan(FaultPlan {
        rules: case.faults.clone(),
    });
    let mut model = Model::default();
    let mut in_flight: Vec<AnyDeployment<'_>> = Vec::new();
    let mut batches: Vec<BatchInFlight<'_>> = Vec::new();
    for (step, action) in case.actions.iter().enumerate() {
        match action {
            Action::Deploy {
                type_idx,
                dies_at_start,
                stop_at,
                worktree,
            } => {
                let req = request(&task, *type_idx, *dies_at_start, *worktree);
                if let Some(state) = deploy(&world, req, *stop_at, &mut model) {
                    in_flight.push(state);
                }
            }
            Action::Batch {
                members,
                stop_at,
                worktree,
            } => {
                let members = members
                    .iter()
                    .map(|(type_idx, dies)| request(&task, *type_idx, *dies, *worktree))
                    .collect();
                if let Some(state) = deploy_batch(&world, members, *stop_at, &mut model) {
                    batches.push(state);
                }
            }
            Action::ResumeBatch(i) if !batches.is_empty() => {
                let state = batches.remove(i % batches.len());
                if let Some(state) = resume_batch(state, None, &mut model) {
                    batches.push(state);
                }
            }
            Action::Resume(i) if !in_flight.is_empty() => {
                let state = in_flight.remove(i % in_flight.len());
                resume(state, &mut model);
            }
            Action::Exit(i, code, (dirty, commits)) => {
                let alive: Vec<_> = world
                    .backend
                    .inner()
                    .sessions()
                    .into_iter()
                    .filter(|s| s.liveness == Liveness::Alive)
                    .collect();
                if !alive.is_empty() {
                    let s = &alive[i % alive.len()];
                    let branch = deploy_core::checkout::branch_of(&s.spec.agent);
                    world
                        .checkouts
                        .inner()
                        .work(REPO.into(), &branch, *dirty, *commits);
                    world
                        .backend
                        .inner()
                        .end_agent(&s.spec.session, ExitStatus::Code(*code));
                    model.running.remove(&s.spec.agent);
                    model.exited.insert(s.spec.agent.clone(), *code);
                }
            }
            Action::Kill(i) => {
                let agents = world.registry.inner().snapshot().tasks[&task]
                    .agents
                    .clone();
                if !agents.is_empty() {
                    let agent = agents[i % agents.len()].id.clone();
                    model.running.remove(&agent);
                    kill(&world, &task, &agent);
                }
            }
            Action::Reconcile => {
                reconcile_once(&world);
            }
            Action::Restart => {
                for state in in_flight.drain(..) {
                    std::mem::forget(state);
                }
                for state in batches.drain(..) {
                    std::mem::forget(state);
                }
                world.journal.inner().crash();
            }
            Action::Resume(_) | Action::ResumeBatch(_) => {}
        }
        check_step(&world, &task, &model, step)?;
    }
    let fired = world.faults.fired().len();
    world.faults.set_plan(FaultPlan::new());
    in_flight.clear(); // dropped: rolled back
    batches.clear();
    reconcile_once(&world).ok_or("the final reconcile failed without faults")?;
    let second = reconcile_once(&world).ok_or("the second reconcile failed without faults")?;
    check_end(&world, &task, &model, &second)?;
    Ok(fired)
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

#[test]
fn sequences_of_operations_under_faults_leak_nothing_and_reconcile_to_the_model() {
    let cases = cases();
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let with_fired = AtomicUsize::new(0);
    let rules_fired = AtomicUsize::new(0);
    let result = runner.run(&case_strategy(), |case| {
        let fired = run(&case).map_err(TestCaseError::fail)?;
        rules_fired.fetch_add(fired, Ordering::Relaxed);
        with_fired.fetch_add(usize::from(fired > 0), Ordering::Relaxed);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let with_fired = with_fired.into_inner();
    eprintln!(
        "{cases} sequences; {with_fired} had a fault fire; {} faults fired in all",
        rules_fired.into_inner()
    );
    assert!(
        with_fired * 3 >= cases as usize,
        "faults fired in only {with_fired} of {cases} sequences"
    );
}

// ---- frozen counterexamples ----------------------------------------------------------------

fn limits(max_concurrent: u32, max_agents: u32) -> Limits {
    Limits {
        max_agents,
        max_concurrent,
        max_depth: 5,
    }
}

fn live_deploy() -> Action {
    Action::Deploy {
        type_idx: 0,
        dies_at_start: false,
        stop_at: None,
        worktree: false,
    }
}

/// Postmortem: reconcile recorded an agent that had exited as completed, then its session's
/// kill failed — logged only. The dead session stayed behind a registration that said
/// "completed", which no later reconcile looks at again. An end is now recorded only after the
/// agent's leftovers are released; until then it stays a zombie that the next reconcile
/// finishes.
#[test]
fn regression_a_failed_kill_while_recording_an_end_left_the_dead_session() {
    let case = Case {
        limits: limits(1, 2),
        actions: vec![
            live_deploy(),
            Action::Exit(0, 0, (false, 0)),
            Action::Reconcile,
        ],
        faults: vec![FaultRule {
            op: Op::Kill,
            nth: 1,
            kind: FaultKind::Transient,
        }],
    };
    assert_eq!(run(&case), Ok(1));
}

/// The same hole on `fleet kill`'s path: the prompt file's removal failed after the agent was
/// recorded terminated, and nothing ever looked for it again. `ops::kill` (and this test's
/// `kill`) now release first and record last.
#[test]
fn regression_a_failed_prompt_removal_in_a_kill_left_the_prompt_file() {
    let case = Case {
        limits: limits(1, 2),
        actions: vec![live_deploy(), Action::Kill(0), Action::Reconcile],
        faults: vec![FaultRule {
            op: Op::RemovePrompt,
            nth: 1,
            kind: FaultKind::Transient,
        }],
    };
    assert_eq!(run(&case), Ok(1));
}

/// A deployment in flight survives a reconcile beside it, and SIGKILL of its process hands it
/// to the next reconcile, which rolls it back.
#[test]
fn a_deployment_in_flight_is_left_alone_until_its_process_dies() {
    let in_flight = Action::Deploy {
        type_idx: 1,
        dies_at_start: false,
        stop_at: Some(StopAt::Registered),
        worktree: false,
    };
    let case = Case {
        limits: limits(2, 4),
        actions: vec![in_flight.clone(), Action::Reconcile, Action::Resume(0)],
        faults: Vec::new(),
    };
    assert_eq!(run(&case), Ok(0));
    let crashed = Case {
        limits: limits(2, 4),
        actions: vec![in_flight, Action::Restart, Action::Reconcile],
        faults: Vec::new(),
    };
    assert_eq!(run(&crashed), Ok(0));
}

/// Postmortem: an abandoned intent whose task could not be read was to be kept for the next
/// reconcile, but dropping its guard released it — deleting the intent and orphaning the prompt
/// file it accounted for. Keeping an intent is now its own operation (`IntentGuard::keep`).
#[test]
fn regression_an_intent_kept_because_its_task_was_unreadable_was_deleted() {
    let case = Case {
        limits: limits(1, 2),
        actions: vec![
            Action::Deploy {
                type_idx: 0,
                dies_at_start: false,
                stop_at: Some(StopAt::PromptWritten),
                worktree: false,
            },
            Action::Restart,
            Action::Reconcile,
        ],
        faults: vec![FaultRule {
            op: Op::ReadTask,
            nth: 2,
            kind: FaultKind::Transient,
        }],
    };
    assert_eq!(run(&case), Ok(1));
}

/// Postmortem: the rollback of an abandoned intent read its task with the intent's guard armed;
/// a panic in that read dropped the guard, which — nothing having failed before it — deleted
/// the intent, while the prompt file an earlier failed rollback had left was still there. The
/// read now happens before the guard exists, so a panic leaves the record for the next run.
#[test]
fn regression_a_panic_reading_the_task_during_a_rollback_deleted_the_intent() {
    let case = Case {
        limits: limits(1, 2),
        actions: vec![
            live_deploy(),
            live_deploy(),
            live_deploy(),
            Action::Reconcile,
        ],
        faults: vec![
            FaultRule {
                op: Op::ReadTask,
                nth: 4,
                kind: FaultKind::Panic,
            },
            FaultRule {
                op: Op::Register,
                nth: 1,
                kind: FaultKind::Transient,
            },
            FaultRule {
                op: Op::RemovePrompt,
                nth: 1,
                kind: FaultKind::Transient,
            },
        ],
    };
    assert_eq!(run(&case), Ok(3));
}

/// Break 14 of the hostile review: reconcile rewrote the registry once per stale agent. The
/// ends of a task's stale agents are now recorded in one registry transaction.
#[test]
fn reconcile_records_a_task_s_stale_agents_in_one_registry_transaction() {
    let world = World::new();
    let task = world.create_task(limits(20, 20));
    let mut model = Model::default();
    for type_idx in 0..3 {
        let req = request(&task, type_idx, false, false);
        assert!(deploy(&world, req, None, &mut model).is_none(), "Live");
    }
    for s in world.backend.inner().sessions() {
        world
            .backend
            .inner()
            .end_agent(&s.spec.session, ExitStatus::Code(0));
    }
    let before = world.faults.calls(Op::UpdateStatus);
    let report = reconcile_once(&world).unwrap();
    assert_eq!(report.zombies.len(), 3);
    assert_eq!(world.faults.calls(Op::UpdateStatus) - before, 1);
    let state = world.registry.inner().snapshot();
    assert!(
        state.tasks[&task]
            .agents
            .iter()
            .all(|a| a.status == AgentStatus::Completed)
    );
    assert_eq!(world.backend.inner().session_count(), 0);
}

/// Postmortem: the registry's confirmation was first written *before* the intent's deletion.
/// When the deletion then failed, the rollback's unregister failed too, and the registration
/// stayed marked confirmed — which reconcile never rolls back — for an agent whose deployment
/// had failed. The confirmation now comes after the deletion, the commit point.
#[test]
fn regression_a_confirmation_before_the_commit_left_a_failed_deployment_registered() {
    let case = Case {
        limits: limits(1, 2),
        actions: vec![live_deploy()],
        faults: vec![
            FaultRule {
                op: Op::FinishIntent,
                nth: 1,
                kind: FaultKind::Transient,
            },
            FaultRule {
                op: Op::Unregister,
                nth: 1,
                kind: FaultKind::Transient,
            },
        ],
    };
    assert_eq!(run(&case), Ok(2));
}

/// Shrunk from the sequence test: a batch whose members the registry had confirmed — its one
/// commit — then panicked deleting a member's intent. The panic failed the whole batch
/// although every member was Live and confirmed, so the caller was told it failed while its
/// agents ran. Past the commit, a member's intent deletion now only logs what it could not do
/// (reconcile removes the intent), and the batch is Live.
#[test]
fn regression_a_panic_deleting_an_intent_after_a_batch_s_commit_failed_the_live_batch() {
    let case = Case {
        limits: limits(2, 2),
        actions: vec![Action::Batch {
            members: vec![(0, false)],
            stop_at: None,
            worktree: false,
        }],
        faults: vec![FaultRule {
            op: Op::FinishIntent,
            nth: 1,
            kind: FaultKind::Panic,
        }],
    };
    assert_eq!(run(&case), Ok(1));
}
