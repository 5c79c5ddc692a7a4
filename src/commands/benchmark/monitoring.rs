//! benchmark for Prometheus and Nagios: per query a latency summary
//! (quantiles 0.5, 0.95, 0.99 in seconds, count, sum), errors, rows and the
//! seq-scan speedup, and the run's timestamp; Nagios is CRITICAL when a query
//! crossed the p95 limit or went unmeasured, WARNING when one slowed against
//! the baseline.

use super::{BenchmarkReport, QueryFigures};
use crate::report::nagios::{label, NagiosCheck, NagiosState};
use crate::report::prometheus::{seconds, Exposition, Kind, Labels, SummarySample};
use anyhow::Result;
use std::io::Write;

pub fn prometheus(r: &BenchmarkReport, w: &mut dyn Write) -> Result<()> {
    let m = &r.meta;
    let base: Labels = vec![("database", m.database.clone())];
    let per_query = |q: &QueryFigures| -> Labels {
        let mut labels = base.clone();
        if let Some(t) = &m.table {
            labels.push(("table", t.clone()));
        }
        labels.push(("query", q.name.clone()));
        labels
    };
    let measured: Vec<&QueryFigures> = r.queries.iter().filter(|q| !q.not_measured).collect();
    let mut e = Exposition::new();
    e.summary(
        "o2o_db_benchmark_query_duration_seconds",
        "Each suite query's latency over the run's timed executions.",
        measured
            .iter()
            .map(|q| {
                let f = &q.figures;
                SummarySample {
                    labels: per_query(q),
                    quantiles: vec![
                        ("0.5", seconds(f.p50_ms)),
                        ("0.95", seconds(f.p95_ms)),
                        ("0.99", seconds(f.p99_ms)),
                    ],
                    sum: seconds(f.mean_ms * f.iterations as f64),
                    count: f.iterations as f64,
                }
            })
            .collect(),
    );
    let each = |f: &dyn Fn(&QueryFigures) -> Option<f64>| -> Vec<(Labels, f64)> {
        r.queries
            .iter()
            .filter_map(|q| f(q).map(|v| (per_query(q), v)))
            .collect()
    };
    e.family(
        "o2o_db_benchmark_query_errors",
        Kind::Gauge,
        "Timed executions of the query that failed in this run.",
        each(&|q| Some(q.figures.errors as f64)),
    );
    e.family(
        "o2o_db_benchmark_query_rows",
        Kind::Gauge,
        "Rows the query returned, on average per execution.",
        each(&|q| (!q.not_measured).then_some(q.figures.rows)),
    );
    e.family(
        "o2o_db_benchmark_query_measured",
        Kind::Gauge,
        "1 when the query had at least one successful timed execution.",
        each(&|q| Some(crate::report::prometheus::flag(!q.not_measured))),
    );
    e.family(
        "o2o_db_benchmark_query_seqscan_speedup_ratio",
        Kind::Gauge,
        "The query's p50 with sequential scans only over its p50 with the indexes (--compare-seqscan).",
        each(&|q| q.speedup),
    );
    e.family(
        "o2o_db_benchmark_query_partitions_read",
        Kind::Gauge,
        "On a partitioned table: the most partitions the query's plans read after pruning.",
        each(&|q| q.partitions.map(|p| p.read_max as f64)),
    );
    e.family(
        "o2o_db_benchmark_table_partitions",
        Kind::Gauge,
        "The partitions the managed table has, when it is partitioned.",
        r.queries
            .iter()
            .find_map(|q| q.partitions)
            .map(|p| {
                let mut labels = base.clone();
                labels.extend(m.table.clone().map(|t| ("table", t)));
                (labels, p.partitions as f64)
            })
            .into_iter()
            .collect(),
    );
    e.family(
        "o2o_db_benchmark_query_over_limit",
        Kind::Gauge,
        "1 when the query's p95 is over the limit.",
        each(&|q| Some(crate::report::prometheus::flag(q.over_max_p95))),
    );
    e.family(
        "o2o_db_benchmark_p95_limit_seconds",
        Kind::Gauge,
        "The p95 limit each query is held to.",
        vec![(base.clone(), seconds(m.max_p95_ms))],
    );
    if let Ok(at) = humantime::parse_rfc3339(&m.started_at) {
        let unix = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        e.family(
            "o2o_db_benchmark_run_timestamp_seconds",
            Kind::Gauge,
            "When the run started, in Unix seconds.",
            vec![(base.clone(), unix)],
        );
    }
    w.write_all(e.into_string().as_bytes())?;
    Ok(())
}

pub fn nagios(r: &BenchmarkReport) -> NagiosCheck {
    let count = |f: fn(&QueryFigures) -> bool| r.queries.iter().filter(|q| f(q)).count();
    let over = count(|q| q.over_max_p95);
    let unmeasured = count(|q| q.not_measured);
    let slower = count(|q| q.slower_than_baseline);
    let state = if over + unmeasured > 0 {
        NagiosState::Critical
    } else if slower > 0 {
        NagiosState::Warning
    } else {
        NagiosState::Ok
    };
    let limit = r.meta.max_p95_ms;
    let mut perfdata = Vec::new();
    for q in r.queries.iter().filter(|q| !q.not_measured) {
        perfdata.push(format!(
            "{}={:.3}ms;{limit};{limit};0",
            label(&format!("{}_p95", q.name)),
            q.figures.p95_ms
        ));
    }
    NagiosCheck {
        service: "BENCHMARK",
        state,
        summary: format!(
            "{} queries: {over} over the p95 limit of {limit} ms, {unmeasured} not measured, {slower} slower than the baseline",
            r.queries.len()
        ),
        perfdata,
    }
}
