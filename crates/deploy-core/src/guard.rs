//! One guard per resource of a deployment: the intent, the checkout (with `--worktree`), the
//! prompt file, the session, the registration.
//!
//! A guard owns its resource. [`release`](SessionGuard::release) consumes it, lets the
//! resource go and returns its line of the cleanup report; dropping an armed guard does the same
//! and logs the line (never panics: a panicking service call is caught and reported). `commit`
//! disarms it: the resource now belongs to the registry. Guards have no public constructor —
//! only a deployment (or reconcile, from a validated intent) makes them.
//!
//! The guards of one deployment share a ledger of what their releases did, so that the
//! intent guard, released last, knows whether anything before it was left behind: it deletes the
//! intent only when everything else was released, and otherwise keeps it (unlocked) for
//! `fleet reconcile` to finish the job.
//!
//! ```compile_fail,E0599
//! // No public constructor.
//! let g = deploy_core::guard::PromptGuard::arm(todo!(), todo!(), todo!());
//! ```
//!
//! ```compile_fail,E0382
//! // A released guard is gone.
//! fn twice(g: deploy_core::guard::SessionGuard<'_>) {
//!     let _ = g.release();
//!     let _ = g.release();
//! }
//! ```
//!
//! ```compile_fail,E0277
//! // A guard cannot be copied: one resource, one owner.
//! fn copy(g: deploy_core::guard::RegistrationGuard<'_>) {
//!     fn needs_clone<T: Clone>(_: T) {}
//!     needs_clone(g);
//! }
//! ```
//!
//! ```compile_fail,E0616
//! // A state's guards cannot be taken out of it: only its transitions move them.
//! fn steal(s: deploy_core::SessionStarted<'_>) {
//!     let _g = s.session;
//! }
//! ```

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};

use camino::Utf8PathBuf;

use crate::Error;
use crate::backend::SessionBackend;
use crate::checkout::Checkouts;
use crate::failure::{CleanupEntry, CleanupOutcome, CleanupReport, Resource};
use crate::id::{AgentId, SessionName, TaskId};
use crate::journal::IntentLease;
use crate::prompt::PromptStore;
use crate::registry::Registry;

/// What the releases of one deployment's guards did, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ledger(Arc<Mutex<Vec<CleanupEntry>>>);

impl Ledger {
    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<CleanupEntry>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, entry: &CleanupEntry) {
        self.entries().push(entry.clone());
    }

    fn unreleased(&self) -> usize {
        self.entries()
            .iter()
            .filter(|e| matches!(e.outcome, CleanupOutcome::NotReleased(_)))
            .count()
    }

    /// Everything released so far, as a report.
    pub(crate) fn report(&self) -> CleanupReport {
        CleanupReport {
            entries: self.entries().clone(),
        }
    }
}

/// A resource as a guard holds it, and how it lets go.
trait Hold: fmt::Debug {
    fn release(self, ledger: &Ledger) -> CleanupEntry;
}

/// The armed part of every guard: the resource until it is released or committed.
#[derive(Debug)]
struct Armed<H: Hold> {
    held: Option<H>,
    ledger: Ledger,
}

impl<H: Hold> Armed<H> {
    fn new(held: H, ledger: &Ledger) -> Self {
        Armed {
            held: Some(held),
            ledger: ledger.clone(),
        }
    }

    fn release(mut self) -> Option<CleanupEntry> {
        self.release_now()
    }

    fn release_now(&mut self) -> Option<CleanupEntry> {
        let entry = self.held.take()?.release(&self.ledger);
        self.ledger.record(&entry);
        Some(entry)
    }

    fn disarm(mut self) -> H {
        match self.held.take() {
            Some(held) => held,
            // Every constructor arms, and release/commit/disarm consume the guard.
            None => unreachable!("a guard is armed until it is consumed"),
        }
    }
}

impl<H: Hold> Drop for Armed<H> {
    fn drop(&mut self) {
        if let Some(entry) = self.release_now() {
            match &entry.outcome {
                CleanupOutcome::NotReleased(why) => {
                    tracing::warn!(
                        "dropped before Live: {} NOT RELEASED: {why}",
                        entry.resource
                    );
                }
                _ => tracing::info!("dropped before Live: {} released", entry.resource),
            }
        }
    }
}

/// How a guarded call went wrong.
pub(crate) enum Fault {
    Failed(Error),
    Panicked(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Failed(e) => e.fmt(f),
            Fault::Panicked(msg) => write!(f, "panicked: {msg}"),
        }
    }
}

/// Runs a cleanup call, catching a panic: cleanup runs in Drop, where a second panic would
/// abort.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Fault> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Fault::Failed(e)),
        Err(panic) => Err(Fault::Panicked(
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned()),
        )),
    }
}

