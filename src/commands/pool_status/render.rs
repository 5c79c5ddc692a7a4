//! The pool-status table: pool, load, server, leaks, then the verdict line
//! last, where a DBA's eye (and `tail -1` in cron) lands.

use super::{BouncerSection, LoadReport, PoolStatusReport};
use crate::db::status::query_start;
use crate::report::{self, ms};
use anyhow::Result;
use comfy_table::CellAlignment;
use std::io::Write;

/// How much of a leaked session's statement fits in the table.
const QUERY_COLUMN_CHARS: usize = 60;

pub fn table(r: &PoolStatusReport, w: &mut dyn Write) -> Result<()> {
    writeln!(
        w,
        "pool-status of {} at {}",
        crate::conninfo::answered_by(&r.target, &r.reached),
        r.taken_at
    )?;
    writeln!(w)?;
    pool(r, w)?;
    if let Some(load) = &r.load {
        writeln!(w)?;
        load_section(load, w)?;
    }
    writeln!(w)?;
    server(r, w)?;
    writeln!(w)?;
    leaks(r, w)?;
    if let Some(b) = &r.pgbouncer {
        writeln!(w)?;
        bouncer(b, w)?;
    }
    writeln!(w)?;
    app(r, w)?;
    Ok(())
}

fn bouncer(b: &BouncerSection, w: &mut dyn Write) -> Result<()> {
    let st = &b.status;
    let cfg = &st.settings;
    let clients: i64 = st.clients.iter().map(|c| c.connections).sum();
    writeln!(
        w,
        "pgbouncer at {} ({}): default_pool_size {} · reserve_pool_size {} · max_client_conn {} ({} in use) · max_db_connections {}",
        st.console,
        st.version,
        cfg.default_pool_size,
        cfg.reserve_pool_size,
        cfg.max_client_conn,
        clients,
        match cfg.max_db_connections {
            0 => "unlimited".to_string(),
            n => n.to_string(),
        }
    )?;
    if st.pools.is_empty() {
        writeln!(w, "  no pools yet (no client has connected through it)")?;
    } else {
        let mut t = report::table();
        t.set_header([
            "database",
            "user",
            "mode",
            "pool size",
            "clients active",
            "waiting",
            "longest wait",
            "avg wait",
            "servers active",
            "idle",
            "used",
            "avg query",
        ]);
        for p in &st.pools {
            let avg_query = st
                .stats_of(&p.database)
                .map_or(0.0, |s| s.avg_query_seconds);
            t.add_row([
                p.database.clone(),
                p.user.clone(),
                p.pool_mode.clone(),
                p.pool_size.to_string(),
                p.clients_active.to_string(),
                p.clients_waiting.to_string(),
                age(p.max_wait_seconds),
                format!("{} ms", ms(b.avg_wait_seconds(p) * 1000.0)),
                p.servers_active.to_string(),
                p.servers_idle.to_string(),
                p.servers_used.to_string(),
                format!("{} ms", ms(avg_query * 1000.0)),
            ]);
        }
        right_align(&mut t, &[3, 4, 5, 6, 7, 8, 9, 10, 11]);
        writeln!(w, "{t}")?;
    }
    let alert_at = ms(b.avg_wait_alert_seconds * 1000.0);
    for p in st.pools.iter().filter(|p| b.pool_alerts(p)) {
        let limit = if p.is_full() {
            format!(
                "all {} of its pool_size server connections are busy: raise pgbouncer's default_pool_size \
                 (or this database's pool_size) within the server's max_connections, or find what holds them",
                p.pool_size
            )
        } else {
            format!(
                "{} of its pool_size {} server connections are busy: look at max_db_connections, \
                 max_user_connections or a paused database",
                p.servers_active, p.pool_size
            )
        };
        writeln!(
            w,
            "ALERT: pgbouncer pool {}/{}: {} waiting for a server connection (the longest {}), \
             avg wait {} ms over the last stats period (alert above {alert_at} ms); {limit}",
            p.database,
            p.user,
            plural(p.clients_waiting, "client"),
            age(p.max_wait_seconds),
            ms(b.avg_wait_seconds(p) * 1000.0),
        )?;
    }
    if !b.alert {
        writeln!(
            w,
            "OK: no client waits in pgbouncer, nor waited {alert_at} ms on average lately"
        )?;
    }
    Ok(())
}

