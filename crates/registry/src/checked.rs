//! What the last repair verified, kept beside the index (`GLOBAL_REGISTRY.json.checked`): the
//! stamp of the index and of every task file (device, inode, size, modification time) when the
//! index was found current against them and every task's counters against its agents. A file
//! is only ever replaced whole — fleet renames a new file over it; the Python server's writes
//! change its size or time — so while every stamp is the same, so is every content, and an idle
//! reconcile verifies again by a `stat` per file instead of reading them.
//!
//! It is a cache: written under the index's lock, never synced, ignored when it does not parse
//! or does not match. Losing it costs one full check.

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::TaskId;
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::cache::{Stamp, stamp_of};

/// What was verified, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Verified {
    /// The index's stamp.
    index: Stamp,
    /// Every task's id and its file's stamp, sorted by id.
    tasks: Vec<(TaskId, Stamp)>,
    /// How many agents the index holds.
    pub(crate) agents: usize,
}

/// The stamps of the index at `index` and of the task files `tasks` (id, path), now; `None` if
/// one cannot be read.
pub(crate) fn stamps(index: &Utf8Path, tasks: &[(TaskId, Utf8PathBuf)]) -> Option<Verified> {
    Some(Verified {
        index: stamp_of(index)?,
        tasks: tasks
            .iter()
            .map(|(id, path)| Some((id.clone(), stamp_of(path)?)))
            .collect::<Option<_>>()?,
        agents: 0,
    })
}

/// Where it is kept for the index at `index`.
pub(crate) fn path_for(index: &Utf8Path) -> Utf8PathBuf {
    index.with_file_name("GLOBAL_REGISTRY.json.checked")
}

impl Verified {
    /// What is kept beside the index at `index`, if it parses.
    pub(crate) fn load(index: &Utf8Path) -> Option<Verified> {
        serde_json::from_slice(&fs_err::read(path_for(index)).ok()?).ok()
    }

    /// Keeps `self`, found with `agents` indexed, beside the index at `index` (under its lock).
    /// A failure only costs the next reconcile a full check: logged, not returned.
    pub(crate) fn save(mut self, index: &Utf8Path, agents: usize) {
        self.agents = agents;
        let saved = serde_json::to_vec(&self)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                atomic::write_unsynced(&path_for(index), &bytes).map_err(|e| e.to_string())
            });
        if let Err(e) = saved {
            tracing::debug!(path = %path_for(index), "cannot keep what was verified: {e}");
        }
    }

    /// Whether `now` (from [`stamps`]) is what was verified.
    pub(crate) fn matches(&self, now: &Verified) -> bool {
        self.index == now.index && self.tasks == now.tasks
    }

    /// Whether `task`'s file, now stamped `stamp`, is one whose counters were verified.
    pub(crate) fn holds(&self, task: &TaskId, stamp: Stamp) -> bool {
        self.tasks
            .binary_search_by(|(id, _)| id.cmp(task))
            .is_ok_and(|i| self.tasks[i].1 == stamp)
    }
}
