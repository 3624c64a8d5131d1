//! Atomic replacement of a file: temp file in the same directory, write, fsync, rename over,
//! fsync the directory. A reader sees the old file or the new one, never a torn one.
//!
//! Writers hold the file's lock, so one temp name per file suffices: a temp file found while
//! holding the lock was left by a dead writer and is swept (or simply overwritten).

use std::io::Write;

use camino::{Utf8Path, Utf8PathBuf};

use crate::Error;

/// The temp file used to replace `path`: `.<name>.tmp` beside it.
pub fn temp_path(path: &Utf8Path) -> Utf8PathBuf {
    let name = path.file_name().unwrap_or("registry");
    path.with_file_name(format!(".{name}.tmp"))
}

/// Replaces `path` with `bytes` atomically and durably. The caller holds `path`'s lock.
pub fn write_atomic(path: &Utf8Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = temp_path(path);
    let mut file = fs_err::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs_err::rename(&tmp, path)?;
    let dir = path.parent().unwrap_or(Utf8Path::new("."));
    deploy_core::journal::sync_dir(dir)?;
    Ok(())
}

/// Removes the temp file of `path` if a dead writer left one. The caller holds `path`'s lock.
pub fn sweep_temp(path: &Utf8Path) -> Result<bool, Error> {
    match fs_err::remove_file(temp_path(path)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}
