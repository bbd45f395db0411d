//! Shared test helpers: temporary files, event bodies, times.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a different subset"
)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "boxhook-sqlite-{name}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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
