// Dedicated connections for index work: never pooled, never in a transaction.
//
// CREATE/DROP INDEX CONCURRENTLY refuse to run inside a transaction block, and
// a pooled connection might carry someone else's settings; so each build
// session is its own connection, named in pg_stat_activity, with the run's
// lock_timeout and statement_timeout set once (as bound values).

use super::settings::SessionSettings;
use crate::config::Config;
use crate::db::PgContext;
use crate::db::{self};
use anyhow::Result;
use postgres::Client;

/// An open session and its server process id.
pub struct Session {
    pub client: Client,
    pub pid: i32,
}

/// Opens a session named `settings.application_name` with its timeouts set.
pub fn open(config: &Config, settings: &SessionSettings) -> Result<Session> {
    let mut conn = config.conn.clone();
    conn.application_name = Some(settings.application_name.clone());
    let mut client = db::connect(&conn)?;
    let row = client
        .query_one(
            "SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false), pg_backend_pid()",
            &[
                &pg_ms(settings.lock_timeout),
                &pg_ms(settings.statement_timeout),
            ],
        )
        .pg_context("cannot set up a session")?;
    for (name, value) in &settings.server_settings {
        client
            .execute("SELECT set_config($1, $2, false)", &[name, value])
            .with_pg_context(|| format!("cannot set {name} to {value}"))?;
    }
    Ok(Session {
        pid: row.get(2),
        client,
    })
}

/// A duration as a PostgreSQL setting value in milliseconds.
pub fn pg_ms(d: std::time::Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}
