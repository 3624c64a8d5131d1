//! Two simulated hosts for the remote tests: a controller (host-a) and a remote (host-b), each
//! with its own workspace and tmux servers, on one private PostgreSQL database; host-b is
//! reached over a private `sshd` as the ssh alias `hostb`, which sets host-b's `TMUX_TMPDIR`.

use serde_json::Value;
use testkit::postgres::PgServer;
use testkit::sshd::{SshClient, SshServer};

use super::Fleet;

pub const FLEET: &str = env!("CARGO_BIN_EXE_fleet");

/// A controller (host-a) and a remote (host-b) on one database; host-b is reached over its
/// own sshd as the ssh alias `hostb`.
pub struct Two {
    pub a: Fleet,
    pub b: Fleet,
    pub client: SshClient,
    pub sshd: SshServer,
    _pg: PgServer,
}

impl Two {
    pub fn new() -> Two {
        let pg = PgServer::start();
        let url = pg.new_database();
        let on = |host: &str| {
            let mut f = Fleet::on_postgres(&url);
            f.settings.push(("FLEET_HOST".into(), host.into()));
            f
        };
        let mut a = on("host-a");
        let b = on("host-b");
        let mut client = SshClient::new();
        let sshd = SshServer::start_with(&client, &[("TMUX_TMPDIR", b.tmux_tmpdir().as_str())]);
        client.add("hostb", &sshd, true);
        a.settings
            .push(("FLEET_SSH_CONFIG".into(), client.config_file().to_string()));
        let added = a.json(&[
            "host",
            "add",
            "host-b",
            "--ssh",
            "hostb",
            "--remote-root",
            b.root().as_str(),
            "--remote-socket",
            &b.socket,
            "--fleet",
            FLEET,
        ]);
        assert_eq!(added["added"], "host-b", "{added}");
        Two {
            a,
            b,
            client,
            sshd,
            _pg: pg,
        }
    }
}

impl Drop for Two {
    /// Each host's ssh master connection ends with the test (`host remove` stops it).
    fn drop(&mut self) {
        let hosts: Value = self.a.json(&["host", "list"]);
        for h in hosts.as_array().into_iter().flatten() {
            let _ = self
                .a
                .run(&["host", "remove", h["name"].as_str().unwrap_or_default()]);
        }
    }
}
