//! A seeded, indexed primary and its streaming replica of the replication
//! tests' own, so pausing replay or stopping a node disturbs no other test.

use o2o_db::commands::seed::{self, SeedArgs};
use o2o_db::config::Config;
use o2o_db::pg_sandbox::Sandbox;
use std::time::{Duration, Instant};

/// The database the pair's primary holds and its replica replays.
pub const DB: &str = "o2o_replication";

pub struct Pair {
    pub primary: Sandbox,
    pub replica: Sandbox,
}

impl Pair {
    /// A primary seeded with `orders` orders and the managed indexes built
    /// (create-indexes, so the table is analyzed), then its replica.
    pub fn start(orders: u64) -> Pair {
        let primary = Sandbox::start().expect("start the pair's primary");
        let mut config = Config::defaults();
        config.conn = primary.conn_info(DB);
        let args = SeedArgs {
            orders,
            create_schema: true,
            ..SeedArgs::default()
        };
        seed::run(&config, &args).expect("seed the pair's primary");
        super::run(
            super::bare_cmd().args(["--database-url", &primary.url(DB), "create-indexes"]),
            0,
        );
        let replica = primary.start_replica().expect("start the pair's replica");
        let pair = Pair { primary, replica };
        wait_until_replayed(&pair.primary, &pair.replica);
        pair
    }
}

/// verify's config for `node` of a pair or fleet: a small pool it checks
/// against itself, and a speed limit no healthy query reaches.
pub fn verify_config(node: &Sandbox, db: &str) -> Config {
    let mut config = Config::defaults();
    config.conn = node.conn_info(db);
    config.pool.size = 2;
    config.pool.max_overflow = 2;
    config.verify.target = config.pool.clone();
    config.alert.query_ms = super::GENEROUS_MS;
    config
}

/// A session on `node`'s postgres database.
pub fn session(node: &Sandbox) -> postgres::Client {
    o2o_db::db::connect(&node.conn_info("postgres")).expect("a session")
}

/// `primary`'s WAL position once everything committed so far is on disk.
/// The sandbox commits asynchronously (synchronous_commit = off), so a commit
/// the client has seen may not be written yet: one synchronous commit flushes
/// all WAL before it.
pub fn flushed_position(primary: &Sandbox) -> String {
    let mut c = session(primary);
    c.batch_execute("SET synchronous_commit = on; BEGIN; SELECT txid_current(); COMMIT")
        .expect("a synchronous commit on the primary");
    c.query_one("SELECT pg_current_wal_lsn()::text", &[])
        .expect("the primary's WAL position")
        .get(0)
}

/// Waits (at most 30 s) until `replica` has replayed everything `primary` has committed.
pub fn wait_until_replayed(primary: &Sandbox, replica: &Sandbox) {
    let target = flushed_position(primary);
    let mut on_replica = session(replica);
    let started = Instant::now();
    loop {
        let done: bool = on_replica
            .query_one(
                "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                &[&target],
            )
            .expect("the replica's replay position")
            .get(0);
        if done {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the replica did not replay up to {target} in 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
