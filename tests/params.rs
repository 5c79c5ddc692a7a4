// params: candidate rows drawn from the data, bound in binary, checked against the query's types.

use crate::support::TestDb;
use o2o_db::params::{as_sql_params, literals, ParamPool};
use o2o_db::seed_data::Rng;
use o2o_db::sqlfiles::QuerySuite;

#[test]
fn every_builtin_query_runs_with_drawn_parameters() {
    let db = TestDb::seeded("params_builtin", 2000);
    let mut c = db.client();
    let suite = QuerySuite::builtin().unwrap();
    for q in &suite.queries {
        let pool = ParamPool::load(&mut c, q).unwrap();
        assert!(!pool.is_empty());
        let mut rng = Rng::new(1);
        let row = pool.draw(&mut rng);
        assert_eq!(row.len(), q.param_count(), "{}", q.name);
        let rows = c.query(q.sql.as_str(), &as_sql_params(row)).unwrap();
        assert!(
            !rows.is_empty(),
            "{} returned nothing for its drawn parameters",
            q.name
        );
    }
    // Draws are reproducible for a seed.
    let q = suite
        .queries
        .iter()
        .find(|q| q.name == "store_date")
        .unwrap();
    let pool = ParamPool::load(&mut c, q).unwrap();
    let (mut a, mut b) = (Rng::new(9), Rng::new(9));
    for _ in 0..20 {
        assert_eq!(pool.draw(&mut a), pool.draw(&mut b));
    }
    let lits = literals(&mut c, pool.row(0)).unwrap();
    assert_eq!(lits.len(), 3);
    assert!(
        lits[0].ends_with("::text") && lits[1].ends_with("::date"),
        "{lits:?}"
    );
}

#[test]
fn mismatched_params_are_explained() {
    let db = TestDb::seeded("params_bad", 500);
    let mut c = db.client();
    let suite = QuerySuite::parse(
        "-- name: wrong_type\n-- params: SELECT 1\nSELECT count(*) FROM orders WHERE store_name = $1;\n\
         -- name: wrong_count\n-- params: SELECT 'a', 'b'\nSELECT count(*) FROM orders WHERE store_name = $1;\n\
         -- name: no_rows\n-- params: SELECT store_name FROM orders WHERE false\nSELECT count(*) FROM orders WHERE store_name = $1;\n\
         -- name: injection\n-- params: SELECT $$x'; DROP TABLE orders; --$$::text\nSELECT count(*) FROM orders WHERE store_name = $1;",
        "s.sql",
    )
    .unwrap();
    let mut err = |i: usize| {
        ParamPool::load(&mut c, &suite.queries[i])
            .unwrap_err()
            .to_string()
    };
    let (e0, e1, e2) = (err(0), err(1), err(2));
    assert!(
        e0.contains("$1 is text but the params SELECT's column 1 is int4"),
        "{e0}"
    );
    assert!(
        e1.contains("takes 1 parameters but its params SELECT returns 2 columns"),
        "{e1}"
    );
    assert!(e2.contains("returned no rows"), "{e2}");
    // A hostile value is just a value: bound, never spliced.
    let pool = ParamPool::load(&mut c, &suite.queries[3]).unwrap();
    let n: i64 = c
        .query_one(suite.queries[3].sql.as_str(), &as_sql_params(pool.row(0)))
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders"), 500);
}
