//! A helper process for the registry's cross-process tests and benchmarks.
//!
//! ```text
//! registry-stress register <root> <task> <count> <type> [--allow-duplicate]
//!     registers <count> agents; prints "ok <agent>" or "refused <error>" per attempt
//! registry-stress read <root> <task> <millis>
//!     parses both registry files in a loop; prints "reads <n> errors <m>" and each error
//! registry-stress hold <root> <task>
//!     takes the task registry's lock, prints "locked", and sleeps until killed
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use deploy_core::{
    AgentId, AgentType, Layout, Parent, Registration, Registry, SessionName, TaskId, timestamp,
};
use registry::JsonRegistry;
use registry::format::{GlobalFile, TaskFile};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("registry-stress: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or("missing argument");
    let layout = Layout::new(Utf8PathBuf::from(arg(1)?));
    let task = TaskId::parse(arg(2)?)?;
    let registry = JsonRegistry::new(layout.clone());
    let mut out = std::io::stdout().lock();
    match arg(0)? {
        "register" => {
            let count: usize = arg(3)?.parse()?;
            let agent_type = AgentType::parse(arg(4)?)?;
            let allow_duplicate = args.iter().any(|a| a == "--allow-duplicate");
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
                    allow_duplicate,
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
        "read" => {
            let millis: u64 = arg(3)?.parse()?;
            let deadline = Instant::now() + Duration::from_millis(millis);
            let (mut reads, mut errors) = (0u64, 0u64);
            let task_path = layout.task_registry(&task);
            let global_path = layout.global_registry();
            while Instant::now() < deadline {
                for (path, is_task) in [(&task_path, true), (&global_path, false)] {
                    let bytes = fs_err::read(path)?;
                    let parsed = if is_task {
                        serde_json::from_slice::<TaskFile>(&bytes).map(drop)
                    } else {
                        serde_json::from_slice::<GlobalFile>(&bytes).map(drop)
                    };
                    reads += 1;
                    if let Err(e) = parsed {
                        errors += 1;
                        writeln!(out, "error {path}: {e}")?;
                    }
                }
            }
            writeln!(out, "reads {reads} errors {errors}")?;
        }
        "hold" => {
            let path = layout.task_registry(&task);
            let lock_path = path.with_file_name("AGENT_REGISTRY.json.lock");
            let _lock = deploy_core::lock::Flock::open(&lock_path, Duration::from_secs(5))?;
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
