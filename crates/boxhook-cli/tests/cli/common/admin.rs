//! Talking to `serve --admin` and sending it deliveries, for the admin,
//! dashboard and replay tests.

use std::io::{BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use super::{exchange, raw_request, Server};

/// The admin address `serve` printed on stderr (`admin on http://ADDR/`).
pub fn admin_addr(server: &Server) -> String {
    let text = server.wait_for_stderr("admin on http://", Duration::from_secs(20));
    text.lines()
        .find_map(|l| l.strip_prefix("admin on http://"))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no admin address in {text:?}"))
        .to_owned()
}

/// A GET of `path` on `addr` with an optional Authorization header value:
/// the status, the head (lowercased) and the body.
pub fn get(addr: &str, path: &str, authorization: Option<&str>) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the admin listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let auth = authorization
        .map(|a| format!("authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}connection: close\r\n\r\n"
    )
    .expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// Posts `delivery` to the server's `/`; returns the status.
pub fn post(server: &Server, delivery: &boxhook_testkit::Delivery) -> u16 {
    let mut reader = BufReader::new(server.connect());
    let head = exchange(&mut reader, &raw_request(delivery)).expect("a response");
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A `webhook_event` body: `id`, `trigger`, webhook `w-1`, and
/// `additional_info`.
pub fn body(id: &str, trigger: &str, additional_info: &serde_json::Value) -> String {
    // Members in Box's order, as Box writes them (a diagnosis notices).
    format!(
        r#"{{"type":"webhook_event","id":"{id}","created_at":"2024-05-14T08:02:14-07:00","trigger":"{trigger}","webhook":{{"id":"w-1","type":"webhook"}},"source":{{"id":"f-1","type":"file","name":"a.txt"}},"additional_info":{additional_info}}}"#
    )
}

/// The deliveries that fill every card of the dashboard, with the status
/// each must get: two accepted FILE.UPLOADED, one matched by the secondary
/// key only, a duplicate, a `WEBHOOK.DELETED` (`auto_cleanup`), a
/// `NO_ACTIVE_SESSION`, one signed with other keys (mismatch) and one too old
/// (expired).
pub fn covering_deliveries() -> Vec<(&'static str, boxhook_testkit::Delivery, u16)> {
    use boxhook_testkit::Delivery;
    let now = chrono::Utc::now();
    let d = |body: String| Delivery::new(body).sent_at(now);
    let secondary_only = boxhook_core::KeyRing::from_strs(
        Some("an-old-primary-key"),
        Some(boxhook_testkit::SAMPLE_SECONDARY_KEY),
    )
    .expect("keys");
    let empty = serde_json::json!([]);
    vec![
        ("accepted", d(body("e-1", "FILE.UPLOADED", &empty)), 200),
        ("accepted", d(body("e-2", "FILE.UPLOADED", &empty)), 200),
        (
            "secondary key",
            d(body("e-3", "FILE.UPLOADED", &empty)).keys(secondary_only),
            200,
        ),
        ("duplicate", d(body("e-1", "FILE.UPLOADED", &empty)), 200),
        (
            "webhook deleted",
            d(body(
                "e-4",
                "WEBHOOK.DELETED",
                &serde_json::json!({"reason": "auto_cleanup"}),
            )),
            200,
        ),
        (
            "no active session",
            d(body("e-5", "NO_ACTIVE_SESSION", &empty)),
            200,
        ),
        (
            "mismatch",
            d(body("e-6", "FILE.UPLOADED", &empty)).wrong_key(),
            401,
        ),
        (
            "expired",
            d(body("e-7", "FILE.UPLOADED", &empty)).stale(),
            401,
        ),
    ]
}
