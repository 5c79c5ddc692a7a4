// Pool monitoring from inside a service, as the V8.5 report's snippet did:
//   usage = checked_out / total; if usage > 80: print("⚠️ 连接池使用率过高")
// but with o2o-db's figures: the pool's own counters and the server's view of
// the application's connections.
//
//   cargo run --example monitor -- 'postgres://...'   (or O2O_DB_URL, ./o2o-db.toml, PG*)

use anyhow::Result;
use o2o_db::config::{self, Overrides};
use o2o_db::db::{self, Pool, Warm};

fn main() -> Result<()> {
    let config = config::resolve(
        &Overrides {
            config: None,
            database_url: std::env::args().nth(1),
        },
        &config::process_env,
    )?;
    let pool = Pool::open(&config, Warm::Full)?;

    // The service at work: hold a few sessions while we look.
    let held: Vec<_> = (0..3).map(|_| pool.get()).collect::<Result<_>>()?;
    db::with_readonly_session(&pool, |tx| {
        tx.query_one("SELECT 1", &[])?;
        Ok(())
    })?;

    let status = o2o_db::pool_status(&pool)?;
    let p = &status.pool;
    println!(
        "pool: {} open, {} idle, {} checked out of max {} ({:.1}%)",
        p.connections, p.idle, p.checked_out, p.max_size, p.usage_percent
    );
    println!(
        "checkouts {} · waits {} (longest {:.2} ms) · timeouts {}",
        p.checkout.checkouts, p.checkout.waits, p.checkout.wait_ms_max, p.checkout.timeouts
    );
    let app = config.application_name();
    let on_server = status.connections_of(app);
    let usage = 100.0 * on_server as f64 / f64::from(p.max_size.max(1));
    println!(
        "server: {} of max_connections {} in use; {app} holds {on_server} ({usage:.1}% of its pool)",
        status.server.backends, status.server.max_connections
    );
    if usage > config.alert.pool_usage_percent || p.usage_percent > config.alert.pool_usage_percent
    {
        println!(
            "⚠️ 连接池使用率过高: {usage:.1}% (alert above {}%)",
            config.alert.pool_usage_percent
        );
    } else {
        println!(
            "✅ pool usage below the alert ({}%)",
            config.alert.pool_usage_percent
        );
    }
    for s in &status.server.idle_in_transaction {
        println!(
            "leak? pid {} of {} idle in transaction for {:.0}s",
            s.pid, s.application, s.idle_seconds
        );
    }
    drop(held);
    Ok(())
}
