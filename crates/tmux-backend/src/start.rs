//! Starting processes on fleet's server: an agent's session — one `new-session` with its
//! options and tags, the agent gated behind its wrapper — and a detached command outside every
//! agent's tree.

use std::ffi::OsString;

use camino::Utf8PathBuf;
use deploy_core::{AGENT_ID_ENV, SessionInfo, SessionName, SessionSpec};

use crate::cmd::{MAX_COMMAND_BYTES, Reply, escape_arg};
use crate::{Error, TmuxBackend, encode_log_tag, gate, wrapper};

impl TmuxBackend {
    pub(crate) fn do_start(&self, spec: &SessionSpec) -> Result<SessionInfo, Error> {
        let args = self.start_args(spec)?;
        if let Some(dir) = spec.log_file.parent() {
            deploy_core::private::create_dir_all(dir)?;
        }
        let gate_path = gate::path_for(spec.log_file.as_std_path());
        let created = |out: &str| -> Option<SessionInfo> {
            let f: Vec<&str> = out.lines().next()?.split('\t').collect();
            Some(SessionInfo {
                session: spec.session.clone(),
                session_id: (*f.first()?).to_owned(),
                pane_id: (*f.get(1)?).to_owned(),
                pane_pid: f.get(2)?.parse().ok()?,
            })
        };
        let writer = gate::create(&gate_path).map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("cannot create the gate {}: {e}", gate_path.display()),
            ))
        })?;
        let reply = self.tmux(&args);
        if !matches!(reply, Ok(Reply::Ok(_))) {
            // No wrapper will reach it: the name goes, the writer closes below.
            let _ = fs_err::remove_file(&gate_path);
        }
        match reply? {
            Reply::Ok(out) => {
                let info = created(&out).ok_or(Error::Parse {
                    command: "new-session".into(),
                    output: out,
                })?;
                self.gates()
                    .insert(spec.session.clone(), (writer, gate_path));
                if let Some(pane) = procs::stat(info.pane_pid) {
                    self.started().insert(spec.session.clone(), pane);
                }
                Ok(info)
            }
            Reply::Failed {
                code,
                stderr,
                stdout,
            } => {
                // new-session printed its line: the session exists though a later command
                // failed. It is ours (the name is this agent's): remove it, changing nothing.
                if created(&stdout).is_some() {
                    let _ = self.kill_session(&spec.session);
                }
                Err(Self::failed(&args, code, stderr))
            }
            Reply::NoServer | Reply::NotFound(_) => Err(Self::failed(
                &args,
                Some(1),
                "the tmux server went away".into(),
            )),
        }
    }

    /// The one tmux command that starts `spec`'s session: `new-session` with the agent gated
    /// behind its wrapper, then its options and tags, `;`-separated.
    pub(crate) fn start_args(&self, spec: &SessionSpec) -> Result<Vec<String>, Error> {
        let workdir = fs_err::canonicalize(&spec.workdir)
            .ok()
            .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
            .filter(|p| p.is_dir())
            .ok_or_else(|| Error::Workdir {
                path: spec.workdir.clone(),
            })?;
        let name = spec.session.as_str();
        let gate_path = gate::path_for(spec.log_file.as_std_path());
        let wrap = wrapper::WrapArgs {
            log: spec.log_file.as_str().into(),
            stdin: (!spec.prompt_as_argument()).then(|| spec.prompt_file.as_str().into()),
            gate: Some(gate_path.clone().into_os_string()),
            argv: spec
                .resolved_argv()
                .into_iter()
                .map(OsString::from)
                .collect(),
        };
        let mut args: Vec<String> = vec![
            "new-session".into(),
            "-d".into(),
            "-P".into(),
            "-F".into(),
            "#{session_id}\t#{pane_id}\t#{pane_pid}".into(),
            "-s".into(),
            name.into(),
            "-x".into(),
            "200".into(),
            "-y".into(),
            "50".into(),
            "-c".into(),
            // tmux expands formats in -c: `##` is a literal `#`.
            escape_arg(&workdir.as_str().replace('#', "##")),
            "-e".into(),
            format!("{AGENT_ID_ENV}={}", spec.agent),
        ];
        for (k, v) in &spec.env {
            args.push("-e".into());
            args.push(escape_arg(&format!("{k}={v}")));
        }
        args.push("--".into());
        args.extend(self.wrapper.iter().map(|a| escape_arg(a)));
        args.extend(
            wrap.to_args()
                .iter()
                .map(|a| escape_arg(&a.to_string_lossy())),
        );
        let tags = [
            ("@fleet_agent_id", spec.agent.as_str()),
            ("@fleet_task_id", spec.task.as_str()),
            ("@fleet_log", &encode_log_tag(&spec.log_file)),
        ];
        args.extend(
            [
                ";",
                "set-option",
                "-p",
                "-t",
                &format!("={name}:"),
                "remain-on-exit",
                "on",
            ]
            .map(String::from),
        );
        for (key, value) in tags {
            args.extend([
                ";".into(),
                "set-option".into(),
                "-t".into(),
                // set-option takes a pane target: `=name:` is the exact session's window.
                format!("={name}:"),
                key.into(),
                escape_arg(value),
            ]);
        }
        let bytes: usize = args.iter().map(|a| a.len() + 1).sum();
        if bytes > MAX_COMMAND_BYTES {
            return Err(Error::TooLong {
                session: spec.session.clone(),
                bytes,
            });
        }
        Ok(args)
    }

    /// A session of its own on fleet's server, its command run from argv (no shell) as a child
    /// of the tmux server: outside every agent's tree. Untagged, so never taken for an orphan;
    /// it closes when its command ends.
    pub(crate) fn do_run_detached(
        &self,
        label: &SessionName,
        argv: &[String],
    ) -> Result<(), Error> {
        let mut args: Vec<String> = [
            "new-session",
            "-d",
            "-s",
            label.as_str(),
            "-x",
            "80",
            "-y",
            "24",
            "--",
        ]
        .map(String::from)
        .to_vec();
        args.extend(argv.iter().map(|a| escape_arg(a)));
        match self.tmux(&args)? {
            Reply::Ok(_) => Ok(()),
            Reply::Failed { stderr, .. } if stderr.starts_with("duplicate session") => Ok(()),
            Reply::NoServer | Reply::NotFound(_) => Err(Self::failed(
                &args,
                Some(1),
                "the tmux server went away".into(),
            )),
            Reply::Failed { code, stderr, .. } => Err(Self::failed(&args, code, stderr)),
        }
    }
}
