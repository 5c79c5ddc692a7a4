// Shell conveniences and --help: completions for each shell, the man page,
// and a purpose line plus an example in every subcommand's help.

use crate::support;

#[test]
fn completions_and_man_page_cover_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let out = support::bare_cmd()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = support::stdout(&out);
        for sub in [
            "create-indexes",
            "verify",
            "benchmark",
            "pool-status",
            "compare-seqscan",
        ] {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let out = support::bare_cmd().arg("man").output().unwrap();
    assert!(out.status.success());
    let man = support::stdout(&out);
    assert!(
        man.starts_with(".ie") || man.contains(".TH o2o-db"),
        "{}",
        &man[..man.len().min(200)]
    );
    assert!(
        man.contains("create\\-indexes"),
        "man page lacks the subcommands"
    );
    support::run(support::bare_cmd().args(["completions", "tcsh"]), 2);
}

#[test]
fn every_subcommand_help_has_a_purpose_and_an_example() {
    for sub in [
        "seed",
        "create-indexes",
        "drop-indexes",
        "verify",
        "benchmark",
        "pool-status",
        "demo",
        "completions",
        "man",
    ] {
        let out = support::bare_cmd().args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub}");
        let text = support::stdout(&out);
        let first = text.lines().next().unwrap_or("");
        assert!(
            first.len() > 20 && first.ends_with('.'),
            "{sub}: purpose line `{first}`"
        );
        assert!(
            text.contains(&format!("Example: o2o-db {sub}")),
            "{sub}: no example in --help"
        );
    }
}
