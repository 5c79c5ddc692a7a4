// Hostile input: a small deterministic fuzzer for every parser of user input (mutations of
// valid inputs: bytes flipped, inserted, deleted, spliced with SQL and TOML
// fragments) must give Ok or a clean Err, never a panic.

use o2o_db::config;
use o2o_db::conninfo::ConnInfo;
use o2o_db::seed_data::Rng;
use o2o_db::sqlfiles::{IndexSet, QuerySuite};
use std::path::Path;

const FRAGMENTS: &[&str] = &[
    ";",
    "'",
    "\"",
    "$$",
    "$1",
    "--",
    "/*",
    "*/",
    "(",
    ")",
    "\n",
    "=",
    "[",
    "]",
    "\\",
    "%",
    "@",
    ":",
    "?",
    "&",
    "CREATE INDEX",
    " ON ",
    "-- name:",
    "-- params:",
    "\u{0}",
    "é",
    "美团",
    "\u{feff}",
    "9999999999999999999999",
    "-1",
    "\"30s\"",
    "[pool]",
    "size",
    "postgres://",
    "sslmode=",
    "#",
];

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..=rng.below(6) {
        let pos = if bytes.is_empty() {
            0
        } else {
            rng.below(bytes.len() as u64 + 1) as usize
        };
        match rng.below(4) {
            0 if !bytes.is_empty() => {
                let end = (pos + rng.below(8) as usize).min(bytes.len());
                bytes.drain(pos.min(end)..end);
            }
            1 => {
                let f = FRAGMENTS[rng.below(FRAGMENTS.len() as u64) as usize];
                bytes.splice(pos..pos, f.bytes());
            }
            2 if pos < bytes.len() => bytes[pos] = rng.below(256) as u8,
            _ => bytes.insert(pos, rng.below(128) as u8),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Feeds `parse` mutations of `seeds`; `parse` says whether it accepted the
/// input. A panic fails the test, and so does a run in which every input was
/// accepted or every one refused: such mutations never reach the parser's
/// other side, and a test over them could not fail.
fn fuzz(seeds: &[&str], iterations: usize, parse: impl Fn(&str) -> bool) {
    let mut rng = Rng::new(20251211);
    let mut accepted = 0;
    for i in 0..iterations {
        let input = mutate(&mut rng, seeds[i % seeds.len()]);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(&input)));
        match result {
            Ok(ok) => accepted += usize::from(ok),
            Err(_) => panic!("parser panicked on {input:?}"),
        }
    }
    assert!(
        accepted > 0 && accepted < iterations,
        "{accepted} of {iterations} mutated inputs accepted: the mutations reach only one outcome"
    );
}

#[test]
fn index_file_parser_never_panics() {
    let builtin = o2o_db::sqlfiles::indexes::DEFAULT_INDEXES_SQL;
    fuzz(
        &[
            builtin,
            "CREATE UNIQUE INDEX \"a\"\"b\" ON s.t USING gin ((x->'y')) WHERE z;",
        ],
        20_000,
        |s| IndexSet::parse(s, "f.sql").is_ok(),
    );
}

#[test]
fn query_suite_parser_never_panics() {
    let builtin = o2o_db::sqlfiles::queries::DEFAULT_QUERIES_SQL;
    fuzz(&[builtin], 10_000, |s| {
        match QuerySuite::parse(s, "q.sql") {
            Ok(suite) => {
                for q in &suite.queries {
                    let _ = q.param_count();
                }
                true
            }
            Err(_) => false,
        }
    });
}

#[test]
fn config_parser_never_panics() {
    let sample = include_str!("../o2o-db.toml");
    fuzz(&[sample, "[pool]\nsize = 3\n"], 10_000, |s| {
        config::parse_str(s, Path::new("c.toml")).is_ok()
    });
}

#[test]
fn connection_string_parser_never_panics() {
    fuzz(
        &[
            "postgres://u:p%40ss@[::1]:5432,h2:6/db?sslmode=verify-full&sslrootcert=/r.crt&application_name=x",
            "host=/tmp port=5 user='a b' password='p\\'q' dbname=d sslmode=require",
            "postgres://u:p@h1:1,[::1]:2/d?target_session_attrs=read-write&options=-c%20x%3D1&service=s&keepalives=0&host=/tmp",
        ],
        20_000,
        |s| {
            let _ = o2o_db::conninfo::redact_text(s);
            ConnInfo::parse(s).is_ok()
        },
    );
}

/// Names from an index file are quoted identifiers: a hostile name is just a name.
#[test]
fn hostile_index_names_are_identifiers_not_sql() {
    use crate::support::{self, TestDb};
    let db = TestDb::seeded("injection_names", 500);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.sql");
    std::fs::write(
        &file,
        "CREATE INDEX \"idx_x\"\"; DROP TABLE orders; --\" ON orders (channel);\n",
    )
    .unwrap();
    for args in [
        vec!["create-indexes", "--dry-run"],
        vec!["create-indexes"],
        vec!["verify", "--only", "indexes"],
    ] {
        let out = db
            .cmd()
            .args(&args)
            .arg("--indexes")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}{}",
            support::stdout(&out),
            support::stderr(&out)
        );
    }
    assert_eq!(db.scalar_i64("SELECT count(*) FROM orders"), 500);
    assert_eq!(
        db.scalar_i64(
            "SELECT count(*) FROM pg_class WHERE relname = 'idx_x\"; DROP TABLE orders; --'"
        ),
        1
    );
}
