// `cargo bench --bench peers`: o2o-db against the standard tools (psql, pgbench)
// on one throwaway PostgreSQL, in the same run, so the ratios are honest on a
// shared, noisy machine. Each figure is the median of several repetitions.
//
// Options (after `--`): --reps N (default 3), --orders N (the large size,
// default 1000000), --with-10m (adds the 10M-row scaling step: minutes),
// --only SECTION (seed, indexes, benchmark, verify, scaling, partitioned, fleet,
// startup; repeatable).

use o2o_db::pg_sandbox::Sandbox;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "peers/fleet.rs"]
mod fleet;
#[path = "peers/partitioned.rs"]
mod partitioned;
mod support;
use support::*;

fn main() {
    let opts = Options::from_args();
    let sandbox = Sandbox::start().unwrap_or_else(|e| fail(&format!("{e:#}")));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "o2o-db peers bench: {cores} cores, {} orders (large), {} repetitions, PostgreSQL in {}",
        opts.orders,
        opts.reps,
        sandbox.root().display()
    );
    let mut table = Rows::default();

    if opts.wants("seed") {
        seed_vs_copy(&sandbox, &opts, &mut table);
    }
    if opts.wants("indexes") {
        indexes_vs_psql(&sandbox, &opts, &mut table);
    }
    if opts.wants("benchmark") || opts.wants("verify") {
        let report_db = indexed_db(&sandbox, "peers_report", o2o_db::seed_data::DEFAULT_ORDERS);
        if opts.wants("benchmark") {
            benchmark_vs_pgbench(&sandbox, &report_db, &opts, &mut table);
        }
        if opts.wants("verify") {
            verify_time(&sandbox, &report_db, &opts, &mut table);
        }
    }
    if opts.wants("scaling") {
        scaling(&sandbox, &opts, &mut table);
    }
    if opts.wants("partitioned") {
        partitioned::versus_psql(&sandbox, &opts, &mut table);
    }
    if opts.wants("fleet") {
        fleet::versus_peers(&sandbox, &opts, &mut table);
    }
    if opts.wants("startup") {
        startup(&opts, &mut table);
    }

    table.print();
    if table.missed() {
        println!("{LIMITS}");
    }
}

/// What limits the targets this machine misses, measured while profiling them.
const LIMITS: &str = "\
Known limits where a target is missed:
- benchmark mean, 1 client, queries under ~0.2 ms: the postgres crate's synchronous
  client spends ~3 µs more per call than pgbench's libpq loop (a Tokio runtime turn per
  call: wake-up, epoll_wait, channel hop); o2o-db times only the execution of a statement
  prepared once per connection and decodes no rows, so that is what remains. Slower
  queries are within 1.05 (the gap is a constant, not a share).
- benchmark throughput, 20 clients, 2 cores: o2o-db runs 20 client threads (one per
  client, through the pool) against pgbench's 2 threads multiplexing 20 connections;
  on 2 cores those threads compete with the 20 server backends for CPU.
