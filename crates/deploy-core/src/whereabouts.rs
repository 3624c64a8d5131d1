//! Where an agent's session is to be found: on fleet's own backend, on the backend of agents
//! another orchestrator started (the Python server's), or somewhere this run does not look.
//!
//! Every look at an agent — status, kill, reconcile — goes through [`Deployer::locate`], so an
//! agent is only ever judged (found missing, recorded gone, killed) where it was placed.

use crate::Error;
use crate::backend::SessionBackend;
use crate::deploy::Deployer;
use crate::record::AgentRecord;

/// Where an agent's session is, from its record.
#[derive(Clone)]
pub enum Whereabouts<'a> {
    /// On this deployer's backend: fleet placed it there.
    Own(&'a dyn SessionBackend),
    /// Another orchestrator started it (its record has no placement), and this deployer looks
    /// at such agents through this backend: probed and killed there by exact name, never listed.
    Adopted(&'a dyn SessionBackend),
    /// Somewhere this deployer does not look — fleet placed it on another backend (its
    /// placement), or another orchestrator did (`None`) and no adopted backend is set. Such an
    /// agent is never judged: not recorded gone, not killed.
    Elsewhere(Option<String>),
}

impl std::fmt::Debug for Whereabouts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Whereabouts::Own(b) => write!(f, "Own({})", b.placement()),
            Whereabouts::Adopted(b) => write!(f, "Adopted({})", b.placement()),
            Whereabouts::Elsewhere(p) => write!(f, "Elsewhere({p:?})"),
        }
    }
}

impl<'a> Whereabouts<'a> {
    /// The backend to look through, unless the agent is elsewhere.
    pub fn backend(&self) -> Option<&'a dyn SessionBackend> {
        match self {
            Whereabouts::Own(b) | Whereabouts::Adopted(b) => Some(*b),
            Whereabouts::Elsewhere(_) => None,
        }
    }
}

impl<'a> Deployer<'a> {
    /// Where the session of `record` is.
    pub fn locate(&self, record: &AgentRecord) -> Whereabouts<'a> {
        self.locate_placement(record.placement.as_deref())
    }

    /// Where a session placed as `placement` is (`None`: by another orchestrator).
    pub fn locate_placement(&self, placement: Option<&str>) -> Whereabouts<'a> {
        match (placement, self.adopted) {
            (Some(p), _) if p == self.backend.placement() => Whereabouts::Own(self.backend),
            (None, Some(adopted)) => Whereabouts::Adopted(adopted),
            (p, _) => Whereabouts::Elsewhere(p.map(str::to_owned)),
        }
    }

    /// The backend that holds the session of `record`, or an error naming where it is placed
    /// when this deployer does not look there.
    pub fn backend_of(&self, record: &AgentRecord) -> Result<&'a dyn SessionBackend, Error> {
        match self.locate(record) {
            Whereabouts::Own(b) | Whereabouts::Adopted(b) => Ok(b),
            Whereabouts::Elsewhere(p) => Err(Error::Elsewhere {
                agent: record.id.clone(),
                placement: p.unwrap_or_else(|| "another orchestrator's tmux server".into()),
                looking: self.backend.placement(),
            }),
        }
    }
}
