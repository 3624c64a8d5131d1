//! Other machines fleet runs agents on, reached with the engines users already run: OpenSSH
//! and, on each host, tmux and fleet itself. No daemon of fleet's own.
//!
//! - [`Hosts`]: the workspace's host list (`.fleet/hosts.json`, 0600): a name (fleet's
//!   [`HostName`](deploy_core::HostName), the identity the remote fleet records its agents
//!   with), the `ssh` destination (whatever the user's `ssh` accepts: `user@host`, a
//!   `~/.ssh/config` alias with its port, key and jump hosts), and the remote's workspace root,
//!   tmux socket and fleet binary. A remote path is the remote's own text, passed on as given:
//!   never built from this machine's `$HOME`.
//! - [`Ssh`]: the system `ssh` client, run by argv. The remote command is one string that
//!   `shell-words` quotes, built only from fleet's own words and the host's stored settings;
//!   what a user typed (a prompt, a path) travels on ssh's stdin. Every call runs with
//!   `BatchMode=yes` (a host key that is unknown or changed, or a password, is a one-line
//!   error, never a prompt), `StrictHostKeyChecking=yes`, a `ConnectTimeout`, keep-alives, and
//!   a ControlMaster socket per host (named from the host and its destination) in a private
//!   directory; a call that outlives its bound is killed, its host's master asked to exit and
//!   its socket removed, so the next call makes a fresh one even when the old master hangs.

mod error;
mod hosts;
mod ssh;

pub use error::Error;
pub use hosts::{HostEntry, Hosts};
pub use ssh::{Reply, Ssh};
