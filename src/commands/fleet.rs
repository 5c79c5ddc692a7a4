//! `--all-targets`: verify, benchmark or pool-status on every node of the
//! fleet (`[[targets]]`), one report with a section per node, the fleet's own
//! findings (a node that is not what the config says, two nodes that take
//! writes after a failover) and the worst outcome. A node that cannot be
//! reached is a finding in the report, not the end of the run: the other
//! nodes are still checked.

mod render;

use crate::config::{Config, FleetTarget, NodeRole};
use crate::db::{self, PgContext};
use crate::report::{Format, NagiosCheck, Outcome, Report};
use anyhow::{bail, Result};
use postgres::SimpleQueryMessage;
use serde::Serialize;
use std::io::Write;

/// One command's reports over the fleet.
#[derive(Debug, Serialize)]
pub struct FleetReport<R> {
    pub targets: Vec<NodeRun<R>>,
    /// What is wrong with the fleet as a whole (two writable nodes).
    pub findings: Vec<String>,
}

/// One node: what it should be, what it is, and the command's report there.
#[derive(Debug, Serialize)]
pub struct NodeRun<R> {
    pub name: String,
    pub expected: NodeRole,
    /// "primary" (takes writes) or "standby" (pg_is_in_recovery), as the
    /// server behind its URL says; none when it could not be asked.
    pub found: Option<&'static str>,
    /// host:port that answered.
    pub endpoint: Option<String>,
    /// How it differs from what the config says it is.
    pub mismatch: Option<String>,
    pub report: Option<R>,
    /// Why the command could not run there.
    pub error: Option<String>,
}

impl<R: Report> NodeRun<R> {
    fn outcome(&self) -> Outcome {
        let own = self.report.as_ref().map_or(Outcome::Findings, R::outcome);
        own.and(Outcome::from_findings(self.mismatch.is_some()))
    }
}

/// Runs `each` on every target in turn.
pub fn run<R: Report>(
    config: &Config,
    each: impl Fn(&Config) -> Result<R>,
) -> Result<FleetReport<R>> {
    if config.targets.is_empty() {
        let file = config
            .source
            .as_deref()
            .map_or("no config file".to_string(), |p| p.display().to_string());
        bail!(
            "--all-targets runs on the [[targets]] of the config, and {file} names none: \
             add a [[targets]] section (name, url, role) per node"
        );
    }
    let mut runs = Vec::with_capacity(config.targets.len());
    for target in &config.targets {
        let (found, endpoint, probe_error) = match role_of(target) {
            Ok((found, endpoint)) => (Some(found), Some(endpoint), None),
            Err(e) => (None, None, Some(format!("{e:#}"))),
        };
        let (report, error) = match probe_error {
            // Unreachable: the command would only say so again.
            Some(e) => (None, Some(e)),
            None => match each(&config.on(target)) {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(format!("{e:#}"))),
            },
        };
        runs.push(NodeRun {
            name: target.name.clone(),
            expected: target.role,
            mismatch: found.and_then(|f| mismatch(target.role, f)),
            found,
            endpoint,
            report,
            error,
        });
    }
    let findings = fleet_findings(&runs);
    Ok(FleetReport {
        targets: runs,
        findings,
    })
}

/// Whether the server behind the target's URL is a standby, asked with the
/// simple protocol (so it works through pgbouncer too), and who answered.
fn role_of(target: &FleetTarget) -> Result<(&'static str, String)> {
    let mut reached = db::connect_reaching(&target.conn)?;
    let messages = reached
        .client
        .simple_query("SELECT pg_is_in_recovery()")
        .pg_context("asking whether the node is a standby")?;
    let standby = messages.iter().any(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0) == Some("t"),
        _ => false,
    });
    Ok((
        if standby { "standby" } else { "primary" },
        reached.endpoint,
    ))
}

/// What is wrong when a node meant to be `expected` is `found`.
fn mismatch(expected: NodeRole, found: &str) -> Option<String> {
    match (expected, found) {
        (NodeRole::Primary, "standby") => Some(
            "the config says primary, but it is a standby (pg_is_in_recovery): has a failover \
             promoted another node? Point the primary target (and index DDL) at the node that \
             takes writes"
                .into(),
        ),
        (NodeRole::Replica, "primary") => Some(
            "the config says replica, but it takes writes (not in recovery): was it promoted? \
             The dashboard's reads and the old primary need looking at"
                .into(),
        ),
        _ => None,
    }
}

/// Findings about the fleet as a whole: more than one node taking writes.
fn fleet_findings<R>(runs: &[NodeRun<R>]) -> Vec<String> {
    // pgbouncer fronts one of the nodes: its answer is that node's.
    let writable: Vec<&str> = runs
        .iter()
        .filter(|r| r.expected != NodeRole::Pgbouncer && r.found == Some("primary"))
        .map(|r| r.name.as_str())
        .collect();
    let mut findings = Vec::new();
    if writable.len() > 1 {
        findings.push(format!(
            "{} nodes take writes: {} (split brain: after a failover the old primary must be fenced or rebuilt as a replica)",
            writable.len(),
            writable.join(", ")
        ));
    }
    findings
}

impl<R: Report> Report for FleetReport<R> {
    const FORMATS: &'static [Format] = &[
        Format::Table,
        Format::Json,
        Format::Prometheus,
        Format::Nagios,
    ];

    fn render_table(&self, w: &mut dyn Write) -> Result<()> {
        render::table(self, w)
    }

    fn render_prometheus(&self, w: &mut dyn Write) -> Result<()> {
        render::prometheus(self, w)
    }

    fn nagios(&self) -> Option<NagiosCheck> {
        render::nagios(self)
    }

    fn outcome(&self) -> Outcome {
        self.targets.iter().map(NodeRun::outcome).fold(
            Outcome::from_findings(!self.findings.is_empty()),
            Outcome::and,
        )
    }
}
