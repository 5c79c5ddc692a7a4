// The pool mapping and the scoped sessions: commit, rollback, panic,
// read-only, broken connections, and the two errors told apart.

use crate::support::TestDb;
use o2o_db::config::HumanDuration;
use o2o_db::db::{self, Pool, Warm};
use std::time::Duration;

fn table(db: &TestDb) {
    db.client()
        .batch_execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        .unwrap();
}

fn count(db: &TestDb) -> i64 {
    db.scalar_i64("SELECT count(*) FROM notes")
}

#[test]
fn pool_settings_map_onto_r2d2() {
    let db = TestDb::empty("pool_mapping");
    let mut config = db.config();
    config.pool.size = 3;
    config.pool.max_overflow = 4;
    config.pool.recycle = HumanDuration(Duration::from_secs(1800));
    config.pool.timeout = HumanDuration(Duration::from_secs(7));
    let pool = Pool::open(&config, Warm::Full).unwrap();
    let r = pool.r2d2();
    assert_eq!(r.min_idle(), Some(3));
    assert_eq!(r.max_size(), 7);
    assert!(r.test_on_check_out());
    assert_eq!(r.max_lifetime(), Some(Duration::from_secs(1800)));
    assert_eq!(r.connection_timeout(), Duration::from_secs(7));
    // Warm: size connections are open, all idle, and the server sees them by name.
    assert_eq!(pool.state().connections, 3);
    assert_eq!(pool.state().idle_connections, 3);
    let seen = db.scalar_i64(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'o2o-db-test'",
        db.name
    ));
    assert_eq!(seen, 3);
    config.pool.pre_ping = false;
    let pool = Pool::open(&config, Warm::Lazy).unwrap();
    assert!(!pool.r2d2().test_on_check_out());
    assert_eq!(pool.r2d2().min_idle(), Some(0));
}

#[test]
fn with_session_commits_on_ok_and_rolls_back_on_err() {
    let db = TestDb::empty("session_commit");
    table(&db);
    let pool = Pool::open(&db.config(), Warm::Lazy).unwrap();
    let n = db::with_session(&pool, |tx| {
        tx.execute("INSERT INTO notes VALUES (1, '美团')", &[])?;
        Ok(tx
            .query_one("SELECT count(*) FROM notes", &[])?
            .get::<_, i64>(0))
    })
    .unwrap();
    assert_eq!(n, 1);
    assert_eq!(count(&db), 1);
    let err = db::with_session(&pool, |tx| -> anyhow::Result<()> {
        tx.execute("INSERT INTO notes VALUES (2, '饿了么')", &[])?;
        anyhow::bail!("business rule failed")
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "business rule failed");
    assert_eq!(count(&db), 1);
    // A server error inside the closure also rolls back.
    let err = db::with_session(&pool, |tx| {
        tx.execute("INSERT INTO notes VALUES (3, 'x')", &[])?;
        tx.execute("INSERT INTO notes VALUES (1, 'dup')", &[])?;
        Ok(())
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("duplicate key"), "{err:#}");
    assert_eq!(count(&db), 1);
    // Every connection is back in the pool, idle, with no transaction open.
    let state = pool.state();
    assert_eq!(state.idle_connections, state.connections);
    let open_tx = db.scalar_i64(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND state LIKE 'idle in transaction%'",
        db.name
    ));
    assert_eq!(open_tx, 0);
}

#[test]
fn a_panic_rolls_back_and_the_pool_stays_usable() {
    let db = TestDb::empty("session_panic");
    table(&db);
    let pool = Pool::open(&db.config(), Warm::Lazy).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = db::with_session(&pool, |tx| -> anyhow::Result<()> {
            tx.execute("INSERT INTO notes VALUES (9, 'lost')", &[])?;
            panic!("bug in the dashboard");
        });
    }));
    assert!(result.is_err());
    assert_eq!(count(&db), 0);
    let state = pool.state();
    assert_eq!(
        state.idle_connections, state.connections,
        "connection not returned"
    );
    // The connection that saw the panic is clean: a new session commits normally.
    db::with_session(&pool, |tx| {
        tx.execute("INSERT INTO notes VALUES (10, 'ok')", &[])?;
        Ok(())
    })
    .unwrap();
    assert_eq!(count(&db), 1);
}

