//! The crate's one error type. Every variant names the database as `postgres://host:port/dbname`
//! — never its user's password.

/// What can go wrong with the Postgres registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL does not parse.
    #[error("invalid database URL: {0}")]
    Url(String),
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach the registry database {target}: {message}")]
    Unreachable {
        /// The database.
        target: String,
        /// What the client said.
        message: String,
    },
    /// The server refused a statement.
    #[error("registry database {target}: {message}")]
    Db {
        /// The database.
        target: String,
        /// What the server said.
        message: String,
    },
    /// The schema is newer than this build reads. Never written.
    #[error(
        "registry database {target} has schema version {found}; this fleet reads up to version {supported}: upgrade fleet"
    )]
    NewerSchema {
        /// The database.
        target: String,
        /// Its version.
        found: i32,
        /// The newest this build reads.
        supported: i32,
    },
    /// An import found what it would write in the database already. Nothing was written.
    #[error(
        "registry database {target} holds {what} already: nothing imported (drop it there, or import into another database)"
    )]
    Exists {
        /// The database.
        target: String,
        /// The task or agent found.
        what: String,
    },
    /// A stored value does not parse.
    #[error("corrupt registry in database {target}: {message}")]
    Corrupt {
        /// The database.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// Limits, unknown ids.
    #[error(transparent)]
    Core(#[from] deploy_core::Error),
}

impl Error {
    /// `e`, raised on the database `target`, as this crate says it.
    pub(crate) fn from_pg(target: &str, e: &postgres::Error) -> Error {
        let target = target.to_owned();
        match e.as_db_error() {
            Some(db) => Error::Db {
                target,
                message: format!("{}: {}", db.code().code(), db.message()),
            },
            None if e.is_closed() || std::error::Error::source(e).is_some() => Error::Unreachable {
                target,
                message: one_line(e),
            },
            None => Error::Db {
                target,
                message: one_line(e),
            },
        }
    }

    /// Whether the connection is to be made anew before the next statement.
    pub(crate) fn is_unreachable(&self) -> bool {
        matches!(self, Error::Unreachable { .. })
    }
}

/// `e` and its sources on one line.
fn one_line(e: &postgres::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out.replace('\n', " ")
}

impl From<Error> for deploy_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(core) => core,
            other => deploy_core::Error::Registry(Box::new(other)),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Core(e.into())
    }
}
