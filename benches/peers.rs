// `cargo bench --bench peers`: o2o-db against the standard tools (psql, pgbench)
// on one throwaway PostgreSQL, in the same run, so the ratios are honest on a
// shared, noisy machine. Each figure is the median of several repetitions.
//
// Options (after `--`): --reps N (default 3), --orders N (the large size,
// default 1000000), --with-10m (adds the 10M-row scaling step: minutes).

use o2o_db::pg_sandbox::Sandbox;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

    seed_vs_copy(&sandbox, &opts, &mut table);
    startup(&opts, &mut table);

    table.print();
}

/// 1. o2o-db seed against psql \copy of the same rows from CSV (the server's ingest speed).
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

/// 4b. How long `o2o-db --help` takes to start.
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
