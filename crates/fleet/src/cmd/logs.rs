//! `fleet logs`.

use std::io::{BufReader, Seek, SeekFrom, Write};

use activity::agent_file::{self, Line};
use std::time::Duration;

use deploy_core::Liveness;

use crate::cli::LogsArgs;
use crate::config::Services;
use crate::error::Error;
use crate::ops::{output, remote};
use crate::output::{emit, safe};

pub(crate) fn run(services: &Services, args: &LogsArgs, json_mode: bool) -> Result<(), Error> {
    if let Some(host) = remote::owner(services, &args.task, &args.agent)? {
        return on_host(services, args, &host, json_mode);
    }
    let out = output::tail(services, &args.task, &args.agent, args.lines)?;
    let shown = |line: &str| {
        if args.raw {
            format!("{line}\n")
        } else {
            format!("{}\n", safe(line))
        }
    };
    emit(json_mode, &out, || {
        out.lines.iter().map(|l| shown(l)).collect()
    });
    if !args.follow || json_mode {
        return Ok(());
    }
    let log = out.log_file.as_std_path();
    let mut offset = fs_err::metadata(log).map(|m| m.len()).unwrap_or(0);
    let mut stdout = std::io::stdout().lock();
    let mut buf = Vec::new();
    loop {
        let alive = services.backend.probe(&out.session)? == Liveness::Alive;
        // The agent controls its log: only a regular file is read, a line at a time, bounded.
        if let Ok(mut f) = agent_file::open(log)
            && f.metadata()?.len() > offset
        {
            f.seek(SeekFrom::Start(offset))?;
            let mut reader = BufReader::new(f);
            loop {
                match agent_file::read_line(&mut reader, &mut buf)? {
                    Line::Whole(n) => {
                        offset += n as u64;
                        let line = String::from_utf8_lossy(&buf);
                        stdout.write_all(shown(line.trim_end_matches('\n')).as_bytes())?;
                    }
                    Line::Skipped { bytes, .. } => {
                        offset += bytes;
                        stdout.write_all(b"(a line over the length fleet shows was skipped)\n")?;
                    }
                    Line::End => break,
                }
            }
            stdout.flush()?;
        }
        if !alive {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The logs of an agent on another host, read there.
fn on_host(
    services: &Services,
    args: &LogsArgs,
    host: &deploy_core::HostName,
    json_mode: bool,
) -> Result<(), Error> {
    if args.follow {
        return Err(Error::Refused(format!(
            "agent {} runs on host {host}: `fleet logs --follow` follows only this host's \
             agents; run it there, or `fleet attach`",
            args.agent
        )));
    }
    let command = vec![
        "logs".to_owned(),
        "--task".to_owned(),
        args.task.to_string(),
        "--agent".to_owned(),
        args.agent.to_string(),
        "--lines".to_owned(),
        args.lines.to_string(),
    ];
    let out = remote::call(&services.config, host, command, None, remote::CALL_BOUND)?;
    emit(json_mode, &out, || {
        let lines = out.get("lines").and_then(|l| l.as_array());
        lines
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str())
            .map(|l| {
                if args.raw {
                    format!("{l}\n")
                } else {
                    format!("{}\n", safe(l))
                }
            })
            .collect()
    });
    Ok(())
}
