//! Runs index statements on dedicated sessions (one, or --jobs of them in
//! parallel) while the calling thread watches: it polls build progress and who
//! blocks whom on the control session, and turns Ctrl-C into a cancel request
//! on the server for every running statement.
//!
//! Each statement runs on its own, outside a transaction. A lock timeout is
//! retried with growing pauses; a failed concurrent build has its INVALID
//! leftover dropped before anything else happens; and once one index could not
//! get its lock, no further builds start (they would only queue behind the
//! same blocker).

use super::session::{self, Session};
use super::settings::SessionSettings;
use super::watch::Watch;
use crate::config::Config;
use crate::db::{self, describe_pg_error, PgContext};
use crate::stop::Stop;
use postgres::error::SqlState;
use postgres::{CancelToken, Client};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the watcher polls progress and blockers.
const TICK: Duration = Duration::from_millis(250);

/// What to undo when a step fails: drop this index if it is left INVALID, or,
/// for a replacement, drop it while the index it was to replace still serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleanup {
    /// Schema-qualified, quoted index name.
    pub index: String,
    pub drop_sql: String,
    /// The index `index` was built to replace (qualified, quoted). While that
    /// one is still valid the swap did not happen, so `index` is dropped even
    /// when valid; once it is not (a cancelled concurrent drop leaves it
    /// INVALID), `index` is kept: it is then the one serving reads.
    pub replaces: Option<String>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub sql: String,
    pub cleanup: Option<Cleanup>,
}

/// The statements for one index, run in order on one session.
#[derive(Debug, Clone)]
pub struct Task {
    /// The caller's index of this task (its row in the report).
    pub id: usize,
    pub name: String,
    pub steps: Vec<Step>,
}

/// Why a task failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A lock timeout (or deadlock) after every retry.
    Lock,
    /// The statement timeout, typically while waiting for an old transaction:
    /// not retried, and, like a lock failure, it stops the run (the next build
    /// would wait for the same transaction).
    Timeout,
    /// Ctrl-C.
    Cancelled,
    Other,
}

impl Failure {
    /// Whether no further task should start after this one.
    pub fn stops_the_run(self) -> bool {
        matches!(self, Failure::Lock | Failure::Timeout)
    }
}

/// A failed task: the server's message, who blocked it, and what was (not) cleaned up.
#[derive(Debug, Clone)]
pub struct TaskError {
    pub failure: Failure,
    pub message: String,
    /// The sessions that held it up, for a lock failure.
    pub blockers: Option<String>,
    /// What happened to its leftover.
    pub aftermath: Option<String>,
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)?;
        for part in [&self.blockers, &self.aftermath].into_iter().flatten() {
            write!(f, "; {part}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct TaskResult {
    pub duration: Duration,
    pub error: Option<TaskError>,
}

/// Watches a run: progress display, plain log lines.
pub trait Observer {
    fn started(&mut self, name: &str);
    fn progress(&mut self, name: &str, phase: &str, done: i64, total: i64);
    fn retrying(&mut self, name: &str, attempt: u32, of: u32, pause: Duration, why: &str);
    fn finished(&mut self, name: &str, result: &TaskResult);
    /// Its session was lost and opened again; the work goes on.
    fn resumed(&mut self, name: &str, why: &str);
}

/// How a run of tasks ended.
#[derive(Debug, Default)]
pub struct RunOutcome {
    pub results: HashMap<usize, TaskResult>,
    /// Tasks never started (Ctrl-C, an earlier lock failure, no session).
    pub not_started: Vec<usize>,
    pub interrupted: bool,
    /// The task whose lock failure stopped the run.
    pub stopped_by: Option<String>,
    /// Why a session could not be opened, when one could not.
    pub session_error: Option<String>,
}

/// Runs tasks on `jobs` sessions.
pub struct Executor<'a> {
    pub config: &'a Config,
    pub settings: &'a SessionSettings,
    /// The managed table, qualified and quoted (to name lock holders).
    pub table: &'a str,
    pub jobs: usize,
    /// The run's stop: cancels every running statement on the server.
    pub stop: &'a Stop,
}

