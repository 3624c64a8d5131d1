//! The three registries, same run: register and status update with 10 / 1,000 / 10,000 /
//! 100,000 agents already in the task, and a read of a 10,000-agent task; for PostgreSQL also
//! 8 deployers on two hosts registering at once. The JSON registry's figures are
//! `registry/…`, the SQLite registry's `sqlite/…`, PostgreSQL's `postgres/…` (a private
//! server of the bench's own that flushes every commit to disk, reached over TCP on
//! 127.0.0.1 as another host reaches it). Run through `cargo xtask bench`, which writes them
//! into docs/BENCHMARKS.md.

// Bench setup may unwrap: a failed unwrap is a failed benchmark.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use camino::Utf8PathBuf;
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main,
};
use deploy_core::limits::Candidate;
use deploy_core::{
    AgentId, AgentStatus, AgentType, HostName, Layout, Limits, Parent, Registration, Registry,
    SessionName, StatusUpdate, TaskId, timestamp,
};
use postgres_registry::PostgresRegistry;
use registry::format::{AgentEntry, TaskFile};
use registry::{JsonRegistry, NewTask};
use serde_json::json;
use sqlite_registry::SqliteRegistry;
use testkit::postgres::PgServer;

/// The agent counts of the register and status update figures.
const SIZES: [usize; 4] = [10, 1_000, 10_000, 100_000];

struct Fixture {
    _dir: tempfile::TempDir,
    json: JsonRegistry,
    sqlite: SqliteRegistry,
    postgres: PostgresRegistry,
    postgres_url: String,
    layout: Layout,
    task: TaskId,
    task_bytes: Vec<u8>,
    global_bytes: Vec<u8>,
    some_agent: AgentId,
}

/// A task holding `n` agents, written directly as the JSON registry's files (registering them
/// one by one would be quadratic), the global index rebuilt from it, and the same imported
/// into a SQLite database (`fleet migrate --to sqlite`) and a new database of `server`
/// (`fleet migrate --to postgres`).
fn fixture(n: usize, server: &PgServer) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap());
    let json = JsonRegistry::new(layout.clone());
    let limits = Limits {
        max_agents: 1_000_000,
        max_concurrent: 1_000_000,
        max_depth: 5,
    };
    let mut file: TaskFile = json
        .create_task(&NewTask {
            description: "bench".into(),
            limits,
            ..NewTask::default()
        })
        .unwrap();
    let agent_type = AgentType::parse("worker").unwrap();
    for i in 0..n {
        let id = AgentId::parse(&format!("worker-{i:06}-000000")).unwrap();
        let mut extra = serde_json::Map::new();
        extra.insert("progress".into(), json!(0));
        extra.insert("last_update".into(), json!(timestamp()));
        extra.insert(
            "prompt".into(),
            json!("Find every unlocked registry write."),
        );
        extra.insert(
            "tracked_files".into(),
            json!(layout.tracked_files(&file.task_id, &id)),
        );
        file.agents.push(AgentEntry {
            tmux_session: SessionName::for_agent(&id).unwrap(),
            id,
            agent_type: agent_type.clone(),
            parent: Parent::Orchestrator,
            depth: 1,
            status: AgentStatus::Running,
            started_at: timestamp(),
            extra: extra.into(),
        });
    }
    file.recount();
    let task_path = layout.task_registry(&file.task_id);
    fs_err::write(&task_path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    json.rebuild_global().unwrap();
    let whole = registry::JsonRegistry::new(layout.clone()).whole().unwrap();
    SqliteRegistry::import(&layout, &whole).unwrap();
    let postgres_url = server.new_database();
    let postgres = PostgresRegistry::connect(layout.clone(), &postgres_url).unwrap();
    postgres.import(&whole).unwrap();
    Fixture {
        sqlite: SqliteRegistry::open(layout.clone()).unwrap(),
        postgres,
        postgres_url,
        task_bytes: fs_err::read(&task_path).unwrap(),
        global_bytes: fs_err::read(layout.global_registry()).unwrap(),
        some_agent: file
            .agents
            .first()
            .map_or_else(|| AgentId::parse("none").unwrap(), |a| a.id.clone()),
        task: file.task_id,
        json,
        layout,
        _dir: dir,
    }
}

