//! The o2o-db.toml schema: one struct per section, each default stated once,
//! beside its field.
//!
//! `section!` turns `field: Type = default` into the struct, its `Default`
//! and serde's "missing key takes the default", so an empty file,
//! `Config::defaults()` and the commented sample ./o2o-db.toml (compared by a
//! test) cannot disagree. Unknown keys are refused, with a "did you mean".
//! Most sections are also the resolved settings the commands read.

use super::values::{duration, nonzero, percent, some_duration, HumanDuration};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The database when nothing else names one: the V8.5 report's.
pub const DEFAULT_DATABASE: &str = "o2o_dashboard";
/// How the server sees our connections unless told otherwise.
pub const DEFAULT_APPLICATION_NAME: &str = "o2o-db";

/// A config file section: a struct whose `Default` is the `= value` written
/// beside each field, and whose missing keys take that default when read.
macro_rules! section {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty = $default:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }
    };
}

/// The whole file. A missing section is all defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub database: DatabaseSection,
    pub pool: PoolSettings,
    pub alert: AlertSettings,
    pub indexes: IndexSettings,
    pub benchmark: BenchmarkSettings,
    pub verify: VerifySettings,
    /// `[[targets]]`: the nodes of a fleet, for `--target` and `--all-targets`.
    pub targets: Vec<TargetSection>,
}

/// What a fleet node is meant to be; verify and `--all-targets` check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRole {
    /// Takes writes: the only node index DDL may run on.
    Primary,
    /// A hot standby streaming from the primary; the dashboard reads from it.
    Replica,
    /// pgbouncer in front of a node (its role is that node's).
    Pgbouncer,
}

impl NodeRole {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Primary => "primary",
            NodeRole::Replica => "replica",
            NodeRole::Pgbouncer => "pgbouncer",
        }
    }
}

/// `[[targets]]` as written: one node of the fleet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// How `--target` and the reports name it.
    pub name: toml::Spanned<String>,
    /// Its connection string (URL or key=value); gaps are filled as for [database].
    pub url: toml::Spanned<String>,
    /// primary, replica or pgbouncer.
    pub role: NodeRole,
    /// pgbouncer: its admin console (dbname pgbouncer), read by pool-status.
    #[serde(default)]
    pub admin_url: Option<String>,
    /// pgbouncer: how it pools ("transaction" or "session"); default: find out.
    #[serde(default)]
    pub pooling: crate::db::Pooling,
}

section! {
    /// `[database]`: used for what the connection string and the PG* environment leave out.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct DatabaseSection {
        /// The connection string, with its place in the file for messages.
        pub url: Option<toml::Spanned<String>> = None,
        /// The database when neither the URL, a service nor PGDATABASE names one.
        pub name: String = DEFAULT_DATABASE.into(),
        /// How the server sees our connections (pg_stat_activity).
        pub application_name: String = DEFAULT_APPLICATION_NAME.into(),
        /// Give up on an unreachable server after this, per host tried.
        pub connect_timeout: HumanDuration = HumanDuration::secs(10),
        /// How server connections behind ours are shared: "auto" (find out),
        /// "session" (PostgreSQL or a session-mode pooler), "transaction"
        /// (pgbouncer transaction mode: no prepared statements, no session state).
        pub pooling: crate::db::Pooling = crate::db::Pooling::Auto,
    }
}

section! {
    /// `[pool]`: the connection pool, named after the report's SQLAlchemy options.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct PoolSettings {
        /// Connections kept open (r2d2 `min_idle`).
        #[serde(deserialize_with = "nonzero")]
        pub size: u32 = 20,
        /// Extra connections allowed under load (`max_size = size + max_overflow`).
        pub max_overflow: u32 = 40,
        /// Test each connection on checkout.
        pub pre_ping: bool = true,
        /// Replace connections older than this.
        pub recycle: HumanDuration = HumanDuration::secs(3600),
        /// How long a checkout may wait for a free connection.
        pub timeout: HumanDuration = HumanDuration::secs(30),
    }
}

impl PoolSettings {
    pub fn max_size(&self) -> u32 {
        self.size.saturating_add(self.max_overflow)
    }
}

section! {
    /// `[alert]`: when pool-status, benchmark and verify call something a problem.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct AlertSettings {
        /// pool-status exits 1 above this share of max_size in use.
        #[serde(deserialize_with = "percent")]
        pub pool_usage_percent: f64 = 80.0,
        /// benchmark and verify flag queries slower than this.
        pub query_ms: f64 = 100.0,
        /// pool-status (--pgbouncer) exits 1 when a pgbouncer database's clients
        /// waited longer than this on average over its last stats_period (SHOW
        /// STATS avg_wait_time): queueing between two snapshots. A client
        /// waiting at the snapshot (cl_waiting) alerts whatever its wait.
        pub pgbouncer_avg_wait: HumanDuration = HumanDuration(Duration::from_millis(50)),
    }
}

section! {
    /// `[indexes]`: the managed index set and how builds are bounded.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct IndexSettings {
        /// None: the compiled-in V8.5 set. Relative to the config file.
        pub file: Option<PathBuf> = None,
        /// None: chosen by build mode (short for plain builds, longer for concurrent).
        #[serde(deserialize_with = "some_duration")]
        pub lock_timeout: Option<Duration> = None,
        /// Upper bound for one index build.
        #[serde(deserialize_with = "duration")]
        pub statement_timeout: Duration = Duration::from_secs(2 * 3600),
        /// Retries (with backoff) after a lock timeout.
        pub lock_retries: u32 = 3,
    }
}

