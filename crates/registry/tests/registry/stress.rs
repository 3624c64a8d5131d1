//! Driving the `registry-stress` helper binary: OS processes registering, reading, holding locks.

use std::process::{Child, Command, Stdio};

use deploy_core::{AgentId, TaskId};
use registry::format::{GlobalFile, TaskFile};

use crate::common::{Root, STRESS};

pub(crate) fn spawn(args: &[&str]) -> Child {
    Command::new(STRESS)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

pub(crate) fn output(child: Child) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub(crate) fn reader(root: &Root, task: &TaskId) -> Child {
    spawn(&["read", root.path.as_str(), task.as_str(), "3000"])
}

/// `processes` OS processes, started together, each registering `each` agents of
/// `agent_type` into `task`; returns every line they printed (`ok <agent>` / `refused <why>`).
pub(crate) fn race(
    root: &Root,
    task: &TaskId,
    processes: usize,
    each: usize,
    agent_type: &str,
) -> Vec<String> {
    let each = each.to_string();
    let args = [
        "register",
        root.path.as_str(),
        task.as_str(),
        &each,
        agent_type,
        "--allow-duplicate",
    ];
    let workers: Vec<Child> = (0..processes).map(|_| spawn(&args)).collect();
    workers.into_iter().flat_map(output).collect()
}

/// Every agent in `ok` is in the task registry and in the index: no update was lost.
pub(crate) fn assert_all_recorded(t: &TaskFile, g: &GlobalFile, ok: &[impl AsRef<str>]) {
    for id in ok.iter().map(AsRef::as_ref) {
        assert!(
            t.agent(&AgentId::parse(id).unwrap()).is_some(),
            "{id} lost from the task"
        );
        assert!(g.agents.contains_key(id), "{id} lost from the index");
    }
}

pub(crate) fn assert_reader_saw_no_torn_file(reader: Child) {
    let lines = output(reader);
    let last = lines.last().unwrap();
    let reads: u64 = last.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(last.ends_with(" errors 0"), "{lines:?}");
    assert!(reads > 100, "the reader ran alongside: {last}");
}
