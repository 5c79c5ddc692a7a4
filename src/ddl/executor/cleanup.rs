//! What is undone when a step fails: a build's INVALID leftover, or a
//! replacement whose swap did not happen, dropped under the lock timeout.

use super::task::Cleanup;
use crate::db::describe_pg_error;
use crate::ddl::session::pg_ms;
use crate::ddl::settings::SessionSettings;
use postgres::Client;

/// Whether the build `cleanup` watches over is on the server and valid: a
/// build that finished just before the connection was lost.
pub(super) fn already_built(client: &mut Client, cleanup: &Cleanup) -> bool {
    cleanup.replaces.is_none() && usable(client, &cleanup.index).ok().flatten() == Some(true)
}

/// Whether `index` (qualified, quoted) is valid and ready; None when there is
/// no such index.
pub fn usable(client: &mut Client, index: &str) -> Result<Option<bool>, postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT i.indisvalid AND i.indisready FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
            &[&index],
        )?
        .map(|r| r.get(0)))
}

/// The cleanup, bounded by the lock timeout even on a build session whose own
/// lock timeout is off: a drop must not wait hours for an old transaction.
pub(super) fn bounded_cleanup(
    client: &mut Client,
    cleanup: &Cleanup,
    settings: &SessionSettings,
) -> Result<bool, String> {
    if !settings.watch_lock_waits {
        return drop_leftover(client, cleanup);
    }
    let bound = format!("SET lock_timeout = '{}'", pg_ms(settings.lock_timeout));
    client
        .batch_execute(&bound)
        .map_err(|e| describe_pg_error(&e))?;
    let dropped = drop_leftover(client, cleanup);
    let reset = client.batch_execute("SET lock_timeout = 0");
    let dropped = dropped?;
    reset.map_err(|e| describe_pg_error(&e))?;
    Ok(dropped)
}

impl Cleanup {
    /// What the report says once the cleanup dropped its index.
    pub(super) fn dropped_note(&self) -> String {
        match &self.replaces {
            None => "its INVALID leftover was dropped".into(),
            Some(old) => format!(
                "the replacement {} was dropped; {old} is untouched and still serves",
                self.index
            ),
        }
    }
}

/// Carries out `cleanup` if it applies (see [`Cleanup`]); Ok(true) when it dropped its index.
pub fn drop_leftover(client: &mut Client, cleanup: &Cleanup) -> Result<bool, String> {
    let mut state = |index: &str| usable(client, index).map_err(|e| describe_pg_error(&e));
    let doomed = match &cleanup.replaces {
        None => state(&cleanup.index)? == Some(false),
        Some(old) => state(&cleanup.index)?.is_some() && state(old)? == Some(true),
    };
    if !doomed {
        return Ok(false);
    }
    client
        .batch_execute(&cleanup.drop_sql)
        .map_err(|e| describe_pg_error(&e))?;
    Ok(true)
}
