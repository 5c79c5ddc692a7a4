// Runs index statements on dedicated sessions (one, or --jobs of them in
// parallel) while the calling thread watches: it polls build progress and who
// blocks whom on the control session, and turns Ctrl-C into a cancel request
// on the server for every running statement.
//
// Each statement runs on its own, outside a transaction. A lock timeout is
// retried with growing pauses; a failed concurrent build has its INVALID
// leftover dropped before anything else happens; and once one index could not
// get its lock, no further builds start (they would only queue behind the
// same blocker).

use super::session::{self, Session};
use super::settings::SessionSettings;
use crate::catalog::activity::{self, Backend};
use crate::config::Config;
use crate::db::{self, describe_pg_error};
use crate::stop::Stop;
use postgres::error::SqlState;
use postgres::{CancelToken, Client};
use std::collections::{HashMap, VecDeque};
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
    /// Ctrl-C.
    Cancelled,
    Other,
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

enum Event {
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
}

/// State the workers share.
struct Shared<'a> {
    queue: Mutex<VecDeque<Task>>,
    /// No new task may start (Ctrl-C or a lock failure).
    stop: AtomicBool,
    run_stop: &'a Stop,
    settings: &'a SessionSettings,
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
        };
        let mut watch = Watch {
            outcome: RunOutcome::default(),
            tokens: Vec::new(),
            running: HashMap::new(),
            blockers: HashMap::new(),
            cancelled: false,
        };
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
                if self.stop.requested() && !watch.cancelled {
                    watch.cancel_all(self.config, &shared);
                }
                if last_poll.elapsed() >= TICK {
                    watch.poll(control, &names, observer);
                    last_poll = Instant::now();
                }
            }
        });
        let mut outcome = watch.outcome;
        if let Ok(queue) = shared.queue.lock() {
            outcome.not_started = queue.iter().map(|t| t.id).collect();
        }
        outcome.interrupted = self.stop.requested();
        outcome
    }
}

/// The watching thread's state.
struct Watch {
    outcome: RunOutcome,
    tokens: Vec<CancelToken>,
    /// pid -> task id, for the tasks running now.
    running: HashMap<i32, usize>,
    /// pid -> the sessions last seen blocking it during its current statement.
    blockers: HashMap<i32, Vec<Backend>>,
    cancelled: bool,
}

impl Watch {
    fn on_event(
        &mut self,
        event: Event,
        names: &HashMap<usize, String>,
        control: &mut Client,
        exec: &Executor<'_>,
        observer: &mut dyn Observer,
    ) {
        let name = |id: &usize| names.get(id).map_or("?", String::as_str);
        match event {
            Event::Ready { pid, token } => {
                if self.cancelled {
                    let _ = cancel(exec.config, &token);
                }
                self.tokens.push(token);
                self.blockers.remove(&pid);
            }
            Event::NoSession(error) => {
                self.outcome.session_error.get_or_insert(error);
            }
            Event::Started { id, pid } => {
                self.running.insert(pid, id);
                self.blockers.remove(&pid);
                observer.started(name(&id));
            }
            Event::Retrying {
                id,
                pid,
                attempt,
                pause,
                mut error,
            } => {
                error.blockers = self.blockers_of(pid, control, exec);
                let why = error.to_string();
                observer.retrying(name(&id), attempt, exec.settings.lock_retries, pause, &why);
            }
            Event::Finished {
                id,
                pid,
                mut result,
            } => {
                self.running.remove(&pid);
                if let Some(error) = &mut result.error {
                    if error.failure == Failure::Lock {
                        error.blockers = self.blockers_of(pid, control, exec);
                        self.outcome
                            .stopped_by
                            .get_or_insert_with(|| name(&id).to_string());
                    }
                }
                self.blockers.remove(&pid);
                observer.finished(name(&id), &result);
                self.outcome.results.insert(id, result);
            }
        }
    }

