//! The baseline of the loopback load test: a bare hyper server that reads
//! each request's body to the end and answers `200` with an empty body.
//!
//! Same runtime, accept loop and HTTP/1 settings as `boxhook_server`; only
//! the per-request work differs.
//!
//! ```text
//! bare_server --listen 127.0.0.1:0 --for-seconds 15
//! ```

mod common;

use bytes::Bytes;
use clap::Parser;
use http::{Response, StatusCode};
use http_body_util::{BodyExt as _, Full};

/// A bare hyper server answering 200 to any request, once its body is read.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    server: common::ServerArgs,
}

fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    common::serve("bare_server", &cli.server, |request| async move {
        // Read the body as boxhook must, so both servers move the same bytes.
        let status = match request.into_body().collect().await {
            Ok(body) => {
                std::hint::black_box(body.to_bytes());
                StatusCode::OK
            }
            Err(_) => StatusCode::BAD_REQUEST,
        };
        let mut response = Response::new(Full::<Bytes>::default());
        *response.status_mut() = status;
        response
    })
}
