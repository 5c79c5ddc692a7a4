//! The dashboard's queries: does the planner reach the table through an index
//! where the suite says it should (planner), and is each query's median under
//! the alert threshold (speed). Parameters are drawn from the data by
//! params.rs and always bound; EXPLAIN takes them through the extended protocol.

use super::context::Ctx;
use super::{median, Verdict};
use crate::db::describe_pg_error;
use crate::db::read_only;
use crate::explain;
use crate::params::{as_sql_params, literals};
use crate::seed_data::Rng;
use crate::sqlfiles::QuerySpec;
use anyhow::{anyhow, Result};
use postgres::error::SqlState;
use std::time::{Duration, Instant};

/// planner: every suite query marked `-- index: yes` reaches the table
/// through an index, for parameters drawn from the data.
pub fn planner(ctx: &mut Ctx) -> Result<Verdict> {
    let table = ctx.table()?;
    let queries = ctx.queries()?;
    let seed = ctx.config.benchmark.seed;
    let relations = ctx.relations()?;
    let mut pruning = Vec::new();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut cheaper = Vec::new();
    let mut not_expected = Vec::new();
    for q in &queries {
        if !q.expect_index {
            not_expected.push(q.name.as_str());
            continue;
        }
        let params = ctx.draw_params(q, &mut Rng::new(seed))?;
        let client = ctx.client()?;
        let doc = explain::plan(client, q, &params)?;
        let acc = explain::access(&doc, &relations);
        let pruned = if relations.partitions.is_empty() {
            String::new()
        } else {
            let touched = (acc.partitions.len(), relations.partitions.len());
            pruning.push((q.name.clone(), touched));
            format!(" ({} of {} partitions)", touched.0, touched.1)
        };
        if acc.seq_scans == 0 && !acc.indexes.is_empty() {
            good.push(format!("{}: {}{pruned}", q.name, acc.indexes.join(", ")));
            continue;
        }
        let shown = if params.is_empty() {
            String::new()
        } else {
            format!(" (parameters {})", literals(client, &params)?.join(", "))
        };
        let how = if acc.seq_scans > 0 {
            format!("Seq Scan on {}", table.name)
        } else {
            format!("reads {} through no index", table.name)
        };
        // An index the planner could use but prices dearer is its judgement
        // at this size, not a missing index.
        let forced = explain::plan_without_seqscan(client, q, &params)?;
        let through = explain::access(&forced, &relations);
        match (explain::total_cost(&doc), explain::total_cost(&forced)) {
            (Some(chosen), Some(with_index))
                if through.seq_scans == 0 && !through.indexes.is_empty() && with_index > chosen =>
            {
                cheaper.push(format!(
                    "{}: {how}{pruned}, estimated cheaper than {} (cost {chosen:.0} against {with_index:.0}){shown}",
                    q.name,
                    through.indexes.join(", ")
                ));
            }
            _ => bad.push(format!("{}: {how}{pruned}{shown}", q.name)),
        }
    }
    ctx.pruning.extend(pruning);
    let skipped = if not_expected.is_empty() {
        String::new()
    } else {
        format!(
            " ({} not expected to: {})",
            not_expected.len(),
            not_expected.join(", ")
        )
    };
    let expected = bad.len() + cheaper.len() + good.len();
    if bad.is_empty() && cheaper.is_empty() {
        return Ok(Verdict::pass(format!(
            "{} queries reach {} through an index{skipped}:\n{}",
            good.len(),
            table.name,
            good.join("\n")
        )));
    }
    let failing = !bad.is_empty();
    let mut lines = Vec::new();
    if failing {
        lines.push(format!(
            "{} of {expected} queries expected to use an index on {} do not, and none would serve them:",
            bad.len(),
            table.name
        ));
        lines.append(&mut bad);
    }
    if !cheaper.is_empty() {
        lines.push(format!(
            "{} of {expected} queries scan {} sequentially, which the planner estimates cheaper than their index:",
            cheaper.len(),
            table.name
        ));
        lines.append(&mut cheaper);
    }
    lines.extend(good);
    let detail = lines.join("\n");
    if !failing {
        return Ok(Verdict::warn(
            detail,
            format!(
                "nothing to build: for these parameters a sequential scan reads less than the index would \
                 (a large share of {} or of each partition it reads); to confirm by timing, run the query under \
                 EXPLAIN (ANALYZE, BUFFERS) with and without SET enable_seqscan = off",
                table.qualified()
            ),
        ));
    }
    // A standby's indexes and statistics are the primary's, replayed.
    let repair = if ctx.standby {
        format!(
            "make the indexes check pass: on the primary, o2o-db create-indexes builds what is missing and \
             ANALYZE {} refreshes stale statistics (both reach this standby by replay; see the replication check)",
            table.qualified()
        )
    } else {
        format!(
            "make the indexes check pass (o2o-db create-indexes builds what is missing), ANALYZE {} if its statistics are stale",
            table.qualified()
        )
    };
    Ok(Verdict::fail(
        detail,
        format!("{repair}, then EXPLAIN (ANALYZE, BUFFERS) the query with the parameters shown"),
    ))
}

