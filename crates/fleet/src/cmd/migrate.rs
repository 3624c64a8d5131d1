//! `fleet migrate --to json|sqlite|postgres`: moves the workspace's registry from the one it
//! uses now to another, whole — every task, agent and unknown field. The source is read whole,
//! the target written whole (SQLite in a temp file renamed into place, Postgres in one
//! transaction, JSON file by file, each atomically), and only then is the workspace switched to
//! it: killed before, the source is still the registry, and the same migration run again
//! completes (an import into Postgres that finds its tasks there exactly as they are is done).
//! Run it while no other fleet command works on the workspace.
//!
//! The switch: a SQLite source is moved aside; a Postgres target is named in
//! `.fleet/database-url` (0600), removed when leaving Postgres, whose rows are kept as they were
//! (the database may be shared; drop them there). The JSON files stay where they are when they
//! are not the registry: they are the Python server's.

use camino::Utf8Path;
use deploy_core::Layout;
use registry::transfer::{Transferred, Whole};

use crate::cli::MigrateArgs;
use crate::config::{Config, RegistryKind};
use crate::error::Error;
use crate::output::emit;

#[allow(clippy::disallowed_types, clippy::disallowed_methods)] // a migration is between two implementations by name
pub(crate) fn run(config: &Config, args: &MigrateArgs, json_mode: bool) -> Result<(), Error> {
    let layout = config.layout();
    let from = source(args, &layout);
    if from == args.to {
        return Err(Error::Invalid(format!(
            "the workspace {} uses the {} registry already: nothing to migrate",
            config.root,
            from.as_str()
        )));
    }
    let core = |e: registry::Error| deploy_core::Error::from(e);
    let sqlite = |e: sqlite_registry::Error| deploy_core::Error::from(e);
    let pg = |e: postgres_registry::Error| deploy_core::Error::from(e);
    // The one connection, when Postgres is either side.
    let postgres = if from == RegistryKind::Postgres || args.to == RegistryKind::Postgres {
        let url = config.database_url.as_ref().ok_or_else(|| {
            Error::Invalid(
                "the postgres registry needs --database-url or FLEET_DATABASE_URL".into(),
            )
        })?;
        Some(postgres_registry::PostgresRegistry::connect(layout.clone(), &url.0).map_err(pg)?)
    } else {
        None
    };
    let postgres = || {
        postgres.as_ref().ok_or_else(|| {
            Error::Environment("internal error: no Postgres connection for a migration".into())
        })
    };
    let whole: Whole = match from {
        RegistryKind::Json => registry::JsonRegistry::new(layout.clone())
            .whole()
            .map_err(core)?,
        RegistryKind::Sqlite => open_sqlite(&layout)?.whole().map_err(sqlite)?,
        RegistryKind::Postgres => postgres()?.whole().map_err(pg)?,
    };
    let mut done = match args.to {
        RegistryKind::Json => {
            let index = registry::transfer::write_json(&layout, &whole).map_err(core)?;
            Transferred {
                tasks: whole.tasks.len(),
                agents: whole.agents(),
                to: index.to_string(),
                kept: None,
            }
        }
        RegistryKind::Sqlite => {
            sqlite_registry::SqliteRegistry::import(&layout, &whole).map_err(sqlite)?
        }
        RegistryKind::Postgres => postgres()?.import(&whole).map_err(pg)?,
    };
    deploy_core::failpoint("migrate::before_switch");
    // The target is whole: it is chosen, and the source steps aside.
    if let (RegistryKind::Postgres, Some(url)) = (args.to, &config.database_url) {
        crate::config::remember_database(&layout, url)?;
    }
    done.kept = match from {
        RegistryKind::Json => None,
        RegistryKind::Sqlite => Some(set_aside(&layout)?),
        RegistryKind::Postgres => {
            remove(&layout.database_url_file())?;
            Some(postgres()?.target().to_owned())
        }
    };
    emit(json_mode, &done, || {
        let mut line = format!(
            "migrated {} tasks and {} agents to {}",
            done.tasks, done.agents, done.to
        );
        if let Some(kept) = &done.kept {
            line.push_str(&format!(" (the old registry is kept at {kept})"));
        }
        line + "\n"
    });
    Ok(())
}

/// The registry a migration moves from: `--from`, else the one the workspace holds (never
/// `--registry` or `FLEET_REGISTRY`, which name where commands look, not what is there).
pub(crate) fn source(args: &MigrateArgs, layout: &Layout) -> RegistryKind {
    args.from.unwrap_or_else(|| RegistryKind::found_in(layout))
}

#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn open_sqlite(layout: &Layout) -> Result<sqlite_registry::SqliteRegistry, Error> {
    Ok(sqlite_registry::SqliteRegistry::open_existing_with(
        layout.clone(),
        sqlite_registry::DEFAULT_BUSY_TIMEOUT,
    )
    .map_err(deploy_core::Error::from)?)
}

/// Moves the workspace's SQLite database aside; returns where it went.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn set_aside(layout: &Layout) -> Result<String, Error> {
    Ok(open_sqlite(layout)?
        .set_aside()
        .map_err(deploy_core::Error::from)?
        .to_string())
}

fn remove(file: &Utf8Path) -> Result<(), Error> {
    match std::fs::remove_file(file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Environment(format!("{file}: {e}"))),
    }
}
