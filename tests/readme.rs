// The README cannot drift from the tool: every ```console block is replayed
// in order against a fresh database. `$ o2o-db ...` lines run the binary (its
// --database-url pointed at the test database); `$ cat FILE` lines create FILE
// from the lines shown. The output shown must appear in the real output, in
// order, once numbers, durations and sizes are masked and table padding is
// collapsed; the exit code must be the one the block's last line implies.

use crate::support;

/// One shell line of a console block with the lines shown after it.
#[derive(Debug)]
struct Step {
    command: String,
    shown: Vec<String>,
}

fn console_blocks(readme: &str) -> Vec<Vec<Step>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<Step>> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```console") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(steps), l) => {
                if let Some(cmd) = l.strip_prefix("$ ") {
                    steps.push(Step {
                        command: cmd.to_string(),
                        shown: Vec::new(),
                    });
                } else if let Some(step) = steps.last_mut() {
                    step.shown.push(l.to_string());
                }
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Splits a command line like a shell would for the simple quoting the README uses.
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}

/// Masks what legitimately differs between runs: numbers with their units,
/// table padding and rule lengths, temporary paths.
pub fn normalize(line: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || matches!(chars[i], '.' | ',' | ':' | '-' | 'T' | 'Z' | '+'))
            {
                i += 1;
            }
            // a unit right after the number
            let rest: String = chars[i..].iter().collect();
            for unit in [
                "µs", "ms", "kB", "MB", "GB", "bytes", "s", "m", "h", "%", "x", "×",
            ] {
                if rest.starts_with(unit)
                    && !rest[unit.len()..].starts_with(|c: char| c.is_alphabetic())
                {
                    i += unit.chars().count();
                    break;
                }
                if rest.starts_with(&format!(" {unit}"))
                    && !rest[unit.len() + 1..].starts_with(|c: char| c.is_alphabetic())
                {
                    i += unit.chars().count() + 1;
                    break;
                }
            }
            out.push('#');
            continue;
        }
        if c.is_whitespace() || matches!(c, '─' | '═' | '-' | '━') {
            let run = c;
            while i < chars.len()
                && (chars[i] == run || (run.is_whitespace() && chars[i].is_whitespace()))
            {
                i += 1;
            }
            out.push(if run.is_whitespace() { ' ' } else { run });
            continue;
        }
        out.push(c);
        i += 1;
    }
    // '#' runs separated only by spaces or punctuation such as "# #" stay as they are.
    out.split_whitespace()
        .map(|w| if w.contains("/tmp/") { "<tmp>" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn normalize_masks_what_varies() {
    assert_eq!(
        normalize("│ a   ┆ 12.5 ms ┆ 3.1 MB │"),
        normalize("│ a ┆ 7 ms ┆ 812 kB     │")
    );
    assert_eq!(
        normalize("seeded 93728 orders in 1.00 s"),
        "seeded # orders in #"
    );
    assert_ne!(normalize("created"), normalize("skipped"));
}

#[test]
fn readme_console_examples_run_as_shown() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks = console_blocks(&readme);
    assert!(blocks.len() >= 4, "README has too few console examples");
    // The README's own database name, created by its first `seed --create-schema`, as a user would.
    let url = support::sandbox().url("o2o_dashboard");
    let _ = support::sandbox().drop_database("o2o_dashboard");
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for step in blocks.iter().flatten() {
        let argv = words(&step.command);
        match argv.first().map(String::as_str) {
            Some("cat") => {
                let mut text = step.shown.join("\n");
                text.push('\n');
                std::fs::write(dir.path().join(&argv[1]), text).unwrap();
            }
            Some("o2o-db") => {
                let mut cmd = support::bare_cmd();
                cmd.current_dir(dir.path());
                if !argv.iter().any(|a| a == "--database-url") {
                    cmd.arg("--database-url").arg(&url);
                }
                let out = cmd.args(&argv[1..]).output().unwrap();
                let actual: Vec<String> =
                    format!("{}{}", support::stdout(&out), support::stderr(&out))
                        .lines()
                        .map(normalize)
                        .collect();
                // Each shown line appears, in order.
                let mut at = 0;
                for shown in step
                    .shown
                    .iter()
                    .map(|l| normalize(l))
                    .filter(|l| !l.is_empty() && l != "...")
                {
                    match actual[at..].iter().position(|a| a == &shown) {
                        Some(p) => at += p + 1,
                        None => panic!(
                            "README step `{}`: line not found in order:\n  {shown}\nactual output:\n{}",
                            step.command,
                            actual.join("\n")
                        ),
                    }
                }
                let expect_error = step.shown.iter().any(|l| l.starts_with("o2o-db: error:"));
                if expect_error {
                    assert_eq!(out.status.code(), Some(2), "README step `{}`", step.command);
                } else {
                    assert!(
                        matches!(out.status.code(), Some(0) | Some(1)),
                        "README step `{}` exited {:?}",
                        step.command,
                        out.status.code()
                    );
                }
                ran += 1;
            }
            other => {
                panic!("README console block runs `{other:?}`: only o2o-db and cat are replayed")
            }
        }
    }
    assert!(ran >= 11, "only {ran} commands ran");
    support::sandbox().drop_database("o2o_dashboard").unwrap();
}
