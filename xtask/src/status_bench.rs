//! `fleet status` of 100 agents with 1 MB logs each: the first look reads every log whole;
//! each later look reads only what was appended since (the readers' places are kept in the
//! workspace). Goal for a later look: under 50 ms, whole process.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::procs::{Env, Stats, time};

const AGENTS: usize = 100;
const LOG_BYTES: usize = 1 << 20;

/// (first look, later looks).
pub(crate) fn run(fleet: &Path, scratch: &Path) -> Result<(Stats, Stats), String> {
    let env = Env::new(fleet, scratch, "status")?;
    let task = env.task()?;
    // 100 live sessions, 25 per tmux invocation (its command line has a size limit).
    for batch in 0..AGENTS / 25 {
        let mut args: Vec<String> = Vec::new();
        for i in batch * 25..(batch + 1) * 25 {
            let (agent, session) = (
                format!("busy-{i:06}-000000"),
                format!("agent_busy-{i:06}-000000"),
            );
            let exact = format!("={session}:");
            if !args.is_empty() {
                args.push(";".into());
            }
            args.extend(["new-session", "-d", "-s", &session, "sleep", "3600"].map(String::from));
            args.extend(
                [";", "set-option", "-t", &exact, "@fleet_agent_id", &agent].map(String::from),
            );
            args.extend(
                [";", "set-option", "-t", &exact, "@fleet_task_id", &task].map(String::from),
            );
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.tmux(&refs)?;
        if !out.status.success() {
            return Err(format!(
                "cannot create the sessions: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    // Their registry entries and 1 MB stream-json logs.
    let dir = env.root.join(&task);
    let path = dir.join("AGENT_REGISTRY.json");
    let mut file: Value = serde_json::from_slice(&std::fs::read(&path).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let event = |n: usize| {
        format!(
            "{{\"type\":\"assistant\",\"message\":{{\"id\":\"msg_{n}\",\"content\":[{{\"type\":\"tool_use\",\"name\":\"Bash\",\"input\":{{\"command\":\"cargo test {}\"}}}}],\"usage\":{{\"input_tokens\":100,\"output_tokens\":20}}}}}}\n",
            "x".repeat(200)
        )
    };
    let mut agents = Vec::new();
    for i in 0..AGENTS {
        let id = format!("busy-{i:06}-000000");
        let mut log = std::io::BufWriter::new(
            std::fs::File::create(logs.join(format!("{id}_stream.jsonl")))
                .map_err(|e| e.to_string())?,
        );
        let mut written = 0;
        let mut n = 0;
        while written < LOG_BYTES {
            let line = event(n);
            written += line.len();
            n += 1;
            log.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
        }
        log.flush().map_err(|e| e.to_string())?;
        agents.push(json!({
            "id": id, "type": "busy", "tmux_session": format!("agent_{id}"),
            "parent": "orchestrator", "depth": 1, "status": "running",
            "started_at": "2026-11-24T08:33:01.582508", "fleet_placement": env.placement(),
        }));
    }
    file["agents"] = Value::Array(agents);
    file["total_spawned"] = json!(AGENTS);
    file["active_count"] = json!(AGENTS);
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let status = ["--json", "status", "--task", task.as_str()];
    let (first, _) = time(|| env.ok(&status))?;
    let mut later = Vec::new();
    for round in 0..10 {
        for i in 0..AGENTS {
            let log = logs.join(format!("busy-{i:06}-000000_stream.jsonl"));
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&log)
                .map_err(|e| e.to_string())?;
            f.write_all(event(1_000_000 + round).as_bytes())
                .map_err(|e| e.to_string())?;
        }
        let (ms, out) = time(|| env.ok(&status))?;
        let v: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
        if v[0]["agents"].as_array().map_or(0, Vec::len) != AGENTS {
            return Err(format!("status shows not {AGENTS} agents"));
        }
        later.push(ms);
    }
    Ok((Stats(vec![first]), Stats(later)))
}
