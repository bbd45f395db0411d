//! Real filesystems for tests: temporary directories, a small tmpfs to fill
//! up or make read-only, and directory snapshots to prove a command changed
//! nothing.
//!
//! [`on_small_fs`] mounts a fresh tmpfs: directly as root, or else inside a
//! private mount namespace (`unshare --user --map-root-user --mount`) in
//! which the calling test binary runs the test again, child processes
//! included. When neither is possible the test is skipped with a message on
//! stderr saying why; it never passes silently. Unix only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed when dropped.
///
/// ```
/// let dir = boxhook_testkit::fs::TempDir::new("doc");
/// std::fs::write(dir.file("a.txt"), b"a")?;
/// assert!(dir.path().join("a.txt").exists());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `boxhook-test-{name}-…`, unique per process and call.
    ///
    /// ```
    /// let (a, b) = (boxhook_testkit::fs::TempDir::new("x"), boxhook_testkit::fs::TempDir::new("x"));
    /// assert_ne!(a.path(), b.path());
    /// ```
    ///
    /// # Panics
    ///
    /// When the directory cannot be created.
    #[must_use]
    pub fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "boxhook-test-{name}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    /// The directory.
    ///
    /// ```
    /// assert!(boxhook_testkit::fs::TempDir::new("p").path().is_dir());
    /// ```
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `name` inside the directory.
    ///
    /// ```
    /// let dir = boxhook_testkit::fs::TempDir::new("f");
    /// assert_eq!(dir.file("inbox.sqlite"), dir.path().join("inbox.sqlite"));
    /// ```
    #[must_use]
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
/// passes silently. `test` must be the test function's name, as
/// `cargo test -- --exact` takes it.
///
/// ```no_run
/// #[test]
/// fn stores_fail_on_a_full_disk() {
///     boxhook_testkit::fs::on_small_fs("stores_fail_on_a_full_disk", "2m", |dir| {
///         // fill `dir` until writes fail ...
///         # let _ = dir;
///     });
/// }
/// ```
///
/// # Panics
///
/// When the test fails inside the namespace.
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
    let test = &qualified(test);
    let out = std::process::Command::new("unshare")
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
        .stdout(std::process::Stdio::piped())
        .output()
        .expect("run the test inside unshare");
    ran_once(test, "inside unshare", &out);
}

/// `test` as `--exact` takes it: the name of the test's thread (libtest
/// names it after the test's whole path, `module::name`) when it ends
/// with `test`, else `test` itself.
fn qualified(test: &str) -> String {
    match std::thread::current().name() {
        Some(name) if name == test || name.ends_with(&format!("::{test}")) => name.to_owned(),
        _ => test.to_owned(),
    }
}

/// Asserts that a re-run of this test binary ran exactly `test` and that
/// it passed: a filter that matches nothing passes too, and must not.
fn ran_once(test: &str, how: &str, out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    assert!(out.status.success(), "{test} failed {how}: {}", out.status);
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{test} did not run {how} (no test has that exact name?):\n{stdout}"
    );
}

/// The environment variable that makes a missing condition of a fault test
/// (a tmpfs, a pty, an unprivileged user) a failure instead of a skip: CI
/// sets `BOXHOOK_FAULTS=required`.
pub const FAULTS_ENV: &str = "BOXHOOK_FAULTS";

/// Skips `test` saying `why` on stderr, or fails it when
/// `BOXHOOK_FAULTS=required` (CI), where every fault test must run.
///
/// ```
/// // A test that needs util-linux's `script` for a pty:
/// if !std::path::Path::new("/usr/bin/script").is_file() {
///     boxhook_testkit::fs::skip_unless_required("a_terminal_test", "no `script` for a pty");
///     return;
/// }
/// ```
///
/// # Panics
///
/// Under `BOXHOOK_FAULTS=required`.
pub fn skip_unless_required(test: &str, why: &str) {
    assert!(
        std::env::var(FAULTS_ENV).map_or(true, |v| v != "required"),
        "{test} cannot run here and {FAULTS_ENV}=required: {why}"
    );
    eprintln!("SKIPPED {test}: {why} ({FAULTS_ENV}=required makes this a failure)");
}

/// The environment variable set in a test binary re-run as an unprivileged
/// user (see [`as_unprivileged`]).
const UNPRIVILEGED_ENV: &str = "BOXHOOK_TEST_UNPRIVILEGED";

