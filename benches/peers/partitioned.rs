// Section 6 of the peers bench: a range-partitioned orders table (a partition
// per month of the data and a DEFAULT one, from `seed --partition-by month`).
// create-indexes against psql running PostgreSQL's documented procedure one
// statement at a time (ON ONLY the parent, CONCURRENTLY on each partition,
// ATTACH each), --jobs 2 against the better of one and two psql sessions, and
// verify on the partitioned table against verify on an unpartitioned one of
// the same size.

use crate::support::*;
use crate::{drop_managed, indexed_db, rotate};
use o2o_db::ident::quote_ident;
use o2o_db::pg_sandbox::Sandbox;
use o2o_db::sqlfiles::names::partition_index_name;
use o2o_db::sqlfiles::IndexSet;
use std::time::Duration;

pub fn versus_psql(sandbox: &Sandbox, opts: &Options, table: &mut Rows) {
    let mut sizes = vec![opts.orders];
    if opts.with_10m {
        sizes.push(10_000_000);
    }
    for n in sizes {
        builds(sandbox, opts, n, table);
    }
}

fn builds(sandbox: &Sandbox, opts: &Options, n: u64, table: &mut Rows) {
    let db = fresh_db(sandbox, &format!("peers_part_{n}"));
    run_o2o(
        sandbox,
        &db,
        &[
            "seed",
            "--create-schema",
            "--partition-by",
            "month",
            "--orders",
            &n.to_string(),
        ],
    );
    psql(sandbox, &db, "VACUUM ANALYZE orders");
    let partitions = psql_lines(
        sandbox,
        &db,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'orders'::regclass ORDER BY 1",
    );
    let set = IndexSet::builtin().unwrap_or_else(|e| fail(&format!("{e:#}")));
    let parents: Vec<String> = set.indexes.iter().map(|i| i.create_on_only_sql()).collect();
    // Each partition's builds and attaches, for the partitions of one session.
    let per_partition = |of: &[String]| -> Vec<String> {
        of.iter()
            .flat_map(|partition| {
                set.indexes.iter().flat_map(move |index| {
                    let child = partition_index_name(&index.name, partition);
                    [
                        index.on_table(&child, "public", partition).create_sql(true),
                        format!(
                            "ALTER INDEX {} ATTACH PARTITION {}",
                            quote_ident(&index.name),
                            quote_ident(&child)
                        ),
                    ]
                })
            })
            .collect()
    };
    let one_session: Vec<String> = parents
        .iter()
        .cloned()
        .chain(per_partition(&partitions))
        .collect();
    let first: Vec<String> = partitions.iter().step_by(2).cloned().collect();
    let second: Vec<String> = partitions.iter().skip(1).step_by(2).cloned().collect();
    let halves = [per_partition(&first), per_partition(&second)];
    let [psql_one, psql_two, o2o_one, o2o_two] = rotate(
        opts.reps,
        &|| drop_managed(sandbox, &db),
        [
            &|| wait_all(vec![psql_file(sandbox, &db, "part_one.sql", &one_session)]),
            &|| {
                wait_all(vec![psql_file(sandbox, &db, "part_parents.sql", &parents)]);
                wait_all(vec![
                    psql_file(sandbox, &db, "part_half1.sql", &halves[0]),
                    psql_file(sandbox, &db, "part_half2.sql", &halves[1]),
                ])
            },
            &|| run_o2o(sandbox, &db, &["create-indexes", "--no-analyze"]),
            &|| {
                run_o2o(
                    sandbox,
                    &db,
                    &["create-indexes", "--jobs", "2", "--no-analyze"],
                )
            },
        ],
    );
    let parts = partitions.len();
    table.push(Row {
        what: format!("create-indexes on {parts} partitions (CONCURRENTLY), {n} orders (s)"),
        o2o: format!("{o2o_one:.2}"),
        peer: format!("{psql_one:.2} (psql: ON ONLY, CONCURRENTLY, ATTACH one by one)"),
        ratio: o2o_one / psql_one,
        target: "≤ 1.00".into(),
        met: o2o_one / psql_one <= 1.0,
    });
    let best = psql_one.min(psql_two);
    table.push(Row {
        what: format!("create-indexes --jobs 2 on {parts} partitions, {n} orders (s)"),
        o2o: format!("{o2o_two:.2}"),
        peer: format!("{best:.2} (psql: one session {psql_one:.2}, two sessions {psql_two:.2})"),
        ratio: o2o_two / best,
        target: "≤ 1.00".into(),
        met: o2o_two / best <= 1.0,
    });

    // verify on the partitioned table (indexed by the last run) against the unpartitioned one.
    psql(sandbox, &db, "VACUUM ANALYZE orders");
    let plain = indexed_db(sandbox, &format!("peers_plain_{n}"), n);
    let verify = |db: &str| -> f64 {
        let times: Vec<Duration> = (0..opts.reps.max(3))
            .map(|_| time(|| drop(o2o_output(sandbox, db, &["verify"]))))
            .collect();
        median(&times).as_secs_f64()
    };
    let (on_partitions, on_plain) = (verify(&db), verify(&plain));
    table.push(Row {
        what: format!("verify on {parts} partitions vs unpartitioned, {n} orders (s)"),
        o2o: format!("{on_partitions:.2}"),
        peer: format!("{on_plain:.2} (verify, unpartitioned)"),
        ratio: on_partitions / on_plain,
        target: "≤ 1.20".into(),
        met: on_partitions / on_plain <= 1.2,
    });
    let _ = sandbox.drop_database(&plain);
    let _ = sandbox.drop_database(&db);
}
