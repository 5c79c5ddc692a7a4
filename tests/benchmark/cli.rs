// benchmark's command line: the p95 limit and the exit codes, and the JSON
// and CSV forms with their documented fields.

use crate::support::{self, TestDb};

#[test]
fn the_p95_limit_sets_the_exit_code() {
    let db = TestDb::seeded("bench_threshold", 2000);
    let base = [
        "benchmark",
        "--only",
        "by_store,latest_orders",
        "--iterations",
        "5",
    ];
    let ok = support::run(db.cmd().args(base).args(["--max-p95-ms", "100000"]), 0);
    assert!(support::stdout(&ok).contains("every query under it"));
    assert!(
        support::stderr(&ok).is_empty(),
        "no progress off a terminal"
    );
    let slow = support::run(
        db.cmd()
            .args(base)
            .args(["--max-p95-ms", "0.0001", "--format", "json"]),
        1,
    );
    let json: serde_json::Value = serde_json::from_slice(&slow.stdout).unwrap();
    assert_eq!(json["meta"]["max_p95_ms"], 0.0001);
    let queries = json["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 2, "{json}");
    for q in queries {
        assert_eq!(q["over_max_p95"], true, "{q}");
    }
    // The config's [alert] query_ms is the default limit.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("o2o-db.toml");
    std::fs::write(&cfg, "[alert]\nquery_ms = 0.0001\n").unwrap();
    let from_config = support::run(
        db.cmd()
            .args(["--config", cfg.to_str().unwrap()])
            .args(base),
        1,
    );
    assert!(support::stdout(&from_config).contains("p95 over limit"));
    // Could not run: exit 2 with the reason.
    let bad = support::run(db.cmd().args(["benchmark", "--only", "no_such_query"]), 2);
    assert!(
        support::stderr(&bad).contains("no query named no_such_query"),
        "{}",
        support::stderr(&bad)
    );
}

#[test]
fn csv_and_json_parse_with_the_documented_fields() {
    let db = TestDb::seeded("bench_formats", 2000);
    let generous = support::GENEROUS_MS.to_string();
    let args = [
        "benchmark",
        "--only",
        "store_date,latest_orders",
        "--iterations",
        "4",
        "--compare-seqscan",
        "--fixed-params",
        "--max-p95-ms",
        &generous,
    ];
    let out = support::run(db.cmd().args(args).args(["--format", "json"]), 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "server_version",
        "orders",
        "clients",
        "iterations",
        "warmup",
        "seed",
        "started_at",
    ] {
        assert!(!json["meta"][key].is_null(), "meta.{key} missing: {json}");
    }
    let queries = json["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 2);
    for q in queries {
        for key in [
            "iterations",
            "errors",
            "rows",
            "min_ms",
            "mean_ms",
            "stddev_ms",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "max_ms",
            "qps",
            "seqscan_p50_ms",
            "speedup",
        ] {
            assert!(q[key].is_number(), "{key} in {q}");
        }
    }
    // --fixed-params shows the values bound, as SQL literals.
    let params = queries[0]["params"].as_array().unwrap();
    assert_eq!(params.len(), 3);
    assert!(
        params[1].as_str().unwrap().ends_with("::date"),
        "{params:?}"
    );
    assert!(queries[1]
        .get("params")
        .unwrap()
        .as_array()
        .unwrap()
        .is_empty());

    let out = support::run(db.cmd().args(args).args(["--format", "csv"]), 0);
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header = reader.headers().unwrap().clone();
    assert_eq!(
        &header.iter().take(3).collect::<Vec<_>>(),
        &["name", "iterations", "errors"]
    );
    for col in ["p95_ms", "qps", "seqscan_p50_ms", "speedup", "params"] {
        assert!(header.iter().any(|h| h == col), "{col} not in {header:?}");
    }
    // The reader refuses a row whose field count differs from the header's.
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let get = |c: &str| &row[header.iter().position(|h| h == c).unwrap()];
        assert_eq!(get("iterations"), "4");
        for c in ["min_ms", "p50_ms", "p99_ms", "max_ms", "qps", "speedup"] {
            get(c)
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("{c} = {:?}", get(c)));
        }
    }
    assert_eq!(&rows[0][0], "store_date");
    assert!(rows[0][header.iter().position(|h| h == "params").unwrap()].contains("::date"));
}
