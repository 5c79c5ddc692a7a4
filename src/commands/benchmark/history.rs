// The nightly record: one JSON line per run appended to a history file, and
// the last run of such a file read back as the baseline a run is compared with.
//
// A line is the run's JSON report on one line, so `jq` and monitoring read
// the history with the same field names as `--format json`.

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A history file opened for appending before the run, so a bad path fails
/// at once rather than after minutes of measuring.
#[derive(Debug)]
pub struct History {
    path: PathBuf,
    file: File,
}

impl History {
    pub fn open(path: &Path) -> Result<History> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| {
                format!(
                    "cannot open history file {} for appending; check that its directory exists and is writable",
                    path.display()
                )
            })?;
        Ok(History {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends the run as one line (a single write, so concurrent runs do not interleave).
    pub fn append(&mut self, run: &impl Serialize) -> Result<()> {
        let mut line = serde_json::to_vec(run)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .with_context(|| format!("cannot append to history file {}", self.path.display()))
    }
}

/// What a baseline needs from a past run.
#[derive(Debug, Clone, Deserialize)]
pub struct PastRun {
    pub meta: PastMeta,
    pub queries: Vec<PastQuery>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PastMeta {
    pub started_at: String,
    #[serde(default)]
    pub clients: Option<u32>,
    #[serde(default)]
    pub fixed_params: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PastQuery {
    pub name: String,
    /// null when every run of the query failed.
    pub p50_ms: Option<f64>,
}

impl PastRun {
    pub fn query(&self, name: &str) -> Option<&PastQuery> {
        self.queries.iter().find(|q| q.name == name)
    }
}

/// The last run recorded in `path`; None when the file does not exist yet or
/// is empty (the first night of a cron job).
pub fn last_run(path: &Path) -> Result<Option<PastRun>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(anyhow!(e))
                .with_context(|| format!("cannot read baseline file {}", path.display()))
        }
    };
    let Some((index, line)) = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .last()
    else {
        return Ok(None);
    };
    serde_json::from_str(line).map(Some).map_err(|e| {
        anyhow!(
            "{}:{}: not a benchmark run ({e}); the baseline must be a file written by `o2o-db benchmark --history`",
            path.display(),
            index + 1
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_line_and_names_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        assert!(last_run(&path).unwrap().is_none());
        let mut h = History::open(&path).unwrap();
        for p50 in [1.0, 2.5] {
            h.append(&serde_json::json!({
                "meta": {"started_at": "2026-01-01T00:00:00Z", "clients": 1},
                "queries": [{"name": "by_store", "p50_ms": p50}, {"name": "dead", "p50_ms": null}]
            }))
            .unwrap();
        }
        let last = last_run(&path).unwrap().unwrap();
        assert_eq!(last.query("by_store").unwrap().p50_ms, Some(2.5));
        assert_eq!(last.query("dead").unwrap().p50_ms, None);
        std::fs::write(&path, "{\"meta\":{}}\n\n").unwrap();
        let err = last_run(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}:1: not a benchmark run", path.display())),
            "{err}"
        );
    }
}
