// `cargo bench --bench soak`: the load and soak figures of issue 8, printed,
// never asserted (2 shared cores). On a throwaway PostgreSQL seeded like the
// V8.5 report (93,728 orders, indexes built):
//   (a) load: the built-in suite with 100 clients against the default pool of
//       60, so clients queue: errors, pool waits and throughput;
//   (b) soak: verify, benchmark and pool-status --load in a loop, in-process
//       through the library, printing this process's RSS every iteration (it
//       should stay flat) and, at the end, the server's connections to the
//       database (only the probe's own should be left).
//
// Options (after `--`): --minutes N (soak length, default 3; fractions allowed),
// --load-seconds N (length of (a) over the whole suite, default 60),
// --orders N (default 93728).

use o2o_db::commands::benchmark::{self, BenchmarkArgs};
use o2o_db::commands::create_indexes::{self, CreateIndexesArgs};
use o2o_db::commands::pool_status::{self, PoolStatusArgs};
use o2o_db::commands::seed::{self, SeedArgs};
use o2o_db::commands::verify::{self, VerifyArgs};
use o2o_db::config::{Config, HumanDuration};
use o2o_db::pg_sandbox::Sandbox;
use std::time::{Duration, Instant};

struct Options {
    minutes: f64,
    load_seconds: f64,
    orders: u64,
}

impl Options {
    fn from_args() -> Options {
        let mut o = Options {
            minutes: 3.0,
            load_seconds: 60.0,
            orders: 93_728,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--minutes" => o.minutes = number(args.next()),
                "--load-seconds" => o.load_seconds = number(args.next()),
                "--orders" => o.orders = number(args.next()),
                "--bench" => {} // cargo bench passes this
                other => fail(&format!(
                    "unknown option {other}; use --minutes N, --load-seconds N, --orders N"
                )),
            }
        }
        o
    }
}

fn number<T: std::str::FromStr>(v: Option<String>) -> T {
    v.and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fail("expected a number after the option"))
}

fn fail(msg: &str) -> ! {
    eprintln!("soak bench: {msg}");
    std::process::exit(2)
}

fn or_fail<T>(what: &str, r: anyhow::Result<T>) -> T {
    r.unwrap_or_else(|e| fail(&format!("{what}: {e:#}")))
}

/// This process's resident memory in kB, from /proc/self/status.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let opts = Options::from_args();
    let sandbox = or_fail("start PostgreSQL", Sandbox::start());
    let mut config = Config::defaults();
    config.conn = sandbox.conn_info("o2o_soak");
    println!(
        "o2o-db soak bench: {} orders, pool {} + {} overflow = {}, load {} s, soak {} min, PostgreSQL in {}",
        opts.orders,
        config.pool.size,
        config.pool.max_overflow,
        config.pool.max_size(),
        opts.load_seconds,
        opts.minutes,
        sandbox.root().display()
    );
    let seeding = SeedArgs {
        orders: opts.orders,
        create_schema: true,
        ..SeedArgs::default()
    };
    or_fail("seed", seed::run(&config, &seeding));
    let built = or_fail(
        "create-indexes",
        create_indexes::run(&config, &CreateIndexesArgs::default()),
    );
    println!(
        "seeded and indexed: {} indexes created, {} failed",
        built.summary.created, built.summary.failed
    );

    load(&config, &opts);
    soak(&config, &opts);
}

