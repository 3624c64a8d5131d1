//! In-memory prompt store and intent journal.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::{AgentId, Error, IntentJournal, IntentLease, IntentRecord, PromptStore};

use crate::lock;

/// Prompt files in a map, path to content.
#[derive(Debug, Default)]
pub struct FakePromptStore {
    files: Mutex<BTreeMap<Utf8PathBuf, String>>,
}

impl FakePromptStore {
    /// No files.
    pub fn new() -> Self {
        FakePromptStore::default()
    }

    /// Every file and its content.
    pub fn files(&self) -> BTreeMap<Utf8PathBuf, String> {
        lock(&self.files).clone()
    }

    /// Whether there are no files.
    pub fn is_empty(&self) -> bool {
        lock(&self.files).is_empty()
    }
}

impl PromptStore for FakePromptStore {
    fn write(&self, path: &Utf8Path, prompt: &str) -> Result<(), Error> {
        let mut files = lock(&self.files);
        if files.contains_key(path) {
            return Err(Error::Store(format!("prompt file {path} exists").into()));
        }
        files.insert(path.to_owned(), prompt.to_owned());
        Ok(())
    }

    fn remove(&self, path: &Utf8Path) -> Result<bool, Error> {
        Ok(lock(&self.files).remove(path).is_some())
    }

    fn found(&self, dir: &Utf8Path) -> Result<Vec<Utf8PathBuf>, Error> {
        Ok(lock(&self.files)
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect())
    }
}

#[derive(Debug)]
struct Entry {
    record: IntentRecord,
    held: bool,
}

type Entries = Arc<Mutex<BTreeMap<AgentId, Entry>>>;

/// Intents in a map. A lease "holds the lock" until it is finished or dropped, like a flock
/// that the kernel releases when its owner dies.
#[derive(Debug, Default)]
pub struct FakeJournal {
    entries: Entries,
}

impl FakeJournal {
    /// No intents.
    pub fn new() -> Self {
        FakeJournal::default()
    }

    /// Whether there are no intents.
    pub fn is_empty(&self) -> bool {
        lock(&self.entries).is_empty()
    }

    /// The deploying process died (SIGKILL): the kernel releases every lock it held; the
    /// records stay. Pair it with `std::mem::forget` of the deployments in flight, which runs no
    /// destructor, as SIGKILL does not.
    pub fn crash(&self) {
        for e in lock(&self.entries).values_mut() {
            e.held = false;
        }
    }

    /// Every intent, with whether its lock is held.
    pub fn records(&self) -> Vec<(IntentRecord, bool)> {
        lock(&self.entries)
            .values()
            .map(|e| (e.record.clone(), e.held))
            .collect()
    }
}

#[derive(Debug)]
struct FakeLease {
    record: IntentRecord,
    entries: Entries,
    finished: bool,
}

impl IntentLease for FakeLease {
    fn record(&self) -> &IntentRecord {
        &self.record
    }

    fn finish(mut self: Box<Self>) -> Result<(), Error> {
        lock(&self.entries).remove(&self.record.agent);
        self.finished = true;
        Ok(())
    }
}

impl Drop for FakeLease {
    fn drop(&mut self) {
        if !self.finished
            && let Some(e) = lock(&self.entries).get_mut(&self.record.agent)
        {
            e.held = false;
        }
    }
}

impl IntentJournal for FakeJournal {
    fn begin(&self, record: &IntentRecord) -> Result<Box<dyn IntentLease>, Error> {
        let mut entries = lock(&self.entries);
        if entries.contains_key(&record.agent) {
            return Err(Error::DuplicateAgent {
                task: record.task.clone(),
                agent: record.agent.clone(),
            });
        }
        entries.insert(
            record.agent.clone(),
            Entry {
                record: record.clone(),
                held: true,
            },
        );
        Ok(Box::new(FakeLease {
            record: record.clone(),
            entries: Arc::clone(&self.entries),
            finished: false,
        }))
    }

    fn pending(&self) -> Result<Vec<IntentRecord>, Error> {
        Ok(lock(&self.entries)
            .values()
            .map(|e| e.record.clone())
            .collect())
    }

    fn take_abandoned(&self) -> Result<Vec<Box<dyn IntentLease>>, Error> {
        let mut entries = lock(&self.entries);
        let mut out: Vec<Box<dyn IntentLease>> = Vec::new();
        for e in entries.values_mut().filter(|e| !e.held) {
            e.held = true;
            out.push(Box::new(FakeLease {
                record: e.record.clone(),
                entries: Arc::clone(&self.entries),
                finished: false,
            }));
        }
        Ok(out)
    }
}
