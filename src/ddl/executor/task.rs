//! The executor's vocabulary: a task and its steps (with what to undo when a
//! step fails), how a task can fail, what became of it, and the observer that
//! follows a run.

use std::collections::HashMap;
use std::time::Duration;

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
    /// A statement that holds its locks only for a moment once it has them
    /// (ON ONLY, ATTACH PARTITION, a partitioned index's DROP, a rename) but
    /// queues writers or readers while it waits: the server's lock timeout
    /// bounds that wait even on a concurrent run's build session.
    pub short_lock: bool,
    /// The index (qualified, quoted) this statement creates, measured when its
    /// task is done.
    pub creates: Option<String>,
}

impl Step {
    /// A statement with nothing to undo and no lock bound of its own.
    pub fn plain(sql: String) -> Step {
        Step {
            sql,
            cleanup: None,
            short_lock: false,
            creates: None,
        }
    }

    /// A statement bounded by the lock timeout (see `short_lock`).
    pub fn short_lock(sql: String) -> Step {
        Step {
            short_lock: true,
            ..Step::plain(sql)
        }
    }
}

/// The statements for one index, run in order on one session.
#[derive(Debug, Clone)]
pub struct Task {
    /// The caller's index of this task (its row in the report).
    pub id: usize,
    pub name: String,
    pub steps: Vec<Step>,
    /// The one table (a partition) its builds lock, when no other task on
    /// that table may run beside it: two concurrent builds on one table wait
    /// for each other (SHARE UPDATE EXCLUSIVE conflicts with itself).
    pub table: Option<String>,
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
    /// The size of the index the task built, read by the watcher once it
    /// succeeded (none for drops, attaches and partitioned parents).
    pub size_bytes: Option<i64>,
}

impl Task {
    /// The index this task creates, if it creates one.
    pub fn built_index(&self) -> Option<&str> {
        self.steps.iter().rev().find_map(|s| s.creates.as_deref())
    }
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
