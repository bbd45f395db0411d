//! The demo's V1 step: a root-folder callback, unsigned, authenticated by
//! the secret in its URL, stored as kind `v1`.

use std::net::SocketAddr;
use std::time::Duration;

use boxhook::v1::{V1Auth, V1Router, V1Service};
use boxhook_store::sqlite::SqliteInbox;

use crate::logging::DeliveryLog;

/// The path the demo's receiver takes V1 callbacks on.
pub(crate) const PATH: &str = "/v1";

/// The V1 path and service for the demo's receiver, with `secret`.
pub(crate) fn service(secret: &str, inbox: &SqliteInbox) -> anyhow::Result<(String, V1Service)> {
    let auth = V1Auth::secret("token", secret)?;
    Ok((
        PATH.to_owned(),
        V1Service::new(auth, V1Router::new().store_in(inbox.clone())),
    ))
}

/// Sends one V1 callback, as `boxhook send --v1` does, and prints the step
/// like the others. `last` returns the receiver's log of the last V1
/// request. `Some(id)` when it was stored as expected.
pub(crate) async fn step(
    n: usize,
    addr: SocketAddr,
    secret: &str,
    last: impl Fn() -> Option<DeliveryLog>,
) -> anyhow::Result<Option<String>> {
    println!("{n}. a V1 callback for the root folder (GET, unsigned, the secret in its URL)");
    let url = crate::send_v1::fill(
        &format!(
            "http://{addr}{PATH}?token={secret}&event_type=#event_type#&item_id=#item_id#\
             &item_name=#item_name#&item_type=#item_type#"
        ),
        "uploaded",
        &[],
    )?;
    println!("   sent:     uploaded, item 123456789 (Q1 report.pdf), no event id");
    let uri = url.parse()?;
    let status = tokio::task::spawn_blocking(move || {
        crate::send_v1::send(&uri, false, Duration::from_secs(10))
    })
    .await??;
    let log = last();
    let outcome = log.as_ref().map_or("-", |l| l.outcome);
    let id = log
        .as_ref()
        .and_then(|l| l.v1.as_ref())
        .map(|v1| v1.id.clone());
    println!("   answer:   {status}, {outcome}");
    println!(
        "   note:     stored as kind v1 under its own id {}: V1 has no event id and no \
         retries, so nothing is deduplicated",
        id.as_deref().unwrap_or("-")
    );
    if status == 200 && outcome == "handled" && id.is_some() {
        println!("   ok\n");
        Ok(id)
    } else {
        println!("   UNEXPECTED: wanted 200 handled\n");
        Ok(None)
    }
}
