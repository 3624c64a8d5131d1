//! The JSON registry passes the suite every registry must pass.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use registry::JsonRegistry;
use testkit::conformance::temp_workspace;

#[test]
fn the_json_registry_conforms() {
    testkit::conformance::registry(JsonRegistry::new);
}

#[test]
fn a_truncated_task_registry_is_reported_and_kept() {
    let (_dir, layout) = temp_workspace();
    testkit::conformance::corrupt_storage(
        JsonRegistry::new(layout.clone()),
        || {
            let task = &JsonRegistry::new(layout.clone()).task_ids().unwrap()[0];
            let path = layout.task_registry(task);
            let bytes = fs_err::read(&path).unwrap();
            fs_err::write(&path, &bytes[..bytes.len() / 2]).unwrap();
            path
        },
        || Ok(JsonRegistry::new(layout.clone())),
    );
}
