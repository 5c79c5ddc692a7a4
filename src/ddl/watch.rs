//! The watching side of a run: from the calling thread, on the control
//! session, it follows each running statement (pg_stat_progress_create_index
//! and pg_stat_activity), names who blocks it, bounds a concurrent build's
//! wait for its table lock by the lock timeout (the waits for older
//! transactions that follow are bounded by the statement timeout only: they
//! do not block writers), and turns a stop into a cancel on the server.

use super::executor::{cancel, Event, Executor, Observer, RunOutcome, Shared};
use crate::catalog::activity::{self, Backend};
use crate::config::Config;
use postgres::{CancelToken, Client};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The watching thread's state.
#[derive(Default)]
pub(super) struct Watch {
    outcome: RunOutcome,
    /// Each build session's cancel token, by pid.
    tokens: HashMap<i32, CancelToken>,
    /// pid -> task id, for the tasks running now.
    running: HashMap<i32, usize>,
    /// pid -> the sessions last seen blocking it during its current statement.
    blockers: HashMap<i32, Vec<Backend>>,
    /// pid -> since when it has been waiting for a lock on a relation.
    lock_waits: HashMap<i32, Instant>,
    cancelled: bool,
    /// task id -> the index it creates, whose size its finished line shows.
    creates: HashMap<usize, String>,
}

impl Watch {
    pub(super) fn measuring(tasks: &[super::executor::Task]) -> Watch {
        Watch {
            creates: tasks
                .iter()
                .filter_map(|t| Some((t.id, t.built_index()?.to_string())))
                .collect(),
            ..Watch::default()
        }
    }

    pub(super) fn into_outcome(self) -> RunOutcome {
        self.outcome
    }

    /// Whether every running statement has already been cancelled.
    pub(super) fn cancelled(&self) -> bool {
        self.cancelled
    }

    pub(super) fn on_event(
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
                self.tokens.insert(pid, token);
                self.blockers.remove(&pid);
            }
            Event::Resumed {
                id,
                old,
                pid,
                token,
                why,
            } => {
                self.running.remove(&old);
                self.tokens.remove(&old);
                self.blockers.remove(&old);
                self.lock_waits.remove(&old);
                self.running.insert(pid, id);
                self.tokens.insert(pid, token);
                observer.resumed(
                    name(&id),
                    &format!("{why}; reconnected, reading the catalog again and resuming"),
                );
            }
            Event::NoSession(error) => {
                self.outcome.session_error.get_or_insert(error);
            }
            Event::Started { id, pid } => {
                self.running.insert(pid, id);
                self.blockers.remove(&pid);
                self.lock_waits.remove(&pid);
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
                    if error.failure.stops_the_run() {
                        error.blockers = self.blockers_of(pid, control, exec);
                        self.outcome
                            .stopped_by
                            .get_or_insert_with(|| name(&id).to_string());
                    }
                }
                self.lock_waits.remove(&pid);
                self.blockers.remove(&pid);
                if result.error.is_none() {
                    result.size_bytes = self.creates.get(&id).and_then(|i| index_size(control, i));
                }
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

    /// Polls progress, lock waits and blockers of the running statements; a
    /// failed poll is skipped.
    pub(super) fn poll(
        &mut self,
        control: &mut Client,
        names: &HashMap<usize, String>,
        observer: &mut dyn Observer,
        exec: &Executor<'_>,
        shared: &Shared<'_>,
    ) {
        let pids: Vec<i32> = self.running.keys().copied().collect();
        if pids.is_empty() {
            return;
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
        let rows = control.query(
            "SELECT a.pid, coalesce(a.wait_event_type = 'Lock' AND a.wait_event = 'relation', false), \
                    p.phase, p.blocks_done, p.blocks_total, p.tuples_done, p.tuples_total, \
                    p.lockers_done, p.lockers_total \
             FROM pg_stat_activity a LEFT JOIN pg_stat_progress_create_index p ON p.pid = a.pid \
             WHERE a.pid = ANY($1::int4[])",
            &[&pids],
        );
        for row in rows.iter().flatten() {
            let pid: i32 = row.get(0);
            let Some(name) = self.running.get(&pid).and_then(|id| names.get(id)) else {
                continue;
            };
            self.bound_table_lock_wait(pid, row.get(1), exec, shared);
            let Some(phase) = row.get::<_, Option<String>>(2) else {
                continue;
            };
            let counters: [(Option<i64>, Option<i64>); 3] = [
                (row.get(3), row.get(4)),
                (row.get(5), row.get(6)),
                (row.get(7), row.get(8)),
            ];
            let (done, total) = counters
                .into_iter()
                .map(|(d, t)| (d.unwrap_or(0), t.unwrap_or(0)))
                .find(|(_, total)| *total > 0)
                .unwrap_or((0, 0));
            // While it waits, the progress line says for whom.
            let shown = match self.blockers.get(&pid) {
                Some(who) if phase.starts_with("waiting") && !who.is_empty() => {
                    format!("{phase}: waiting for {}", activity::describe(who))
                }
                _ => phase,
            };
            observer.progress(name, &shown, done, total);
        }
    }

    /// Cancels `pid`'s statement once it has waited for a relation lock longer
    /// than the lock timeout (build sessions run with the server's lock
    /// timeout off; see executor::worker).
    fn bound_table_lock_wait(
        &mut self,
        pid: i32,
        waiting: bool,
        exec: &Executor<'_>,
        shared: &Shared<'_>,
    ) {
        if !exec.settings.watch_lock_waits || !waiting {
            self.lock_waits.remove(&pid);
            return;
        }
        let since = *self.lock_waits.entry(pid).or_insert_with(Instant::now);
        if since.elapsed() < exec.settings.lock_timeout {
            return;
        }
        if let (Ok(mut timed_out), Some(token)) =
            (shared.lock_timed_out.lock(), self.tokens.get(&pid))
        {
            if timed_out.insert(pid) {
                let _ = cancel(exec.config, token);
            }
        }
    }

    /// Ctrl-C: no new tasks, and every running statement cancelled on the server.
    pub(super) fn cancel_all(&mut self, config: &Config, shared: &Shared<'_>) {
        shared.stop.store(true, Ordering::SeqCst);
        for token in self.tokens.values() {
            let _ = cancel(config, token);
        }
        self.cancelled = true;
    }
}

/// The size of an index with storage (a partitioned parent has none), if it
/// is there under that name.
fn index_size(control: &mut Client, qualified: &str) -> Option<i64> {
    control
        .query_opt(
            "SELECT pg_relation_size(c.oid) FROM pg_class c \
             WHERE c.oid = to_regclass($1) AND c.relkind = 'i'",
            &[&qualified],
        )
        .ok()
        .flatten()
        .map(|row| row.get(0))
}