/// The usual outcome of a cleanup call that says whether there was something to release.
fn outcome(result: Result<bool, Fault>) -> CleanupOutcome {
    match result {
        Ok(true) => CleanupOutcome::Released,
        Ok(false) => CleanupOutcome::AlreadyGone,
        Err(e) => CleanupOutcome::NotReleased(e.to_string()),
    }
}

/// The one line of the report a guard's release gives.
macro_rules! release_fn {
    () => {
        /// Lets the resource go and returns its line of the cleanup report.
        pub fn release(self) -> CleanupEntry {
            match self.armed.release() {
                Some(entry) => entry,
                None => unreachable!("a guard is armed until it is consumed"),
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct IntentHeld {
    lease: Box<dyn IntentLease>,
    agent: AgentId,
}

impl Hold for IntentHeld {
    fn release(self, ledger: &Ledger) -> CleanupEntry {
        let unreleased = ledger.unreleased();
        let outcome = if unreleased == 0 {
            match guarded(|| self.lease.finish()) {
                Ok(()) => CleanupOutcome::Released,
                Err(e) => CleanupOutcome::NotReleased(e.to_string()),
            }
        } else {
            drop(self.lease); // releases the lock, keeps the record: reconcile takes it from here
            CleanupOutcome::NotReleased(format!(
                "kept for `fleet reconcile`, which finishes the rollback: {unreleased} resource(s) above were not released"
            ))
        };
        CleanupEntry {
            resource: Resource::Intent(self.agent),
            outcome,
        }
    }
}

/// Owns the flock-held intent record. Released last: it deletes the record only if every other
/// resource of the deployment was released, and otherwise keeps it (unlocked) for reconcile.
/// Its commit deletes the record, which is what makes a deployment Live.
#[derive(Debug)]
pub struct IntentGuard {
    armed: Armed<IntentHeld>,
}

impl IntentGuard {
    pub(crate) fn arm(lease: Box<dyn IntentLease>, ledger: &Ledger) -> Self {
        let agent = lease.record().agent.clone();
        IntentGuard {
            armed: Armed::new(IntentHeld { lease, agent }, ledger),
        }
    }

    release_fn!();

    /// Releases the lock and keeps the record, for the next reconcile to finish the job:
    /// returns the report's line, saying why.
    pub(crate) fn keep(self, why: String) -> CleanupEntry {
        let held = self.armed.disarm();
        drop(held.lease);
        CleanupEntry {
            resource: Resource::Intent(held.agent),
            outcome: CleanupOutcome::NotReleased(why),
        }
    }

    /// Deletes the record: the deployment is committed. On `Err` the record is still on disk
    /// (its lock released), and reconcile will roll back whatever it names.
    pub(crate) fn commit(self) -> Result<(), Error> {
        self.armed.disarm().lease.finish()
    }
}

// ---------------------------------------------------------------------------------------------

struct PromptHeld<'a> {
    store: &'a dyn PromptStore,
    path: Utf8PathBuf,
}

impl fmt::Debug for PromptHeld<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PromptHeld")
            .field("path", &self.path)
            .finish()
    }
}

impl Hold for PromptHeld<'_> {
    fn release(self, _: &Ledger) -> CleanupEntry {
        CleanupEntry {
            outcome: outcome(guarded(|| self.store.remove(&self.path))),
            resource: Resource::PromptFile(self.path),
        }
    }
}

/// Owns the prompt file. Release removes it; commit leaves it to the agent.
#[derive(Debug)]
pub struct PromptGuard<'a> {
    armed: Armed<PromptHeld<'a>>,
}

impl<'a> PromptGuard<'a> {
    pub(crate) fn arm(store: &'a dyn PromptStore, path: Utf8PathBuf, ledger: &Ledger) -> Self {
        PromptGuard {
            armed: Armed::new(PromptHeld { store, path }, ledger),
        }
    }

    release_fn!();

    /// The file belongs to the agent now.
    pub(crate) fn commit(self) {
        self.armed.disarm();
    }
}

// ---------------------------------------------------------------------------------------------

struct CheckoutHeld<'a> {
    checkouts: &'a dyn Checkouts,
    repo: Utf8PathBuf,
    branch: String,
    path: Utf8PathBuf,
}

impl fmt::Debug for CheckoutHeld<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckoutHeld")
            .field("repo", &self.repo)
            .field("branch", &self.branch)
            .field("path", &self.path)
            .finish()
    }
}

impl Hold for CheckoutHeld<'_> {
    fn release(self, _: &Ledger) -> CleanupEntry {
        let removed = guarded(|| {
            self.checkouts
                .discard(&self.repo, Some(self.branch.as_str()), Some(&self.path))
        });
        CleanupEntry {
            outcome: outcome(removed),
            resource: Resource::Checkout {
                branch: self.branch,
                path: self.path,
            },
        }
    }
}

/// Owns the agent's checkout: its worktree and its branch `fleet/<agent>`. Release removes
/// both, whatever they hold; commit leaves them to the agent.
#[derive(Debug)]
pub struct CheckoutGuard<'a> {
    armed: Armed<CheckoutHeld<'a>>,
}

