//! The workspace's host list, `.fleet/hosts.json` (0600), changed under its lock.

use std::collections::BTreeMap;
use std::time::Duration;

use deploy_core::{HostName, Layout};
use serde::{Deserialize, Serialize};

use crate::Error;

/// How long a change waits for another one to the host list.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// One host: how to reach it and where fleet lives there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    /// The `ssh` destination: `user@host`, `host`, or a `~/.ssh/config` alias.
    pub ssh: String,
    /// The remote's workspace root, as the remote reads it (default: the remote fleet's own,
    /// relative to the login directory there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// The remote's tmux socket name (default: the remote fleet's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// The fleet binary there (default: `fleet`, found on the remote's `PATH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<String>,
}

impl HostEntry {
    /// Checks what ssh and the remote shell will be given: an `ssh` destination that is not an
    /// option (`-oProxyCommand=…` would be one) and no control characters anywhere.
    pub fn check(&self, name: &HostName) -> Result<(), Error> {
        let invalid = |message: String| Error::Invalid {
            host: name.to_string(),
            message,
        };
        if self.ssh.is_empty() || self.ssh.starts_with('-') {
            return Err(invalid(format!(
                "{:?} is not an ssh destination (user@host, host, or an alias)",
                self.ssh
            )));
        }
        if self.ssh.chars().any(char::is_whitespace) {
            return Err(invalid(format!(
                "{:?} is not an ssh destination: it holds a space",
                self.ssh
            )));
        }
        for (what, value) in [
            ("ssh destination", Some(&self.ssh)),
            ("root", self.root.as_ref()),
            ("socket", self.socket.as_ref()),
            ("fleet binary", self.fleet.as_ref()),
        ] {
            if let Some(v) = value {
                if v.is_empty() {
                    return Err(invalid(format!("the {what} is empty")));
                }
                if v.chars().any(char::is_control) {
                    return Err(invalid(format!(
                        "the {what} {v:?} holds a control character"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    hosts: BTreeMap<String, HostEntry>,
}

/// The host list of one workspace.
#[derive(Debug)]
pub struct Hosts {
    hosts: BTreeMap<HostName, HostEntry>,
}

impl Hosts {
    /// The workspace's host list; empty if it has none.
    pub fn load(layout: &Layout) -> Result<Hosts, Error> {
        let path = layout.hosts_file();
        let store = |message: String| Error::Store {
            path: path.to_string(),
            message,
        };
        let file: File = match fs_err::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| store(format!("not a host list: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => return Err(store(e.to_string())),
        };
        let mut hosts = BTreeMap::new();
        for (name, entry) in file.hosts {
            let name = HostName::parse(&name).map_err(|e| store(format!("host {name:?}: {e}")))?;
            entry.check(&name)?;
            hosts.insert(name, entry);
        }
        Ok(Hosts { hosts })
    }

    /// The host named `name`.
    pub fn get(&self, name: &HostName) -> Result<&HostEntry, Error> {
        self.hosts
            .get(name)
            .ok_or_else(|| Error::UnknownHost(name.clone()))
    }

    /// Whether `name` is in the list.
    pub fn contains(&self, name: &HostName) -> bool {
        self.hosts.contains_key(name)
    }

    /// Whether the list has no host.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Every host, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&HostName, &HostEntry)> {
        self.hosts.iter()
    }

    /// Adds `name` to the workspace's list, under its lock: refused if it is there already.
    pub fn add(layout: &Layout, name: &HostName, entry: HostEntry) -> Result<(), Error> {
        entry.check(name)?;
        Hosts::change(layout, |hosts| {
            if hosts.contains_key(name) {
                return Err(Error::HostExists(name.clone()));
            }
            hosts.insert(name.clone(), entry);
            Ok(())
        })
    }

    /// Removes `name` from the workspace's list, under its lock; returns what it held.
    pub fn remove(layout: &Layout, name: &HostName) -> Result<HostEntry, Error> {
        Hosts::change(layout, |hosts| {
            hosts
                .remove(name)
                .ok_or_else(|| Error::UnknownHost(name.clone()))
        })
    }

    /// Reads, changes and atomically replaces the list under `.fleet/hosts.json.lock`; what
    /// `f` returned. A failing `f` writes nothing.
    fn change<T>(
        layout: &Layout,
        f: impl FnOnce(&mut BTreeMap<HostName, HostEntry>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let path = layout.hosts_file();
        let store = |message: String| Error::Store {
            path: path.to_string(),
            message,
        };
        if let Some(dir) = path.parent() {
            deploy_core::private::create_dir_all(dir).map_err(|e| store(e.to_string()))?;
        }
        let lock_path = path.with_file_name("hosts.json.lock");
        let _lock = deploy_core::lock::Flock::open(&lock_path, LOCK_WAIT)
            .map_err(|e| store(e.to_string()))?;
        let mut hosts = Hosts::load(layout)?.hosts;
        let out = f(&mut hosts)?;
        let file = File {
            hosts: hosts
                .into_iter()
                .map(|(name, entry)| (name.to_string(), entry))
                .collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| store(e.to_string()))?;
        bytes.push(b'\n');
        deploy_core::private::replace(&path, &bytes).map_err(|e| store(e.to_string()))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camino::Utf8PathBuf;

    fn layout() -> (tempfile::TempDir, Layout) {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        (dir, Layout::new(root))
    }

    fn entry(ssh: &str) -> HostEntry {
        HostEntry {
            ssh: ssh.into(),
            root: Some("work/fleet".into()),
            socket: None,
            fleet: None,
        }
    }

    #[test]
    fn hosts_are_added_listed_and_removed_in_a_private_file() {
        let (_dir, layout) = layout();
        let b = HostName::parse("gpu-b").unwrap();
        assert!(Hosts::load(&layout).unwrap().iter().next().is_none());
        Hosts::add(&layout, &b, entry("alice@gpu-b.example")).unwrap();
        let hosts = Hosts::load(&layout).unwrap();
        assert_eq!(hosts.get(&b).unwrap(), &entry("alice@gpu-b.example"));
        assert_eq!(deploy_core::private::mode_for(&layout.hosts_file()), 0o600);
        assert!(matches!(
            Hosts::add(&layout, &b, entry("other")),
            Err(Error::HostExists(_))
        ));
        assert_eq!(
            Hosts::remove(&layout, &b).unwrap().ssh,
            "alice@gpu-b.example"
        );
        assert!(matches!(
            Hosts::remove(&layout, &b),
            Err(Error::UnknownHost(_))
        ));
        assert!(!Hosts::load(&layout).unwrap().contains(&b));
    }

    #[test]
    fn a_destination_that_is_an_option_or_holds_a_control_character_is_refused() {
        let (_dir, layout) = layout();
        let b = HostName::parse("b").unwrap();
        for bad in ["-oProxyCommand=touch /tmp/x", "", "a b", "host\n"] {
            let e = Hosts::add(&layout, &b, entry(bad)).unwrap_err();
            assert!(e.to_string().starts_with("host b: "), "{e}");
        }
        let mut e = entry("b");
        e.root = Some("x\u{1b}[2J".into());
        assert!(Hosts::add(&layout, &b, e).is_err());
        assert!(!layout.hosts_file().exists(), "nothing written");
    }

    #[test]
    fn concurrent_adds_lose_no_host() {
        let (_dir, layout) = layout();
        std::thread::scope(|s| {
            for i in 0..8 {
                let layout = &layout;
                s.spawn(move || {
                    let name = HostName::parse(&format!("h{i}")).unwrap();
                    Hosts::add(layout, &name, entry(&format!("h{i}.example"))).unwrap();
                });
            }
        });
        assert_eq!(Hosts::load(&layout).unwrap().iter().count(), 8);
    }
}
