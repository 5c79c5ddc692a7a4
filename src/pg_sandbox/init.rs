//! A new cluster for the sandbox: initdb (with a password file when TCP
//! connections need one), the sandbox's postgresql.conf lines, TLS files, and
//! the port; every file handed to the postgres OS user when running as root.

use super::{is_root, Sandbox, SandboxOptions, SUPERUSER};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

impl Sandbox {
    pub(super) fn init(&self, options: &SandboxOptions) -> Result<()> {
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

    pub(super) fn write_port(&self) -> Result<()> {
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
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}
