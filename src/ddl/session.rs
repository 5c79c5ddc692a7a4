//! Dedicated connections for index work: never pooled, never in a transaction.
//!
//! CREATE/DROP INDEX CONCURRENTLY refuse to run inside a transaction block, and
//! a pooled connection might carry someone else's settings; so each build
//! session is its own connection, named in pg_stat_activity, with the run's
//! lock_timeout and statement_timeout set once (as bound values). A session
//! lost to a server restart is opened again within the connect timeout.

use super::settings::SessionSettings;
use crate::config::Config;
use crate::db::PgContext;
use crate::db::{self};
use crate::stop::Stop;
use anyhow::Result;
use postgres::Client;
use std::time::{Duration, Instant};

/// An open session and its server process id.
pub struct Session {
    pub client: Client,
    /// `host:port` of the host that answered (one of a multi-host URL's).
    pub endpoint: String,
    pub pid: i32,
    /// pg_postmaster_start_time(), as text: tells a server restart (the
    /// session may resume its work) from a backend terminated by a DBA.
    pub server_started: String,
}

/// Opens a session named `settings.application_name` with its timeouts set.
pub fn open(config: &Config, settings: &SessionSettings) -> Result<Session> {
    prepare(connect(config, settings)?, settings)
}

/// The connection of a session named `settings.application_name`, nothing
/// set on it yet: for a check that must come before anything else.
pub fn connect(config: &Config, settings: &SessionSettings) -> Result<db::Reached> {
    let mut conn = config.conn.clone();
    conn.application_name = Some(settings.application_name.clone());
    db::connect_reaching(&conn)
}

/// Sets the session's timeouts and server settings.
pub fn prepare(reached: db::Reached, settings: &SessionSettings) -> Result<Session> {
    let db::Reached {
        mut client,
        endpoint,
    } = reached;
    let row = client
        .query_one(
            "SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false), \
                    pg_backend_pid(), pg_postmaster_start_time()::text",
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
        server_started: row.get(3),
        client,
        endpoint,
    })
}

/// Whether `e` (or the client's state) says the connection is gone: closed,
/// or the server shutting down or starting up.
pub fn lost(e: &postgres::Error, client: &Client) -> bool {
    use postgres::error::SqlState;
    client.is_closed()
        || e.is_closed()
        || e.code().is_some_and(|c| {
            [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
            ]
            .contains(c)
        })
}

/// Opens a session again after a lost connection, trying until the connect
/// timeout has passed (a restarting server refuses connections for a moment)
/// or the run is stopped. `prepare` finishes setting the session up.
pub fn reopen(
    config: &Config,
    settings: &SessionSettings,
    stop: &Stop,
    mut prepare: impl FnMut(&mut Session) -> Result<()>,
) -> Result<Session> {
    let window = config.conn.connect_limit().unwrap_or(RECONNECT_WINDOW);
    let deadline = Instant::now() + window;
    loop {
        let attempt = open(config, settings).and_then(|mut s| prepare(&mut s).map(|()| s));
        match attempt {
            Ok(session) => return Ok(session),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!(
                    "the server could not be reached again within {}",
                    humantime::format_duration(window)
                )))
            }
            Err(_) if stop.sleep(Duration::from_millis(250)) => {
                anyhow::bail!("stopped while reconnecting")
            }
            Err(_) => {}
        }
    }
}

/// How long a lost session is tried again when the URL sets no connect_timeout.
const RECONNECT_WINDOW: Duration = Duration::from_secs(30);

/// A duration as a PostgreSQL setting value in milliseconds.
pub fn pg_ms(d: std::time::Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}