fn pool(r: &PoolStatusReport, w: &mut dyn Write) -> Result<()> {
    let p = &r.pool;
    if r.load.is_some() {
        writeln!(w, "Pool: the one that carried the load, built from [pool]")?;
    } else {
        writeln!(
            w,
            "Pool: this o2o-db process's own, built from [pool] (the application's connections are under Server)"
        )?;
    }
    writeln!(
        w,
        "  size {} + max_overflow {} = max_size {} · pre_ping {} · recycle {} · timeout {}",
        p.size,
        p.max_overflow,
        p.max_size,
        if p.pre_ping { "on" } else { "off" },
        humantime::format_duration(p.recycle.0),
        humantime::format_duration(p.timeout.0)
    )?;
    writeln!(
        w,
        "  {} open · {} idle · {} checked out ({}% of {})",
        p.connections, p.idle, p.checked_out, p.usage_percent, p.max_size
    )?;
    writeln!(
        w,
        "  checkouts {} · waits {} (longest {} ms) · timeouts {} · connection errors {}",
        p.checkout.checkouts,
        p.checkout.waits,
        ms(p.checkout.wait_ms_max),
        p.checkout.timeouts,
        p.checkout.connection_errors
    )?;
    Ok(())
}

fn load_section(l: &LoadReport, w: &mut dyn Write) -> Result<()> {
    writeln!(
        w,
        "Load: {} sessions for {:.1} s, each holding its connection {} ms (application_name `{}`){}",
        l.sessions,
        l.duration_seconds,
        l.hold_ms,
        l.application,
        if l.interrupted {
            ", stopped by Ctrl-C"
        } else {
            ""
        }
    )?;
    writeln!(
        w,
        "  {} sessions done ({:.0}/s) · at most {} checked out at once",
        l.completed, l.sessions_per_second, l.peak_checked_out
    )?;
    writeln!(
        w,
        "  checkouts {} · waits {} (longest {} ms) · checkout p50 {} ms, p95 {} ms, p99 {} ms",
        l.checkouts,
        l.waits,
        ms(l.wait_ms_max),
        ms(l.checkout_ms_p50),
        ms(l.checkout_ms_p95),
        ms(l.checkout_ms_p99)
    )?;
    writeln!(
        w,
        "  timeouts {} (a checkout gives up after {}) · connection errors {} · query errors {}",
        l.timeouts,
        humantime::format_duration(std::time::Duration::from_secs_f64(l.timeout_ms / 1000.0)),
        l.connection_errors,
        l.query_errors
    )?;
    if let Some(e) = &l.first_error {
        writeln!(w, "  first error: {e}")?;
    }
    if let Some(b) = &l.pgbouncer {
        writeln!(
            w,
            "  pgbouncer pool {} (SHOW POOLS, {} samples): at most {} clients waiting, {} of its pool_size {} servers active, longest wait {}",
            b.database,
            b.samples,
            b.peak_clients_waiting,
            b.peak_servers_active,
            b.pool_size,
            age(b.max_wait_seconds)
        )?;
    }
    let bouncer_limit = l.pgbouncer.as_ref().filter(|b| b.was_the_limit());
    if let Some(b) = bouncer_limit {
        let carried = if l.failed() {
            "the pool did NOT carry the load: sessions failed"
        } else {
            "the pool carried the load"
        };
        writeln!(
            w,
            "  {carried}; the limit was pgbouncer's: its clients queued for one of the {} server connections \
             of its default_pool_size (or this database's pool_size). Raise that in pgbouncer.ini within the \
             server's max_connections; [pool] max_overflow only adds clients to pgbouncer's queue",
            b.pool_size
        )?;
        return Ok(());
    }
    let verdict = if l.failed() {
        "the pool did NOT carry the load: sessions failed (raise [pool] max_overflow or timeout, or find what holds connections)"
    } else if l.waits > 0 {
        "the pool carried the load: some checkouts queued, none failed"
    } else {
        "the pool carried the load without queueing"
    };
    writeln!(w, "  {verdict}")?;
    Ok(())
}

fn server(r: &PoolStatusReport, w: &mut dyn Write) -> Result<()> {
    let s = &r.server;
    writeln!(
        w,
        "Server: max_connections {} · reserved {} · {} backends in use ({}% of the {} open to ordinary roles)",
        s.max_connections,
        s.reserved,
        s.backends,
        s.usage_percent,
        s.max_connections - s.reserved
    )?;
    if s.by_application.is_empty() {
        writeln!(w, "  no client connections in {}", s.database)?;
    } else {
        writeln!(
            w,
            "  connections in {} by application and state:",
            s.database
        )?;
        let mut t = report::table();
        t.set_header(vec![
            "application",
            "state",
            "connections",
            "oldest in state",
        ]);
        for g in &s.by_application {
            t.add_row(vec![
                application(&g.application),
                g.state.clone(),
                g.connections.to_string(),
                age(g.oldest_seconds),
            ]);
        }
        right_align(&mut t, &[2, 3]);
        writeln!(w, "{t}")?;
    }
    if !s.pooler_servers.is_empty() {
        let states: Vec<String> = s
            .pooler_servers
            .iter()
            .map(|g| {
                format!(
                    "{} {} (oldest {})",
                    g.connections,
                    g.state,
                    age(g.oldest_seconds)
                )
            })
            .collect();
        writeln!(
            w,
            "  pgbouncer's server connections in {}: {} (its pool, not an application's; \
             they carry their last client's application_name)",
            s.database,
            states.join(" · ")
        )?;
    }
    if let Some(role) = &s.restricted_role {
        writeln!(
            w,
            "  role {role} sees only its own sessions' state ({} of other roles show none): \
             GRANT pg_read_all_stats TO {};",
            plural(s.hidden_sessions, "session"),
            crate::ident::quote_ident(role)
        )?;
    }
    Ok(())
}

