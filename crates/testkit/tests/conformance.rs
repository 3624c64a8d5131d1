//! The fake registry passes the suite every registry must pass (it has no storage to damage:
//! `corrupt_storage` is run against the real ones).

#[test]
fn the_fake_registry_conforms() {
    testkit::conformance::registry(|_workspace| testkit::FakeRegistry::new());
}
