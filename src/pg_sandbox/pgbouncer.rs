//! A throwaway pgbouncer (Debian's package) in front of a sandbox database,
//! on a free loopback port, run as the postgres OS user and stopped on drop:
//! the pooler the tests and the benches measure through.

use super::{free_port, is_root, Sandbox};
use anyhow::{bail, Context, Result};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Bouncer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Bouncer {
    /// pgbouncer for `dbname` of `sandbox`, in `pool_mode`, with
    /// `default_pool_size` server connections per pool, trusting the
    /// postgres role, which is also its admin.
    pub fn start(
        sandbox: &Sandbox,
        dbname: &str,
        pool_mode: &str,
        pool_size: u32,
    ) -> Result<Bouncer> {
        Bouncer::start_with(sandbox, dbname, pool_mode, pool_size, &[])
    }

    /// `start` with more [pgbouncer] settings, e.g. ("stats_period", "2").
    pub fn start_with(
        sandbox: &Sandbox,
        dbname: &str,
        pool_mode: &str,
        pool_size: u32,
        settings: &[(&str, &str)],
    ) -> Result<Bouncer> {
        let extra: String = settings
            .iter()
            .map(|(key, value)| format!("{key} = {value}\n"))
            .collect();
        let dir = tempfile::tempdir().context("a directory for pgbouncer")?;
        let port = free_port()?;
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n{dbname} = host={} port={} dbname={dbname}\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {}\nadmin_users = postgres\n\
                 pool_mode = {pool_mode}\ndefault_pool_size = {pool_size}\n{extra}",
                sandbox.socket_dir().display(),
                sandbox.port(),
                dir.path().join("userlist.txt").display()
            ),
        )
        .context("writing pgbouncer.ini")?;
        std::fs::write(dir.path().join("userlist.txt"), "\"postgres\" \"\"\n")
            .context("writing pgbouncer's userlist")?;
        let program = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("pgbouncer");
        let mut command = if is_root() {
            let _ = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status();
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        };
        let child = command
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context(
                "cannot start pgbouncer (Debian package pgbouncer; scripts/setup test installs it)",
            )?;
        let mut bouncer = Bouncer {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || bouncer.child.try_wait().ok().flatten().is_some() {
                bail!("pgbouncer did not listen on 127.0.0.1:{port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(bouncer)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL through pgbouncer to `dbname` (the admin console is `pgbouncer`).
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{dbname}?sslmode=disable",
            self.port
        )
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        // runuser passes SIGTERM on to pgbouncer, which shuts down at once.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