- create-indexes: every strategy spends 11-12.5 server CPU-seconds on 2 cores (the
  machine's limit); the ratios sit at 1.00 +/- noise.";

/// Section 1. o2o-db seed against psql \copy of the same rows from CSV (the server's ingest speed).
fn seed_vs_copy(sandbox: &Sandbox, opts: &Options, table: &mut Rows) {
    let n = opts.orders;
    // The CSV psql loads: exactly the rows o2o-db seed writes, exported once.
    let source = fresh_db(sandbox, "peers_seed_source");
    run_o2o(
        sandbox,
        &source,
        &[
            "seed",
            "--create-schema",
            "--no-analyze",
            "--orders",
            &n.to_string(),
        ],
    );
    let csv = sandbox.root().join("orders.csv");
    psql(
        sandbox,
        &source,
        &format!("\\copy orders TO '{}' WITH (FORMAT csv)", csv.display()),
    );
    let mut o2o_times = Vec::new();
    let mut psql_times = Vec::new();
    let mut peak_rss = 0;
    for rep in 0..opts.reps {
        let db = fresh_db(sandbox, &format!("peers_seed_o2o_{rep}"));
        psql(sandbox, &db, o2o_db::commands::seed::SCHEMA_SQL);
        let (t, rss) = timed_o2o(
            sandbox,
            &db,
            &["seed", "--no-analyze", "--orders", &n.to_string()],
        );
        o2o_times.push(t);
        peak_rss = peak_rss.max(rss);
        let db = fresh_db(sandbox, &format!("peers_seed_psql_{rep}"));
        psql(sandbox, &db, o2o_db::commands::seed::SCHEMA_SQL);
        let started = Instant::now();
        psql(
            sandbox,
            &db,
            &format!("\\copy orders FROM '{}' WITH (FORMAT csv)", csv.display()),
        );
        psql_times.push(started.elapsed());
    }
    let o2o = median(&o2o_times);
    let peer = median(&psql_times);
    table.push(Row {
        what: format!("seed {n} orders (rows/s)"),
        o2o: format!("{:.0}", n as f64 / o2o.as_secs_f64()),
        peer: format!("{:.0} (psql \\copy csv)", n as f64 / peer.as_secs_f64()),
        ratio: peer.as_secs_f64() / o2o.as_secs_f64(),
        target: "≥ 0.90".into(),
        met: peer.as_secs_f64() / o2o.as_secs_f64() >= 0.90,
    });
    // Flat memory: peak RSS at the large size and at a tenth of it.
    let small = (n / 10).max(1000);
    let db = fresh_db(sandbox, "peers_seed_small");
    psql(sandbox, &db, o2o_db::commands::seed::SCHEMA_SQL);
    let (_, small_rss) = timed_o2o(
        sandbox,
        &db,
        &["seed", "--no-analyze", "--orders", &small.to_string()],
    );
    table.push(Row {
        what: format!("seed peak memory, {small} → {n} orders"),
        o2o: format!("{} → {} MB", small_rss / 1024, peak_rss / 1024),
        peer: "-".into(),
        ratio: peak_rss as f64 / small_rss.max(1) as f64,
        target: "≤ 1.20 (flat)".into(),
        met: (peak_rss as f64) <= small_rss as f64 * 1.2,
    });
    if opts.with_10m {
        let db = fresh_db(sandbox, "peers_seed_10m");
        psql(sandbox, &db, o2o_db::commands::seed::SCHEMA_SQL);
        let (t, rss) = timed_o2o(
            sandbox,
            &db,
            &["seed", "--no-analyze", "--orders", "10000000"],
        );
        table.push(Row {
            what: "seed 10M orders: rows/s, peak memory".into(),
            o2o: format!("{:.0} rows/s, {} MB", 1e7 / t.as_secs_f64(), rss / 1024),
            peer: "-".into(),
            ratio: rss as f64 / small_rss.max(1) as f64,
            target: "≤ 1.20 (flat)".into(),
            met: (rss as f64) <= small_rss as f64 * 1.2,
        });
    }
}

/// A seeded database with the 11 managed indexes, built by psql, analyzed.
pub fn indexed_db(sandbox: &Sandbox, name: &str, orders: u64) -> String {
    let db = fresh_db(sandbox, name);
    run_o2o(
        sandbox,
        &db,
        &["seed", "--create-schema", "--orders", &orders.to_string()],
    );
    psql(sandbox, &db, &index_statements(false).join(";\n"));
    psql(sandbox, &db, "VACUUM ANALYZE orders");
    db
}

/// The managed index set as plain or concurrent CREATE INDEX statements.
fn index_statements(concurrently: bool) -> Vec<String> {
    o2o_db::sqlfiles::IndexSet::builtin()
        .unwrap_or_else(|e| fail(&format!("{e:#}")))
        .indexes
        .iter()
        .map(|i| i.create_sql(concurrently))
        .collect()
}

/// Section 2. The 11 builds on the large table: o2o-db --no-concurrently --jobs 2
/// against the faster of psql one by one and two psql sessions with half each;
/// the default concurrent path against psql's CONCURRENTLY statements one by one.
fn indexes_vs_psql(sandbox: &Sandbox, opts: &Options, table: &mut Rows) {
    let n = opts.orders;
    let db = fresh_db(sandbox, "peers_indexes");
    run_o2o(
        sandbox,
        &db,
        &["seed", "--create-schema", "--orders", &n.to_string()],
    );
    let plain = index_statements(false);
    let concurrent = index_statements(true);
    let (odd, even): (Vec<_>, Vec<_>) = plain
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let halves = [
        odd.into_iter().map(|(_, s)| s).collect::<Vec<_>>(),
        even.into_iter().map(|(_, s)| s).collect::<Vec<_>>(),
    ];
    let [one_by_one, two_sessions, jobs2, psql_conc, o2o_conc] = rotate(
        opts.reps,
        &|| drop_managed(sandbox, &db),
        [
            &|| wait_all(vec![psql_file(sandbox, &db, "plain.sql", &plain)]),
            &|| {
                wait_all(vec![
                    psql_file(sandbox, &db, "half1.sql", &halves[0]),
                    psql_file(sandbox, &db, "half2.sql", &halves[1]),
                ])
            },
            &|| {
                run_o2o(
                    sandbox,
                    &db,
                    &[
                        "create-indexes",
                        "--no-concurrently",
                        "--jobs",
                        "2",
                        "--no-analyze",
                    ],
                )
            },
            &|| wait_all(vec![psql_file(sandbox, &db, "conc.sql", &concurrent)]),
            &|| run_o2o(sandbox, &db, &["create-indexes", "--no-analyze"]),
        ],
    );
    let best = one_by_one.min(two_sessions);
    table.push(Row {
        what: format!("create-indexes --no-concurrently --jobs 2, {n} orders (s)"),
        o2o: format!("{jobs2:.2}"),
        peer: format!(
            "{best:.2} (psql: one by one {one_by_one:.2}, two sessions {two_sessions:.2})"
        ),
        ratio: jobs2 / best,
        target: "≤ 1.00".into(),
        met: jobs2 / best <= 1.0,
    });
    table.push(Row {
        what: format!("create-indexes (CONCURRENTLY), {n} orders (s)"),
        o2o: format!("{o2o_conc:.2}"),
        peer: format!("{psql_conc:.2} (psql CONCURRENTLY one by one)"),
        ratio: o2o_conc / psql_conc,
        target: "≤ 1.05".into(),
        met: o2o_conc / psql_conc <= 1.05,
    });
}

/// Each strategy timed `reps` times in rotation, `reset` before every run
/// (so none always runs on a warmer cache than another): the medians, in seconds.
pub fn rotate<const N: usize>(
    reps: usize,
    reset: &dyn Fn(),
    strategies: [&dyn Fn(); N],
) -> [f64; N] {
    let mut times: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::new());
    for _ in 0..reps {
        for (i, strategy) in strategies.iter().enumerate() {
            reset();
            times[i].push(time(strategy));
        }
    }
    times.map(|t| median(&t).as_secs_f64())
}

