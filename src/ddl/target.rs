//! What both index commands do before they plan anything: open the control
//! session, find the managed table as the server resolves it, check that the
//! role may change its indexes, and take the table's run lock.

use super::session::{self, Session};
use super::settings::SessionSettings;
use super::{privileges, run_lock};
use crate::catalog;
use crate::config::Config;
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
    /// `command` names the run in a missing privilege's message.
    pub fn open(
        config: &Config,
        settings: &SessionSettings,
        set: &IndexSet,
        command: &str,
    ) -> Result<Target> {
        let mut control = session::open(config, settings)?;
        let (schema, table) = catalog::indexes::resolve_table(&mut control.client, set)?;
        privileges::check(&mut control.client, &schema, &table, command)?;
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
