//! The connection pool checks: the deploy's pool settings against the targets
//! (config), the pool really opening with health checks on (pool), and the
//! server having room for it (headroom): the V8.5 report's first fix.

use super::context::Ctx;
use super::Verdict;
use crate::config::{Config, HumanDuration};
use crate::db::{pgbouncer, Pool, Pooling, Warm};
use anyhow::Result;
use postgres::types::Type;
use std::time::Instant;

/// config: every [pool] setting meets its [verify] target. More connections
/// and overflow are fine; recycling and checkout timeouts may be shorter, not longer.
pub fn config(ctx: &mut Ctx) -> Result<Verdict> {
    let (pool, target) = (&ctx.config.pool, &ctx.config.verify.target);
    // (key in [pool], label, setting, target, meets the target): one row a line.
    #[rustfmt::skip]
    let rows = [
        ("size", "pool size", pool.size.to_string(), target.size.to_string(), pool.size >= target.size),
        ("max_overflow", "max_overflow", pool.max_overflow.to_string(), target.max_overflow.to_string(), pool.max_overflow >= target.max_overflow),
        ("pre_ping", "pre_ping (health check on checkout)", on_off(pool.pre_ping).into(), on_off(target.pre_ping).into(), pool.pre_ping || !target.pre_ping),
        ("recycle", "recycle", duration(pool.recycle), duration(target.recycle), pool.recycle.0 <= target.recycle.0),
        ("timeout", "timeout", duration(pool.timeout), duration(target.timeout), pool.timeout.0 <= target.timeout.0),
    ];
    let mut lines = Vec::new();
    let mut fixes = Vec::new();
    for (key, label, have, want, ok) in rows {
        let mark = if ok { "" } else { "  <- off target" };
        lines.push(format!("{label}: {have} (target: {want}){mark}"));
        if !ok {
            fixes.push(format!("{key} = {}", toml_value(&want)));
        }
    }
    let detail = lines.join("\n");
    if fixes.is_empty() {
        return Ok(Verdict::pass(detail));
    }
    let file = ctx
        .config
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "o2o-db.toml".into());
    Ok(Verdict::fail(
        detail,
        format!(
            "in {file}, under [pool], set:\n{}\n(or change the targets under [verify] if they are wrong)",
            fixes.join("\n")
        ),
    ))
}

/// The application_name of the pool check's connections: the headroom and
/// sessions checks leave them out, however many r2d2 opens. Short, because
/// the server truncates names beyond 63 bytes.
pub fn pool_application_name() -> String {
    format!("o2o-db verify pool {}", std::process::id())
}

/// pool: the pool opens its `size` connections (r2d2 min_idle) within its
/// timeout, and tests connections on checkout. Runs beside the other checks
/// on connections of its own.
pub fn pool(config: &Config) -> Result<Verdict> {
    let settings = &config.pool;
    let mut named = config.clone();
    named.conn.application_name = Some(pool_application_name());
    let started = Instant::now();
    let pool = match Pool::open(&named, Warm::Full) {
        Ok(pool) => pool,
        Err(e) => {
            return Ok(Verdict::fail(
                format!("{e:#}"),
                "make room on the server (see the headroom check) or lower [pool] size; check the server log for the refusal",
            ));
        }
    };
    let open_ms = started.elapsed().as_secs_f64() * 1000.0;
    let opened = pool.state().connections;
    let checks_on = pool.r2d2().test_on_check_out();
    let detail = format!(
        "opened {opened} of {} connections (min_idle) in {open_ms:.0} ms (timeout {}); max_size {}; health check on checkout: {}",
        settings.size,
        duration(settings.timeout),
        pool.max_size(),
        on_off(checks_on)
    );
    if !checks_on {
        return Ok(Verdict::fail(
            detail,
            "set pre_ping = true under [pool]: without it a connection the server or a firewall closed is handed to the application",
        ));
    }
    Ok(Verdict::pass(detail))
}

