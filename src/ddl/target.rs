//! What both index commands do before they plan anything: open the control
//! session, find the managed table as the server resolves it, check that the
//! role may change its indexes, and take the table's run lock.

use super::privileges::{self, Ddl};
use super::run_lock;
use super::session::{self, Session};
use super::settings::SessionSettings;
use crate::catalog;
use crate::config::Config;
use crate::db::{pooling, PgContext};
use crate::sqlfiles::IndexSet;
use crate::stop::Stop;
use anyhow::Result;

/// The managed table and the control session a run works on.
pub struct Target {
    /// The control session: it holds the run lock and watches the builds.
    pub control: Session,
    pub schema: String,
    pub table: String,
    /// The run lock's key (see run_lock::key).
    pub key: i64,
    /// Set on a dry run against a hot standby: what a real run there would
    /// be refused with, for the report's notices.
    pub standby: Option<String>,
}

impl Target {
    /// Opens the control session and resolves and checks `set`'s table;
    /// `ddl` says what the run needs and names it in messages. Index DDL runs only on a
    /// primary: a hot standby is refused before anything is set, read or
    /// locked, unless `dry_run` (the plan is read-only and shows what the
    /// primary needs; the refusal becomes `standby`).
    pub fn open(
        config: &Config,
        settings: &SessionSettings,
        set: &IndexSet,
        ddl: Ddl,
        dry_run: bool,
    ) -> Result<Target> {
        let command = ddl.command();
        crate::db::pgbouncer::refuse_admin_console(&config.conn, "pool-status --pgbouncer")?;
        let mut reached = session::connect(config, settings)?;
        // Before any session state exists: the run lock and timeouts must not
        // stay behind on a server connection another client gets next.
        pooling::require_session(&mut reached.client, &config.conn, config.pooling, command)?;
        let standby = refuse_standby(&mut reached, command)?;
        if let Some(refusal) = &standby {
            if !dry_run {
                anyhow::bail!("{refusal}. Nothing was done");
            }
        }
        let mut control = session::prepare(reached, settings)?;
        let (schema, table) = catalog::indexes::resolve_table(&mut control.client, set)?;
        privileges::check(&mut control.client, &schema, &table, ddl)?;
        let key = run_lock::key(&schema, &table);
        Ok(Target {
            control,
            schema,
            table,
            key,
            standby,
        })
    }

    /// `config` with its connection narrowed to the node the control session
    /// reached: with several hosts (load_balance_hosts, a failover under way)
    /// every build session of the run goes to that node too.
    pub fn pinned(&self, config: &Config) -> Config {
        Config {
            conn: config.conn.pinned_to(&self.control.endpoint),
            ..config.clone()
        }
    }

    /// `schema.table`, as the reports show it.
    pub fn shown(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    /// Takes the run lock (with `wait`, waits for another run to finish);
    /// false when stopped while waiting.
    pub fn lock(&mut self, wait: bool, stop: &Stop) -> Result<bool> {
        let acquired = run_lock::take(
            &mut self.control.client,
            (&self.schema, &self.table),
            wait,
            stop,
        )?;
        Ok(acquired == run_lock::Acquired::Yes)
    }

    /// Releases the run lock (closing the control session would too).
    pub fn release(&mut self) {
        run_lock::release(&mut self.control.client, self.key);
    }
}

/// What `command` would be refused with on this session's server, when it is
/// a hot standby (it replays the primary's WAL and cannot take DDL).
fn refuse_standby(reached: &mut crate::db::Reached, command: &str) -> Result<Option<String>> {
    let standby: bool = reached
        .client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .pg_context("asking whether the server is a standby")?
        .get(0);
    Ok(standby.then(|| {
        format!(
            "{} is a standby (pg_is_in_recovery); run {command} against the primary",
            reached.endpoint
        )
    }))
}
