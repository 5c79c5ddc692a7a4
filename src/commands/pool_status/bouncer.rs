//! pool-status's pgbouncer section: what the admin console says, judged
//! against its pool sizes, so clients queueing inside pgbouncer (which the
//! server's views cannot see) alert like an exhausted application pool does.

use crate::db::pgbouncer::{BouncerPool, BouncerStatus};
use serde::Serialize;

/// The admin console's figures and their verdict. JSON: the console's
/// fields, then the thresholds and `alert`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BouncerSection {
    #[serde(flatten)]
    pub status: BouncerStatus,
    /// `[alert] pgbouncer_avg_wait`, in seconds.
    pub avg_wait_alert_seconds: f64,
    /// Clients wait in one of the pools now, or waited too long on average lately.
    pub alert: bool,
}

impl BouncerSection {
    pub fn judge(status: BouncerStatus, avg_wait_alert_seconds: f64) -> BouncerSection {
        let mut section = BouncerSection {
            status,
            avg_wait_alert_seconds,
            alert: false,
        };
        section.alert = section.status.pools.iter().any(|p| section.pool_alerts(p));
        section
    }

    /// The recent average wait of the pool's database (SHOW STATS is per database).
    pub fn avg_wait_seconds(&self, pool: &BouncerPool) -> f64 {
        self.status
            .stats_of(&pool.database)
            .map_or(0.0, |s| s.avg_wait_seconds)
    }

    /// A client waits now, or the database's clients waited too long lately.
    pub fn pool_alerts(&self, pool: &BouncerPool) -> bool {
        pool.clients_waiting > 0 || self.avg_wait_seconds(pool) > self.avg_wait_alert_seconds
    }
}

/// A transaction-mode pgbouncer in front of the dashboard's database, its
/// pool of 20 full and `waiting` clients queued; for the tests and snapshots.
#[cfg(test)]
pub(super) fn example_status(waiting: i64, avg_wait_seconds: f64) -> BouncerStatus {
    use crate::db::pgbouncer::{BouncerClients, BouncerSettings, BouncerStats};
    BouncerStatus {
        console: "10.0.3.2:6432".into(),
        version: "PgBouncer 1.18.0".into(),
        settings: BouncerSettings {
            default_pool_size: 20,
            reserve_pool_size: 0,
            max_client_conn: 500,
            max_db_connections: 0,
        },
        pools: vec![BouncerPool {
            database: "o2o_dashboard".into(),
            server_database: "o2o_dashboard".into(),
            user: "dashboard".into(),
            clients_active: 20,
            clients_waiting: waiting,
            servers_active: 20,
            servers_idle: 0,
            servers_used: 0,
            max_wait_seconds: if waiting > 0 { 1.25 } else { 0.0 },
            pool_mode: "transaction".into(),
            pool_size: 20,
        }],
        stats: vec![BouncerStats {
            database: "o2o_dashboard".into(),
            transactions_total: 1_204_331,
            queries_total: 2_870_112,
            wait_seconds_total: 913.4,
            avg_wait_seconds,
            avg_query_seconds: 0.0042,
            avg_transaction_seconds: 0.0113,
        }],
        clients: vec![BouncerClients {
            database: "o2o_dashboard".into(),
            application: "dashboard-api".into(),
            connections: 20 + waiting,
        }],
        server_pids: (31_000..31_020).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_client_or_a_long_average_wait_alerts() {
        let judge =
            |waiting, avg_wait| BouncerSection::judge(example_status(waiting, avg_wait), 0.05);
        assert!(!judge(0, 0.049).alert);
        // However short its wait so far: it is queued now.
        assert!(judge(1, 0.0).alert);
        // Nobody waits at the snapshot, but they did between snapshots.
        assert!(judge(0, 0.051).alert);
    }

    #[test]
    fn clients_count_for_the_pools_of_the_server_database() {
        let mut status = example_status(7, 0.0);
        status.pools[0].database = "dashboard_alias".into();
        status.clients[0].database = "dashboard_alias".into();
        assert_eq!(status.clients_of("dashboard-api", "o2o_dashboard"), 27);
        assert_eq!(status.clients_of("dashboard-api", "other"), 0);
        assert_eq!(status.clients_of("reporting", "o2o_dashboard"), 0);
    }
}
