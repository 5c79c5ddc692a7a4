// Section 7 of the peers bench: the fleet. Through pgbouncer in transaction
// mode, benchmark's throughput with 20 clients against pgbench -M extended
// (the unnamed statement, what works there) through the same pgbouncer; and
// on a streaming replica, benchmark's 1-client mean against the same run on
// the primary.

use crate::support::*;
use crate::{indexed_db, latency_row, o2o_json, throughput_row, Probe, Via};
use o2o_db::pg_sandbox::{Bouncer, Sandbox};

/// The queries measured here: the fastest, a middling and the heaviest of the suite.
const QUERIES: [&str; 3] = ["latest_orders", "store_date", "by_store"];

pub fn versus_peers(sandbox: &Sandbox, opts: &Options, table: &mut Rows) {
    let db = indexed_db(sandbox, "peers_fleet", o2o_db::seed_data::DEFAULT_ORDERS);
    let suite = o2o_db::sqlfiles::QuerySuite::builtin().unwrap_or_else(|e| fail(&format!("{e:#}")));
    let queries: Vec<_> = suite
        .queries
        .iter()
        .filter(|q| QUERIES.contains(&q.name.as_str()))
        .collect();

    let bouncer =
        Bouncer::start(sandbox, &db, "transaction", 20).unwrap_or_else(|e| fail(&format!("{e:#}")));
    let through = Via {
        url: bouncer.url(&db),
        port: Some(bouncer.port()),
        mode: "extended",
        label: " via pgbouncer (transaction)",
    };
    for q in &queries {
        let probe = Probe::of(q, &through);
        table.push(throughput_row(sandbox, &db, &through, &probe, opts));
    }
    drop(bouncer);

    let replica = sandbox
        .start_replica()
        .unwrap_or_else(|e| fail(&format!("{e:#}")));
    let on_replica = Via {
        url: replica.url(&db),
        port: Some(replica.port()),
        mode: "prepared",
        label: " on the replica",
    };
    let on_primary = Via::direct(sandbox, &db);
    for q in &queries {
        let probe = Probe::of(q, &on_primary);
        let runs = probe.runs.to_string();
        let mean = |via: &Via| -> f64 {
            let times: Vec<f64> = (0..opts.reps)
                .map(|_| {
                    o2o_json(via, &q.name, &["--iterations", &runs, "--warmup", "20"])["queries"][0]
                        ["mean_ms"]
                        .as_f64()
                        .unwrap_or(f64::NAN)
                })
                .collect();
            median_f(&times)
        };
        let (replica_ms, primary_ms) = (mean(&on_replica), mean(&on_primary));
        let ratio = replica_ms / primary_ms;
        table.push(Row {
            what: format!(
                "benchmark {} mean on the replica vs the primary (ms)",
                q.name
            ),
            o2o: format!("{replica_ms:.3}"),
            peer: format!("{primary_ms:.3} (the same run on the primary)"),
            ratio,
            target: "within 1.05".into(),
            met: (1.0 / 1.05..=1.05).contains(&ratio),
        });
    }
    // The replica against pgbench there too, so its figures are the server's.
    let probe = Probe::of(queries[0], &on_replica);
    table.push(latency_row(sandbox, &db, &on_replica, &probe, opts));
    let _ = sandbox.drop_database(&db);
}
