//! A throwaway PostgreSQL server in a temporary directory.
//!
//! Tests, the demo and the benches need a real server they own: initdb into a
//! temp dir, start it on a Unix socket there and a free loopback port, and
//! stop and delete it afterwards. initdb and postgres refuse to run as root,
//! so as root the directory is handed to the `postgres` OS user and the
//! binaries run through runuser. A watchdog process stops the server if this
//! process dies without running Drop (a killed test binary, a static sandbox).
//!
//! This file holds the server's lifecycle and addresses; pg_sandbox/ finds the
//! binaries (bindir), creates the cluster (init), runs the watchdog, makes
//! streaming replicas (replica) and puts a pgbouncer in front (pgbouncer).

mod bindir;
mod init;
mod pgbouncer;
mod replica;
mod watchdog;

pub use bindir::{find_bindir, find_bindir_in};
pub use pgbouncer::Bouncer;

use crate::conninfo::ConnInfo;
use anyhow::{bail, Context, Result};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How to start the sandbox.
#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Extra postgresql.conf lines, e.g. ("max_connections", "30").
    pub settings: Vec<(String, String)>,
    /// Require this password (scram-sha-256) for TCP connections instead of trust.
    pub password: Option<String>,
    /// PEM files (certificate, key) to enable TLS with.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Leave the server running after this process ends (the demo's --keep).
    pub keep: bool,
}

/// A running throwaway server. Stopped and deleted on drop unless kept.
pub struct Sandbox {
    root: PathBuf,
    bindir: PathBuf,
    port: u16,
    keep: bool,
    stopped: bool,
    watchdog: Option<std::process::Child>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("root", &self.root)
            .field("port", &self.port)
            .finish()
    }
}

/// The superuser initdb creates.
pub const SUPERUSER: &str = "postgres";

impl Sandbox {
    pub fn start() -> Result<Sandbox> {
        Sandbox::start_with(&SandboxOptions::default())
    }

    pub fn start_with(options: &SandboxOptions) -> Result<Sandbox> {
        let bindir = find_bindir()?;
        let root = tempfile::Builder::new()
            .prefix("o2o-db-pg-")
            .tempdir()
            .context("cannot create a temporary directory for PostgreSQL")?
            .keep();
        let mut sandbox = Sandbox {
            root,
            bindir,
            port: 0,
            keep: options.keep,
            stopped: true,
            watchdog: None,
        };
        sandbox.init(options)?;
        // A port picked free may be taken before postgres binds it: try a few.
        let mut last = None;
        for _ in 0..5 {
            sandbox.port = free_port()?;
            sandbox.write_port()?;
            match sandbox.pg_ctl_start() {
                Ok(()) => {
                    sandbox.stopped = false;
                    if !sandbox.keep {
                        sandbox.watchdog = watchdog::spawn(&sandbox).ok();
                    }
                    return Ok(sandbox);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("PostgreSQL did not start")))
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.root.join("sock")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Connection info for `dbname` over the Unix socket, as the superuser.
    pub fn conn_info(&self, dbname: &str) -> ConnInfo {
        ConnInfo {
            hosts: vec![self.socket_dir().display().to_string()],
            ports: vec![self.port],
            user: Some(SUPERUSER.into()),
            dbname: Some(dbname.into()),
            sslmode: Some(crate::conninfo::SslMode::Disable),
            ..ConnInfo::default()
        }
    }

    /// A URL for `dbname` over the Unix socket, as libpq and o2o-db accept it.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@{}/{dbname}?host={}",
            format_args!("localhost:{}", self.port),
            self.socket_dir().display()
        )
    }

    /// A URL for `dbname` over TCP on 127.0.0.1.
    pub fn tcp_url(&self, dbname: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{dbname}", self.port)
    }

    /// The command that stops a kept server.
    pub fn stop_command(&self) -> String {
        format!(
            "{}{} stop -D {} -m fast && rm -rf {}",
            as_postgres(),
            self.bindir.join("pg_ctl").display(),
            self.data_dir().display(),
            self.root.display()
        )
    }

    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// Creates an empty database.
    pub fn create_database(&self, name: &str) -> Result<()> {
        self.as_superuser(
            &format!("CREATE DATABASE {}", crate::ident::quote_ident(name)),
            || format!("cannot create database {name}"),
        )
    }

    /// Drops a database, ending its sessions first.
    pub fn drop_database(&self, name: &str) -> Result<()> {
        self.as_superuser(
            &format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                crate::ident::quote_ident(name)
            ),
            || format!("cannot drop database {name}"),
        )
    }

    /// Runs `sql` as the superuser on the postgres database.
    fn as_superuser(&self, sql: &str, what: impl FnOnce() -> String) -> Result<()> {
        let mut client = crate::db::connect(&self.conn_info("postgres"))?;
        client.batch_execute(sql).with_context(what)?;
        Ok(())
    }

    /// Stops the server (fast shutdown) without deleting its files.
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.pg_ctl(&["stop", "-m", "fast", "-w"])?;
        self.stopped = true;
        Ok(())
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.pg_ctl_start()?;
        self.stopped = false;
        Ok(())
    }

    fn pg_ctl_start(&self) -> Result<()> {
        let log = self.root.join("server.log");
        self.pg_ctl(&["start", "-w", "-t", "60", "-l", &log.display().to_string()])
            .map_err(|e| {
                let tail = std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                e.context(format!("PostgreSQL did not start; server log:\n{tail}"))
            })
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<()> {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .context("cannot run pg_ctl")?;
        if !out.status.success() {
            bail!(
                "pg_ctl {} failed: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// A command for one of the server binaries, as the postgres user when root.
    pub fn command(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if !self.stopped {
            let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A free loopback port below 32768: the kernel hands out ephemeral ports
/// from 32768 up, so a server there could collide with any client's socket.
pub fn free_port() -> Result<u16> {
    const LOW: u64 = 10_000;
    const HIGH: u64 = 32_768;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut rng = crate::seed_data::Rng::new(nanos ^ u64::from(std::process::id()));
    for _ in 0..200 {
        let port = (LOW + rng.below(HIGH - LOW)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("cannot find a free port on 127.0.0.1 between {LOW} and {HIGH}")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// What runs a shell command as the postgres OS user: runuser when root.
fn as_postgres() -> &'static str {
    if is_root() {
        "runuser -u postgres -- "
    } else {
        ""
    }
}
