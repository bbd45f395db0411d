//! Writes freshly signed Box deliveries for the load and peer benchmarks,
//! signed by the core's `Signer` with the sample keys, timestamped a few
//! seconds before now (run it right before the measurement: deliveries
//! expire after 10 minutes).
//!
//! ```text
//! # N deliveries of one FILE.UPLOADED shape, each with its own event id
//! # (every one is a new event), for benches/load/deliveries.lua:
//! #   one file per wrk thread, each request as "LENGTH\n" + the request
//! sign_corpus load --count 300000 --size 3072 --threads 2 --out target/load/corpus
//!
//! # One delivery per size, as JSON lines, for benches/peers:
//! #   {"size", "body", "headers": {lower-case name: value}, "primary_key", "secondary_key"}
//! sign_corpus peers --sizes 1024,8192 --out target/peers/corpus.jsonl
//! ```

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use boxhook_benches::{file_uploaded, keys, Encoding, PRIMARY_KEY, SECONDARY_KEY};
use boxhook_core::{DeliveryTimestamp, Signer};
use chrono::{FixedOffset, TimeDelta, Utc};
use clap::{Parser, Subcommand};

/// The event id `file_uploaded` writes; each load delivery replaces it with
/// its own id of the same length, so the body keeps its exact size.
const TEMPLATE_EVENT_ID: &str = "f8a3c7e2-7b1d-4c5e-9f2a-3d6e8b1c0a94";

/// Writes signed deliveries for the load and peer benchmarks.
#[derive(Parser, Debug)]
struct Cli {
    #[command(subcommand)]
    corpus: Corpus,
}

#[derive(Subcommand, Debug)]
enum Corpus {
    /// Ready-made HTTP/1.1 requests for wrk, one new event each, dealt
    /// round-robin into `OUT.0` … `OUT.{threads-1}` (one file per wrk
    /// thread); each request is its length in bytes, a newline, and the
    /// request, so wrk's Lua reads them without parsing.
    Load {
        /// How many deliveries.
        #[arg(long, default_value_t = 300_000)]
        count: u64,
        /// Body size in bytes (a FILE.UPLOADED event in Box's wire form).
        #[arg(long, default_value_t = 3072)]
        size: usize,
        /// How many files (wrk threads) to deal the requests into.
        #[arg(long, default_value_t = 1)]
        threads: u64,
        /// Output file prefix.
        #[arg(long)]
        out: PathBuf,
    },
    /// JSON lines, one delivery per body size, for the SDK comparison.
    Peers {
        /// Body sizes in bytes, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1024,8192")]
        sizes: Vec<usize>,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// A uuid-shaped id (36 characters), unique per `run` and `n`.
fn id(run: u32, kind: u16, n: u64) -> String {
    format!(
        "{run:08x}-{kind:04x}-4000-8000-{:012x}",
        n & 0xffff_ffff_ffff
    )
}

fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    // Box sends Pacific time; a few seconds old, so no verifier sees the
    // future even if its clock lags this one's by a little.
    let pacific = FixedOffset::west_opt(8 * 3600).expect("valid offset");
    let timestamp = DeliveryTimestamp::from_datetime(
        (Utc::now() - TimeDelta::seconds(5)).with_timezone(&pacific),
    );
    let run = u32::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() & 0xffff_ffff),
    )
    .unwrap_or_default();
    let signer = Signer::new(keys());
    match cli.corpus {
        Corpus::Load {
            count,
            size,
            threads,
            out,
        } => {
            let template = String::from_utf8(file_uploaded(size, Encoding::Wire))
                .expect("the wire form is ASCII");
            assert!(template.contains(TEMPLATE_EVENT_ID), "template event id");
            let threads = threads.max(1);
            let mut files = (0..threads)
                .map(|t| {
                    let mut name = out.clone().into_os_string();
                    name.push(format!(".{t}"));
                    File::create(name).map(BufWriter::new)
                })
                .collect::<std::io::Result<Vec<_>>>()?;
            for n in 0..count {
                let body = template.replacen(TEMPLATE_EVENT_ID, &id(run, 0xe, n), 1);
                let headers = signer.sign(body.as_bytes(), &timestamp, &id(run, 0xd, n));
                // The headers wrk.format would write (Host included: the
                // servers ignore it) for the load's POST.
                let request = format!(
                    "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nBOX-DELIVERY-ID: {}\r\n\
                     BOX-DELIVERY-TIMESTAMP: {}\r\nBOX-SIGNATURE-PRIMARY: {}\r\n\
                     BOX-SIGNATURE-SECONDARY: {}\r\nBOX-SIGNATURE-VERSION: 1\r\n\
                     BOX-SIGNATURE-ALGORITHM: HmacSHA256\r\n\
                     Content-Type: application/json; charset=UTF-8\r\n\
                     User-Agent: Box-WH-Client/0.1\r\nContent-Length: {}\r\n\r\n{body}",
                    headers.delivery_id(),
                    headers.timestamp(),
                    headers.primary().expect("primary key set"),
                    headers.secondary().expect("secondary key set"),
                    body.len(),
                );
                let file = usize::try_from(n % threads)
                    .ok()
                    .and_then(|t| files.get_mut(t))
                    .expect("one file per thread");
                write!(file, "{}\n{request}", request.len())?;
            }
            for file in &mut files {
                file.flush()?;
            }
            eprintln!(
                "sign_corpus: {count} deliveries of {size} bytes, timestamp {}, in {}.0-{}",
                timestamp.as_str(),
                out.display(),
                threads.saturating_sub(1)
            );
        }
        Corpus::Peers { sizes, out } => {
            let mut file = BufWriter::new(File::create(&out)?);
            for (n, size) in sizes.iter().copied().enumerate() {
                let body = String::from_utf8(file_uploaded(size, Encoding::Wire))
                    .expect("the wire form is ASCII");
                let box_headers = signer.sign(body.as_bytes(), &timestamp, &id(run, 0xd, n as u64));
                let headers: serde_json::Map<String, serde_json::Value> = box_headers
                    .iter()
                    .map(|(name, value)| (name.to_owned(), value.into()))
                    .collect();
                let line = serde_json::json!({
                    "size": size,
                    "body": body,
                    "headers": headers,
                    "primary_key": PRIMARY_KEY,
                    "secondary_key": SECONDARY_KEY,
                });
                writeln!(file, "{line}")?;
            }
            file.flush()?;
            eprintln!(
                "sign_corpus: {} deliveries (sizes {sizes:?}), timestamp {}, in {}",
                sizes.len(),
                timestamp.as_str(),
                out.display()
            );
        }
    }
    Ok(())
}