pub(super) enum Event {
    Ready {
        pid: i32,
        token: CancelToken,
    },
    NoSession(String),
    Started {
        id: usize,
        pid: i32,
    },
    Retrying {
        id: usize,
        pid: i32,
        attempt: u32,
        pause: Duration,
        error: TaskError,
    },
    Finished {
        id: usize,
        pid: i32,
        result: TaskResult,
    },
    /// The task's session was lost to a server restart and opened again.
    Resumed {
        id: usize,
        old: i32,
        pid: i32,
        token: CancelToken,
        why: String,
    },
}

/// State the workers share.
pub(super) struct Shared<'a> {
    queue: Mutex<VecDeque<Task>>,
    /// No new task may start (Ctrl-C or a lock failure).
    pub(super) stop: AtomicBool,
    run_stop: &'a Stop,
    settings: &'a SessionSettings,
    /// Sessions whose statement the watcher cancelled because it waited for
    /// its table lock longer than the lock timeout.
    pub(super) lock_timed_out: Mutex<HashSet<i32>>,
}

impl Shared<'_> {
    fn next(&self) -> Option<Task> {
        if self.stop.load(Ordering::SeqCst) || self.interrupted() {
            return None;
        }
        self.queue.lock().ok()?.pop_front()
    }

    fn interrupted(&self) -> bool {
        self.run_stop.requested()
    }

    /// Whether the watcher cancelled `pid`'s statement for its lock wait (and forgets it).
    fn took_lock_timeout(&self, pid: i32) -> bool {
        self.lock_timed_out
            .lock()
            .map(|mut set| set.remove(&pid))
            .unwrap_or(false)
    }
}

impl Executor<'_> {
    /// Runs `tasks` and watches them from this thread on `control`.
    pub fn run(
        &self,
        tasks: Vec<Task>,
        control: &mut Client,
        observer: &mut dyn Observer,
    ) -> RunOutcome {
        if tasks.is_empty() {
            return RunOutcome::default();
        }
        let names: HashMap<usize, String> = tasks.iter().map(|t| (t.id, t.name.clone())).collect();
        let workers = self.jobs.clamp(1, tasks.len());
        let shared = Shared {
            queue: Mutex::new(tasks.into()),
            stop: AtomicBool::new(false),
            run_stop: self.stop,
            settings: self.settings,
            lock_timed_out: Mutex::new(HashSet::new()),
        };
        let mut watch = Watch::default();
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel();
            for _ in 0..workers {
                let tx = tx.clone();
                let shared = &shared;
                let config = self.config;
                scope.spawn(move || worker(config, shared, tx));
            }
            drop(tx);
            let mut last_poll = Instant::now();
            loop {
                match rx.recv_timeout(TICK) {
                    Ok(event) => watch.on_event(event, &names, control, self, observer),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if self.stop.requested() && !watch.cancelled() {
                    watch.cancel_all(self.config, &shared);
                }
                if last_poll.elapsed() >= TICK {
                    watch.poll(control, &names, observer, self, &shared);
                    last_poll = Instant::now();
                }
            }
        });
        let mut outcome = watch.into_outcome();
        if let Ok(queue) = shared.queue.lock() {
            outcome.not_started = queue.iter().map(|t| t.id).collect();
        }
        outcome.interrupted = self.stop.requested();
        outcome
    }
}

pub(super) fn cancel(config: &Config, token: &CancelToken) -> anyhow::Result<()> {
    token.cancel_query(db::tls_connector(&config.conn)?)?;
    Ok(())
}

/// One build session: takes tasks until there are none or the run stops.
fn worker(config: &Config, shared: &Shared<'_>, tx: Sender<Event>) {
    let mut session = match open_build_session(config, shared.settings) {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Event::NoSession(format!("{e:#}")));
            return;
        }
    };
    let _ = tx.send(Event::Ready {
        pid: session.pid,
        token: session.client.cancel_token(),
    });
    while let Some(task) = shared.next() {
        let _ = tx.send(Event::Started {
            id: task.id,
            pid: session.pid,
        });
        let result = run_task(config, &mut session, &task, shared, &tx);
        if result
            .error
            .as_ref()
            .is_some_and(|e| e.failure.stops_the_run())
        {
            // Set here, not by the watcher, so this worker does not take another task first.
            shared.stop.store(true, Ordering::SeqCst);
        }
        let _ = tx.send(Event::Finished {
            id: task.id,
            pid: session.pid,
            result,
        });
    }
}

