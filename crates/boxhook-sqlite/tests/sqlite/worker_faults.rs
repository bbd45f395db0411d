//! The worker's promises on a SQLite inbox file while workers are aborted
//! in the middle of a handler (their tasks cancelled, their claims left
//! held until the lease ends) and started again, and handlers fail, panic
//! and run past a 1.5 s lease: nothing is `done` without a successful
//! handler, no event has two live holders, every lost lease is claimed
//! again, and the counts agree with the list. The seed is printed with the
//! report; `BOXHOOK_SEED=<seed>` repeats the handler's choices.

use std::time::Duration;

use boxhook_sqlite::SqliteInbox;
use boxhook_testkit::worker_faults::{check_worker_invariants, Plan};

use crate::common::TempDir;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_aborted_mid_handler_settle_nothing_twice_and_lose_nothing() {
    let dir = TempDir::new("worker-faults");
    let inbox = SqliteInbox::open(dir.path().join("inbox.db")).expect("open");
    let plan = Plan::new("sqlite")
        .events(300)
        .workers(6)
        .lease(Duration::from_millis(1500))
        .max_attempts(5)
        .aborts(12);
    let report = check_worker_invariants(inbox, plan, |worker| worker, |_rng| async {}).await;
    eprintln!("{report}");
    assert_eq!(report.done + report.dead, 300);
    assert_eq!(
        report.aborted_workers, 12,
        "every planned abort hit a handler"
    );
    assert!(report.aborted >= 12, "{report}");
    assert!(
        report.cancelled > 0,
        "no handler ran past its lease: {report}"
    );
}
