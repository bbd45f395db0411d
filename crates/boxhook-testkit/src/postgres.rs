//! A throwaway PostgreSQL server for tests: `initdb` into a fresh
//! directory, started on a free 127.0.0.1 port with its unix socket in the
//! same directory, stopped and removed when dropped. Unix only.
//!
//! The binaries are looked up in `BOXHOOK_PG_BINDIR`, then in Debian's
//! `/usr/lib/postgresql/<version>/bin` (newest first), then in
//! `pg_config --bindir`, then on `PATH`. PostgreSQL refuses to run as root,
//! so as root the server runs as an unprivileged user (`BOXHOOK_PG_USER`,
//! default `nobody`) through `runuser`, and its directory is handed to that
//! user.
//!
//! When no binaries are found, [`Cluster::start`] prints
//! `skipped: no PostgreSQL binaries (install postgresql-15)` and returns
//! `None`, so the test passes without checking anything, unless the
//! environment says `BOXHOOK_POSTGRES=required` (CI), where it panics.
//!
//! ```no_run
//! let Some(cluster) = boxhook_testkit::postgres::Cluster::start("doc") else { return };
//! println!("connect to {}", cluster.url());
//! // dropped: stopped and removed
//! ```

#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL is a product name, not code"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::fs::TempDir;

/// The environment variable that makes a missing PostgreSQL a failure.
pub const REQUIRED_ENV: &str = "BOXHOOK_POSTGRES";

/// A running throwaway server (see the [module docs](self)).
#[derive(Debug)]
pub struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    user: Option<String>,
    port: u16,
    /// The server's `-o` options, kept to start it again after [`Cluster::stop`].
    options: String,
}

impl Cluster {
    /// Starts a server with `fsync=off` (fast; nothing in a test outlives a
    /// crash of the machine), or `None` when PostgreSQL is not installed
    /// and not required. `name` goes into the directory's name.
    ///
    /// # Panics
    ///
    /// When PostgreSQL is required but missing, or cannot be started.
    #[must_use]
    pub fn start(name: &str) -> Option<Self> {
        Self::start_with(name, false, None)
    }

    /// [`start`](Self::start), with `fsync=on` and `synchronous_commit=on`:
    /// for measurements that must pay for durability as production does.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    #[must_use]
    pub fn start_durable(name: &str) -> Option<Self> {
        Self::start_with(name, true, None)
    }

    /// [`start`](Self::start), with TLS on (`ssl=on`) using this
    /// certificate chain and private key (PEM), for tests of clients that
    /// check the server's certificate. Plain-text connections are still
    /// accepted; a client's `pg_stat_ssl` row says which it got.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), or when the files cannot be written.
    #[must_use]
    pub fn start_with_tls(name: &str, certificate_pem: &str, key_pem: &str) -> Option<Self> {
        Self::start_with(name, false, Some((certificate_pem, key_pem)))
    }

