//! A sequential run: each query in turn on one dedicated connection, opened
//! again (with a short backoff) after a killed backend or a restart.

use super::{
    prepare_all, timed_run, Job, Measured, Plan, Progress, RunSettings, Runnable, Scans, Statements,
};
use crate::commands::benchmark::stats::Recorder;
use crate::conninfo::ConnInfo;
use crate::db::{self, describe_pg_error, read_only};
use crate::params::ParamRow;
use crate::seed_data::Rng;
use anyhow::Result;
use postgres::Client;
use std::time::{Duration, Instant};

/// How many reconnects in a row may fail before the run gives up.
const MAX_RECONNECTS: u32 = 10;

/// The result of one run.
enum Run {
    Done { latency: Duration, rows: u64 },
    Failed(String),
}

/// The dedicated connection of a sequential run, with every statement prepared;
/// replaced by a fresh one after an error.
struct Session<'a> {
    conn: &'a ConnInfo,
    jobs: &'a [Job],
    scans: Scans,
    statements: Statements,
    open: Option<(Client, Vec<Runnable>)>,
    failed_reconnects: u32,
}

impl<'a> Session<'a> {
    fn open(
        conn: &'a ConnInfo,
        jobs: &'a [Job],
        scans: Scans,
        statements: Statements,
    ) -> Result<Session<'a>> {
        let mut client = db::connect(conn)?;
        let prepared = prepare_all(&mut client, jobs, scans, statements)?;
        Ok(Session {
            conn,
            jobs,
            scans,
            statements,
            open: Some((client, prepared)),
            failed_reconnects: 0,
        })
    }

    /// Runs job `i` once. Err only when the server stays unreachable.
    fn run(&mut self, i: usize, params: &ParamRow) -> Result<Run> {
        if self.open.is_none() {
            if let Err(e) = self.reconnect() {
                self.failed_reconnects += 1;
                if self.failed_reconnects >= MAX_RECONNECTS {
                    return Err(e.context(format!(
                        "lost the connection during query {} and could not reconnect ({MAX_RECONNECTS} attempts)",
                        self.jobs[i].name
                    )));
                }
                // Back off 100 ms, 200 ms, ... up to 800 ms while the server comes back.
                std::thread::sleep(Duration::from_millis(
                    100 << (self.failed_reconnects - 1).min(3),
                ));
                return Ok(Run::Failed(format!("{e:#}")));
            }
        }
        let Some((client, statements)) = self.open.as_mut() else {
            return Ok(Run::Failed("not connected".into()));
        };
        Ok(match timed_run(client, &statements[i], params) {
            Ok((latency, rows)) => Run::Done { latency, rows },
            Err(e) => {
                let job = &self.jobs[i];
                if let Some(stop) = read_only::refusal(&e, &job.origin, &job.name) {
                    return Err(stop);
                }
                // A killed backend, a cancelled statement: start the next run on a clean session.
                self.open = None;
                Run::Failed(describe_pg_error(&e))
            }
        })
    }

    fn reconnect(&mut self) -> Result<()> {
        let mut client = db::connect(self.conn)?;
        let prepared = prepare_all(&mut client, self.jobs, self.scans, self.statements)?;
        self.failed_reconnects = 0;
        self.open = Some((client, prepared));
        Ok(())
    }
}

/// Runs each job in turn on one dedicated connection.
pub fn sequential(
    conn: &ConnInfo,
    jobs: &[Job],
    settings: &RunSettings,
    scans: Scans,
) -> Result<Vec<Measured>> {
    let mut session = Session::open(conn, jobs, scans, settings.statements)?;
    let mut measured = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        if settings.stop.requested() {
            break;
        }
        let mut rng = Rng::new(settings.seed);
        for _ in 0..settings.warmup {
            if settings.stop.requested() {
                break;
            }
            session.run(i, job.params(&mut rng))?;
        }
        let progress = Progress::new(job, settings.plan, scans);
        let mut recorder = Recorder::new()?;
        let started = Instant::now();
        loop {
            let done = match settings.plan {
                Plan::Runs(n) => recorder.attempts() >= n,
                Plan::For(d) => started.elapsed() >= d,
            };
            if done || settings.stop.requested() {
                break;
            }
            match session.run(i, job.params(&mut rng))? {
                Run::Done { latency, rows } => recorder.record(latency, rows),
                Run::Failed(message) => recorder.error(message),
            }
            progress.tick();
        }
        let wall = started.elapsed();
        progress.finish();
        measured.push(Measured { recorder, wall });
    }
    Ok(measured)
}