/// Drops the managed indexes (on a partitioned table with their partitions'),
/// then a checkpoint, so each timed build starts from the same state.
pub fn drop_managed(sandbox: &Sandbox, db: &str) {
    let drops: Vec<String> = o2o_db::sqlfiles::IndexSet::builtin()
        .unwrap_or_else(|e| fail(&format!("{e:#}")))
        .indexes
        .iter()
        .map(|i| i.drop_sql(false))
        .collect();
    psql(sandbox, db, &drops.join(";"));
    psql(sandbox, db, "CHECKPOINT");
}

/// Section 5. How seed, create-indexes and verify grow from the report's size to the large one (and 10M).
fn scaling(sandbox: &Sandbox, opts: &Options, table: &mut Rows) {
    let mut sizes = vec![o2o_db::seed_data::DEFAULT_ORDERS, opts.orders];
    if opts.with_10m {
        sizes.push(10_000_000);
    }
    let mut first: Option<(f64, f64, f64)> = None;
    for n in sizes {
        let db = fresh_db(sandbox, &format!("peers_scale_{n}"));
        let seed = time(|| {
            run_o2o(
                sandbox,
                &db,
                &["seed", "--create-schema", "--orders", &n.to_string()],
            )
        })
        .as_secs_f64();
        let build = time(|| run_o2o(sandbox, &db, &["create-indexes"])).as_secs_f64();
        let verify = median(
            &(0..3)
                .map(|_| time(|| drop(o2o_output(sandbox, &db, &["verify"]))))
                .collect::<Vec<_>>(),
        )
        .as_secs_f64();
        let (s0, b0, v0) = *first.get_or_insert((seed, build, verify));
        let rows_ratio = n as f64 / o2o_db::seed_data::DEFAULT_ORDERS as f64;
        // Linear growth is the expectation; fixed costs make small sizes look dearer.
        let linear = seed / s0 <= rows_ratio * 1.5 && build / b0 <= rows_ratio * 1.5;
        table.push(Row {
            what: format!("scaling at {n} orders: seed / create-indexes / verify (s)"),
            o2o: format!("{seed:.2} / {build:.2} / {verify:.2}"),
            peer: format!(
                "×{:.1} / ×{:.1} / ×{:.1} of the smallest",
                seed / s0,
                build / b0,
                verify / v0
            ),
            ratio: rows_ratio,
            target: "seed, build ≤ 1.5 × rows ratio".into(),
            met: linear,
        });
        let _ = sandbox.drop_database(&db);
    }
}

