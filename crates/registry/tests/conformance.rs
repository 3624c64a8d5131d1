//! The JSON registry passes the suite every registry must pass.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use camino::Utf8PathBuf;
use deploy_core::Layout;
use registry::JsonRegistry;

fn root() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().unwrap();
    let path = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
    (dir, Layout::new(path))
}

#[test]
fn the_json_registry_conforms() {
    let dirs = std::sync::Mutex::new(Vec::new());
    testkit::conformance::registry(|| {
        let (dir, layout) = root();
        dirs.lock().unwrap().push(dir);
        JsonRegistry::new(layout)
    });
}

#[test]
fn a_truncated_task_registry_is_reported_and_kept() {
    let (_dir, layout) = root();
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
