//! Changes that touch a few agents of a large registry, made on its text: the file is scanned
//! once (serde_json checks all of it, borrowing each agent entry as raw text), only the entries
//! that change are parsed and written again, the counters are recomputed from each entry's
//! status, and every other byte is copied as it was.
//!
//! A file these functions cannot read as they expect (a field missing, a duplicate key) makes
//! them return `None`: the caller then takes the whole-file path, which reports what is wrong.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use deploy_core::{AgentId, AgentStatus};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::format::AgentEntry;

/// What to do to one agent's entries.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) agent: AgentId,
    /// Its new status, if it changes.
    pub(crate) status: Option<AgentStatus>,
    /// Fields for its task registry entry.
    pub(crate) task_fields: Map<String, Value>,
    /// Fields for its index entry, written when its status changes.
    pub(crate) index_fields: Map<String, Value>,
}

/// A rewritten file, and the agents whose status in it changed.
#[derive(Debug)]
pub(crate) struct Spliced {
    pub(crate) bytes: Vec<u8>,
    pub(crate) status_changed: std::collections::HashSet<AgentId>,
}

#[derive(Deserialize)]
struct TaskSkeleton<'a> {
    #[serde(borrow)]
    agents: Vec<&'a RawValue>,
    #[serde(borrow)]
    active_count: &'a RawValue,
    #[serde(borrow)]
    completed_count: &'a RawValue,
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct GlobalSkeleton<'a> {
    #[serde(borrow)]
    agents: HashMap<Cow<'a, str>, &'a RawValue>,
    #[serde(borrow)]
    active_agents: &'a RawValue,
}

/// Where `part` lies in `text` (it is a slice of it).
fn range_in(text: &str, part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - text.as_ptr() as usize;
    start..start + part.len()
}

/// `value` pretty-printed as it would be at the place of `old` in `text`: each of its lines
/// after the first indented as the line `old` starts on.
fn pretty_at<T: serde::Serialize>(value: &T, text: &str, old: &Range<usize>) -> Option<String> {
    // The leading spaces of the line `old` starts on (`    {` in a list, `    "id": {` in a map).
    let line_start = text[..old.start].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..old.start];
    let indent = &line[..line.len() - line.trim_start_matches(' ').len()];
    let pretty = serde_json::to_string_pretty(value).ok()?;
    Some(pretty.replace('\n', &format!("\n{indent}")))
}

/// `text` with each range replaced, in order.
fn splice(text: &str, mut edits: Vec<(Range<usize>, String)>) -> Vec<u8> {
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len() + 256);
    let mut at = 0;
    for (range, new) in edits {
        out.push_str(&text[at..range.start]);
        out.push_str(&new);
        at = range.end;
    }
    out.push_str(&text[at..]);
    out.into_bytes()
}

/// The entry of `agent` among `entries`: only those whose text holds the id as a JSON string
/// are parsed (another entry may name it as its parent; the parse tells).
fn find<'a>(entries: &[&'a RawValue], agent: &AgentId) -> Option<Option<&'a RawValue>> {
    let needle = format!("\"{agent}\"");
    for raw in entries {
        if raw.get().contains(&needle) {
            let head: Head<'_> = serde_json::from_str(raw.get()).ok()?;
            if head.id == agent.as_str() {
                return Some(Some(*raw));
            }
        }
    }
    Some(None)
}

/// Beyond this many changes, every entry's id is read once rather than each change searching.
const MANY: usize = 8;

/// How a status counts: (active, completed).
fn weight(s: &AgentStatus) -> (i64, i64) {
    (
        i64::from(s.is_active()),
        i64::from(*s == AgentStatus::Completed),
    )
}