/// headroom: max_connections minus reserved slots minus backends in use must
/// leave room for every application instance's pool; through pgbouncer in
/// transaction mode, the instances' pools must fit in its max_client_conn and
/// the server connections it may open in those free slots.
pub fn headroom(ctx: &mut Ctx) -> Result<Verdict> {
    let instances = ctx.config.verify.instances;
    let pool_max = i64::from(ctx.config.pool.max_size()) * i64::from(instances);
    let conn = ctx.config.conn.clone();
    let pooling = ctx.config.pooling;
    let through = match pooling.resolve_on(ctx.client()?, &conn)? {
        Pooling::Transaction => {
            let mut console = conn.clone();
            console.dbname = Some(pgbouncer::ADMIN_DATABASE.to_string());
            Some(pgbouncer::status(&console).map_err(|e| (console.target(), format!("{e:#}"))))
        }
        _ => None,
    };
    let pooler_pids: Vec<i32> = match &through {
        Some(Ok(status)) => status.server_pids.clone(),
        _ => Vec::new(),
    };
    let row = ctx.client()?.query_typed_one(
        "SELECT current_setting('max_connections')::int, \
                current_setting('superuser_reserved_connections')::int, \
                COALESCE(NULLIF(current_setting('reserved_connections', true), '')::int, 0), \
                (SELECT count(*)::int FROM pg_stat_activity \
                  WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() \
                    AND application_name IS DISTINCT FROM $1 AND pid <> ALL($2))",
        &[
            (&pool_application_name(), Type::TEXT),
            (&pooler_pids, Type::INT4_ARRAY),
        ],
    )?;
    let (max_connections, superuser, reserved, in_use): (i32, i32, i32, i32) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let n = Headroom {
        max_connections: i64::from(max_connections),
        reserved: i64::from(superuser) + i64::from(reserved),
        in_use: i64::from(in_use),
        pool_max,
        instances,
    };
    Ok(match through {
        None => n.verdict(),
        Some(Ok(status)) => n.through_pgbouncer(&status, conn.dbname.as_deref().unwrap_or("")),
        Some(Err((console, why))) => Verdict::warn(
            format!(
                "{} pools server connections per transaction: the server's headroom is pgbouncer's \
                 to use, and its admin console at {console} could not be read ({why})",
                conn.target()
            ),
            "give verify's role a place in pgbouncer's stats_users (or admin_users), so verify can read SHOW CONFIG and SHOW POOLS",
        ),
    })
}

/// The numbers of the headroom check.
#[derive(Debug, Clone, PartialEq)]
pub struct Headroom {
    pub max_connections: i64,
    /// superuser_reserved_connections + reserved_connections (PostgreSQL 16+).
    pub reserved: i64,
    /// Client backends open now, ours (and a pooler's) left out.
    pub in_use: i64,
    /// max_size × instances.
    pub pool_max: i64,
    /// [verify] instances: the application's processes, each with its pool.
    pub instances: u32,
}

impl Headroom {
    pub fn free(&self) -> i64 {
        (self.max_connections - self.reserved - self.in_use).max(0)
    }

    /// "the pool's max_size 60" or "3 instances' pools of max_size 60 (180)".
    fn pools(&self) -> String {
        if self.instances <= 1 {
            format!("the pool's max_size {}", self.pool_max)
        } else {
            format!(
                "{} instances' pools of max_size {} ({})",
                self.instances,
                self.pool_max / i64::from(self.instances),
                self.pool_max
            )
        }
    }

    fn sum(&self) -> String {
        format!(
            "max_connections {} - reserved {} - in use {} = {} free",
            self.max_connections,
            self.reserved,
            self.in_use,
            self.free()
        )
    }

    pub fn verdict(&self) -> Verdict {
        let free = self.free();
        if self.pool_max <= free {
            return Verdict::pass(format!(
                "{}; {} fits ({} to spare)",
                self.sum(),
                self.pools(),
                free - self.pool_max
            ));
        }
        let short = self.pool_max - free;
        Verdict::warn(
            format!(
                "{} cannot fit in {free} free slots: {}",
                self.pools(),
                self.sum()
            ),
            format!(
                "raise max_connections to at least {} (ALTER SYSTEM SET max_connections = {}; then restart PostgreSQL), \
                 or lower [pool] size / max_overflow by {short} in all, or close idle connections of other clients",
                self.max_connections + short,
                self.max_connections + short
            ),
        )
    }

