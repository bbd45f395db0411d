//! A small or read-only filesystem for a test, and directory snapshots.
//!
//! [`on_small_fs`] mounts a fresh tmpfs: directly as root, or else inside a
//! private mount namespace (`unshare --user --map-root-user --mount`) in
//! which this test binary runs the test again, `boxhook` processes
//! included. When neither is possible the test is skipped with a message
//! on stderr saying why; it never passes silently.

#![allow(dead_code, unreachable_pub)] // Reason: each test file uses a subset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Names the mounted directory in a test binary re-run inside `unshare`.
const SMALL_FS_ENV: &str = "BOXHOOK_CLI_TEST_SMALL_FS_DIR";

/// A fresh directory under the temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "boxhook-cli-{name}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `body` with a directory on a fresh tmpfs of `size` (e.g. `"2m"`).
///
/// As root: `mount -t tmpfs`, unmounted (also when `body` panics) and
/// removed afterwards. Otherwise, or when that mount is refused: runs
/// `test` of this binary again inside `unshare --user --map-root-user
/// --mount`, after a shell mounts the tmpfs there (the mount ends with the
/// namespace), and fails when that run fails.
pub fn on_small_fs(test: &str, size: &str, body: impl FnOnce(&Path)) {
    if let Some(dir) = std::env::var_os(SMALL_FS_ENV) {
        body(Path::new(&dir));
        return;
    }
    let dir = TempDir::new(&format!("tmpfs-{test}"));
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .stderr(Stdio::piped())
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
    let script = r#"mount -t tmpfs -o size="$1" tmpfs "$2" || exit 97; shift 2; [ "$#" -eq 0 ] || exec "$@""#;
    let unshare = || {
        let mut command = Command::new("unshare");
        command
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
            .arg(dir.path());
        command
    };
    // A probe first: a refused namespace is a skip; a failing re-run fails.
    match unshare().stderr(Stdio::piped()).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return skip(test, &as_root, String::from_utf8_lossy(&out.stderr).trim());
        }
        Err(err) => return skip(test, &as_root, &format!("cannot run unshare: {err}")),
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let status = unshare()
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(SMALL_FS_ENV, dir.path())
        .status()
        .expect("run the test inside unshare");
    assert!(status.success(), "{test} failed inside unshare: {status}");
}

fn skip(test: &str, as_root: &str, with_unshare: &str) {
    eprintln!(
        "SKIPPED {test}: cannot mount a small tmpfs to run it on: `mount -t tmpfs` said \
         {as_root:?} and `unshare --user --map-root-user --mount` said {with_unshare:?}; run the \
         tests as root or allow unprivileged user namespaces"
    );
}

/// Unmounts a directory when dropped (lazily if it is still busy).
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let umount = |args: &[&str]| {
            Command::new("umount")
                .args(args)
                .arg(&self.0)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !umount(&[]) && !umount(&["-l"]) {
            eprintln!("could not unmount {}", self.0.display());
        }
    }
}

/// Remounts the tmpfs at `dir` read-only (as root, or inside the namespace
/// of [`on_small_fs`]; there mount(8) needs the `-t tmpfs ... tmpfs` form).
pub fn remount_read_only(dir: &Path) {
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "remount,ro", "tmpfs"])
        .arg(dir)
        .status()
        .expect("run mount");
    assert!(status.success(), "remount {} read-only", dir.display());
}

/// Whether this process runs as root (file permission bits do not bind it).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// Every entry in `dir` with its bytes (`<dir>` for a directory).
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let bytes = if path.is_file() {
                std::fs::read(&path).expect("read file")
            } else {
                b"<dir>".to_vec()
            };
            (path, bytes)
        })
        .collect()
}
