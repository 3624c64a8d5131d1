//! The real Claude Code for the tests: a pinned version from npm, installed into the build
//! directory (`target/claude-code`) when it is absent. `cargo xtask claude` installs it alone;
//! `cargo xtask ci` does first. The tests find it there and fail, naming this task, without it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The version the tests run: the one the issues' measurements were made with.
pub(crate) const VERSION: &str = "2.1.197";

/// Where it is installed, beside the workspace's build output.
fn prefix() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("claude-code")
}

/// The installed `claude`, installed first when it is missing or another version; its version
/// printed.
pub(crate) fn ensure() -> Result<PathBuf, String> {
    let prefix = prefix();
    let bin = prefix.join("node_modules").join(".bin").join("claude");
    if version(&bin).as_deref() != Some(VERSION) {
        let package = format!("@anthropic-ai/claude-code@{VERSION}");
        eprintln!("xtask: installing {package} into {}", prefix.display());
        std::fs::create_dir_all(&prefix).map_err(|e| e.to_string())?;
        let status = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--prefix",
            ])
            .arg(&prefix)
            .arg(&package)
            .status()
            .map_err(|e| format!("cannot run npm (install Node.js and npm): {e}"))?;
        if !status.success() {
            return Err(format!("npm install {package} failed ({status})"));
        }
    }
    match version(&bin) {
        Some(v) if v == VERSION => {
            eprintln!("xtask: Claude Code {v} at {}", bin.display());
            Ok(bin)
        }
        Some(v) => Err(format!(
            "{} is Claude Code {v}, not {VERSION}",
            bin.display()
        )),
        None => Err(format!("{} does not run after npm install", bin.display())),
    }
}

/// What `claude --version` says its version is (`2.1.197 (Claude Code)` → `2.1.197`).
fn version(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    out.status
        .success()
        .then(|| text.split_whitespace().next().map(str::to_owned))
        .flatten()
}

/// `cargo xtask claude`.
pub(crate) fn run() -> Result<(), String> {
    ensure().map(|_| ())
}
