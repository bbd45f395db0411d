//! Hot key rotation: the server re-reads its keys on SIGHUP-like demand
//! (here: every time the file `boxhook-keys.txt` changes) without a restart
//! or a lost request, and logs which key deliveries match so you know when
//! the old key is unused (see "The signed bytes" in docs/PROTOCOL.md).
//!
//! `boxhook-keys.txt` holds two lines: the primary key, then the secondary
//! key (an empty line for an empty slot).
//!
//! ```text
//! printf 'old-primary\nnew-secondary\n' > boxhook-keys.txt
//! cargo run -p boxhook-examples --example key_rotation
//! ```

use std::time::{Duration, SystemTime};

use boxhook::{
    DeliveryContext, HandlerError, KeyError, KeyRing, Layer as _, Router, SharedKeyRing, Verifier,
    VerifyLayer, WebhookEvent,
};

const KEY_FILE: &str = "boxhook-keys.txt";

fn read_keys() -> Result<KeyRing, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(KEY_FILE)?;
    parse_keys(&text).map_err(Into::into)
}

fn parse_keys(text: &str) -> Result<KeyRing, KeyError> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .map(|l| (!l.is_empty()).then_some(l));
    KeyRing::from_strs(lines.next().flatten(), lines.next().flatten())
}

async fn report_key(event: WebhookEvent, ctx: DeliveryContext) -> Result<(), HandlerError> {
    println!("{} matched the {} key", event.id(), ctx.key_slot());
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    boxhook_examples::init_logging();
    let keys = SharedKeyRing::new(read_keys()?);

    // Watch the key file; replace the ring in place when it changes. A
    // delivery already being verified keeps the ring it loaded.
    let watched = keys.clone();
    tokio::spawn(async move {
        let mut seen = modified();
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = modified();
            if now == seen {
                continue;
            }
            seen = now;
            match read_keys() {
                Ok(ring) => {
                    watched.replace(ring);
                    eprintln!("keys reloaded from {KEY_FILE}");
                }
                Err(error) => eprintln!("keeping the old keys: {KEY_FILE}: {error}"),
            }
        }
    });

    let service = VerifyLayer::new(Verifier::new(keys)).layer(Router::new().fallback(report_key));
    boxhook_examples::serve("127.0.0.1:8080".parse()?, service).await?;
    Ok(())
}

fn modified() -> Option<SystemTime> {
    std::fs::metadata(KEY_FILE).and_then(|m| m.modified()).ok()
}