fn fresh(f: &Fixture) -> Registration {
    let agent = AgentId::parse("fresh-000000-000000").unwrap();
    Registration {
        task: f.task.clone(),
        session: SessionName::for_agent(&agent).unwrap(),
        tracked_files: f.layout.tracked_files(&f.task, &agent),
        agent,
        agent_type: AgentType::parse("fresh").unwrap(),
        parent: Parent::Orchestrator,
        prompt_preview: "p".into(),
        started_at: timestamp(),
        placement: "test".into(),
        allow_duplicate: true,
        checkout: None,
        launch: None,
        batch: None,
        host: None,
    }
}

/// A deployment's limit check before anything exists, for a new agent of the fixture's type.
fn precheck(registry: &dyn Registry, f: &Fixture) -> u32 {
    let agent_type = AgentType::parse("worker").unwrap();
    let candidate = Candidate {
        agent_type: &agent_type,
        parent: &Parent::Orchestrator,
        allow_duplicate: true,
    };
    registry.precheck(&f.task, candidate).unwrap()
}

fn json_benches(group: &mut BenchmarkGroup<'_, WallTime>, f: &Fixture, n: usize) {
    // As a deployment pays it: a registry made anew (nothing parsed yet), the file parsed.
    group.bench_with_input(BenchmarkId::new("precheck", n), &n, |b, _| {
        b.iter_batched(
            || JsonRegistry::new(f.layout.clone()),
            |r| precheck(&r, f),
            BatchSize::PerIteration,
        );
    });
    group.bench_with_input(BenchmarkId::new("register", n), &n, |b, _| {
        b.iter_batched(
            || {
                // Back to exactly n agents before every registration.
                fs_err::write(f.layout.task_registry(&f.task), &f.task_bytes).unwrap();
                fs_err::write(f.layout.global_registry(), &f.global_bytes).unwrap();
                fresh(f)
            },
            |r| f.json.register(&r).unwrap(),
            BatchSize::PerIteration,
        );
    });
    // The floor of any change the format allows: the task registry read and replaced whole
    // (written, fsynced, renamed) — no parsing at all.
    let path = f.layout.task_registry(&f.task);
    group.bench_with_input(BenchmarkId::new("rewrite_floor", n), &n, |b, _| {
        b.iter(|| {
            let bytes = fs_err::read(&path).unwrap();
            registry::atomic::write_atomic(&path, &bytes).unwrap();
        });
    });
    let update = StatusUpdate::now(AgentStatus::Working);
    group.bench_with_input(BenchmarkId::new("status_update", n), &n, |b, _| {
        b.iter(|| {
            f.json
                .update_status(&f.task, &f.some_agent, &update)
                .unwrap()
        });
    });
    if n == 10_000 {
        group.bench_with_input(BenchmarkId::new("read", n), &n, |b, _| {
            b.iter(|| f.json.read_task(&f.task).unwrap());
        });
    }
}

