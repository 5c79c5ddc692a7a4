//! The sandbox's watchdog: a shell loop that outlives this process and stops
//! the server and deletes its directory once the process is gone, however it
//! ended (an exit, a panic in a static, a kill).

use super::{as_postgres, Sandbox};
use anyhow::Result;
use std::process::{Command, Stdio};

/// Stops the server and deletes its directory once this process is gone,
/// whether it exited, panicked in a static or was killed.
pub(super) fn spawn(s: &Sandbox) -> Result<std::process::Child> {
    let prefix = as_postgres();
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