/// Runs `body` as a user that file permission bits bind: directly when this
/// process is not root; as root, this test binary runs `test` again as
/// `nobody` (`setpriv --reuid=nobody --regid=nogroup --clear-groups`, from a
/// copy of the binary in a directory `nobody` can read, and the temp dir is
/// the system's), and fails when the re-run fails. `extra` are files the
/// re-run needs beside it (e.g. the `boxhook` binary a test runs); they are
/// copied next to the test binary, and the re-run finds them by name
/// through [`sibling`]. When `setpriv` is missing, the test is skipped
/// ([`skip_unless_required`]).
///
/// ```no_run
/// #[test]
/// fn chmod_444_refuses_writes() {
///     boxhook_testkit::fs::as_unprivileged("chmod_444_refuses_writes", &[], || {
///         let dir = boxhook_testkit::fs::TempDir::new("ro");
///         std::fs::write(dir.file("f"), b"x").unwrap();
///         std::fs::set_permissions(dir.file("f"), std::os::unix::fs::PermissionsExt::from_mode(0o444)).unwrap();
///         assert!(std::fs::write(dir.file("f"), b"y").is_err());
///     });
/// }
/// ```
///
/// # Panics
///
/// When the re-run fails, or cannot be set up.
#[cfg(unix)]
pub fn as_unprivileged(test: &str, extra: &[&Path], body: impl FnOnce()) {
    use std::os::unix::fs::PermissionsExt as _;
    if !is_root() {
        body();
        return;
    }
    let Some(setpriv) = installed("setpriv") else {
        skip_unless_required(test, "root ignores permission bits, and there is no setpriv (util-linux) to run the test as nobody");
        return;
    };
    // The checkout may sit under a directory nobody cannot enter (/root):
    // run copies from a fresh directory everyone can read.
    let dir = TempDir::new("unprivileged");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the copy's directory");
    let exe = std::env::current_exe().expect("the test binary's path");
    let copy = |from: &Path| {
        let to = dir.file(&from.file_name().expect("a file name").to_string_lossy());
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        to
    };
    let exe = copy(&exe);
    for file in extra {
        copy(file);
    }
    let test = &qualified(test);
    let out = std::process::Command::new(setpriv)
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .current_dir(dir.path())
        .env(UNPRIVILEGED_ENV, dir.path())
        .env("TMPDIR", std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .output()
        .expect("run the test as nobody");
    ran_once(test, "as nobody", &out);
}

/// The copy of `file` beside the test binary in a re-run of
/// [`as_unprivileged`], else `file` itself.
///
/// ```
/// let boxhook = std::path::Path::new("/usr/local/bin/boxhook");
/// assert_eq!(boxhook_testkit::fs::sibling(boxhook), boxhook);
/// ```
#[must_use]
pub fn sibling(file: &Path) -> PathBuf {
    match (std::env::var_os(UNPRIVILEGED_ENV), file.file_name()) {
        (Some(dir), Some(name)) => Path::new(&dir).join(name),
        _ => file.to_owned(),
    }
}

/// The first file called `name` in a directory on `PATH`, if any: a tool
/// a test needs (pebble, setpriv, strace) is installed.
///
/// ```
/// assert!(boxhook_testkit::fs::installed("sh").is_some());
/// assert_eq!(boxhook_testkit::fs::installed("no-such-tool-here"), None);
/// ```
#[must_use]
pub fn installed(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn skip(test: &str, as_root: &str, with_unshare: &str) {
    skip_unless_required(
        test,
        &format!(
            "cannot mount a small tmpfs to run it on: `mount -t tmpfs` said {as_root:?} and \
             `unshare --user --map-root-user --mount` said {with_unshare:?}; run the tests as root \
             or allow unprivileged user namespaces"
        ),
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
///
/// ```no_run
/// boxhook_testkit::fs::on_small_fs("my_test", "1m", |dir| {
///     boxhook_testkit::fs::remount_read_only(dir);
///     assert!(std::fs::write(dir.join("x"), b"x").is_err());
/// });
/// ```
///
/// # Panics
///
/// When the remount fails.
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
///
/// ```
/// if boxhook_testkit::fs::is_root() {
///     eprintln!("SKIPPED: chmod does not stop root");
/// }
/// ```
#[cfg(unix)]
#[must_use]
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// Every entry in `dir` with its bytes (`<dir>` for a directory), to show
/// that a command left a directory exactly as it was.
///
/// ```
/// let dir = boxhook_testkit::fs::TempDir::new("snap");
/// std::fs::write(dir.file("a"), b"1")?;
/// let before = boxhook_testkit::fs::snapshot(dir.path());
/// assert_eq!(boxhook_testkit::fs::snapshot(dir.path()), before);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// When `dir` or a file in it cannot be read.
#[must_use]
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