/// Applies `changes` to a task registry's text. `Some(Err(agent))`: no entry has that id.
///
/// The counters are the file's own, moved by the status changes made here (the whole-file path
/// recounts them on every write, and `repair` corrects one edited by hand).
pub(crate) fn task(bytes: &[u8], changes: &[Change]) -> Option<Result<Spliced, AgentId>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let skeleton: TaskSkeleton<'_> = serde_json::from_str(text).ok()?;
    let mut active: i64 = serde_json::from_str(skeleton.active_count.get()).ok()?;
    let mut completed: i64 = serde_json::from_str(skeleton.completed_count.get()).ok()?;
    // A few changes look their entries up by the id's text; many (a reconcile recording a
    // thousand ends) read every entry's id once.
    let by_id: Option<HashMap<Cow<'_, str>, &RawValue>> = if changes.len() > MANY {
        let mut map = HashMap::with_capacity(skeleton.agents.len());
        for raw in &skeleton.agents {
            let head: Head<'_> = serde_json::from_str(raw.get()).ok()?;
            map.insert(head.id, *raw);
        }
        Some(map)
    } else {
        None
    };
    let mut entries: Vec<(AgentId, Range<usize>, AgentEntry)> = Vec::new();
    let mut at_of: HashMap<AgentId, usize> = HashMap::new();
    let mut status_changed = std::collections::HashSet::new();
    for change in changes {
        let at = match at_of.get(&change.agent) {
            Some(at) => *at,
            None => {
                let found = match &by_id {
                    Some(map) => map.get(change.agent.as_str()).copied(),
                    None => find(&skeleton.agents, &change.agent)?,
                };
                let Some(raw) = found else {
                    return Some(Err(change.agent.clone()));
                };
                let entry: AgentEntry = serde_json::from_str(raw.get()).ok()?;
                entries.push((change.agent.clone(), range_in(text, raw.get()), entry));
                at_of.insert(change.agent.clone(), entries.len() - 1);
                entries.len() - 1
            }
        };
        let entry = &mut entries[at].2;
        if let Some(status) = &change.status
            && entry.status != *status
        {
            let (was_active, was_completed) = weight(&entry.status);
            let (is_active, is_completed) = weight(status);
            active += is_active - was_active;
            completed += is_completed - was_completed;
            status_changed.insert(change.agent.clone());
            entry.status = status.clone();
        }
        entry.extra.extend(&change.task_fields);
    }
    // Counters that drifted (a file edited by hand) could be moved out of range: the
    // whole-file path recounts them instead.
    let n = i64::try_from(skeleton.agents.len()).ok()?;
    if !(0..=n).contains(&active) || !(0..=n).contains(&completed) {
        return None;
    }
    let mut edits = Vec::with_capacity(entries.len() + 2);
    for (_, range, entry) in &entries {
        edits.push((range.clone(), pretty_at(entry, text, range)?));
    }
    edits.push((
        range_in(text, skeleton.active_count.get()),
        active.to_string(),
    ));
    edits.push((
        range_in(text, skeleton.completed_count.get()),
        completed.to_string(),
    ));
    Some(Ok(Spliced {
        bytes: splice(text, edits),
        status_changed,
    }))
}

