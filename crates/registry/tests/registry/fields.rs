//! The registry files' hand-written deserializers (`deserialize_with_extra!`) read what serde's
//! `#[serde(flatten)]` derive read, for any object: the same typed fields, the same unknown
//! fields in the same order, the same refusals.

use deploy_core::{AgentId, AgentStatus, AgentType, Parent, SessionName, TaskId};
use proptest::prelude::*;
use registry::format::{AgentEntry, GlobalAgent};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// `AgentEntry` as it was derived before: the reference.
#[derive(Debug, Deserialize)]
struct FlatAgentEntry {
    id: AgentId,
    #[serde(rename = "type")]
    agent_type: AgentType,
    tmux_session: SessionName,
    parent: Parent,
    depth: u32,
    status: AgentStatus,
    started_at: String,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// `GlobalAgent` as it was derived before.
#[derive(Debug, Deserialize)]
struct FlatGlobalAgent {
    task_id: TaskId,
    #[serde(rename = "type")]
    agent_type: AgentType,
    parent: Parent,
    started_at: String,
    tmux_session: SessionName,
    #[serde(default)]
    status: Option<AgentStatus>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn same_entry(text: &str) -> Result<(), TestCaseError> {
    let ours = serde_json::from_str::<AgentEntry>(text);
    let reference = serde_json::from_str::<FlatAgentEntry>(text);
    match (ours, reference) {
        (Ok(a), Ok(b)) => {
            prop_assert_eq!(&a.id, &b.id);
            prop_assert_eq!(&a.agent_type, &b.agent_type);
            prop_assert_eq!(&a.tmux_session, &b.tmux_session);
            prop_assert_eq!(&a.parent, &b.parent);
            prop_assert_eq!(a.depth, b.depth);
            prop_assert_eq!(&a.status, &b.status);
            prop_assert_eq!(&a.started_at, &b.started_at);
            // Map equality ignores order: compare the keys' order too.
            prop_assert_eq!(&a.extra.to_map(), &b.extra);
            prop_assert!(a.extra.keys().eq(b.extra.keys()), "{text}");
        }
        (Err(_), Err(_)) => {}
        (a, b) => prop_assert!(false, "{text}: ours {a:?}, flatten {b:?}"),
    }
    Ok(())
}

/// An agent entry's fields, each possibly left out, given a wrong type or repeated, beside
/// unknown fields, in any order, written out as text (so repeated keys survive).
fn entry_text() -> impl Strategy<Value = String> {
    let known = prop_oneof![
        Just(("id", json!("fixer-104402-9b2f61"))),
        Just(("id", json!("bad id!"))),
        Just(("type", json!("fixer"))),
        Just(("tmux_session", json!("agent_fixer-104402-9b2f61"))),
        Just(("parent", json!("orchestrator"))),
        Just(("depth", json!(2))),
        Just(("depth", json!("two"))),
        Just(("depth", json!(-1))),
        Just(("status", json!("running"))),
        Just(("status", json!("some-new-status"))),
        Just(("started_at", json!("2026-11-25T10:44:02.1"))),
        Just(("started_at", Value::Null)),
    ];
    let all_known = Just(vec![
        ("id", json!("fixer-104402-9b2f61")),
        ("type", json!("fixer")),
        ("tmux_session", json!("agent_fixer-104402-9b2f61")),
        ("parent", json!("orchestrator")),
        ("depth", json!(1)),
        ("status", json!("running")),
        ("started_at", json!("2026-11-25T10:44:02.1")),
    ]);
    let fields = (
        all_known,
        prop::collection::vec(known, 0..3),
        prop::collection::vec(("[a-z_]{1,10}", testkit::json::any_value()), 0..6),
        prop::collection::vec(any::<prop::sample::Index>(), 0..3),
    );
    fields
        .prop_flat_map(|(known, more, unknown, dropped)| {
            let mut pairs: Vec<(String, Value)> = known
                .into_iter()
                .chain(more)
                .map(|(k, v)| (k.to_owned(), v))
                .chain(unknown)
                .collect();
            for i in dropped {
                if !pairs.is_empty() {
                    pairs.remove(i.index(pairs.len()));
                }
            }
            Just(pairs).prop_shuffle()
        })
        .prop_map(|pairs| {
            let body: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}: {v}", Value::from(k.as_str())))
                .collect();
            format!("{{{}}}", body.join(", "))
        })
}

proptest! {
    #[test]
    fn an_agent_entry_reads_as_the_flatten_derive_read_it(text in entry_text()) {
        same_entry(&text)?;
    }
}

#[test]
fn a_missing_or_repeated_field_is_named() {
    let missing = serde_json::from_str::<AgentEntry>(r#"{"id": "a", "type": "t"}"#).unwrap_err();
    assert!(
        missing.to_string().contains("missing field `tmux_session`"),
        "{missing}"
    );
    let repeated = serde_json::from_str::<AgentEntry>(r#"{"id": "a", "id": "b"}"#).unwrap_err();
    assert!(
        repeated.to_string().contains("duplicate field `id`"),
        "{repeated}"
    );
    let not_an_object = serde_json::from_str::<AgentEntry>("[1]").unwrap_err();
    assert!(
        not_an_object.to_string().contains("an object (AgentEntry)"),
        "{not_an_object}"
    );
}

#[test]
fn a_global_agent_without_status_is_running_as_before() {
    let text = r#"{"task_id": "TASK-20261125-104402-3c1e0b52", "type": "fixer",
        "parent": "orchestrator", "started_at": "x", "tmux_session": "agent_fixer",
        "progress": 5}"#;
    let ours: GlobalAgent = serde_json::from_str(text).unwrap();
    let reference: FlatGlobalAgent = serde_json::from_str(text).unwrap();
    assert_eq!(ours.status, None);
    assert_eq!(ours.status, reference.status);
    assert_eq!(ours.task_id, reference.task_id);
    assert_eq!(ours.agent_type, reference.agent_type);
    assert_eq!(ours.parent, reference.parent);
    assert_eq!(ours.started_at, reference.started_at);
    assert_eq!(ours.tmux_session, reference.tmux_session);
    assert_eq!(ours.extra, reference.extra);
    assert_eq!(ours.extra["progress"], 5);
}