    fn start_with(name: &str, durable: bool, tls: Option<(&str, &str)>) -> Option<Self> {
        let Some(bin) = find_bindir() else {
            assert!(
                !std::env::var(REQUIRED_ENV).is_ok_and(|v| v == "required"),
                "{REQUIRED_ENV}=required but no PostgreSQL binaries were found \
                 (looked in $BOXHOOK_PG_BINDIR, /usr/lib/postgresql/*/bin, pg_config \
                 --bindir and PATH); install postgresql-15"
            );
            eprintln!("skipped: no PostgreSQL binaries (install postgresql-15)");
            return None;
        };
        let dir = TempDir::new(&format!("pg-{name}"));
        let user = is_root()
            .then(|| std::env::var("BOXHOOK_PG_USER").unwrap_or_else(|_| "nobody".to_owned()));
        if let Some(user) = &user {
            let (uid, gid) = ids_of(user);
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("cannot hand {} to {user}: {e}", dir.path().display()));
        }
        let port = free_port();
        let sync = if durable { "on" } else { "off" };
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 \
             -c fsync={sync} -c synchronous_commit={sync} -c full_page_writes={sync}",
            path_str(dir.path())
        );
        if let Some((certificate, key)) = tls {
            let certificate_file = dir.path().join("server.crt");
            let key_file = dir.path().join("server.key");
            write_private(&certificate_file, certificate, user.as_deref());
            write_private(&key_file, key, user.as_deref());
            options = format!(
                "{options} -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                path_str(&certificate_file),
                path_str(&key_file)
            );
        }
        let cluster = Self {
            dir,
            bin,
            user,
            port,
            options,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        );
        cluster.start_again();
        Some(cluster)
    }

    /// Stops the server (`pg_ctl stop -m fast`: connections are closed,
    /// what is committed stays), waiting until it is down; for tests of
    /// what clients do while the database is away. [`start_again`](Self::start_again)
    /// brings it back on the same port with the same data.
    ///
    /// # Panics
    ///
    /// When `pg_ctl` fails.
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data()),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "stop",
            ],
        );
    }

    /// Stops the server as a crash would (`pg_ctl stop -m immediate`: every
    /// process quits at once, nothing is flushed, the next start recovers
    /// from the write-ahead log), waiting until it is down; for tests of
    /// what clients do when the database dies mid-transaction.
    /// [`start_again`](Self::start_again) brings it back.
    ///
    /// # Panics
    ///
    /// When `pg_ctl` fails.
    pub fn crash(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data()),
                "-m",
                "immediate",
                "-w",
                "-t",
                "60",
                "stop",
            ],
        );
    }

    /// The server's data directory (owned by the user it runs as): to put
    /// it on another file system while the server is stopped.
    ///
    /// ```no_run
    /// let Some(cluster) = boxhook_testkit::postgres::Cluster::start("doc") else { return };
    /// assert!(cluster.data_dir().join("PG_VERSION").is_file());
    /// ```
    #[must_use]
    pub fn data_dir(&self) -> PathBuf {
        self.data()
    }

    /// Starts the server (again, after [`stop`](Self::stop) or
    /// [`crash`](Self::crash)) on the same
    /// port with the same data and settings, waiting until it accepts
    /// connections.
    ///
    /// # Panics
    ///
    /// When `pg_ctl` fails, e.g. when it is already running.
    pub fn start_again(&self) {
        let data = self.data();
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-o",
                &self.options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// A `postgres://` URL for the `postgres` database as the `postgres`
    /// superuser, over the unix socket.
    #[must_use]
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@localhost/postgres?host={}&port={}",
            path_str(self.dir.path()),
            self.port
        )
    }

    /// The same over TCP on 127.0.0.1.
    #[must_use]
    pub fn tcp_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port the server listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of its binaries.
    #[must_use]
    pub fn bindir(&self) -> &Path {
        &self.bin
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        match &self.user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let output = self
            .command(program)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} failed ({}): {}{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
        output
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                path_str(&self.data()),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
    }
}

/// Writes `contents` to `path` readable only by its owner (PostgreSQL
/// refuses a key others can read), handed to `user` when the server runs
/// as another user.
fn write_private(path: &Path, contents: &str, user: Option<&str>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    if let Some(user) = user {
        let (uid, gid) = ids_of(user);
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("cannot hand {} to {user}: {e}", path.display()));
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()))
}

fn find_bindir() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(dir) = std::env::var("BOXHOOK_PG_BINDIR") {
        return Some(PathBuf::from(dir)).filter(|d| has(d));
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has(bin))
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    if let Some(bin) = from_pg_config.filter(|d| has(d)) {
        return Some(bin);
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| has(d))
}

fn is_root() -> bool {
    id(&["-u"]).is_some_and(|uid| uid == 0)
}

fn ids_of(user: &str) -> (u32, u32) {
    match (id(&["-u", user]), id(&["-g", user])) {
        (Some(uid), Some(gid)) => (uid, gid),
        _ => panic!(
            "no user {user} to run PostgreSQL as (it refuses to run as root): create it \
             (useradd --system {user}) or set BOXHOOK_PG_USER"
        ),
    }
}

fn id(args: &[&str]) -> Option<u32> {
    let out = Command::new("id").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_or_else(
            |e| panic!("cannot find a free port: {e}"),
            |addr| addr.port(),
        )
}
