//! The partitions of a partitioned table and what each has of one managed
//! index: an index attached to the managed one, a matching index attached to
//! nothing (attached, never built twice), a leftover under the name o2o-db
//! builds with, or nothing. Read-only, for create-indexes' plan and verify.
//!
//! PostgreSQL keeps a partitioned index INVALID until every partition has an
//! index of its definition attached, and refuses to attach one that differs,
//! so an attached index needs no comparison of its own; an unattached one is
//! compared by shape (catalog::shapes).

use super::shapes::{Shape, TableIndex};
use crate::db::PgContext;
use crate::ident::quote_qualified;
use crate::sqlfiles::names::partition_index_name;
use anyhow::Result;
use postgres::types::Type;
use postgres::Client;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// The size of index `c.oid` with its partitions' indexes (a partitioned
/// index has no storage of its own), for a query that names the index `c`
/// (pg_partition_tree has no rows for an index outside a partition tree).
pub const INDEX_TREE_SIZE: &str =
    "(SELECT COALESCE(sum(pg_relation_size(t.relid)), pg_relation_size(c.oid))::int8 \
     FROM pg_partition_tree(c.oid) t)";

/// The scans of index `c.oid` and of its partitions' indexes (the planner
/// reads a partition's index, never the partitioned one).
pub const INDEX_TREE_SCANS: &str = "(SELECT COALESCE(sum(s.idx_scan), \
       (SELECT o.idx_scan FROM pg_stat_user_indexes o WHERE o.indexrelid = c.oid), 0)::int8 \
     FROM pg_partition_tree(c.oid) t JOIN pg_stat_user_indexes s ON s.indexrelid = t.relid)";

/// One partition of the managed table, at any level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// The table it is a partition of.
    pub parent: u32,
    /// Partitioned itself: its index is a partitioned index too, made ON ONLY.
    pub partitioned: bool,
}

impl Partition {
    /// Quoted and schema-qualified.
    pub fn qualified(&self) -> String {
        quote_qualified(Some(&self.schema), &self.name)
    }

    /// `schema.name`, as reports show it.
    pub fn shown(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// A partitioned table and its partitions, parents before their children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub root: u32,
    pub partitions: Vec<Partition>,
}

impl Tree {
    pub fn oids(&self) -> Vec<u32> {
        self.partitions.iter().map(|p| p.oid).collect()
    }
}

/// The partition tree of `table` (quoted, qualified); None when it is not
/// partitioned. Foreign-table partitions are left out: they take no index.
pub fn tree(client: &mut Client, table: &str) -> Result<Option<Tree>> {
    let root = client
        .query_typed_opt(
            "SELECT c.oid FROM pg_class c WHERE c.oid = to_regclass($1) AND c.relkind = 'p'",
            &[(&table, Type::TEXT)],
        )
        .pg_context("asking whether the table is partitioned")?;
    let Some(root) = root else {
        return Ok(None);
    };
    let rows = client
        .query_typed(
            "SELECT t.relid::oid, n.nspname::text, c.relname::text, t.parentrelid::oid, c.relkind = 'p' \
             FROM pg_partition_tree(to_regclass($1)) t \
             JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE t.level > 0 AND c.relkind IN ('r', 'p') ORDER BY t.level, c.relname",
            &[(&table, Type::TEXT)],
        )
        .pg_context("reading the table's partitions")?;
    Ok(Some(Tree {
        root: root.get(0),
        partitions: rows
            .iter()
            .map(|r| Partition {
                oid: r.get(0),
                schema: r.get(1),
                name: r.get(2),
                parent: r.get(3),
                partitioned: r.get(4),
            })
            .collect(),
    }))
}

/// The names a plan reads the table under (EXPLAIN names relations
/// unqualified): the table and its partitions, and for each index of a
/// partition the index of the table it is attached to, at the top.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relations {
    pub table: String,
    pub partitions: HashSet<String>,
    pub index_root: HashMap<String, String>,
}

impl Relations {
    /// An unpartitioned table's.
    pub fn single(table: &str) -> Relations {
        Relations {
            table: table.to_string(),
            ..Relations::default()
        }
    }

    /// Whether a plan node's relation is the table or one of its partitions.
    pub fn covers(&self, relation: &str) -> bool {
        relation == self.table || self.partitions.contains(relation)
    }