/// Applies to the global index's text the changes of the agents whose status changed (`None`
/// when it cannot read it as expected). An agent missing from the index is left to the
/// whole-file path too (`None`): it rebuilds what is missing. `active_agents` is the file's
/// own, moved by the changes (an absent status counts as running, as the Python server wrote).
pub(crate) fn index(bytes: &[u8], changes: &[&Change]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let skeleton: GlobalSkeleton<'_> = serde_json::from_str(text).ok()?;
    let mut active: i64 = serde_json::from_str(skeleton.active_agents.get()).ok()?;
    let mut entries: Vec<(AgentId, Range<usize>, Map<String, Value>)> = Vec::new();
    for change in changes {
        let at = match entries.iter().position(|(id, ..)| *id == change.agent) {
            Some(at) => at,
            None => {
                let raw = skeleton.agents.get(change.agent.as_str())?;
                let entry: Map<String, Value> = serde_json::from_str(raw.get()).ok()?;
                entries.push((change.agent.clone(), range_in(text, raw.get()), entry));
                entries.len() - 1
            }
        };
        let entry = &mut entries[at].2;
        if let Some(status) = &change.status {
            let was_active = entry
                .get("status")
                .and_then(Value::as_str)
                .is_none_or(|s| AgentStatus::from(s.to_owned()).is_active());
            active += i64::from(status.is_active()) - i64::from(was_active);
            entry.insert("status".into(), Value::String(status.as_str().to_owned()));
        }
        entry.extend(change.index_fields.clone());
    }
    let n = i64::try_from(skeleton.agents.len()).ok()?;
    if !(0..=n).contains(&active) {
        return None; // drifted: the whole-file path recounts
    }
    let mut edits = Vec::with_capacity(entries.len() + 1);
    for (_, range, entry) in &entries {
        edits.push((range.clone(), pretty_at(entry, text, range)?));
    }
    edits.push((
        range_in(text, skeleton.active_agents.get()),
        active.to_string(),
    ));
    Some(splice(text, edits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(agent: &str, status: Option<AgentStatus>) -> Change {
        Change {
            agent: AgentId::parse(agent).unwrap(),
            status,
            task_fields: [("progress".to_owned(), json!(50))].into_iter().collect(),
            index_fields: [("last_update".to_owned(), json!("t"))]
                .into_iter()
                .collect(),
        }
    }

    fn agent(id: &str, status: &str) -> Value {
        json!({
            "id": id, "type": "w", "tmux_session": format!("agent_{id}"), "parent": "orchestrator",
            "depth": 1, "status": status, "started_at": "s", "progress": 0, "note": "é \" \\n",
        })
    }

    /// The spliced file is exactly what parsing, changing and writing the whole file gives.
    #[test]
    fn a_spliced_task_file_equals_the_whole_file_rewritten() {
        let file = json!({
            "task_id": "T", "agents": [agent("a-1", "running"), agent("b-2", "running"), agent("c-3", "completed")],
            "total_spawned": 3, "active_count": 2, "completed_count": 1, "unknown": {"kept": [1, 2]},
        });
        let bytes = serde_json::to_vec_pretty(&file).unwrap();
        let changes = [
            change("b-2", Some(AgentStatus::Completed)),
            change("a-1", Some(AgentStatus::Running)),
        ];
        let out = task(&bytes, &changes).unwrap().unwrap();
        let mut expected = file.clone();
        expected["agents"][1]["status"] = json!("completed");
        expected["agents"][1]["progress"] = json!(50);
        expected["agents"][0]["progress"] = json!(50);
        expected["active_count"] = json!(1);
        expected["completed_count"] = json!(2);
        assert_eq!(
            String::from_utf8(out.bytes).unwrap(),
            serde_json::to_string_pretty(&expected).unwrap()
        );
        assert_eq!(out.status_changed, [AgentId::parse("b-2").unwrap()].into());
        let missing = task(&bytes, &[change("zz-9", None)]).unwrap();
        assert_eq!(missing.unwrap_err().as_str(), "zz-9");
        assert!(
            task(b"{\"agents\": []}", &[]).is_none(),
            "no counters: the whole-file path"
        );
        assert!(task(b"{not json", &[]).is_none());
    }

    #[test]
    fn a_spliced_index_equals_the_whole_index_rewritten() {
        let index = json!({
            "created_at": "c", "total_agents_spawned": 3, "active_agents": 2,
            "agents": {
                "a-1": {"task_id": "T", "type": "w"},
                "b-2": {"task_id": "T", "type": "w", "status": "working"},
                "c-3": {"task_id": "T", "type": "w", "status": "completed"},
            },
            "tasks": {},
        });
        let bytes = serde_json::to_vec_pretty(&index).unwrap();
        let c = change("b-2", Some(AgentStatus::Error));
        let out = super::index(&bytes, &[&c]).unwrap();
        let mut expected = index.clone();
        expected["agents"]["b-2"]["status"] = json!("error");
        expected["agents"]["b-2"]["last_update"] = json!("t");
        expected["active_agents"] = json!(1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string_pretty(&expected).unwrap()
        );
        assert!(super::index(&bytes, &[&change("zz-9", None)]).is_none());
    }

    /// Found by `cargo xtask bench`: a registry whose stored counters had drifted (0 active
    /// while 1,000 agents ran) got `active_count: -1000` from a spliced update — a file that no
    /// longer parsed. Drifted counters now send the change the whole-file way, which recounts.
    #[test]
    fn regression_drifted_counters_never_go_out_of_range() {
        let file = json!({
            "task_id": "T", "agents": [agent("a-1", "running"), agent("b-2", "running")],
            "total_spawned": 2, "active_count": 0, "completed_count": 0,
        });
        let bytes = serde_json::to_vec_pretty(&file).unwrap();
        let ended = [change("a-1", Some(AgentStatus::Completed))];
        assert!(
            task(&bytes, &ended).is_none(),
            "the whole-file path, which recounts"
        );
        let index = json!({
            "active_agents": 0,
            "agents": {"a-1": {"task_id": "T", "type": "w"}},
        });
        let bytes = serde_json::to_vec_pretty(&index).unwrap();
        assert!(super::index(&bytes, &[&ended[0]]).is_none());
    }

    const STATUSES: [&str; 5] = ["running", "working", "completed", "error", "terminated"];

    fn status_of(i: usize) -> AgentStatus {
        AgentStatus::from(STATUSES[i % STATUSES.len()].to_owned())
    }

    proptest::proptest! {
        /// Whatever the entries (any text in their fields, escapes and all) and the changes
        /// (several per agent, with and without a status), the spliced file parses to what the
        /// whole-file path makes of it: the same entries, the same recomputed counters.
        #[test]
        fn splicing_equals_rewriting_the_whole_file(
            notes in proptest::collection::vec("\\PC{0,12}", 1..12),
            statuses in proptest::collection::vec(0usize..5, 1..12),
            picks in proptest::collection::vec((0usize..12, proptest::option::of(0usize..5), "\\PC{0,8}"), 0..14),
        ) {
            let n = notes.len().min(statuses.len());
            let agents: Vec<Value> = (0..n)
                .map(|i| {
                    let mut a = agent(&format!("a-{i}"), STATUSES[statuses[i]]);
                    a["note"] = json!(notes[i]);
                    a
                })
                .collect();
            let count = |agents: &[Value], f: &dyn Fn(&AgentStatus) -> bool| {
                agents
                    .iter()
                    .filter(|a| f(&AgentStatus::from(a["status"].as_str().unwrap().to_owned())))
                    .count()
            };
            let file = json!({
                "task_id": "T", "agents": agents, "total_spawned": n,
                "active_count": count(&agents, &|s| s.is_active()),
                "completed_count": count(&agents, &|s| *s == AgentStatus::Completed),
            });
            let bytes = serde_json::to_vec_pretty(&file).unwrap();
            let changes: Vec<Change> = picks
                .iter()
                .map(|(i, st, text)| Change {
                    agent: AgentId::parse(&format!("a-{}", i % n)).unwrap(),
                    status: st.map(status_of),
                    task_fields: [("progress".to_owned(), json!(text))].into_iter().collect(),
                    index_fields: Map::new(),
                })
                .collect();
            let out = task(&bytes, &changes).unwrap().unwrap();
            let got: Value = serde_json::from_slice(&out.bytes).unwrap();
            let mut expected = file.clone();
            for c in &changes {
                let i: usize = c.agent.as_str()[2..].parse().unwrap();
                let e = &mut expected["agents"][i];
                if let Some(s) = &c.status {
                    e["status"] = json!(s.as_str());
                }
                for (k, v) in &c.task_fields {
                    e[k] = v.clone();
                }
            }
            let after: Vec<Value> = expected["agents"].as_array().unwrap().clone();
            expected["active_count"] = json!(count(&after, &|s| s.is_active()));
            expected["completed_count"] = json!(count(&after, &|s| *s == AgentStatus::Completed));
            proptest::prop_assert_eq!(got, expected);
        }
    }
}
