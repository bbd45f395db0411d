//! The PostgreSQL half of the sweep (issue 25), as tests of this binary:
//! every protocol message of a store cut in turn (`pgsweep.rs`), stalls
//! past the store's timeouts, random cuts, immediate stops of the server
//! under load, and a full data directory (`pgrandom.rs`), each checked
//! with the same invariants; and the broken double (`pgdouble.rs`) caught.
//!
//! Each starts its own throwaway cluster (`boxhook_testkit::postgres`):
//! without PostgreSQL they print `skipped: …` and pass, unless
//! `BOXHOOK_POSTGRES=required` (CI), where they fail. The full disk needs
//! a tmpfs mounted over the cluster's data directory (root): elsewhere it
//! is skipped loudly, and fails under `BOXHOOK_FAULTS=required`.

use boxhook_testkit::postgres::Cluster;

use crate::pg::PgTarget;
use crate::pgrandom::Run;
use crate::pgsweep::{PgReport, PgRoute, StallReport};

const ROUTES: [PgRoute; 4] = [
    PgRoute::New,
    PgRoute::Duplicate,
    PgRoute::V1,
    PgRoute::NewConnection,
];

fn failures(why: &[String]) -> Result<(), String> {
    if why.is_empty() {
        Ok(())
    } else {
        Err(why.join("\n"))
    }
}

fn route_problems(report: &PgReport) -> Vec<String> {
    let mut why = Vec::new();
    let name = &report.route;
    if report.points == 0 {
        why.push(format!("{name}: no message was counted"));
    }
    if report.lost != 0 {
        why.push(format!(
            "{name}: {} acknowledged deliveries lost",
            report.lost
        ));
    }
    if report.hangs != 0 {
        why.push(format!("{name}: {} hangs", report.hangs));
    }
    why.extend(report.problems.iter().map(|p| format!("{name}: {p}")));
    why
}

fn stall_problems(report: &StallReport) -> Vec<String> {
    let mut why = Vec::new();
    if report.answers.is_empty() {
        why.push(format!("{}: no delivery was answered", report.name));
    }
    if report.lost != 0 || report.hangs != 0 {
        why.push(format!(
            "{}: {} lost, {} hangs",
            report.name, report.lost, report.hangs
        ));
    }
    why.extend(
        report
            .problems
            .iter()
            .map(|p| format!("{}: {p}", report.name)),
    );
    why
}

/// Every route's cut points and the stall points, all at once (each on a
/// receiver, a proxy and a schema of its own, on one cluster).
pub fn sweep() -> Result<(), String> {
    let Some(cluster) = Cluster::start("sweep") else {
        return Ok(());
    };
    let target = PgTarget::serve();
    let (routes, stalls) = std::thread::scope(|scope| {
        let stalls: Vec<_> = crate::pgsweep::stalls()
            .into_iter()
            .map(|(stall, hold)| {
                let (cluster, target) = (&cluster, &target);
                scope.spawn(move || crate::pgsweep::stall(cluster, target, stall, hold))
            })
            .collect();
        let mut routes: Vec<_> = ROUTES
            .into_iter()
            .map(|route| {
                let (cluster, target) = (&cluster, &target);
                scope.spawn(move || crate::pgsweep::sweep(cluster, target, route))
            })
            .collect();
        let (cluster_ref, target_ref) = (&cluster, &target);
        routes.push(scope.spawn(move || crate::pggroup::sweep(cluster_ref, target_ref)));
        (
            routes
                .into_iter()
                .map(|r| r.join().map_err(|_| "a route's thread panicked".to_owned()))
                .collect::<Vec<_>>(),
            stalls
                .into_iter()
                .map(|s| s.join().map_err(|_| "a stall's thread panicked".to_owned()))
                .collect::<Vec<_>>(),
        )
    });
    let mut why = Vec::new();
    let mut ambiguous = 0;
    for report in routes {
        match report {
            Ok(report) => {
                print!("{report}");
                if report.route == PgRoute::New.name() {
                    ambiguous = report.ambiguous.len();
                }
                why.extend(route_problems(&report));
            }
            Err(e) => why.push(e),
        }
    }
    for report in stalls {
        match report {
            Ok(report) => {
                print!("{report}");
                why.extend(stall_problems(&report));
            }
            Err(e) => why.push(e),
        }
    }
    if ambiguous == 0 {
        why.push(
            "no cut of the new event path was an ambiguous commit (committed, not acknowledged, \
             its retry counted 2)"
                .to_owned(),
        );
    }
    failures(&why)
}