/// Section 3. Every query of the suite: o2o-db's mean latency (one client) against
/// pgbench -M prepared on the same SQL and the same bound values, and
/// throughput with 20 clients against pgbench -c 20 -j 2.
fn benchmark_vs_pgbench(sandbox: &Sandbox, db: &str, opts: &Options, table: &mut Rows) {
    let suite = o2o_db::sqlfiles::QuerySuite::builtin().unwrap_or_else(|e| fail(&format!("{e:#}")));
    let direct = Via::direct(sandbox, db);
    let mut worst_latency = (0.0f64, String::new());
    let mut worst_tps = (f64::MAX, String::new());
    for q in &suite.queries {
        let probe = Probe::of(q, &direct);
        let row = latency_row(sandbox, db, &direct, &probe, opts);
        if row.ratio > worst_latency.0 {
            worst_latency = (row.ratio, q.name.clone());
        }
        table.push(row);
        let row = throughput_row(sandbox, db, &direct, &probe, opts);
        if row.ratio < worst_tps.0 {
            worst_tps = (row.ratio, q.name.clone());
        }
        table.push(row);
    }
    eprintln!(
        "  worst latency ratio {:.3} ({}), worst throughput ratio {:.3} ({})",
        worst_latency.0, worst_latency.1, worst_tps.0, worst_tps.1
    );
}

/// Where o2o-db and pgbench connect: the sandbox itself, a replica, a pgbouncer.
pub struct Via {
    pub url: String,
    /// None: the sandbox's socket.
    pub port: Option<u16>,
    /// pgbench -M.
    pub mode: &'static str,
    pub label: &'static str,
}

impl Via {
    pub fn direct(sandbox: &Sandbox, db: &str) -> Via {
        Via {
            url: sandbox.url(db),
            port: None,
            mode: "prepared",
            label: "",
        }
    }
}

/// A query sized to about half a second of runs, with the bound values pgbench gets.
pub struct Probe {
    pub name: String,
    pub runs: u64,
    pub script: String,
    pub defines: Vec<String>,
}

impl Probe {
    pub fn of(q: &o2o_db::sqlfiles::QuerySpec, via: &Via) -> Probe {
        let probe = o2o_json(via, &q.name, &["--iterations", "50", "--warmup", "10"]);
        let mean = probe["queries"][0]["mean_ms"]
            .as_f64()
            .unwrap_or(1.0)
            .max(0.01);
        let params: Vec<String> = probe["queries"][0]["params"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(raw_value)).collect())
            .unwrap_or_default();
        Probe {
            name: q.name.clone(),
            runs: ((500.0 / mean) as u64).clamp(100, 10_000),
            script: pgbench_script(&q.sql, params.len()),
            defines: params
                .iter()
                .enumerate()
                .map(|(i, v)| format!("p{}={v}", i + 1))
                .collect(),
        }
    }
}

/// o2o-db's benchmark JSON for one query with fixed parameters.
pub fn o2o_json(via: &Via, query: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec![
        "--format",
        "json",
        "benchmark",
        "--only",
        query,
        "--fixed-params",
        "--max-p95-ms",
        "1000000",
    ];
    all.extend_from_slice(args);
    serde_json::from_str(&o2o_output_at(&via.url, &all))
        .unwrap_or_else(|e| fail(&format!("benchmark json: {e}")))
}

