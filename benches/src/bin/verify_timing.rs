//! boxhook's side of the SDK comparison (benches/peers/run.sh): the time of
//! one `Verifier::verify` on each delivery of a `sign_corpus peers` file,
//! measured the way the Python and Node timers measure theirs — `repeat`
//! batches of `number` calls after a warm-up, reporting the median of the
//! per-call means — with the clock read on every call, as the SDKs do.
//!
//! ```text
//! verify_timing --corpus target/peers/corpus.jsonl --number 5000 --repeat 21
//! ```
//!
//! Prints one JSON line per delivery: `{"impl", "size", "median_ns", "min_ns", ...}`.

use std::hint::black_box;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::time::Instant;

use boxhook_core::{KeyRing, Verifier};
use chrono::Utc;
use clap::Parser;
use http::{HeaderMap, HeaderName, HeaderValue};

/// Times boxhook's verifier on a shared corpus.
#[derive(Parser, Debug)]
struct Cli {
    /// The corpus written by `sign_corpus peers`.
    #[arg(long)]
    corpus: PathBuf,
    /// Calls per batch.
    #[arg(long, default_value_t = 5000)]
    number: u32,
    /// Batches; the median batch is reported.
    #[arg(long, default_value_t = 21)]
    repeat: usize,
}

fn field<'a>(line: &'a serde_json::Value, name: &str) -> &'a str {
    line[name]
        .as_str()
        .unwrap_or_else(|| panic!("corpus line without a string {name:?}"))
}

fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    let file = std::io::BufReader::new(std::fs::File::open(&cli.corpus)?);
    for line in file.lines() {
        let line: serde_json::Value = serde_json::from_str(&line?)?;
        let body = field(&line, "body").as_bytes().to_vec();
        let keys = KeyRing::from_strs(
            Some(field(&line, "primary_key")),
            Some(field(&line, "secondary_key")),
        )
        .expect("non-empty keys");
        let mut headers = HeaderMap::new();
        for (name, value) in line["headers"].as_object().expect("a headers object") {
            headers.insert(
                HeaderName::try_from(name.as_str()).expect("a header name"),
                HeaderValue::from_str(value.as_str().expect("a string value"))
                    .expect("a header value"),
            );
        }
        let verifier = Verifier::new(keys);
        verifier
            .verify(&headers, &body, Utc::now())
            .expect("the corpus verifies (is it older than 10 minutes?)");

        let once = || {
            verifier
                .verify(black_box(&headers), black_box(&body), black_box(Utc::now()))
                .is_ok()
        };
        // Warm-up: one batch, not counted.
        for _ in 0..cli.number {
            assert!(once());
        }
        let mut per_call: Vec<f64> = (0..cli.repeat.max(1))
            .map(|_| {
                let started = Instant::now();
                for _ in 0..cli.number {
                    black_box(once());
                }
                started.elapsed().as_secs_f64() * 1e9 / f64::from(cli.number)
            })
            .collect();
        per_call.sort_by(f64::total_cmp);
        let result = serde_json::json!({
            "impl": "boxhook",
            "size": line["size"],
            "median_ns": per_call[per_call.len() / 2],
            "min_ns": per_call[0],
            "number": cli.number,
            "repeat": per_call.len(),
        });
        println!("{result}");
    }
    Ok(())
}
