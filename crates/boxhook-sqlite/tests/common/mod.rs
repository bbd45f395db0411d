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

/// The environment variable naming the small filesystem's directory in a
/// test binary re-run inside `unshare` (see [`on_small_fs`]).
const SMALL_FS_ENV: &str = "BOXHOOK_TEST_SMALL_FS_DIR";

/// Runs `body` with a directory on a fresh tmpfs of `size` (e.g. `"2m"`),
/// so that a test can really fill a filesystem or make it read-only.
///
/// As root: `mount -t tmpfs`, unmounted (even when `body` panics) and
/// removed afterwards. Otherwise, or when that mount is refused: this test
/// binary runs `test` again inside `unshare --user --map-root-user --mount`,
/// after a shell mounts the tmpfs in that private mount namespace (it goes
/// away with the namespace), and fails when the re-run fails. When neither
/// works, the test is skipped with a message on stderr saying why; it never
/// passes silently.
pub fn on_small_fs(test: &str, size: &str, body: impl FnOnce(&Path)) {
    if let Some(dir) = std::env::var_os(SMALL_FS_ENV) {
        body(Path::new(&dir));
        return;
    }
    let dir = TempDir::new(&format!("tmpfs-{test}"));
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .stderr(std::process::Stdio::piped())
        .output();
    let as_root = match mounted {
        Ok(out) if out.status.success() => {
            let guard = Unmount(dir.path().to_owned());
            body(dir.path());
            drop(guard);
            return;
        }
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        Err(err) => format!("cannot run mount: {err}"),
    };
    // A probe first, so that a refused namespace is a skip, and a failure
    // of the re-run is a test failure.
    let script = r#"mount -t tmpfs -o size="$1" tmpfs "$2" || exit 97; shift 2; [ "$#" -eq 0 ] || exec "$@""#;
    let probe = std::process::Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
            size,
        ])
        .arg(dir.path())
        .stderr(std::process::Stdio::piped())
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            skip(test, &as_root, String::from_utf8_lossy(&out.stderr).trim());
            return;
        }
        Err(err) => {
            skip(test, &as_root, &format!("cannot run unshare: {err}"));
            return;
        }
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let status = std::process::Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
            size,
        ])
        .arg(dir.path())
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(SMALL_FS_ENV, dir.path())
        .status()
        .expect("run the test inside unshare");
    assert!(status.success(), "{test} failed inside unshare: {status}");
}

fn skip(test: &str, as_root: &str, with_unshare: &str) {
    eprintln!(
        "SKIPPED {test}: cannot mount a small tmpfs to run it on: `mount -t tmpfs` said {as_root:?} \
         and `unshare --user --map-root-user --mount` said {with_unshare:?}; run the tests as root \
         or allow unprivileged user namespaces"
    );
}

/// Unmounts a directory when dropped.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let lazy_if_busy = |args: &[&str]| {
            std::process::Command::new("umount")
                .args(args)
                .arg(&self.0)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !lazy_if_busy(&[]) && !lazy_if_busy(&["-l"]) {
            eprintln!("could not unmount {}", self.0.display());
        }
    }
}

/// Remounts the tmpfs at `dir` read-only (root, or inside the namespace of
/// [`on_small_fs`]).
pub fn remount_read_only(dir: &Path) {
    let status = std::process::Command::new("mount")
        // `-t tmpfs ... tmpfs`: inside a user namespace, mount(8) refuses
        // the shorter `mount -o remount,ro DIR`.
        .args(["-t", "tmpfs", "-o", "remount,ro", "tmpfs"])
        .arg(dir)
        .status()
        .expect("run mount");
    assert!(status.success(), "remount {} read-only", dir.display());
}

/// Whether this process runs as root (file permission bits do not bind it).
#[cfg(unix)]
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
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