    /// The managed name of an index a plan names.
    pub fn root_index<'a>(&'a self, index: &'a str) -> &'a str {
        self.index_root.get(index).map_or(index, String::as_str)
    }
}

/// [`Relations`] of `table` (quoted, qualified): two catalog queries.
pub fn relations(client: &mut Client, table: &str, name: &str) -> Result<Relations> {
    // Unnamed statements (query_typed): one round trip each, and nothing
    // named left on a server connection a transaction pooler hands on.
    let partitions = client
        .query_typed(
            "SELECT c.relname::text FROM pg_partition_tree(to_regclass($1)) t \
             JOIN pg_class c ON c.oid = t.relid WHERE t.level > 0",
            &[(&table, Type::TEXT)],
        )
        .pg_context("reading the table's partitions")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let index_root = client
        .query_typed(
            "SELECT c.relname::text, r.relname::text FROM pg_partition_tree(to_regclass($1)) t \
             JOIN pg_index i ON i.indrelid = t.relid JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_class r ON r.oid = pg_partition_root(i.indexrelid) \
             WHERE t.level > 0 AND r.oid <> c.oid",
            &[(&table, Type::TEXT)],
        )
        .pg_context("reading the partitions' indexes")?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(Relations {
        table: name.to_string(),
        partitions,
        index_root,
    })
}

/// What one partition has of one managed index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Cover {
    /// An index attached to the managed index: done when valid. An INVALID one
    /// on a partitioned partition waits for its own partitions; on a leaf it
    /// was attached while INVALID by hand.
    Attached {
        index: String,
        valid: bool,
    },
    /// A CREATE INDEX of an index of this partition is running right now.
    Building {
        index: String,
    },
    /// A valid index of the definition attached to nothing: attach it.
    Unattached {
        index: String,
    },
    /// The name o2o-db builds under is taken by an INVALID index attached to
    /// nothing (a failed build): drop it and build again.
    Leftover {
        index: String,
    },
    /// The name o2o-db builds under is taken by an index of another definition.
    Drifted {
        index: String,
        definition: String,
    },
    Missing,
}

/// One partition's [`Cover`] of one managed index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionCover {
    /// `schema.name`.
    pub partition: String,
    #[serde(flatten)]
    pub cover: Cover,
    pub size_bytes: i64,
}

impl PartitionCover {
    pub fn done(&self) -> bool {
        matches!(self.cover, Cover::Attached { valid: true, .. })
    }
}

