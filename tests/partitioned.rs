// create-indexes, verify and drop-indexes on a range-partitioned orders table
// (a partition per month of the data and a DEFAULT one, from
// `seed --partition-by month`): built online, resumed, completed partition by
// partition, drift on one partition named, new partitions covered, replaced
// and dropped without a moment with no valid index.

use crate::support::{self, TestDb};
use o2o_db::commands::create_indexes::{self, CreateIndexesArgs, CreateIndexesReport, Status};
use o2o_db::commands::verify::{self, VerifyArgs};
use o2o_db::config::HumanDuration;
use o2o_db::ddl::SessionArgs;
use o2o_db::stop::Stop;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const ORDERS: u64 = 6000;

fn create(db: &TestDb, args: &CreateIndexesArgs) -> CreateIndexesReport {
    create_indexes::run_with(&db.config(), args, &Stop::new()).expect("create-indexes")
}

/// The partitions of orders (direct ones: the seeded table has no deeper level).
fn partitions(db: &TestDb) -> i64 {
    db.scalar_i64("SELECT count(*) FROM pg_inherits WHERE inhparent = 'orders'::regclass")
}

/// The valid parent index `name` on orders, with how many indexes are attached to it.
fn attached(db: &TestDb, name: &str) -> (bool, i64) {
    let Some(row) = db
        .client()
        .query_opt(
            "SELECT i.indisvalid, (SELECT count(*) FROM pg_inherits h WHERE h.inhparent = i.indexrelid) \
             FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
            &[&name],
        )
        .unwrap()
    else {
        return (false, 0);
    };
    (row.get(0), row.get(1))
}

