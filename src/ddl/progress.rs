//! What a run shows on stderr while it works: on a terminal, a bar per running
//! build fed from pg_stat_progress_create_index (phase, blocks or tuples done
//! of total); elsewhere (cron, CI) one plain line per start, phase change,
//! retry and finish, so a log shows where a long build spent its time.
//! stdout is left to the report.

use super::executor::{Observer, TaskResult};
use crate::report;
use indicatif::{MultiProgress, ProgressBar};
use std::collections::HashMap;
use std::time::Duration;

pub struct Progress {
    /// "build" or "drop", for the plain lines.
    verb: &'static str,
    total: usize,
    started: usize,
    bars: Option<(MultiProgress, HashMap<String, ProgressBar>)>,
    phases: HashMap<String, String>,
}

impl Progress {
    pub fn new(verb: &'static str, total: usize) -> Progress {
        Progress {
            verb,
            total,
            started: 0,
            bars: report::interactive().then(|| (MultiProgress::new(), HashMap::new())),
            phases: HashMap::new(),
        }
    }

    /// A line above the bars on a terminal, a plain line elsewhere.
    fn line(&self, text: &str) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(text);
            }
            None => eprintln!("o2o-db: {text}"),
        }
    }
}

impl Observer for Progress {
    fn started(&mut self, name: &str) {
        self.started += 1;
        let text = format!("[{}/{}] {} {name}", self.started, self.total, self.verb);
        match &mut self.bars {
            Some((multi, bars)) => {
                let bar = multi.add(report::progress_bar(0, name));
                bars.insert(name.to_string(), bar);
            }
            None => self.line(&text),
        }
    }

    fn progress(&mut self, name: &str, phase: &str, done: i64, total: i64) {
        if let Some((_, bars)) = &self.bars {
            if let Some(bar) = bars.get(name) {
                bar.set_message(format!("{name}: {phase}"));
                bar.set_length(total.max(0) as u64);
                bar.set_position(done.max(0) as u64);
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
        if let Some((multi, bars)) = &mut self.bars {
            if let Some(bar) = bars.remove(name) {
                bar.finish_and_clear();
                multi.remove(&bar);
            }
        }
        let took = format!("{:.2} s", result.duration.as_secs_f64());
        match &result.error {
            None => self.line(&format!("{name}: done in {took}")),
            Some(error) => self.line(&format!("{name}: failed after {took}: {error}")),
        }
    }
}
