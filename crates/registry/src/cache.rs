//! Parsed task registries, kept by the identity of the file they were parsed from. A registry
//! file is only ever replaced whole (a new file renamed over it), so its device, inode, size and
//! modification time — read from the very descriptor the bytes are read through — name one
//! content: a file seen again unchanged is not parsed again. One `reconcile` reads each task's
//! roster while tmux lists its sessions, and again after, from here
//! ([`Registry::prefetch`](deploy_core::Registry::prefetch)); a long-lived `fleet mcp` reads a
//! task only when it changed. (`checked` keeps the same stamps across processes.)

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, PoisonError};

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::{TaskRoster, TaskSnapshot};
use serde::de::DeserializeOwned;

use crate::format::TaskFile;
use crate::repair::TaskBrief;
use crate::{Error, parse};

/// What identifies one content of a file: device, inode, size, modification time (seconds,
/// nanoseconds).
pub(crate) type Stamp = (u64, u64, u64, i64, i64);

fn stamp(m: &std::fs::Metadata) -> Stamp {
    (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec())
}

/// The stamp of the file at `path` now, if it can be read.
pub(crate) fn stamp_of(path: &Utf8Path) -> Option<Stamp> {
    std::fs::metadata(path).ok().map(|m| stamp(&m))
}

/// Each file's last parse as a `T`, with the stamp of the content it was parsed from.
type Entries<T> = Arc<Mutex<HashMap<Utf8PathBuf, (Stamp, Arc<T>)>>>;

/// The cache: one parse per task file and kind of read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parsed {
    files: Entries<TaskFile>,
    briefs: Entries<TaskBrief>,
    rosters: Entries<TaskRoster>,
}

/// A file opened, its stamp, and its bytes when `read` says so.
fn open(path: &Utf8Path) -> Result<Option<(fs_err::File, Stamp)>, Error> {
    let file = match fs_err::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let m = file.metadata()?;
    Ok(Some((file, stamp(&m))))
}

fn read_all(mut file: fs_err::File, stamp: &Stamp) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::with_capacity(usize::try_from(stamp.2).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `path` parsed as a `T`, from `entries` when its content is the one parsed last.
fn cached<T: DeserializeOwned>(
    entries: &Entries<T>,
    path: &Utf8Path,
) -> Result<Option<Arc<T>>, Error> {
    let Some((file, stamp)) = open(path)? else {
        return Ok(None);
    };
    let mut cache = entries.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((seen, parsed)) = cache.get(path)
        && *seen == stamp
    {
        return Ok(Some(Arc::clone(parsed)));
    }
    let parsed = Arc::new(parse::<T>(&read_all(file, &stamp)?, path)?);
    cache.insert(path.to_owned(), (stamp, Arc::clone(&parsed)));
    Ok(Some(parsed))
}

impl Parsed {
    /// The task registry at `path` as a snapshot: copied from the cache when the file is the one
    /// parsed last, else parsed into it directly, without a copy (and not kept: a single look,
    /// as the CLI's, gains nothing from keeping it). `None` if there is no such file.
    pub(crate) fn snapshot(&self, path: &Utf8Path) -> Result<Option<TaskSnapshot>, Error> {
        let Some((file, stamp)) = open(path)? else {
            return Ok(None);
        };
        {
            let cache = self.files.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((seen, parsed)) = cache.get(path)
                && *seen == stamp
            {
                return Ok(Some(parsed.snapshot()));
            }
        }
        let bytes = read_all(file, &stamp)?;
        Ok(Some(parse::<TaskFile>(&bytes, path)?.into_snapshot()))
    }

    /// The task registry at `path` as a roster: made from the parsed file when the cache holds
    /// this content, else read lightly ([`crate::roster`]) and kept, with the brief read with it.
    /// `None` if there is no such file.
    pub(crate) fn roster(&self, path: &Utf8Path) -> Result<Option<Arc<TaskRoster>>, Error> {
        let Some((file, stamp)) = open(path)? else {
            return Ok(None);
        };
        {
            let cache = self.files.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((seen, parsed)) = cache.get(path)
                && *seen == stamp
            {
                return Ok(Some(Arc::new(parsed.roster())));
            }
        }
        let mut rosters = self.rosters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, roster)) = rosters.get(path)
            && *seen == stamp
        {
            return Ok(Some(Arc::clone(roster)));
        }
        let (roster, brief) =
            crate::roster::parse(&read_all(file, &stamp)?).map_err(|e| crate::corrupt(path, &e))?;
        let roster = Arc::new(roster);
        rosters.insert(path.to_owned(), (stamp, Arc::clone(&roster)));
        self.briefs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_owned(), (stamp, Arc::new(brief)));
        Ok(Some(roster))
    }

    /// The task registry at `path`, parsed (`None` if there is no such file).
    pub(crate) fn task(&self, path: &Utf8Path) -> Result<Option<Arc<TaskFile>>, Error> {
        cached(&self.files, path)
    }

    /// The brief of the task registry at `path` (`None` if there is no such file).
    pub(crate) fn brief(&self, path: &Utf8Path) -> Result<Option<Arc<TaskBrief>>, Error> {
        cached(&self.briefs, path)
    }
}