/// The oid of each index attached to `name`, by partition.
fn children(db: &TestDb, name: &str) -> Vec<(String, u32)> {
    db.client()
        .query(
            "SELECT t.relname::text, h.inhrelid FROM pg_inherits h JOIN pg_index i ON i.indexrelid = h.inhrelid \
             JOIN pg_class t ON t.oid = i.indrelid WHERE h.inhparent = to_regclass($1) ORDER BY 1",
            &[&name],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn index_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".sql").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn scene_file() -> tempfile::NamedTempFile {
    index_file("CREATE INDEX idx_orders_scene ON orders (scene);\nCREATE INDEX idx_orders_channel ON orders (channel);\n")
}

fn with_file(file: &std::path::Path) -> CreateIndexesArgs {
    CreateIndexesArgs {
        session: SessionArgs {
            indexes: Some(file.to_path_buf()),
            ..SessionArgs::default()
        },
        ..CreateIndexesArgs::default()
    }
}

/// idx_orders_scene made INVALID for want of one partition: the parent ON ONLY
/// and an index attached on every partition but `except`.
fn incomplete_scene_index(db: &TestDb, except: &str) {
    db.client()
        .batch_execute(&format!(
            "DROP INDEX IF EXISTS idx_orders_scene;
             CREATE INDEX idx_orders_scene ON ONLY orders (scene);
             DO $$ DECLARE p record; BEGIN
               FOR p IN SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
                        WHERE h.inhparent = 'orders'::regclass AND c.relname <> '{except}' LOOP
                 EXECUTE format('CREATE INDEX %I ON %I (scene)', 'hand_' || p.relname, p.relname);
                 EXECUTE format('ALTER INDEX idx_orders_scene ATTACH PARTITION %I', 'hand_' || p.relname);
               END LOOP; END $$;"
        ))
        .unwrap();
}

/// verify's indexes check, for the index file `file` (None: the built-in set).
fn verify_indexes(db: &TestDb, file: Option<&std::path::Path>) -> (String, String) {
    let args = VerifyArgs {
        only: vec!["indexes".into()],
        indexes: file.map(std::path::Path::to_path_buf),
        ..VerifyArgs::default()
    };
    let report = verify::run(&db.config(), &args).expect("verify");
    let check = &report.checks[0];
    (format!("{:?}", check.status), check.detail.clone())
}

#[test]
fn eleven_built_online_per_partition_then_skipped_and_verify_is_clean() {
    let db = TestDb::seeded_partitioned("part_build", ORDERS);
    let n = partitions(&db) as usize;
    assert!(n >= 13, "12 months and a default, got {n}");

    let dry = create(
        &db,
        &CreateIndexesArgs {
            session: SessionArgs {
                dry_run: true,
                ..SessionArgs::default()
            },
            ..CreateIndexesArgs::default()
        },
    );
    assert!(dry.indexes.iter().all(|i| i.status == Status::WouldCreate));
    // The real plan: ON ONLY, each partition CONCURRENTLY, each attach.
    let sql = dry.sql.join("\n");
    assert!(sql.contains(r#"CREATE INDEX "idx_orders_scene" ON ONLY "public"."orders" (scene)"#));
    assert!(sql.contains(r#"CREATE INDEX CONCURRENTLY "idx_orders_scene__orders_default" ON "public"."orders_default" (scene)"#));
    assert!(sql.contains(r#"ALTER INDEX "public"."idx_orders_scene" ATTACH PARTITION "public"."idx_orders_scene__orders_default""#));
    assert_eq!(dry.sql.len(), 11 * (1 + 2 * n) + 1, "{sql}");
    assert_eq!(
        attached(&db, "idx_orders_scene").1,
        0,
        "a dry run changes nothing"
    );

    // Concurrent builds of different partitions run in parallel.
    let built = create(
        &db,
        &CreateIndexesArgs {
            jobs: 2,
            ..CreateIndexesArgs::default()
        },
    );
    assert_eq!(built.summary.created, 11, "{:#?}", built.indexes);
    for i in &built.indexes {
        let p = i.partitions.expect("partition counts");
        assert_eq!((p.done, p.total, p.built), (n, n, n), "{}", i.name);
        assert_eq!(attached(&db, &i.name), (true, n as i64), "{}", i.name);
    }
    let again = create(&db, &CreateIndexesArgs::default());
    assert_eq!(again.summary.skipped, 11);
    assert!(again.sql.is_empty());

    let (status, detail) = verify_indexes(&db, None);
    assert_eq!(status, "Pass", "{detail}");
    assert!(
        detail.contains(&format!("attached on all {n} partitions")),
        "{detail}"
    );
    // The planner counts a partition's index as its parent's, and says how many partitions a plan reads.
    // (On partitions this small the planner may rightly prefer a Seq Scan: the exit code is not the point.)
    let out = db
        .cmd()
        .args(["verify", "--only", "planner"])
        .output()
        .unwrap();
    let text = support::stdout(&out);
    assert!(text.contains(&format!("of {n} partitions)")), "{text}");
}

#[test]
fn a_partition_without_its_index_gets_only_that_one_built() {
    let db = TestDb::seeded_partitioned("part_complete", ORDERS);
    let file = scene_file();
    create(&db, &with_file(file.path()));
    incomplete_scene_index(&db, "orders_2025_03");
    let before = children(&db, "idx_orders_scene");
    assert!(!attached(&db, "idx_orders_scene").0);

    let (status, detail) = verify_indexes(&db, Some(file.path()));
    assert_eq!(status, "Fail", "{detail}");
    assert!(
        detail.contains("idx_orders_scene: INVALID until every partition has it attached"),
        "{detail}"
    );
    assert!(
        detail.contains("public.orders_2025_03: missing"),
        "{detail}"
    );

    let r = create(&db, &with_file(file.path()));
    let scene = &r.indexes[0];
    assert_eq!(scene.status, Status::Completed, "{:?}", scene.error);
    let n = partitions(&db) as usize;
    assert_eq!(
        scene.partitions.map(|p| (p.done, p.total, p.built)),
        Some((n, n, 1))
    );
    // The index made on the partition that had none is o2o-db's; nothing else was rebuilt.
    let after = children(&db, "idx_orders_scene");
    assert_eq!(attached(&db, "idx_orders_scene"), (true, n as i64));
    let kept: Vec<_> = after
        .iter()
        .filter(|(p, _)| p != "orders_2025_03")
        .cloned()
        .collect();
    assert_eq!(kept, before);
    assert_eq!(
        db.scalar_i64(
            "SELECT count(*) FROM pg_class WHERE relname = 'idx_orders_scene__orders_2025_03'"
        ),
        1
    );
    assert_eq!(r.indexes[1].status, Status::Skipped);
    assert_eq!(verify_indexes(&db, Some(file.path())).0, "Pass");
}

#[test]
fn an_unattached_matching_index_is_attached_not_built_again() {
    let db = TestDb::seeded_partitioned("part_attach", ORDERS);
    let file = index_file("CREATE INDEX idx_orders_scene ON orders (scene);\n");
    incomplete_scene_index(&db, "orders_2025_04");
    db.client()
        .batch_execute("CREATE INDEX by_hand ON orders_2025_04 (scene)")
        .unwrap();
    let (_, detail) = verify_indexes(&db, Some(file.path()));
    assert!(
        detail.contains("public.orders_2025_04: by_hand has the definition but is not attached"),
        "{detail}"
    );
    let r = create(&db, &with_file(file.path()));
    assert_eq!(
        r.indexes[0].status,
        Status::Completed,
        "{:?}",
        r.indexes[0].error
    );
    assert_eq!(
        r.sql,
        [
            r#"ALTER INDEX "public"."idx_orders_scene" ATTACH PARTITION "public"."by_hand""#,
            r#"ANALYZE "public"."orders""#
        ]
    );
    assert!(children(&db, "idx_orders_scene")
        .iter()
        .any(|(p, oid)| p == "orders_2025_04"
            && *oid as i64 == db.scalar_i64("SELECT 'by_hand'::regclass::oid::int8")));
}

#[test]
fn a_build_stopped_by_a_lock_resumes_where_it_stopped() {
    let db = TestDb::seeded_partitioned("part_resume", ORDERS);
    let file = scene_file();
    // A session holds a lock on one partition that a concurrent build must wait for.
    let mut holder = db.client();
    holder
        .batch_execute("BEGIN; LOCK TABLE orders_2025_06 IN SHARE MODE")
        .unwrap();
    let args = CreateIndexesArgs {
        session: SessionArgs {
            indexes: Some(file.path().to_path_buf()),
            lock_timeout: Some(HumanDuration(Duration::from_secs(1))),
            lock_retries: Some(0),
            ..SessionArgs::default()
        },
        ..CreateIndexesArgs::default()
    };
    let first = create(&db, &args);
    assert_eq!(first.summary.failed, 2, "{:#?}", first.indexes);
    let error = first.indexes[0].error.clone().unwrap();
    assert!(
        error.contains("idx_orders_scene on public.orders_2025_06: lock timeout"),
        "{error}"
    );
    assert!(
        error.contains("the next run builds only what is still missing"),
        "{error}"
    );
    let done_first = first.indexes[0].partitions.unwrap().done;
    assert!(
        done_first > 0,
        "the partitions before it were done and kept"
    );
    // Nothing INVALID is left on the partition the build gave up on.
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_index WHERE indrelid = 'orders_2025_06'::regclass AND NOT indisvalid"),
        0
    );
    let kept = children(&db, "idx_orders_scene");
    holder.batch_execute("ROLLBACK").unwrap();

    let second = create(&db, &args);
    assert_eq!(second.summary.completed, 2, "{:#?}", second.indexes);
    let n = partitions(&db) as usize;
    let p = second.indexes[0].partitions.unwrap();
    assert_eq!((p.done, p.built), (n, n - done_first));
    let now = children(&db, "idx_orders_scene");
    assert!(
        kept.iter().all(|k| now.contains(k)),
        "the partitions done first were not rebuilt"
    );
}

#[test]
fn drift_on_one_partition_is_named_and_replaced_only_when_asked() {
    let db = TestDb::seeded_partitioned("part_drift", ORDERS);
    let file = index_file("CREATE INDEX idx_orders_scene ON orders (scene);\n");
    incomplete_scene_index(&db, "orders_2025_04");
    db.client()
        .batch_execute(
            "CREATE INDEX idx_orders_scene__orders_2025_04 ON orders_2025_04 (scene, channel)",
        )
        .unwrap();
    let (status, detail) = verify_indexes(&db, Some(file.path()));
    assert_eq!(status, "Fail");
    assert!(
        detail.contains(
            "public.orders_2025_04: drifted: idx_orders_scene__orders_2025_04 is CREATE INDEX"
        ),
        "{detail}"
    );

    let left = create(&db, &with_file(file.path()));
    assert_eq!(left.indexes[0].status, Status::Failed);
    assert!(left.indexes[0]
        .error
        .as_deref()
        .unwrap()
        .contains("--replace-drifted drops it"));
    let replaced = create(
        &db,
        &CreateIndexesArgs {
            replace_drifted: true,
            ..with_file(file.path())
        },
    );
    assert_eq!(
        replaced.indexes[0].status,
        Status::Completed,
        "{:?}",
        replaced.indexes[0].error
    );
    assert_eq!(verify_indexes(&db, Some(file.path())).0, "Pass");
}

#[test]
fn a_partition_created_later_gets_the_indexes_and_verify_confirms_it() {
    let db = TestDb::seeded_partitioned("part_new", ORDERS);
    let file = scene_file();
    create(&db, &with_file(file.path()));
    let n = partitions(&db);
    db.client()
        .batch_execute("CREATE TABLE orders_2026_01 PARTITION OF orders FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')")
        .unwrap();
    assert_eq!(attached(&db, "idx_orders_scene"), (true, n + 1));
    let args = VerifyArgs {
        only: vec!["indexes".into()],
        indexes: Some(file.path().to_path_buf()),
        ..VerifyArgs::default()
    };
    let report = verify::run(&db.config(), &args).unwrap();
    assert!(
        report.checks[0]
            .detail
            .contains(&format!("attached on all {} partitions", n + 1)),
        "{}",
        report.checks[0].detail
    );
}

#[test]
fn replace_and_drop_leave_no_moment_without_a_valid_index() {
    let db = TestDb::seeded_partitioned("part_replace", ORDERS);
    db.client()
        .batch_execute("CREATE INDEX idx_orders_scene ON orders (scene, time_period)")
        .unwrap();
    let file = index_file("CREATE INDEX idx_orders_scene ON orders (scene);\n");
    let watching = AtomicBool::new(true);
    let gaps = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut c = db.client();
            let mut gaps = 0;
            while watching.load(Ordering::SeqCst) {
                let valid: i64 = c
                    .query_one(
                        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                         WHERE i.indrelid = 'orders'::regclass AND i.indisvalid \
                           AND c.relname IN ('idx_orders_scene', 'idx_orders_scene_o2o_new')",
                        &[],
                    )
                    .unwrap()
                    .get(0);
                gaps += i32::from(valid == 0);
                std::thread::sleep(Duration::from_millis(2));
            }
            gaps
        });
        let r = create(
            &db,
            &CreateIndexesArgs {
                replace_drifted: true,
                ..with_file(file.path())
            },
        );
        watching.store(false, Ordering::SeqCst);
        assert_eq!(
            r.indexes[0].status,
            Status::Rebuilt,
            "{:?}",
            r.indexes[0].error
        );
        watcher.join().unwrap()
    });
    assert_eq!(gaps, 0, "a moment with no valid idx_orders_scene");
    let n = partitions(&db);
    assert_eq!(attached(&db, "idx_orders_scene"), (true, n));
    // The partitions' indexes carry the managed name again, so a later replace finds its names free.
    assert_eq!(
        db.scalar_i64(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'idx_orders_scene__orders_%'"
        ),
        n
    );
    assert_eq!(verify_indexes(&db, Some(file.path())).0, "Pass");

    let out = support::run(
        db.cmd()
            .args(["--format", "json", "drop-indexes", "--indexes"])
            .arg(file.path()),
        0,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["indexes"][0]["status"], "dropped");
    assert_eq!(
        v["sql"][0],
        r#"DROP INDEX IF EXISTS "public"."idx_orders_scene""#
    );
    assert!(v["notices"][0]
        .as_str()
        .unwrap()
        .contains("ACCESS EXCLUSIVE on the table and every partition"));
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_class WHERE relname LIKE 'idx_orders_scene%'"),
        0
    );
}

#[test]
fn on_only_in_an_index_file_is_refused_with_its_line() {
    let db = TestDb::seeded_partitioned("part_on_only", ORDERS);
    let file =
        index_file("CREATE INDEX a ON orders (scene);\nCREATE INDEX b ON ONLY orders (channel);\n");
    let out = support::run(
        db.cmd()
            .args(["create-indexes", "--indexes"])
            .arg(file.path()),
        2,
    );
    let err = support::stderr(&out);
    assert!(err.contains(":2: index b: `ON ONLY`"), "{err}");
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_class WHERE relname IN ('a', 'b')"),
        0
    );
}

