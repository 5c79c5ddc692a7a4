//! A concurrent run: each query in turn from several client threads sharing
//! the pool, statements prepared once per pooled connection, waits for a
//! connection recorded apart from the latencies.

use super::{
    prepare_all, timed_run, Job, Measured, Plan, Progress, RunSettings, Runnable, Scans, Statements,
};
use crate::commands::benchmark::stats::Recorder;
use crate::db::{describe_pg_error, read_only, Pool, PooledConnection};
use crate::seed_data::Rng;
use anyhow::{anyhow, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The statements prepared on one pooled connection, kept with it.
struct Prepared(Vec<Runnable>);

/// Job `i`'s statement on this pooled connection, prepared on first use.
fn statement(
    conn: &mut PooledConnection,
    jobs: &[Job],
    i: usize,
    scans: Scans,
    how: Statements,
) -> Result<Runnable> {
    if let Some(prepared) = r2d2::PooledConnection::extensions(conn).get::<Prepared>() {
        return Ok(prepared.0[i].clone());
    }
    let statements = prepare_all(conn, jobs, scans, how)?;
    let statement = statements[i].clone();
    r2d2::PooledConnection::extensions_mut(conn).insert(Prepared(statements));
    Ok(statement)
}

/// Opens as many pool connections as clients can use at once and prepares
/// the statements on each, so connecting is not timed as waiting.
fn prime(pool: &Pool, jobs: &[Job], scans: Scans, settings: &RunSettings) -> Result<()> {
    let mut held = Vec::new();
    for _ in 0..settings.clients.min(pool.max_size()) {
        let mut conn = pool.get()?;
        statement(&mut conn, jobs, 0, scans, settings.statements)?;
        held.push(conn);
    }
    Ok(())
}

/// Runs each job in turn from `settings.clients` threads sharing the pool.
pub fn concurrent(
    pool: &Pool,
    jobs: &[Job],
    settings: &RunSettings,
    scans: Scans,
) -> Result<Vec<Measured>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    prime(pool, jobs, scans, settings)?;
    let mut measured = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        if settings.stop.requested() {
            break;
        }
        if settings.warmup > 0 {
            phase(
                pool,
                jobs,
                i,
                settings,
                Plan::Runs(u64::from(settings.warmup)),
                scans,
                None,
            )?;
        }
        let progress = Progress::new(job, settings.plan, scans);
        measured.push(phase(
            pool,
            jobs,
            i,
            settings,
            settings.plan,
            scans,
            Some(&progress),
        )?);
        progress.finish();
    }
    Ok(measured)
}

/// One query's runs from all clients; their recorders merged.
fn phase(
    pool: &Pool,
    jobs: &[Job],
    i: usize,
    settings: &RunSettings,
    plan: Plan,
    scans: Scans,
    progress: Option<&Progress>,
) -> Result<Measured> {
    let claimed = AtomicU64::new(0);
    let started = Instant::now();
    let results: Vec<Result<Recorder>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..settings.clients)
            .map(|c| {
                let claimed = &claimed;
                let seed = settings.seed.wrapping_add(u64::from(c));
                scope.spawn(move || {
                    let next = || {
                        !settings.stop.requested()
                            && match plan {
                                Plan::Runs(n) => claimed.fetch_add(1, Ordering::Relaxed) < n,
                                Plan::For(d) => started.elapsed() < d,
                            }
                    };
                    let how = (scans, settings.statements);
                    client_loop(pool, jobs, i, how, seed, next, progress)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a benchmark client thread panicked")))
            })
            .collect()
    });
    let wall = started.elapsed();
    let mut recorder = Recorder::new()?;
    for r in results {
        recorder.merge(&r?);
    }
    Ok(Measured { recorder, wall })
}

/// One client: check out, run, give back, while `next` grants another run.
fn client_loop(
    pool: &Pool,
    jobs: &[Job],
    i: usize,
    (scans, statements): (Scans, Statements),
    seed: u64,
    next: impl Fn() -> bool,
    progress: Option<&Progress>,
) -> Result<Recorder> {
    let job = &jobs[i];
    let mut rng = Rng::new(seed);
    let mut recorder = Recorder::new()?;
    while next() {
        let params = job.params(&mut rng);
        let asked = Instant::now();
        let checkout = pool.get();
        let waited = asked.elapsed();
        match checkout {
            Err(e) => recorder.error(format!("{e:#}")),
            Ok(mut conn) => {
                recorder.waited(waited);
                match statement(&mut conn, jobs, i, scans, statements) {
                    Err(e) => {
                        recorder.error(format!("{e:#}"));
                        discard_if_broken(&mut conn);
                    }
                    Ok(statement) => match timed_run(&mut conn, &statement, params) {
                        Ok((latency, rows)) => recorder.record(latency, rows),
                        Err(e) => {
                            if let Some(stop) = read_only::refusal(&e, &job.origin, &job.name) {
                                return Err(stop);
                            }
                            recorder.error(describe_pg_error(&e));
                            discard_if_broken(&mut conn);
                        }
                    },
                }
            }
        }
        if let Some(p) = progress {
            p.tick();
        }
    }
    Ok(recorder)
}

/// After an error: forget the connection's statements, and let a dead
/// connection find out it is dead, so the pool drops it instead of handing it
/// out again (r2d2 discards connections whose client is closed).
fn discard_if_broken(conn: &mut PooledConnection) {
    r2d2::PooledConnection::extensions_mut(conn).remove::<Prepared>();
    let _ = conn.is_valid(Duration::from_secs(2));
}
