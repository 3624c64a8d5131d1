//! The deployment intent: a record written and fsynced before any resource exists, held under a
//! flock by the deploying process until the deployment is Live or rolled back.
//!
//! SIGKILL runs no destructor; the kernel still releases the flock. So an intent whose lock can
//! be taken belongs to nobody, and [`crate::reconcile::rollback_abandoned`] undoes what it names.
//! No timeouts, no PID guessing.

use std::fmt;
use std::io::Write;
use std::os::fd::AsRawFd;

use camino::{Utf8Path, Utf8PathBuf};
use rustix::fs::{AtFlags, Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::id::{AgentId, SessionName, TaskId};
use crate::layout::Layout;
use crate::lock::Flock;

/// What an intent names: everything a rollback needs, known before anything is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentRecord {
    /// The format version, 1.
    pub version: u32,
    /// The task.
    pub task: TaskId,
    /// The agent being deployed.
    pub agent: AgentId,
    /// The tmux session it will have.
    pub session: SessionName,
    /// The prompt file it will have.
    pub prompt_file: Utf8PathBuf,
    /// The deploying process (informational only; locks decide, not PIDs).
    pub pid: u32,
    /// When the deployment began.
    pub created_at: String,
    /// Where its session is placed ([`SessionBackend::placement`](crate::SessionBackend::placement)):
    /// a reconcile looking elsewhere keeps the intent rather than roll back a session it cannot
    /// see. (Absent in intents of earlier versions: this deployer's own.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
    /// The agent's checkout, named before it is made (absent without `--worktree`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<crate::checkout::CheckoutPlan>,
    /// The batch the agent is deployed with (absent for a deployment alone): its members are
    /// rolled back together, since none of them is confirmed until all are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<crate::id::BatchId>,
}

/// A held intent. Dropping it releases the lock and keeps the record, which makes the
/// deployment abandoned: the next reconcile rolls it back.
pub trait IntentLease: Send + fmt::Debug {
    /// The record.
    fn record(&self) -> &IntentRecord;
    /// Deletes the record, then releases the lock.
    fn finish(self: Box<Self>) -> Result<(), Error>;
}

/// A store of intents.
pub trait IntentJournal: Send + Sync {
    /// Writes `record` durably and returns it held.
    fn begin(&self, record: &IntentRecord) -> Result<Box<dyn IntentLease>, Error>;
    /// Takes every intent whose lock nobody holds, and sweeps temp files of dead writers.
    fn take_abandoned(&self) -> Result<Vec<Box<dyn IntentLease>>, Error>;
    /// Every intent on record, held or not: deployments in flight (and abandoned ones not yet
    /// rolled back).
    fn pending(&self) -> Result<Vec<IntentRecord>, Error>;
}

/// Intents as files `<dir>/<agent_id>.json`, each flocked by its deploying process.
///
/// A record is written into an unnamed file (`O_TMPFILE`), locked (and, when it names a
/// checkout, fsynced) and only then linked at its name, so it never appears unlocked or half-written while its deployer lives;
/// [`FsLease::finish`] deletes it while still holding the lock, and a reconciler that takes a
/// lock checks the file is still the one at the path. Together these mean a reconciler never
/// mistakes a live deployment for an abandoned one. A record that does not parse, or whose ids
/// disagree with its name, is moved to `quarantine/` with a warning and never blocks another.
#[derive(Debug, Clone)]
pub struct FsJournal {
    dir: Utf8PathBuf,
}

impl FsJournal {
    /// The journal at `<root>/.fleet/intents`.
    pub fn new(layout: &Layout) -> Self {
        FsJournal {
            dir: layout.intents_dir(),
        }
    }

    /// The journal directory.
    pub fn dir(&self) -> &Utf8Path {
        &self.dir
    }

    fn path_of(&self, agent: &AgentId) -> Utf8PathBuf {
        self.dir.join(format!("{agent}.json"))
    }
}

