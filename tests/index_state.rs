// index_state: missing, matching, INVALID and drifted, judged by definition.

use crate::support::TestDb;
use o2o_db::catalog::indexes::{inspect, State};
use o2o_db::sqlfiles::IndexSet;

#[test]
fn states_are_judged_by_definition_not_name() {
    let db = TestDb::seeded("index_state", 2000);
    let mut c = db.client();
    c.batch_execute(
        "CREATE INDEX idx_orders_store_date ON public.orders USING btree (\"store_name\", date ASC NULLS LAST);
         CREATE INDEX idx_orders_date_desc ON orders (date DESC NULLS FIRST);
         CREATE INDEX idx_orders_channel ON orders (channel, scene);",
    )
    .unwrap();
    // A failed concurrent unique build leaves an INVALID index behind.
    assert!(c
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY idx_orders_scene ON orders (scene)")
        .is_err());
    let set = IndexSet::builtin().unwrap();
    let states = inspect(&mut c, &set).unwrap();
    let state = |n: &str| states.iter().find(|s| s.name == n).unwrap().clone();
    assert_eq!(state("idx_orders_store_date").state, State::Matches);
    assert_eq!(state("idx_orders_date_desc").state, State::Matches);
    let ch = state("idx_orders_channel");
    assert_eq!(ch.state, State::Drifted);
    assert!(ch.live.as_deref().unwrap().contains("(channel, scene)"));
    assert!(
        ch.expected.ends_with("USING btree (channel)"),
        "{}",
        ch.expected
    );
    assert_eq!(state("idx_orders_scene").state, State::Invalid);
    assert!(!state("idx_orders_scene").building);
    assert_eq!(state("idx_orders_product_name").state, State::Missing);
    assert!(state("idx_orders_store_date").size_bytes > 0);
    // The probe left nothing behind.
    let leftovers: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'o2o_db_probe%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(leftovers, 0);
    // A unique spec does not match a plain index of the same columns.
    let uniq = IndexSet::parse(
        "CREATE UNIQUE INDEX idx_orders_store_date ON orders (store_name, date);",
        "u.sql",
    )
    .unwrap();
    assert_eq!(inspect(&mut c, &uniq).unwrap()[0].state, State::Drifted);
}

#[test]
fn a_definition_the_table_cannot_take_is_reported_with_its_line() {
    let db = TestDb::with_schema("index_state_bad");
    let set = IndexSet::parse("\nCREATE INDEX idx_x ON orders (no_such_column);", "x.sql").unwrap();
    let err = inspect(&mut db.client(), &set).unwrap_err().to_string();
    assert!(
        err.starts_with("x.sql:2: index idx_x is not valid for table"),
        "{err}"
    );
    assert!(err.contains("no_such_column"), "{err}");
    let set = IndexSet::parse("CREATE INDEX idx_x ON missing_table (a);", "y.sql").unwrap();
    let err = inspect(&mut db.client(), &set).unwrap_err().to_string();
    assert!(
        err.contains("table \"missing_table\" does not exist"),
        "{err}"
    );
}
