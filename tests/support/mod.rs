// Shared test support: one throwaway PostgreSQL per test process, a fresh
// database per test, and the binary run with a clean environment.
//
// A test's database is dropped when the test passes and kept when it fails,
// with its URL printed, so it can be inspected. Set O2O_TEST_KEEP=1 to keep
// the whole server after the run as well.

#![allow(dead_code)]

pub mod fleet;
pub mod pgbouncer;
pub mod replication;

use o2o_db::commands::seed::{self, SeedArgs};
use o2o_db::config::{Config, HumanDuration, PoolSettings};
use o2o_db::conninfo::ConnInfo;
use o2o_db::pg_sandbox::{Sandbox, SandboxOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);
static TEMPLATES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The process's shared server, started on first use.
pub fn sandbox() -> &'static Sandbox {
    SANDBOX.get_or_init(|| {
        let keep = std::env::var("O2O_TEST_KEEP").is_ok_and(|v| v == "1");
        let s = Sandbox::start_with(&SandboxOptions {
            keep,
            ..SandboxOptions::default()
        })
        .unwrap_or_else(|e| panic!("cannot start the test PostgreSQL: {e:#}"));
        if keep {
            eprintln!("test server kept: {}", s.url("postgres"));
        }
        s
    })
}

/// A database of its own for one test.
pub struct TestDb {
    pub name: String,
    pub conn: ConnInfo,
}

impl TestDb {
    /// An empty database.
    pub fn empty(label: &str) -> TestDb {
        let name = unique_name(label);
        sandbox()
            .create_database(&name)
            .expect("create test database");
        TestDb::named(name)
    }

    /// A database with the orders table and no rows.
    pub fn with_schema(label: &str) -> TestDb {
        let db = TestDb::empty(label);
        db.client().batch_execute(seed::SCHEMA_SQL).expect("schema");
        db
    }

    /// A database holding `orders` synthetic orders (4 stores, seed 42), copied
    /// from a template seeded once per process.
    pub fn seeded(label: &str, orders: u64) -> TestDb {
        TestDb::seeded_with(label, orders, None)
    }

    /// A database holding `orders` synthetic orders (4 stores, seed 42) in the
    /// range-partitioned table of `seed --create-schema --partition-by month`
    /// (a partition per month and a default one), created by the CLI's own
    /// functions, copied from a template seeded once per process.
    pub fn seeded_partitioned(label: &str, orders: u64) -> TestDb {
        TestDb::seeded_with(label, orders, Some(seed::PartitionBy::Month))
    }

    fn seeded_with(label: &str, orders: u64, partition_by: Option<seed::PartitionBy>) -> TestDb {
        let kind = if partition_by.is_some() {
            "partitioned_"
        } else {
            ""
        };
        let template = format!("o2o_template_{kind}{orders}");
        {
            let mut done = TEMPLATES.lock().unwrap_or_else(|e| e.into_inner());
            if !done.contains(&template) {
                sandbox()
                    .create_database(&template)
                    .expect("create template");
                let t = TestDb::named(template.clone());
                let mut client = t.client();
                let args = SeedArgs {
                    orders,
                    create_schema: true,
                    partition_by,
                    ..SeedArgs::default()
                };
                seed::create_schema(&mut client, &t.config(), args.partition_by).expect("schema");
                seed::load(&mut client, &t.config(), &args).expect("seed template");
                drop(client);
                std::mem::forget(t); // the template outlives every test that copies it
                done.push(template.clone());
            }
        }
        let name = unique_name(label);
        let mut admin = o2o_db::db::connect(&sandbox().conn_info("postgres")).expect("admin");
        admin
            .batch_execute(&format!(
                "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
            ))
            .expect("copy template");
        let db = TestDb::named(name);
        // Statistics are not copied with the template's pg_stat: analyze again
        // (a partitioned table's parent and, through it, every partition).
        db.client()
            .batch_execute("ANALYZE orders")
            .expect("analyze");
        db
    }

    fn named(name: String) -> TestDb {
        let conn = sandbox().conn_info(&name);
        TestDb { name, conn }
    }

    /// A config pointing at this database with a small pool, so tests do not
    /// open 20 connections each.
    pub fn config(&self) -> Config {
        let mut config = Config::defaults();
        config.conn = self.conn.clone();
        config.conn.application_name = Some("o2o-db-test".into());
        config.conn.connect_timeout = Some(Duration::from_secs(10));
        config.pool = PoolSettings {
            size: 2,
            max_overflow: 3,
            pre_ping: true,
            recycle: HumanDuration(Duration::from_secs(3600)),
            timeout: HumanDuration(Duration::from_secs(10)),
        };
        config
    }

    pub fn client(&self) -> postgres::Client {
        o2o_db::db::connect(&self.conn).expect("connect to test database")
    }

    /// The URL the binary is given.
    pub fn url(&self) -> String {
        sandbox().url(&self.name)
    }

    /// The binary, run in an empty directory with no PG*/O2O_DB_* environment,
    /// pointed at this database.
    /// The URL as another role (the sandbox trusts local connections).
    pub fn url_as(&self, role: &str) -> String {
        self.url().replacen("postgres@", &format!("{role}@"), 1)
    }

    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = bare_cmd();
        c.arg("--database-url").arg(self.url());
        c
    }

    pub fn scalar_i64(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).expect(sql).get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: database kept for inspection: {}", self.url());
            return;
        }
        let _ = sandbox().drop_database(&self.name);
    }
}

fn unique_name(label: &str) -> String {
    let clean: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "t_{}_{}_{}",
        clean,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A scratch directory with nothing in it (no ./o2o-db.toml is picked up).
pub fn scratch_dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
        .path()
}

/// The binary with a clean environment, run in an empty directory.
pub fn bare_cmd() -> assert_cmd::Command {
    assert_cmd::Command::from_std(bare_std_cmd())
}

/// The same as a std Command, for a test that spawns and signals it.
pub fn bare_std_cmd() -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("o2o-db"));
    c.current_dir(scratch_dir());
    for (k, _) in std::env::vars() {
        if k.starts_with("PG") || k.starts_with("O2O_DB_") || k == "DATABASE_URL" {
            c.env_remove(k);
        }
    }
    c.env("HOME", scratch_dir());
    c
}

/// Runs `cmd` to the end and asserts its exit code, showing its stdout and
/// stderr when the code is another.
pub fn run(cmd: &mut assert_cmd::Command, code: i32) -> std::process::Output {
    let out = cmd.output().expect("run o2o-db");
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

/// stdout of a finished command as a String.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A latency limit (ms) no healthy test query reaches, even in a debug build on
/// a busy machine: tests that assert a clean run pass it instead of relying on
/// the 100 ms default, so they test the logic and not the machine's speed.
pub const GENEROUS_MS: f64 = 60_000.0;

/// A config file that sets `[alert] query_ms` to [`GENEROUS_MS`], for runs of
/// the binary whose exit code depends on it (verify's speed check, benchmark's
/// p95 limit).
pub fn generous_config_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("config file");
    std::io::Write::write_all(
        &mut file,
        format!("[alert]\nquery_ms = {GENEROUS_MS:.1}\n").as_bytes(),
    )
    .expect("write config file");
    file
}

/// An environment of just these variables, for `config::resolve`.
pub fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}
