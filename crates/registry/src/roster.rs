//! A task registry read as reconcile needs it ([`Registry::roster`](deploy_core::Registry::roster)),
//! in one pass: each agent's id, status, checkout and host read, its other fields skipped unbuilt as
//! soon as its status says it has ended, and only an active agent's entry built whole. Most
//! agents of a large task have ended, and their prompt previews and tracked files are most of
//! the file.

use std::borrow::Cow;
use std::fmt;

use deploy_core::checkout::{CHECKOUT_FIELD, Checkout};
use deploy_core::{AgentId, AgentStatus, HOST_FIELD, HostName, RosterEntry, TaskId, TaskRoster};
use serde::de::{Error as _, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::format::AgentEntry;
use crate::repair::TaskBrief;

/// The file as far as the roster and its brief go; every other field skipped.
#[derive(Deserialize)]
struct RosterFile {
    task_id: TaskId,
    status: String,
    total_spawned: u64,
    active_count: u64,
    completed_count: u64,
    agents: Vec<Lite>,
}

/// One agent's entry, read in one pass.
struct Lite(RosterEntry);

/// A field name, borrowed from the file when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Lite {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(LiteVisitor)
    }
}

struct LiteVisitor;

impl<'de> Visitor<'de> for LiteVisitor {
    type Value = Lite;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an agent entry")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lite, A::Error> {
        let (mut id, mut status, mut checkout, mut host) = (None, None, None, None);
        // Every field as text, while the agent may be active: its record is built from them.
        let mut fields: Option<Vec<(Cow<'de, str>, &'de RawValue)>> = Some(Vec::with_capacity(16));
        while let Some(Key(key)) = map.next_key()? {
            let wanted = matches!(key.as_ref(), "id" | "status" | CHECKOUT_FIELD | HOST_FIELD);
            if !wanted && fields.is_none() {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let raw: &'de RawValue = map.next_value()?;
            match key.as_ref() {
                "id" => id = Some(from_raw::<AgentId, A::Error>(raw)?),
                "status" => {
                    let s: AgentStatus = from_raw(raw)?;
                    if !s.is_active() {
                        fields = None;
                    }
                    status = Some(s);
                }
                // Read leniently, as `Checkout::of` does: a malformed one is no checkout.
                CHECKOUT_FIELD => checkout = serde_json::from_str::<Checkout>(raw.get()).ok(),
                // Leniently too, as `AgentRecord::host` reads it.
                HOST_FIELD => host = serde_json::from_str::<HostName>(raw.get()).ok(),
                _ => {}
            }
            if let Some(f) = &mut fields {
                f.push((key, raw));
            }
        }
        let id = id.ok_or_else(|| A::Error::missing_field("id"))?;
        let status = status.ok_or_else(|| A::Error::missing_field("status"))?;
        let record = match fields {
            Some(f) => {
                let mut whole = Map::with_capacity(f.len());
                for (key, raw) in f {
                    whole.insert(key.into_owned(), from_raw(raw)?);
                }
                let entry =
                    AgentEntry::deserialize(Value::Object(whole)).map_err(A::Error::custom)?;
                Some(entry.into_record())
            }
            None => None,
        };
        Ok(Lite(RosterEntry {
            id,
            status,
            checkout,
            host,
            record,
        }))
    }
}

/// `raw` parsed as a `T`.
fn from_raw<'de, T: Deserialize<'de>, E: serde::de::Error>(raw: &'de RawValue) -> Result<T, E> {
    serde_json::from_str(raw.get()).map_err(E::custom)
}

/// The roster of the task registry `bytes`, and its brief (what `repair` reads), from the same
/// read.
pub(crate) fn parse(bytes: &[u8]) -> serde_json::Result<(TaskRoster, TaskBrief)> {
    let file: RosterFile = serde_json::from_slice(bytes)?;
    let roster = TaskRoster {
        id: file.task_id,
        agents: file.agents.into_iter().map(|Lite(a)| a).collect(),
    };
    let brief = TaskBrief::new(
        &roster,
        file.status,
        (file.total_spawned, file.active_count, file.completed_count),
    );
    Ok((roster, brief))
}

#[cfg(test)]
mod tests {
    use deploy_core::TaskRoster;
    use serde_json::{Value, json};

    use crate::format::TaskFile;
    use crate::repair::TaskBrief;

    const FINAL: &[u8] =
        include_bytes!("../../../tests/fixtures/python-orchestrator/AGENT_REGISTRY.04_final.json");

    /// The roster of `bytes` against the one made from the whole parse (after checking that the
    /// cache's copy, made from the parsed file, is that one too).
    fn both(bytes: &[u8]) -> (TaskRoster, TaskRoster) {
        let whole: TaskFile = serde_json::from_slice(bytes).expect("the registry parses");
        let (roster, brief) = super::parse(bytes).expect("its roster parses");
        let alone: TaskBrief = serde_json::from_slice(bytes).expect("its brief parses");
        assert_eq!(brief, alone);
        assert_eq!(whole.roster(), roster);
        (roster, TaskRoster::of(whole.into_snapshot()))
    }

    #[test]
    fn says_what_the_whole_file_says() {
        let (roster, whole) = both(FINAL);
        assert!(roster.agents.iter().any(|a| a.record.is_some()));
        assert!(roster.agents.iter().any(|a| a.record.is_none()));
        assert_eq!(roster, whole);
    }

    #[test]
    fn reads_checkouts_as_checkout_of_does() {
        let mut file: Value = serde_json::from_slice(FINAL).expect("the fixture parses");
        let agents = file["agents"].as_array_mut().expect("agents is a list");
        agents[0]["fleet_worktree"] = json!({"repo": "/r", "path": "/w", "branch": "fleet/x",
            "base": "abc", "base_ref": "main", "state": "active"});
        agents[1]["fleet_worktree"] = json!({"repo": 3});
        let bytes = serde_json::to_vec(&file).expect("serializes");
        let (roster, whole) = both(&bytes);
        assert!(roster.agents[0].checkout.is_some());
        assert!(roster.agents[1].checkout.is_none());
        assert_eq!(roster, whole);
    }
}
