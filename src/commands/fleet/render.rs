//! The fleet report for people (a section per node, the node's own report
//! inside), for Prometheus (each node's exposition with a `node` label, the
//! target's name: `target` already names the connection; families merged so
//! each appears once) and for Nagios (the worst state, a
//! summary per node).

use super::{FleetReport, NodeRun};
use crate::report::nagios::{label, NagiosCheck, NagiosState};
use crate::report::prometheus::{flag, Exposition, Kind};
use crate::report::{Format, Outcome, Report};
use anyhow::Result;
use std::io::Write;

pub fn table<R: Report>(r: &FleetReport<R>, w: &mut dyn Write) -> Result<()> {
    for node in &r.targets {
        let found = match (&node.found, &node.endpoint) {
            (Some(found), Some(at)) => format!("{found} at {at}"),
            _ => "not reached".into(),
        };
        writeln!(
            w,
            "== {} (config: {}; found: {found}) ==",
            node.name,
            node.expected.as_str()
        )?;
        if let Some(m) = &node.mismatch {
            writeln!(w, "FAIL: {m}")?;
        }
        match (&node.report, &node.error) {
            (Some(report), _) => report.render_table(w)?,
            (None, Some(e)) => writeln!(w, "could not run: {e}")?,
            (None, None) => {}
        }
        writeln!(w)?;
    }
    for f in &r.findings {
        writeln!(w, "FAIL: {f}")?;
    }
    let bad: Vec<&str> = r
        .targets
        .iter()
        .filter(|n| n.outcome() != Outcome::Clean)
        .map(|n| n.name.as_str())
        .collect();
    writeln!(
        w,
        "fleet: {} targets, {} clean{}",
        r.targets.len(),
        r.targets.len() - bad.len(),
        if bad.is_empty() {
            String::new()
        } else {
            format!(", findings on {}", bad.join(", "))
        }
    )?;
    Ok(())
}

/// Each node's exposition with `node="NAME"` on every sample, one HELP and
/// TYPE per family, plus the fleet's own gauges.
pub fn prometheus<R: Report>(r: &FleetReport<R>, w: &mut dyn Write) -> Result<()> {
    let mut merged = Families::default();
    for node in &r.targets {
        if let Some(report) = &node.report {
            let mut text = Vec::new();
            crate::report::render(report, Format::Prometheus, &mut text)?;
            merged.add(&String::from_utf8_lossy(&text), &node.name);
        }
    }
    let mut e = Exposition::new();
    let per_node = |f: &dyn Fn(&NodeRun<R>) -> f64| -> Vec<(Vec<(&str, String)>, f64)> {
        r.targets
            .iter()
            .map(|n| {
                (
                    vec![
                        ("node", n.name.clone()),
                        ("expected_role", n.expected.as_str().to_string()),
                    ],
                    f(n),
                )
            })
            .collect()
    };
    e.family(
        "o2o_db_fleet_target_up",
        Kind::Gauge,
        "1 when the command ran on the target, 0 when it could not.",
        per_node(&|n| flag(n.report.is_some())),
    );
    e.family(
        "o2o_db_fleet_target_role_ok",
        Kind::Gauge,
        "1 when the target is what the config says (primary takes writes, replica is a standby).",
        per_node(&|n| flag(n.found.is_some() && n.mismatch.is_none())),
    );
    e.family(
        "o2o_db_fleet_target_standby",
        Kind::Gauge,
        "1 when the server behind the target is in recovery (a standby).",
        r.targets
            .iter()
            .filter_map(|n| {
                n.found
                    .map(|f| (vec![("node", n.name.clone())], flag(f == "standby")))
            })
            .collect(),
    );
    e.family(
        "o2o_db_fleet_findings",
        Kind::Gauge,
        "Findings about the fleet as a whole (e.g. two nodes taking writes).",
        vec![(Vec::new(), r.findings.len() as f64)],
    );
    w.write_all(merged.into_string().as_bytes())?;
    w.write_all(e.into_string().as_bytes())?;
    Ok(())
}

/// Metric families in first-seen order, each with its HELP and TYPE once.
#[derive(Default)]
struct Families {
    order: Vec<String>,
    lines: std::collections::HashMap<String, (Vec<String>, Vec<String>)>,
}

