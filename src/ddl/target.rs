//! What both index commands do before they plan anything: open the control
//! session, find the managed table as the server resolves it, check that the
//! role may change its indexes, and take the table's run lock.

use super::privileges::{self, Ddl};
use super::run_lock;
use super::session::{self, Session};
use super::settings::SessionSettings;
use crate::catalog;
use crate::config::Config;
use crate::db::PgContext;
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
}

impl Target {
    /// Opens the control session and resolves and checks `set`'s table;
    /// `ddl` says what the run needs and names it in messages. Index DDL
    /// runs only on a primary: a hot standby is refused unless `dry_run`
    /// (the plan is read-only and shows what the primary needs).
    pub fn open(
        config: &Config,
        settings: &SessionSettings,
        set: &IndexSet,
        ddl: Ddl,
        dry_run: bool,
    ) -> Result<Target> {
        let command = ddl.command();
        let mut control = session::open(config, settings)?;
        let standby: bool = control
            .client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .pg_context("asking whether the server is a standby")?
            .get(0);
        if standby && !dry_run {
            anyhow::bail!(
                "{} is a hot standby (read-only replica): {command} changes indexes only on the primary, \
                 from which they replicate; point --database-url at the primary (or add \
                 target_session_attrs=read-write to a multi-host URL). Nothing was done",
                config.conn.target()
            );
        }
        let (schema, table) = catalog::indexes::resolve_table(&mut control.client, set)?;
        privileges::check(&mut control.client, &schema, &table, ddl)?;
        let key = run_lock::key(&schema, &table);
        Ok(Target {
            control,
            schema,
            table,
            key,
        })
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