/// A held intent file.
#[derive(Debug)]
pub struct FsLease {
    record: IntentRecord,
    path: Utf8PathBuf,
    lock: Flock,
}

impl IntentLease for FsLease {
    fn record(&self) -> &IntentRecord {
        &self.record
    }

    fn finish(self: Box<Self>) -> Result<(), Error> {
        // Not synced: a SIGKILL keeps the page cache, and an intent a machine crash brings back
        // names an agent the crash ended too — reconcile removes it (docs/FAULTS.md).
        fs_err::remove_file(&self.path)?;
        drop(self.lock);
        Ok(())
    }
}

impl IntentJournal for FsJournal {
    fn begin(&self, record: &IntentRecord) -> Result<Box<dyn IntentLease>, Error> {
        crate::private::create_dir_all(&self.dir)?;
        let path = self.path_of(&record.agent);
        let duplicate = || Error::DuplicateAgent {
            task: record.task.clone(),
            agent: record.agent.clone(),
        };
        if path.exists() {
            return Err(duplicate());
        }
        let json = serde_json::to_vec_pretty(record).map_err(|e| Error::CorruptIntent {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        // The record is written into an unnamed file (O_TMPFILE), locked before it has a name,
        // and linked into place complete: no reader ever sees it unlocked, empty or partial
        // while its deployer lives. (A temp name that exists before its lock would look
        // abandoned to a concurrent deployer's cleanup, which would delete it.)
        let dir = fs_err::File::open(&self.dir)?;
        let unnamed = rustix::fs::openat(
            &dir,
            ".",
            OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(crate::private::FILE_MODE),
        )
        .map_err(|e| io_error(&self.dir, "cannot create an unnamed intent file in", e))?;
        let lock = match Flock::try_acquire(std::fs::File::from(unnamed), &path)? {
            Ok(lock) => lock,
            Err(_) => unreachable!("nobody else can reach an unnamed file to lock it"),
        };
        let mut writer = fs_err::File::from_parts(lock.file().try_clone()?, path.as_std_path());
        writer.write_all(&json)?;
        // Synced only when it names a checkout: a SIGKILL keeps the page cache, and after a
        // crash of the machine the session is gone; what may outlive it on disk is the prompt
        // file, which reconcile sweeps when nothing names it, and a worktree, which it can
        // find only through the intent (docs/FAULTS.md, "What each fsync protects").
        let durable = record.checkout.is_some();
        if durable {
            writer.sync_all()?;
        }
        let fd_path = format!("/proc/self/fd/{}", lock.file().as_raw_fd());
        match rustix::fs::linkat(
            rustix::fs::CWD,
            fd_path.as_str(),
            &dir,
            path.file_name().unwrap_or_default(),
            AtFlags::SYMLINK_FOLLOW,
        ) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => return Err(duplicate()),
            Err(e) => return Err(io_error(&path, "cannot link the intent file at", e)),
        }
        if durable {
            dir.sync_all()?;
        }
        Ok(Box::new(FsLease {
            record: record.clone(),
            path,
            lock,
        }))
    }

    fn take_abandoned(&self) -> Result<Vec<Box<dyn IntentLease>>, Error> {
        let mut out: Vec<Box<dyn IntentLease>> = Vec::new();
        for name in self.names()? {
            let path = self.dir.join(&name);
            if is_legacy_temp(&name) {
                self.sweep_legacy_temp(&path)?;
                continue;
            }
            if !is_record(&name) {
                continue;
            }
            let file = match fs_err::File::open(&path) {
                Ok(f) => f.into_parts().0,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let Ok(lock) = Flock::try_acquire(file, &path)? else {
                continue; // its deployer is alive
            };
            if !lock.is_at_path()? {
                continue; // finished between listing and locking
            }
            match self.read_valid(&path, &name) {
                Ok(record) => out.push(Box::new(FsLease { record, path, lock })),
                Err(reason) => self.quarantine(&path, &reason)?,
            }
        }
        Ok(out)
    }

    fn pending(&self) -> Result<Vec<IntentRecord>, Error> {
        let mut out = Vec::new();
        for name in self.names()?.into_iter().filter(|n| is_record(n)) {
            let path = self.dir.join(&name);
            match self.read_valid(&path, &name) {
                Ok(record) => out.push(record),
                // Just finished, or not a record: a bad file is quarantined by
                // `take_abandoned` once its lock can be taken, never a blocker here.
                Err(reason) => tracing::debug!(%path, %reason, "skipping an intent"),
            }
        }
        Ok(out)
    }
}

/// Whether `name` is an intent record's file name (`<agent_id>.json`).
fn is_record(name: &str) -> bool {
    name.ends_with(".json") && !name.starts_with('.')
}

/// Whether `name` is a temp file of the previous scheme (`.<agent>.json.tmp`).
fn is_legacy_temp(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".json.tmp")
}

fn io_error(path: &Utf8Path, doing: &str, e: rustix::io::Errno) -> Error {
    Error::Io(std::io::Error::new(
        std::io::Error::from(e).kind(),
        format!("{doing} {path}: {e}"),
    ))
}

impl FsJournal {
    /// `<dir>/quarantine`: where unreadable or mismatched intents are moved.
    pub fn quarantine_dir(&self) -> Utf8PathBuf {
        self.dir.join("quarantine")
    }

