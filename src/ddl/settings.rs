//! The flags create-indexes and drop-indexes share, and the session settings
//! they resolve to (flag, else config, else a default chosen by build mode).
//!
//! The lock timeout default depends on the mode because the two kinds of build
//! wait differently: a plain CREATE INDEX waiting for its SHARE lock queues
//! every writer behind it, so it must give up quickly; a concurrent build (or a
//! concurrent drop) does not block writers while it waits for older
//! transactions, so it may wait longer, bounded by the statement timeout.

use crate::config::{Config, HumanDuration};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Lock timeout of a plain build unless configured: writers queue behind it.
pub const PLAIN_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// Lock timeout of a concurrent build or drop unless configured: writers do not wait for it.
pub const CONCURRENT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Options shared by create-indexes and drop-indexes.
#[derive(Debug, Clone, clap::Args)]
pub struct SessionArgs {
    /// Index file to use instead of the built-in V8.5 set [config: [indexes] file]
    #[arg(long, value_name = "FILE")]
    pub indexes: Option<PathBuf>,

    /// How long one statement may wait for a lock before it is retried
    /// [default: 5s for plain builds, 1m for concurrent ones; config: [indexes] lock_timeout]
    #[arg(long, value_name = "DURATION")]
    pub lock_timeout: Option<HumanDuration>,

    /// The longest any one statement may run [default: 2h; config: [indexes] statement_timeout]
    #[arg(long, value_name = "DURATION")]
    pub statement_timeout: Option<HumanDuration>,

    /// Retries after a lock timeout, pausing 1s, 2s, 4s, ... between them
    /// [default: 3; config: [indexes] lock_retries]
    #[arg(long, value_name = "N")]
    pub lock_retries: Option<u32>,

    /// When another run holds the lock on the table, wait for it instead of exiting 2
    #[arg(long)]
    pub wait: bool,

    /// Print the plan and the exact SQL it would run; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

crate::cli::clap_default!(SessionArgs);

impl SessionArgs {
    /// The index file: the flag, else the config's, else None (the built-in set).
    pub fn index_file<'a>(&'a self, config: &'a Config) -> Option<&'a Path> {
        self.indexes.as_deref().or(config.indexes.file.as_deref())
    }
}

/// What every session of a run is set up with.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSettings {
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
    pub lock_retries: u32,
    /// Shown in pg_stat_activity, so a DBA (and a second run) can tell who holds what.
    pub application_name: String,
    /// Server settings for the build's sessions (name, value); empty: the server's own.
    pub server_settings: Vec<(&'static str, String)>,
    /// Concurrent work: the lock timeout bounds only the wait for the table
    /// lock (enforced by the watcher), the statement timeout the waits for
    /// older transactions, which do not block writers. Plain builds queue
    /// writers behind every wait, so the server's lock timeout bounds them all.
    pub watch_lock_waits: bool,
}

impl SessionSettings {
    /// Flag, else config, else the mode's default; the lock timeout never exceeds the statement timeout.
    pub fn resolve(
        config: &Config,
        args: &SessionArgs,
        concurrently: bool,
        command: &str,
    ) -> SessionSettings {
        let statement_timeout = args
            .statement_timeout
            .map(|d| d.0)
            .unwrap_or(config.indexes.statement_timeout);
        let default_lock = if concurrently {
            CONCURRENT_LOCK_TIMEOUT
        } else {
            PLAIN_LOCK_TIMEOUT
        };
        let lock_timeout = args
            .lock_timeout
            .map(|d| d.0)
            .or(config.indexes.lock_timeout)
            .unwrap_or(default_lock)
            .min(statement_timeout);
        SessionSettings {
            lock_timeout,
            statement_timeout,
            lock_retries: args.lock_retries.unwrap_or(config.indexes.lock_retries),
            application_name: format!("{} {command}", config.application_name()),
            server_settings: Vec::new(),
            watch_lock_waits: concurrently,
        }
    }

    /// The pause before retry `attempt` (1-based): 1s, 2s, 4s, ... capped at 30s.
    pub fn backoff(attempt: u32) -> Duration {
        Duration::from_secs(1u64 << attempt.saturating_sub(1).min(5)).min(Duration::from_secs(30))
    }

    /// One line for reports: "lock_timeout 1m, statement_timeout 2h, 3 lock retries".
    pub fn describe(&self) -> String {
        let mut text = format!(
            "lock_timeout {}, statement_timeout {}, {} lock retries",
            humantime::format_duration(self.lock_timeout),
            humantime::format_duration(self.statement_timeout),
            self.lock_retries
        );
        for (name, value) in &self.server_settings {
            text.push_str(&format!(", {name} {value}"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_timeout_depends_on_mode_and_is_bounded() {
        let mut config = Config::defaults();
        let args = SessionArgs::default();
        let plain = SessionSettings::resolve(&config, &args, false, "create-indexes");
        let conc = SessionSettings::resolve(&config, &args, true, "create-indexes");
        assert_eq!(plain.lock_timeout, PLAIN_LOCK_TIMEOUT);
        assert_eq!(conc.lock_timeout, CONCURRENT_LOCK_TIMEOUT);
        assert_eq!(conc.application_name, "o2o-db create-indexes");
        config.indexes.lock_timeout = Some(Duration::from_secs(9));
        assert_eq!(
            SessionSettings::resolve(&config, &args, true, "x").lock_timeout,
            Duration::from_secs(9)
        );
        let args = SessionArgs {
            lock_timeout: Some(HumanDuration(Duration::from_secs(600))),
            statement_timeout: Some(HumanDuration(Duration::from_secs(30))),
            lock_retries: Some(0),
            ..SessionArgs::default()
        };
        let s = SessionSettings::resolve(&config, &args, true, "x");
        assert_eq!(s.lock_timeout, Duration::from_secs(30));
        assert_eq!(s.lock_retries, 0);
        assert_eq!(SessionSettings::backoff(1), Duration::from_secs(1));
        assert_eq!(SessionSettings::backoff(3), Duration::from_secs(4));
        assert_eq!(SessionSettings::backoff(40), Duration::from_secs(30));
    }
}
