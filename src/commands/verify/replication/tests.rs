//! The replication check's judgement, from figures built by hand.
use super::*;

const LIMITS: Limits = Limits {
    lag: Duration::from_secs(30),
    lag_bytes: 64 * MB,
    slot_bytes: 1024 * MB,
};

fn link(state: Option<&str>, replay_bytes: i64, replay_secs: Option<f64>) -> StandbyLink {
    StandbyLink {
        application_name: "replica1".into(),
        client_addr: Some("10.0.0.7".into()),
        state: state.map(str::to_string),
        sync_state: Some("async".into()),
        write_lag_bytes: Some(0),
        flush_lag_bytes: Some(0),
        replay_lag_bytes: Some(replay_bytes),
        write_lag_seconds: None,
        flush_lag_seconds: None,
        replay_lag_seconds: replay_secs,
    }
}

fn replay() -> Replay {
    Replay {
        receive_lsn: Some("0/5000100".into()),
        replay_lsn: Some("0/5000100".into()),
        receive_replay_bytes: Some(0),
        lag_seconds: Some(0.0),
        pause_state: "not paused".into(),
        receiver_status: Some("streaming".into()),
        receiver_running: true,
        primary: Some("10.0.0.5:5432".into()),
        primary_conninfo_set: Some(true),
        hot_standby_feedback: "off".into(),
        max_standby_streaming_delay: "30s".into(),
    }
}

fn on_standby(r: Replay) -> Verdict {
    judge(
        &ReplicationFigures {
            replay: Some(r),
            ..ReplicationFigures::default()
        },
        &LIMITS,
    )
}

fn on_primary(standbys: Vec<StandbyLink>, slots: Vec<Slot>) -> Verdict {
    judge(
        &ReplicationFigures {
            standbys,
            slots,
            replay: None,
        },
        &LIMITS,
    )
}

#[test]
fn a_primary_without_standbys_passes() {
    let v = on_primary(vec![], vec![]);
    assert_eq!(v.status, Status::Pass);
    assert_eq!(
        v.detail,
        "no standbys (pg_stat_replication is empty) and no replication slots"
    );
}

#[test]
fn each_standby_is_listed_and_lag_over_a_limit_warns() {
    let backup = on_primary(vec![link(Some("backup"), 0, None)], vec![]);
    assert_eq!(backup.status, Status::Pass, "{}", backup.detail);
    assert!(backup.detail.contains("taking a base backup"));
    let v = on_primary(vec![link(Some("streaming"), 4096, Some(0.2))], vec![]);
    assert_eq!(v.status, Status::Pass, "{}", v.detail);
    assert!(
        v.detail
            .contains("standby replica1 (10.0.0.7): streaming, async: behind by 0 bytes written, 0 bytes flushed, 4 kB replayed; lag write caught up, flush caught up, replay 0.20 s"),
        "{}",
        v.detail
    );
    for slow in [
        link(Some("streaming"), 65 * MB, Some(1.0)),
        link(Some("streaming"), 0, Some(31.0)),
        link(Some("catchup"), 65 * MB, None),
        link(Some("stopping"), 0, None),
        link(None, 0, None),
    ] {
        let v = on_primary(vec![slow.clone()], vec![]);
        assert_eq!(v.status, Status::Warn, "{slow:?}: {}", v.detail);
    }
}

#[test]
fn an_inactive_or_overfull_slot_warns_with_its_drop() {
    let slot = |active, retained_mb: i64| Slot {
        name: "gone_replica".into(),
        kind: "physical".into(),
        active,
        wal_status: Some("reserved".into()),
        retained_bytes: Some(retained_mb * MB),
    };
    let fine = on_primary(vec![], vec![slot(true, 10)]);
    assert_eq!(fine.status, Status::Pass, "{}", fine.detail);
    let inactive = on_primary(vec![], vec![slot(false, 10)]);
    assert_eq!(inactive.status, Status::Warn);
    assert!(
        inactive.detail.contains(
            "slot gone_replica (physical, inactive, wal_status reserved): keeps 10.0 MB of WAL"
        ),
        "{}",
        inactive.detail
    );
    assert!(inactive
        .fix
        .unwrap()
        .starts_with("SELECT pg_drop_replication_slot('gone_replica');"));
    let full = on_primary(vec![], vec![slot(true, 2048)]);
    assert_eq!(full.status, Status::Warn);
    assert!(
        full.detail.contains("over the limit of 1.0 GB"),
        "{}",
        full.detail
    );
}

