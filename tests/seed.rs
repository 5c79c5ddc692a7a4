// seed: row counts, distributions, determinism, refusals.

use crate::support::{self, TestDb};

#[test]
fn seed_loads_exact_count_with_realistic_spread() {
    let db = TestDb::with_schema("seed_counts");
    let out = db
        .cmd()
        .args(["seed", "--orders", "20000", "--stores", "4", "--seed", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert!(support::stdout(&out).contains("seeded 20000 orders across 4 stores"));
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders"), 20000);
    assert_eq!(
        db.scalar_i64("SELECT count(DISTINCT store_name) FROM orders"),
        4
    );
    assert_eq!(
        db.scalar_i64("SELECT count(DISTINCT channel) FROM orders"),
        6
    );
    assert_eq!(
        db.scalar_i64("SELECT count(DISTINCT time_period) FROM orders"),
        5
    );
    // 美团 is the biggest channel, 门店自提 the smallest: the skew indexes are chosen for.
    let top: String = db
        .client()
        .query_one(
            "SELECT channel FROM orders GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(top, "美团");
    // A year of dates ending on the report's day.
    let span = db.scalar_i64("SELECT (max(date) - min(date))::bigint FROM orders");
    assert!((300..=364).contains(&span), "date span {span}");
    let last: String = db
        .client()
        .query_one("SELECT max(date)::text FROM orders", &[])
        .unwrap()
        .get(0);
    assert_eq!(last, "2025-12-10");
    // Money adds up on every row, and order_time falls on the order's date.
    assert_eq!(
        db.scalar_i64(
            "SELECT count(*) FROM orders WHERE amount <> quantity * unit_price \
             OR profit <> amount - cost OR order_time::date <> date"
        ),
        0
    );
    // Analyzed, and the identity sequence continues after the loaded ids.
    assert!(db.scalar_i64("SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'orders' AND last_analyze IS NOT NULL") == 1);
    let next: i64 = db
        .client()
        .query_one("INSERT INTO orders (order_no, date, order_time, store_name, channel, product_name, category_l1, category_l2, scene, time_period, quantity, unit_price, amount, cost, profit) VALUES ('X', now(), now(), 's', 'c', 'p', 'a', 'b', 'x', '午餐', 1, 1, 1, 1, 0) RETURNING order_id", &[])
        .unwrap()
        .get(0);
    assert_eq!(next, 20001);
}

#[test]
fn seed_is_deterministic_for_a_seed() {
    let checksum = |db: &TestDb| -> String {
        db.client()
            .query_one(
                "SELECT md5(string_agg(order_no || store_name || channel || product_name || amount::text || order_time::text, ',' ORDER BY order_id)) FROM orders",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let a = TestDb::with_schema("seed_det_a");
    let b = TestDb::with_schema("seed_det_b");
    let c = TestDb::with_schema("seed_det_c");
    for (db, seed) in [(&a, "5"), (&b, "5"), (&c, "6")] {
        db.cmd()
            .args(["seed", "--orders", "3000", "--seed", seed])
            .assert()
            .success();
    }
    assert_eq!(checksum(&a), checksum(&b));
    assert_ne!(checksum(&a), checksum(&c));
}

#[test]
fn seed_refuses_a_table_with_rows_unless_truncate() {
    let db = TestDb::with_schema("seed_refuse");
    db.cmd()
        .args(["seed", "--orders", "100"])
        .assert()
        .success();
    let out = support::run(db.cmd().args(["seed", "--orders", "100"]), 2);
    assert!(support::stderr(&out).contains("already has rows; pass --truncate"));
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders"), 100);
    db.cmd()
        .args(["seed", "--orders", "50", "--truncate"])
        .assert()
        .success();
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders"), 50);
}

#[test]
fn seed_without_table_says_how_to_create_it() {
    let db = TestDb::empty("seed_no_table");
    let out = support::run(db.cmd().args(["seed", "--orders", "10"]), 2);
    assert!(
        support::stderr(&out).contains("--create-schema"),
        "{}",
        support::stderr(&out)
    );
    db.cmd()
        .args(["seed", "--orders", "10", "--create-schema"])
        .assert()
        .success();
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders"), 10);
}

#[test]
fn seed_create_schema_creates_the_database() {
    let name = format!("seed_created_db_{}", std::process::id());
    let out = support::bare_cmd()
        .arg("--database-url")
        .arg(support::sandbox().url(&name))
        .args(["seed", "--create-schema", "--orders", "1000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::stderr(&out));
    let mut client = o2o_db::db::connect(&support::sandbox().conn_info(&name)).unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM orders", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1000);
    drop(client);
    support::sandbox().drop_database(&name).unwrap();
}
