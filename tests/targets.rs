// [[targets]] in the config: --target picks one node, --all-targets runs
// verify, benchmark and pool-status on every node of a real fleet (a primary,
// its streaming replica, a pgbouncer in front of the primary) with one report
// and the worst exit code; a node that is not what the config says (a replica
// taking writes, a primary in recovery), two nodes taking writes and a dead
// node are findings of their own.

use crate::support::{self, fleet, pgbouncer::Bouncer};
use std::io::Write;

/// A config file naming the fleet's nodes as `(name, url, role)`.
fn config_file(targets: &[(&str, String, &str)]) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    for (name, url, role) in targets {
        writeln!(
            f,
            "[[targets]]\nname = \"{name}\"\nurl = \"{url}\"\nrole = \"{role}\"\n"
        )
        .unwrap();
    }
    f
}

fn node_url(port: u16) -> String {
    format!(
        "postgres://postgres@127.0.0.1:{port}/{}?sslmode=disable",
        fleet::DB
    )
}

/// A session on the node at `port`.
fn client(port: u16) -> postgres::Client {
    postgres::Client::connect(&node_url(port), postgres::NoTls).unwrap()
}

/// An index file of one statement.
fn index_file(statement: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".sql").tempfile().unwrap();
    writeln!(file, "{statement}").unwrap();
    file
}

fn run(config: &tempfile::NamedTempFile, args: &[&str], code: i32) -> (String, String) {
    let out = support::run(
        support::bare_cmd()
            .arg("--config")
            .arg(config.path())
            .args(args),
        code,
    );
    (support::stdout(&out), support::stderr(&out))
}