/// speed: each suite query's median over [verify] runs executions is under
/// the threshold (--max-ms, else [alert] query_ms). Each run is bounded by
/// the statement timeout; a run it cancels fails the query as slow.
pub fn speed(ctx: &mut Ctx) -> Result<Verdict> {
    // Resolving the table puts its schema first on the search_path.
    let table = ctx.table()?;
    let on = format!("{}.{}", table.schema, table.name);
    let queries = ctx.queries()?;
    let runs = ctx.config.verify.runs.max(1);
    let seed = ctx.config.benchmark.seed;
    let max_ms = ctx.max_ms;
    let timeout_ms = ctx.statement_timeout.as_millis();
    let mut timed: Vec<(String, Timing)> = Vec::with_capacity(queries.len());
    for q in &queries {
        timed.push((q.name.clone(), median_ms(ctx, q, runs, seed)?));
    }
    let slow: Vec<String> = timed
        .iter()
        .filter_map(|(name, t)| match t {
            Timing::Median(ms) if *ms > max_ms => {
                Some(format!("{name}: median {ms:.2} ms > {max_ms} ms"))
            }
            Timing::Median(_) => None,
            Timing::TimedOut => Some(format!(
                "{name}: exceeded the statement timeout of {timeout_ms} ms (the run was cancelled)"
            )),
        })
        .collect();
    let all = timed
        .chunks(3)
        .map(|chunk| {
            chunk
                .iter()
                .map(|(name, t)| match t {
                    Timing::Median(ms) => match ctx.pruning.get(name) {
                        Some((n, of)) => format!("{name} {ms:.2} ({n}/{of} partitions)"),
                        None => format!("{name} {ms:.2}"),
                    },
                    Timing::TimedOut => format!("{name} over {timeout_ms}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect::<Vec<_>>()
        .join("\n");
    if slow.is_empty() {
        return Ok(Verdict::pass(format!(
            "medians of {runs} runs on {on}, all under {max_ms} ms (ms):\n{all}"
        )));
    }
    Ok(Verdict::fail(
        format!(
            "{} of {} queries on {on} slower than {max_ms} ms:\n{}\nmedians of {runs} runs (ms):\n{all}",
            slow.len(),
            timed.len(),
            slow.join("\n")
        ),
        "see the planner check for how each slow query reaches the table; o2o-db benchmark gives percentiles, \
         EXPLAIN (ANALYZE, BUFFERS) shows where the time goes",
    ))
}

/// What the speed check measured for one query.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Timing {
    /// The median of its runs, in ms.
    Median(f64),
    /// A run ran into the statement timeout and was cancelled: the query is
    /// slow, and its remaining runs are not made.
    TimedOut,
}

/// Runs `q` `runs` times, prepared once, with a fresh parameter draw each
/// time, each run under the check's statement timeout.
fn median_ms(ctx: &mut Ctx, q: &QuerySpec, runs: u32, seed: u64) -> Result<Timing> {
    let mut rng = Rng::new(seed);
    let mut draws = Vec::with_capacity(runs as usize);
    for _ in 0..runs {
        draws.push(ctx.draw_params(q, &mut rng)?);
    }
    let at = format!("{}:{}", ctx.suite_origin()?, q.line);
    let timeout = ctx.statement_timeout;
    // PostgreSQL takes the timeout in whole ms, at most i32::MAX.
    let set_timeout = format!(
        "SET LOCAL statement_timeout = {}",
        timeout.as_millis().clamp(1, i32::MAX as u128)
    );
    let client = ctx.client()?;
    let failed = |e: postgres::Error| {
        read_only::refusal(&e, &at, &q.name)
            .unwrap_or_else(|| anyhow!("query {}: {}", q.name, describe_pg_error(&e)))
    };
    let stmt = client.prepare(&q.sql).map_err(failed)?;
    let mut times = Vec::with_capacity(draws.len());
    for params in &draws {
        // Each timed run in its own READ ONLY transaction, whose timeout ends
        // with it; only the query is timed.
        let (elapsed, result) = read_only::run(client, |tx| {
            tx.batch_execute(&set_timeout)?;
            let started = Instant::now();
            let result = tx.query(&stmt, &as_sql_params(params));
            Ok((started.elapsed(), result))
        })
        .map_err(failed)?;
        match result {
            Ok(_) => times.push(elapsed.as_secs_f64() * 1000.0),
            Err(e) if cancelled_by_timeout(&e, elapsed, timeout) => return Ok(Timing::TimedOut),
            Err(e) => return Err(failed(e)),
        }
    }
    Ok(Timing::Median(median(&mut times)))
}

/// True when `e` is the server cancelling the statement after `timeout`. The
/// time, not the message (which lc_messages translates), tells it apart from
/// a pg_cancel_backend: the client waited at least as long as the server ran.
fn cancelled_by_timeout(e: &postgres::Error, elapsed: Duration, timeout: Duration) -> bool {
    e.code() == Some(&SqlState::QUERY_CANCELED) && elapsed >= timeout
}
