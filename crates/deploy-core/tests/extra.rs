//! [`Extra`] keeps a record's other fields as a `serde_json::Map` (with `preserve_order`) kept
//! them: the same keys in the same order with the same values, whatever is inserted, replaced
//! or taken out, and whichever way the record is read or written.

use deploy_core::{AgentRecord, Extra};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
enum Op {
    Insert(String, Value),
    Take(String),
}

fn op() -> impl Strategy<Value = Op> {
    // Few keys, so that most operations hit a key already there.
    let key = "[a-d]";
    prop_oneof![
        3 => (key, testkit::json::any_value()).prop_map(|(k, v)| Op::Insert(k, v)),
        1 => key.prop_map(Op::Take),
    ]
}

fn same(extra: &Extra, model: &Map<String, Value>) -> Result<(), TestCaseError> {
    prop_assert_eq!(&extra.to_map(), model);
    prop_assert!(extra.keys().eq(model.keys().map(String::as_str)));
    prop_assert_eq!(extra.len(), model.len());
    for (k, v) in model {
        prop_assert_eq!(extra.value(k), Some(v.clone()));
        prop_assert!(extra.contains_key(k));
    }
    Ok(())
}

proptest! {
    #[test]
    fn extra_behaves_as_an_ordered_map(ops in prop::collection::vec(op(), 0..40)) {
        let mut extra = Extra::new();
        let mut model = Map::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    extra.insert(&k, &v);
                    model.insert(k, v);
                }
                Op::Take(k) => {
                    prop_assert_eq!(extra.take::<Value>(&k), model.shift_remove(&k));
                }
            }
            same(&extra, &model)?;
        }
        // Written out and read back, by every reader serde_json has.
        let text = serde_json::to_string(&extra).unwrap();
        prop_assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), Value::Object(model.clone()));
        same(&serde_json::from_str::<Extra>(&text).unwrap(), &model)?;
        same(&serde_json::from_reader::<_, Extra>(text.as_bytes()).unwrap(), &model)?;
        same(&serde_json::from_value::<Extra>(Value::Object(model.clone())).unwrap(), &model)?;
    }
}

#[test]
fn a_key_given_twice_keeps_its_first_place_and_its_last_value() {
    let extra: Extra = serde_json::from_str(r#"{"a": 1, "b": 2, "a": {"x": [3]}}"#).unwrap();
    assert_eq!(extra.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(extra.value("a"), Some(json!({"x": [3]})));
    assert_eq!(extra.get("b"), Some("2"));
}

#[test]
fn fields_are_kept_as_their_text_and_written_in_the_writer_s_layout() {
    // As the Python server writes its files (indent=2, ASCII only).
    let text = "{\n  \"tracked_files\": {\n    \"log_file\": \"/w/log\"\n  },\n  \"prompt\": \"caf\\u00e9\"\n}";
    let extra: Extra = serde_json::from_str(text).unwrap();
    assert_eq!(extra.get("prompt"), Some("\"caf\\u00e9\""));
    assert_eq!(extra.parse::<String>("prompt").as_deref(), Some("café"));
    assert_eq!(
        extra.get("tracked_files"),
        Some("{\n    \"log_file\": \"/w/log\"\n  }")
    );
    // Written compactly, a field kept with its indents is compact too.
    assert_eq!(
        serde_json::to_string(&extra).unwrap(),
        r#"{"tracked_files":{"log_file":"/w/log"},"prompt":"café"}"#
    );
    // The same fields read from compact text are equal.
    let compact: Extra = serde_json::from_str(&serde_json::to_string(&extra).unwrap()).unwrap();
    assert_eq!(compact, extra);
    assert_ne!(compact, Extra::new());
}

#[test]
fn a_field_of_the_wrong_type_parses_as_none() {
    let extra: Extra = serde_json::from_str(r#"{"exit_status": "soon"}"#).unwrap();
    assert_eq!(extra.parse::<u32>("exit_status"), None);
    assert_eq!(extra.parse::<u32>("absent"), None);
    assert_eq!(extra.value("exit_status"), Some(json!("soon")));
}

#[test]
fn a_record_reads_its_own_fields_and_keeps_the_others_in_order() {
    let text = r#"{"id": "fixer-104402-9b2f61", "progress": 5, "type": "fixer",
        "tmux_session": "agent_fixer-104402-9b2f61", "parent": "orchestrator", "depth": 1,
        "status": "running", "started_at": "2026-11-25T10:44:02.1", "fleet_confirmed": true,
        "prompt": "p"}"#;
    for record in [
        serde_json::from_str::<AgentRecord>(text).unwrap(),
        serde_json::from_value::<AgentRecord>(serde_json::from_str(text).unwrap()).unwrap(),
    ] {
        assert!(record.confirmed);
        assert_eq!(record.placement, None);
        assert_eq!(
            record.extra.keys().collect::<Vec<_>>(),
            ["progress", "prompt"]
        );
        let again: AgentRecord =
            serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
        assert_eq!(again, record);
    }
}

#[test]
fn an_escaped_key_is_read_unescaped() {
    // serde_json borrows a key without escapes from the input and copies one with escapes.
    let extra: Extra = serde_json::from_str(r#"{"pro\u0067ress": 5, "prompt": "p"}"#).unwrap();
    assert_eq!(extra.keys().collect::<Vec<_>>(), ["progress", "prompt"]);
    let record: AgentRecord = serde_json::from_str(
        r#"{"\u0069d": "fixer-104402-9b2f61", "type": "fixer", "tmux_session": "agent_fixer-104402-9b2f61",
        "parent": "orchestrator", "depth": 1, "status": "running", "started_at": "x", "n\u0065w": 1}"#,
    )
    .unwrap();
    assert_eq!(record.id.as_str(), "fixer-104402-9b2f61");
    assert_eq!(record.extra.value("new"), Some(json!(1)));
}
