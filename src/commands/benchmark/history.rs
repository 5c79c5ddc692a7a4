//! The nightly record: one JSON line per run appended to a history file, and
//! the last run of such a file read back as the baseline a run is compared with.
//!
//! A line is the run's JSON report on one line, so `jq` and monitoring read
//! the history with the same field names as `--format json`. A line torn by a
//! crash or a full disk is skipped and reported, never a reason to stop.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
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
            .read(true)
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

    /// Appends the run as one line (a single write, so concurrent runs do not
    /// interleave). After a torn last line (a crash or a full disk mid-write)
    /// the record starts on a new line, so the damage stays on that one line.
    pub fn append(&mut self, run: &impl Serialize) -> Result<()> {
        let mut line = Vec::new();
        if self.ends_mid_line()? {
            line.push(b'\n');
        }
        serde_json::to_writer(&mut line, run)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .with_context(|| format!("cannot append to history file {}", self.path.display()))
    }

    /// True when the file's last byte is not a newline (a torn last line).
    fn ends_mid_line(&mut self) -> Result<bool> {
        let len = self.file.metadata()?.len();
        if len == 0 {
            return Ok(false);
        }
        let mut last = [0u8; 1];
        self.file
            .seek(SeekFrom::End(-1))
            .and_then(|_| self.file.read_exact(&mut last))
            .with_context(|| format!("cannot read history file {}", self.path.display()))?;
        Ok(last[0] != b'\n')
    }
}

/// A line of a history file that is not a run: skipped, and reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamagedLine {
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for DamagedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: skipped a damaged history line ({}); the runs around it are used",
            self.file, self.line, self.reason
        )
    }
}

/// What a history file holds: its last run and the lines that are not runs.
#[derive(Debug, Default)]
pub struct Scan {
    /// None when the file does not exist yet, is empty or holds no complete run.
    pub last: Option<PastRun>,
    pub damaged: Vec<DamagedLine>,
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

/// Reads a history file: the last run (the baseline) and every damaged line.
///
/// A line that is not a run is skipped and reported, so one torn line (a
/// crash or a full disk mid-write) does not stop every later run. A file in
/// which no line is a run and some line other than a torn last one is not
/// a run is no history file at all (a `--format json` report, a CSV): refused
/// with its first bad line, rather than silently comparing with nothing.
pub fn scan(path: &Path) -> Result<Scan> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Scan::default()),
        Err(e) => {
            return Err(anyhow!(e))
                .with_context(|| format!("cannot read history file {}", path.display()))
        }
    };
    let file = path.display().to_string();
    let torn_tail = bytes.last().is_some_and(|b| *b != b'\n');
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let mut scan = Scan::default();
    let mut refusal = None;
    for (index, raw) in lines.iter().enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // Cut mid-write, a line may end inside a multi-byte character.
        let parsed = std::str::from_utf8(raw)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(|l| serde_json::from_str::<PastRun>(l).map_err(|e| e.to_string()));
        match parsed {
            Ok(run) => scan.last = Some(run),
            Err(reason) => {
                let is_torn_tail = torn_tail && index + 1 == lines.len();
                if !is_torn_tail && refusal.is_none() {
                    refusal = Some((index + 1, reason.clone()));
                }
                let reason = if is_torn_tail {
                    format!("incomplete last line, cut off mid-write: {reason}")
                } else {
                    reason
                };
                scan.damaged.push(DamagedLine {
                    file: file.clone(),
                    line: index + 1,
                    reason,
                });
            }
        }
    }
    if let (None, Some((line, reason))) = (&scan.last, refusal) {
        bail!(
            "{file}:{line}: not a benchmark run ({reason}); the history and baseline files hold the lines `o2o-db benchmark --history` writes"
        );
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p50: f64) -> serde_json::Value {
        serde_json::json!({
            "meta": {"started_at": "2026-01-01T00:00:00Z", "clients": 1},
            "queries": [{"name": "by_store", "p50_ms": p50}, {"name": "dead", "p50_ms": null}]
        })
    }

    #[test]
    fn reads_the_last_line_and_names_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        assert!(scan(&path).unwrap().last.is_none());
        let mut h = History::open(&path).unwrap();
        for p50 in [1.0, 2.5] {
            h.append(&run(p50)).unwrap();
        }
        let s = scan(&path).unwrap();
        let last = s.last.unwrap();
        assert_eq!(last.query("by_store").unwrap().p50_ms, Some(2.5));
        assert_eq!(last.query("dead").unwrap().p50_ms, None);
        assert!(s.damaged.is_empty());
        std::fs::write(&path, "{\"meta\":{}}\n\n").unwrap();
        let err = scan(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}:1: not a benchmark run", path.display())),
            "{err}"
        );
    }

    #[test]
    fn a_torn_line_is_skipped_and_the_next_run_starts_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let mut h = History::open(&path).unwrap();
        h.append(&run(1.0)).unwrap();
        // A crash mid-write: the line stops inside a multi-byte character.
        let full = serde_json::to_vec(&run(9.0)).unwrap();
        let mut torn = full[..full.len() / 2].to_vec();
        torn.extend_from_slice(&"北".as_bytes()[..2]);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&torn)
            .unwrap();
        let s = scan(&path).unwrap();
        assert_eq!(s.last.unwrap().query("by_store").unwrap().p50_ms, Some(1.0));
        assert_eq!(s.damaged.len(), 1);
        assert_eq!(s.damaged[0].line, 2);
        assert!(
            s.damaged[0].reason.starts_with("incomplete last line"),
            "{:?}",
            s.damaged
        );
        h.append(&run(3.0)).unwrap();
        let s = scan(&path).unwrap();
        assert_eq!(s.last.unwrap().query("by_store").unwrap().p50_ms, Some(3.0));
        assert_eq!(s.damaged.len(), 1, "{:?}", s.damaged);
        assert_eq!(s.damaged[0].line, 2);
        // A file holding only a torn first run is no baseline yet, not an error.
        std::fs::write(&path, &torn).unwrap();
        let s = scan(&path).unwrap();
        assert!(s.last.is_none() && s.damaged.len() == 1);
    }
}
