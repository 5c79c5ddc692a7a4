//! verify for Prometheus and Nagios: one gauge per check (0 pass, 1 warn,
//! 2 fail) with its duration, and per managed index whether it exists, is
//! valid and matches its file, its size and scans, with the table's last
//! ANALYZE age, and the replication check's lag and slot figures: what
//! postgres_exporter has no collector for, or reads only with its own setup.

use super::report::{Role, Slot, StandbyLink, Status, VerifyReport};
use crate::report::nagios::{NagiosCheck, NagiosState};
use crate::report::prometheus::{flag, Exposition, Kind, Labels};
use anyhow::Result;
use std::io::Write;

fn status_value(s: Status) -> f64 {
    match s {
        Status::Pass => 0.0,
        Status::Warn => 1.0,
        Status::Fail => 2.0,
    }
}

pub fn prometheus(r: &VerifyReport, w: &mut dyn Write) -> Result<()> {
    let base: Labels = vec![("database", r.database.clone())];
    let mut e = Exposition::new();
    let per_check = |f: &dyn Fn(&super::report::Check) -> f64| -> Vec<(Labels, f64)> {
        r.checks
            .iter()
            .map(|c| {
                let mut labels = base.clone();
                labels.push(("check", c.name.clone()));
                (labels, f(c))
            })
            .collect()
    };
    e.family(
        "o2o_db_verify_check_status",
        Kind::Gauge,
        "Each verify check's result: 0 pass, 1 warn, 2 fail.",
        per_check(&|c| status_value(c.status)),
    );
    e.family(
        "o2o_db_verify_check_duration_seconds",
        Kind::Gauge,
        "How long each verify check took.",
        per_check(&|c| c.duration_seconds),
    );
    e.family(
        "o2o_db_verify_duration_seconds",
        Kind::Gauge,
        "How long the whole verify run took.",
        vec![(base.clone(), r.elapsed.as_secs_f64())],
    );
    let per_index =
        |f: &dyn Fn(&super::report::IndexFigures) -> Option<f64>| -> Vec<(Labels, f64)> {
            r.indexes
                .iter()
                .filter_map(|i| {
                    let mut labels = base.clone();
                    labels.push(("table", i.table.clone()));
                    labels.push(("index", i.name.clone()));
                    f(i).map(|v| (labels, v))
                })
                .collect()
        };
    e.family(
        "o2o_db_index_exists",
        Kind::Gauge,
        "1 when the managed index exists on the table.",
        per_index(&|i| Some(flag(i.exists))),
    );
    e.family(
        "o2o_db_index_valid",
        Kind::Gauge,
        "1 when the managed index is valid and ready (0: missing or INVALID).",
        per_index(&|i| Some(flag(i.valid))),
    );
    e.family(
        "o2o_db_index_matches_definition",
        Kind::Gauge,
        "1 when the managed index is defined as its file says.",
        per_index(&|i| Some(flag(i.matches))),
    );
    e.family(
        "o2o_db_index_size_bytes",
        Kind::Gauge,
        "The managed index's size on disk.",
        per_index(&|i| i.exists.then_some(i.size_bytes as f64)),
    );
    e.family(
        "o2o_db_index_scans_total",
        Kind::Counter,
        "Index scans since the statistics were reset (pg_stat_user_indexes.idx_scan).",
        per_index(&|i| i.scans.map(|n| n as f64)),
    );
    if let (Some(table), Some(age)) = (&r.table, r.analyze_age_seconds) {
        let mut labels = base.clone();
        labels.push(("table", table.clone()));
        e.family(
            "o2o_db_table_last_analyze_age_seconds",
            Kind::Gauge,
            "Seconds since the managed table was last analyzed (manual or auto).",
            vec![(labels, age)],
        );
    }
    replication(r, &base, &mut e);
    w.write_all(e.into_string().as_bytes())?;
    Ok(())
}