#[test]
fn all_targets_reports_each_node_and_target_picks_one() {
    let f = fleet::fleet();
    let config = config_file(&[
        ("primary", node_url(f.primary.port()), "primary"),
        ("replica1", node_url(f.replica.port()), "replica"),
    ]);
    let (text, _) = run(
        &config,
        &[
            "--all-targets",
            "benchmark",
            "--only",
            "latest_orders",
            "--iterations",
            "3",
        ],
        0,
    );
    let primary_at = format!(
        "== primary (config: primary; found: primary at 127.0.0.1:{}) ==",
        f.primary.port()
    );
    let replica_at = format!(
        "== replica1 (config: replica; found: standby at 127.0.0.1:{}) ==",
        f.replica.port()
    );
    assert!(
        text.contains(&primary_at) && text.contains(&replica_at),
        "{text}"
    );
    assert_eq!(
        text.matches("latest_orders").count(),
        2,
        "one table per node: {text}"
    );
    assert!(text.ends_with("fleet: 2 targets, 2 clean\n"), "{text}");

    let (json, _) = run(
        &config,
        &["--all-targets", "--format", "json", "pool-status"],
        0,
    );
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let nodes = doc["targets"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[1]["found"], "standby");
    assert!(nodes[1]["report"].is_object(), "{json}");

    // Prometheus: every sample labelled by node, each family once (promtool agrees).
    let (prom, _) = run(
        &config,
        &["--all-targets", "--format", "prometheus", "pool-status"],
        0,
    );
    assert!(
        prom.contains(r#"o2o_db_fleet_target_role_ok{node="replica1",expected_role="replica"} 1"#),
        "{prom}"
    );
    let helps: Vec<&str> = prom
        .lines()
        .filter(|l| l.starts_with("# HELP o2o_db_pool_max_size "))
        .collect();
    assert_eq!(helps.len(), 1, "{prom}");
    assert!(
        prom.contains("o2o_db_pool_max_size{node=\"primary\""),
        "{prom}"
    );
    assert!(
        prom.contains("o2o_db_pool_max_size{node=\"replica1\""),
        "{prom}"
    );
    crate::monitoring::promtool_accepts(&prom);

    // --target: one node, its own report.
    let (one, _) = run(
        &config,
        &["--target", "replica1", "--format", "json", "pool-status"],
        0,
    );
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(
        one["reached"],
        format!("127.0.0.1:{}", f.replica.port()),
        "--target replica1 reaches the replica: {one}"
    );
    let (_, err) = run(&config, &["--target", "replica", "verify"], 2);
    assert!(
        err.contains("no target named `replica`") && err.contains("did you mean `replica1`?"),
        "{err}"
    );
    let (_, err) = run(&config, &["--all-targets", "create-indexes"], 2);
    assert!(
        err.contains("--all-targets is for verify, benchmark and pool-status"),
        "{err}"
    );
}

#[test]
fn a_node_that_is_not_its_role_and_two_writable_nodes_are_findings() {
    let f = fleet::fleet();
    // The config still calls the replica the primary, as after a failover.
    let swapped = config_file(&[
        ("db1", node_url(f.replica.port()), "primary"),
        ("db2", node_url(f.primary.port()), "replica"),
    ]);
    let (text, _) = run(&swapped, &["--all-targets", "pool-status"], 1);
    assert!(
        text.contains("FAIL: the config says primary, but it is a standby"),
        "{text}"
    );
    assert!(
        text.contains("FAIL: the config says replica, but it takes writes"),
        "{text}"
    );
    let (line, _) = run(
        &swapped,
        &["--all-targets", "--format", "nagios", "pool-status"],
        2,
    );
    assert!(
        line.starts_with("O2O_DB POOL_STATUS CRITICAL - db1 CRITICAL"),
        "{line}"
    );

    // Two targets that both take writes (here: one server under two names).
    let twice = config_file(&[
        ("a", node_url(f.primary.port()), "primary"),
        ("b", node_url(f.primary.port()), "primary"),
    ]);
    let (text, _) = run(&twice, &["--all-targets", "pool-status"], 1);
    assert!(
        text.contains("FAIL: 2 nodes take writes: a, b (split brain"),
        "{text}"
    );
}

#[test]
fn a_dead_node_is_a_finding_and_the_others_still_run() {
    let f = fleet::fleet();
    let dead = fleet::dead_port();
    let config = config_file(&[
        ("primary", node_url(f.primary.port()), "primary"),
        (
            "gone",
            format!("{}&connect_timeout=2", node_url(dead)),
            "replica",
        ),
    ]);
    let started = std::time::Instant::now();
    let (text, _) = run(&config, &["--all-targets", "pool-status"], 1);
    assert!(
        text.contains(
            "== gone (config: replica; found: not reached) ==\ncould not run: cannot connect"
        ),
        "{text}"
    );
    assert!(
        text.contains("== primary (config: primary; found: primary at"),
        "{text}"
    );
    assert!(
        text.ends_with("fleet: 2 targets, 1 clean, findings on gone\n"),
        "{text}"
    );
    // Refused at once: no pool timeout is waited out.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_pgbouncer_target_gets_its_pooling_and_answers_for_the_node_behind_it() {
    let f = fleet::fleet();
    let bouncer = Bouncer::start_for(&f.primary, fleet::DB, "transaction", 2);
    let config = config_file(&[
        ("primary", node_url(f.primary.port()), "primary"),
        ("bouncer", bouncer.url(fleet::DB), "pgbouncer"),
    ]);
    let (json, _) = run(
        &config,
        &[
            "--all-targets",
            "--format",
            "json",
            "benchmark",
            "--only",
            "by_store",
            "--iterations",
            "3",
        ],
        0,
    );
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let nodes = doc["targets"].as_array().unwrap();
    assert_eq!(
        nodes[0]["report"]["meta"]["statements"], "prepared",
        "{json}"
    );
    assert_eq!(
        nodes[1]["report"]["meta"]["statements"], "unnamed",
        "{json}"
    );
    assert_eq!(
        nodes[1]["found"], "primary",
        "pgbouncer answers for the primary: {json}"
    );
    assert!(
        doc["findings"].as_array().unwrap().is_empty(),
        "pgbouncer is not a second writable node: {json}"
    );
}

#[test]
fn bad_targets_are_named_with_their_line() {
    let bad = |text: &str| {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        let (_, err) = run(&f, &["--all-targets", "pool-status"], 2);
        (err, f.path().display().to_string())
    };
    let (err, file) = bad("[[targets]]\nname = \"a\"\nurl = \"postgres://x@h/d\"\nrole = \"primary\"\n\n[[targets]]\nname = \"a\"\nurl = \"postgres://x@h/d\"\nrole = \"replica\"\n");
    assert!(
        err.contains(&format!("{file}:7: a second [[targets]] named `a`")),
        "{err}"
    );
    let (err, _) =
        bad("[[targets]]\nname = \"a\"\nurl = \"postgres://x@h/d\"\nrole = \"standby\"\n");
    assert!(err.contains(":4") && err.contains("standby"), "{err}");
    let (err, _) = bad("[[targets]]\nname = \"a\"\nrole = \"primary\"\n");
    assert!(err.contains("missing field `url`"), "{err}");
    let (err, file) = bad("");
    assert!(
        err.contains(&format!(
            "--all-targets runs on the [[targets]] of the config, and {file} names none"
        )),
        "{err}"
    );
}

/// An index the primary never uses but the replica's reads do is not "never
/// used": verify adds up every node's scans and says since when each counts.
#[test]
fn unused_indexes_are_judged_over_every_node() {
    let f = fleet::fleet();
    let index = format!("idx_fleet_scene_{}", std::process::id());
    let idle = format!("idx_fleet_idle_{}", std::process::id());
    let mut primary = client(f.primary.port());
    primary
        .batch_execute(&format!(
            "CREATE INDEX {index} ON orders (scene); CREATE INDEX {idle} ON orders (time_period)"
        ))
        .unwrap();
    let mut replica = client(f.replica.port());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while replica
        .query_one("SELECT to_regclass($1) IS NULL", &[&idle])
        .unwrap()
        .get::<_, bool>(0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the index never replayed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    replica
        .batch_execute("SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM orders WHERE scene = '堂食'")
        .unwrap();
    // A backend that ends flushes its statistics at once.
    drop(replica);
    let config = config_file(&[
        ("primary", node_url(f.primary.port()), "primary"),
        ("replica1", node_url(f.replica.port()), "replica"),
    ]);
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "--target",
            "primary",
            "--format",
            "json",
            "verify",
            "--only",
            "redundancy",
        ];
        args.extend(extra);
        let (json, _) = run(&config, &args, 0);
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        doc["checks"][0]["detail"].as_str().unwrap().to_string()
    };
    // The counters of the replica's scan reach its views within a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let detail = loop {
        let detail = verify(&[]);
        if !detail.contains(&index) || std::time::Instant::now() > deadline {
            break detail;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(detail.contains("on any of 2 nodes (here since"), "{detail}");
    assert!(detail.contains("replica1 since"), "{detail}");
    assert!(!detail.contains(&index), "used on the replica: {detail}");
    assert!(detail.contains(&idle), "used nowhere: {detail}");
    primary
        .batch_execute(&format!("DROP INDEX {index}; DROP INDEX {idle}"))
        .unwrap();
}

/// --wait-replicas: the build is not done until the replicas have it.
#[test]
fn create_indexes_waits_for_the_replicas_and_checks_the_indexes_there() {
    let f = fleet::fleet();
    let name = format!("idx_fleet_wait_{}", std::process::id());
    let file = index_file(&format!("CREATE INDEX {name} ON orders (channel);"));
    let config = config_file(&[
        ("primary", node_url(f.primary.port()), "primary"),
        ("replica1", node_url(f.replica.port()), "replica"),
    ]);
    let (json, _) = run(
        &config,
        &[
            "--target",
            "primary",
            "--format",
            "json",
            "create-indexes",
            "--wait-replicas",
            "30s",
            "--indexes",
        ]
        .into_iter()
        .chain([file.path().to_str().unwrap()])
        .collect::<Vec<_>>(),
        0,
    );
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let replicas = doc["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 1, "{json}");
    assert_eq!(replicas[0]["name"], "replica1");
    assert_eq!(replicas[0]["replayed"], true, "{json}");
    assert_eq!(replicas[0]["missing"], serde_json::json!([]), "{json}");
    let mut replica = client(f.replica.port());
    let there: bool = replica
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .unwrap()
        .get(0);
    assert!(
        there,
        "the index is on the replica when create-indexes returns"
    );

    // Without replica targets: the primary's pg_stat_replication.
    let (text, _) = run(
        &config_file(&[]),
        &[
            "--database-url",
            &node_url(f.primary.port()),
            "create-indexes",
            "--wait-replicas",
            "--indexes",
            file.path().to_str().unwrap(),
        ],
        0,
    );
    assert!(text.contains("replayed past the builds in"), "{text}");
    let mut primary = client(f.primary.port());
    primary
        .batch_execute(&format!("DROP INDEX {name}"))
        .unwrap();
}

/// A replica whose replay is paused is not ready: exit 1, said so, after the wait.
#[test]
fn a_replica_that_does_not_replay_in_time_is_a_finding() {
    let f = fleet::fleet();
    let paused = f.primary.start_replica().unwrap();
    let mut standby = client(paused.port());
    standby
        .batch_execute("SELECT pg_wal_replay_pause()")
        .unwrap();
    let name = format!("idx_fleet_paused_{}", std::process::id());
    let file = index_file(&format!("CREATE INDEX {name} ON orders (time_period);"));
    let config = config_file(&[
        ("primary", node_url(f.primary.port()), "primary"),
        ("paused", node_url(paused.port()), "replica"),
    ]);
    let (text, _) = run(
        &config,
        &[
            "--target",
            "primary",
            "create-indexes",
            "--wait-replicas",
            "2s",
            "--indexes",
            file.path().to_str().unwrap(),
        ],
        1,
    );
    assert!(
        text.contains("replica paused: not replayed past the builds after 2."),
        "{text}"
    );
    standby
        .batch_execute("SELECT pg_wal_replay_resume()")
        .unwrap();
    let mut primary = client(f.primary.port());
    primary
        .batch_execute(&format!("DROP INDEX {name}"))
        .unwrap();
}

/// A real failover: a replica promoted while the old primary still runs is
/// noticed as a replica taking writes and as two writable nodes.
#[test]
fn a_promoted_replica_is_noticed() {
    let f = fleet::fleet();
    let promoted = f.primary.start_replica().unwrap();
    let mut standby = client(promoted.port());
    let done: bool = standby
        .query_one("SELECT pg_promote(true, 30)", &[])
        .unwrap()
        .get(0);
    assert!(done, "promotion finished");
    let config = config_file(&[
        ("primary", node_url(f.primary.port()), "primary"),
        ("replica2", node_url(promoted.port()), "replica"),
    ]);
    let (text, _) = run(
        &config,
        &["--all-targets", "verify", "--only", "connectivity"],
        1,
    );
    assert!(
        text.contains(&format!(
            "== replica2 (config: replica; found: primary at 127.0.0.1:{}) ==",
            promoted.port()
        )),
        "{text}"
    );
    assert!(
        text.contains("FAIL: the config says replica, but it takes writes"),
        "{text}"
    );
    assert!(
        text.contains("FAIL: 2 nodes take writes: primary, replica2 (split brain"),
        "{text}"
    );
}

/// A replica stopped in the middle of a benchmark costs the runs on it their
/// connect attempts, not the pool's 30 s timeout each.
#[test]
fn a_replica_stopped_mid_benchmark_ends_the_run_promptly() {
    let f = fleet::fleet();
    let mut replica = f.primary.start_replica().unwrap();
    let url = format!("{}&connect_timeout=2", node_url(replica.port()));
    let started = std::time::Instant::now();
    let child = support::bare_std_cmd()
        .args(["--database-url", &url, "--format", "json", "benchmark"])
        .args([
            "--only",
            "by_store,latest_orders",
            "--clients",
            "4",
            "--duration",
            "3s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    replica.stop().unwrap();
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    // Two queries of 3 s each, plus connect attempts: far from 2 x 30 s per client.
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: u64 = report["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["errors"].as_u64().unwrap())
        .sum();
    assert!(
        errors > 0,
        "the runs after the stop failed and were counted: {report}"
    );
}

/// A session-mode pgbouncer looks like PostgreSQL from the client side: its
/// target's admin_url gives pool-status its console, so its server
/// connections are shown as its pool, not as the application's.
#[test]
fn a_pgbouncer_targets_admin_url_gives_pool_status_its_console() {
    let f = fleet::fleet();
    let bouncer = Bouncer::start_for(&f.primary, fleet::DB, "session", 4);
    let mut config = config_file(&[("bouncer", bouncer.url(fleet::DB), "pgbouncer")]);
    writeln!(config, "admin_url = \"{}\"", bouncer.url("pgbouncer")).unwrap();
    // Two clients in session mode: two server connections held for them.
    let held: Vec<postgres::Client> = (0..2)
        .map(|_| postgres::Client::connect(&bouncer.url(fleet::DB), postgres::NoTls).unwrap())
        .map(|mut c| {
            c.batch_execute("SELECT 1").unwrap();
            c
        })
        .collect();
    let (json, _) = run(
        &config,
        &["--target", "bouncer", "--format", "json", "pool-status"],
        0,
    );
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        doc["pgbouncer"]["version"]
            .as_str()
            .unwrap_or_default()
            .starts_with("PgBouncer"),
        "{json}"
    );
    let pooled: i64 = doc["server"]["pooler_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["connections"].as_i64().unwrap())
        .sum();
    assert!(
        pooled >= 2,
        "pgbouncer's server connections are its pool: {json}"
    );
    drop(held);
}