    /// Reads and checks a record: it parses, names the agent its file is named after, and
    /// names the session that agent's deployment would have. Paths in it are never used.
    fn read_valid(&self, path: &Utf8Path, name: &str) -> Result<IntentRecord, String> {
        let text = match fs_err::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return Err(e.to_string()),
        };
        let record: IntentRecord = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let stem = name.strip_suffix(".json").unwrap_or(name);
        if record.agent.as_str() != stem {
            return Err(format!(
                "it names agent {} but is the file of {stem}",
                record.agent
            ));
        }
        match SessionName::for_agent(&record.agent) {
            Ok(session) if session == record.session => Ok(record),
            _ => Err(format!(
                "its session {} is not the one agent {} would have",
                record.session, record.agent
            )),
        }
    }

    /// Moves a bad intent aside, with a warning: one bad file never blocks another intent.
    fn quarantine(&self, path: &Utf8Path, reason: &str) -> Result<(), Error> {
        let dir = self.quarantine_dir();
        crate::private::create_dir_all(&dir)?;
        let name = path.file_name().unwrap_or("intent");
        let to = dir.join(format!(
            "{name}.{}",
            crate::timestamp().replace([':', '.'], "-")
        ));
        tracing::warn!(%path, %reason, moved_to = %to, "moving an unreadable intent aside");
        fs_err::rename(path, &to)?;
        sync_dir(&self.dir)
    }

