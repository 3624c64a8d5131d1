//! # deploy-core
//!
//! The transactional deployment of one headless agent. A deployment owns four resources,
//! acquired in this order and released in the reverse one:
//!
//! | state               | owns                                                     |
//! |---------------------|----------------------------------------------------------|
//! | (intent)            | a journal record, flock-held until Live or rolled back   |
//! | [`PromptWritten`]   | the prompt file, and the agent's git checkout if asked   |
//! | [`SessionStarted`]  | the agent's session, its agent gated (not yet executed)  |
//! | [`Registered`]      | the agent's entries in the task registry and global index |
//! | [`Live`]            | nothing: the agent belongs to the registry now           |
//!
//! Each state is a type; transitions take `self`; a failure ([`DeployFailure`]) has already
//! rolled back and says the step, the cause and what the cleanup did; dropping a state that is
//! not Live rolls back too. SIGKILL runs no destructor, which is what the intent is for: see
//! [`journal`] and [`reconcile`].
//!
//! A [`batch`] is this transaction over several agents of one task: all Live, or none.
//!
//! deploy-core never runs a process, never names tmux and never touches a registry file: it
//! talks to a [`SessionBackend`], a [`Registry`], a [`PromptStore`] and an [`IntentJournal`]
//! (and, for agents that get their own git worktree, [`Checkouts`]).
//! They are trait objects rather than generic parameters — see [`Deployer`] for why.
//!
//! ## A complete deployment
//!
//! Against the in-memory fakes of the `testkit` crate (swap in `tmux-backend` and `registry`
//! for real ones):
//!
//! ```
//! use deploy_core::{AgentStatus, AgentType, DeployRequest, Limits, Liveness, Parent};
//! use testkit::World;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let world = World::new();
//! let task = world.create_task(Limits::default());
//! let deployer = world.deployer();
//!
//! let mut request = DeployRequest::new(
//!     task.clone(),
//!     AgentType::parse("investigator")?,
//!     "Find every unlocked registry write.",
//!     vec!["claude".into(), "-p".into()],
//! );
//! request.startup_grace = std::time::Duration::ZERO;
//!
//! // Step by step: each state owns what it has acquired.
//! let prompt_written = deployer.begin(request.clone())?;
//! let started = prompt_written.start_session()?;
//! let registered = started.register()?;
//! let live = registered.confirm_live()?;
//!
//! assert_eq!(live.record().status, AgentStatus::Running);
//! assert_eq!(live.record().depth, 1);
//! assert_eq!(world.backend.inner().probe_now(&live.record().session), Liveness::Alive);
//! assert!(world.journal.inner().is_empty(), "the intent is gone once Live");
//!
//! // Or in one call. A second investigator is refused by the one-per-type limit, and the
//! // failure has already rolled back: nothing of it is left.
//! let before = world.registry.inner().snapshot();
//! let failure = deployer.deploy(request).unwrap_err();
//! assert!(failure.to_string().contains("one active agent per type"), "{failure}");
//! assert_eq!(world.registry.inner().snapshot(), before);
//! assert_eq!(world.backend.inner().session_count(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! ## What the types rule out
//!
//! A later step cannot be called from an earlier state:
//!
//! ```compile_fail,E0599
//! fn skip_the_session(p: deploy_core::PromptWritten<'_>) {
//!     let _ = p.register();
//! }
//! ```
//!
//! ```compile_fail,E0599
//! fn skip_registration(s: deploy_core::SessionStarted<'_>) {
//!     let _ = s.confirm_live();
//! }
//! ```
//!
//! A state is consumed by its transition:
//!
//! ```compile_fail,E0382
//! fn twice(p: deploy_core::PromptWritten<'_>) {
//!     let _ = p.start_session();
//!     let _ = p.start_session();
//! }
//! ```
//!
//! No [`Live`] agent exists without registration: `Live` has no public constructor.
//!
//! ```compile_fail,E0451
//! let live = deploy_core::Live {
//!     task: todo!(),
//!     record: todo!(),
//!     session: todo!(),
//!     files: todo!(),
//!     checkout: todo!(),
//! };
//! ```
//!
//! Each state is made of [`guard`]s, one per resource, with no public constructor; the
//! [`guard`] module lists what they rule out.

#![warn(missing_docs)]

pub mod backend;
pub mod batch;
pub mod checkout;
mod deploy;
pub mod end;
mod error;
pub mod extra;
pub mod failpoints;
mod failure;
#[doc(hidden)]
pub mod fields;
pub mod guard;
pub mod id;
pub mod journal;
mod layout;
pub mod limits;
pub mod lock;
pub mod private;
pub mod prompt;
pub mod reconcile;
mod record;
mod registry;
mod request;
mod roster;
mod task;
mod whereabouts;

pub use backend::{
    AGENT_ID_ENV, KillReport, KilledProcess, Liveness, PROMPT_FILE_PLACEHOLDER, SessionBackend,
    SessionInfo, SessionListing, SessionSpec,
};
pub use batch::{BatchFailure, BatchRequest, LiveBatch};
pub use checkout::{
    Checkout, CheckoutPlan, CheckoutRequest, CheckoutState, Checkouts, FoundCheckout,
};
pub use deploy::{AnyDeployment, Deployer, Live, PromptWritten, Registered, SessionStarted};
pub use error::{BoxError, Error};
pub use extra::Extra;
pub use failpoints::failpoint;
pub use failure::{CleanupEntry, CleanupOutcome, CleanupReport, DeployFailure, Resource, Step};
pub use id::{AgentId, AgentType, BatchId, HostName, IdKind, SessionName, TaskId};
pub use journal::{FsJournal, IntentJournal, IntentLease, IntentRecord};
pub use layout::Layout;
pub use limits::{LimitExceeded, LimitView, Limits};
pub use prompt::{FsPromptStore, PromptStore, prompt_preview};
pub use record::{
    AgentRecord, AgentStatus, BATCH_FIELD, ExitStatus, HOST_FIELD, LAUNCH_COMMAND_FIELD,
    LAUNCH_WORKDIR_FIELD, Launch, Parent, Registration, StatusUpdate, TaskSnapshot, TaskSummary,
    TrackedFiles, hierarchy,
};
pub use registry::Registry;
pub use request::{DEFAULT_STARTUP_GRACE, DeployRequest};
pub use roster::{RosterEntry, TaskRoster};
pub use task::{IndexRepair, NewTask, RepairReport, TaskContext};
pub use whereabouts::Whereabouts;

/// serde, for [`deserialize_with_extra!`]'s expansion in other crates.
#[doc(hidden)]
pub use serde as __serde;

/// Now as the Python server wrote times: naive local ISO-8601 with microseconds.
pub fn timestamp() -> String {
    chrono::Local::now()
        .naive_local()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}
