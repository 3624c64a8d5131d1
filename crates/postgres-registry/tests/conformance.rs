//! The Postgres registry, against a real PostgreSQL server the test starts privately: it passes
//! the suite every registry must pass; an unreachable or restarted server is one line naming the
//! database and never its password, and the next operation after a restart works.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use deploy_core::{NewTask, Parent, Registry};
use postgres_registry::{Error, PostgresRegistry};
use testkit::conformance::temp_workspace;
use testkit::postgres::PgServer;

#[test]
fn the_postgres_registry_conforms() {
    let server = PgServer::start();
    testkit::conformance::registry(|layout| {
        PostgresRegistry::connect(layout, &server.new_database()).unwrap()
    });
}

fn registration(task: &deploy_core::TaskId, ty: &str) -> deploy_core::Registration {
    testkit::conformance::registration(task, ty, Parent::Orchestrator)
}

#[test]
fn a_stopped_server_is_one_line_naming_the_database_and_a_restart_needs_nothing_restarted() {
    let mut server = PgServer::start();
    let url = server
        .new_database()
        .replace("fleet@", "fleet:hunter2-secret@");
    let (_dir, layout) = temp_workspace();
    let r = PostgresRegistry::connect(layout, &url).unwrap();
    let task = r
        .create_task(&NewTask {
            description: "restart".into(),
            ..NewTask::default()
        })
        .unwrap()
        .id;
    r.register(&registration(&task, "a")).unwrap();

    server.stop();
    let e = r.register(&registration(&task, "b")).unwrap_err();
    let text = e.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(
        text.contains(&format!(
            "postgres://127.0.0.1:{}/fleet_test_0",
            server.port()
        )),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "the password was shown: {text}");

    server.run();
    r.register(&registration(&task, "c")).unwrap();
    let agents = r.read_task(&task).unwrap().agents;
    let types: Vec<&str> = agents.iter().map(|a| a.agent_type.as_str()).collect();
    assert_eq!(
        types,
        ["a", "c"],
        "b was refused, c registered after the restart"
    );
}

#[test]
fn nothing_listens_is_one_line_naming_the_database() {
    let (_dir, layout) = temp_workspace();
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = PostgresRegistry::connect(
        layout,
        &format!("postgres://u:secret-pw@127.0.0.1:{port}/fleetdb?connect_timeout=5"),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot reach the registry database postgres://127.0.0.1:{port}/fleetdb"
        )),
        "{text}"
    );
    assert!(
        !text.contains("secret-pw") && !text.contains('\n'),
        "{text}"
    );
}

#[test]
fn a_newer_schema_is_refused_unwritten() {
    let server = PgServer::start();
    let url = server.new_database();
    let (_dir, layout) = temp_workspace();
    drop(PostgresRegistry::connect(layout.clone(), &url).unwrap());
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.execute(
        "UPDATE fleet_schema SET version = $1",
        &[&(postgres_registry::schema::VERSION + 1)],
    )
    .unwrap();
    let e = PostgresRegistry::connect(layout, &url).unwrap_err();
    assert!(e.to_string().contains("upgrade fleet"), "{e}");
    let v: i32 = c
        .query_one("SELECT version FROM fleet_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(v, postgres_registry::schema::VERSION + 1, "it was written");
}

/// Eight deployers, each with its own connection (as eight processes on two hosts would be),
/// race to register into a task of `max_concurrent` 3, many rounds: exactly 3 get in each time.
/// (One registry's threads share one connection; this is what the task row's lock is for.)
#[test]
fn eight_connections_racing_never_break_max_concurrent() {
    let server = PgServer::start();
    let url = server.new_database();
    let (_dir, layout) = temp_workspace();
    let registries: Vec<PostgresRegistry> = (0..8)
        .map(|_| PostgresRegistry::connect(layout.clone(), &url).unwrap())
        .collect();
    for round in 0..10 {
        let task = registries[0]
            .create_task(&NewTask {
                description: format!("race {round}"),
                limits: deploy_core::Limits {
                    max_concurrent: 3,
                    ..deploy_core::Limits::default()
                },
                ..NewTask::default()
            })
            .unwrap()
            .id;
        let barrier = std::sync::Barrier::new(registries.len());
        let won = std::thread::scope(|s| {
            let racers: Vec<_> = registries
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let (task, barrier) = (&task, &barrier);
                    s.spawn(move || {
                        let reg = registration(task, &format!("racer{i}"));
                        barrier.wait();
                        r.register(&reg).is_ok()
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|won| *won)
                .count()
        });
        assert_eq!(won, 3, "round {round}");
        assert_eq!(registries[7].read_task(&task).unwrap().agents.len(), 3);
    }
}
