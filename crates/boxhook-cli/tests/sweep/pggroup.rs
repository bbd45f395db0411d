//! The group commit's sweep: five deliveries arrive while the pool's only
//! connection is held (a 700 ms stall of its messages to the server), so
//! the first two go alone (each a retry of an event stored before, so no
//! `NOTIFY` comes between the statements) and the last three, new events,
//! queue and are stored together in one `unnest` statement (prepared on
//! the connection first). Each point cuts the connection after the k-th
//! message of that statement's prepare, statement, reply or the `NOTIFY`
//! that follows; the three must then be answered 503 (or 200 once the
//! statement's reply got through), Box's retries stored once, and the
//! ambiguous commit counted as a duplicate.

use std::time::{Duration, Instant};

use boxhook_testkit::pgproxy::{Direction, Fault, Scope};
use boxhook_testkit::postgres::Cluster;

use crate::pg::{Bench, PgTarget};
use crate::pgsweep::{answer_name, direction_name, PgReport, Shape};
use crate::wire::{Answer, Item};

/// The hold that makes the batch: longer than the five deliveries take to
/// arrive, far under the 5 s queue wait.
const HOLD: Duration = Duration::from_millis(700);

/// The group statement's prepare: `Parse`, `Describe`, `Sync` to the
/// server; `ParseComplete`, `ParameterDescription`, `RowDescription`,
/// `ReadyForQuery` back.
const PREPARE: (u64, u64) = (3, 4);

/// A round's answers, in order, and the messages the store's connection
/// had carried each way before it.
type Round = (Vec<(Item, Answer)>, (usize, usize));

