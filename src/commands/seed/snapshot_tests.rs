//! Snapshots of the seed report in every format, from reports built by hand
//! (the README's figures: the tour, the partitioned seed), so its one line
//! cannot change unseen.

use super::SeedReport;
use crate::report::snapshot::assert_formats;

/// The README tour's `seed --create-schema`.
fn tour() -> SeedReport {
    SeedReport {
        database: "o2o_dashboard".into(),
        table: "orders".into(),
        partitions: None,
        orders: 93_728,
        stores: 4,
        seed: 42,
        duration_ms: 2197.43,
        rows_per_second: 42_653.6,
        table_bytes: 19_188_736,
    }
}

#[test]
fn the_tour_seed() {
    assert_formats!("tour", tour());
}

#[test]
fn no_orders_and_an_empty_table() {
    assert_formats!(
        "empty",
        SeedReport {
            orders: 0,
            duration_ms: 3.5,
            rows_per_second: 0.0,
            table_bytes: 8192,
            ..tour()
        }
    );
}

/// The README's `seed --create-schema --partition-by month` on a fresh database.
#[test]
fn a_partitioned_table() {
    assert_formats!(
        "partitioned",
        SeedReport {
            database: "o2o_partitioned".into(),
            partitions: Some(14),
            duration_ms: 2079.5,
            rows_per_second: 45_072.0,
            table_bytes: 20_873_216,
            ..tour()
        }
    );
}

#[test]
fn one_partition_is_one() {
    use crate::report::{snapshot::rendered, Format};
    let one = SeedReport {
        partitions: Some(1),
        ..tour()
    };
    assert!(rendered(&one, Format::Table).contains("into o2o_dashboard.orders (1 partition) in "));
}
