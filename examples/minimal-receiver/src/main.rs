//! `boxhook-minimal-receiver [--port PORT] [--once] [--for SECONDS]`: serves
//! Box deliveries on 127.0.0.1 with the keys in `BOX_PRIMARY_KEY` and
//! `BOX_SECONDARY_KEY`.

use std::process::ExitCode;

use boxhook::KeyRing;
use boxhook_minimal_receiver::{run, Options, PATH, USAGE};

#[tokio::main]
async fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(problem) => {
            eprintln!("{problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let keys = KeyRing::from_strs(
        std::env::var("BOX_PRIMARY_KEY").ok().as_deref(),
        std::env::var("BOX_SECONDARY_KEY").ok().as_deref(),
    )?;
    let listener = tokio::net::TcpListener::bind(options.addr()).await?;
    eprintln!("listening on http://{}{PATH}", listener.local_addr()?);
    let received = run(listener, keys, options.limits).await?;
    eprintln!("stopped after {} event(s)", received.len());
    Ok(())
}
