//! The demo's managed-webhook step: a fake Box API in process, a declared
//! webhook applied to it, Box's `auto_cleanup` removing it, and the
//! receiver putting it back when `WEBHOOK.DELETED` arrives.

use std::time::Duration;

use boxhook::verify::DEFAULT_BODY_LIMIT;
use boxhook::Router;
use boxhook_admin::fake::{FakeBoxApi, FAKE_ACCESS_TOKEN};
use boxhook_admin::{ensure, BoxClient, Credentials, DesiredState, Recreate, RetryPolicy};
use boxhook_core::KeyRing;
use boxhook_testkit::{RetrySchedule, Simulator};
use tokio::net::TcpListener;

use crate::serve::{serve, App, DEFAULT_BODY_BUDGET};

const TARGET: &str = "folder:218730924451";

const DESIRED: &str = r#"
[[webhook]]
target = "folder:218730924451"
address = "https://hooks.example.com/box"
triggers = ["FILE.UPLOADED", "FILE.TRASHED"]
"#;

/// Runs the step as number `n`, signing with `ring`; whether it went as it
/// must.
pub(crate) async fn run_step(n: usize, ring: &KeyRing) -> anyhow::Result<bool> {
    println!("{n}. Box deletes a managed webhook (auto_cleanup); the receiver re-creates it");
    let api = FakeBoxApi::start().await?;
    let client = BoxClient::builder(Credentials::AccessToken(FAKE_ACCESS_TOKEN.into()))
        .api_base(api.uri())
        .retry(RetryPolicy::none())
        .build()?;
    let desired = DesiredState::parse(DESIRED)?;
    let Some(declared) = desired.webhooks().first() else {
        anyhow::bail!("the demo's desired state is empty");
    };
    let old = ensure(&client, declared).await?.id().to_owned();
    println!("   fake Box API: {} (in process)", api.uri());
    println!("   applied:  {TARGET} -> webhook {old}");
    api.auto_cleanup(&old);
    println!(
        "   Box:      auto_cleanup removes webhook {old}; {} left",
        api.webhooks().len()
    );

    let recreate = Recreate::new(client, desired);
    let router = Router::new().on_webhook_deleted(recreate.clone());
    let app = App::with_router(
        ring.clone(),
        router,
        "/",
        DEFAULT_BODY_LIMIT,
        DEFAULT_BODY_BUDGET,
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        app,
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    let simulator = Simulator::builder(format!("http://{addr}/").parse()?, ring.clone())
        .schedule(RetrySchedule::none())
        .timeout(Duration::from_secs(10))
        .build();
    let body = format!(
        r#"{{"type":"webhook_event","id":"demo-deleted-{old}","created_at":"2026-11-30T03:00:12-07:00","trigger":"WEBHOOK.DELETED","webhook":{{"id":"{old}","type":"webhook"}},"source":{{"id":"218730924451","type":"folder"}},"additional_info":{{"reason":"auto_cleanup"}}}}"#
    );
    println!("   sent:     WEBHOOK.DELETED for webhook {old}, reason auto_cleanup");
    let report = simulator.send_body(body).await;
    let _ = stop.send(());
    server.await?;
    let status = report
        .last()
        .and_then(boxhook_testkit::Attempt::status)
        .map(|s| s.as_u16());
    let back: Vec<_> = api
        .webhooks()
        .into_iter()
        .filter(|w| w.target() == TARGET)
        .collect();
    println!(
        "   answer:   {}",
        status.map_or_else(|| "no answer".to_owned(), |s| s.to_string())
    );
    let ok = status == Some(200)
        && back.len() == 1
        && back
            .first()
            .is_some_and(|w| w.id != old && w.triggers == ["FILE.UPLOADED", "FILE.TRASHED"]);
    match back.first() {
        Some(w) => println!(
            "   now:      {TARGET} -> webhook {} ({}), re-created through the API [{}]",
            w.id,
            w.triggers.join(","),
            recreate.stats()
        ),
        None => println!("   now:      no webhook on {TARGET}"),
    }
    println!(
        "{}",
        if ok {
            "   ok\n"
        } else {
            "   UNEXPECTED: wanted 200 and the webhook back\n"
        }
    );
    Ok(ok)
}
