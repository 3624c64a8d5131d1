//! The crate's one error type.

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use rusqlite::ErrorCode;

/// What can go wrong with the SQLite registry; every variant names the database file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is not a database, is truncated or damaged, or is not fleet's. Never written.
    #[error("corrupt registry {path}: {message}")]
    Corrupt {
        /// The database file.
        path: Utf8PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The schema is newer than this build reads. Never written.
    #[error(
        "registry {path} has schema version {found}; this fleet reads up to version {supported}: upgrade fleet"
    )]
    NewerSchema {
        /// The database file.
        path: Utf8PathBuf,
        /// Its version.
        found: i64,
        /// The newest this build reads.
        supported: i64,
    },
    /// Another process held the database's lock for longer than the timeout.
    #[error("registry {path} is locked by another process (waited {waited:?}); try again")]
    Busy {
        /// The database file.
        path: Utf8PathBuf,
        /// How long it waited.
        waited: Duration,
    },
    /// The workspace holds the JSON registry: no database is made beside it.
    #[error(
        "the workspace {0} holds the JSON registry: `fleet migrate --to sqlite` moves it to SQLite"
    )]
    JsonRegistry(Utf8PathBuf),
    /// There is no database at the path.
    #[error("no SQLite registry at {0}: `fleet migrate --to sqlite` makes one")]
    Missing(Utf8PathBuf),
    /// SQLite failed otherwise.
    #[error("registry {path}: {source}")]
    Sqlite {
        /// The database file.
        path: Utf8PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A file could not be read or written.
    #[error("{0}: {1}")]
    Io(Utf8PathBuf, #[source] std::io::Error),
    /// The JSON files, read or written by a migration.
    #[error(transparent)]
    Json(#[from] registry::Error),
    /// Limits, unknown ids.
    #[error(transparent)]
    Core(#[from] deploy_core::Error),
}

impl Error {
    /// `e`, raised on the database at `path`, as this crate says it.
    pub(crate) fn from_sqlite(path: &Utf8Path, waited: Duration, e: rusqlite::Error) -> Error {
        let path = path.to_owned();
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                Error::Busy { path, waited }
            }
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::Corrupt {
                path,
                message: e.to_string(),
            },
            _ => Error::Sqlite { path, source: e },
        }
    }

    /// A stored value that does not parse.
    pub(crate) fn stored(path: &Utf8Path, what: &str, e: &serde_json::Error) -> Error {
        Error::Corrupt {
            path: path.to_owned(),
            message: format!("{what} does not parse: {e}"),
        }
    }
}

impl From<Error> for deploy_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(core) => core,
            Error::Json(registry::Error::Core(core)) => core,
            other => deploy_core::Error::Registry(Box::new(other)),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Core(e.into())
    }
}
