//! What a run shows on stderr while it works. On a terminal: one overall bar
//! (tasks done of total, elapsed, ETA) above a bar per running build fed from
//! pg_stat_progress_create_index; a finished build collapses to one line
//! (name, time, size). Elsewhere (cron, CI) one plain line per start, phase
//! change, retry and finish, so a log shows where a long build spent its time.
//! stdout is left to the report.

use super::executor::{Observer, TaskResult};
use crate::report;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::time::Duration;

pub struct Progress {
    /// "building" or "dropping", for the plain lines and the overall bar.
    verb: &'static str,
    total: usize,
    started: usize,
    screen: Option<Screen>,
    phases: HashMap<String, String>,
}

/// The bars, when there is a terminal to draw them on.
struct Screen {
    multi: MultiProgress,
    overall: ProgressBar,
    running: HashMap<String, ProgressBar>,
}

impl Progress {
    /// Bars on stderr when it is a terminal, plain lines otherwise.
    pub fn new(verb: &'static str, total: usize) -> Progress {
        let progress = Progress::drawn_to(
            verb,
            total,
            report::interactive().then(ProgressDrawTarget::stderr),
        );
        if let Some(screen) = &progress.screen {
            // Elapsed time and ETA move while a long build reports nothing new.
            screen.overall.enable_steady_tick(Duration::from_secs(1));
        }
        progress
    }

    /// Bars drawn to `target`, or plain lines on stderr without one.
    pub(crate) fn drawn_to(
        verb: &'static str,
        total: usize,
        target: Option<ProgressDrawTarget>,
    ) -> Progress {
        let screen = target.map(|target| {
            let multi = MultiProgress::with_draw_target(target);
            let overall = multi.add(hidden_bar(total as u64));
            overall.set_style(style(
                "{prefix} [{elapsed_precise}] [{bar:30.cyan/blue}] {pos}/{len} done, ETA {eta}",
            ));
            overall.set_prefix(verb);
            Screen {
                multi,
                overall,
                running: HashMap::new(),
            }
        });
        Progress {
            verb,
            total,
            started: 0,
            screen,
            phases: HashMap::new(),
        }
    }

    /// A line above the bars on a terminal, a plain line elsewhere.
    fn line(&self, text: &str) {
        match &self.screen {
            Some(screen) => {
                let _ = screen.multi.println(text);
            }
            None => eprintln!("o2o-db: {text}"),
        }
    }
}

/// A bar that draws nothing until a MultiProgress adopts it: a bar made with
/// its own stderr target draws itself once before it is added, and that first
/// frame (`[====] 0/0 (100%)`) is then never cleared.
fn hidden_bar(len: u64) -> ProgressBar {
    ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden())
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A running build: its phase with blocks or tuples done of total, or only the
/// phase while the server counts nothing (waiting for old transactions).
fn phase_style(counted: bool) -> ProgressStyle {
    if counted {
        style("  {msg} [{bar:30.green/blue}] {percent}%")
    } else {
        style("  {msg}")
    }
}

impl Observer for Progress {
    fn started(&mut self, name: &str) {
        self.started += 1;
        match &mut self.screen {
            Some(screen) => {
                let bar = screen.multi.add(hidden_bar(0));
                bar.set_style(phase_style(false));
                bar.set_message(format!("{name}: starting"));
                screen.running.insert(name.to_string(), bar);
            }
            None => self.line(&format!(
                "[{}/{}] {} {name}",
                self.started, self.total, self.verb
            )),
        }
    }

    fn progress(&mut self, name: &str, phase: &str, done: i64, total: i64) {
        if let Some(screen) = &self.screen {
            if let Some(bar) = screen.running.get(name) {
                let counted = total > 0;
                if bar.length().is_some_and(|len| len > 0) != counted {
                    bar.set_style(phase_style(counted));
                }
                bar.set_length(total.max(0) as u64);
                bar.set_position(done.max(0) as u64);
                bar.set_message(format!("{name}: {phase}"));
            }
            return;
        }
        if self.phases.get(name).map(String::as_str) != Some(phase) {
            self.phases.insert(name.to_string(), phase.to_string());
            self.line(&format!("{name}: {phase}"));
        }
    }

