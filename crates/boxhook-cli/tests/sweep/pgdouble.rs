//! The broken PostgreSQL receiver the sweep must catch: it answers `200`
//! as soon as a request is read, and only then stores the event through
//! `PgInbox` (the same store path as `serve --store postgres://…`). When
//! the store's connection is cut before its COMMIT, an event answered 2xx
//! is not in the inbox.
//!
//! It is this test binary run as `sweep broken-pg-receiver --store URL
//! --schema S --pool-size N`; it is not part of `boxhook`. It prints
//! `listening on http://127.0.0.1:PORT/`, accepts any POST whose body is a
//! `webhook_event` (no signature check: it is a double), and exits 0 on
//! SIGTERM after 300 ms, so that stores begun before are done.

use std::process::ExitCode;

use boxhook_postgres::{Options, PgInbox};

/// The first argument that makes this binary the double.
pub const ARG: &str = "broken-pg-receiver";

const USAGE: &str = "usage: sweep broken-pg-receiver --store URL --schema S --pool-size N";

/// Runs the double with `args` (after [`ARG`]).
pub fn main(args: &[String]) -> ExitCode {
    let [store_flag, url, schema_flag, schema, pool_flag, pool] = args else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let Ok(pool) = pool.parse::<usize>() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if (
        store_flag.as_str(),
        schema_flag.as_str(),
        pool_flag.as_str(),
    ) != ("--store", "--schema", "--pool-size")
    {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opened = runtime.block_on(async {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("cannot catch SIGTERM: {e}"))?;
        let options = Options::default().pool_size(pool).schema(schema.clone());
        let inbox = PgInbox::connect_with(url, &options)
            .await
            .map_err(|e| format!("cannot open store: {e}"))?;
        Ok::<_, String>((term, inbox))
    });
    let (term, inbox) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    crate::double::answer_before_commit(&runtime, inbox, term)
}
