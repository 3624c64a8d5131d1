//! # testkit
//!
//! In-memory fakes of deploy-core's services — [`FakeBackend`], [`FakeRegistry`],
//! [`FakePromptStore`], [`FakeJournal`], [`FakeCheckouts`] — and [`Faulty`], a wrapper that injects faults into any
//! implementation of those traits (the fakes or real ones) according to a [`FaultPlan`]:
//!
//! - [`FaultKind::Transient`]: the k-th call of an operation fails, once;
//! - [`FaultKind::Persistent`]: every call from the k-th on fails, so a rollback that needs the
//!   same operation fails too;
//! - [`FaultKind::Panic`]: the k-th call panics.
//!
//! [`World`] bundles the fakes, each wrapped, sharing one [`Faults`] handle.
//!
//! ```
//! use deploy_core::{AgentType, DeployRequest, Limits, Step};
//! use testkit::{FaultKind, FaultPlan, Op, World};
//!
//! let world = World::with_plan(FaultPlan::new().fail(Op::Register, 1, FaultKind::Transient));
//! let task = world.create_task(Limits::default());
//! let mut request = DeployRequest::new(
//!     task,
//!     AgentType::parse("builder").unwrap(),
//!     "build it",
//!     vec!["agent".into()],
//! );
//! request.startup_grace = std::time::Duration::ZERO;
//! let failure = world.deployer().deploy(request).unwrap_err();
//! assert_eq!(failure.step, Step::Register);
//! assert!(failure.cleanup.is_clean());
//! assert_eq!(world.backend.inner().session_count(), 0);
//! ```

#![warn(missing_docs)]

mod advance;
mod backend;
mod checkouts;
pub mod conformance;
mod faults;
pub mod git;
pub mod json;
pub mod postgres;
pub mod procs;
mod ready;
mod registry;
pub mod sshd;
mod stores;
mod world;

pub use advance::{StopAt, advance};
pub use backend::{FakeBackend, FakeSession};
pub use checkouts::{FakeCheckout, FakeCheckouts};
pub use faults::{
    FaultKind, FaultPlan, FaultRule, Faults, Faulty, Fired, InjectedFault, Op,
    silence_injected_panics,
};
pub use registry::{FakeRegistry, RegistryState};
pub use stores::{FakeJournal, FakePromptStore};
pub use world::World;

/// Locks a mutex, ignoring poisoning: a fake's state stays inspectable after an injected panic.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
