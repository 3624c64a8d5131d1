//! `fleet logs`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use deploy_core::Liveness;

use crate::cli::LogsArgs;
use crate::config::Services;
use crate::error::Error;
use crate::ops::output;
use crate::output::{emit, safe};

pub(crate) fn run(services: &Services, args: &LogsArgs, json_mode: bool) -> Result<(), Error> {
    let out = output::tail(services, &args.task, &args.agent, args.lines)?;
    emit(json_mode, &out, || {
        out.lines.iter().map(|l| format!("{}\n", safe(l))).collect()
    });
    if !args.follow || json_mode {
        return Ok(());
    }
    let log = &out.log_file;
    let mut offset = fs_err::metadata(log).map(|m| m.len()).unwrap_or(0);
    let mut stdout = std::io::stdout().lock();
    loop {
        let alive = services.backend.probe(&out.session)? == Liveness::Alive;
        if let Ok(mut f) = fs_err::File::open(log) {
            let len = f.metadata()?.len();
            if len > offset {
                f.seek(SeekFrom::Start(offset))?;
                let mut buf = Vec::new();
                f.read_to_end(&mut buf)?;
                offset += buf.len() as u64;
                stdout.write_all(&buf)?;
                stdout.flush()?;
                continue;
            }
        }
        if !alive {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
