//! Many slow clients at once (benches/load/memory.sh): each opens a
//! connection to a loopback server, sends a POST declaring a body of
//! `--body-bytes`, then the body in `--chunk`-byte pieces every
//! `--interval-ms`, and reads the answer. Stops by itself after
//! `--for-seconds`, answered or not.
//!
//! ```text
//! slow_clients --connect 127.0.0.1:8080 --connections 1000 \
//!     --body-bytes 1048576 --chunk 65536 --interval-ms 500 --for-seconds 30
//! ```
//!
//! Each request looks like a fresh Box delivery (current timestamp, version,
//! algorithm, a well-formed signature) whose signature matches nothing: no
//! header check can turn it away early, the verify layer must buffer the
//! whole body before it can check the signature, which is exactly the cost
//! measured. Prints how the connections ended.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use boxhook_core::DeliveryTimestamp;
use chrono::Utc;
use clap::Parser;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Opens many connections that each send one large body slowly.
#[derive(Parser, Debug)]
struct Cli {
    /// The server; must be a loopback address.
    #[arg(long)]
    connect: SocketAddr,
    /// Concurrent connections.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Declared and sent body size.
    #[arg(long, default_value_t = 1024 * 1024)]
    body_bytes: usize,
    /// Bytes per write.
    #[arg(long, default_value_t = 64 * 1024)]
    chunk: usize,
    /// Pause between writes.
    #[arg(long, default_value_t = 500)]
    interval_ms: u64,
    /// Give up on everything after this long.
    #[arg(long, default_value_t = 30)]
    for_seconds: u64,
}

/// A well-formed signature that matches nothing: the server can only find
/// out after buffering the whole body.
const SIGNATURE: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// How one connection ended.
async fn one(cli: Arc<Cli>, body: Arc<Vec<u8>>, timestamp: Arc<DeliveryTimestamp>) -> String {
    let mut stream = match TcpStream::connect(cli.connect).await {
        Ok(stream) => stream,
        Err(err) => return format!("connect failed: {}", err.kind()),
    };
    let head = format!(
        "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json; charset=UTF-8\r\n\
         box-delivery-id: slow-client\r\nbox-delivery-timestamp: {}\r\n\
         box-signature-primary: {SIGNATURE}\r\n\
         box-signature-version: 1\r\nbox-signature-algorithm: HmacSHA256\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        cli.connect,
        timestamp.as_str(),
        body.len()
    );
    if let Err(err) = stream.write_all(head.as_bytes()).await {
        return format!("write failed: {}", err.kind());
    }
    for piece in body.chunks(cli.chunk.max(1)) {
        tokio::time::sleep(Duration::from_millis(cli.interval_ms)).await;
        if let Err(err) = stream.write_all(piece).await {
            return format!("write failed: {}", err.kind());
        }
    }
    let mut answer = [0u8; 12];
    match stream.read_exact(&mut answer).await {
        Ok(_) => format!("answered {}", String::from_utf8_lossy(&answer[9..12])),
        Err(err) => format!("read failed: {}", err.kind()),
    }
}

fn main() -> std::io::Result<()> {
    let cli = Arc::new(Cli::parse());
    if !cli.connect.ip().is_loopback() {
        return Err(std::io::Error::other("loopback servers only"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let body = Arc::new(vec![b'x'; cli.body_bytes]);
    let timestamp = Arc::new(DeliveryTimestamp::from_utc(Utc::now()));
    let ended = runtime.block_on(async {
        let tasks: Vec<_> = (0..cli.connections)
            .map(|_| {
                tokio::spawn(one(
                    Arc::clone(&cli),
                    Arc::clone(&body),
                    Arc::clone(&timestamp),
                ))
            })
            .collect();
        let mut ended = BTreeMap::<String, usize>::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(cli.for_seconds);
        for task in tasks {
            let how = match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(how)) => how,
                Ok(Err(_)) => "client task failed".to_owned(),
                Err(_) => "still running at the deadline".to_owned(),
            };
            *ended.entry(how).or_default() += 1;
        }
        ended
    });
    runtime.shutdown_background();
    for (how, count) in ended {
        println!("slow_clients: {count} {how}");
    }
    Ok(())
}
