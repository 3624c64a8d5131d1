//! The schema, versioned by the one row of `fleet_schema`. [`MIGRATIONS`]`[i]` takes a database
//! from version `i` to `i + 1`, each in one transaction under an advisory transaction lock, so
//! hosts starting at once migrate it once. A database newer than [`VERSION`] is refused, never
//! written.

use postgres::Client;

use crate::Error;

/// The schema version this build writes.
pub const VERSION: i32 = 1;

/// The advisory lock key migrations hold (any constant of fleet's own).
const MIGRATION_LOCK: i64 = 0x666c_6565_745f_7631;

/// The steps from each version to the next; `MIGRATIONS.len() == VERSION`.
pub const MIGRATIONS: &[&str] = &[
    // 0 -> 1: tasks, agents and what the index keeps besides them. Entries are text, not
    // jsonb: the Python server's files keep their fields' order, and so does fleet.
    "
    CREATE TABLE fleet_tasks (
        seq     BIGSERIAL PRIMARY KEY,
        id      TEXT NOT NULL UNIQUE,
        status  TEXT NOT NULL,
        -- the task registry as the Python server writes it, without agents, counters and
        -- agent_hierarchy (derived from the agents)
        file    TEXT NOT NULL,
        -- its entry in the global index
        summary TEXT NOT NULL
    );
    CREATE TABLE fleet_agents (
        seq        BIGSERIAL PRIMARY KEY,
        id         TEXT NOT NULL UNIQUE,
        task_id    TEXT NOT NULL REFERENCES fleet_tasks(id),
        agent_type TEXT NOT NULL,
        parent     TEXT NOT NULL,
        depth      INTEGER NOT NULL,
        status     TEXT NOT NULL,
        active     BOOLEAN NOT NULL,
        -- the agent's entry in its task registry, every field (unknown ones too)
        entry      TEXT NOT NULL,
        -- its entry in the global index
        indexed    TEXT NOT NULL
    );
    CREATE INDEX fleet_agents_of_task ON fleet_agents(task_id, seq);
    CREATE INDEX fleet_active_agents ON fleet_agents(task_id, seq) WHERE active;
    -- 'global': the index without its tasks, agents and counters
    CREATE TABLE fleet_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    ",
];

/// Brings the database behind `client` to [`VERSION`]: made whole if it has no fleet tables,
/// migrated forward if older, refused if newer.
pub(crate) fn check_and_migrate(client: &mut Client, target: &str) -> Result<(), Error> {
    let pg = |e: postgres::Error| Error::from_pg(target, &e);
    let version = |client: &mut Client| -> Result<i32, Error> {
        let exists: bool = client
            .query_one("SELECT to_regclass('fleet_schema') IS NOT NULL", &[])
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        if !exists {
            return Ok(0);
        }
        client
            .query_one("SELECT version FROM fleet_schema", &[])
            .and_then(|r| r.try_get(0))
            .map_err(pg)
    };
    let current = version(client)?;
    if current == VERSION {
        return Ok(());
    }
    if current > VERSION {
        return Err(Error::NewerSchema {
            target: target.to_owned(),
            found: current,
            supported: VERSION,
        });
    }
    let mut tx = client.transaction().map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg)?;
    // Read again under the lock: another host may have migrated meanwhile.
    let exists: bool = tx
        .query_one("SELECT to_regclass('fleet_schema') IS NOT NULL", &[])
        .and_then(|r| r.try_get(0))
        .map_err(pg)?;
    let mut at: i32 = if exists {
        tx.query_one("SELECT version FROM fleet_schema", &[])
            .and_then(|r| r.try_get(0))
            .map_err(pg)?
    } else {
        tx.batch_execute("CREATE TABLE fleet_schema (version INTEGER NOT NULL); INSERT INTO fleet_schema VALUES (0);")
            .map_err(pg)?;
        0
    };
    if at > VERSION {
        return Err(Error::NewerSchema {
            target: target.to_owned(),
            found: at,
            supported: VERSION,
        });
    }
    while at < VERSION {
        let step = MIGRATIONS
            .get(usize::try_from(at).unwrap_or(usize::MAX))
            .ok_or_else(|| Error::Corrupt {
                target: target.to_owned(),
                message: format!("no migration from schema version {at}"),
            })?;
        tracing::info!(%target, from = at, "migrating the registry's schema");
        tx.batch_execute(step).map_err(pg)?;
        at += 1;
        tx.execute("UPDATE fleet_schema SET version = $1", &[&at])
            .map_err(pg)?;
    }
    tx.commit().map_err(pg)
}
