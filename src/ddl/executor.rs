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

mod cleanup;
mod run_task;
mod task;

pub use cleanup::{drop_leftover, usable};
pub use task::{Cleanup, Failure, Observer, RunOutcome, Step, Task, TaskError, TaskResult};

use super::settings::SessionSettings;
use super::watch::Watch;
use crate::config::Config;
use crate::db;
use crate::stop::Stop;
use postgres::{CancelToken, Client};
use run_task::{open_build_session, run_task};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often the watcher polls progress and blockers.
const TICK: Duration = Duration::from_millis(250);

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

/// The tasks not started yet, and the tables tasks are running on.
#[derive(Default)]
struct Queue {
    tasks: VecDeque<Task>,
    busy: HashSet<String>,
}

/// State the workers share.
pub(super) struct Shared<'a> {
    queue: Mutex<Queue>,
    /// Signalled when a task ends and its table is free again.
    freed: Condvar,
    /// No new task may start (Ctrl-C or a lock failure).
    pub(super) stop: AtomicBool,
    run_stop: &'a Stop,
    settings: &'a SessionSettings,
    /// Sessions whose statement the watcher cancelled because it waited for
    /// its table lock longer than the lock timeout.
    pub(super) lock_timed_out: Mutex<HashSet<i32>>,
}

impl Shared<'_> {
    /// The first waiting task whose table no running task is on; waits while
    /// every waiting task's table is busy.
    fn next(&self) -> Option<Task> {
        let mut queue = self.queue.lock().ok()?;
        loop {
            if self.stop.load(Ordering::SeqCst) || self.interrupted() || queue.tasks.is_empty() {
                return None;
            }
            let free = queue
                .tasks
                .iter()
                .position(|t| t.table.as_ref().map_or(true, |k| !queue.busy.contains(k)));
            if let Some(i) = free {
                let task = queue.tasks.remove(i)?;
                if let Some(table) = &task.table {
                    queue.busy.insert(table.clone());
                }
                return Some(task);
            }
            queue = self.freed.wait_timeout(queue, TICK).ok()?.0;
        }
    }

    /// `task` has ended: its table is free for the next.
    fn done(&self, task: &Task) {
        if let (Some(table), Ok(mut queue)) = (&task.table, self.queue.lock()) {
            queue.busy.remove(table);
            self.freed.notify_all();
        }
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
        let mut watch = Watch::measuring(&tasks);
        let workers = self.jobs.clamp(1, tasks.len());
        let shared = Shared {
            queue: Mutex::new(Queue {
                tasks: tasks.into(),
                busy: HashSet::new(),
            }),
            freed: Condvar::new(),
            stop: AtomicBool::new(false),
            run_stop: self.stop,
            settings: self.settings,
            lock_timed_out: Mutex::new(HashSet::new()),
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
            outcome.not_started = queue.tasks.iter().map(|t| t.id).collect();
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
        shared.done(&task);
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
