// Shared pieces of the peers bench: options, running o2o-db and psql against
// the sandbox, timing with peak memory, medians, and the result table.

use o2o_db::pg_sandbox::Sandbox;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Options {
    pub reps: usize,
    pub orders: u64,
    pub with_10m: bool,
    /// Run only these sections (seed, indexes, benchmark, verify, scaling, partitioned,
    /// fleet, startup); empty: all.
    pub only: Vec<String>,
}

impl Options {
    pub fn from_args() -> Options {
        let mut o = Options {
            reps: 3,
            orders: 1_000_000,
            with_10m: false,
            only: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--reps" => o.reps = number(args.next()),
                "--orders" => o.orders = number(args.next()),
                "--with-10m" => o.with_10m = true,
                "--only" => o.only.push(
                    args.next()
                        .unwrap_or_else(|| fail("--only needs a section name")),
                ),
                "--bench" => {} // cargo bench passes this
                other => fail(&format!(
                    "unknown option {other}; use --reps N, --orders N, --with-10m"
                )),
            }
        }
        o
    }

    pub fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

fn number<T: std::str::FromStr>(v: Option<String>) -> T {
    v.and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fail("expected a number after the option"))
}

pub fn fail(msg: &str) -> ! {
    eprintln!("peers bench: {msg}");
    std::process::exit(2)
}

/// A new empty database.
pub fn fresh_db(sandbox: &Sandbox, name: &str) -> String {
    let _ = sandbox.drop_database(name);
    sandbox
        .create_database(name)
        .unwrap_or_else(|e| fail(&format!("{e:#}")));
    name.to_string()
}

/// psql against `db` on the sandbox's socket, as the superuser, stopping at the first error.
fn psql_command(sandbox: &Sandbox, db: &str) -> Command {
    let mut c = Command::new(sandbox.bindir().join("psql"));
    c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(sandbox.socket_dir())
        .args([
            "-p",
            &sandbox.port().to_string(),
            "-U",
            "postgres",
            "-d",
            db,
        ])
        .stdout(Stdio::null());
    c
}

/// Runs psql with `sql` (a script, or a single \copy line) against `db`.
pub fn psql(sandbox: &Sandbox, db: &str, sql: &str) {
    psql_lines(sandbox, db, sql);
}