#[test]
fn benchmark_says_how_many_partitions_each_plan_reads() {
    let db = TestDb::seeded_partitioned("part_bench", ORDERS);
    let n = partitions(&db) as u64;
    let out = support::run(
        db.cmd().args([
            "benchmark",
            "--only",
            "by_time_period,by_store",
            "--iterations",
            "3",
            "--format",
            "json",
        ]),
        0,
    );
    let report: serde_json::Value = serde_json::from_str(&support::stdout(&out)).unwrap();
    let read = |name: &str| {
        let q = report["queries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {report}"));
        let p = &q["partitions"];
        assert_eq!(p["partitions"], n, "{p}");
        (
            p["read_min"].as_u64().unwrap(),
            p["read_max"].as_u64().unwrap(),
        )
    };
    // One day's orders live in one partition; a whole store's in all of them.
    assert_eq!(read("by_time_period"), (1, 1));
    assert_eq!(read("by_store"), (n, n));
    let table = support::stdout(&support::run(
        db.cmd()
            .args(["benchmark", "--only", "by_time_period", "--iterations", "2"]),
        0,
    ));
    assert!(table.contains(&format!("1/{n}")), "{table}");
}

/// A partition owned by another role (pg_partman's or a cron job's) is named
/// before any plan, with the GRANT that fixes it; once granted, the run works.
#[test]
fn a_partition_owned_by_another_role_is_named_before_anything_is_done() {
    let db = TestDb::seeded_partitioned("part_owner", ORDERS);
    let (builder, other) = (
        format!("builder_{}", std::process::id()),
        format!("partman_{}", std::process::id()),
    );
    db.client()
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {builder}; DROP ROLE IF EXISTS {other}; \
             CREATE ROLE {builder} LOGIN; CREATE ROLE {other}; \
             DO $$ DECLARE r record; BEGIN \
               FOR r IN SELECT relid FROM pg_partition_tree('orders') LOOP \
                 EXECUTE format('ALTER TABLE %s OWNER TO {builder}', r.relid::regclass); \
               END LOOP; END $$; \
             ALTER TABLE orders_2025_03 OWNER TO {other}; ALTER TABLE orders_default OWNER TO {other}"
        ))
        .unwrap();
    let file = scene_file();
    let as_builder = |extra: &[&str]| {
        let mut cmd = support::bare_cmd();
        cmd.args([
            "--database-url",
            &db.url_as(&builder),
            "create-indexes",
            "--indexes",
        ])
        .arg(file.path())
        .args(extra);
        cmd
    };
    for extra in [&["--dry-run"][..], &[]] {
        let out = support::run(&mut as_builder(extra), 2);
        let err = support::stderr(&out);
        assert!(
            err.contains(&format!(
                "partitions orders_2025_03, orders_default are owned by {other}"
            )) && err.contains(&format!("GRANT \"{other}\" TO \"{builder}\";")),
            "{err}"
        );
        // PostgreSQL 15 checks CREATE on the schema for every new index.
        assert!(
            err.contains(&format!(
                "no CREATE on schema \"public\" (CREATE INDEX needs it): `GRANT CREATE ON SCHEMA \"public\" TO \"{builder}\";`"
            )),
            "{err}"
        );
    }
    assert_eq!(
        attached(&db, "idx_orders_scene"),
        (false, 0),
        "nothing was built"
    );
    db.client()
        .batch_execute(&format!(
            "GRANT {other} TO {builder}; GRANT CREATE ON SCHEMA public TO {builder}"
        ))
        .unwrap();
    support::run(&mut as_builder(&[]), 0);
    assert_eq!(attached(&db, "idx_orders_scene"), (true, partitions(&db)));
    db.client()
        .batch_execute(&format!(
            "REASSIGN OWNED BY {builder}, {other} TO postgres; DROP OWNED BY {builder}; \
             DROP ROLE {builder}; DROP ROLE {other}"
        ))
        .unwrap();
}
