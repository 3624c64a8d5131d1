//! The real Claude Code in a test: the pinned CLI that `cargo xtask claude` (and `cargo xtask
//! ci`) installs into `target/claude-code`, pointed at this test's scripted model server, with
//! a home of its own inside the test's directory — never the user's.

use std::process::Command;

use camino::{Utf8Path, Utf8PathBuf};
use scripted_model::{ModelServer, Script};

use super::Fleet;

/// The installed `claude`; a test without it fails, naming how to install it.
pub fn bin() -> Utf8PathBuf {
    let bin = Utf8PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/claude-code/node_modules/.bin/claude");
    assert!(
        bin.exists(),
        "the real Claude Code is not installed at {bin}: run `cargo xtask claude` (`cargo xtask ci` does)"
    );
    bin
}

/// A scripted model and the environment that points Claude Code at it.
pub struct Claude {
    pub model: ModelServer,
    home: Utf8PathBuf,
    bin_dir: Utf8PathBuf,
}

impl Claude {
    /// Starts the model server for `f`'s test, answering from `script`.
    pub fn start(f: &Fleet, script: Script) -> Claude {
        let bin = bin();
        let home = Utf8PathBuf::from_path_buf(f.dir.path().join("home")).unwrap();
        fs_err::create_dir_all(&home).unwrap();
        Claude {
            model: ModelServer::start(script).unwrap(),
            home,
            bin_dir: bin.parent().unwrap().to_owned(),
        }
    }

    /// Claude Code's home in this test: its settings and conversations.
    pub fn home(&self) -> &Utf8Path {
        &self.home
    }

    /// Points `c` (fleet, or `claude` itself) at the model: `claude` first on `PATH`, the
    /// model's URL and a key, this test's home; as root, `IS_SANDBOX=1` (bypassPermissions is
    /// refused to root otherwise); no traffic but the model's.
    pub fn env(&self, c: &mut Command) {
        c.env("ANTHROPIC_BASE_URL", self.model.url())
            .env("ANTHROPIC_API_KEY", "sk-ant-test-scripted")
            .env("HOME", &self.home)
            .env(
                "PATH",
                format!("{}:{}", self.bin_dir, std::env::var("PATH").unwrap()),
            )
            .env("IS_SANDBOX", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("CLAUDECODE")
            .env_remove("ANTHROPIC_AUTH_TOKEN");
    }

    /// The same environment as name=value pairs for another host's sessions (sshd's
    /// `SetEnv`), with `home` as that host's Claude Code home.
    pub fn env_for_host(&self, home: &Utf8Path) -> Vec<(String, String)> {
        fs_err::create_dir_all(home).unwrap();
        [
            ("ANTHROPIC_BASE_URL", self.model.url().to_owned()),
            ("ANTHROPIC_API_KEY", "sk-ant-test-scripted".to_owned()),
            ("HOME", home.to_string()),
            (
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin_dir),
            ),
            ("IS_SANDBOX", "1".to_owned()),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_owned()),
            ("DISABLE_AUTOUPDATER", "1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Runs `fleet args` with Claude Code pointed at the model, which must succeed; its
    /// stdout, trimmed.
    pub fn ok(&self, f: &Fleet, args: &[&str]) -> String {
        let out = self.fleet(f, args).output().unwrap();
        assert!(
            out.status.success(),
            "fleet {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// `fleet args` with Claude Code pointed at the model.
    pub fn fleet(&self, f: &Fleet, args: &[&str]) -> Command {
        let mut c = f.command(args);
        self.env(&mut c);
        c
    }
}
