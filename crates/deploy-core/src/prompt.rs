//! Prompt files: the prompt travels to the agent in a file, never on a command line.

use fs_err::os::unix::fs::OpenOptionsExt;
use std::io::Write;

use camino::{Utf8Path, Utf8PathBuf};

use crate::Error;

/// A store of prompt files.
pub trait PromptStore: Send + Sync {
    /// Creates the prompt file at `path`, never overwriting one. On `Err` no file was left.
    fn write(&self, path: &Utf8Path, prompt: &str) -> Result<(), Error>;
    /// Removes a prompt file; `Ok(false)` if it was already gone.
    fn remove(&self, path: &Utf8Path) -> Result<bool, Error>;
    /// Every prompt file in `dir` (a task's directory; none if it does not exist), for
    /// reconcile to find those nothing names.
    fn found(&self, dir: &Utf8Path) -> Result<Vec<Utf8PathBuf>, Error>;
}

/// Prompt files on disk (at [`Layout::tracked_files`]' `prompt_file`), mode 0600, created with
/// `create_new`.
///
/// [`Layout::tracked_files`]: crate::Layout::tracked_files
#[derive(Debug, Clone, Copy, Default)]
pub struct FsPromptStore;

impl PromptStore for FsPromptStore {
    fn write(&self, path: &Utf8Path, prompt: &str) -> Result<(), Error> {
        if let Some(dir) = path.parent() {
            crate::private::create_dir_all(dir)?;
        }
        let mut file = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(crate::private::FILE_MODE)
            .open(path)?;
        if let Err(e) = file.write_all(prompt.as_bytes()) {
            // Do not leave a partial prompt behind: the caller never owned this file.
            let _ = fs_err::remove_file(path);
            return Err(e.into());
        }
        Ok(())
    }

    fn remove(&self, path: &Utf8Path) -> Result<bool, Error> {
        match fs_err::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn found(&self, dir: &Utf8Path) -> Result<Vec<Utf8PathBuf>, Error> {
        let entries = match fs_err::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str()
                && crate::Layout::prompt_owner(name).is_some()
            {
                out.push(dir.join(name));
            }
        }
        Ok(out)
    }
}

/// What the registry keeps of a prompt: the first 200 characters, then `...`. The whole prompt
/// stays in its file, so registries do not grow with prompt size.
pub fn prompt_preview(prompt: &str) -> String {
    const KEEP: usize = 200;
    match prompt.char_indices().nth(KEEP) {
        None => prompt.to_owned(),
        Some((cut, _)) => format!("{}...", &prompt[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn writes_0600_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path =
            camino::Utf8PathBuf::from_path_buf(dir.path().join("t/agent_prompt_a.txt")).unwrap();
        let store = FsPromptStore;
        store.write(&path, "héllo\0").unwrap();
        assert_eq!(fs_err::read_to_string(&path).unwrap(), "héllo\0");
        let mode = fs_err::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = store.write(&path, "other").unwrap_err().to_string();
        assert!(err.contains("agent_prompt_a.txt"), "{err}");
        assert_eq!(fs_err::read_to_string(&path).unwrap(), "héllo\0");
        assert!(store.remove(&path).unwrap());
        assert!(!store.remove(&path).unwrap());
    }

    #[test]
    fn preview_cuts_on_characters() {
        assert_eq!(prompt_preview("short"), "short");
        let long = "é".repeat(300);
        let p = prompt_preview(&long);
        assert_eq!(p.chars().count(), 203);
        assert!(p.ends_with("..."));
    }
}
