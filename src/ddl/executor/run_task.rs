//! One task on its build session: each step in turn, a lock timeout retried
//! with growing pauses, a failed build's leftover cleaned up, and a session
//! lost to a server restart opened again and the work resumed.

use super::cleanup::{already_built, bounded_cleanup};
use super::task::{Failure, Step, Task, TaskError, TaskResult};
use super::{Event, Shared};
use crate::config::Config;
use crate::db::{describe_pg_error, PgContext};
use crate::ddl::session::{self, Session};
use crate::ddl::settings::SessionSettings;
use postgres::error::SqlState;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::time::Instant;

/// A build session. A concurrent build's waits for older transactions do not
/// block writers: the statement timeout bounds them, and the watcher bounds
/// the wait for the table lock itself (see watch.rs), so the server's own
/// lock timeout, which would also end those waits, is off on build sessions.
pub(super) fn open_build_session(
    config: &Config,
    settings: &SessionSettings,
) -> anyhow::Result<Session> {
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

pub(super) fn run_task(
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
        size_bytes: None,
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
            let e = match session
                .client
                .batch_execute(&statement_text(step, shared.settings))
            {
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
        size_bytes: None,
    }
}

/// What is sent for `step`: a short-lock step on a session whose own lock
/// timeout is off runs with it set, in one implicit transaction, so a failure
/// rolls the setting back with the statement.
fn statement_text(step: &Step, settings: &SessionSettings) -> String {
    if step.short_lock && settings.watch_lock_waits {
        format!(
            "SET lock_timeout = '{}'; {}; SET lock_timeout = 0",
            session::pg_ms(settings.lock_timeout),
            step.sql
        )
    } else {
        step.sql.clone()
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