    /// A temp file of the previous scheme, left by a writer that died before renaming it:
    /// nothing else exists for that deployment. (Intents are no longer written through named
    /// temp files.)
    fn sweep_legacy_temp(&self, path: &Utf8Path) -> Result<(), Error> {
        let file = match fs_err::File::open(path) {
            Ok(f) => f.into_parts().0,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if let Ok(_lock) = Flock::try_acquire(file, path)? {
            tracing::info!(%path, "removing a stale intent temp file");
            match fs_err::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Every file name in the journal directory, sorted; none if it does not exist.
    fn names(&self) -> Result<Vec<String>, Error> {
        let entries = match fs_err::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut names = Vec::new();
        for entry in entries {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}

/// fsyncs a directory, making a rename or unlink in it durable.
pub fn sync_dir(dir: &Utf8Path) -> Result<(), Error> {
    fs_err::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(agent: &str) -> IntentRecord {
        IntentRecord {
            version: 1,
            task: TaskId::parse("T").unwrap(),
            agent: AgentId::parse(agent).unwrap(),
            session: SessionName::parse(&format!("agent_{agent}")).unwrap(),
            prompt_file: "/p".into(),
            pid: std::process::id(),
            created_at: "now".into(),
            placement: None,
            checkout: None,
            batch: None,
        }
    }

    fn journal() -> (tempfile::TempDir, FsJournal) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap());
        (dir, FsJournal::new(&layout))
    }

    #[test]
    fn a_held_intent_is_not_abandoned_and_a_dropped_one_is() {
        let (_dir, journal) = journal();
        let held = journal.begin(&record("a")).unwrap();
        let dropped = journal.begin(&record("b")).unwrap();
        drop(dropped);
        let abandoned = journal.take_abandoned().unwrap();
        let names: Vec<&str> = abandoned
            .iter()
            .map(|l| l.record().agent.as_str())
            .collect();
        assert_eq!(names, ["b"]);
        // While a reconciler holds "b", another one does not take it again.
        assert!(journal.take_abandoned().unwrap().is_empty());
        for lease in abandoned {
            lease.finish().unwrap();
        }
        held.finish().unwrap();
        assert_eq!(fs_err::read_dir(journal.dir()).unwrap().count(), 0);
    }

    #[test]
    fn stale_temp_files_are_swept_but_locked_ones_are_not() {
        let (_dir, journal) = journal();
        fs_err::create_dir_all(journal.dir()).unwrap();
        let stale = journal.dir().join(".dead.json.tmp");
        fs_err::write(&stale, b"{").unwrap();
        let live = journal.dir().join(".live.json.tmp");
        fs_err::write(&live, b"{").unwrap();
        let f = fs_err::File::open(&live).unwrap().into_parts().0;
        let _held = Flock::try_acquire(f, &live).unwrap().unwrap();
        assert!(journal.take_abandoned().unwrap().is_empty());
        assert!(!stale.exists());
        assert!(live.exists());
    }

    #[test]
    fn unreadable_or_mismatched_intents_are_quarantined_and_block_nothing() {
        let (_dir, journal) = journal();
        fs_err::create_dir_all(journal.dir()).unwrap();
        fs_err::write(journal.dir().join("x.json"), b"{\"version\":").unwrap();
        fs_err::write(journal.dir().join("empty.json"), b"").unwrap();
        let mut forged = record("victim");
        forged.session = SessionName::parse("agent_other").unwrap();
        fs_err::write(
            journal.dir().join("victim.json"),
            serde_json::to_vec(&forged).unwrap(),
        )
        .unwrap();
        fs_err::write(
            journal.dir().join("renamed.json"),
            serde_json::to_vec(&record("a")).unwrap(),
        )
        .unwrap();
        drop(journal.begin(&record("good")).unwrap()); // abandoned, and well-formed
        assert_eq!(journal.pending().unwrap(), vec![record("good")]);
        let taken = journal.take_abandoned().unwrap();
        let names: Vec<&str> = taken.iter().map(|l| l.record().agent.as_str()).collect();
        assert_eq!(names, ["good"]);
        let mut moved: Vec<String> = fs_err::read_dir(journal.quarantine_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .map(|n| n.split(".json").next().unwrap().to_owned())
            .collect();
        moved.sort();
        assert_eq!(moved, ["empty", "renamed", "victim", "x"]);
    }

    #[test]
    fn a_record_is_never_visible_unlocked_or_partial() {
        let (_dir, journal) = journal();
        let held = journal.begin(&record("a")).unwrap();
        // Everything in the directory is the complete, locked record: no temp file exists.
        let names: Vec<String> = fs_err::read_dir(journal.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["a.json"]);
        let text = fs_err::read_to_string(journal.dir().join("a.json")).unwrap();
        assert_eq!(
            serde_json::from_str::<IntentRecord>(&text).unwrap(),
            record("a")
        );
        assert!(journal.take_abandoned().unwrap().is_empty());
        let dup = journal.begin(&record("a")).unwrap_err();
        assert!(matches!(dup, Error::DuplicateAgent { .. }), "{dup}");
        held.finish().unwrap();
    }
}