impl<'a> CheckoutGuard<'a> {
    /// Armed before the checkout is made, like [`SessionGuard::arm`]: a panic half-way still
    /// removes what was made.
    pub(crate) fn arm(
        checkouts: &'a dyn Checkouts,
        repo: Utf8PathBuf,
        branch: String,
        path: Utf8PathBuf,
        ledger: &Ledger,
    ) -> Self {
        CheckoutGuard {
            armed: Armed::new(
                CheckoutHeld {
                    checkouts,
                    repo,
                    branch,
                    path,
                },
                ledger,
            ),
        }
    }

    release_fn!();

    /// The checkout said the creation failed and, by its contract, left nothing — not even a
    /// branch of the same name that existed before, which must not be deleted.
    pub(crate) fn disarm(self) {
        self.armed.disarm();
    }

    /// The worktree belongs to the agent now.
    pub(crate) fn commit(self) {
        self.armed.disarm();
    }
}

// ---------------------------------------------------------------------------------------------

struct SessionHeld<'a> {
    backend: &'a dyn SessionBackend,
    session: SessionName,
    agent: AgentId,
    log: Utf8PathBuf,
}

impl fmt::Debug for SessionHeld<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionHeld")
            .field("session", &self.session)
            .field("agent", &self.agent)
            .finish()
    }
}

impl Hold for SessionHeld<'_> {
    fn release(self, _: &Ledger) -> CleanupEntry {
        // The kill, then what the agent wrote: a rolled-back deployment leaves no log.
        let killed = guarded(|| {
            let report = self.backend.kill(&self.session, &self.agent)?;
            let wrote = self.backend.discard_output(&self.log)?;
            Ok(report.session_existed || !report.killed.is_empty() || wrote)
        });
        CleanupEntry {
            outcome: outcome(killed),
            resource: Resource::Session(self.session),
        }
    }
}

/// Owns the agent's session and every process of the agent. Release is the backend's verified
/// kill; commit leaves the agent running.
#[derive(Debug)]
pub struct SessionGuard<'a> {
    armed: Armed<SessionHeld<'a>>,
}

impl<'a> SessionGuard<'a> {
    /// Armed *before* the backend is asked to start the session: should the backend panic
    /// half-way, unwinding kills the session by its exact name (a kill of a missing session is
    /// harmless).
    pub(crate) fn arm(
        backend: &'a dyn SessionBackend,
        session: SessionName,
        agent: AgentId,
        log: Utf8PathBuf,
        ledger: &Ledger,
    ) -> Self {
        SessionGuard {
            armed: Armed::new(
                SessionHeld {
                    backend,
                    session,
                    agent,
                    log,
                },
                ledger,
            ),
        }
    }

    release_fn!();

    /// The backend said the start failed and, by its contract, left nothing: nothing to own.
    pub(crate) fn disarm(self) {
        self.armed.disarm();
    }

    /// The agent runs on, owned by the registry now.
    pub(crate) fn commit(self) {
        self.armed.disarm();
    }
}

// ---------------------------------------------------------------------------------------------

struct RegistrationHeld<'a> {
    registry: &'a dyn Registry,
    task: TaskId,
    agent: AgentId,
}

impl fmt::Debug for RegistrationHeld<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrationHeld")
            .field("task", &self.task)
            .field("agent", &self.agent)
            .finish()
    }
}

impl Hold for RegistrationHeld<'_> {
    fn release(self, _: &Ledger) -> CleanupEntry {
        let removed = match guarded(|| self.registry.unregister(&self.task, &self.agent)) {
            // A task that no longer exists holds no registration.
            Err(Fault::Failed(Error::UnknownTask(_))) => Ok(false),
            other => other,
        };
        CleanupEntry {
            outcome: outcome(removed),
            resource: Resource::Registration {
                task: self.task,
                agent: self.agent,
            },
        }
    }
}

/// Owns the agent's entry in the task registry (and the global index). Release unregisters it
/// exactly; commit leaves it recorded.
#[derive(Debug)]
pub struct RegistrationGuard<'a> {
    armed: Armed<RegistrationHeld<'a>>,
}

impl<'a> RegistrationGuard<'a> {
    /// Armed before the registry is asked, for the same reason as [`SessionGuard::arm`].
    pub(crate) fn arm(
        registry: &'a dyn Registry,
        task: TaskId,
        agent: AgentId,
        ledger: &Ledger,
    ) -> Self {
        RegistrationGuard {
            armed: Armed::new(
                RegistrationHeld {
                    registry,
                    task,
                    agent,
                },
                ledger,
            ),
        }
    }

    release_fn!();

    /// The registry said the registration failed and, by its contract, changed nothing.
    pub(crate) fn disarm(self) {
        self.armed.disarm();
    }

    /// The agent stays registered.
    pub(crate) fn commit(self) {
        self.armed.disarm();
    }
}
