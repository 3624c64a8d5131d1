//! Where an agent's session is to be found: on fleet's own backend, on the backend of agents
//! another orchestrator started (the Python server's), or somewhere this run does not look —
//! another host among those sharing the registry, or another backend.
//!
//! Every look at an agent — status, kill, reconcile — goes through [`Deployer::locate`], so an
//! agent is only ever judged (found missing, recorded gone, killed) where it was placed.

use crate::Error;
use crate::backend::SessionBackend;
use crate::deploy::Deployer;
use crate::id::{AgentId, HostName};
use crate::record::AgentRecord;

/// Where an agent's session is, from its record.
#[derive(Clone)]
pub enum Whereabouts<'a> {
    /// On this deployer's backend: fleet placed it there.
    Own(&'a dyn SessionBackend),
    /// Another orchestrator started it (its record has no placement), and this deployer looks
    /// at such agents through this backend: probed and killed there by exact name, never listed.
    Adopted(&'a dyn SessionBackend),
    /// Somewhere this deployer does not look — on another host (`host NAME`), on another
    /// backend fleet placed it on (its placement), or another orchestrator placed it (`None`)
    /// and no adopted backend is set. Such an agent is never judged: not recorded gone, not
    /// killed.
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
    /// Where the session of `record` is: elsewhere when it runs on another host than this
    /// deployer's, else where it was placed.
    pub fn locate(&self, record: &AgentRecord) -> Whereabouts<'a> {
        self.locate_on(record.host().as_ref(), record.placement.as_deref())
    }

    /// Where a session placed as `placement` on `host` is (`None`: no host recorded, so this
    /// one's).
    pub fn locate_on(&self, host: Option<&HostName>, placement: Option<&str>) -> Whereabouts<'a> {
        match self.other_host(host) {
            Some(theirs) => Whereabouts::Elsewhere(Some(format!("host {theirs}"))),
            None => self.locate_placement(placement),
        }
    }

    /// `host`, when it is another than this deployer's.
    pub fn other_host<'h>(&self, host: Option<&'h HostName>) -> Option<&'h HostName> {
        match (self.host, host) {
            (Some(mine), Some(theirs)) if mine != theirs => Some(theirs),
            _ => None,
        }
    }

    /// The refusal to act on `agent`, which runs on `host`, when that is another host.
    pub fn refuse_other_host(&self, agent: &AgentId, host: Option<&HostName>) -> Result<(), Error> {
        match (self.host, self.other_host(host)) {
            (Some(here), Some(theirs)) => Err(Error::OtherHost {
                agent: agent.clone(),
                host: theirs.clone(),
                here: here.clone(),
            }),
            _ => Ok(()),
        }
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
        self.refuse_other_host(&record.id, record.host().as_ref())?;
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
