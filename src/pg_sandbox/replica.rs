//! A streaming replica of a sandbox server, made as production makes one
//! (`pg_basebackup -R --checkpoint=fast`) and started on a port of its own:
//! a hot standby for tests of what the tool may and may not do there.

use super::{free_port, is_root, Sandbox};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::process::{Command, Stdio};

impl Sandbox {
    /// A hot standby streaming from this server; stopped and deleted on drop.
    pub fn start_replica(&self) -> Result<Sandbox> {
        let root = tempfile::Builder::new()
            .prefix("o2o-db-replica-")
            .tempdir()
            .context("cannot create a temporary directory for the replica")?
            .keep();
        let mut replica = Sandbox {
            root,
            bindir: self.bindir.clone(),
            port: 0,
            keep: false,
            stopped: true,
            watchdog: None,
        };
        std::fs::create_dir_all(replica.socket_dir())?;
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&replica.root)
                .status()
                .context("cannot give the replica's directory to the postgres user")?;
        }
        let out = self
            .command("pg_basebackup")
            .arg("-D")
            .arg(replica.data_dir())
            .args(["-R", "--checkpoint=fast", "-U", super::SUPERUSER, "-h"])
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .output()
            .context("cannot run pg_basebackup")?;
        if !out.status.success() {
            bail!(
                "pg_basebackup failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        // The copy names the primary's socket directory and port (the port in
        // postgresql.auto.conf, beside -R's primary_conninfo): later lines win.
        let conf = replica.data_dir().join("postgresql.auto.conf");
        let append = |line: String| -> Result<()> {
            let mut f = std::fs::OpenOptions::new().append(true).open(&conf)?;
            writeln!(f, "{line}")?;
            Ok(())
        };
        append(format!(
            "unix_socket_directories = '{}'",
            replica.socket_dir().display()
        ))?;
        let mut last = None;
        for _ in 0..5 {
            replica.port = free_port()?;
            append(format!("port = {}", replica.port))?;
            match replica.pg_ctl_start() {
                Ok(()) => {
                    replica.stopped = false;
                    replica.watchdog = super::watchdog::spawn(&replica).ok();
                    return Ok(replica);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("the replica did not start")))
    }
}
