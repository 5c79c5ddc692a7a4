//! A throwaway PostgreSQL server in a temporary directory.
//!
//! Tests, the demo and the benches need a real server they own: initdb into a
//! temp dir, start it on a Unix socket there and a free loopback port, and
//! stop and delete it afterwards. initdb and postgres refuse to run as root,
//! so as root the directory is handed to the `postgres` OS user and the
//! binaries run through runuser. A watchdog process stops the server if this
//! process dies without running Drop (a killed test binary, a static sandbox).

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
                        sandbox.watchdog = spawn_watchdog(&sandbox).ok();
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
        let prefix = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        format!(
            "{prefix}{} stop -D {} -m fast && rm -rf {}",
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
        let mut client = crate::db::connect(&self.conn_info("postgres"))?;
        client
            .batch_execute(&format!(
                "CREATE DATABASE {}",
                crate::ident::quote_ident(name)
            ))
            .with_context(|| format!("cannot create database {name}"))?;
        Ok(())
    }

    /// Drops a database, ending its sessions first.
    pub fn drop_database(&self, name: &str) -> Result<()> {
        let mut client = crate::db::connect(&self.conn_info("postgres"))?;
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                crate::ident::quote_ident(name)
            ))
            .with_context(|| format!("cannot drop database {name}"))?;
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

    fn init(&self, options: &SandboxOptions) -> Result<()> {
        std::fs::create_dir_all(self.socket_dir())?;
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&self.root)
                .status()
                .context("cannot run chown")?;
            if !status.success() {
                bail!(
                    "cannot hand {} to the postgres user: is there a `postgres` OS user? (apt-get install postgresql creates it)",
                    self.root.display()
                );
            }
        }
        let mut args: Vec<String> = vec![
            "-D".into(),
            self.data_dir().display().to_string(),
            "-U".into(),
            SUPERUSER.into(),
            "-E".into(),
            "UTF8".into(),
            "--locale=C.UTF-8".into(),
            "--no-sync".into(),
            "--auth-local=trust".into(),
        ];
        let pwfile = self.root.join("pwfile");
        if let Some(password) = &options.password {
            std::fs::write(&pwfile, password)?;
            self.give_to_postgres(&pwfile)?;
            args.push("--auth-host=scram-sha-256".into());
            args.push(format!("--pwfile={}", pwfile.display()));
        } else {
            args.push("--auth-host=trust".into());
        }
        let out = self
            .command("initdb")
            .args(&args)
            .output()
            .context("cannot run initdb")?;
        let _ = std::fs::remove_file(&pwfile);
        if !out.status.success() {
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let mut conf = format!(
            "\n# o2o-db sandbox\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\nlogging_collector = off\n",
            self.socket_dir().display()
        );
        if let Some((cert, key)) = &options.tls {
            for (src, name) in [(cert, "server.crt"), (key, "server.key")] {
                let dst = self.data_dir().join(name);
                std::fs::copy(src, &dst)
                    .with_context(|| format!("cannot copy {}", src.display()))?;
                self.give_to_postgres(&dst)?;
                set_mode(&dst, 0o600)?;
            }
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        for (k, v) in &options.settings {
            conf.push_str(&format!("{k} = '{}'\n", v.replace('\'', "''")));
        }
        let path = self.data_dir().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path)?;
        text.push_str(&conf);
        std::fs::write(&path, text)?;
        Ok(())
    }

    fn write_port(&self) -> Result<()> {
        let path = self.data_dir().join("postgresql.auto.conf");
        std::fs::write(&path, format!("port = {}\n", self.port))?;
        self.give_to_postgres(&path)
    }

    fn give_to_postgres(&self, path: &Path) -> Result<()> {
        if is_root() {
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(path)
                .status()
                .context("cannot run chown")?;
        }
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

/// Stops the server and deletes its directory once this process is gone,
/// whether it exited, panicked in a static or was killed.
fn spawn_watchdog(s: &Sandbox) -> Result<std::process::Child> {
    let prefix = if is_root() {
        "runuser -u postgres -- "
    } else {
        ""
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {prefix}'{pgctl}' stop -D '{data}' -m immediate >/dev/null 2>&1; rm -rf '{root}'",
        pid = std::process::id(),
        pgctl = s.bindir.join("pg_ctl").display(),
        data = s.data_dir().display(),
        root = s.root.display(),
    );
    Ok(Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
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

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Finds the PostgreSQL server binaries: $PATH, `pg_config --bindir`, /usr/lib/postgresql/*/bin.
pub fn find_bindir() -> Result<PathBuf> {
    find_bindir_in(std::env::var_os("PATH"), Path::new("/usr/lib/postgresql"))
}

/// `find_bindir` over a given PATH and versioned install root (tests point them elsewhere).
pub fn find_bindir_in(path: Option<std::ffi::OsString>, versions_root: &Path) -> Result<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let dirs: Vec<PathBuf> = path.iter().flat_map(std::env::split_paths).collect();
    for dir in &dirs {
        if has_server(dir) {
            // A symlinked initdb (/usr/local/bin -> /usr/lib/postgresql/15/bin) points
            // at the real directory, where psql and pgbench live too.
            let real = std::fs::canonicalize(dir.join("initdb"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .filter(|d| has_server(d));
            return Ok(real.unwrap_or_else(|| dir.clone()));
        }
    }
    // pg_config, looked up on the same PATH.
    if let Some(pg_config) = dirs
        .iter()
        .map(|d| d.join("pg_config"))
        .find(|p| p.is_file())
    {
        if let Ok(out) = Command::new(pg_config).arg("--bindir").output() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if out.status.success() && has_server(&dir) {
                return Ok(dir);
            }
        }
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(versions_root)
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    // The newest major version first.
    candidates.sort_by_key(|p| {
        std::cmp::Reverse(
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0),
        )
    });
    candidates.into_iter().find(|d| has_server(d)).with_context(|| {
        format!("no PostgreSQL server binaries found (initdb, pg_ctl) on PATH, via pg_config or under {}/*/bin; install them with `apt-get install postgresql` (Debian/Ubuntu) or your system's postgresql-server package", versions_root.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_say_how_to_install_them() {
        let empty = tempfile::tempdir().unwrap();
        let err = find_bindir_in(Some(empty.path().into()), &empty.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no PostgreSQL server binaries found"), "{err}");
        assert!(err.contains("apt-get install postgresql"), "{err}");
    }

    #[test]
    fn the_newest_versioned_install_wins() {
        let root = tempfile::tempdir().unwrap();
        for v in ["13", "15", "9.6"] {
            let bin = root.path().join(v).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("initdb"), "").unwrap();
            std::fs::write(bin.join("pg_ctl"), "").unwrap();
        }
        let found = find_bindir_in(None, root.path()).unwrap();
        assert_eq!(found, root.path().join("15").join("bin"));
    }
}
