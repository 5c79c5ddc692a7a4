// The library's scoped sessions in a small dashboard-style service: the V8.5
// report's "recommended usage" (get_readonly_session / get_db_session), in Rust.
//
// Run against the demo's server (`o2o-db demo --keep` prints its URL) or any
// database with a seeded orders table:
//   cargo run --example session -- 'postgres://postgres@localhost:PORT/o2o_dashboard?host=/tmp/...'
// Without an argument it uses O2O_DB_URL, DATABASE_URL, ./o2o-db.toml or the PG* variables.

use anyhow::Result;
use o2o_db::config::{self, Overrides};
use o2o_db::db::{self, Pool, Warm};

/// What the dashboard's store page shows.
#[derive(Debug)]
struct StoreSummary {
    orders: i64,
    revenue: String,
    top_channel: String,
}

impl StoreSummary {
    fn line(&self) -> String {
        format!(
            "{} orders, revenue {}, top channel {}",
            self.orders, self.revenue, self.top_channel
        )
    }
}

/// Read path: a read-only session; the server refuses writes even if a bug tries one.
fn store_summary(pool: &Pool, store: &str) -> Result<StoreSummary> {
    db::with_readonly_session(pool, |tx| {
        let totals = tx.query_one(
            "SELECT count(*), coalesce(sum(amount), 0)::text FROM orders WHERE store_name = $1",
            &[&store],
        )?;
        let top = tx.query_opt(
            "SELECT channel FROM orders WHERE store_name = $1 GROUP BY channel ORDER BY count(*) DESC LIMIT 1",
            &[&store],
        )?;
        Ok(StoreSummary {
            orders: totals.get(0),
            revenue: totals.get(1),
            top_channel: top.map(|r| r.get(0)).unwrap_or_default(),
        })
    })
}

/// Write path: commits when everything succeeded, rolls back otherwise.
fn record_order(pool: &Pool, store: &str, product: &str, quantity: i32) -> Result<i64> {
    db::with_session(pool, |tx| {
        let row = tx.query_one(
            "INSERT INTO orders (order_no, date, order_time, store_name, channel, product_name, category_l1, category_l2, \
                                 scene, time_period, quantity, unit_price, amount, cost, profit) \
             VALUES ('EX' || extract(epoch FROM now())::bigint, current_date, now(), $1, '小程序', $2, '饮品', '咖啡', \
                     '到店自取', '下午茶', $3, 18, 18 * $3, 6 * $3, 12 * $3) \
             RETURNING order_id",
            &[&store, &product, &quantity],
        )?;
        Ok(row.get(0))
    })
}

fn main() -> Result<()> {
    let url = std::env::args().nth(1);
    let mut config = config::resolve(
        &Overrides {
            config: None,
            database_url: url,
        },
        &config::process_env,
    )?;
    // A service would keep the report's 20 + 40; an example needs a few.
    config.pool.size = 2;
    config.pool.max_overflow = 2;
    let pool = Pool::open(&config, Warm::Full)?;

    let store: String = db::with_readonly_session(&pool, |tx| {
        Ok(tx
            .query_one(
                "SELECT store_name FROM orders GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
                &[],
            )?
            .get(0))
    })?;
    let before = store_summary(&pool, &store)?;
    println!("{store}: {}", before.line());

    let id = record_order(&pool, &store, "美式咖啡", 2)?;
    println!("recorded order {id} (committed)");

    // quantity 0 breaks the table's CHECK: the session rolls back, nothing is half-written.
    match record_order(&pool, &store, "美式咖啡", 0) {
        Ok(id) => println!("unexpectedly recorded {id}"),
        Err(e) => println!("refused and rolled back: {e:#}"),
    }

    // A write inside a read-only session is refused by the server itself.
    let refused = db::with_readonly_session(&pool, |tx| {
        tx.execute("DELETE FROM orders WHERE store_name = $1", &[&store])?;
        Ok(())
    });
    println!(
        "write in a read-only session: {}",
        match refused {
            Ok(()) => "allowed (unexpected)".to_string(),
            Err(e) => format!("refused: {e:#}"),
        }
    );

    let after = store_summary(&pool, &store)?;
    println!("{store}: {}", after.line());
    let state = pool.state();
    println!(
        "pool: {} open, {} idle: every session gave its connection back",
        state.connections, state.idle_connections
    );
    Ok(())
}
