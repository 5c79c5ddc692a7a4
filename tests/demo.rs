// demo: the whole story end to end on its own throwaway server, at a small size.

use crate::support;

/// Runs the demo and returns its stdout; it must exit 0. Its verify and
/// benchmark steps get a generous latency limit: whether a debug build on a
/// shared machine answers in 100 ms is not what the demo test is about.
fn demo(args: &[&str]) -> String {
    let config = support::generous_config_file();
    let out = support::run(
        support::bare_cmd()
            .arg("--config")
            .arg(config.path())
            .arg("demo")
            .args(args),
        0,
    );
    support::stdout(&out)
}

#[test]
fn demo_runs_the_story_and_cleans_up() {
    // Big enough that the planner prefers the indexes (on a few pages a seq scan is right).
    let text = demo(&["--orders", "20000", "--stores", "3"]);
    let headings: Vec<&str> = text.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(headings.len(), 7, "{headings:?}");
    for (i, h) in headings.iter().enumerate() {
        assert!(h.starts_with(&format!("== {}. ", i + 1)), "{h}");
    }
    // Under each heading, the command a user would run for that step.
    let lines: Vec<&str> = text.lines().collect();
    let commands: Vec<&str> = lines
        .windows(2)
        .filter(|w| w[0].starts_with("== "))
        .map(|w| w[1])
        .skip(1)
        .collect();
    assert_eq!(
        commands,
        [
            "$ o2o-db seed --create-schema --orders 20000 --stores 3",
            "$ o2o-db benchmark",
            "$ o2o-db create-indexes",
            "$ o2o-db verify",
            "$ o2o-db benchmark --compare-seqscan",
            "$ o2o-db pool-status",
        ],
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("$ export O2O_DB_URL='postgres://")),
        "{text}"
    );
    assert!(
        text.contains("seeded 20000 orders across 3 stores"),
        "{text}"
    );
    assert!(text.contains("total 11 / created 11 / skipped 0"), "{text}");
    assert!(
        text.contains("verify: 11 passed, 1 warned, 0 failed"),
        "{text}"
    );
    assert!(text.contains("seq-scan p50"), "{text}");
    assert!(
        text.contains("p95 limit 60000.00 ms"),
        "the config file applies: {text}"
    );
    // The server is gone: its directory was deleted and nothing listens on its socket.
    let dir = text
        .lines()
        .filter(|l| l.starts_with("listening on "))
        .find_map(|l| l.split("host=").nth(1))
        .map(|sock| {
            std::path::PathBuf::from(sock.trim())
                .parent()
                .unwrap()
                .to_path_buf()
        })
        .expect("the demo prints its URL");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn demo_keep_leaves_a_server_and_says_how_to_stop_it() {
    let text = demo(&["--orders", "20000", "--keep"]);
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix("URL:  "))
        .expect("URL line")
        .to_string();
    let stop = text
        .lines()
        .find_map(|l| l.strip_prefix("stop: "))
        .expect("stop line")
        .to_string();
    // The kept server answers the other subcommands, through the URL the demo
    // told the user to export.
    let exported = text
        .lines()
        .find_map(|l| l.strip_prefix("$ export O2O_DB_URL='"))
        .and_then(|l| l.split_once('\'').map(|(u, _)| u.to_string()))
        .expect("export line");
    assert_eq!(exported, url);
    let verify = support::bare_cmd()
        .env("O2O_DB_URL", &exported)
        .args(["verify", "--only", "indexes"])
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        support::stdout(&verify)
    );
    let status = std::process::Command::new("sh")
        .args(["-c", &stop])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    support::run(
        support::bare_cmd().args(["--database-url", &url, "verify", "--only", "connectivity"]),
        2,
    );
}
