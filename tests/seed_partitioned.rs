// seed --partition-by month: the partitioned table, where the rows land, the
// report's partition count, and the refusal of an unpartitioned table.

use crate::support::{self, TestDb};
use o2o_db::commands::seed;

/// The partitions of orders, by name.
fn partitions(db: &TestDb) -> Vec<String> {
    db.client()
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'orders'::regclass ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn inherits_count(db: &TestDb) -> i64 {
    db.scalar_i64("SELECT count(*) FROM pg_inherits WHERE inhparent = 'orders'::regclass")
}

fn relkind(db: &TestDb) -> String {
    db.client()
        .query_one(
            "SELECT relkind::text FROM pg_class WHERE oid = 'orders'::regclass",
            &[],
        )
        .unwrap()
        .get(0)
}

/// The report's `partitions` from `--format json seed ...`.
fn json_partitions(out: &std::process::Output) -> serde_json::Value {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", support::stdout(out)));
    assert!(
        report.get("partitions").is_some(),
        "no partitions in {report}"
    );
    report["partitions"].clone()
}

#[test]
fn seed_partition_by_month_puts_every_row_in_its_month() {
    let db = TestDb::empty("seed_part_months");
    let out = support::run(
        db.cmd().args([
            "seed",
            "--create-schema",
            "--partition-by",
            "month",
            "--orders",
            "20000",
        ]),
        0,
    );
    assert_eq!(relkind(&db), "p");
    let names = partitions(&db);
    let monthly: Vec<&String> = names.iter().filter(|n| *n != "orders_default").collect();
    assert!(
        (12..=13).contains(&monthly.len()),
        "{} monthly partitions: {names:?}",
        monthly.len()
    );
    assert!(names.iter().any(|n| n == "orders_default"), "{names:?}");
    assert!(monthly.iter().any(|n| *n == "orders_2025_01"), "{names:?}");
    // The report counts them, the default one included.
    let count = inherits_count(&db);
    assert_eq!(count as usize, monthly.len() + 1);
    assert!(
        support::stdout(&out).contains(&format!(
            "seeded 20000 orders across 4 stores into {}.orders ({count} partitions) in ",
            db.name
        )),
        "{}",
        support::stdout(&out)
    );
    // Each monthly partition holds exactly its calendar month, in the table's schema.
    let bounds: String = db
        .client()
        .query_one(
            "SELECT pg_get_expr(c.relpartbound, c.oid) || ' ' || n.nspname FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'orders_2025_01'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        bounds,
        "FOR VALUES FROM ('2025-01-01') TO ('2025-02-01') public"
    );
    // Every row is in a monthly partition: none in the default, and the
    // partitions' rows add up to the table's.
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders_default"), 0);
    let mut sum = 0;
    for name in &monthly {
        sum += db.scalar_i64(&format!("SELECT count(*) FROM \"{name}\""));
    }
    assert_eq!(sum, db.scalar_i64("SELECT count(*) FROM orders"));
    assert_eq!(sum, 20000);
    assert_eq!(
        db.scalar_i64(
            "SELECT count(*) FROM orders WHERE tableoid::regclass::text \
             <> 'orders_' || to_char(date, 'YYYY_MM')"
        ),
        0
    );
    // VACUUM (ANALYZE) analyzed the parent (its statistics of the whole tree) and each partition.
    assert!(
        db.scalar_i64("SELECT count(*) FROM pg_stats WHERE tablename = 'orders' AND inherited") > 0
    );
    assert_eq!(
        db.scalar_i64(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'orders' \
             AND last_analyze IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        db.scalar_i64(
            "SELECT count(*) FROM pg_stat_user_tables s JOIN pg_inherits i ON i.inhrelid = s.relid \
             WHERE i.inhparent = 'orders'::regclass AND s.last_analyze IS NOT NULL"
        ),
        count
    );
    // The identity sequence continues after the loaded ids, through the parent.
    let next: i64 = db
        .client()
        .query_one("INSERT INTO orders (order_no, date, order_time, store_name, channel, product_name, category_l1, category_l2, scene, time_period, quantity, unit_price, amount, cost, profit) VALUES ('X', '2025-06-01', now(), 's', 'c', 'p', 'a', 'b', 'x', '午餐', 1, 1, 1, 1, 0) RETURNING order_id", &[])
        .unwrap()
        .get(0);
    assert_eq!(next, 20001);

    // Harmless to run twice: the same partitions, the rows replaced.
    support::run(
        db.cmd().args([
            "seed",
            "--create-schema",
            "--partition-by",
            "month",
            "--truncate",
            "--orders",
            "500",
        ]),
        0,
    );
    assert_eq!(partitions(&db), names);
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders"), 500);
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders_default"), 0);
}

#[test]
fn seed_partition_by_refuses_an_unpartitioned_table() {
    let db = TestDb::seeded("seed_part_refuse", 2000);
    let checksum = |db: &TestDb| -> String {
        db.client()
            .query_one(
                "SELECT md5(string_agg(order_no || amount::text, ',' ORDER BY order_id)) FROM orders",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let before = checksum(&db);
    for flags in [
        &["--create-schema", "--truncate"][..],
        &["--truncate"][..],
        &[][..],
    ] {
        let out = support::run(
            db.cmd()
                .args(["seed", "--partition-by", "month", "--orders", "100"])
                .args(flags),
            2,
        );
        let err = support::stderr(&out);
        assert!(
            err.contains("o2o-db: error: table public.orders in ")
                && err.contains(
                    "is not partitioned, so --partition-by month cannot load into it; drop it \
                     first (DROP TABLE \"public\".\"orders\"; this deletes every order) and run \
                     `o2o-db seed --create-schema --partition-by month`, or seed another database. \
                     Nothing was changed"
                ),
            "{flags:?}: {err}"
        );
    }
    // Nothing changed: the same ordinary table, the same rows, no partitions.
    assert_eq!(relkind(&db), "r");
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders"), 2000);
    assert_eq!(checksum(&db), before);
    assert_eq!(inherits_count(&db), 0);
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_class WHERE relname LIKE 'orders\\_%' AND relkind IN ('r', 'p')"),
        0
    );
    // In JSON the error is a document on stdout, exit 2.
    let out = support::run(
        db.cmd()
            .args(["--format", "json", "seed", "--partition-by", "month"]),
        2,
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["exit_code"], 2);
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("is not partitioned"));
}

#[test]
fn seed_json_reports_the_partitions() {
    let db = TestDb::seeded_partitioned("seed_part_json", 3000);
    assert_eq!(relkind(&db), "p");
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders"), 3000);
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders_default"), 0);
    let out = support::run(
        db.cmd().args([
            "--format",
            "json",
            "seed",
            "--partition-by",
            "month",
            "--truncate",
            "--orders",
            "1000",
        ]),
        0,
    );
    assert_eq!(json_partitions(&out), inherits_count(&db));
    // Without --partition-by a partitioned table is loaded as it is, and still counted.
    let out = support::run(
        db.cmd()
            .args(["--format", "json", "seed", "--truncate", "--orders", "700"]),
        0,
    );
    assert_eq!(json_partitions(&out), inherits_count(&db));
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders"), 700);
    // An unpartitioned table has none: null.
    let plain = TestDb::with_schema("seed_part_json_plain");
    let out = support::run(
        plain
            .cmd()
            .args(["--format", "json", "seed", "--orders", "100"]),
        0,
    );
    assert_eq!(json_partitions(&out), serde_json::Value::Null);
}

#[test]
fn seed_partition_by_adds_the_missing_months_to_a_partitioned_table() {
    let db = TestDb::empty("seed_part_missing");
    db.client()
        .batch_execute(seed::SCHEMA_PARTITIONED_SQL)
        .unwrap();
    // Harmless to run twice.
    db.client()
        .batch_execute(seed::SCHEMA_PARTITIONED_SQL)
        .unwrap();
    db.client()
        .batch_execute(
            "CREATE TABLE orders_2025_03 PARTITION OF orders \
             FOR VALUES FROM ('2025-03-01') TO ('2025-04-01')",
        )
        .unwrap();
    assert_eq!(partitions(&db), ["orders_2025_03", "orders_default"]);
    let out = support::run(
        db.cmd()
            .args(["seed", "--partition-by", "month", "--orders", "2000"]),
        0,
    );
    let count = inherits_count(&db);
    assert!((13..=14).contains(&count), "{:?}", partitions(&db));
    assert!(
        support::stdout(&out).contains(&format!("({count} partitions)")),
        "{}",
        support::stdout(&out)
    );
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders_default"), 0);
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders"), 2000);
}

#[test]
fn seed_partition_by_without_a_table_says_how_to_create_it() {
    let db = TestDb::empty("seed_part_no_table");
    let out = support::run(db.cmd().args(["seed", "--partition-by", "month"]), 2);
    assert!(
        support::stderr(&out).contains("run `o2o-db seed --create-schema --partition-by month`"),
        "{}",
        support::stderr(&out)
    );
    let out = support::run(db.cmd().args(["seed", "--partition-by", "week"]), 2);
    assert!(
        support::stderr(&out).contains("possible values: month"),
        "{}",
        support::stderr(&out)
    );
}

#[test]
fn seed_partition_by_refuses_what_it_cannot_partition() {
    // A table of a month's name that is not a partition: its orders would go to the default.
    let db = TestDb::empty("seed_part_stray");
    db.client()
        .batch_execute(seed::SCHEMA_PARTITIONED_SQL)
        .unwrap();
    db.client()
        .batch_execute("CREATE TABLE orders_2025_05 (note text)")
        .unwrap();
    let out = support::run(
        db.cmd()
            .args(["seed", "--partition-by", "month", "--orders", "100"]),
        2,
    );
    assert!(
        support::stderr(&out).contains(
            "orders_2025_05 in schema public exists but is not a partition of orders, so its \
             month's orders would land in the default partition; rename or drop it, or seed \
             another database. Nothing was changed"
        ),
        "{}",
        support::stderr(&out)
    );
    assert_eq!(partitions(&db), ["orders_default"]);
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders"), 0);

    // A table partitioned another way.
    let db = TestDb::empty("seed_part_other_key");
    db.client()
        .batch_execute(
            "CREATE TABLE orders (order_id bigint, date date, channel text) PARTITION BY LIST (channel)",
        )
        .unwrap();
    let out = support::run(
        db.cmd().args([
            "seed",
            "--create-schema",
            "--partition-by",
            "month",
            "--orders",
            "100",
        ]),
        2,
    );
    assert!(
        support::stderr(&out).contains(
            "is partitioned by LIST (channel), but --partition-by month makes partitions of \
             RANGE (date)"
        ),
        "{}",
        support::stderr(&out)
    );
    assert_eq!(inherits_count(&db), 0);
}
