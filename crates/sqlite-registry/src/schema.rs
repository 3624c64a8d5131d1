//! The schema, versioned by `PRAGMA user_version`. [`MIGRATIONS`]`[i]` takes a database from
//! version `i` to `i + 1`; a new database is made by running them all, in a temp file renamed
//! into place, so a crash never leaves a half-made one. A database newer than [`VERSION`] is
//! refused, never written; one without fleet's tables is not fleet's.

use std::os::unix::fs::OpenOptionsExt;

use camino::Utf8Path;
use rusqlite::{Connection, TransactionBehavior};

use crate::Error;

/// The schema version this build writes.
pub const VERSION: i64 = 2;

/// The steps from each version to the next; `MIGRATIONS.len() == VERSION`.
pub const MIGRATIONS: &[&str] = &[
    // 0 -> 1: tasks, agents and what the index keeps besides them.
    "
    CREATE TABLE tasks (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        id      TEXT NOT NULL UNIQUE,
        status  TEXT NOT NULL,
        -- the task registry as the Python server writes it, without agents, counters and
        -- agent_hierarchy (derived from the agents)
        file    TEXT NOT NULL,
        -- its entry in the global index
        summary TEXT NOT NULL
    ) STRICT;
    CREATE TABLE agents (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        id         TEXT NOT NULL UNIQUE,
        task_id    TEXT NOT NULL REFERENCES tasks(id),
        agent_type TEXT NOT NULL,
        parent     TEXT NOT NULL,
        depth      INTEGER NOT NULL,
        status     TEXT NOT NULL,
        active     INTEGER NOT NULL,
        -- the agent's entry in its task registry, every field (unknown ones too)
        entry      TEXT NOT NULL,
        -- its entry in the global index
        indexed    TEXT NOT NULL
    ) STRICT;
    CREATE INDEX agents_of_task ON agents(task_id, seq);
    CREATE INDEX active_agents ON agents(task_id, seq) WHERE active = 1;
    -- 'global': the index without its tasks, agents and counters
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
    ",
    // 1 -> 2: each agent's checkout (`fleet_worktree`) in a column of its own, so that
    // reconcile's roster reads no entry of an ended agent.
    "
    ALTER TABLE agents ADD COLUMN checkout TEXT;
    UPDATE agents SET checkout = json_extract(entry, '$.fleet_worktree');
    ",
];

/// Makes a new, empty database at `path` at [`VERSION`] (a concurrent creator's database, if it
/// got there first, is kept).
pub fn create(path: &Utf8Path) -> Result<(), Error> {
    build(path, |_| Ok(())).map(drop)
}

/// Makes a new database at `path` at [`VERSION`], filled by `fill`: built in a temp file beside
/// it, then linked into place, so a crash never leaves a half-made one there. `Ok(None)` when
/// another process placed a database there first: that one is kept, this one discarded.
pub(crate) fn build<T>(
    path: &Utf8Path,
    fill: impl FnOnce(&mut Connection) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    if let Some(dir) = path.parent() {
        deploy_core::private::create_dir_all(dir)?;
    }
    let tmp = path.with_file_name(format!(
        ".{}.{}.new",
        path.file_name().unwrap_or("fleet.sqlite3"),
        std::process::id()
    ));
    sweep_dead_temps(path, false);
    let _ = fs_err::remove_file(&tmp);
    // Private, as everything fleet creates in the workspace: made empty with mode 0600 before
    // SQLite opens it (SQLite would make it 0644), and its WAL and shared-memory files take the
    // database's mode.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::Io(tmp.clone(), e))?;
    let sqlite = |e| Error::from_sqlite(&tmp, std::time::Duration::ZERO, e);
    let made = (|| {
        let mut conn = Connection::open(&tmp).map_err(sqlite)?;
        conn.execute_batch("PRAGMA journal_mode = WAL;")
            .map_err(sqlite)?;
        migrate(&conn, 0).map_err(sqlite)?;
        let filled = fill(&mut conn)?;
        conn.close().map_err(|(_, e)| sqlite(e))?;
        Ok(filled)
    })();
    // Not over an existing file: another process may have made one meanwhile.
    let placed = made.and_then(|filled| match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(Some(filled)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(Error::Io(path.to_owned(), e)),
    });
    for leftover in [tmp.to_string(), format!("{tmp}-wal"), format!("{tmp}-shm")] {
        let _ = std::fs::remove_file(leftover);
    }
    placed
}

/// Removes (unless `dry_run`) the temp databases beside `path` that dead processes left (a
/// creation or an import killed half-way, [`build`]): `.<name>.<pid>.new*` whose process is
/// gone. Returns how many files there were.
pub(crate) fn sweep_dead_temps(path: &Utf8Path, dry_run: bool) -> usize {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return 0;
    };
    let Ok(entries) = fs_err::read_dir(dir) else {
        return 0;
    };
    let mut swept = 0;
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let Some(file) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest
            .split_once(".new")
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            swept += 1;
            if !dry_run {
                let _ = std::fs::remove_file(dir.join(&file));
            }
        }
    }
    swept
}

/// Runs the migrations from `from` to [`VERSION`], each in its own transaction.
fn migrate(conn: &Connection, from: i64) -> rusqlite::Result<()> {
    for (version, step) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(from).unwrap_or(0))
    {
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Checks the database behind `conn` is fleet's and not newer than this build, and migrates
/// an older one forward.
pub(crate) fn check_and_migrate(conn: &Connection, path: &Utf8Path) -> Result<(), Error> {
    let err = |e| Error::from_sqlite(path, std::time::Duration::ZERO, e);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    if version > VERSION {
        return Err(Error::NewerSchema {
            path: path.to_owned(),
            found: version,
            supported: VERSION,
        });
    }
    if version == 0 {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            message: "schema version 0: not a fleet registry".into(),
        });
    }
    if version < VERSION {
        tracing::info!(%path, from = version, to = VERSION, "migrating the registry's schema");
        migrate(conn, version).map_err(err)?;
    }
    Ok(())
}