    /// Who was blocking `pid`: as seen while it waited, else the sessions
    /// holding locks on the table or old transactions now.
    fn blockers_of(
        &mut self,
        pid: i32,
        control: &mut Client,
        exec: &Executor<'_>,
    ) -> Option<String> {
        let seen = self.blockers.remove(&pid).unwrap_or_default();
        let (label, who) = if seen.is_empty() {
            let ours: Vec<i32> = self.running.keys().copied().chain([pid]).collect();
            let older = exec.settings.lock_timeout.as_secs_f64();
            let now = activity::lock_holders(control, exec.table, &ours, older).unwrap_or_default();
            ("likely blocked by", now)
        } else {
            ("blocked by", seen)
        };
        (!who.is_empty()).then(|| format!("{label} {}", activity::describe(&who)))
    }

    /// Polls progress and blockers of the running statements; a failed poll is skipped.
    fn poll(
        &mut self,
        control: &mut Client,
        names: &HashMap<usize, String>,
        observer: &mut dyn Observer,
    ) {
        let pids: Vec<i32> = self.running.keys().copied().collect();
        if pids.is_empty() {
            return;
        }
        let progress = control.query(
            "SELECT pid, phase, blocks_done, blocks_total, tuples_done, tuples_total, lockers_done, lockers_total \
             FROM pg_stat_progress_create_index WHERE pid = ANY($1::int4[])",
            &[&pids],
        );
        for row in progress.iter().flatten() {
            let pid: i32 = row.get(0);
            let Some(name) = self.running.get(&pid).and_then(|id| names.get(id)) else {
                continue;
            };
            let phase: String = row.get(1);
            let counters: [(i64, i64); 3] = [
                (row.get(2), row.get(3)),
                (row.get(4), row.get(5)),
                (row.get(6), row.get(7)),
            ];
            let (done, total) = counters
                .into_iter()
                .find(|(_, total)| *total > 0)
                .unwrap_or((0, 0));
            observer.progress(name, &phase, done, total);
        }
        if let Ok(found) = activity::blocking(control, &pids) {
            let mut now: HashMap<i32, Vec<Backend>> = HashMap::new();
            for (waiter, blocker) in found {
                // Our own sessions (another --jobs build) are not worth naming.
                if !self.running.contains_key(&blocker.pid) {
                    now.entry(waiter).or_default().push(blocker);
                }
            }
            // Keep the last non-empty sighting: the waiter is gone once it times out.
            self.blockers.extend(now);
        }
    }

    /// Ctrl-C: no new tasks, and every running statement cancelled on the server.
    fn cancel_all(&mut self, config: &Config, shared: &Shared<'_>) {
        shared.stop.store(true, Ordering::SeqCst);
        for token in &self.tokens {
            let _ = cancel(config, token);
        }
        self.cancelled = true;
    }
}

fn cancel(config: &Config, token: &CancelToken) -> anyhow::Result<()> {
    token.cancel_query(db::tls_connector(&config.conn)?)?;
    Ok(())
}

/// One build session: takes tasks until there are none or the run stops.
fn worker(config: &Config, shared: &Shared<'_>, tx: Sender<Event>) {
    let mut session = match session::open(config, shared.settings) {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Event::NoSession(format!("{e:#}")));
            return;
        }
    };
    let pid = session.pid;
    let _ = tx.send(Event::Ready {
        pid,
        token: session.client.cancel_token(),
    });
    while let Some(task) = shared.next() {
        let _ = tx.send(Event::Started { id: task.id, pid });
        let result = run_task(&mut session, &task, shared, &tx);
        if result
            .error
            .as_ref()
            .is_some_and(|e| e.failure == Failure::Lock)
        {
            // Set here, not by the watcher, so this worker does not take another task first.
            shared.stop.store(true, Ordering::SeqCst);
        }
        let _ = tx.send(Event::Finished {
            id: task.id,
            pid,
            result,
        });
    }
}

fn run_task(
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
        loop {
            let e = match session.client.batch_execute(&step.sql) {
                Ok(()) => break,
                Err(e) => e,
            };
            let failure = classify(&e, shared.interrupted());
            let mut message = match failure {
                Failure::Cancelled => "cancelled by Ctrl-C (or a signal)".to_string(),
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
                match drop_leftover(&mut session.client, cleanup) {
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

fn classify(e: &postgres::Error, interrupted: bool) -> Failure {
    match e.code() {
        Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::T_R_DEADLOCK_DETECTED => {
            Failure::Lock
        }
        Some(c) if *c == SqlState::QUERY_CANCELED && interrupted => Failure::Cancelled,
        _ => Failure::Other,
    }
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