/// The sweep of the new event path catches a receiver that answers 200
/// before its COMMIT: acknowledged events missing.
pub fn broken_double() -> Result<(), String> {
    let Some(cluster) = Cluster::start("sweep-double") else {
        return Ok(());
    };
    let report = crate::pgsweep::sweep(&cluster, &PgTarget::broken_double(), PgRoute::New);
    print!("{report}");
    if report.points == 0 {
        return Err("the double's store made no message to sweep".to_owned());
    }
    let caught = report
        .problems
        .iter()
        .filter(|p| p.contains("LOST: v2:cut-") && p.contains("answered 2xx"))
        .count();
    if report.lost == 0 || caught == 0 {
        return Err(format!(
            "the sweep did not catch the double: {} lost, {caught} loss reports",
            report.lost
        ));
    }
    Ok(())
}

fn run_problems(run: &Run, need_acknowledged: bool) -> Vec<String> {
    let mut why = Vec::new();
    if need_acknowledged && run.acknowledged == 0 {
        why.push(format!("{}: nothing acknowledged", run.name));
    }
    if run.faults == 0 {
        why.push(format!("{}: no fault happened", run.name));
    }
    if run.lost != 0 || run.hangs != 0 {
        why.push(format!(
            "{} (seed {}): {} lost, {} hangs",
            run.name, run.seed, run.lost, run.hangs
        ));
    }
    why.extend(
        run.problems
            .iter()
            .map(|p| format!("{} (seed {}): {p}", run.name, run.seed)),
    );
    why
}

/// 400 deliveries from 4 threads with random cuts (2 and 5 % per message).
pub fn randomized() -> Result<(), String> {
    let Some(cluster) = Cluster::start("sweep-random") else {
        return Ok(());
    };
    let seed = crate::pgrandom::seed();
    let target = PgTarget::serve();
    let mut why = Vec::new();
    for probability in [0.02, 0.05] {
        let run = crate::pgrandom::random_cuts(&cluster, &target, probability, 200, seed);
        print!("{run}");
        why.extend(run_problems(&run, true));
    }
    failures(&why)
}

/// Three `pg_ctl stop -m immediate` and restarts under load, on a durable
/// server (`fsync` and `synchronous_commit` on: with them off, an
/// immediate stop loses commits the server acknowledged, as documented).
pub fn immediate_stops() -> Result<(), String> {
    let Some(cluster) = Cluster::start_durable("sweep-restart") else {
        return Ok(());
    };
    let run =
        crate::pgrandom::immediate_stops(&cluster, &PgTarget::serve(), 3, crate::pgrandom::seed());
    print!("{run}");
    failures(&run_problems(&run, true))
}

/// The data directory on a full tmpfs: 503s, never a 2xx for an event not
/// stored, and 200 again once space is freed.
pub fn full_disk() -> Result<(), String> {
    if let Err(why) = crate::pgrandom::can_mount() {
        boxhook_testkit::fs::skip_unless_required(
            "pg_data_directory_on_a_full_tmpfs",
            &format!(
                "cannot mount a tmpfs over the cluster's data directory ({why}); run as root. \
                 (fs::on_small_fs's user-namespace fallback cannot serve: the server runs as \
                 another user, whom the namespace does not map)"
            ),
        );
        return Ok(());
    }
    let Some(cluster) = Cluster::start("sweep-full") else {
        return Ok(());
    };
    let run = crate::pgrandom::full_data_directory(&cluster, &PgTarget::serve());
    print!("{run}");
    let mut why = run_problems(&run, false);
    if run.refused == 0 {
        why.push("no delivery was refused on the full disk".to_owned());
    }
    failures(&why)
}
