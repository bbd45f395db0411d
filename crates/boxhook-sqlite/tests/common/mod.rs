//! Shared test helpers: temporary files, event bodies, times.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    reason = "each test binary uses a different subset"
)]

use chrono::{DateTime, TimeDelta, Utc};

pub use boxhook_testkit::fs::{is_root, on_small_fs, remount_read_only, snapshot, TempDir};

/// `t(0)` is a fixed instant; `t(s)` is `s` seconds after it.
pub fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).expect("in range") + TimeDelta::seconds(seconds)
}

/// A compact `webhook_event` body in Box's wire form, with escapes.
pub fn event(webhook_id: &str, id: &str, trigger: &str) -> String {
    format!(
        r#"{{"type":"webhook_event","id":"{id}","created_at":"2023-11-14T14:13:20-08:00","trigger":"{trigger}","webhook":{{"id":"{webhook_id}","type":"webhook"}},"created_by":{{"type":"user","id":"22","name":"Ann","login":"ann@example.com"}},"source":{{"id":"1234567890","type":"file","name":"Q1\/r\u00e9port.pdf"}},"additional_info":[]}}"#
    )
}

/// A distinct `webhook_event` of about `size` bytes: event `e-{n}` with a
/// long file name that varies with `n`.
pub fn big_event(n: u64, size: usize) -> String {
    let mut state = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let name: String = (0..size)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(b'a' + u8::try_from((state >> 59) % 26).unwrap_or(0))
        })
        .collect();
    format!(
        r#"{{"type":"webhook_event","id":"e-{n}","trigger":"FILE.UPLOADED","webhook":{{"id":"4133","type":"webhook"}},"source":{{"id":"f-{n}","type":"file","name":"{name}"}}}}"#
    )
}