fn sqlite_benches(group: &mut BenchmarkGroup<'_, WallTime>, f: &Fixture, n: usize) {
    group.bench_with_input(BenchmarkId::new("precheck", n), &n, |b, _| {
        b.iter(|| precheck(&f.sqlite, f));
    });
    group.bench_with_input(BenchmarkId::new("register", n), &n, |b, _| {
        b.iter_batched(
            || {
                // Back to exactly n agents before every registration.
                let r = fresh(f);
                f.sqlite.unregister(&f.task, &r.agent).unwrap();
                r
            },
            |r| f.sqlite.register(&r).unwrap(),
            BatchSize::PerIteration,
        );
    });
    let update = StatusUpdate::now(AgentStatus::Working);
    group.bench_with_input(BenchmarkId::new("status_update", n), &n, |b, _| {
        b.iter(|| {
            f.sqlite
                .update_status(&f.task, &f.some_agent, &update)
                .unwrap()
        });
    });
    if n == 10_000 {
        group.bench_with_input(BenchmarkId::new("read", n), &n, |b, _| {
            b.iter(|| f.sqlite.read_task(&f.task).unwrap());
        });
        // The floor of a read that returns records: the same rows, each entry parsed (so
        // checked) but nothing built from it. What `read` costs above it is building and
        // freeing the records, with their maps of the Python server's fields.
        let db = rusqlite::Connection::open(sqlite_registry::path_in(&f.layout)).unwrap();
        group.bench_with_input(BenchmarkId::new("read_floor", n), &n, |b, _| {
            b.iter(|| {
                let mut stmt = db
                    .prepare_cached("SELECT entry FROM agents WHERE task_id = ?1 ORDER BY seq")
                    .unwrap();
                let mut rows = stmt.query([f.task.as_str()]).unwrap();
                let mut count = 0;
                while let Some(row) = rows.next().unwrap() {
                    let text = row.get_ref(0).unwrap().as_str().unwrap();
                    serde_json::from_str::<serde::de::IgnoredAny>(text).unwrap();
                    count += 1;
                }
                // n, and the one the register bench left when run once as a test.
                assert!(count >= n, "{count} rows");
            });
        });
        // Where the rest goes: the rows alone (each entry's text copied out), and the rows
        // with each entry built into the registry's typed entry (`AgentEntry`: every field the
        // Python server wrote kept as a JSON value) — what `read` does before it assembles the
        // snapshot.
        let rows = |f: &Fixture, each: &mut dyn FnMut(&str)| {
            let mut stmt = db
                .prepare_cached("SELECT entry FROM agents WHERE task_id = ?1 ORDER BY seq")
                .unwrap();
            let mut rows = stmt.query([f.task.as_str()]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                each(row.get_ref(0).unwrap().as_str().unwrap());
            }
        };
        group.bench_with_input(BenchmarkId::new("read_rows", n), &n, |b, _| {
            b.iter(|| {
                let mut out = Vec::with_capacity(n + 1);
                rows(f, &mut |text| out.push(text.to_owned()));
                assert!(out.len() >= n);
                out
            });
        });
        group.bench_with_input(BenchmarkId::new("read_entries", n), &n, |b, _| {
            b.iter(|| {
                let mut out = Vec::with_capacity(n + 1);
                rows(f, &mut |text| {
                    out.push(serde_json::from_str::<AgentEntry>(text).unwrap());
                });
                assert!(out.len() >= n);
                out
            });
        });
    }
}

fn postgres_benches(group: &mut BenchmarkGroup<'_, WallTime>, f: &Fixture, n: usize) {
    let pg = &f.postgres;
    group.bench_with_input(BenchmarkId::new("precheck", n), &n, |b, _| {
        b.iter(|| precheck(pg, f));
    });
    group.bench_with_input(BenchmarkId::new("register", n), &n, |b, _| {
        b.iter_batched(
            || {
                // Back to exactly n agents before every registration.
                let r = fresh(f);
                pg.unregister(&f.task, &r.agent).unwrap();
                r
            },
            |r| pg.register(&r).unwrap(),
            BatchSize::PerIteration,
        );
    });
    let update = StatusUpdate::now(AgentStatus::Working);
    group.bench_with_input(BenchmarkId::new("status_update", n), &n, |b, _| {
        b.iter(|| pg.update_status(&f.task, &f.some_agent, &update).unwrap());
    });
    if n == 10_000 {
        group.bench_with_input(BenchmarkId::new("read", n), &n, |b, _| {
            b.iter(|| pg.read_task(&f.task).unwrap());
        });
        // The floor of a read that returns records, as for SQLite: the same rows over the same
        // connection kind, each entry parsed but nothing built from it.
        let mut db = postgres::Client::connect(&f.postgres_url, postgres::NoTls).unwrap();
        let rows = |db: &mut postgres::Client| {
            db.query(
                "SELECT entry FROM fleet_agents WHERE task_id = $1 ORDER BY seq",
                &[&f.task.as_str()],
            )
            .unwrap()
        };
        group.bench_with_input(BenchmarkId::new("read_floor", n), &n, |b, _| {
            b.iter(|| {
                let rows = rows(&mut db);
                for row in &rows {
                    let text: &str = row.get(0);
                    serde_json::from_str::<serde::de::IgnoredAny>(text).unwrap();
                }
                assert!(rows.len() >= n, "{} rows", rows.len());
            });
        });
        // The rows alone, each entry's text copied out: what the server and the connection
        // cost before anything is parsed.
        group.bench_with_input(BenchmarkId::new("read_rows", n), &n, |b, _| {
            b.iter(|| {
                let rows = rows(&mut db);
                let out: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
                assert!(out.len() >= n);
                out
            });
        });
    }
}

