//! The Prometheus text exposition format (OpenMetrics-compatible), for
//! node_exporter's textfile collector: every family with `# HELP` and
//! `# TYPE`, its samples together, names under `o2o_db_` in base units.

use std::fmt::Write as _;

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Summary,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Summary => "summary",
        }
    }
}

/// Label pairs of one sample.
pub type Labels<'a> = Vec<(&'a str, String)>;

/// One summary: quantile → value, plus sum and count.
pub struct SummarySample<'a> {
    pub labels: Labels<'a>,
    pub quantiles: Vec<(&'static str, f64)>,
    pub sum: f64,
    pub count: f64,
}

/// A document being written: families in the order they are added.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// A gauge or counter family with its samples (none: the family is left out).
    pub fn family(&mut self, name: &str, kind: Kind, help: &str, samples: Vec<(Labels<'_>, f64)>) {
        if samples.is_empty() {
            return;
        }
        self.header(name, kind, help);
        for (labels, value) in samples {
            self.sample(name, &labels, value);
        }
    }

    /// A summary family: `name{quantile="0.5",...}`, `name_sum`, `name_count`.
    pub fn summary(&mut self, name: &str, help: &str, samples: Vec<SummarySample<'_>>) {
        if samples.is_empty() {
            return;
        }
        self.header(name, Kind::Summary, help);
        for s in samples {
            for (q, value) in &s.quantiles {
                let mut labels = s.labels.clone();
                labels.push(("quantile", (*q).to_string()));
                self.sample(name, &labels, *value);
            }
            self.sample(&format!("{name}_sum"), &s.labels, s.sum);
            self.sample(&format!("{name}_count"), &s.labels, s.count);
        }
    }

    fn header(&mut self, name: &str, kind: Kind, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.name());
    }

    fn sample(&mut self, name: &str, labels: &[(&str, String)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            let pairs: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.text, "{{{}}}", pairs.join(","));
        }
        let _ = writeln!(self.text, " {}", number(value));
    }

    pub fn into_string(self) -> String {
        self.text
    }
}

/// A label value as the format quotes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: integers without a fraction, NaN and infinities spelled out.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// 1.0 for true, 0.0 for false.
pub fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Milliseconds as seconds, the base unit.
pub fn seconds(ms: f64) -> f64 {
    ms / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_type_and_escaped_labels() {
        let mut e = Exposition::new();
        e.family(
            "o2o_db_x",
            Kind::Gauge,
            "An x.",
            vec![
                (vec![("index", "a\"b\\c\nd".to_string())], 0.5),
                (vec![], 3.0),
            ],
        );
        e.family("o2o_db_empty", Kind::Gauge, "Left out.", vec![]);
        e.summary(
            "o2o_db_latency_seconds",
            "Latency.",
            vec![SummarySample {
                labels: vec![("query", "q".into())],
                quantiles: vec![("0.5", 0.001), ("0.99", f64::NAN)],
                sum: 0.25,
                count: 20.0,
            }],
        );
        assert_eq!(
            e.into_string(),
            "# HELP o2o_db_x An x.\n# TYPE o2o_db_x gauge\n\
             o2o_db_x{index=\"a\\\"b\\\\c\\nd\"} 0.5\no2o_db_x 3\n\
             # HELP o2o_db_latency_seconds Latency.\n# TYPE o2o_db_latency_seconds summary\n\
             o2o_db_latency_seconds{query=\"q\",quantile=\"0.5\"} 0.001\n\
             o2o_db_latency_seconds{query=\"q\",quantile=\"0.99\"} NaN\n\
             o2o_db_latency_seconds_sum{query=\"q\"} 0.25\n\
             o2o_db_latency_seconds_count{query=\"q\"} 20\n"
        );
    }
}
