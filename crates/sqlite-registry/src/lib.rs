//! # sqlite-registry
//!
//! deploy-core's [`Registry`](deploy_core::Registry) over one SQLite database,
//! `<root>/registry/fleet.sqlite3`, for fleets the JSON files make slow (every JSON write
//! rewrites a whole task file).
//!
//! - **Transactions**: every write is one `BEGIN IMMEDIATE` transaction, so limits are checked
//!   ([`deploy_core::limits::check_view`]) and the agent inserted under one write lock, across
//!   threads and processes. WAL, `synchronous = NORMAL`: a commit is atomic and survives a
//!   SIGKILL; a machine crash may lose the last commits, never tear the database
//!   (docs/FAULTS.md). A lock held past the timeout is [`Error::Busy`], naming the file.
//! - **What is stored**: each task's registry and each agent's entry as the JSON registry writes
//!   them ([`registry::shape`]), every unknown field kept, beside the columns queries need
//!   (status, type, parent, depth). Counters, `agent_hierarchy` and the global index are derived
//!   by queries, so they cannot drift; [`SqliteRegistry::whole`] reads them as the Python
//!   server's files would hold them, and [`SqliteRegistry::import`] takes such a whole in.
//! - **Bad storage**: a file that is not a database, a truncated one, a schema newer than this
//!   build, or a database that is not fleet's is an error naming the file, and is never written.
//!   The schema is versioned (`PRAGMA user_version`) and migrated forward ([`schema`]).

#![warn(missing_docs)]

mod error;
mod ops;
mod parse;
mod roster;
pub mod schema;
mod store;
mod transfer;

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::Layout;
use rusqlite::{Connection, OpenFlags};

pub use error::Error;
pub use registry::transfer::{Transferred, Whole};

/// The database's file name, in the layout's global directory.
pub const DB_FILE: &str = "fleet.sqlite3";

/// How long a write waits for another writer's lock by default.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQLite registry of one workspace.
#[derive(Debug)]
pub struct SqliteRegistry {
    layout: Layout,
    path: Utf8PathBuf,
    busy_timeout: Duration,
    conn: Mutex<Connection>,
    /// Commits made through this registry (`roster.rs` keeps reads while none is made).
    writes: AtomicU64,
    rosters: Mutex<roster::Rosters>,
}

/// Where the database of the workspace `layout` is.
pub fn path_in(layout: &Layout) -> Utf8PathBuf {
    layout.global_dir().join(DB_FILE)
}

impl SqliteRegistry {
    /// Opens the workspace's database, creating it (empty, at the current schema) if there is
    /// none — unless the workspace holds the JSON registry, which an empty database beside it
    /// would hide (from then on the workspace is found to be SQLite): [`Error::JsonRegistry`],
    /// and [`import`](Self::import) moves it.
    pub fn open(layout: Layout) -> Result<Self, Error> {
        Self::open_with(layout, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`open`](Self::open), waiting at most `busy_timeout` for another writer's lock.
    pub fn open_with(layout: Layout, busy_timeout: Duration) -> Result<Self, Error> {
        let path = path_in(&layout);
        if !path.exists() {
            if layout.global_registry().exists() {
                return Err(Error::JsonRegistry(layout.root().to_owned()));
            }
            schema::create(&path)?;
        }
        Self::open_existing_with(layout, busy_timeout)
    }

    /// Opens the workspace's database, which must exist.
    pub fn open_existing_with(layout: Layout, busy_timeout: Duration) -> Result<Self, Error> {
        let path = path_in(&layout);
        let conn = connect(&path, busy_timeout)?;
        schema::check_and_migrate(&conn, &path)?;
        Ok(SqliteRegistry {
            layout,
            path,
            busy_timeout,
            conn: Mutex::new(conn),
            writes: AtomicU64::new(0),
            rosters: Mutex::new(roster::Rosters::default()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Utf8Path {
        &self.path
    }

    /// The workspace's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-transaction rolled it back (rusqlite's Transaction drops so): the
        // connection is usable.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The error for `e`, raised on this database.
    fn err(&self, e: rusqlite::Error) -> Error {
        Error::from_sqlite(&self.path, self.busy_timeout, e)
    }
}

/// A connection to the existing database at `path`, configured: WAL, `synchronous = NORMAL`,
/// the busy timeout, foreign keys. A file that is not a database fails here, unwritten.
fn connect(path: &Utf8Path, busy_timeout: Duration) -> Result<Connection, Error> {
    if !path.exists() {
        return Err(Error::Missing(path.to_owned()));
    }
    if fs_err::metadata(path)
        .map_err(|e| Error::Io(path.to_owned(), e))?
        .len()
        == 0
    {
        // fleet creates its database whole (a temp file renamed into place): an empty file is
        // someone else's, and SQLite would take it for a new database.
        return Err(Error::Corrupt {
            path: path.to_owned(),
            message: "the file is empty, not a fleet registry".into(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let err = |e| Error::from_sqlite(path, busy_timeout, e);
    let conn = Connection::open_with_flags(path, flags).map_err(err)?;
    conn.busy_timeout(busy_timeout).map_err(err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%path, %mode, "the database is not in WAL mode");
    }
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA mmap_size = 268435456;",
    )
    .map_err(err)?;
    Ok(conn)
}
