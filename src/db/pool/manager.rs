//! The pool's connection manager: r2d2_postgres's, except that each new
//! connection walks the hosts as `db::connect` does (per-host ports,
//! target_session_attrs checked after connecting), which the crate's own
//! connect, given the whole host list, cannot do.

use crate::conninfo::ConnInfo;
use crate::db::connect::{connect_first_fitting, tls_connector, NoHost};
use crate::db::error::describe_pg_error;
use anyhow::Result;
use postgres::Client;
use postgres_openssl::MakeTlsConnector;
use r2d2::ManageConnection;
use r2d2_postgres::PostgresConnectionManager;

/// Opens the pool's connections host by host; checks them as r2d2_postgres does.
pub struct Manager {
    conn: ConnInfo,
    hosts: Vec<ConnInfo>,
    tls: MakeTlsConnector,
    /// For `is_valid` and `has_broken`, r2d2_postgres's own checks.
    checks: PostgresConnectionManager<MakeTlsConnector>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Manager({})", self.conn.target())
    }
}

impl Manager {
    pub fn new(conn: &ConnInfo) -> Result<Manager> {
        let tls = tls_connector(conn)?;
        Ok(Manager {
            conn: conn.clone(),
            hosts: conn.each_host()?,
            checks: PostgresConnectionManager::new(conn.to_pg_config(), tls.clone()),
            tls,
        })
    }
}

/// Why a pooled connection could not be opened or failed its check, in the
/// words the pool's messages append after "cannot connect to TARGET: ".
#[derive(Debug)]
pub enum ManagerError {
    NoHost(NoHost),
    Server(postgres::Error),
}

impl std::fmt::Display for ManagerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManagerError::NoHost(e) => f.write_str(&e.detail()),
            ManagerError::Server(e) => f.write_str(&describe_pg_error(e)),
        }
    }
}

impl std::error::Error for ManagerError {}

impl ManageConnection for Manager {
    type Connection = Client;
    type Error = ManagerError;

    fn connect(&self) -> Result<Client, ManagerError> {
        connect_first_fitting(&self.conn, &self.hosts, &self.tls)
            .map(|reached| reached.client)
            .map_err(ManagerError::NoHost)
    }

    fn is_valid(&self, client: &mut Client) -> Result<(), ManagerError> {
        self.checks.is_valid(client).map_err(ManagerError::Server)
    }

    fn has_broken(&self, client: &mut Client) -> bool {
        self.checks.has_broken(client)
    }
}