    fn retrying(&mut self, name: &str, attempt: u32, of: u32, pause: Duration, why: &str) {
        self.line(&format!(
            "{name}: {why}; retry {attempt} of {of} in {}",
            humantime::format_duration(pause)
        ));
    }

    fn resumed(&mut self, name: &str, why: &str) {
        self.line(&format!("{name}: {why}"));
    }

    fn finished(&mut self, name: &str, result: &TaskResult) {
        if let Some(screen) = &mut self.screen {
            if let Some(bar) = screen.running.remove(name) {
                bar.finish_and_clear();
                screen.multi.remove(&bar);
            }
            screen.overall.inc(1);
        }
        self.line(&finished_line(name, result));
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.overall.finish_and_clear();
    }
}

/// "NAME: done in 1.20 s, 2.1 MB" or "NAME: failed after 0.40 s: why".
fn finished_line(name: &str, result: &TaskResult) -> String {
    let took = format!("{:.2} s", result.duration.as_secs_f64());
    match (&result.error, result.size_bytes) {
        (None, Some(size)) => format!("{name}: done in {took}, {}", report::size_pretty(size)),
        (None, None) => format!("{name}: done in {took}"),
        (Some(error), _) => format!("{name}: failed after {took}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ddl::executor::{Failure, TaskError};
    use indicatif::InMemoryTerm;

    fn done(millis: u64, size_bytes: Option<i64>) -> TaskResult {
        TaskResult {
            duration: Duration::from_millis(millis),
            error: None,
            size_bytes,
        }
    }

    /// The screen as a terminal would show it, trailing blanks trimmed.
    fn screen(term: &InMemoryTerm) -> Vec<String> {
        let text = term.contents();
        let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    }

    #[test]
    fn a_terminal_shows_one_overall_bar_and_a_line_per_finished_build() {
        let term = InMemoryTerm::new(20, 120);
        let mut progress = Progress::drawn_to(
            "building",
            3,
            Some(ProgressDrawTarget::term_like(Box::new(term.clone()))),
        );
        progress.started("idx_a on orders_p1");
        progress.started("idx_a on orders_p2");
        progress.progress(
            "idx_a on orders_p1",
            "building index: scanning table",
            50,
            200,
        );
        progress.progress("idx_a on orders_p2", "waiting for old snapshots", 0, 0);
        let running = screen(&term);
        assert_eq!(running.len(), 3, "{running:#?}");
        assert!(running[0].starts_with("building ["), "{running:#?}");
        assert!(running[0].contains("0/3 done"), "{running:#?}");
        assert!(
            running[1].contains("idx_a on orders_p1: building index: scanning table")
                && running[1].contains("25%"),
            "{running:#?}"
        );
        assert_eq!(
            running[2],
            "  idx_a on orders_p2: waiting for old snapshots"
        );

        progress.finished("idx_a on orders_p1", &done(1200, Some(2 * 1024 * 1024)));
        let after = screen(&term);
        assert_eq!(after[0], "idx_a on orders_p1: done in 1.20 s, 2.0 MB");
        assert!(after[1].contains("1/3 done"), "{after:#?}");
        assert_eq!(after[2], "  idx_a on orders_p2: waiting for old snapshots");
        assert_eq!(after.len(), 3, "the finished bar is gone: {after:#?}");
        assert!(
            !after.iter().any(|l| l.contains("0/0")),
            "no empty bar is left behind: {after:#?}"
        );

        progress.finished(
            "idx_a on orders_p2",
            &TaskResult {
                duration: Duration::from_millis(400),
                error: Some(TaskError {
                    failure: Failure::Lock,
                    message: "canceling statement due to lock timeout".into(),
                    blockers: None,
                    aftermath: None,
                }),
                size_bytes: None,
            },
        );
        progress.started("idx_b");
        progress.finished("idx_b", &done(30, None));
        drop(progress);
        let last = screen(&term);
        assert_eq!(
            last,
            [
                "idx_a on orders_p1: done in 1.20 s, 2.0 MB",
                "idx_a on orders_p2: failed after 0.40 s: canceling statement due to lock timeout",
                "idx_b: done in 0.03 s",
            ],
            "the overall bar is cleared at the end, the lines stay"
        );
    }
}
