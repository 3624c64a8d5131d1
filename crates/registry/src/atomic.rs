//! Atomic replacement of a file: a temp file in the same directory, written, fsynced, renamed
//! over. A reader sees the old file or the new one, never a torn one — after a crash of the
//! machine too: the data is on disk before the rename. The directory is not synced: a machine
//! crash may then bring the old version back (the last change lost, never the registry), and
//! it ends every agent anyway (docs/FAULTS.md, "What each fsync protects").
//!
//! Each write has a temp name of its own (`.<name>.<pid>-<n>.tmp`), so two writers that both
//! believe they hold the lock — someone deleted the lock file under one of them — can never
//! rename each other's half-written file. Writers hold the file's lock, so a temp file found
//! while holding it was left by a dead writer and is swept.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use camino::{Utf8Path, Utf8PathBuf};
use fs_err::os::unix::fs::OpenOptionsExt;

use crate::Error;

/// The temp name a writer of an earlier version used for `path` (`.<name>.tmp`); it is swept
/// like the others.
pub fn temp_path(path: &Utf8Path) -> Utf8PathBuf {
    let name = path.file_name().unwrap_or("registry");
    path.with_file_name(format!(".{name}.tmp"))
}

/// A fresh temp name for a write of `path`.
fn unique_temp(path: &Utf8Path) -> Utf8PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().unwrap_or("registry");
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

/// A new version of a file, written and fsynced beside it, not yet in place. Dropping it
/// removes the temp file.
#[derive(Debug)]
pub struct Staged {
    tmp: Utf8PathBuf,
    path: Utf8PathBuf,
    committed: bool,
}

/// Writes `bytes` into a temp file beside `path` and fsyncs it. Mode: the file's own when it
/// exists, else private (0600), whatever the umask.
pub fn stage(path: &Utf8Path, bytes: &[u8]) -> Result<Staged, Error> {
    let tmp = unique_temp(path);
    let mode = deploy_core::private::mode_for(path);
    let mut file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    let staged = Staged {
        tmp,
        path: path.to_owned(),
        committed: false,
    };
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(staged)
}

impl Staged {
    /// Renames the new version into place.
    pub fn commit(mut self) -> Result<(), Error> {
        fs_err::rename(&self.tmp, &self.path)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Replaces `path` with `bytes` atomically (the data synced before the rename). The caller
/// holds `path`'s lock.
pub fn write_atomic(path: &Utf8Path, bytes: &[u8]) -> Result<(), Error> {
    stage(path, bytes)?.commit()
}

/// Replaces `path` with `bytes` atomically, without syncing: for what is only a cache (a machine
/// crash may leave it empty or torn; its reader ignores it then). The caller holds `path`'s lock.
pub fn write_unsynced(path: &Utf8Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = unique_temp(path);
    let staged = Staged {
        tmp,
        path: path.to_owned(),
        committed: false,
    };
    let mut file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staged.tmp)?;
    file.write_all(bytes)?;
    staged.commit()
}

/// The temp files of `path` that dead writers left (call it holding `path`'s lock).
pub fn stale_temps(path: &Utf8Path) -> Result<Vec<Utf8PathBuf>, Error> {
    let name = path.file_name().unwrap_or("registry");
    let prefix = format!(".{name}.");
    let dir = path.parent().unwrap_or(Utf8Path::new("."));
    let entries = match fs_err::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(n) = entry.file_name().to_str()
            && n.starts_with(&prefix)
            && n.ends_with(".tmp")
        {
            out.push(dir.join(n));
        }
    }
    Ok(out)
}

/// Removes the temp files dead writers left beside `path`; returns how many. The caller holds
/// `path`'s lock.
pub fn sweep_temp(path: &Utf8Path) -> Result<usize, Error> {
    let mut swept = 0;
    for tmp in stale_temps(path)? {
        match fs_err::remove_file(&tmp) {
            Ok(()) => swept += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(swept)
}
