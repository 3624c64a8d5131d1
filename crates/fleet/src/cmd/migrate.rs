//! `fleet migrate --to sqlite|json`: moves the workspace's registry between the Python server's
//! JSON files and fleet's SQLite database (sqlite-registry's `import` and `export`). Run it while
//! no other fleet command works on the workspace.

use crate::cli::MigrateArgs;
use crate::config::{Config, RegistryKind};
use crate::error::Error;
use crate::output::emit;

#[allow(clippy::disallowed_types)] // a migration is between two implementations by name
pub(crate) fn run(config: &Config, args: &MigrateArgs, json_mode: bool) -> Result<(), Error> {
    let layout = config.layout();
    let done = match args.to {
        RegistryKind::Sqlite => sqlite_registry::SqliteRegistry::import(&layout),
        RegistryKind::Json => sqlite_registry::SqliteRegistry::open_existing_with(
            layout,
            sqlite_registry::DEFAULT_BUSY_TIMEOUT,
        )
        .and_then(sqlite_registry::SqliteRegistry::export),
        RegistryKind::Postgres => {
            return Err(Error::Invalid(
                "fleet migrate --to postgres is not built yet: the workspace keeps its registry"
                    .into(),
            ));
        }
    }
    .map_err(deploy_core::Error::from)?;
    emit(json_mode, &done, || {
        let mut line = format!(
            "migrated {} tasks and {} agents to {}",
            done.tasks, done.agents, done.to
        );
        if let Some(aside) = &done.moved_aside {
            line.push_str(&format!(" (the database is kept at {aside})"));
        }
        line + "\n"
    });
    Ok(())
}
