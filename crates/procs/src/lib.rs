//! Processes found through `/proc` (a tree, an environment tag), identified by PID *and* start
//! time, signalled through a pidfd so a reused PID is never hit. Linux only.
//!
//! tmux-backend finds an agent's processes with it; git-checkout, the git commands a killed
//! deployer left running.

#![warn(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;

use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

/// A process as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// Its PID.
    pub pid: u32,
    /// Its parent's PID.
    pub ppid: u32,
    /// Its state letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// When it started, in clock ticks since boot: with the PID, its identity.
    pub start_time: u64,
    /// Its command name.
    pub name: String,
}

impl Proc {
    /// Whether it has exited (a zombie, not yet waited for, counts as exited).
    pub fn is_gone(&self) -> bool {
        // A zombie has exited; only its parent's wait is missing.
        matches!(self.state, 'Z' | 'X')
    }
}

/// Parses `/proc/<pid>/stat`; `None` if the process is gone.
pub fn stat(pid: u32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may itself contain spaces and parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = text.get(close + 2..)?.split(' ').collect();
    // After the name: state(3) ppid(4) ... starttime(22); rest[0] is field 3.
    Some(Proc {
        pid,
        ppid: rest.get(1)?.parse().ok()?,
        state: rest.first()?.chars().next()?,
        start_time: rest.get(19)?.parse().ok()?,
        name,
    })
}

/// Every process visible in `/proc`.
pub fn all() -> BTreeMap<u32, Proc> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        if let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
            && let Some(p) = stat(pid)
        {
            out.insert(pid, p);
        }
    }
    out
}

/// The value of `name` in the environment of `pid`, if it has it.
pub fn env_value(pid: u32, name: &str) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{name}=");
    env.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Whether the environment of `pid` has `name=value`.
pub fn has_env(pid: u32, name: &str, value: &str) -> bool {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let wanted = format!("{name}={value}");
    env.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes())
}

/// The processes of an agent: descendants of `root` (if given) and every process tagged
/// `name=value`, minus `exclude`.
pub fn agent_processes(
    procs: &BTreeMap<u32, Proc>,
    root: Option<u32>,
    tag: (&str, &str),
    exclude: &BTreeSet<u32>,
) -> Vec<Proc> {
    let mut found: BTreeSet<u32> = BTreeSet::new();
    if let Some(root) = root
        && procs.contains_key(&root)
    {
        found.insert(root);
        let mut grew = true;
        while grew {
            grew = false;
            for p in procs.values() {
                if found.contains(&p.ppid) && found.insert(p.pid) {
                    grew = true;
                }
            }
        }
    }
    for p in procs.values() {
        if !found.contains(&p.pid) && has_env(p.pid, tag.0, tag.1) {
            found.insert(p.pid);
        }
    }
    found
        .into_iter()
        .filter(|pid| !exclude.contains(pid))
        .filter_map(|pid| procs.get(&pid).cloned())
        .filter(|p| !p.is_gone())
        .collect()
}

/// A handle on one exact process: a pidfd opened, then the start time checked, so the handle
/// cannot refer to a later process that reused the PID.
#[derive(Debug)]
pub struct Handle {
    fd: OwnedFd,
}

impl Handle {
    /// Opens a handle on `p`, if `p` (same PID and start time) still runs.
    pub fn open(p: &Proc) -> Option<Handle> {
        let pid = Pid::from_raw(i32::try_from(p.pid).ok()?)?;
        let fd = pidfd_open(pid, PidfdFlags::empty()).ok()?;
        // The pidfd pins whatever process has this PID now; check it is the one we saw.
        let now = stat(p.pid)?;
        (now.start_time == p.start_time && !now.is_gone()).then_some(Handle { fd })
    }

    /// Sends signal `sig`; whether it was delivered.
    pub fn signal(&self, sig: i32) -> bool {
        Signal::from_named_raw(sig).is_some_and(|s| pidfd_send_signal(&self.fd, s).is_ok())
    }
}

/// Whether the process `p` (same PID and start time) still runs.
pub fn alive(p: &Proc) -> bool {
    stat(p.pid).is_some_and(|now| now.start_time == p.start_time && !now.is_gone())
}

/// How long a leftover child gets between TERM and KILL.
const LEFTOVER_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Ends every child of this process — for a child subreaper, whatever its descendants left
/// behind — with TERM, then KILL half a second later, reaping them all. Loops until none
/// is left, since one may fork while it is being ended.
pub fn end_children() {
    use rustix::process::{WaitOptions, waitpid};
    let me = std::process::id();
    let children = || -> Vec<Proc> {
        all()
            .into_values()
            .filter(|p| p.ppid == me && !p.is_gone())
            .collect()
    };
    let reap = || while let Ok(Some(_)) = waitpid(None, WaitOptions::NOHANG) {};
    for round in 0..10 {
        reap();
        let left = children();
        if left.is_empty() {
            return;
        }
        let signal = if round == 0 { 15 } else { 9 };
        for p in &left {
            if let Some(h) = Handle::open(p) {
                h.signal(signal);
            }
        }
        let deadline = std::time::Instant::now() + LEFTOVER_GRACE;
        while std::time::Instant::now() < deadline && !children().is_empty() {
            reap();
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    reap();
}

/// Raises this process's soft limit of open files to its hard limit, once: a process started
/// under `ulimit -Sn 8` could not open its registry, and a tmux server started from it would
/// keep the low limit — and fail its agents — for as long as it runs.
pub fn raise_open_files() {
    static RAISED: std::sync::Once = std::sync::Once::new();
    RAISED.call_once(|| {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            let raised = Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                tracing::debug!("cannot raise the open-files limit: {e}");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_stat() {
        let me = stat(std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(me.start_time > 0);
        assert!(alive(&me));
        let other = Proc {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert!(
            !alive(&other),
            "a different start time is a different process"
        );
        assert!(Handle::open(&other).is_none());
    }

    #[test]
    fn finds_tree_and_tag() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env("FLEET_TEST_TAG", "x1")
            .spawn()
            .unwrap();
        // Until its exec has mapped the new environment, /proc shows the one it forked with
        // (ours), or none — even once exec has named it `sleep`: wait for the tag itself,
        // bounded so a broken spawn fails instead of hanging.
        let tag_seen = (0..6000).any(|_| {
            let seen = has_env(child.id(), "FLEET_TEST_TAG", "x1");
            if !seen {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            seen
        });
        assert!(tag_seen, "the child never showed its tag");
        let procs = all();
        let me = std::process::id();
        let tree = agent_processes(&procs, Some(me), ("NONE", "none"), &BTreeSet::from([me]));
        assert!(tree.iter().any(|p| p.pid == child.id()), "descendant found");
        let tagged = agent_processes(&procs, None, ("FLEET_TEST_TAG", "x1"), &BTreeSet::new());
        assert_eq!(
            tagged.iter().map(|p| p.pid).collect::<Vec<_>>(),
            [child.id()]
        );
        let h = Handle::open(&tagged[0]).unwrap();
        assert!(h.signal(15));
        child.wait().unwrap();
        assert!(!alive(&tagged[0]));
    }
}
