//! Secrets stay secret, as a user meets them: no `--help` shows an
//! environment value, a libpq `key=value` `--store` is PostgreSQL (never a
//! SQLite file) and is never echoed with its password, a password given as
//! `--store` draws a warning, `work --exec` hands its command a clean
//! environment, and an admin token of one repeated character is refused.

#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]
#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL and SQLite are product names, not code"
)]

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use boxhook::inbox::{Inbox as _, NewRecord};
use common::{boxhook, run, temp_dir};

const LIMIT: Duration = Duration::from_secs(60);
const PASSWORD: &str = "Pw-s3cr3t-Top";

/// Every secret (and every other environment-backed setting) a user may
/// export, with values no help text may show.
const EXPORTED: [(&str, &str); 7] = [
    ("BOX_PRIMARY_KEY", "PrimaryKeyValue0001"),
    ("BOX_SECONDARY_KEY", "SecondaryKeyValue0002"),
    (
        "BOXHOOK_STORE",
        "postgres://boxhook:StoreValue0003@127.0.0.1:55499/boxhook",
    ),
    ("BOXHOOK_ADMIN_TOKEN", "AdminTokenValue0004"),
    ("BOXHOOK_SCHEMA", "schemavalue0005"),
    ("BOXHOOK_POOL_SIZE", "937"),
    ("BOX_V1_SECRET", "V1SecretValue0006"),
];