#[test]
fn a_caught_up_standby_passes_whatever_the_last_commit_age() {
    let v = on_standby(replay());
    assert_eq!(v.status, Status::Pass, "{}", v.detail);
    assert!(v
        .detail
        .contains("received up to 0/5000100, replayed up to 0/5000100: replay has caught up"));
    assert!(v
        .detail
        .contains("WAL receiver streaming from 10.0.0.5:5432"));
    assert!(v
        .detail
        .contains("note: hot_standby_feedback = off, max_standby_streaming_delay = 30s"));
}

#[test]
fn replay_behind_warns_over_either_limit() {
    let behind = |bytes, secs| Replay {
        receive_replay_bytes: Some(bytes),
        lag_seconds: Some(secs),
        ..replay()
    };
    assert_eq!(on_standby(behind(1024, 2.0)).status, Status::Pass);
    assert_eq!(on_standby(behind(1024, 45.0)).status, Status::Warn);
    let v = on_standby(behind(100 * MB, 1.0));
    assert_eq!(v.status, Status::Warn);
    assert!(v.detail.contains("100.0 MB received and not yet replayed, 1.00 s behind in time (limits 30s and 64.0 MB)"), "{}", v.detail);
}

#[test]
fn paused_replay_fails_with_the_resume() {
    for state in ["paused", "pause requested"] {
        let v = on_standby(Replay {
            pause_state: state.into(),
            ..replay()
        });
        assert_eq!(v.status, Status::Fail);
        assert!(
            v.detail.contains(&format!("replay is {state}")),
            "{}",
            v.detail
        );
        assert_eq!(
            v.fix.as_deref(),
            Some("SELECT pg_wal_replay_resume();  -- on this standby")
        );
    }
}

#[test]
fn a_standby_not_streaming_fails_naming_its_primary() {
    let stopped = on_standby(Replay {
        receiver_status: None,
        receiver_running: false,
        ..replay()
    });
    assert_eq!(stopped.status, Status::Fail);
    assert!(
        stopped
            .detail
            .contains("no WAL receiver: not streaming from 10.0.0.5:5432"),
        "{}",
        stopped.detail
    );
    assert!(stopped.fix.unwrap().contains("10.0.0.5:5432 is up"));
    let waiting = on_standby(Replay {
        receiver_status: Some("waiting".into()),
        ..replay()
    });
    assert_eq!(waiting.status, Status::Fail);
    assert!(waiting
        .detail
        .contains("WAL receiver waiting, not streaming"));
    let archive_only = on_standby(Replay {
        receiver_status: None,
        receiver_running: false,
        primary: None,
        primary_conninfo_set: Some(false),
        ..replay()
    });
    assert_eq!(archive_only.status, Status::Warn);
    let hidden = on_standby(Replay {
        receiver_status: None,
        ..replay()
    });
    assert_eq!(hidden.status, Status::Warn);
    assert!(hidden.detail.contains("grant pg_read_all_stats"));
}

#[test]
fn the_conflict_note_follows_the_settings() {
    let note = |feedback: &str, delay: &str| {
        conflicts_note(&Replay {
            hot_standby_feedback: feedback.into(),
            max_standby_streaming_delay: delay.into(),
            ..replay()
        })
    };
    assert!(note("off", "30s")
        .contains("is cancelled after 30s (hot_standby_feedback = on prevents that"));
    assert!(note("on", "30s").contains("the primary keeps the rows"));
    assert!(note("off", "-1").contains("lag grows"));
}