/// The first column of each row `sql` returns, through psql -At.
pub fn psql_lines(sandbox: &Sandbox, db: &str, sql: &str) -> Vec<String> {
    let out = psql_command(sandbox, db)
        .args(["-At", "-c", sql])
        .stdout(Stdio::piped())
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run psql: {e}")));
    if !out.status.success() {
        fail(&format!(
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Starts psql on a file of `statements` (each run on its own, as psql -f does).
pub fn psql_file(
    sandbox: &Sandbox,
    db: &str,
    name: &str,
    statements: &[String],
) -> std::process::Child {
    let file = sandbox.root().join(name);
    let text: String = statements.iter().map(|s| format!("{s};\n")).collect();
    std::fs::write(&file, text).unwrap_or_else(|e| fail(&format!("writing {name}: {e}")));
    psql_command(sandbox, db)
        .arg("-f")
        .arg(&file)
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot run psql: {e}")))
}

/// Waits for psql children and fails the bench if any failed.
pub fn wait_all(children: Vec<std::process::Child>) {
    for mut c in children {
        let ok = c.wait().is_ok_and(|s| s.success());
        if !ok {
            fail("psql failed");
        }
    }
}

/// Runs o2o-db against `db` and fails the bench if it fails.
pub fn run_o2o(sandbox: &Sandbox, db: &str, args: &[&str]) {
    timed_o2o(sandbox, db, args);
}

/// Runs o2o-db against `db`: wall time and peak resident memory (kB).
// The child is reaped by wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn timed_o2o(sandbox: &Sandbox, db: &str, args: &[&str]) -> (Duration, i64) {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_o2o-db"))
        .arg("--database-url")
        .arg(sandbox.url(db))
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot run o2o-db: {e}")));
    let (status, rss) = wait_with_rusage(child.id() as libc::pid_t);
    let elapsed = started.elapsed();
    if status != 0 {
        fail(&format!("o2o-db {} exited with {status}", args.join(" ")));
    }
    (elapsed, rss)
}

/// waitpid with the child's own resource usage: (exit status, max RSS in kB).
fn wait_with_rusage(pid: libc::pid_t) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r < 0 {
        fail("wait4 failed");
    }
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

pub fn median_f(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn median(times: &[Duration]) -> Duration {
    let mut t = times.to_vec();
    t.sort();
    t.get(t.len() / 2).copied().unwrap_or_default()
}

pub struct Row {
    pub what: String,
    pub o2o: String,
    pub peer: String,
    /// Higher is better for o2o-db unless the target says otherwise.
    pub ratio: f64,
    pub target: String,
    pub met: bool,
}

#[derive(Default)]
pub struct Rows(Vec<Row>);

impl Rows {
    pub fn push(&mut self, r: Row) {
        eprintln!("  {}: {} vs {} → {:.3}", r.what, r.o2o, r.peer, r.ratio);
        self.0.push(r);
    }

    /// Whether any target was missed.
    pub fn missed(&self) -> bool {
        self.0.iter().any(|r| !r.met)
    }

    pub fn print(&self) {
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
        t.set_header(["measure", "o2o-db", "peer", "ratio", "target", "met"]);
        for r in &self.0 {
            t.add_row([
                r.what.clone(),
                r.o2o.clone(),
                r.peer.clone(),
                format!("{:.3}", r.ratio),
                r.target.clone(),
                if r.met { "yes" } else { "NO" }.into(),
            ]);
        }
        println!("{t}");
    }
}

/// What pgbench reported for one run.
pub struct PgbenchResult {
    pub latency_ms: f64,
    pub tps: f64,
}

/// One pgbench invocation, no vacuum.
pub struct PgbenchRun<'a> {
    /// -M: "prepared" against PostgreSQL, "extended" (the unnamed statement)
    /// through a pooler that shares connections per transaction.
    pub mode: &'a str,
    /// 127.0.0.1 and this port (a pgbouncer, a replica) instead of the sandbox's socket.
    pub port: Option<u16>,
    pub script: &'a str,
    /// -D name=value variables (bound as parameters under -M prepared).
    pub defines: &'a [String],
    pub clients: u32,
    pub jobs: u32,
    /// Transactions per client (-t), unless `seconds` (-T) is given.
    pub transactions: u64,
    pub seconds: Option<u64>,
}

/// Runs pgbench against `db`.
pub fn pgbench(sandbox: &Sandbox, db: &str, run: &PgbenchRun<'_>) -> PgbenchResult {
    let PgbenchRun {
        mode,
        port,
        script,
        defines,
        clients,
        jobs,
        transactions,
        seconds,
    } = *run;
    let file = sandbox
        .root()
        .join(format!("pgbench-{}.sql", std::process::id()));
    std::fs::write(&file, script).unwrap_or_else(|e| fail(&format!("writing pgbench script: {e}")));
    let mut cmd = Command::new(sandbox.bindir().join("pgbench"));
    cmd.args(["-n", "-M", mode, "-h"]);
    match port {
        Some(p) => cmd.args(["127.0.0.1", "-p", &p.to_string()]),
        None => cmd
            .arg(sandbox.socket_dir())
            .args(["-p", &sandbox.port().to_string()]),
    };
    cmd.args(["-U", "postgres"])
        .args(["-c", &clients.to_string(), "-j", &jobs.to_string()]);
    for d in defines {
        cmd.arg("-D").arg(d);
    }
    match seconds {
        Some(s) => cmd.args(["-T", &s.to_string()]),
        None => cmd.args(["-t", &transactions.to_string()]),
    };
    let out = cmd
        .arg("-f")
        .arg(&file)
        .arg(db)
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run pgbench: {e}")));
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        fail(&format!(
            "pgbench failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let find = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| fail(&format!("pgbench output has no `{prefix}`: {text}")))
    };
    PgbenchResult {
        latency_ms: find("latency average ="),
        tps: find("tps ="),
    }
}

/// Runs o2o-db and returns its stdout (the report), failing the bench on exit 2.
pub fn o2o_output(sandbox: &Sandbox, db: &str, args: &[&str]) -> String {
    o2o_output_at(&sandbox.url(db), args)
}

/// The same against any URL (a replica, a pgbouncer).
pub fn o2o_output_at(url: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_o2o-db"))
        .arg("--database-url")
        .arg(url)
        .args(args)
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run o2o-db: {e}")));
    if out.status.code() == Some(2) {
        fail(&format!(
            "o2o-db {} could not run: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Times a closure.
pub fn time(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}
