//! The one place that calls std's `File` lock methods (clippy `disallowed-methods` enforces it).
//!
//! Locks are `flock(2)` locks: the kernel releases them when their owner dies, SIGKILL included,
//! which is what crash recovery relies on. std opens every file close-on-exec, so no child
//! process (a tmux server, an agent) ever inherits one.

use std::fs::{File, TryLockError};
use std::os::unix::fs::MetadataExt;

use fs_err::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use crate::Error;

/// How long [`Flock::acquire`] waits by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// An exclusive flock, released on drop.
#[derive(Debug)]
pub struct Flock {
    file: File,
    path: Utf8PathBuf,
}

impl Flock {
    /// Opens (creating if needed, 0600) the sidecar lock file at `path` and takes it, waiting
    /// up to `timeout`. fleet never truncates, renames or deletes it; should someone else
    /// replace or delete it while it is waited for, the lock taken is on a file no longer at
    /// the path, which guards nothing: it is dropped and the file now at the path is taken.
    pub fn open(path: &Utf8Path, timeout: Duration) -> Result<Flock, Error> {
        let start = Instant::now();
        loop {
            let file = fs_err::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(crate::private::FILE_MODE)
                .open(path)?;
            let left = timeout.saturating_sub(start.elapsed());
            let lock = Flock::acquire(file.into_parts().0, path, left)?;
            if lock.is_at_path()? {
                return Ok(lock);
            }
            tracing::warn!(%path, "the lock file was replaced while waited for; taking the new one");
        }
    }

    /// Whether the locked file is still the one at its path (same device and inode): a lock on
    /// a file deleted or replaced since guards nothing.
    pub fn is_at_path(&self) -> Result<bool, Error> {
        let held = self.file.metadata()?;
        match fs_err::metadata(&self.path) {
            Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes the lock on `file` if nobody holds it; gives the file back if someone does.
    pub fn try_acquire(file: File, path: &Utf8Path) -> Result<Result<Flock, File>, Error> {
        #[allow(clippy::disallowed_methods)] // this module is the lock shim
        match file.try_lock() {
            Ok(()) => Ok(Ok(Flock {
                file,
                path: path.to_owned(),
            })),
            Err(TryLockError::WouldBlock) => Ok(Err(file)),
            Err(TryLockError::Error(e)) => Err(lock_error(path, e)),
        }
    }

    /// Takes the lock on `file`: tries once, then logs that it waits and polls until `timeout`.
    pub fn acquire(file: File, path: &Utf8Path, timeout: Duration) -> Result<Flock, Error> {
        let mut file = match Flock::try_acquire(file, path)? {
            Ok(lock) => return Ok(lock),
            Err(file) => file,
        };
        tracing::info!(%path, "waiting for lock");
        let start = Instant::now();
        let mut pause = Duration::from_micros(100);
        loop {
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::LockTimeout {
                    path: path.to_owned(),
                    waited,
                });
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(10));
            file = match Flock::try_acquire(file, path)? {
                Ok(lock) => return Ok(lock),
                Err(file) => file,
            };
        }
    }

    /// The locked file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The path it was opened at.
    pub fn path(&self) -> &Utf8Path {
        &self.path
    }
}

impl Drop for Flock {
    fn drop(&mut self) {
        #[allow(clippy::disallowed_methods)] // this module is the lock shim
        if let Err(e) = self.file.unlock() {
            // Closing the file right after releases the lock anyway.
            tracing::warn!(path = %self.path, error = %e, "failed to unlock");
        }
    }
}

fn lock_error(path: &Utf8Path, e: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(
        e.kind(),
        format!("failed to lock {path}: {e}"),
    ))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn second_taker_waits_then_times_out_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("x.lock")).unwrap();
        let held = Flock::open(&path, Duration::from_secs(1)).unwrap();
        let err = Flock::open(&path, Duration::from_millis(30)).unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }));
        assert!(err.to_string().contains("x.lock"), "{err}");
        drop(held);
        Flock::open(&path, Duration::from_millis(30)).unwrap();
    }

    #[test]
    fn a_lock_on_a_file_no_longer_at_its_path_is_retaken() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("x.lock")).unwrap();
        let held = Flock::open(&path, Duration::from_secs(1)).unwrap();
        assert!(held.is_at_path().unwrap());
        fs_err::remove_file(&path).unwrap();
        assert!(!held.is_at_path().unwrap(), "deleted while held");
        // A new taker gets the file now at the path, and holds a real lock on it.
        let again = Flock::open(&path, Duration::from_secs(1)).unwrap();
        assert!(again.is_at_path().unwrap());
        let mode = fs_err::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
