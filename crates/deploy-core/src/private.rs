//! Files and directories fleet creates are private: registries hold prompt previews, prompt
//! files hold prompts. New directories are 0700 and new files 0600; a file that is replaced
//! keeps the mode it had.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

use camino::Utf8Path;

/// Mode of a new directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of a new file.
pub const FILE_MODE: u32 = 0o600;

/// `mkdir -p` with [`DIR_MODE`] for every directory it creates (existing ones keep theirs).
/// The directory itself must be one, not a symlink to one: an agent that replaces fleet's
/// `logs/` with a link elsewhere never makes fleet write there.
pub fn create_dir_all(path: &Utf8Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("failed to create directory `{path}`: {e}"),
            )
        })?;
    if std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{path}` is a symlink: fleet writes only into directories of its own"),
        ));
    }
    Ok(())
}

/// Writes `bytes` to a new file at `path` with [`FILE_MODE`]; a file (or a planted symlink)
/// already there is removed first, never written through.
pub fn write_new(path: &Utf8Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("failed to create `{path}`: {e}")))?;
    file.write_all(bytes)
        .map_err(|e| std::io::Error::new(e.kind(), format!("failed to write `{path}`: {e}")))
}

/// Replaces `path` with `bytes` atomically: a new file beside it (the mode `path` has, or
/// [`FILE_MODE`]), synced, renamed over it. A reader sees the old bytes or the new, never a
/// torn file. The caller holds `path`'s lock.
pub fn replace(path: &Utf8Path, bytes: &[u8]) -> std::io::Result<()> {
    let mode = mode_for(path);
    let name = path.file_name().unwrap_or("file");
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    write_new(&temp, bytes)?;
    let done = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))
        .and_then(|()| std::fs::File::open(&temp)?.sync_all())
        .and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&temp);
        return Err(std::io::Error::new(
            e.kind(),
            format!("failed to replace `{path}`: {e}"),
        ));
    }
    Ok(())
}

/// The mode a file written at `path` gets: the existing file's, or [`FILE_MODE`].
pub fn mode_for(path: &Utf8Path) -> u32 {
    std::fs::metadata(path).map_or(FILE_MODE, |m| m.permissions().mode() & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_directories_are_0700_and_existing_modes_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = camino::Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        let deep = root.join("a/b/c");
        create_dir_all(&deep).unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            let mode = std::fs::metadata(root.join(d))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o700, "{d}");
        }
        let file = root.join("f");
        assert_eq!(mode_for(&file), 0o600);
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(mode_for(&file), 0o640);
    }
}