section! {
    /// `[benchmark]`: the query suite and how it is timed.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct BenchmarkSettings {
        /// None: the compiled-in dashboard suite. Relative to the config file.
        pub file: Option<PathBuf> = None,
        /// Untimed runs per query before timing starts.
        pub warmup: u32 = 3,
        /// Timed runs per query.
        #[serde(deserialize_with = "nonzero")]
        pub iterations: u32 = 20,
        /// Parameter draws are reproducible for a seed.
        pub seed: u64 = 42,
        /// `--baseline` flags queries this much slower than the last run.
        #[serde(deserialize_with = "percent")]
        pub baseline_slower_percent: f64 = 20.0,
    }
}

/// `[verify]`, resolved: the pool the deploy must have and the checks' limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "VerifySection")]
pub struct VerifySettings {
    /// The pool the deploy should have.
    pub target: PoolSettings,
    /// Sessions idle in transaction or running longer than this are reported.
    pub session_age: Duration,
    /// Rows modified since the last ANALYZE, as a share of the table, before WARN.
    pub modified_percent: f64,
    /// Runs per query for the speed check's median.
    pub runs: u32,
    /// The bound on each of the speed check's timed runs; None: a multiple of
    /// its threshold (commands::verify::speed_timeout).
    pub statement_timeout: Option<Duration>,
    /// The application's processes sharing the database, each with the pool.
    pub instances: u32,
    /// A standby's replay this far behind, in time: WARN.
    pub replication_lag: Duration,
    /// A standby's replay this far behind, in MB of WAL: WARN.
    pub replication_lag_mb: u64,
    /// A replication slot keeping more WAL than this, in MB: WARN.
    pub slot_retained_mb: u64,
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySection::default().into()
    }
}

section! {
    /// `[verify]` as written: the target pool's keys sit flat beside the
    /// checks' own, and default to `[pool]`'s defaults.
    #[derive(Debug, Deserialize)]
    pub struct VerifySection {
        #[serde(deserialize_with = "nonzero")]
        pub size: u32 = PoolSettings::default().size,
        pub max_overflow: u32 = PoolSettings::default().max_overflow,
        pub pre_ping: bool = PoolSettings::default().pre_ping,
        pub recycle: HumanDuration = PoolSettings::default().recycle,
        pub timeout: HumanDuration = PoolSettings::default().timeout,
        /// Idle-in-transaction or running longer: WARN.
        #[serde(deserialize_with = "duration")]
        pub session_age: Duration = Duration::from_secs(300),
        /// Rows changed since the last ANALYZE, as % of the table: WARN.
        #[serde(deserialize_with = "percent")]
        pub modified_percent: f64 = 10.0,
        /// Runs per query for the speed check's median.
        #[serde(deserialize_with = "nonzero")]
        pub runs: u32 = 5,
        /// Each timed run of the speed check may take this long (None: 10x the threshold, at least 1 s).
        #[serde(deserialize_with = "some_duration")]
        pub statement_timeout: Option<Duration> = None,
        /// The application's processes, each with its own pool: headroom holds max_size × this.
        #[serde(deserialize_with = "nonzero")]
        pub instances: u32 = 1,
        /// Replay behind by more than this (now() - last replayed commit, while WAL waits): WARN.
        #[serde(deserialize_with = "duration")]
        pub replication_lag: Duration = Duration::from_secs(30),
        /// Replay behind by more than this many MB of WAL: WARN.
        pub replication_lag_mb: u64 = 64,
        /// A replication slot retaining more than this many MB of WAL: WARN.
        pub slot_retained_mb: u64 = 1024,
    }
}

impl From<VerifySection> for VerifySettings {
    fn from(v: VerifySection) -> Self {
        VerifySettings {
            target: PoolSettings {
                size: v.size,
                max_overflow: v.max_overflow,
                pre_ping: v.pre_ping,
                recycle: v.recycle,
                timeout: v.timeout,
            },
            session_age: v.session_age,
            modified_percent: v.modified_percent,
            runs: v.runs,
            statement_timeout: v.statement_timeout,
            instances: v.instances,
            replication_lag: v.replication_lag,
            replication_lag_mb: v.replication_lag_mb,
            slot_retained_mb: v.slot_retained_mb,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_defaults() {
        let file: FileConfig = toml::from_str("").unwrap();
        let d = FileConfig::default();
        assert_eq!(file.database, d.database);
        assert_eq!(file.pool, d.pool);
        assert_eq!(file.alert, d.alert);
        assert_eq!(file.indexes, d.indexes);
        assert_eq!(file.benchmark, d.benchmark);
        assert_eq!(file.verify, d.verify);
        // An empty section too, and [verify]'s pool is [pool]'s.
        let file: FileConfig = toml::from_str("[pool]\n[verify]\n").unwrap();
        assert_eq!(file.pool, d.pool);
        assert_eq!(file.verify.target, d.pool);
    }

    #[test]
    fn a_key_overrides_only_itself() {
        let file: FileConfig =
            toml::from_str("[verify]\nsize = 3\n[indexes]\nlock_timeout = \"2s\"\n").unwrap();
        assert_eq!(file.verify.target.size, 3);
        assert_eq!(file.verify.target.max_overflow, 40);
        assert_eq!(file.verify.runs, 5);
        assert_eq!(file.indexes.lock_timeout, Some(Duration::from_secs(2)));
        assert_eq!(file.indexes.lock_retries, 3);
    }
}