fn leaks(r: &PoolStatusReport, w: &mut dyn Write) -> Result<()> {
    let s = &r.server;
    let threshold = age(s.session_age_seconds);
    if s.idle_in_transaction.is_empty() {
        writeln!(w, "Idle in transaction longer than {threshold}: none")?;
        return Ok(());
    }
    writeln!(
        w,
        "Idle in transaction longer than {threshold}: {} (leaks: each holds a connection, its locks and the vacuum horizon)",
        plural(s.idle_in_transaction.len() as i64, "session")
    )?;
    let mut t = report::table();
    t.set_header(vec![
        "pid",
        "application",
        "user",
        "client",
        "idle for",
        "transaction open",
        "last query",
    ]);
    for l in &s.idle_in_transaction {
        let state = if l.state.ends_with("(aborted)") {
            " (aborted)"
        } else {
            ""
        };
        t.add_row(vec![
            l.pid.to_string(),
            application(&l.application),
            l.user.clone(),
            l.client_addr.clone(),
            format!("{}{state}", age(l.idle_seconds)),
            l.transaction_seconds.map_or("-".to_string(), age),
            query_start(&l.query, QUERY_COLUMN_CHARS),
        ]);
    }
    right_align(&mut t, &[0, 4, 5]);
    writeln!(w, "{t}")?;
    writeln!(
        w,
        "  end one with: SELECT pg_terminate_backend(pid); then fix the code path that leaves its transaction open"
    )?;
    Ok(())
}

fn app(r: &PoolStatusReport, w: &mut dyn Write) -> Result<()> {
    let a = &r.app;
    let own = &r.server.own_backend;
    if own.counted {
        writeln!(
            w,
            "o2o-db's own query ran on pid {}, a pooled connection, counted as idle.",
            own.pid
        )?;
    } else {
        writeln!(
            w,
            "o2o-db's own connection (pid {}) is left out of the server figures.",
            own.pid
        )?;
    }
    let split = match a.through_pgbouncer {
        Some(n) => format!(
            " ({} in pgbouncer, {} direct)",
            plural(n, "client"),
            a.direct
        ),
        None => String::new(),
    };
    let line = format!(
        "{} holds {}{split} = {}% of its pool's max_size {} (alert above {}%)",
        application(&a.name),
        plural(a.connections, "connection"),
        a.usage_percent,
        a.max_size,
        a.alert_percent
    );
    if let Some(reason) = &a.not_judged {
        writeln!(
            w,
            "NOT JUDGED: {}'s usage cannot be read from the server: {reason}",
            application(&a.name)
        )?;
    } else if r.alert {
        writeln!(
            w,
            "ALERT: {line}: look for leaks above, or raise [pool] max_overflow"
        )?;
    } else {
        writeln!(w, "OK: {line}")?;
    }
    Ok(())
}

fn application(name: &str) -> String {
    if name.is_empty() {
        "(none)".to_string()
    } else {
        name.to_string()
    }
}

/// "1 session", "2 sessions".
fn plural(n: i64, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn right_align(t: &mut comfy_table::Table, columns: &[usize]) {
    for &i in columns {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// A duration in seconds the short way: 0.4s, 42s, 3m12s, 2h05m, 3d04h.
pub fn age(seconds: f64) -> String {
    if seconds < 10.0 {
        return format!("{seconds:.1}s");
    }
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 if s % 60 == 0 => format!("{}m", s / 60),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 if s % 3600 == 0 => format!("{}h", s / 3600),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::age;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age(0.0), "0.0s");
        assert_eq!(age(0.42), "0.4s");
        assert_eq!(age(42.0), "42s");
        assert_eq!(age(192.0), "3m12s");
        assert_eq!(age(300.0), "5m");
        assert_eq!(age(3600.0), "1h");
        assert_eq!(age(7500.0), "2h05m");
        assert_eq!(age(3.0 * 86_400.0 + 4.0 * 3600.0), "3d04h");
    }
}

#[cfg(test)]
mod snapshot_tests;