fn help(path: &[String], flag: &str, exported: bool) -> String {
    let mut command = boxhook();
    for (name, value) in EXPORTED {
        if exported {
            command.env(name, value);
        } else {
            command.env_remove(name);
        }
    }
    let out = run(command.args(path).arg(flag), LIMIT);
    assert_eq!(out.status.code(), Some(0), "boxhook {path:?} {flag}");
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands a help text lists under `Commands:`, `help` aside.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn no_help_text_shows_an_environment_value() {
    let mut pending = vec![Vec::<String>::new()];
    let mut checked = Vec::new();
    while let Some(path) = pending.pop() {
        for flag in ["--help", "-h"] {
            let shown = help(&path, flag, true);
            for (name, value) in EXPORTED {
                assert!(
                    !shown.contains(value),
                    "boxhook {path:?} {flag} shows {name}'s value:\n{shown}"
                );
            }
            let unset = help(&path, flag, false);
            assert!(
                !unset.contains("=]"),
                "boxhook {path:?} {flag} shows an unset variable as set to empty:\n{unset}"
            );
            if flag == "--help" {
                assert!(
                    shown.contains("\nExamples:\n  boxhook "),
                    "boxhook {path:?} --help has no \"Examples:\" section:\n{shown}"
                );
                for wording in ["Example:", "Exit codes:"] {
                    assert!(
                        !shown.contains(wording),
                        "boxhook {path:?} --help says {wording:?}, not \"Examples:\" / \
                         \"Exit status:\":\n{shown}"
                    );
                }
                for sub in subcommands(&shown) {
                    let mut deeper = path.clone();
                    deeper.push(sub);
                    pending.push(deeper);
                }
            }
        }
        checked.push(path.join(" "));
    }
    for command in [
        "",
        "serve",
        "work",
        "migrate",
        "inbox",
        "inbox replay",
        "webhooks",
    ] {
        assert!(
            checked.iter().any(|c| c == command),
            "{command:?} was not checked: {checked:?}"
        );
    }
}

/// The help headings a command's `--help` shows, in order (`Options:`,
/// `Keys:`, ...): the lines that are one capitalised word or two, then a colon.
fn headings(help: &str) -> Vec<&str> {
    help.lines()
        .filter(|line| {
            line.ends_with(':')
                && line.starts_with(|c: char| c.is_ascii_uppercase())
                && line.split(' ').count() <= 2
        })
        .collect()
}

#[test]
fn key_flags_only_where_keys_are_used_and_options_under_headings() {
    let path = |words: &str| words.split(' ').map(str::to_owned).collect::<Vec<_>>();
    for command in ["sign", "verify", "send", "serve", "work", "inbox replay"] {
        let shown = help(&path(command), "--help", false);
        let keys = shown
            .find("\nKeys:\n")
            .unwrap_or_else(|| panic!("{command}: no Keys:\n{shown}"));
        let primary = shown.find("--primary-key <KEY>").unwrap();
        let secondary = shown.find("--secondary-key <KEY>").unwrap();
        assert!(
            keys < primary && keys < secondary,
            "{command}: keys outside Keys:\n{shown}"
        );
    }
    for command in [
        "inbox",
        "inbox list",
        "inbox show",
        "inbox requeue",
        "inbox prune",
        "migrate",
        "demo",
        "webhooks",
        "webhooks plan",
        "webhooks apply",
        "webhooks list",
        "webhooks delete",
    ] {
        for flag in ["--help", "-h"] {
            let shown = help(&path(command), flag, false);
            assert!(
                !shown.contains("--primary-key") && !shown.contains("--secondary-key"),
                "boxhook {command} {flag} shows a key flag it does not use:\n{shown}"
            );
        }
    }
    assert_eq!(
        headings(&help(&path("serve"), "--help", false)),
        [
            "Options:",
            "Limits:",
            "Store:",
            "Managed webhooks:",
            "V1 callbacks:",
            "TLS:",
            "Admin:",
            "Retention:",
            "Keys:",
            "Examples:",
        ]
    );
    assert_eq!(
        headings(&help(&path("work"), "--help", false)),
        [
            "Options:",
            "Store:",
            "Admin:",
            "Retention:",
            "Keys:",
            "Examples:"
        ]
    );
    assert_eq!(
        headings(&help(&path("inbox list"), "--help", false)),
        ["Options:", "Store:", "Examples:"]
    );
    // --state offers the names `list` prints (`in_progress` is still
    // accepted, unshown).
    for command in ["inbox list", "inbox replay"] {
        let shown = help(&path(command), "--help", false);
        assert!(shown.contains("pending, claimed"), "{command}:\n{shown}");
        assert!(!shown.contains("in_progress"), "{command}:\n{shown}");
    }
    // The top level hides its copy of the key flags (`boxhook --primary-key
    // K serve` still works), and -h and --help open with one description.
    let short = help(&[], "-h", false);
    let long = help(&[], "--help", false);
    assert!(!short.contains("--primary-key <KEY>") && !long.contains("--primary-key <KEY>"));
    let description = "Sign, verify and send Box webhooks (V2 signatures), and receive them \
                       into a durable inbox in SQLite or PostgreSQL";
    assert!(short.starts_with(description), "{short}");
    assert!(long.starts_with(description), "{long}");
}

/// The key flags given before the subcommand, after it, or in the
/// environment sign alike; a flag after the subcommand wins over one before
/// it, and either over the environment.
#[test]
fn key_flags_work_before_and_after_the_subcommand() {
    let dir = temp_dir("keys-anywhere");
    let body = dir.join("b.json");
    std::fs::write(&body, b"{}").unwrap();
    let sign = |before: &[&str], after: &[&str], env: Option<&str>| {
        let mut command = boxhook();
        command
            .env_remove("BOX_PRIMARY_KEY")
            .env_remove("BOX_SECONDARY_KEY");
        if let Some(key) = env {
            command.env("BOX_PRIMARY_KEY", key);
        }
        let out = run(
            command
                .args(before)
                .arg("sign")
                .args(after)
                .arg("--body")
                .arg(&body)
                .args([
                    "--timestamp",
                    "2026-01-31T12:00:00Z",
                    "--delivery-id",
                    "d-1",
                ]),
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let with_a = sign(&[], &["--primary-key", "key-a"], None);
    let with_b = sign(&[], &["--primary-key", "key-b"], None);
    assert_ne!(with_a, with_b);
    assert_eq!(sign(&["--primary-key", "key-a"], &[], None), with_a);
    assert_eq!(sign(&[], &[], Some("key-a")), with_a);
    assert_eq!(
        sign(&["--primary-key", "key-a"], &[], Some("key-b")),
        with_a
    );
    assert_eq!(
        sign(
            &["--primary-key", "key-b"],
            &["--primary-key", "key-a"],
            None
        ),
        with_a
    );
    // Before the subcommand, the flags are accepted whatever follows.
    let out = run(
        boxhook().args(["--primary-key", "k", "inbox", "list", "--help"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(dir);
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_key_value_store_is_postgres_never_a_file_and_never_echoed() {
    let dir = temp_dir("kv-store");
    let port = closed_port();
    let conninfo = format!(
        "host=127.0.0.1 port={port} user=boxhook password={PASSWORD} dbname=boxhook \
         connect_timeout=5"
    );
    let shown = format!(
        "host=127.0.0.1 port={port} user=boxhook password=*** dbname=boxhook connect_timeout=5"
    );
    let runs: [(&str, Command); 3] = [
        ("cannot migrate", {
            let mut c = boxhook();
            c.current_dir(&*dir).args(["migrate", "--store", &conninfo]);
            c
        }),
        ("cannot migrate", {
            let mut c = boxhook();
            c.current_dir(&*dir)
                .env("BOXHOOK_STORE", &conninfo)
                .arg("migrate");
            c
        }),
        ("cannot open store", {
            let mut c = boxhook();
            c.current_dir(&*dir)
                .env("BOXHOOK_STORE", &conninfo)
                .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
                .args(["serve", "--listen", "127.0.0.1:0"]);
            c
        }),
    ];
    for (what, mut command) in runs {
        let out = run(&mut command, LIMIT);
        let err = stderr(&out);
        let all = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(out.status.code(), Some(1), "{what}: {all}");
        assert!(
            err.contains(&format!(
                "boxhook: {what} {shown}: inbox storage failed: cannot \
                 connect to {shown}: "
            )),
            "{what}: {err}"
        );
        assert!(err.contains("Connection refused"), "{what}: {err}");
        assert!(!all.contains(PASSWORD), "{what}: {all}");
        assert_eq!(files_in(&dir), Vec::<String>::new(), "{what}: no file made");
    }
}

#[test]
fn what_is_neither_a_connection_string_nor_a_path_is_refused_unechoed() {
    let dir = temp_dir("bad-store");
    for (store, want) in [
        (
            format!("hots=127.0.0.1 pasword={PASSWORD}"),
            "boxhook: --store is neither a PostgreSQL connection string (postgres://… or \
             libpq's host=… port=… user=… dbname=…) nor a plain path; for a SQLite file whose \
             name holds '=' or starts or ends with a space, write sqlite:PATH\n",
        ),
        (
            format!("host=127.0.0.1 password='{PASSWORD}"),
            "boxhook: --store is neither a PostgreSQL connection string",
        ),
        (
            format!("mysql://boxhook:{PASSWORD}@127.0.0.1/boxhook"),
            "boxhook: --store: unknown scheme mysql://; give postgres://…, postgresql://…, \
             host=… dbname=… (PostgreSQL), sqlite:PATH or a path (SQLite)\n",
        ),
    ] {
        for args in [
            vec!["migrate", "--store", store.as_str()],
            vec![
                "work",
                "--store",
                store.as_str(),
                "--exec",
                "true",
                "--once",
            ],
        ] {
            let out = run(boxhook().current_dir(&*dir).args(&args), LIMIT);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.starts_with(want), "{args:?}: {err}");
            assert!(!err.contains(PASSWORD), "{args:?}: {err}");
            assert_eq!(files_in(&dir), Vec::<String>::new(), "{args:?}");
        }
    }
}

#[test]
fn a_password_given_as_store_suggests_the_environment_variable() {
    let dir = temp_dir("store-flag");
    let url = format!(
        "postgres://boxhook:{PASSWORD}@127.0.0.1:{}/boxhook",
        closed_port()
    );
    let warning = "warning: the password in --store shows in `ps` to every user of this \
                   machine, and stays in your shell history; put the connection string in \
                   BOXHOOK_STORE instead (export BOXHOOK_STORE='postgres://…')\n";
    let flag = run(
        boxhook()
            .current_dir(&*dir)
            .args(["migrate", "--store", &url]),
        LIMIT,
    );
    let err = stderr(&flag);
    assert_eq!(flag.status.code(), Some(1), "{err}");
    assert!(err.starts_with(warning), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
    // Through the environment: nothing to warn about.
    let env = run(
        boxhook()
            .current_dir(&*dir)
            .env("BOXHOOK_STORE", &url)
            .arg("migrate"),
        LIMIT,
    );
    let err = stderr(&env);
    assert_eq!(env.status.code(), Some(1), "{err}");
    assert!(!err.contains("warning"), "{err}");
    // Without a password: nothing to warn about either.
    let plain = run(
        boxhook().current_dir(&*dir).args([
            "migrate",
            "--store",
            &format!("postgres://boxhook@127.0.0.1:{}/boxhook", closed_port()),
        ]),
        LIMIT,
    );
    assert!(!stderr(&plain).contains("warning"), "{}", stderr(&plain));
}

/// One event stored in a new SQLite inbox at `path`.
fn store_one(path: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let inbox = boxhook_sqlite::SqliteInbox::open(path).unwrap();
        let body = common::event("e-1");
        inbox
            .store(NewRecord::parse(body, Some("d-1"), chrono::Utc::now()).unwrap())
            .await
            .unwrap();
    });
}

#[test]
fn exec_hands_its_command_a_clean_environment() {
    let dir = temp_dir("exec-env");
    let inbox = dir.join("inbox.sqlite");
    store_one(&inbox);
    let script = dir.join("handle.sh");
    common::write_script(&script, &format!("env > {}/env.txt\n", dir.display()));
    let secrets = [
        ("BOX_PRIMARY_KEY", "PrimaryKeyValue0001"),
        ("BOX_SECONDARY_KEY", "SecondaryKeyValue0002"),
        ("BOX_V1_SECRET", "V1SecretValue0006"),
        ("UNRELATED_SECRET", "UnrelatedValue0007"),
    ];
    let mut command = boxhook();
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", &*dir)
        .env("LANG", "C.UTF-8")
        .env("LC_TIME", "C")
        .env("TZ", "UTC")
        .env("HANDLER_TOKEN", "passed-on-by-name")
        .env("BOXHOOK_STORE", format!("sqlite:{}", inbox.display()))
        .envs(secrets)
        .args(["work", "--once", "--env", "HANDLER_TOKEN", "--exec"])
        .arg(&script);
    let out = run(&mut command, LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let env = std::fs::read_to_string(dir.join("env.txt")).unwrap();
    // What sh itself adds (PWD, SHLVL, _) aside.
    let names: BTreeSet<&str> = env
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .filter(|name| !["PWD", "OLDPWD", "SHLVL", "_"].contains(name))
        .collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "BOXHOOK_ATTEMPT",
            "BOXHOOK_EVENT_ID",
            "BOXHOOK_KIND",
            "BOXHOOK_TRIGGER",
            "BOXHOOK_WEBHOOK_ID",
            "BOXHOOK_WORKER_ID",
            "HANDLER_TOKEN",
            "HOME",
            "LANG",
            "LC_TIME",
            "PATH",
            "TZ",
        ],
        "{env}"
    );
    for line in [
        "BOXHOOK_KIND=v2",
        "BOXHOOK_EVENT_ID=e-1",
        "HANDLER_TOKEN=passed-on-by-name",
        "LANG=C.UTF-8",
        "TZ=UTC",
    ] {
        assert!(env.lines().any(|l| l == line), "{line}: {env}");
    }
    for (_, value) in secrets {
        assert!(!env.contains(value), "{env}");
    }
    assert!(!env.contains(&inbox.display().to_string()), "{env}");
}

#[test]
fn exec_passes_a_key_on_only_when_named_and_refuses_bad_names() {
    let dir = temp_dir("exec-env-named");
    let inbox = dir.join("inbox.sqlite");
    store_one(&inbox);
    let script = dir.join("handle.sh");
    common::write_script(
        &script,
        &format!(
            "printf '%s' \"$BOX_PRIMARY_KEY\" > {}/key.txt\n",
            dir.display()
        ),
    );
    let out = run(
        boxhook()
            .env("BOX_PRIMARY_KEY", "PrimaryKeyValue0001")
            .args(["work", "--once", "--env", "BOX_PRIMARY_KEY", "--inbox"])
            .arg(&inbox)
            .arg("--exec")
            .arg(&script),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.join("key.txt")).unwrap(),
        "PrimaryKeyValue0001"
    );
    for (name, want) in [
        (
            "NOT_SET_ANYWHERE_21",
            "boxhook: --env NOT_SET_ANYWHERE_21: the variable is not set in the worker's \
             environment; set it, or drop --env NOT_SET_ANYWHERE_21\n",
        ),
        (
            "BOXHOOK_EVENT_ID",
            "boxhook: --env BOXHOOK_EVENT_ID: the worker sets BOXHOOK_EVENT_ID for each event \
             itself\n",
        ),
        (
            "TOKEN=s3cr3t",
            "boxhook: --env TOKEN=s3cr3t: give a variable's name, e.g. --env API_TOKEN; its \
             value comes from the worker's environment (a value on the command line would \
             show in `ps`)\n",
        ),
    ] {
        let out = run(
            boxhook()
                .env_remove("NOT_SET_ANYWHERE_21")
                .args(["work", "--once", "--env", name, "--inbox"])
                .arg(&inbox)
                .args(["--exec", "true"]),
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert_eq!(stderr(&out), want, "{name}");
    }
}

#[test]
fn an_admin_token_of_one_repeated_character_is_refused_before_anything_starts() {
    let dir = temp_dir("admin-token-entropy");
    let inbox = dir.join("inbox.sqlite");
    for (args, env) in [
        (vec!["--admin-token", "aaaaaaaaaaaaaaaa"], None),
        (vec![], Some("passwordpassword")),
    ] {
        let mut command = boxhook();
        if let Some(token) = env {
            command.env("BOXHOOK_ADMIN_TOKEN", token);
        }
        let out = run(
            command
                .args(["--primary-key", boxhook_testkit::SAMPLE_PRIMARY_KEY])
                .args(["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
                .args(&args)
                .arg("--inbox")
                .arg(&inbox)
                .stdout(Stdio::piped()),
            LIMIT,
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let distinct = if env.is_some() { 7 } else { 1 };
        assert_eq!(
            err,
            format!(
                "boxhook: --admin-token has only {distinct} different character(s); a token \
                 needs at least 8 (a repeated character or word is easy to guess): use e.g. \
                 the output of `openssl rand -hex 32`\n"
            )
        );
        assert!(!inbox.exists());
    }
}
