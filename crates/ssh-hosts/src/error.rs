//! The crate's one error type.

use deploy_core::HostName;

/// What went wrong with a host or the connection to it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host list could not be read or written.
    #[error("{path}: {message}")]
    Store {
        /// The host list's path.
        path: String,
        /// What failed.
        message: String,
    },
    /// No host of that name is in the host list.
    #[error("no host {0} in this workspace: add it with `fleet host add {0} --ssh DEST`")]
    UnknownHost(HostName),
    /// A host of that name is already in the host list.
    #[error("host {0} is already in this workspace: remove it first to change it")]
    HostExists(HostName),
    /// A host's settings are not usable.
    #[error("host {host}: {message}")]
    Invalid {
        /// The host.
        host: String,
        /// What is wrong.
        message: String,
    },
    /// `ssh` did not reach the host, or refused it (unknown or changed host key, no usable
    /// key, connection refused or timed out): ssh's own last line.
    #[error("host {host} ({dest}) is unreachable: {message}")]
    Unreachable {
        /// The host.
        host: HostName,
        /// Its ssh destination.
        dest: String,
        /// ssh's reason.
        message: String,
    },
    /// The host's ssh key is not the one this machine knows, or is not known at all.
    #[error(
        "host {host} ({dest}): its host key is unknown or has changed ({message}); check it \
         and add it to your known_hosts, fleet never accepts one by itself"
    )]
    HostKey {
        /// The host.
        host: HostName,
        /// Its ssh destination.
        dest: String,
        /// ssh's line.
        message: String,
    },
    /// The remote command ended without an exit status: killed by a signal there, or the
    /// connection cut after it started (ssh exits 255 and says nothing).
    #[error(
        "host {host} ({dest}): its fleet ended without answering (killed, or the connection was \
         cut); what it left there is that host's reconcile's to undo"
    )]
    Lost {
        /// The host.
        host: HostName,
        /// Its ssh destination.
        dest: String,
    },
    /// The call took longer than its bound; ssh was ended.
    #[error("host {host} ({dest}) did not answer within {seconds} s")]
    Timeout {
        /// The host.
        host: HostName,
        /// Its ssh destination.
        dest: String,
        /// The bound.
        seconds: u64,
    },
    /// `ssh` itself could not be run.
    #[error("cannot run ssh: {0}")]
    Spawn(String),
}
