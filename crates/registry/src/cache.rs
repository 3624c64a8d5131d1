//! Parsed task registries, kept by the identity of the file they were parsed from. A registry
//! file is only ever replaced whole (a new file renamed over it), so its device, inode, size and
//! modification time — read from the very descriptor the bytes are read through — name one
//! content: a file seen again unchanged is not parsed again. One `reconcile` reads each task
//! once instead of three times; a long-lived `fleet mcp` reads a task only when it changed.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, PoisonError};

use camino::{Utf8Path, Utf8PathBuf};

use crate::format::TaskFile;
use crate::{Error, parse};

/// What identifies one content of a file.
type Stamp = (u64, u64, u64, i64, i64);

/// Each file's last parse, with the stamp of the content it was parsed from.
type Entries = HashMap<Utf8PathBuf, (Stamp, Arc<TaskFile>)>;

/// The cache: one parse per task file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parsed(Arc<Mutex<Entries>>);

impl Parsed {
    /// The task registry at `path`, parsed (`None` if there is no such file).
    pub(crate) fn task(&self, path: &Utf8Path) -> Result<Option<Arc<TaskFile>>, Error> {
        let mut file = match fs_err::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let m = file.metadata()?;
        let stamp = (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec());
        let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, parsed)) = cache.get(path)
            && *seen == stamp
        {
            return Ok(Some(Arc::clone(parsed)));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(m.size()).unwrap_or(0));
        file.read_to_end(&mut bytes)?;
        let parsed = Arc::new(parse::<TaskFile>(&bytes, path)?);
        cache.insert(path.to_owned(), (stamp, Arc::clone(&parsed)));
        Ok(Some(parsed))
    }
}
