//! Test support for the renderers' snapshot tests: a report rendered to a
//! String exactly as the CLI writes it to stdout, in every format it offers,
//! without a database. The snapshots land beside the test that calls
//! [`assert_formats!`], under `snapshots/`.

use super::{render, Format, Report};

/// The report as `--format <format>` prints it.
pub fn rendered(report: &impl Report, format: Format) -> String {
    let mut out = Vec::new();
    if let Err(e) = render(report, format, &mut out) {
        panic!("rendering as {}: {e:#}", format.name());
    }
    match String::from_utf8(out) {
        Ok(text) => text,
        Err(e) => panic!("{} output is not UTF-8: {e}", format.name()),
    }
}

/// The formats `report` can be written in (its type's FORMATS).
pub fn formats_of<R: Report>(_: &R) -> &'static [Format] {
    R::FORMATS
}

/// Snapshots `report` in each of its formats as `<name>-table`, `<name>-json`
/// and, where offered, `<name>-csv`. A macro so that insta files the
/// snapshots beside the caller.
macro_rules! assert_formats {
    ($name:expr, $report:expr) => {{
        let report = &$report;
        for &format in $crate::report::snapshot::formats_of(report) {
            insta::assert_snapshot!(
                format!("{}-{}", $name, format.name()),
                $crate::report::snapshot::rendered(report, format),
                &format!("--format {}", format.name())
            );
        }
    }};
}

pub(crate) use assert_formats;
