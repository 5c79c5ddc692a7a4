//! The partitioned plan's statements, from covers made up here.

use super::*;
use crate::catalog::indexes::{LiveIndex, Replacement, State};
use crate::catalog::partitions::Partition;
use crate::sqlfiles::IndexSet;

fn tree() -> Tree {
    let part = |oid, name: &str, parent, partitioned| Partition {
        oid,
        schema: "public".into(),
        name: name.into(),
        parent,
        partitioned,
    };
    // orders ─ orders_01, orders_02 (partitioned) ─ orders_02a
    Tree {
        root: 1,
        partitions: vec![
            part(2, "orders_01", 1, false),
            part(3, "orders_02", 1, true),
            part(4, "orders_02a", 3, false),
        ],
    }
}

fn cover(partition: &str, cover: Cover) -> PartitionCover {
    PartitionCover {
        partition: format!("public.{partition}"),
        cover,
        size_bytes: 0,
    }
}

fn planned(action: Action, state: State, covers: Vec<PartitionCover>) -> Planned {
    let set = IndexSet::parse("CREATE INDEX idx_scene ON public.orders (scene);", "x.sql").unwrap();
    Planned {
        spec: set.indexes[0].clone(),
        live: LiveIndex {
            state,
            partitions: Some(covers.clone()),
            replacement: Some(Replacement {
                parent: None,
                partitions: covers,
            }),
            ..LiveIndex::missing("idx_scene", String::new())
        },
        action,
    }
}

fn missing() -> Vec<PartitionCover> {
    ["orders_01", "orders_02", "orders_02a"]
        .iter()
        .map(|p| cover(p, Cover::Missing))
        .collect()
}

#[test]
fn a_new_index_is_made_on_only_then_built_per_partition_and_attached() {
    let work = work(
        &planned(Action::Create, State::Missing, missing()),
        &tree(),
        true,
        false,
    );
    assert_eq!(
        work.sql(),
        [
            r#"CREATE INDEX "idx_scene" ON ONLY "public"."orders" (scene)"#,
            r#"CREATE INDEX "idx_scene__orders_02" ON ONLY "public"."orders_02" (scene)"#,
            r#"ALTER INDEX "public"."idx_scene" ATTACH PARTITION "public"."idx_scene__orders_02""#,
            r#"CREATE INDEX CONCURRENTLY "idx_scene__orders_01" ON "public"."orders_01" (scene)"#,
            r#"ALTER INDEX "public"."idx_scene" ATTACH PARTITION "public"."idx_scene__orders_01""#,
            r#"CREATE INDEX CONCURRENTLY "idx_scene__orders_02a" ON "public"."orders_02a" (scene)"#,
            r#"ALTER INDEX "public"."idx_scene__orders_02" ATTACH PARTITION "public"."idx_scene__orders_02a""#,
        ]
    );
    assert_eq!(work.structure.len(), 3);
    assert!(work.structure.iter().all(|s| s.short_lock));
    let leaf = &work.partitions[0];
    assert_eq!(leaf.partition, "public.orders_01");
    // The build cleans up its INVALID leftover; the attach is bounded by the lock timeout.
    assert!(leaf.steps[0].cleanup.is_some() && !leaf.steps[0].short_lock);
    assert!(leaf.steps[1].short_lock);
    // --no-concurrently: still per partition, so each lock is short.
    let plain = work_sql(Action::Create, missing(), false);
    assert!(plain.contains(
        &r#"CREATE INDEX "idx_scene__orders_01" ON "public"."orders_01" (scene)"#.to_string()
    ));
}

fn work_sql(action: Action, covers: Vec<PartitionCover>, concurrently: bool) -> Vec<String> {
    work(
        &planned(action, State::Incomplete, covers),
        &tree(),
        concurrently,
        false,
    )
    .sql()
}

#[test]
fn an_incomplete_index_gets_only_what_is_missing() {
    let covers = vec![
        cover(
            "orders_01",
            Cover::Unattached {
                index: "by_hand".into(),
            },
        ),
        cover(
            "orders_02",
            Cover::Attached {
                index: "sub_idx".into(),
                valid: false,
            },
        ),
        cover(
            "orders_02a",
            Cover::Leftover {
                index: "idx_scene__orders_02a".into(),
            },
        ),
    ];
    assert_eq!(
        work_sql(Action::Complete, covers, true),
        [
            r#"ALTER INDEX "public"."idx_scene" ATTACH PARTITION "public"."by_hand""#,
            r#"DROP INDEX CONCURRENTLY IF EXISTS "public"."idx_scene__orders_02a""#,
            r#"CREATE INDEX CONCURRENTLY "idx_scene__orders_02a" ON "public"."orders_02a" (scene)"#,
            r#"ALTER INDEX "public"."sub_idx" ATTACH PARTITION "public"."idx_scene__orders_02a""#,
        ]
    );
    // A drifted index under our name on a partitioned partition holds back its partitions.
    let covers = vec![
        cover(
            "orders_01",
            Cover::Attached {
                index: "a".into(),
                valid: true,
            },
        ),
        cover(
            "orders_02",
            Cover::Drifted {
                index: "idx_scene__orders_02".into(),
                definition: "(x)".into(),
            },
        ),
        cover("orders_02a", Cover::Missing),
    ];
    let w = work(
        &planned(Action::Complete, State::Incomplete, covers),
        &tree(),
        true,
        false,
    );
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(w.left.len(), 2);
    assert!(w.left[0].starts_with("public.orders_02: idx_scene__orders_02 is defined differently"));
}

#[test]
fn a_replace_builds_the_new_index_everywhere_before_the_swap() {
    let w = work(
        &planned(Action::Replace, State::Drifted, missing()),
        &tree(),
        true,
        true,
    );
    let sql = w.sql();
    assert_eq!(
        sql[0],
        r#"CREATE INDEX "idx_scene_o2o_new" ON ONLY "public"."orders" (scene)"#
    );
    let swap: Vec<&str> = w.swap.iter().map(|s| s.sql.as_str()).collect();
    assert_eq!(
        swap,
        [
            r#"DROP INDEX IF EXISTS "public"."idx_scene""#,
            r#"ALTER INDEX "public"."idx_scene_o2o_new" RENAME TO "idx_scene""#,
            r#"ALTER INDEX "public"."idx_scene_o2o_new__orders_01" RENAME TO "idx_scene__orders_01""#,
            r#"ALTER INDEX "public"."idx_scene_o2o_new__orders_02" RENAME TO "idx_scene__orders_02""#,
            r#"ALTER INDEX "public"."idx_scene_o2o_new__orders_02a" RENAME TO "idx_scene__orders_02a""#,
        ]
    );
    assert!(w.swap.iter().all(|s| s.short_lock));
    // Nothing of the old index is touched before the swap.
    assert!(!sql[..sql.len() - swap.len()]
        .iter()
        .any(|s| s.contains(r#""idx_scene" "#) || s.starts_with("DROP INDEX IF EXISTS")));
}
