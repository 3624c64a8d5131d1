//! The verified kill: what the agent started ends, and a survivor is an error.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use deploy_core::{AGENT_ID_ENV, AgentId, KillReport, KilledProcess, SessionName};

use crate::{Error, TmuxBackend};
use procs::{self, Handle};

impl TmuxBackend {
    /// The kill of one session, by exact name.
    pub(crate) fn kill_args(session: &SessionName) -> Vec<String> {
        vec!["kill-session".into(), "-t".into(), format!("={session}")]
    }

    pub(crate) fn kill_session(&self, session: &SessionName) -> Result<bool, Error> {
        Ok(self.query(&Self::kill_args(session))?.is_some())
    }

    pub(crate) fn do_kill(
        &self,
        session: &SessionName,
        agent: &AgentId,
    ) -> Result<KillReport, Error> {
        self.started().remove(session);
        // A gate never opened closes here: its agent ends without having run.
        if let Some((_, path)) = self.gates().remove(session) {
            let _ = fs_err::remove_file(path);
        }
        let pane = self.pane_state(session)?;
        // Fleet's own sessions carry their agent's tag; an adopted one carries none.
        let expected = if self.adopting { "" } else { agent.as_str() };
        if let Some(p) = &pane
            && p.agent_tag != expected
        {
            return Err(Error::NotOurs {
                session: session.clone(),
                tagged: p.agent_tag.clone(),
                agent: agent.clone(),
            });
        }
        let mut exclude: BTreeSet<u32> = BTreeSet::from([std::process::id()]);
        if let Some(p) = &pane {
            exclude.insert(p.server_pid);
        } else if let Ok(Some(pid)) = self.server_pid() {
            exclude.insert(pid);
        }
        let tag = (AGENT_ID_ENV, agent.as_str());
        let root = pane.as_ref().filter(|p| !p.dead).map(|p| p.pane_pid);
        let mut killed: Vec<KilledProcess> = Vec::new();
        let deadline = Instant::now() + self.kill_grace + Duration::from_secs(3);
        let survivors = |left: Vec<procs::Proc>| Error::Survivors {
            agent: agent.clone(),
            pids: left.iter().map(|p| p.pid).collect(),
        };
        // First everything below the wrapper, while it lives: it is a child subreaper, so what
        // the agent started — setsid daemons without their tag included — is in its tree until
        // it dies. Looked for again after each round: one may fork while being ended. An
        // adopted session has no wrapper: its whole tree goes with the session, below.
        if let Some(wrapper) = root.filter(|_| !self.adopting) {
            loop {
                let below: Vec<procs::Proc> =
                    procs::agent_processes(&procs::all(), root, tag, &exclude)
                        .into_iter()
                        .filter(|p| p.pid != wrapper)
                        .collect();
                if below.is_empty() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(survivors(below));
                }
                // Every process found is reported, also one that ends before fleet signals it:
                // once its agent is gone, the wrapper ends what the agent left (see below).
                for p in &below {
                    record_found(&mut killed, p);
                }
                self.end(&below, &mut killed);
            }
        }
        // Then the session (its terminal hangs up: the wrapper ends) and whatever carries the
        // tag anywhere.
        let targets = procs::agent_processes(&procs::all(), root, tag, &exclude);
        // The session existed if its pane did: it may have closed by itself since (its last
        // process ended in the first phase).
        let session_existed = pane.is_some();
        if session_existed {
            self.kill_session(session)?;
        }
        // Every process found is reported; closing the session hangs up its terminal, so one
        // that fleet never had to signal was ended by that hang-up (1).
        for p in &targets {
            record_found(&mut killed, p);
        }
        let mut round: Vec<procs::Proc> = targets.into_iter().filter(procs::alive).collect();
        while !round.is_empty() {
            self.end(&round, &mut killed);
            // What carries the tag now, and what this round signalled that still lives (an
            // adopted session's processes carry no tag: only this tells they are gone).
            let ended = std::mem::take(&mut round);
            round = procs::agent_processes(&procs::all(), None, tag, &exclude);
            for p in ended.into_iter().filter(procs::alive) {
                if !round.iter().any(|r| r.pid == p.pid) {
                    round.push(p);
                }
            }
            if !round.is_empty() && Instant::now() > deadline {
                return Err(survivors(round));
            }
        }
        Ok(KillReport {
            session_existed,
            killed,
        })
    }

    /// Kills many agents: those whose session exists one by one, those whose session is gone
    /// with one scan of `/proc` for all their tags (one round of tmux calls, not one per agent).
    pub(crate) fn do_kill_all(
        &self,
        targets: &[(SessionName, AgentId)],
    ) -> Result<Vec<KillReport>, Error> {
        for (session, _) in targets {
            self.started().remove(session);
        }
        let args = vec![
            "list-sessions".into(),
            "-F".into(),
            "#{session_name}".into(),
        ];
        let names: BTreeSet<String> = self
            .query_server(&args)?
            .map(|out| out.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        let mut reports = vec![KillReport::default(); targets.len()];
        let mut gone: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, (session, agent)) in targets.iter().enumerate() {
            if names.contains(session.as_str()) {
                reports[i] = self.do_kill(session, agent)?;
            } else {
                gone.insert(agent.as_str(), i);
            }
        }
        if gone.is_empty() {
            return Ok(reports);
        }
        let mut exclude: BTreeSet<u32> = BTreeSet::from([std::process::id()]);
        if let Ok(Some(pid)) = self.server_pid() {
            exclude.insert(pid);
        }
        let deadline = Instant::now() + self.kill_grace + Duration::from_secs(3);
        loop {
            let tagged: Vec<(usize, procs::Proc)> = procs::all()
                .into_values()
                .filter(|p| !exclude.contains(&p.pid) && !p.is_gone())
                .filter_map(|p| {
                    let agent = procs::env_value(p.pid, AGENT_ID_ENV)?;
                    gone.get(agent.as_str()).map(|i| (*i, p))
                })
                .collect();
            if tagged.is_empty() {
                return Ok(reports);
            }
            if Instant::now() > deadline {
                let (i, _) = tagged[0];
                return Err(Error::Survivors {
                    agent: targets[i].1.clone(),
                    pids: tagged.iter().map(|(_, p)| p.pid).collect(),
                });
            }
            for (i, p) in &tagged {
                let mut killed = std::mem::take(&mut reports[*i].killed);
                self.end(std::slice::from_ref(p), &mut killed);
                reports[*i].killed = killed;
            }
        }
    }

    /// One round: TERM, the kill grace, then KILL for what is left, and a short wait.
    fn end(&self, targets: &[procs::Proc], killed: &mut Vec<KilledProcess>) {
        for p in targets {
            if let Some(h) = Handle::open(p)
                && h.signal(15)
            {
                record_signal(killed, p, 15);
            }
        }
        wait_gone(targets, self.kill_grace);
        for p in targets.iter().filter(|p| procs::alive(p)) {
            if let Some(h) = Handle::open(p)
                && h.signal(9)
            {
                record_signal(killed, p, 9);
            }
        }
        wait_gone(targets, Duration::from_secs(2));
    }
}

/// Reports `p`, found among the agent's processes, as ended by its session's hang-up or its
/// wrapper (1) unless fleet's own signal to it is already recorded.
fn record_found(killed: &mut Vec<KilledProcess>, p: &procs::Proc) {
    if !killed.iter().any(|k| k.pid == p.pid) {
        record_signal(killed, p, 1);
    }
}

/// Records that `p` was last signalled with `sig`.
fn record_signal(killed: &mut Vec<KilledProcess>, p: &procs::Proc, sig: i32) {
    match killed.iter_mut().find(|k| k.pid == p.pid) {
        Some(k) => k.signal = sig,
        None => killed.push(KilledProcess {
            pid: p.pid,
            name: p.name.clone(),
            signal: sig,
        }),
    }
}

/// Polls until every process in `procs` is gone or `limit` passes.
fn wait_gone(procs: &[procs::Proc], limit: Duration) {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    while procs.iter().any(procs::alive) && start.elapsed() < limit {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