/// A build session. A concurrent build's waits for older transactions do not
/// block writers: the statement timeout bounds them, and the watcher bounds
/// the wait for the table lock itself (see watch.rs), so the server's own
/// lock timeout, which would also end those waits, is off on build sessions.
fn open_build_session(config: &Config, settings: &SessionSettings) -> anyhow::Result<Session> {
    let mut session = session::open(config, settings)?;
    lock_timeout_off(&mut session, settings)?;
    Ok(session)
}

fn lock_timeout_off(session: &mut Session, settings: &SessionSettings) -> anyhow::Result<()> {
    if settings.watch_lock_waits {
        session
            .client
            .batch_execute("SET lock_timeout = 0")
            .pg_context("cannot set up a build session")?;
    }
    Ok(())
}

/// After the connection was lost: a new session, when the server restarted
/// (the same postmaster still running means a DBA ended our backend: that is
/// a stop, not a fault to ride out).
fn resume_after_loss(
    config: &Config,
    session: &Session,
    shared: &Shared<'_>,
) -> Result<Session, String> {
    let fresh = session::reopen(config, shared.settings, shared.run_stop, |s| {
        lock_timeout_off(s, shared.settings)
    })
    .map_err(|e| format!("{e:#}"))?;
    if fresh.server_started == session.server_started {
        return Err("its session was terminated by another session (the server did not restart), so it was not resumed".into());
    }
    Ok(fresh)
}

/// Whether the build `cleanup` watches over is on the server and valid: a
/// build that finished just before the connection was lost.
fn already_built(client: &mut Client, cleanup: &Cleanup) -> bool {
    cleanup.replaces.is_none()
        && client
            .query_opt(
                "SELECT i.indisvalid AND i.indisready FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
                &[&cleanup.index],
            )
            .ok()
            .flatten()
            .is_some_and(|r| r.get::<_, bool>(0))
}

fn run_task(
    config: &Config,
    session: &mut Session,
    task: &Task,
    shared: &Shared<'_>,
    tx: &Sender<Event>,
) -> TaskResult {
    let started = Instant::now();
    let failed = |error: TaskError| TaskResult {
        duration: started.elapsed(),
        error: Some(error),
    };
    for (n, step) in task.steps.iter().enumerate() {
        if n > 0 && shared.interrupted() {
            return failed(TaskError {
                failure: Failure::Cancelled,
                message: format!("interrupted before `{}`", step.sql),
                blockers: None,
                aftermath: None,
            });
        }
        let mut attempt = 0;
        let mut resumed = false;
        loop {
            let e = match session.client.batch_execute(&step.sql) {
                Ok(()) => break,
                Err(e) => e,
            };
            // A server restart: reconnect, read the catalog again, carry on.
            if session::lost(&e, &session.client) && !resumed && !shared.interrupted() {
                let lost = describe_pg_error(&e);
                match resume_after_loss(config, session, shared) {
                    Ok(fresh) => {
                        let old = session.pid;
                        *session = fresh;
                        resumed = true;
                        let _ = tx.send(Event::Resumed {
                            id: task.id,
                            old,
                            pid: session.pid,
                            token: session.client.cancel_token(),
                            why: lost,
                        });
                        if let Some(cleanup) = &step.cleanup {
                            if already_built(&mut session.client, cleanup) {
                                break;
                            }
                            let _ = bounded_cleanup(&mut session.client, cleanup, shared.settings);
                        }
                        continue;
                    }
                    Err(why) => {
                        return failed(TaskError {
                            failure: Failure::Other,
                            message: format!("the connection was lost ({lost}); {why}"),
                            blockers: None,
                            aftermath: step.cleanup.as_ref().map(|c| {
                                format!(
                                    "the next run drops any INVALID leftover of {} and builds it",
                                    c.index
                                )
                            }),
                        });
                    }
                }
            }
            let lock_watched = shared.took_lock_timeout(session.pid);
            let failure = classify(&e, shared.interrupted(), lock_watched);
            let mut message = match failure {
                Failure::Cancelled => "cancelled by Ctrl-C (or a signal)".to_string(),
                Failure::Lock if lock_watched => format!(
                    "lock timeout: waited longer than {} for its lock on the table",
                    humantime::format_duration(shared.settings.lock_timeout)
                ),
                _ => describe_pg_error(&e),
            };
            if attempt > 0 {
                let s = if attempt == 1 { "retry" } else { "retries" };
                message.push_str(&format!(" (after {attempt} {s})"));
            }
            let mut error = TaskError {
                failure,
                message,
                blockers: None,
                aftermath: None,
            };
            if let Some(cleanup) = &step.cleanup {
                match bounded_cleanup(&mut session.client, cleanup, shared.settings) {
                    Ok(true) => error.aftermath = Some(cleanup.dropped_note()),
                    Ok(false) => {}
                    Err(e) => {
                        error.aftermath = Some(format!(
                            "its INVALID leftover could not be dropped either ({e}): the next run rebuilds it, or drop it yourself with `{}`",
                            cleanup.drop_sql
                        ));
                        return failed(error);
                    }
                }
            }
            let stopping = shared.stop.load(Ordering::SeqCst) || shared.interrupted();
            if failure != Failure::Lock || attempt >= shared.settings.lock_retries || stopping {
                return failed(error);
            }
            attempt += 1;
            let pause = SessionSettings::backoff(attempt);
            let _ = tx.send(Event::Retrying {
                id: task.id,
                pid: session.pid,
                attempt,
                pause,
                error: error.clone(),
            });
            if shared.run_stop.sleep(pause) {
                error.failure = Failure::Cancelled;
                error.message.push_str("; interrupted before retrying");
                return failed(error);
            }
        }
    }
    TaskResult {
        duration: started.elapsed(),
        error: None,
    }
}

