//! `--output FILE`: the report written atomically (a temporary file in the
//! same directory, renamed over FILE once the report is complete), so
//! node_exporter's textfile collector never reads half a file, and a run
//! that fails or is killed leaves FILE as it was.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A report being written to `path`; nothing is there until [`commit`].
///
/// [`commit`]: AtomicOutput::commit
pub struct AtomicOutput {
    file: tempfile::NamedTempFile,
    path: PathBuf,
}

impl AtomicOutput {
    /// Starts writing beside `path` (the rename must stay on one file system).
    pub fn create(path: &Path) -> Result<AtomicOutput> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let file = tempfile::Builder::new()
            .prefix(".o2o-db-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| {
                format!(
                    "--output {}: cannot create a file in {}",
                    path.display(),
                    dir.display()
                )
            })?;
        Ok(AtomicOutput {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Flushes, syncs and renames the file into place, readable as a report
    /// file is (0644).
    pub fn commit(mut self) -> Result<()> {
        self.file.flush()?;
        self.file.as_file().sync_all()?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.file.path(), std::fs::Permissions::from_mode(0o644))?;
        self.file.persist(&self.path).with_context(|| {
            format!(
                "--output {}: cannot rename the report into place",
                self.path.display()
            )
        })?;
        Ok(())
    }
}

impl Write for AtomicOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_there_until_commit_and_a_dropped_one_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o2o.prom");
        std::fs::write(&path, "old\n").unwrap();
        let mut out = AtomicOutput::create(&path).unwrap();
        out.write_all(b"half").unwrap();
        drop(out);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        let mut out = AtomicOutput::create(&path).unwrap();
        out.write_all(b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        out.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
    }
}