/// Each partition's cover of the index `name` (managed, or its replacement),
/// whose oid on the root table is `root_index` (None: not there yet), whose
/// file definition is `wanted`; `indexes` are the partitions' indexes.
pub fn covers(
    tree: &Tree,
    name: &str,
    root_index: Option<u32>,
    wanted: &Shape,
    indexes: &[TableIndex],
) -> Vec<PartitionCover> {
    // The table → its index of this managed index, as found top-down.
    let mut index_of: HashMap<u32, u32> = HashMap::new();
    if let Some(oid) = root_index {
        index_of.insert(tree.root, oid);
    }
    let mut out = Vec::with_capacity(tree.partitions.len());
    for p in &tree.partitions {
        let own = partition_index_name(name, &p.name);
        let on_p: Vec<&TableIndex> = indexes.iter().filter(|i| i.table == p.oid).collect();
        let parent_index = index_of.get(&p.parent).copied();
        let attached = parent_index.and_then(|pi| on_p.iter().find(|i| i.attached_to == Some(pi)));
        // A partitioned index may be attached while INVALID: its partitions complete it.
        let attachable = |i: &&&TableIndex| {
            i.attached_to.is_none()
                && !i.constraint
                && i.shape == *wanted
                && (p.partitioned || (i.valid && i.ready && !i.building))
        };
        let mut candidates: Vec<&&TableIndex> = on_p.iter().filter(attachable).collect();
        candidates.sort_by_key(|i| i.name != own);
        let (cover, found) = if let Some(a) = attached {
            let cover = if a.building {
                Cover::Building {
                    index: a.name.clone(),
                }
            } else {
                Cover::Attached {
                    index: a.name.clone(),
                    valid: a.valid && a.ready,
                }
            };
            (cover, Some(*a))
        } else if let Some(u) = candidates.first() {
            let cover = Cover::Unattached {
                index: u.name.clone(),
            };
            (cover, Some(**u))
        } else if let Some(n) = on_p.iter().find(|i| i.name == own) {
            let cover = if n.building {
                Cover::Building {
                    index: n.name.clone(),
                }
            } else if !(n.valid && n.ready) && n.attached_to.is_none() && !p.partitioned {
                Cover::Leftover {
                    index: n.name.clone(),
                }
            } else {
                Cover::Drifted {
                    index: n.name.clone(),
                    definition: n.definition.clone(),
                }
            };
            (cover, None)
        } else {
            (Cover::Missing, None)
        };
        if let Some(index) = found {
            index_of.insert(p.oid, index.oid);
        }
        out.push(PartitionCover {
            partition: p.shown(),
            size_bytes: found.map_or(0, |i| i.size_bytes),
            cover,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlfiles::shape::parse_definition;

    fn shape(def: &str) -> Shape {
        Shape {
            unique: false,
            parts: parse_definition(def).unwrap(),
        }
    }

    fn index(oid: u32, name: &str, table: u32, def: &str, attached_to: Option<u32>) -> TableIndex {
        TableIndex {
            oid,
            name: name.into(),
            valid: true,
            ready: true,
            definition: format!("CREATE INDEX {name} ... {def}"),
            size_bytes: 8192,
            building: false,
            shape: shape(def),
            table,
            attached_to,
            constraint: false,
        }
    }

    fn partition(oid: u32, name: &str, parent: u32, partitioned: bool) -> Partition {
        Partition {
            oid,
            schema: "public".into(),
            name: name.into(),
            parent,
            partitioned,
        }
    }

    #[test]
    fn each_partition_is_attached_attachable_leftover_drifted_or_missing() {
        // orders (1) ─ orders_01 (2), orders_02 (3, partitioned) ─ orders_02a (4); orders_default (5)
        let tree = Tree {
            root: 1,
            partitions: vec![
                partition(2, "orders_01", 1, false),
                partition(3, "orders_02", 1, true),
                partition(5, "orders_default", 1, false),
                partition(4, "orders_02a", 3, false),
                partition(6, "orders_03", 1, false),
            ],
        };
        let wanted = shape("(scene)");
        let parent = 100;
        let mut leftover = index(
            104,
            &partition_index_name("idx_scene", "orders_02a"),
            4,
            "(scene)",
            None,
        );
        leftover.valid = false;
        let indexes = vec![
            index(102, "orders_01_scene_idx", 2, "(scene)", Some(parent)),
            // The sub-partitioned partition's index: partitioned, INVALID, attached.
            TableIndex {
                valid: false,
                ..index(103, "orders_02_scene_idx", 3, "(scene)", Some(parent))
            },
            leftover,
            index(105, "by_hand", 5, "(scene)", None),
            // A primary key is never attached to a plain index.
            TableIndex {
                constraint: true,
                ..index(106, "orders_03_pkey", 6, "(scene)", None)
            },
            index(
                107,
                &partition_index_name("idx_scene", "orders_03"),
                6,
                "(scene, channel)",
                None,
            ),
        ];
        let got: Vec<Cover> = covers(&tree, "idx_scene", Some(parent), &wanted, &indexes)
            .into_iter()
            .map(|c| c.cover)
            .collect();
        assert_eq!(
            got,
            [
                Cover::Attached {
                    index: "orders_01_scene_idx".into(),
                    valid: true
                },
                Cover::Attached {
                    index: "orders_02_scene_idx".into(),
                    valid: false
                },
                Cover::Unattached {
                    index: "by_hand".into()
                },
                Cover::Leftover {
                    index: "idx_scene__orders_02a".into()
                },
                Cover::Drifted {
                    index: "idx_scene__orders_03".into(),
                    definition: "CREATE INDEX idx_scene__orders_03 ... (scene, channel)".into()
                },
            ]
        );
        // Without the parent index, the attached ones belong to nothing of ours.
        let none = covers(&tree, "idx_scene", None, &wanted, &indexes);
        assert_eq!(none[0].cover, Cover::Missing);
        assert!(none.iter().all(|c| !c.done()));
    }
}