/// One round: the two retries and the three new events of `tag`, with a
/// cut set once they are all queued. The answers, in order, and how many
/// messages the store's connection had carried each way before them.
fn round(
    bench: &mut Bench,
    store: u64,
    tag: &str,
    cut: Option<(Direction, u64)>,
) -> Result<Round, String> {
    let originals = [1, 2].map(|n| Item::v2(&format!("gdup-{tag}-{n}")));
    for item in &originals {
        let answer = bench.deliver(item);
        if answer != Answer::Status(200) {
            return Err(format!("storing {item:?} first: {answer:?}"));
        }
    }
    bench.quiet();
    let before = (
        bench.proxy.messages(store, Direction::ToServer).len(),
        bench.proxy.messages(store, Direction::ToClient).len(),
    );
    let items: Vec<Item> = originals
        .iter()
        .cloned()
        .chain([1, 2, 3].map(|n| Item::v2(&format!("group-{tag}-{n}"))))
        .collect();
    bench.proxy.set(
        Scope::Connection(store),
        Fault::Stall {
            direction: Direction::ToServer,
            after: 0,
            duration: HOLD,
        },
    );
    let started = Instant::now();
    let port = bench.process.port;
    let senders: Vec<_> = items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            // The two alone first, in order; then the three.
            std::thread::sleep(Duration::from_millis(if n < 3 { 100 } else { 20 }));
            let item = item.clone();
            std::thread::spawn(move || {
                let answer = item.send(port, None);
                (item, answer)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    if started.elapsed() >= HOLD {
        return Err(format!(
            "the deliveries took {:?} to send, past the {HOLD:?} hold: no batch",
            started.elapsed()
        ));
    }
    if let Some((direction, after)) = cut {
        bench
            .proxy
            .set(Scope::Connection(store), Fault::Cut { direction, after });
    }
    let answers: Vec<(Item, Answer)> = senders
        .into_iter()
        .map(|s| s.join().map_err(|_| "a sender panicked".to_owned()))
        .collect::<Result<_, _>>()?;
    for (item, answer) in &answers {
        bench.sent.note(item, answer.acknowledged());
    }
    Ok((answers, before))
}

/// Sweeps the group commit of `target` on `cluster`.
#[allow(
    clippy::too_many_lines,
    reason = "one sweep read top to bottom: count, then each point: fault, retry, probe, check"
)]
pub fn sweep(cluster: &Cluster, target: &PgTarget) -> PgReport {
    let started = Instant::now();
    let mut report = PgReport {
        target: target.name.to_owned(),
        route: "group commit of 3 (after 2 alone)".to_owned(),
        ..PgReport::default()
    };
    let mut bench = match Bench::start(cluster, target, "sweep_group", 1) {
        Ok(bench) => bench,
        Err(e) => {
            report.problems.push(format!("start: {e}"));
            return report;
        }
    };
    if let Err(e) = bench.after_first_prune() {
        report.problems.push(e);
    }
    let (answer, moved) = bench.deliver_traced(&Item::v2("warm-0"));
    let Some(mut store) = moved
        .filter(|_| answer == Answer::Status(200))
        .map(|c| c.id)
    else {
        report.problems.push(format!(
            "the first delivery: {answer:?}: {}",
            bench.process.stderr()
        ));
        return report;
    };
    // The counting round.
    let counted = round(&mut bench, store, "count", None);
    bench.quiet();
    let before = counted.as_ref().map_or((0, 0), |(_, before)| *before);
    let kinds = |direction, from: usize| {
        bench
            .proxy
            .messages(store, direction)
            .get(from..)
            .unwrap_or_default()
            .to_vec()
    };
    let to_server = kinds(Direction::ToServer, before.0);
    let to_client = kinds(Direction::ToClient, before.1);
    let shape = Shape::of(&to_server, &to_client);
    match (&counted, &shape) {
        (Ok((answers, _)), Some(shape))
            if answers.iter().all(|(_, a)| *a == Answer::Status(200))
                && shape.rows() == 3
                && to_server.starts_with(b"BESBESPDSBES") => {}
        _ => {
            report.problems.push(format!(
                "the counting round did not store 2 alone then 3 together: {counted:?}; {:?} to \
                 the server, {:?} back",
                String::from_utf8_lossy(&to_server),
                String::from_utf8_lossy(&to_client)
            ));
            return report;
        }
    }
    let Some(shape) = shape else { return report };
    report.messages = (
        u64::try_from(to_server.len()).unwrap_or(0),
        u64::try_from(to_client.len()).unwrap_or(0),
    );
    report.kinds = (to_server.clone(), to_client.clone());
    // The points: the group statement's messages and the NOTIFY after it
    // (the two alone are the new event and duplicate paths' points).
    let points: Vec<(Direction, u64)> = [
        (Direction::ToServer, report.messages.0),
        (Direction::ToClient, report.messages.1),
    ]
    .into_iter()
    .flat_map(|(d, n)| (1..=n).map(move |k| (d, k)))
    .filter(|&(d, k)| shape.in_last_store(d, k, PREPARE))
    .collect();
    let mut seen = std::collections::HashSet::new();
    let mut log_seen = bench.process.stderr().len();
    for (direction, k) in points {
        let tag = format!(
            "{}{k}",
            if direction == Direction::ToServer {
                "s"
            } else {
                "c"
            }
        );
        let point = format!(
            "cut after message {k} {} ({})",
            direction_name(direction),
            shape.name(direction, k)
        );
        let faults = bench.proxy.faults();
        let answers = match round(&mut bench, store, &tag, Some((direction, k))) {
            Ok((answers, _)) => answers,
            Err(e) => {
                report.problems.push(format!("{point}: {e}"));
                continue;
            }
        };
        let fired = crate::pg::wait_for(Duration::from_secs(2), || bench.proxy.faults() > faults);
        bench.quiet();
        bench.proxy.clear();
        report.points += 1;
        if !fired {
            report
                .problems
                .push(format!("{point}: the cut never happened"));
        }
        let committed = shape.committed_unanswered(direction, k);
        for (n, (item, answer)) in answers.iter().enumerate() {
            let Item::V2 { id, .. } = item else { continue };
            let grouped = n >= 2;
            *report
                .answers
                .entry(direction_name(direction))
                .or_default()
                .entry(answer_name(*answer))
                .or_default() += usize::from(grouped);
            let want = if !grouped || shape.answered(direction, k) {
                200
            } else {
                503
            };
            if *answer == Answer::Hung {
                report.hangs += 1;
            }
            if *answer != Answer::Status(want) {
                report
                    .problems
                    .push(format!("{point}: {id}: {answer:?}, not {want}"));
            }
            if grouped && answer.acknowledged() {
                report.acknowledged += 1;
            }
            if !answer.acknowledged() {
                let retry = bench.deliver(item);
                if retry != Answer::Status(200) {
                    report
                        .problems
                        .push(format!("{point}: Box's retry of {id}: {retry:?}, not 200"));
                }
            }
            let want = if grouped { 1 + i64::from(committed) } else { 2 };
            match bench.deliveries(id) {
                Ok(got) if got == want => {}
                Ok(got) => report.problems.push(format!(
                    "{point}: {id} counted {got} deliveries, not {want}"
                )),
                Err(e) => report.problems.push(format!("{point}: {e}")),
            }
        }
        if committed {
            report.ambiguous.push(point.clone());
        }
        let (probe, moved_now) = bench.deliver_traced(&Item::v2(&format!("after-{tag}")));
        if probe != Answer::Status(200) {
            if probe == Answer::Hung {
                report.hangs += 1;
            }
            report.problems.push(format!(
                "{point}: after the fault: {probe:?} for a new event (serves again without a \
                 restart)"
            ));
        }
        if let Some(now) = moved_now {
            store = now.id;
        }
        let (problems, lost) = bench.check();
        report.lost = lost;
        for problem in problems {
            if seen.insert(problem.clone()) {
                report.problems.push(format!("{point}: {problem}"));
            }
        }
        let text = bench.process.stderr();
        for line in crate::sweep::error_lines(&text[log_seen.min(text.len())..]) {
            *report.log.entry(line).or_default() += 1;
        }
        log_seen = text.len();
    }
    report.checked = bench.sent.acknowledged();
    if let Some(status) = bench.process.wait(Duration::ZERO) {
        report
            .problems
            .push(format!("the receiver exited ({status}) during the sweep"));
    }
    let (status, stderr) = bench.process.stop();
    if status.and_then(|s| s.code()) != Some(0) {
        report
            .problems
            .push(format!("SIGTERM: exit {status:?} (0 expected): {stderr}"));
    }
    report.seconds = started.elapsed().as_secs_f64();
    report
}
