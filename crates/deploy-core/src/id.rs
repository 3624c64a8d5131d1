//! Validated identifiers. Parsing is the only constructor, so a value of these types is always
//! safe to put in a path, a tmux target or a registry key.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The longest id fleet accepts (tmux and file systems take far more; this keeps lines readable).
pub const MAX_ID_LEN: usize = 64;

/// Which kind of id was rejected, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// A [`TaskId`].
    Task,
    /// An [`AgentId`].
    Agent,
    /// An [`AgentType`].
    AgentType,
    /// A [`SessionName`].
    Session,
    /// A [`BatchId`].
    Batch,
    /// A [`HostName`].
    Host,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Task => "task id",
            IdKind::Agent => "agent id",
            IdKind::AgentType => "agent type",
            IdKind::Session => "session name",
            IdKind::Batch => "batch id",
            IdKind::Host => "host name",
        })
    }
}

/// Checks `^[A-Za-z0-9_-]{1,64}$`, naming the first offending character.
fn validate(kind: IdKind, value: &str) -> Result<(), Error> {
    let reject = |reason: String| Error::InvalidId {
        kind,
        value: value.to_owned(),
        reason,
    };
    if value.is_empty() {
        return Err(reject("it is empty".into()));
    }
    if value.len() > MAX_ID_LEN {
        return Err(reject(format!(
            "it is {} bytes long, the maximum is {MAX_ID_LEN}",
            value.len()
        )));
    }
    if let Some((at, c)) = value
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(reject(format!(
            "character {c:?} at byte {at} is not allowed (only A-Z a-z 0-9 _ -)"
        )));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates `value` (`^[A-Za-z0-9_-]{1,64}$`).
            pub fn parse(value: &str) -> Result<Self, Error> {
                validate($kind, value)?;
                Ok(Self(value.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self, Error> {
                validate($kind, &s)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A task id, `TASK-YYYYMMDD-HHMMSS-<8 hex>` when fleet generates it.
    TaskId,
    IdKind::Task
);
id_type!(
    /// An agent id, `<type>-<HHMMSS>-<6 hex>` when fleet generates it.
    AgentId,
    IdKind::Agent
);
id_type!(
    /// A batch id, `batch-<HHMMSS>-<8 hex>` when fleet generates it: the agents deployed
    /// together, all Live or none (see [`crate::batch`]).
    BatchId,
    IdKind::Batch
);
id_type!(
    /// The host an agent runs on (`FLEET_HOST`, by default the machine's short hostname): a
    /// host judges, ends and rolls back only its own agents (see [`crate::Whereabouts`]).
    HostName,
    IdKind::Host
);
id_type!(
    /// An agent type such as `investigator` or `builder`.
    AgentType,
    IdKind::AgentType
);
id_type!(
    /// A tmux session name, `agent_<agent_id>`. Used with exact targets (`=name`) only.
    SessionName,
    IdKind::Session
);

/// The session name prefix the Python server used: `agent_<agent_id>`.
pub const SESSION_PREFIX: &str = "agent_";

/// The longest type prefix a generated agent id keeps, so that `agent_<type>-HHMMSS-xxxxxx`
/// stays within [`MAX_ID_LEN`].
pub const MAX_TYPE_PREFIX: usize = MAX_ID_LEN - SESSION_PREFIX.len() - "-HHMMSS-xxxxxx".len();

fn random_hex(bytes: usize) -> Result<String, Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| Error::Random(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl TaskId {
    /// A new task id in the Python server's format: `TASK-20261124-083259-3e71215b`.
    pub fn generate() -> Result<Self, Error> {
        let now = chrono::Local::now();
        Self::parse(&format!(
            "TASK-{}-{}",
            now.format("%Y%m%d-%H%M%S"),
            random_hex(4)?
        ))
    }
}

impl BatchId {
    /// A new batch id: `batch-083259-3e71215b`.
    pub fn generate() -> Result<Self, Error> {
        let now = chrono::Local::now();
        Self::parse(&format!(
            "batch-{}-{}",
            now.format("%H%M%S"),
            random_hex(4)?
        ))
    }
}

impl AgentId {
    /// A new agent id in the Python server's format: `investigator-083259-204ad5`.
    ///
    /// The type part is cut to [`MAX_TYPE_PREFIX`] characters so the session name fits.
    pub fn generate(agent_type: &AgentType) -> Result<Self, Error> {
        let now = chrono::Local::now();
        let prefix: String = agent_type.as_str().chars().take(MAX_TYPE_PREFIX).collect();
        Self::parse(&format!(
            "{prefix}-{}-{}",
            now.format("%H%M%S"),
            random_hex(3)?
        ))
    }
}

impl SessionName {
    /// The session of an agent: `agent_<agent_id>`; fails if that exceeds [`MAX_ID_LEN`].
    pub fn for_agent(agent: &AgentId) -> Result<Self, Error> {
        Self::parse(&format!("{SESSION_PREFIX}{agent}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_python_formats() {
        for ok in [
            "TASK-20261124-083259-3e71215b",
            "investigator-083259-204ad5",
            "agent_investigator-083259-204ad5",
            "a",
            &"x".repeat(64),
        ] {
            assert!(TaskId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_with_the_reason() {
        let cases = [
            ("", "it is empty"),
            ("../x", "character '.' at byte 0"),
            ("/etc/passwd", "character '/' at byte 0"),
            ("a/b", "character '/' at byte 1"),
            ("a\0b", "character '\\0' at byte 1"),
            ("x';touch F;'", "character '\\'' at byte 1"),
            ("=agent", "character '='"),
            ("a:b", "character ':'"),
            ("a.b", "character '.'"),
            ("#{host}", "character '#'"),
            ("é", "character 'é'"),
        ];
        for (bad, why) in cases {
            let err = AgentId::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(err.starts_with("invalid agent id"), "{err}");
        }
        let long = "x".repeat(65);
        let err = TaskId::parse(&long).unwrap_err().to_string();
        assert!(err.contains("65 bytes long, the maximum is 64"), "{err}");
    }

    #[test]
    fn generated_ids_have_the_python_shape() {
        let task = TaskId::generate().unwrap();
        let parts: Vec<&str> = task.as_str().split('-').collect();
        assert_eq!(parts[0], "TASK");
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2].len(), 6);
        assert_eq!(parts[3].len(), 8);
        assert!(parts[3].chars().all(|c| c.is_ascii_hexdigit()));

        let long_type = AgentType::parse(&"t".repeat(64)).unwrap();
        let agent = AgentId::generate(&long_type).unwrap();
        let session = SessionName::for_agent(&agent).unwrap();
        assert_eq!(session.as_str().len(), 64);
        let agent = AgentId::generate(&AgentType::parse("builder").unwrap()).unwrap();
        let tail: Vec<&str> = agent.as_str().rsplitn(3, '-').collect();
        assert_eq!((tail[0].len(), tail[1].len(), tail[2]), (6, 6, "builder"));
    }

    #[test]
    fn serde_validates() {
        let ok: AgentId = serde_json::from_str("\"builder-083301-43b8ea\"").unwrap();
        assert_eq!(ok.as_str(), "builder-083301-43b8ea");
        let bad = serde_json::from_str::<AgentId>("\"../etc\"").unwrap_err();
        assert!(bad.to_string().contains("invalid agent id"), "{bad}");
    }
}
