// examples/: the custom-table index set and suite work end to end, and the
// example programs run against a seeded database.

use crate::support::{self, TestDb};

const MENU_SQL: &str = include_str!("../examples/menu/menu.sql");

#[test]
fn another_tables_index_set_and_suite_work() {
    let db = TestDb::empty("examples_menu");
    db.client().batch_execute(MENU_SQL).unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/menu");
    let indexes = format!("{dir}/indexes.sql");
    let queries = format!("{dir}/queries.sql");
    let out = support::run(
        db.cmd()
            .args(["--format", "json", "create-indexes", "--indexes", &indexes]),
        0,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["created"], 3);
    let out = support::run(
        db.cmd().args([
            "--format",
            "json",
            "verify",
            "--only",
            "schema,indexes,planner",
            "--indexes",
            &indexes,
            "--queries",
            &queries,
        ]),
        0,
    );
    let text = support::stdout(&out);
    assert!(
        text.contains("idx_menu_in_stock_price"),
        "the partial index should serve cheapest_in_stock: {text}"
    );
    let out = support::run(
        db.cmd().args([
            "--format",
            "json",
            "benchmark",
            "--queries",
            &queries,
            "--iterations",
            "5",
            "--compare-seqscan",
            "--max-p95-ms",
            &support::GENEROUS_MS.to_string(),
        ]),
        0,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["category_items", "cheapest_in_stock", "recently_updated"]
    );
    // The orders table is not needed, and was never created.
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_class WHERE relname = 'orders'"),
        0
    );
}

#[test]
fn example_programs_run_against_a_seeded_database() {
    let db = TestDb::seeded("examples_programs", 3000);
    for (name, wants) in [
        (
            "session",
            vec![
                "(committed)",
                "refused and rolled back",
                "cannot execute DELETE in a read-only transaction",
                "every session gave its connection back",
            ],
        ),
        ("monitor", vec!["pool:", "checkouts", "server:"]),
    ] {
        let out = std::process::Command::new(env!("CARGO"))
            .args(["run", "-q", "--example", name, "--"])
            .arg(db.url())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for w in wants {
            assert!(text.contains(w), "{name}: `{w}` missing in:\n{text}");
        }
    }
}
