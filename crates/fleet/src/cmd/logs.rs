//! `fleet logs`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use deploy_core::{Liveness, SessionBackend};
use serde_json::json;

use crate::cli::LogsArgs;
use crate::config::{Config, Services};
use crate::{Error, emit, ops};

pub(crate) fn run(cfg: &Config, args: &LogsArgs, json_mode: bool) -> Result<(), Error> {
    let services = Services::new(cfg)?;
    let entry = ops::agent_entry(&services, &args.task, &args.agent)?;
    let log = ops::log_file(&services, &args.task, &args.agent);
    let lines = tmux_backend::tail_lines(&log, args.lines);
    let value = json!({ "agent_id": args.agent, "log_file": log, "lines": lines });
    emit(json_mode, &value, || {
        lines.iter().map(|l| format!("{l}\n")).collect::<String>()
    });
    if !args.follow || json_mode {
        return Ok(());
    }
    let backend = &services.backend;
    let mut offset = fs_err::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let mut out = std::io::stdout().lock();
    loop {
        let alive = backend.probe(&entry.tmux_session)? == Liveness::Alive;
        if let Ok(mut f) = fs_err::File::open(&log) {
            let len = f.metadata()?.len();
            if len > offset {
                f.seek(SeekFrom::Start(offset))?;
                let mut buf = Vec::new();
                f.read_to_end(&mut buf)?;
                offset += buf.len() as u64;
                out.write_all(&buf)?;
                out.flush()?;
                continue;
            }
        }
        if !alive {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