#[test]
fn readonly_session_is_refused_writes_by_the_server() {
    let db = TestDb::empty("session_readonly");
    table(&db);
    let pool = Pool::open(&db.config(), Warm::Lazy).unwrap();
    let err = db::with_readonly_session(&pool, |tx| {
        tx.execute("INSERT INTO notes VALUES (1, 'x')", &[])?;
        Ok(())
    })
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("read-only transaction"),
        "{err:#}"
    );
    assert_eq!(count(&db), 0);
    let n: i64 = db::with_readonly_session(&pool, |tx| {
        Ok(tx.query_one("SELECT count(*) FROM notes", &[])?.get(0))
    })
    .unwrap();
    assert_eq!(n, 0);
    let state = pool.state();
    assert_eq!(state.idle_connections, state.connections);
}

#[test]
fn a_broken_connection_is_discarded_not_reused() {
    let db = TestDb::empty("session_broken");
    let mut config = db.config();
    config.pool.size = 1;
    config.pool.max_overflow = 0;
    let pool = Pool::open(&config, Warm::Full).unwrap();
    let first_pid: i32 = db::with_session(&pool, |tx| {
        Ok(tx.query_one("SELECT pg_backend_pid()", &[])?.get(0))
    })
    .unwrap();
    // The backend dies mid-session (a DBA's pg_terminate_backend, a restart).
    let err = db::with_session(&pool, |tx| {
        tx.execute("SELECT pg_terminate_backend(pg_backend_pid())", &[])?;
        Ok(())
    })
    .unwrap_err();
    // The server's FATAL, or the closed socket when it came first.
    let err = format!("{err:#}");
    assert!(
        err.contains("terminating connection") || err.contains("closed"),
        "{err}"
    );
    // The next session gets a fresh, working connection.
    let pid: i32 = db::with_session(&pool, |tx| {
        Ok(tx.query_one("SELECT pg_backend_pid()", &[])?.get(0))
    })
    .unwrap();
    assert_ne!(pid, first_pid);
}

#[test]
fn exhausted_pool_and_unreachable_server_are_different_errors() {
    let db = TestDb::empty("pool_errors");
    let mut config = db.config();
    config.pool.size = 1;
    config.pool.max_overflow = 1;
    config.pool.timeout = HumanDuration(Duration::from_millis(300));
    let pool = Pool::open(&config, Warm::Lazy).unwrap();
    let a = pool.get().unwrap();
    let b = pool.get().unwrap();
    let err = pool.get().map(|_| ()).unwrap_err().to_string();
    assert_eq!(
        err,
        "pool exhausted: no free connection within 300ms (2 of 2 in use)"
    );
    let stats = pool.checkout_stats();
    assert_eq!(stats.timeouts, 1);
    drop((a, b));
    // A wait is recorded when a checkout has to queue for a connection.
    let held = pool.get().unwrap();
    let held2 = pool.get().unwrap();
    let p2 = pool.clone();
    let waiter = std::thread::spawn(move || p2.get().map(|_| ()));
    std::thread::sleep(Duration::from_millis(100));
    drop(held);
    waiter.join().unwrap().unwrap();
    drop(held2);
    assert!(
        pool.checkout_stats().waits >= 1,
        "{:?}",
        pool.checkout_stats()
    );

    let mut bad = config.clone();
    bad.conn.dbname = Some("no_such_database".into());
    let err = Pool::open(&bad, Warm::Lazy).unwrap_err().to_string();
    assert!(err.starts_with("cannot connect to "), "{err}");
    assert!(
        err.contains("/no_such_database: FATAL: database \"no_such_database\" does not exist"),
        "{err}"
    );
}

/// A node that goes away costs a checkout its connect attempt, not the pool's
/// timeout: the wait ends as soon as a new connection is refused.
#[test]
fn a_dead_server_fails_the_checkout_at_once_not_after_the_pool_timeout() {
    let mut server = o2o_db::pg_sandbox::Sandbox::start().unwrap();
    let mut config = o2o_db::config::Config::defaults();
    config.conn = server.conn_info("postgres");
    config.pool.size = 2;
    config.pool.timeout = HumanDuration(Duration::from_secs(30));
    let pool = Pool::open(&config, Warm::Lazy).unwrap();
    drop(pool.get().unwrap());
    server.stop().unwrap();
    let started = std::time::Instant::now();
    let err = pool.get().map(|_| ()).unwrap_err().to_string();
    let took = started.elapsed();
    assert!(err.starts_with("cannot connect to "), "{err}");
    assert!(
        took < Duration::from_secs(10),
        "waited {took:?} of the pool's 30 s"
    );
    assert!(pool.checkout_stats().connection_errors >= 1);
}
