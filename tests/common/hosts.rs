//! Two simulated hosts for the remote tests: a controller (host-a) and a remote (host-b), each
//! with its own workspace and tmux servers, on one private PostgreSQL database; host-b is
//! reached over a private `sshd` as the ssh alias `hostb`, which sets host-b's `TMUX_TMPDIR`.

use serde_json::Value;
use testkit::postgres::PgServer;
use testkit::sshd::{SshClient, SshServer};

use super::Fleet;

pub const FLEET: &str = env!("CARGO_BIN_EXE_fleet");

/// `fleet deploy --host host-b` of `sh -c script` with startup grace `grace` (ms).
pub fn remote_deploy<'a>(task: &'a str, grace: &'a str, script: &'a str) -> Vec<&'a str> {
    vec![
        "deploy",
        "--host",
        "host-b",
        "--task",
        task,
        "--type",
        "remote",
        "--prompt",
        "a prompt that travels on stdin",
        "--startup-grace-ms",
        grace,
        "--",
        "sh",
        "-c",
        script,
    ]
}

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
        let two = Two {
            a,
            b,
            client,
            sshd,
            _pg: pg,
        };
        two.add_b();
        two
    }

    /// Adds host-b to host-a's list: the ssh alias `hostb`, b's root, socket and this build's
    /// fleet.
    pub fn add_b(&self) {
        let added = self.a.json(&[
            "host",
            "add",
            "host-b",
            "--ssh",
            "hostb",
            "--remote-root",
            self.b.root().as_str(),
            "--remote-socket",
            &self.b.socket,
            "--fleet",
            FLEET,
        ]);
        assert_eq!(added["added"], "host-b", "{added}");
    }

    /// Starts, from host-a, a deployment on host-b of an agent that marks that it runs, with a
    /// startup grace long enough to be in flight; returns the controller (our child) and the
    /// agent's id once it runs.
    pub fn in_flight(&self, task: &str) -> (std::process::Child, String) {
        let marks = self.b.root().join("marks");
        fs_err::create_dir_all(&marks).unwrap();
        let script = format!("touch \"{marks}/$FLEET_AGENT_ID\"; exec sleep 300");
        let controller = self
            .a
            .command(&remote_deploy(task, "120000", &script))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        super::wait_for("the remote agent to run", || {
            fs_err::read_dir(&marks).map(|d| d.count()).unwrap_or(0) == 1
        });
        let agent = fs_err::read_dir(&marks)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name()
            .into_string()
            .unwrap();
        (controller, agent)
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
