//! The verify report: one line per check with its verdict and fix, and the
//! summary a pipeline gates on. Its table is a pure function of the report,
//! snapshot-tested without a database in report/snapshot_tests.rs.

pub use super::replication::{Replay, ReplicationFigures, Slot, StandbyLink};
use crate::report::{self, Outcome, Report};
use anyhow::Result;
use serde::Serialize;
use std::io::Write;
use std::time::Duration;

/// What one check found, before the runner names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Verdict {
    pub fn pass(detail: impl Into<String>) -> Verdict {
        Verdict {
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(detail: impl Into<String>, fix: impl Into<String>) -> Verdict {
        Verdict {
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(detail: impl Into<String>, fix: impl Into<String>) -> Verdict {
        Verdict {
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// What the server verify reached is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Accepts writes.
    Primary,
    /// A hot standby (pg_is_in_recovery): replays a primary's WAL, takes no writes.
    Standby,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    /// What to run or change; null when there is nothing to fix.
    pub fix: Option<String>,
    /// How long the check took.
    pub duration_seconds: f64,
}

/// One managed index as verify saw it (when the indexes check ran).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IndexFigures {
    pub name: String,
    /// schema.table.
    pub table: String,
    pub exists: bool,
    /// Valid and ready.
    pub valid: bool,
    /// Defined as its file says.
    pub matches: bool,
    pub size_bytes: i64,
    /// pg_stat_user_indexes.idx_scan, since the statistics were reset.
    pub scans: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub warned: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub checks: Vec<Check>,
    pub summary: Summary,
    /// The database verified.
    pub database: String,
    /// `host:port` of the server that answered (of a multi-host URL's);
    /// null when no check needed the server.
    pub server: Option<String>,
    /// primary or standby; null when no check needed the server.
    pub role: Option<Role>,
    /// The managed table (schema.table), when a check resolved it.
    pub table: Option<String>,
    /// Per managed index, when the indexes check ran.
    pub indexes: Vec<IndexFigures>,
    /// Seconds since the managed table was last analyzed (null: never, or not read).
    pub analyze_age_seconds: Option<f64>,
    /// Standbys, slots and (on a standby) replay, when the replication check ran.
    pub replication: Option<ReplicationFigures>,
    /// --strict: warnings make the run fail.
    #[serde(skip)]
    pub strict: bool,
    #[serde(skip)]
    pub elapsed: Duration,
}

impl VerifyReport {
    /// The report over `checks`, with the summary counted from them.
    pub fn new(checks: Vec<Check>, strict: bool, elapsed: Duration) -> VerifyReport {
        let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
        let summary = Summary {
            passed: count(Status::Pass),
            warned: count(Status::Warn),
            failed: count(Status::Fail),
        };
        VerifyReport {
            checks,
            summary,
            database: String::new(),
            server: None,
            role: None,
            table: None,
            indexes: Vec::new(),
            analyze_age_seconds: None,
            replication: None,
            strict,
            elapsed,
        }
    }

    /// The check of that name, if it ran.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

impl Report for VerifyReport {
    const FORMATS: &'static [report::Format] = &[
        report::Format::Table,
        report::Format::Json,
        report::Format::Prometheus,
        report::Format::Nagios,
    ];

    fn render_prometheus(&self, w: &mut dyn Write) -> Result<()> {
        super::monitoring::prometheus(self, w)
    }

    fn nagios(&self) -> Option<report::NagiosCheck> {
        Some(super::monitoring::nagios(self))
    }

    fn render_table(&self, w: &mut dyn Write) -> Result<()> {
        if self.role == Some(Role::Standby) {
            writeln!(
                w,
                "{} is a hot standby (pg_is_in_recovery): verify only reads here; \
                 fixes that change the database are for the primary and reach this node by replay",
                self.server.as_deref().unwrap_or("the server")
            )?;
        }
        let mut t = report::table();
        t.set_header(["check", "status", "detail"]);
        for c in &self.checks {
            t.add_row([c.name.as_str(), c.status.label(), c.detail.as_str()]);
        }
        writeln!(w, "{t}")?;
        let fixes: Vec<&Check> = self.checks.iter().filter(|c| c.fix.is_some()).collect();
        if !fixes.is_empty() {
            writeln!(w, "fixes:")?;
            for c in fixes {
                writeln!(w, "  {}:", c.name)?;
                for line in c.fix.as_deref().unwrap_or("").lines() {
                    writeln!(w, "    {line}")?;
                }
            }
        }
        let s = &self.summary;
        writeln!(
            w,
            "verify: {} passed, {} warned, {} failed ({} {} in {:.2} s){}",
            s.passed,
            s.warned,
            s.failed,
            self.checks.len(),
            if self.checks.len() == 1 {
                "check"
            } else {
                "checks"
            },
            self.elapsed.as_secs_f64(),
            if self.strict && s.warned > 0 {
                "; --strict: warnings count as failures"
            } else {
                ""
            }
        )?;
        Ok(())
    }

    fn outcome(&self) -> Outcome {
        let s = &self.summary;
        Outcome::from_findings(s.failed > 0 || (self.strict && s.warned > 0))
    }
}

#[cfg(test)]
mod snapshot_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_turns_warnings_into_findings() {
        let mut r = VerifyReport::new(vec![], false, Duration::ZERO);
        r.summary = Summary {
            passed: 3,
            warned: 1,
            failed: 0,
        };
        assert_eq!(r.outcome(), Outcome::Clean);
        r.strict = true;
        assert_eq!(r.outcome(), Outcome::Findings);
        r.summary.warned = 0;
        assert_eq!(r.outcome(), Outcome::Clean);
        r.summary.failed = 1;
        assert_eq!(r.outcome(), Outcome::Findings);
    }
}
