//! The benchmark report as a table for people and as CSV for spreadsheets.
//!
//! CSV columns are the JSON field names and their values are read from the
//! JSON form of each query, so the two formats cannot disagree.

use super::{BenchmarkReport, QueryFigures, Statements};
use crate::report::{self, ms};
use anyhow::Result;
use comfy_table::{Cell, CellAlignment};
use std::io::Write;

pub fn table(r: &BenchmarkReport, w: &mut dyn Write) -> Result<()> {
    let m = &r.meta;
    let orders = match (&m.table, m.orders) {
        (Some(table), Some(n)) => format!(" · {table}: {} orders", thousands(n)),
        _ => String::new(),
    };
    writeln!(
        w,
        "PostgreSQL {} · database {}{orders} · {}",
        m.server_version, m.database, m.started_at
    )?;
    let runs = match (m.iterations, m.duration_s) {
        (Some(n), _) => format!("{n} runs per query"),
        (None, Some(s)) => format!("{s} s per query"),
        (None, None) => String::new(),
    };
    let mode = if m.mode == "concurrent" {
        format!("{} clients sharing the pool", m.clients)
    } else {
        "1 client on a dedicated connection".to_string()
    };
    let params = if m.fixed_params {
        "fixed parameters"
    } else {
        "parameters drawn from the data"
    };
    writeln!(
        w,
        "{mode} · {runs} after {} warm-up · {params} (seed {}) · suite {}",
        m.warmup, m.seed, m.suite
    )?;
    if m.statements == Statements::Unnamed {
        writeln!(
            w,
            "unnamed statements, each run parsed and planned (server connections are pooled per transaction): timings include parse and plan"
        )?;
    }

    let seqscan = r.queries.iter().any(|q| q.speedup.is_some());
    let waits = r.queries.iter().any(|q| q.wait_mean_ms.is_some());
    let baseline = m.baseline.is_some();
    let partitioned = r.queries.iter().any(|q| q.partitions.is_some());
    let mut header = vec![
        "query", "runs", "errors", "rows", "min", "mean", "stddev", "p50", "p95", "p99", "max",
        "qps",
    ];
    if seqscan {
        header.extend(["seq-scan p50", "speedup"]);
    }
    if waits {
        header.extend(["pool wait", "wait max"]);
    }
    if baseline {
        header.push("vs baseline");
    }
    if partitioned {
        header.push("partitions");
    }
    header.push("status");
    let mut t = report::table();
    t.set_header(header.clone());
    for q in &r.queries {
        let mut row = vec![
            q.name.clone(),
            q.figures.iterations.to_string(),
            q.figures.errors.to_string(),
            format!("{}", q.figures.rows),
            opt_ms(q.figures.min_ms),
            opt_ms(q.figures.mean_ms),
            opt_ms(q.figures.stddev_ms),
            opt_ms(q.figures.p50_ms),
            opt_ms(q.figures.p95_ms),
            opt_ms(q.figures.p99_ms),
            opt_ms(q.figures.max_ms),
            format!("{:.0}", q.qps),
        ];
        if seqscan {
            row.push(q.seqscan_p50_ms.map_or("-".into(), opt_ms));
            row.push(q.speedup.map_or("-".into(), |s| {
                if s.is_finite() {
                    format!("{s:.1}x")
                } else {
                    "-".into()
                }
            }));
        }
        if waits {
            row.push(q.wait_mean_ms.map_or("-".into(), opt_ms));
            row.push(q.wait_max_ms.map_or("-".into(), opt_ms));
        }
        if baseline {
            row.push(
                q.baseline_change_percent
                    .map_or("-".into(), |c| format!("{c:+.0}%")),
            );
        }
        if partitioned {
            row.push(q.partitions.map_or("-".into(), |p| p.to_string()));
        }
        row.push(status(q));
        t.add_row(row.into_iter().map(Cell::new).collect::<Vec<_>>());
    }
    for i in 1..header.len() - 1 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    writeln!(w, "{t}")?;
    writeln!(
        w,
        "latencies in ms; percentiles from an HDR histogram (3 significant digits)"
    )?;

    let over: Vec<&str> = names(r, |q| q.over_max_p95);
    let unmeasured = names(r, |q| q.not_measured);
    if !unmeasured.is_empty() {
        writeln!(
            w,
            "not measured (no successful timed run, so nothing to judge): {}",
            unmeasured.join(", ")
        )?;
    }
    if over.is_empty() {
        let every = if unmeasured.is_empty() {
            "every"
        } else {
            "every measured"
        };
        writeln!(
            w,
            "p95 limit {} ms: {every} query under it",
            ms(m.max_p95_ms)
        )?;
    } else {
        writeln!(
            w,
            "p95 limit {} ms: {} over it: {}",
            ms(m.max_p95_ms),
            count(over.len(), "query", "queries"),
            over.join(", ")
        )?;
    }
    if let Some(b) = &m.baseline {
        let slower = names(r, |q| q.slower_than_baseline);
        let verdict = if slower.is_empty() {
            format!("no query more than {}% slower", b.slower_percent)
        } else {
            format!(
                "{} more than {}% slower: {}",
                count(slower.len(), "query", "queries"),
                b.slower_percent,
                slower.join(", ")
            )
        };
        writeln!(
            w,
            "baseline {} (run of {}): {verdict}",
            b.file, b.started_at
        )?;
        if let Some(note) = &b.note {
            writeln!(w, "  note: {note}")?;
        }
    }
    for q in r.queries.iter().filter(|q| q.figures.errors > 0) {
        writeln!(
            w,
            "{}: {} failed; last error: {}",
            q.name,
            count(q.figures.errors as usize, "run", "runs"),
            q.last_error.as_deref().unwrap_or("unknown")
        )?;
    }
    for q in r.queries.iter() {
        match q.params.as_deref() {
            None => {}
            Some([]) => writeln!(w, "{} parameters: none", q.name)?,
            Some(values) => writeln!(w, "{} parameters: {}", q.name, values.join(", "))?,
        }
    }
    if let Some(p) = &m.pool {
        writeln!(
            w,
            "pool: max_size {}, {} checkouts, {} waited over 1 ms (max {} ms), {} timed out",
            p.max_size,
            p.checkouts.checkouts,
            p.checkouts.waits,
            ms(p.checkouts.wait_ms_max),
            p.checkouts.timeouts
        )?;
    }
    for line in &m.damaged_history_lines {
        writeln!(w, "history: {line}")?;
    }
    if m.interrupted {
        writeln!(w, "interrupted: only the runs made before Ctrl-C are shown")?;
    }
    Ok(())
}

