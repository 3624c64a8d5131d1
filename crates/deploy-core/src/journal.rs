//! The deployment intent: a record written and fsynced before any resource exists, held under a
//! flock by the deploying process until the deployment is Live or rolled back.
//!
//! SIGKILL runs no destructor; the kernel still releases the flock. So an intent whose lock can
//! be taken belongs to nobody, and [`crate::reconcile::rollback_abandoned`] undoes what it names.
//! No timeouts, no PID guessing.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::MetadataExt;

use camino::{Utf8Path, Utf8PathBuf};
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
/// A record is written to a temp file, locked, fsynced and renamed into place, so it never
/// appears unlocked or half-written; [`FsLease::finish`] deletes it while still holding the lock,
/// and a reconciler that takes a lock checks the file is still the one at the path. Together
/// these mean a reconciler never mistakes a live deployment for an abandoned one.
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
        fs_err::remove_file(&self.path)?;
        let dir = self.path.parent().unwrap_or(Utf8Path::new("."));
        sync_dir(dir)?;
        drop(self.lock);
        Ok(())
    }
}

impl IntentJournal for FsJournal {
    fn begin(&self, record: &IntentRecord) -> Result<Box<dyn IntentLease>, Error> {
        fs_err::create_dir_all(&self.dir)?;
        let path = self.path_of(&record.agent);
        if path.exists() {
            return Err(Error::DuplicateAgent {
                task: record.task.clone(),
                agent: record.agent.clone(),
            });
        }
        let tmp = self.dir.join(format!(".{}.json.tmp", record.agent));
        let file = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let (file, _) = file.into_parts();
        let lock = match Flock::try_acquire(file, &tmp)? {
            Ok(lock) => lock,
            Err(_) => {
                return Err(Error::CorruptIntent {
                    path: tmp,
                    reason: "a new temp file is locked by someone else".into(),
                });
            }
        };
        let json = serde_json::to_vec_pretty(record).map_err(|e| Error::CorruptIntent {
            path: tmp.clone(),
            reason: e.to_string(),
        })?;
        let mut writer = fs_err::File::from_parts(lock.file().try_clone()?, tmp.as_std_path());
        writer.write_all(&json)?;
        writer.sync_all()?;
        fs_err::rename(&tmp, &path)?;
        sync_dir(&self.dir)?;
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
            let is_tmp = name.starts_with('.') && name.ends_with(".json.tmp");
            let is_record = name.ends_with(".json") && !name.starts_with('.');
            if !is_tmp && !is_record {
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
            if !still_at_path(&lock, &path)? {
                continue; // finished (or renamed into place) between listing and locking
            }
            if is_tmp {
                // A writer died between creating its temp file and renaming it: nothing else
                // exists yet for that deployment.
                tracing::info!(%path, "removing stale intent temp file");
                fs_err::remove_file(&path)?;
                continue;
            }
            let text = fs_err::read_to_string(&path)?;
            let record: IntentRecord =
                serde_json::from_str(&text).map_err(|e| Error::CorruptIntent {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            out.push(Box::new(FsLease { record, path, lock }));
        }
        Ok(out)
    }

    fn pending(&self) -> Result<Vec<IntentRecord>, Error> {
        let mut out = Vec::new();
        for name in self
            .names()?
            .into_iter()
            .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        {
            let path = self.dir.join(&name);
            let text = match fs_err::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // just finished
                Err(e) => return Err(e.into()),
            };
            out.push(
                serde_json::from_str(&text).map_err(|e| Error::CorruptIntent {
                    path: path.clone(),
                    reason: e.to_string(),
                })?,
            );
        }
        Ok(out)
    }
}

impl FsJournal {
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

fn still_at_path(lock: &Flock, path: &Utf8Path) -> Result<bool, Error> {
    let held = lock.file().metadata()?;
    match fs_err::metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
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
    fn a_corrupt_intent_is_named() {
        let (_dir, journal) = journal();
        fs_err::create_dir_all(journal.dir()).unwrap();
        fs_err::write(journal.dir().join("x.json"), b"{\"version\":").unwrap();
        let err = journal.take_abandoned().unwrap_err().to_string();
        assert!(
            err.starts_with("corrupt intent ") && err.contains("x.json"),
            "{err}"
        );
    }
}
