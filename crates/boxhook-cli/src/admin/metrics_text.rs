//! Reads counters back out of the Prometheus text the recorder renders, so
//! the dashboard shows exactly the numbers `/metrics` shows.

use std::collections::BTreeMap;

/// One sample line: `name{label="value",…} number`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sample {
    pub(super) name: String,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) value: f64,
}

/// Every sample line of `text`; comments and lines that do not parse are
/// skipped.
pub(super) fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(sample)
        .collect()
}

fn sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    let (head, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match head.split_once('{') {
        Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)?),
        None => (head, BTreeMap::new()),
    };
    if name.is_empty() {
        return None;
    }
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `k="v",k2="v2"` with `\"`, `\\` and `\n` escapes in values.
fn labels(mut rest: &str) -> Option<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (at, c) = chars.next()?;
            match c {
                '"' => break at,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                other => value.push(other),
            }
        };
        map.insert(key.trim_start_matches(',').to_owned(), value);
        rest = after.get(end.saturating_add(1)..)?;
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Some(map)
}

/// The sum of `name`'s samples, grouped by the values of `label`.
pub(super) fn by_label(samples: &[Sample], name: &str, label: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.name == name) {
        if let Some(value) = sample.labels.get(label) {
            *out.entry(value.clone()).or_insert(0) += count(sample.value);
        }
    }
    out
}

/// A counter's value as a whole number (counters are whole and positive).
pub(super) fn count(value: f64) -> u64 {
    if value.is_finite() && value >= 0.0 {
        // Reason: a counter is a whole number far below 2^53.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = value.round() as u64;
        whole
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_labels_and_values() {
        let text = "# HELP boxhook_x x\n# TYPE boxhook_x counter\n\
                    boxhook_x{key=\"primary\",form=\"raw\"} 3\n\
                    boxhook_x{key=\"secondary\",form=\"raw\"} 1\n\
                    boxhook_x{key=\"primary\",form=\"escaped\"} 2\n\
                    boxhook_y 7\n\
                    boxhook_z{reason=\"a\\\"b\\\\c\\nd\"} 1\n\
                    not a sample\n";
        let samples = samples(text);
        assert_eq!(samples.len(), 5);
        let keys = by_label(&samples, "boxhook_x", "key");
        assert_eq!(keys.get("primary"), Some(&5));
        assert_eq!(keys.get("secondary"), Some(&1));
        let forms = by_label(&samples, "boxhook_x", "form");
        assert_eq!(forms.get("raw"), Some(&4));
        assert_eq!(forms.get("escaped"), Some(&2));
        assert!((samples[3].value - 7.0).abs() < f64::EPSILON);
        assert_eq!(samples[3].labels.len(), 0);
        let odd = by_label(&samples, "boxhook_z", "reason");
        assert_eq!(odd.keys().next().map(String::as_str), Some("a\"b\\c\nd"));
    }
}
