//! Where the PostgreSQL server binaries are: $PATH (following a symlinked
//! initdb to the real directory), `pg_config --bindir`, or the newest
//! /usr/lib/postgresql/*/bin.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

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