/// The columns of the CSV form, in order, each with whether it is optional:
/// an optional one appears when any query has it, the others always (so a
/// run interrupted before its first query still gets its header).
const CSV_COLUMNS: &[(&str, bool)] = &[
    ("name", false),
    ("iterations", false),
    ("errors", false),
    ("rows", false),
    ("min_ms", false),
    ("mean_ms", false),
    ("stddev_ms", false),
    ("p50_ms", false),
    ("p95_ms", false),
    ("p99_ms", false),
    ("max_ms", false),
    ("qps", false),
    ("seqscan_p50_ms", true),
    ("speedup", true),
    ("wait_mean_ms", true),
    ("wait_max_ms", true),
    ("baseline_p50_ms", true),
    ("baseline_change_percent", true),
    ("over_max_p95", false),
    ("slower_than_baseline", false),
    ("not_measured", false),
    ("last_error", true),
    ("params", true),
    ("partitions", true),
];

/// One row per query, RFC 4180 quoting by the csv crate.
pub fn csv(r: &BenchmarkReport, w: &mut dyn Write) -> Result<()> {
    let rows: Vec<serde_json::Value> = r
        .queries
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    let columns: Vec<&str> = CSV_COLUMNS
        .iter()
        .filter(|(c, optional)| !optional || rows.iter().any(|row| row.get(*c).is_some()))
        .map(|(c, _)| *c)
        .collect();
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(w);
    out.write_record(&columns)?;
    for row in &rows {
        out.write_record(columns.iter().map(|c| csv_text(row.get(*c))))?;
    }
    out.flush()?;
    Ok(())
}

/// A JSON value as a CSV cell: null is empty, a list is space-separated.
fn csv_text(v: Option<&serde_json::Value>) -> String {
    use serde_json::Value;
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| csv_text(Some(i)))
            .collect::<Vec<_>>()
            .join(" "),
        // The pruning figures: key=value, space-separated.
        Some(Value::Object(fields)) => fields
            .iter()
            .map(|(k, v)| format!("{k}={}", csv_text(Some(v))))
            .collect::<Vec<_>>()
            .join(" "),
        Some(other) => other.to_string(),
    }
}

fn status(q: &QueryFigures) -> String {
    let mut s = Vec::new();
    if q.over_max_p95 {
        s.push("p95 over limit".to_string());
    }
    if q.slower_than_baseline {
        s.push("slower than baseline".to_string());
    }
    if q.not_measured {
        s.push("not measured".to_string());
    }
    if q.figures.errors > 0 {
        s.push(count(q.figures.errors as usize, "error", "errors"));
    }
    if s.is_empty() {
        "ok".into()
    } else {
        s.join(", ")
    }
}

fn names(r: &BenchmarkReport, pick: impl Fn(&QueryFigures) -> bool) -> Vec<&str> {
    r.queries
        .iter()
        .filter(|q| pick(q))
        .map(|q| q.name.as_str())
        .collect()
}

fn opt_ms(v: f64) -> String {
    if v.is_finite() {
        ms(v)
    } else {
        "-".into()
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// 93728 -> "93,728".
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(thousands(93728), "93,728");
        assert_eq!(thousands(512), "512");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}

#[cfg(test)]
mod snapshot_tests;