fn classify(e: &postgres::Error, interrupted: bool, lock_watched: bool) -> Failure {
    match e.code() {
        Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::T_R_DEADLOCK_DETECTED => {
            Failure::Lock
        }
        Some(c) if *c == SqlState::QUERY_CANCELED && interrupted => Failure::Cancelled,
        Some(c) if *c == SqlState::QUERY_CANCELED && lock_watched => Failure::Lock,
        // 57014 is also a cancel from another session: only the timeout stops the run.
        Some(c)
            if *c == SqlState::QUERY_CANCELED
                && e.as_db_error()
                    .is_some_and(|db| db.message().contains("statement timeout")) =>
        {
            Failure::Timeout
        }
        _ => Failure::Other,
    }
}

/// The cleanup, bounded by the lock timeout even on a build session whose own
/// lock timeout is off: a drop must not wait hours for an old transaction.
fn bounded_cleanup(
    client: &mut Client,
    cleanup: &Cleanup,
    settings: &SessionSettings,
) -> Result<bool, String> {
    if !settings.watch_lock_waits {
        return drop_leftover(client, cleanup);
    }
    let bound = format!(
        "SET lock_timeout = '{}'",
        super::session::pg_ms(settings.lock_timeout)
    );
    client
        .batch_execute(&bound)
        .map_err(|e| describe_pg_error(&e))?;
    let dropped = drop_leftover(client, cleanup);
    let reset = client.batch_execute("SET lock_timeout = 0");
    let dropped = dropped?;
    reset.map_err(|e| describe_pg_error(&e))?;
    Ok(dropped)
}

impl Cleanup {
    /// What the report says once the cleanup dropped its index.
    fn dropped_note(&self) -> String {
        match &self.replaces {
            None => "its INVALID leftover was dropped".into(),
            Some(old) => format!(
                "the replacement {} was dropped; {old} is untouched and still serves",
                self.index
            ),
        }
    }
}

/// Carries out `cleanup` if it applies (see [`Cleanup`]); Ok(true) when it dropped its index.
pub fn drop_leftover(client: &mut Client, cleanup: &Cleanup) -> Result<bool, String> {
    let mut usable = |index: &str| -> Result<Option<bool>, String> {
        Ok(client
            .query_opt(
                "SELECT i.indisvalid AND i.indisready FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
                &[&index],
            )
            .map_err(|e| describe_pg_error(&e))?
            .map(|r| r.get(0)))
    };
    let doomed = match &cleanup.replaces {
        None => usable(&cleanup.index)? == Some(false),
        Some(old) => usable(&cleanup.index)?.is_some() && usable(old)? == Some(true),
    };
    if !doomed {
        return Ok(false);
    }
    client
        .batch_execute(&cleanup.drop_sql)
        .map_err(|e| describe_pg_error(&e))?;
    Ok(true)
}