/// One client: o2o-db's mean latency against pgbench's, medians of the repetitions.
pub fn latency_row(sandbox: &Sandbox, db: &str, via: &Via, probe: &Probe, opts: &Options) -> Row {
    let runs = probe.runs.to_string();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..opts.reps {
        let r = o2o_json(via, &probe.name, &["--iterations", &runs, "--warmup", "20"]);
        ours.push(r["queries"][0]["mean_ms"].as_f64().unwrap_or(f64::NAN));
        theirs.push(pgbench(sandbox, db, &pgbench_run(via, probe, 1, 1, None)).latency_ms);
    }
    let (o, p) = (median_f(&ours), median_f(&theirs));
    Row {
        what: format!("benchmark {}{} mean, 1 client (ms)", probe.name, via.label),
        o2o: format!("{o:.3}"),
        peer: format!("{p:.3} (pgbench -M {})", via.mode),
        ratio: o / p,
        target: "≤ 1.05".into(),
        met: o / p <= 1.05,
    }
}

/// 20 clients: o2o-db's throughput against pgbench -c 20 -j 2's.
pub fn throughput_row(
    sandbox: &Sandbox,
    db: &str,
    via: &Via,
    probe: &Probe,
    opts: &Options,
) -> Row {
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..opts.reps {
        let r = o2o_json(
            via,
            &probe.name,
            &["--clients", "20", "--duration", "2s", "--warmup", "100"],
        );
        ours.push(r["queries"][0]["qps"].as_f64().unwrap_or(f64::NAN));
        theirs.push(pgbench(sandbox, db, &pgbench_run(via, probe, 20, 2, Some(2))).tps);
    }
    let (o, p) = (median_f(&ours), median_f(&theirs));
    Row {
        what: format!(
            "benchmark {}{} throughput, 20 clients (qps)",
            probe.name, via.label
        ),
        o2o: format!("{o:.0}"),
        peer: format!("{p:.0} (pgbench -M {} -c 20 -j 2)", via.mode),
        ratio: o / p,
        target: "≥ 0.95".into(),
        met: o / p >= 0.95,
    }
}

fn pgbench_run<'a>(
    via: &'a Via,
    probe: &'a Probe,
    clients: u32,
    jobs: u32,
    seconds: Option<u64>,
) -> PgbenchRun<'a> {
    PgbenchRun {
        mode: via.mode,
        port: via.port,
        script: &probe.script,
        defines: &probe.defines,
        clients,
        jobs,
        transactions: probe.runs,
        seconds,
    }
}

/// `'x''y'::text` → `x'y`: the value pgbench binds for a -D variable.
fn raw_value(literal: &str) -> String {
    let body = literal.rsplit_once("::").map_or(literal, |(v, _)| v);
    body.trim_matches('\'').replace("''", "'")
}

/// The suite's SQL with $n as pgbench variables :pn (bound as parameters under -M prepared).
fn pgbench_script(sql: &str, params: usize) -> String {
    let mut s = sql.to_string();
    for i in (1..=params).rev() {
        s = s.replace(&format!("${i}"), &format!(":p{i}"));
    }
    format!("{};\n", s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Section 4a. verify's wall time on the report's 93,728 orders (and the large size, in scaling).
fn verify_time(sandbox: &Sandbox, db: &str, opts: &Options, table: &mut Rows) {
    let times: Vec<Duration> = (0..opts.reps.max(3))
        .map(|_| time(|| drop(o2o_output(sandbox, db, &["verify"]))))
        .collect();
    let t = median(&times);
    table.push(Row {
        what: "verify wall time, 93728 orders".into(),
        o2o: format!("{:.0} ms", t.as_secs_f64() * 1000.0),
        peer: "-".into(),
        ratio: 1.0,
        target: "< 1000 ms".into(),
        met: t < Duration::from_secs(1),
    });
}

/// Section 4b. How long `o2o-db --help` takes to start.
fn startup(opts: &Options, table: &mut Rows) {
    let bin = env!("CARGO_BIN_EXE_o2o-db");
    let mut times = Vec::new();
    for _ in 0..opts.reps.max(5) {
        let started = Instant::now();
        let ok = Command::new(bin)
            .arg("--help")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            fail("o2o-db --help failed");
        }
        times.push(started.elapsed());
    }
    let t = median(&times);
    table.push(Row {
        what: "o2o-db --help start-up".into(),
        o2o: format!("{:.1} ms", t.as_secs_f64() * 1000.0),
        peer: "-".into(),
        ratio: 1.0,
        target: "< 50 ms".into(),
        met: t < Duration::from_millis(50),
    });
}
