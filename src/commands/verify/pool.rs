//! The connection pool checks: the deploy's pool settings against the targets
//! (config), the pool really opening with health checks on (pool), and the
//! server having room for it (headroom): the V8.5 report's first fix.

use super::context::Ctx;
use super::Verdict;
use crate::config::{Config, HumanDuration};
use crate::db::{Pool, Warm};
use anyhow::Result;
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
/// leave room for the pool's max_size.
pub fn headroom(ctx: &mut Ctx) -> Result<Verdict> {
    let max_size = ctx.config.pool.max_size();
    let row = ctx.client()?.query_one(
        "SELECT current_setting('max_connections')::int, \
                current_setting('superuser_reserved_connections')::int, \
                COALESCE(NULLIF(current_setting('reserved_connections', true), '')::int, 0), \
                (SELECT count(*)::int FROM pg_stat_activity \
                  WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() \
                    AND application_name IS DISTINCT FROM $1)",
        &[&pool_application_name()],
    )?;
    let (max_connections, superuser, reserved, in_use): (i32, i32, i32, i32) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let n = Headroom {
        max_connections: i64::from(max_connections),
        reserved: i64::from(superuser) + i64::from(reserved),
        in_use: i64::from(in_use),
        pool_max: i64::from(max_size),
    };
    Ok(n.verdict())
}

/// The numbers of the headroom check.
#[derive(Debug, Clone, PartialEq)]
pub struct Headroom {
    pub max_connections: i64,
    /// superuser_reserved_connections + reserved_connections (PostgreSQL 16+).
    pub reserved: i64,
    /// Client backends open now, ours left out.
    pub in_use: i64,
    pub pool_max: i64,
}

impl Headroom {
    pub fn free(&self) -> i64 {
        (self.max_connections - self.reserved - self.in_use).max(0)
    }

    pub fn verdict(&self) -> Verdict {
        let free = self.free();
        let sum = format!(
            "max_connections {} - reserved {} - in use {} = {free} free",
            self.max_connections, self.reserved, self.in_use
        );
        if self.pool_max <= free {
            return Verdict::pass(format!(
                "{sum}; the pool's max_size {} fits ({} to spare)",
                self.pool_max,
                free - self.pool_max
            ));
        }
        let short = self.pool_max - free;
        Verdict::warn(
            format!(
                "a {}-connection pool (max_size) cannot fit in {free} free slots: {sum}",
                self.pool_max
            ),
            format!(
                "raise max_connections to at least {} (ALTER SYSTEM SET max_connections = {}; then restart PostgreSQL), \
                 or lower [pool] size / max_overflow by {short}, or close idle connections of other clients",
                self.max_connections + short,
                self.max_connections + short
            ),
        )
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
        };
        assert_eq!(h.free(), 37);
        let v = h.verdict();
        assert_eq!(v.status, super::super::Status::Warn);
        assert!(
            v.detail
                .starts_with("a 60-connection pool (max_size) cannot fit in 37 free slots"),
            "{}",
            v.detail
        );
        assert!(v.fix.unwrap().contains("max_connections = 123"));
        let ok = Headroom {
            in_use: 10,
            ..h.clone()
        };
        assert_eq!(ok.verdict().status, super::super::Status::Pass);
    }

    #[test]
    fn toml_values_are_written_as_toml() {
        assert_eq!(toml_value("20"), "20");
        assert_eq!(toml_value("on"), "true");
        assert_eq!(toml_value("1h"), "\"1h\"");
    }
}