impl Families {
    /// Adds one exposition's families, labelling its samples with `target`.
    fn add(&mut self, text: &str, target: &str) {
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
            {
                current = rest.split(' ').next().unwrap_or_default().to_string();
                let (head, _) = self.family(&current);
                if !head.iter().any(|l| l == line) {
                    head.push(line.to_string());
                }
            } else if !line.is_empty() && !line.starts_with('#') {
                let (_, samples) = self.family(&current);
                samples.push(with_target(line, target));
            }
        }
    }

    fn family(&mut self, name: &str) -> &mut (Vec<String>, Vec<String>) {
        if !self.lines.contains_key(name) {
            self.order.push(name.to_string());
        }
        self.lines.entry(name.to_string()).or_default()
    }

    fn into_string(mut self) -> String {
        let mut out = String::new();
        for name in &self.order {
            if let Some((head, samples)) = self.lines.remove(name) {
                for l in head.iter().chain(&samples) {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// `name{a="b"} 1` as `name{node="T",a="b"} 1`; `name 1` as `name{node="T"} 1`.
fn with_target(sample: &str, target: &str) -> String {
    let value = target
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    match sample.find(['{', ' ']) {
        Some(i) if sample.as_bytes()[i] == b'{' => {
            let rest = &sample[i + 1..];
            let sep = if rest.starts_with('}') { "" } else { "," };
            format!("{}{{node=\"{value}\"{sep}{rest}", &sample[..i])
        }
        Some(i) => format!("{}{{node=\"{value}\"}}{}", &sample[..i], &sample[i..]),
        None => sample.to_string(),
    }
}

/// The worst node's state; per node its summary; perfdata labelled by node.
pub fn nagios<R: Report>(r: &FleetReport<R>) -> Option<NagiosCheck> {
    let mut state = if r.findings.is_empty() {
        NagiosState::Ok
    } else {
        NagiosState::Critical
    };
    let mut service = "FLEET";
    let mut parts: Vec<String> = r.findings.clone();
    let mut perfdata = Vec::new();
    for node in &r.targets {
        let check = node.report.as_ref().and_then(R::nagios);
        let (node_state, summary) = match (&check, &node.error) {
            (Some(c), _) => (c.state, c.summary.clone()),
            (None, Some(e)) => (NagiosState::Critical, format!("could not run: {e}")),
            (None, None) => (NagiosState::Unknown, "no status".into()),
        };
        let node_state = match node.mismatch {
            Some(_) => NagiosState::Critical,
            None => node_state,
        };
        if let Some(c) = &check {
            service = c.service;
            perfdata.extend(c.perfdata.iter().map(|p| node_perfdata(&node.name, p)));
        }
        state = state.max(node_state);
        let role = node
            .mismatch
            .as_deref()
            .map_or(String::new(), |m| format!(" ({m})"));
        parts.push(format!(
            "{} {}: {summary}{role}",
            node.name,
            node_state.label()
        ));
    }
    Some(NagiosCheck {
        service,
        state,
        summary: parts.join("; "),
        perfdata,
    })
}

/// A node's `label=value;warn;crit` as `'node label'=value;warn;crit`.
fn node_perfdata(node: &str, pair: &str) -> String {
    let (name, rest) = match pair.rfind("'=") {
        Some(i) if pair.starts_with('\'') => (pair[1..i].replace("''", "'"), &pair[i + 1..]),
        _ => match pair.split_once('=') {
            Some((n, _)) => (n.to_string(), &pair[n.len()..]),
            None => return pair.to_string(),
        },
    };
    format!("{}{rest}", label(&format!("{node} {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_get_the_node_label() {
        assert_eq!(
            with_target(r#"o2o_db_x{database="d"} 1"#, "replica1"),
            r#"o2o_db_x{node="replica1",database="d"} 1"#
        );
        assert_eq!(
            with_target("o2o_db_y 2", "a\"b"),
            r#"o2o_db_y{node="a\"b"} 2"#
        );
        assert_eq!(with_target("o2o_db_z{} 3", "p"), r#"o2o_db_z{node="p"} 3"#);
    }

    #[test]
    fn families_from_two_nodes_appear_once_with_both_samples() {
        let node = "# HELP m The m.\n# TYPE m gauge\nm{a=\"1\"} 1\n# HELP n The n.\n# TYPE n counter\nn 5\n";
        let mut f = Families::default();
        f.add(node, "p");
        f.add(node, "r");
        assert_eq!(
            f.into_string(),
            "# HELP m The m.\n# TYPE m gauge\nm{node=\"p\",a=\"1\"} 1\nm{node=\"r\",a=\"1\"} 1\n\
             # HELP n The n.\n# TYPE n counter\nn{node=\"p\"} 5\nn{node=\"r\"} 5\n"
        );
    }

    #[test]
    fn perfdata_is_named_by_node() {
        assert_eq!(
            node_perfdata("replica1", "checks=11"),
            "'replica1 checks'=11"
        );
        assert_eq!(
            node_perfdata("p", "'pool usage'=10%;80;90"),
            "'p pool usage'=10%;80;90"
        );
    }
}
