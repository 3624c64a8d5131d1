//! # postgres-registry
//!
//! deploy-core's [`Registry`](deploy_core::Registry) over a PostgreSQL database. It is meant
//! to be the one source of truth that every host of a fleet shares: each agent's entry names its
//! host (`fleet_host`), and each host judges only its own (deploy-core's `Deployer::host`).
//!
//! - **Client**: the `postgres` crate (rust-postgres' blocking client: deploy-core's traits are
//!   synchronous, and it runs its own small runtime inside), without TLS — reach a remote
//!   server through an SSH tunnel or a local socket. Every statement is parameterized.
//! - **Serialization per task**: a write locks its task's row (`SELECT … FOR UPDATE`) before it
//!   reads anything, so limit checks and the insert they allow run one at a time per task, on
//!   any number of hosts, while other tasks go on in parallel. (An advisory lock would work
//!   too, but the row lock needs no key scheme and is released by any end of the transaction.)
//!   An update of one agent locks that agent's row.
//! - **What is stored**: each task's registry and each agent's entry as the JSON registry writes
//!   them ([`registry::shape`]), as text (fields keep their order; unknown fields are kept),
//!   beside the columns queries need. Counters, `agent_hierarchy` and the index are derived.
//! - **Faults**: an unreachable server, or one that went away, is [`Error::Unreachable`],
//!   naming `postgres://host:port/dbname` (never the password); the next operation connects
//!   anew, so a restarted server needs nothing restarted here.
//! - **Schema**: versioned and migrated forward ([`schema`]); a newer one is refused.

#![warn(missing_docs)]

mod error;
mod ops;
pub mod schema;
mod store;
mod transfer;

use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use deploy_core::Layout;
use postgres::{Client, Config, NoTls, Transaction};

pub use error::Error;
pub use registry::transfer::{Transferred, Whole};

/// How long a connection attempt waits when the URL does not say (`connect_timeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The Postgres registry: a workspace's files (prompts, logs) under `layout`, its registry in
/// the database.
pub struct PostgresRegistry {
    layout: Layout,
    config: Config,
    target: String,
    client: Mutex<Option<Client>>,
}

impl std::fmt::Debug for PostgresRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the config: it holds the password.
        f.debug_struct("PostgresRegistry")
            .field("layout", &self.layout)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresRegistry {
    /// Closes the connection on a thread of its own: the blocking client closes it by running
    /// its own runtime, which panics on a thread inside an async runtime — where an async
    /// caller (fleet's MCP server) may drop the registry.
    fn drop(&mut self) {
        let client = self
            .client
            .get_mut()
            .map_or_else(|p| p.into_inner().take(), Option::take);
        if let Some(client) = client {
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

/// `postgres://host:port/dbname` of `config`: what errors name, without user or password.
pub fn target_of(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("postgres://{host}:{port}/{db}")
}

impl PostgresRegistry {
    /// Connects to the database at `url` (a libpq URL or key=value string) and brings its
    /// schema to this build's version.
    pub fn connect(layout: Layout, url: &str) -> Result<Self, Error> {
        let mut config = Config::from_str(url).map_err(|e| Error::Url(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        config.application_name("fleet");
        let target = target_of(&config);
        let registry = PostgresRegistry {
            layout,
            config,
            target,
            client: Mutex::new(None),
        };
        {
            let mut slot = registry.slot();
            let client = registry.client(&mut slot)?;
            schema::check_and_migrate(client, &registry.target)?;
        }
        Ok(registry)
    }

    /// The database, as errors name it.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The workspace's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn slot(&self) -> MutexGuard<'_, Option<Client>> {
        // A panic mid-transaction dropped it, which rolls it back: the client is usable.
        self.client.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection in `slot`, made anew if there is none or the last one broke.
    fn client<'s>(&self, slot: &'s mut Option<Client>) -> Result<&'s mut Client, Error> {
        if slot.as_ref().is_some_and(Client::is_closed) {
            *slot = None;
        }
        if slot.is_none() {
            let client = self
                .config
                .connect(NoTls)
                .map_err(|e| Error::from_pg(&self.target, &e))?;
            *slot = Some(client);
        }
        slot.as_mut().ok_or_else(|| Error::Unreachable {
            target: self.target.clone(),
            message: "no connection".into(),
        })
    }

    /// The error for `e`, raised on this database.
    pub(crate) fn err(&self, e: postgres::Error) -> Error {
        Error::from_pg(&self.target, &e)
    }

    /// Runs `f` in one transaction, committed if it returns `Ok`, rolled back otherwise. A
    /// broken connection is dropped, so the next call connects anew.
    pub(crate) fn transact<T>(
        &self,
        write: bool,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut slot = self.slot();
        let out = (|| -> Result<T, Error> {
            let client = self.client(&mut slot)?;
            let mut tx = client.transaction().map_err(|e| self.err(e))?;
            let out = f(&mut tx)?;
            if write {
                deploy_core::failpoint("postgres::before_commit");
            }
            tx.commit().map_err(|e| self.err(e))?;
            if write {
                deploy_core::failpoint("postgres::after_commit");
            }
            Ok(out)
        })();
        if let Err(e) = &out
            && e.is_unreachable()
        {
            *slot = None;
        }
        out
    }
}