    /// Through pgbouncer: the application's pools against its max_client_conn,
    /// and the server connections it may open for `database` against the free slots.
    pub fn through_pgbouncer(&self, status: &pgbouncer::BouncerStatus, database: &str) -> Verdict {
        let s = &status.settings;
        let pools = status
            .pools
            .iter()
            .filter(|p| p.database == database)
            .count()
            .max(1) as i64;
        let per_pool = s.default_pool_size + s.reserve_pool_size;
        let servers = if s.max_db_connections > 0 {
            s.max_db_connections.min(per_pool * pools)
        } else {
            per_pool * pools
        };
        let free = self.free();
        let clients_ok = s.max_client_conn <= 0 || self.pool_max <= s.max_client_conn;
        let servers_ok = servers <= free;
        let detail = format!(
            "through pgbouncer ({}, transaction pooling): {} against its max_client_conn {}; \
             it opens at most {servers} server connections for {database} (default_pool_size {} + \
             reserve_pool_size {} per pool{}) against {}",
            status.version,
            self.pools(),
            s.max_client_conn,
            s.default_pool_size,
            s.reserve_pool_size,
            if s.max_db_connections > 0 {
                format!(", max_db_connections {}", s.max_db_connections)
            } else {
                String::new()
            },
            self.sum()
        );
        match (clients_ok, servers_ok) {
            (true, true) => Verdict::pass(detail),
            (false, _) => Verdict::warn(
                detail,
                format!(
                    "raise pgbouncer's max_client_conn to at least {} (clients past it are refused), or lower [pool] size / max_overflow",
                    self.pool_max
                ),
            ),
            (true, false) => Verdict::warn(
                detail,
                format!(
                    "lower pgbouncer's default_pool_size (or set max_db_connections = {free}), or raise max_connections to at least {}",
                    self.max_connections + servers - free
                ),
            ),
        }
    }
}

fn on_off(v: bool) -> &'static str {
    if v {
        "on"
    } else {
        "off"
    }
}

fn duration(d: HumanDuration) -> String {
    humantime::format_duration(d.0).to_string()
}

/// A value as it is written in o2o-db.toml.
fn toml_value(shown: &str) -> String {
    match shown {
        "on" => "true".into(),
        "off" => "false".into(),
        s if s.parse::<u64>().is_ok() => s.into(),
        s => format!("\"{s}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_counts_reserved_and_used_slots() {
        let h = Headroom {
            max_connections: 100,
            reserved: 3,
            in_use: 60,
            pool_max: 60,
            instances: 1,
        };
        assert_eq!(h.free(), 37);
        let v = h.verdict();
        assert_eq!(v.status, super::super::Status::Warn);
        assert!(
            v.detail
                .starts_with("the pool's max_size 60 cannot fit in 37 free slots"),
            "{}",
            v.detail
        );
        assert!(v.fix.unwrap().contains("max_connections = 123"));
        let ok = Headroom {
            in_use: 10,
            ..h.clone()
        };
        assert_eq!(ok.verdict().status, super::super::Status::Pass);
        // Three instances of the application: three pools to hold.
        let three = Headroom {
            in_use: 10,
            pool_max: 180,
            instances: 3,
            ..h.clone()
        };
        let v = three.verdict();
        assert_eq!(v.status, super::super::Status::Warn);
        assert!(
            v.detail
                .starts_with("3 instances' pools of max_size 60 (180) cannot fit in 87 free slots"),
            "{}",
            v.detail
        );
        assert!(v.fix.unwrap().contains("by 93 in all"));
    }

    #[test]
    fn toml_values_are_written_as_toml() {
        assert_eq!(toml_value("20"), "20");
        assert_eq!(toml_value("on"), "true");
        assert_eq!(toml_value("1h"), "\"1h\"");
    }
}
