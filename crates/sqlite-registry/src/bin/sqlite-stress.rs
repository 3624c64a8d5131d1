//! A helper process for the SQLite registry's cross-process tests.
//!
//! ```text
//! sqlite-stress register <root> <task> <count> <type>
//!     registers <count> agents (duplicates of the type allowed); prints "ok <agent>" or
//!     "refused <error>" per attempt
//! sqlite-stress hold <root>
//!     takes the database's write lock (BEGIN IMMEDIATE), prints "locked", sleeps until killed
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use camino::Utf8PathBuf;
use deploy_core::{
    AgentId, AgentType, Layout, Parent, Registration, Registry, SessionName, TaskId, timestamp,
};
use sqlite_registry::SqliteRegistry;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sqlite-stress: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or("missing argument");
    let layout = Layout::new(Utf8PathBuf::from(arg(1)?));
    let mut out = std::io::stdout().lock();
    match arg(0)? {
        "register" => {
            let registry =
                SqliteRegistry::open_existing_with(layout.clone(), Duration::from_secs(30))?;
            let task = TaskId::parse(arg(2)?)?;
            let count: usize = arg(3)?.parse()?;
            let agent_type = AgentType::parse(arg(4)?)?;
            for _ in 0..count {
                let agent = AgentId::generate(&agent_type)?;
                let registration = Registration {
                    task: task.clone(),
                    agent: agent.clone(),
                    agent_type: agent_type.clone(),
                    parent: Parent::Orchestrator,
                    session: SessionName::for_agent(&agent)?,
                    prompt_preview: "stress".into(),
                    tracked_files: layout.tracked_files(&task, &agent),
                    started_at: timestamp(),
                    placement: "test".into(),
                    allow_duplicate: true,
                    checkout: None,
                    launch: None,
                    batch: None,
                    host: None,
                };
                match registry.register(&registration) {
                    Ok(_) => writeln!(out, "ok {agent}")?,
                    Err(e) => writeln!(out, "refused {e}")?,
                }
            }
        }
        "hold" => {
            let conn = rusqlite::Connection::open(sqlite_registry::path_in(&layout))?;
            conn.execute_batch("BEGIN IMMEDIATE")?;
            writeln!(out, "locked")?;
            out.flush()?;
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        other => return Err(format!("unknown command {other:?}").into()),
    }
    Ok(())
}