/// How many deployers race, and how many agents each registers in one round.
const DEPLOYERS: usize = 8;
const EACH: usize = 25;

/// 8 deployers, 4 on each of two hosts, each with its own connection, registering 25 agents
/// each into one task of a fresh database at once; timed from their common start to the last
/// one's last commit. Every round checks that none was lost: the database holds exactly the
/// 200 agents, each on its deployer's host.
fn deployers_bench(c: &mut Criterion, server: &PgServer) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap());
    let url = server.new_database();
    let setup = PostgresRegistry::connect(layout.clone(), &url).unwrap();
    let task = setup
        .create_task(&deploy_core::NewTask {
            description: "deployers".into(),
            limits: Limits {
                max_agents: 1_000_000,
                max_concurrent: 1_000_000,
                max_depth: 5,
            },
            ..deploy_core::NewTask::default()
        })
        .unwrap()
        .id;
    let deployers: Vec<(PostgresRegistry, HostName)> = (0..DEPLOYERS)
        .map(|i| {
            let host = HostName::parse(if i % 2 == 0 { "host-a" } else { "host-b" }).unwrap();
            (
                PostgresRegistry::connect(layout.clone(), &url).unwrap(),
                host,
            )
        })
        .collect();
    let mut round = 0_usize;
    let mut group = c.benchmark_group("postgres");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_millis(500));
    group.bench_function("deployers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let start = std::sync::Barrier::new(DEPLOYERS + 1);
                let took = std::thread::scope(|s| {
                    for (d, (registry, host)) in deployers.iter().enumerate() {
                        let (start, task, layout) = (&start, &task, &layout);
                        s.spawn(move || {
                            let regs: Vec<Registration> = (0..EACH)
                                .map(|k| {
                                    let agent =
                                        AgentId::parse(&format!("racer-{round:06}-{d:02}{k:04}"))
                                            .unwrap();
                                    Registration {
                                        task: task.clone(),
                                        session: SessionName::for_agent(&agent).unwrap(),
                                        tracked_files: layout.tracked_files(task, &agent),
                                        agent_type: AgentType::parse(&format!("racer{d}{k}"))
                                            .unwrap(),
                                        agent,
                                        parent: Parent::Orchestrator,
                                        prompt_preview: "p".into(),
                                        started_at: timestamp(),
                                        placement: "bench".into(),
                                        allow_duplicate: true,
                                        checkout: None,
                                        launch: None,
                                        batch: None,
                                        host: Some(host.clone()),
                                    }
                                })
                                .collect();
                            start.wait();
                            for r in &regs {
                                registry.register(r).unwrap();
                            }
                        });
                    }
                    start.wait();
                    let began = std::time::Instant::now();
                    // The scope joins every deployer before it returns.
                    began
                })
                .elapsed();
                total += took;
                let snapshot = setup.read_task(&task).unwrap();
                let this_round: Vec<_> = snapshot
                    .agents
                    .iter()
                    .filter(|a| a.id.as_str().starts_with(&format!("racer-{round:06}-")))
                    .collect();
                assert_eq!(this_round.len(), DEPLOYERS * EACH, "registrations lost");
                let on_a = this_round
                    .iter()
                    .filter(|a| a.host().is_some_and(|h| h.as_str() == "host-a"))
                    .count();
                assert_eq!(on_a, DEPLOYERS * EACH / 2, "agents on host-a");
                for a in this_round {
                    setup.unregister(&task, &a.id).unwrap();
                }
            }
            total
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    // Run as a test (`cargo test --all-targets`, debug build, once each), 100,000 agents would
    // only make CI slow: the sizes up to 10,000 check the code runs.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let server = PgServer::start_durable();
    deployers_bench(c, &server);
    for n in SIZES.into_iter().filter(|&n| benchmarking || n <= 10_000) {
        let f = fixture(n, &server);
        for (name, run) in [
            (
                "registry",
                json_benches as fn(&mut BenchmarkGroup<'_, WallTime>, &Fixture, usize),
            ),
            ("sqlite", sqlite_benches),
            ("postgres", postgres_benches),
        ] {
            let mut group = c.benchmark_group(name);
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(3))
                .warm_up_time(Duration::from_millis(500));
            run(&mut group, &f, n);
            group.finish();
        }
    }
}

criterion_group!(all, benches);
criterion_main!(all);
