//! The tests' pgbouncer: o2o_db::pg_sandbox::Bouncer in front of the shared
//! sandbox (or another server), panicking when it cannot start.

use o2o_db::pg_sandbox::Sandbox;

pub struct Bouncer {
    inner: o2o_db::pg_sandbox::Bouncer,
    pub port: u16,
}

impl Bouncer {
    /// pgbouncer for `dbname` on the shared sandbox, in `pool_mode`, with
    /// `default_pool_size` server connections per pool.
    pub fn start(dbname: &str, pool_mode: &str, pool_size: u32) -> Bouncer {
        Bouncer::start_with(dbname, pool_mode, pool_size, &[])
    }

    /// `start` with more [pgbouncer] settings, e.g. ("stats_period", "2").
    pub fn start_with(
        dbname: &str,
        pool_mode: &str,
        pool_size: u32,
        settings: &[(&str, &str)],
    ) -> Bouncer {
        Bouncer::started(o2o_db::pg_sandbox::Bouncer::start_with(
            super::sandbox(),
            dbname,
            pool_mode,
            pool_size,
            settings,
        ))
    }

    /// The same, in front of `sandbox` (a fleet's primary, say).
    pub fn start_for(sandbox: &Sandbox, dbname: &str, pool_mode: &str, pool_size: u32) -> Bouncer {
        Bouncer::started(o2o_db::pg_sandbox::Bouncer::start(
            sandbox, dbname, pool_mode, pool_size,
        ))
    }

    fn started(bouncer: anyhow::Result<o2o_db::pg_sandbox::Bouncer>) -> Bouncer {
        let inner = bouncer.unwrap_or_else(|e| panic!("{e:#}"));
        Bouncer {
            port: inner.port(),
            inner,
        }
    }

    /// A URL through pgbouncer to `dbname` (the admin console is `pgbouncer`).
    pub fn url(&self, dbname: &str) -> String {
        self.inner.url(dbname)
    }
}