/// The replication check's figures: whether this node is a standby, each
/// standby's lag and each slot's WAL (on a primary), its own replay (on a standby).
fn replication(r: &VerifyReport, base: &Labels, e: &mut Exposition) {
    if let Some(role) = r.role {
        e.family(
            "o2o_db_server_in_recovery",
            Kind::Gauge,
            "1 when the server verify reached is a hot standby (pg_is_in_recovery).",
            vec![(base.clone(), flag(role == Role::Standby))],
        );
    }
    let Some(f) = &r.replication else {
        return;
    };
    let per_standby = |value: &dyn Fn(&StandbyLink) -> Option<f64>| -> Vec<(Labels, f64)> {
        f.standbys
            .iter()
            .filter_map(|s| {
                let mut labels = base.clone();
                labels.push(("application_name", s.application_name.clone()));
                labels.push(("client_addr", s.client_addr.clone().unwrap_or_default()));
                value(s).map(|v| (labels, v))
            })
            .collect()
    };
    e.family(
        "o2o_db_replication_replay_lag_bytes",
        Kind::Gauge,
        "WAL a standby has not replayed yet (pg_stat_replication, this node's position minus replay_lsn).",
        per_standby(&|s| s.replay_lag_bytes.map(|b| b.max(0) as f64)),
    );
    e.family(
        "o2o_db_replication_replay_lag_seconds",
        Kind::Gauge,
        "pg_stat_replication.replay_lag; 0 once the standby has caught up (the server shows null then).",
        per_standby(&|s| {
            s.state
                .as_ref()
                .map(|_| s.replay_lag_seconds.unwrap_or(0.0))
        }),
    );
    let per_slot = |value: &dyn Fn(&Slot) -> Option<f64>| -> Vec<(Labels, f64)> {
        f.slots
            .iter()
            .filter_map(|s| {
                let mut labels = base.clone();
                labels.push(("slot", s.name.clone()));
                value(s).map(|v| (labels, v))
            })
            .collect()
    };
    e.family(
        "o2o_db_replication_slot_active",
        Kind::Gauge,
        "1 when something streams from the replication slot.",
        per_slot(&|s| Some(flag(s.active))),
    );
    e.family(
        "o2o_db_replication_slot_retained_bytes",
        Kind::Gauge,
        "WAL the replication slot keeps on this node.",
        per_slot(&|s| s.retained_bytes.map(|b| b.max(0) as f64)),
    );
    let Some(replay) = &f.replay else {
        return;
    };
    let own = |v: f64| vec![(base.clone(), v)];
    e.family(
        "o2o_db_standby_replay_paused",
        Kind::Gauge,
        "1 when replay on this standby is paused or a pause is requested.",
        own(flag(replay.pause_state != "not paused")),
    );
    e.family(
        "o2o_db_standby_wal_receiver_streaming",
        Kind::Gauge,
        "1 when this standby's WAL receiver is streaming from its primary.",
        own(flag(replay.receiver_status.as_deref() == Some("streaming"))),
    );
    if let Some(bytes) = replay.receive_replay_bytes {
        e.family(
            "o2o_db_standby_receive_replay_lag_bytes",
            Kind::Gauge,
            "WAL this standby has received and not replayed yet.",
            own(bytes.max(0) as f64),
        );
    }
    if let Some(lag) = replay.lag_seconds {
        e.family(
            "o2o_db_standby_replay_lag_seconds",
            Kind::Gauge,
            "now() - the last replayed commit while received WAL waits; 0 when replay has caught up.",
            own(lag),
        );
    }
}

pub fn nagios(r: &VerifyReport) -> NagiosCheck {
    let s = &r.summary;
    let state = if s.failed > 0 || (r.strict && s.warned > 0) {
        NagiosState::Critical
    } else if s.warned > 0 {
        NagiosState::Warning
    } else {
        NagiosState::Ok
    };
    let mut summary = format!(
        "{} passed, {} warned, {} failed",
        s.passed, s.warned, s.failed
    );
    let named: Vec<String> = r
        .checks
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| format!("{} {}", c.name, c.status.label()))
        .collect();
    if !named.is_empty() {
        summary.push_str(&format!(" ({})", named.join(", ")));
    }
    NagiosCheck {
        service: "VERIFY",
        state,
        summary,
        perfdata: vec![
            format!("checks={}", r.checks.len()),
            format!("passed={}", s.passed),
            format!("warned={}", s.warned),
            format!("failed={};;1", s.failed),
            format!("time={:.3}s", r.elapsed.as_secs_f64()),
        ],
    }
}
