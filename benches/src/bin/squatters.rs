//! Connection squatting against `boxhook serve` (benches/load/squat.sh):
//! `--junk` keep-alive connections each sending `GET / HTTP/1.1` every
//! `--junk-interval-ms` (reconnecting when the server closes them), plus
//! `--silent` connections that send nothing, while a real signed delivery
//! is sent every `--probe-interval-ms` on a fresh connection and timed.
//! Stops by itself after `--for-seconds`.
//!
//! ```text
//! squatters --connect 127.0.0.1:8080 --junk 1024 --silent 2000 --for-seconds 30
//! ```
//!
//! Prints each probe's status and latency, then the slowest, and how many
//! junk answers and reconnects the squatters got.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxhook_core::{DeliveryTimestamp, KeyRing, Signer};
use chrono::Utc;
use clap::Parser;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Squats on a server's connections and times real deliveries meanwhile.
#[derive(Parser, Debug)]
struct Cli {
    /// The server; must be a loopback address.
    #[arg(long)]
    connect: SocketAddr,
    /// Keep-alive connections sending junk `GET /` requests.
    #[arg(long, default_value_t = 1024)]
    junk: usize,
    /// How often each junk connection sends a request.
    #[arg(long, default_value_t = 20_000)]
    junk_interval_ms: u64,
    /// Connections that connect and send nothing.
    #[arg(long, default_value_t = 0)]
    silent: usize,
    /// How often a real delivery is sent.
    #[arg(long, default_value_t = 1_000)]
    probe_interval_ms: u64,
    /// The primary key the server verifies with.
    #[arg(long, default_value = "SamplePrimaryKey")]
    primary_key: String,
    /// How long to run.
    #[arg(long, default_value_t = 30)]
    for_seconds: u64,
}

#[derive(Default)]
struct Counts {
    junk_answers: AtomicU64,
    reconnects: AtomicU64,
}

/// One junk client: keep a connection, send a GET every interval, reconnect
/// when the server closes it.
async fn junk(cli: Arc<Cli>, counts: Arc<Counts>, first: bool) {
    let request = format!("GET / HTTP/1.1\r\nhost: {}\r\n\r\n", cli.connect);
    let mut fresh = first;
    loop {
        let Ok(mut stream) = TcpStream::connect(cli.connect).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if !fresh {
            counts.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        fresh = false;
        let mut buf = [0u8; 1024];
        loop {
            if stream.write_all(request.as_bytes()).await.is_err() {
                break;
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    counts.junk_answers.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(Duration::from_millis(cli.junk_interval_ms)).await;
        }
    }
}

/// One real delivery on a fresh connection: its status and latency.
async fn probe(cli: &Cli, signer: &Signer, n: usize) -> (String, Duration) {
    let body = format!(
        r#"{{"type":"webhook_event","id":"probe-{n}-{}","trigger":"FILE.UPLOADED","webhook":{{"id":"4133"}},"source":{{"id":"1","type":"file"}}}}"#,
        std::process::id()
    );
    let headers = signer.sign(
        body.as_bytes(),
        &DeliveryTimestamp::from_utc(Utc::now()),
        &format!("probe-{n}"),
    );
    let mut head = format!(
        "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n",
        cli.connect
    );
    for (name, value) in headers.iter() {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let _ = write!(
        head,
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let started = Instant::now();
    let answer = async {
        let mut stream = TcpStream::connect(cli.connect).await?;
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        let mut status = [0u8; 12];
        stream.read_exact(&mut status).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&status[9..12]).into_owned())
    };
    let status = match tokio::time::timeout(Duration::from_secs(60), answer).await {
        Ok(Ok(status)) => status,
        Ok(Err(err)) => format!("error {}", err.kind()),
        Err(_) => "no answer in 60 s".to_owned(),
    };
    (status, started.elapsed())
}

fn main() -> anyhow_free::Result {
    let cli = Arc::new(Cli::parse());
    if !cli.connect.ip().is_loopback() {
        return Err("loopback servers only".into());
    }
    let keys = KeyRing::from_strs(Some(&cli.primary_key), None).map_err(|e| e.to_string())?;
    let signer = Signer::new(keys);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let counts = Arc::new(Counts::default());
    let probes = runtime.block_on(async {
        let mut silent = Vec::with_capacity(cli.silent);
        for _ in 0..cli.junk {
            tokio::spawn(junk(Arc::clone(&cli), Arc::clone(&counts), true));
        }
        // Let the junk connections take their slots first.
        tokio::time::sleep(Duration::from_secs(2)).await;
        for _ in 0..cli.silent {
            if let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(cli.connect))
                    .await
            {
                silent.push(stream);
            }
        }
        println!(
            "squatters: {} junk, {} silent connected",
            cli.junk,
            silent.len()
        );
        let deadline = Instant::now() + Duration::from_secs(cli.for_seconds);
        let mut probes = Vec::new();
        let mut n = 0;
        while Instant::now() < deadline {
            let (status, took) = probe(&cli, &signer, n).await;
            println!("probe {n}: {status} in {} ms", took.as_millis());
            probes.push((status, took));
            n += 1;
            tokio::time::sleep(Duration::from_millis(cli.probe_interval_ms)).await;
        }
        drop(silent);
        probes
    });
    runtime.shutdown_background();
    let slowest = probes.iter().map(|(_, t)| *t).max().unwrap_or_default();
    let ok = probes.iter().filter(|(s, _)| s == "200").count();
    println!(
        "squatters: {ok} of {} probes answered 200, slowest {} ms; junk answers {}, reconnects {}",
        probes.len(),
        slowest.as_millis(),
        counts.junk_answers.load(Ordering::Relaxed),
        counts.reconnects.load(Ordering::Relaxed)
    );
    Ok(())
}

/// A `main` result whose error prints as plain text.
mod anyhow_free {
    /// `Ok(())` or a message.
    pub(crate) type Result = std::result::Result<(), Message>;

    /// An error message, printed as it is.
    pub(crate) struct Message(String);

    impl std::fmt::Debug for Message {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl From<String> for Message {
        fn from(message: String) -> Self {
            Self(message)
        }
    }

    impl From<&str> for Message {
        fn from(message: &str) -> Self {
            Self(message.to_owned())
        }
    }
}