/// (a) 100 clients over the whole suite against the default pool.
fn load(config: &Config, opts: &Options) {
    let queries = 9.0; // the built-in suite; each query gets its share of the time
    let per_query =
        Duration::from_millis((opts.load_seconds / queries * 1000.0).max(1000.0) as u64);
    let args = BenchmarkArgs {
        clients: 100,
        duration: Some(HumanDuration(per_query)),
        ..BenchmarkArgs::default()
    };
    let started = Instant::now();
    let report = or_fail("benchmark --clients 100", benchmark::run(config, &args));
    let wall = started.elapsed();
    println!(
        "\n(a) benchmark --clients 100, {} per query, pool max_size {}: {:.1} s",
        humantime::format_duration(per_query),
        config.pool.max_size(),
        wall.as_secs_f64()
    );
    println!(
        "{:<28} {:>9} {:>7} {:>9} {:>9} {:>10} {:>10}",
        "query", "runs", "errors", "qps", "p95 ms", "wait mean", "wait max"
    );
    let (mut runs, mut errors) = (0u64, 0u64);
    for q in &report.queries {
        runs += q.figures.iterations;
        errors += q.figures.errors;
        println!(
            "{:<28} {:>9} {:>7} {:>9.1} {:>9.2} {:>10.2} {:>10.2}",
            q.name,
            q.figures.iterations,
            q.figures.errors,
            q.qps,
            q.figures.p95_ms,
            q.wait_mean_ms.unwrap_or(0.0),
            q.wait_max_ms.unwrap_or(0.0)
        );
    }
    let pool = report.meta.pool.as_ref();
    println!(
        "total: {runs} runs, {errors} errors, {:.1} runs/s over the run; pool: {} checkouts, {} waits, {:.1} ms longest wait, {} timeouts, {} connection errors",
        runs as f64 / wall.as_secs_f64(),
        pool.map_or(0, |p| p.checkouts.checkouts),
        pool.map_or(0, |p| p.checkouts.waits),
        pool.map_or(0.0, |p| p.checkouts.wait_ms_max),
        pool.map_or(0, |p| p.checkouts.timeouts),
        pool.map_or(0, |p| p.checkouts.connection_errors),
    );
}

/// (b) verify, benchmark and pool-status --load in a loop; RSS each iteration.
fn soak(config: &Config, opts: &Options) {
    let until = Duration::from_secs_f64(opts.minutes * 60.0);
    println!(
        "\n(b) soak: verify + benchmark (4 clients) + pool-status --load 8 for {}",
        humantime::format_duration(until)
    );
    println!(
        "{:>4} {:>8} {:>10} {:>14} {:>10} {:>12}",
        "iter", "at s", "RSS kB", "verify checks", "bench err", "load failed"
    );
    let bench_args = BenchmarkArgs {
        clients: 4,
        iterations: std::num::NonZeroU32::new(20),
        warmup: Some(1),
        ..BenchmarkArgs::default()
    };
    let load_args = PoolStatusArgs {
        load: Some(8),
        duration: Some(HumanDuration(Duration::from_secs(2))),
        ..PoolStatusArgs::default()
    };
    let started = Instant::now();
    let first_rss = rss_kb();
    let (mut iteration, mut max_rss) = (0u32, first_rss);
    while started.elapsed() < until {
        iteration += 1;
        let checked = or_fail("verify", verify::run(config, &VerifyArgs::default()));
        let bench = or_fail("benchmark", benchmark::run(config, &bench_args));
        let status = or_fail("pool-status --load", pool_status::run(config, &load_args));
        let rss = rss_kb();
        max_rss = max_rss.max(rss);
        println!(
            "{:>4} {:>8.1} {:>10} {:>14} {:>10} {:>12}",
            iteration,
            started.elapsed().as_secs_f64(),
            rss,
            checked.checks.len(),
            bench.queries.iter().map(|q| q.figures.errors).sum::<u64>(),
            status.load.as_ref().is_some_and(|l| l.failed())
        );
    }
    let last_rss = rss_kb();
    let mut probe = or_fail("probe connection", o2o_db::db::connect(&config.conn));
    // Backends that are still closing get a moment to leave.
    std::thread::sleep(Duration::from_millis(500));
    let connections: i64 = probe
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()",
            &[],
        )
        .map(|r| r.get(0))
        .unwrap_or_else(|e| fail(&format!("count connections: {e}")));
    println!(
        "soak: {iteration} iterations in {:.1} s; RSS first {first_rss} kB, last {last_rss} kB, max {max_rss} kB; \
         connections to the database at the end: {connections} (1 = only this probe)",
        started.elapsed().as_secs_f64()
    );
}
