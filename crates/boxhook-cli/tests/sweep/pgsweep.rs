//! The deterministic sweep of the PostgreSQL store path, at the protocol
//! level: for each path a delivery takes, a counting run counts the
//! messages its store makes on its connection (through the fault proxy);
//! then, for each direction and each k, the connection is cut right after
//! its k-th message, one delivery is sent, and the invariants are checked
//! on a direct connection. The receiver is not restarted between points:
//! after each, Box's retry (when the delivery was not acknowledged) and a
//! new event must be answered 200 by the same process.
//!
//! And a few stalls past the store's timeouts, each on a receiver of its
//! own, run beside the cuts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use boxhook_testkit::pgproxy::{Direction, Fault, Scope};
use boxhook_testkit::postgres::Cluster;

use crate::pg::{Bench, PgTarget};
use crate::wire::{Answer, Item};

/// How long Box waits for an answer: the bound for the stall points.
pub const BOX_WAIT: Duration = Duration::from_secs(30);

/// A path through the store, as one delivery takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgRoute {
    /// A new V2 event on the pool's open connection, its statement
    /// prepared.
    New,
    /// A retry of a stored event: its count goes up.
    Duplicate,
    /// A V1 callback (`serve --v1-path`).
    V1,
    /// A new event on a new connection (the pool's last one was closed):
    /// the start-up, the prepare and the store.
    NewConnection,
}

impl PgRoute {
    pub fn name(self) -> &'static str {
        match self {
            Self::New => "new event",
            Self::Duplicate => "duplicate",
            Self::V1 => "V1 callback",
            Self::NewConnection => "new event on a new connection",
        }
    }

    fn schema(self) -> &'static str {
        match self {
            Self::New => "sweep_new",
            Self::Duplicate => "sweep_duplicate",
            Self::V1 => "sweep_v1",
            Self::NewConnection => "sweep_connect",
        }
    }

    /// The delivery swept at point `tag`, and the one stored first (the
    /// duplicate's original).
    fn items(self, tag: &str) -> (Option<Item>, Item) {
        match self {
            Self::New | Self::NewConnection => (None, Item::v2(&format!("cut-{tag}"))),
            Self::Duplicate => {
                let item = Item::v2(&format!("dup-{tag}"));
                (Some(item.clone()), item)
            }
            Self::V1 => (None, Item::v1(&format!("v1-{tag}"))),
        }
    }
}

/// One route's sweep: its figures and every problem found.
#[derive(Debug, Default)]
pub struct PgReport {
    pub target: String,
    pub route: String,
    /// Messages of one delivery's store: to the server, to the client.
    pub messages: (u64, u64),
    /// Their type bytes, each way.
    pub kinds: (Vec<u8>, Vec<u8>),
    pub points: usize,
    /// Deliveries sent under a fault and answered 2xx.
    pub acknowledged: usize,
    /// All deliveries answered 2xx (under a fault, retries, probes).
    pub checked: usize,
    /// Points where the event was committed though its delivery was not
    /// acknowledged (the ambiguous commit), and its retry counted 2.
    pub ambiguous: Vec<String>,
    pub lost: usize,
    pub hangs: usize,
    /// Answers under a fault, per direction.
    pub answers: BTreeMap<&'static str, BTreeMap<String, usize>>,
    /// The receiver's error lines, blanked, with how many points wrote each.
    pub log: BTreeMap<String, usize>,
    pub problems: Vec<String>,
    pub seconds: f64,
}

impl std::fmt::Display for PgReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} / {}: {} points ({} messages to the server: {}; {} back: {}), {} acknowledged \
             under a fault ({} checked in all), {} ambiguous commits, {} lost, {} hangs, {:.1} s",
            self.target,
            self.route,
            self.points,
            self.messages.0,
            String::from_utf8_lossy(&self.kinds.0).replace('\0', "startup "),
            self.messages.1,
            String::from_utf8_lossy(&self.kinds.1),
            self.acknowledged,
            self.checked,
            self.ambiguous.len(),
            self.lost,
            self.hangs,
            self.seconds
        )?;
        for (direction, answers) in &self.answers {
            let seen: Vec<String> = answers.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            writeln!(f, "  cut {direction}: answers {}", seen.join(", "))?;
        }
        if !self.ambiguous.is_empty() {
            writeln!(f, "  ambiguous commits at: {}", self.ambiguous.join("; "))?;
        }
        for (line, n) in &self.log {
            writeln!(f, "    ×{n} {line}")?;
        }
        for problem in self.problems.iter().take(20) {
            writeln!(f, "  PROBLEM: {problem}")?;
        }
        Ok(())
    }
}

/// Where the store is in one delivery's messages (1-based positions).
#[derive(Debug, Clone)]
pub struct Shape {
    pub to_server: Vec<u8>,
    pub to_client: Vec<u8>,
    /// The store's `Sync` (the last `S` to the server before any `Q`,
    /// the `NOTIFY` a new event sends after its answer).
    sync: u64,
    /// The store's reply: its `BindComplete` and its `ReadyForQuery`.
    reply: (u64, u64),
}

impl Shape {
    /// The shape of a delivery whose messages were these, if its last
    /// statement is a prepared store: `… B E S [Q]` to the server,
    /// `… 2 D… C Z [C Z]` back (one `DataRow` per event of the statement).
    pub fn of(to_server: &[u8], to_client: &[u8]) -> Option<Self> {
        let position = |i: usize| u64::try_from(i + 1).ok();
        let before_notify = to_server
            .iter()
            .position(|&b| b == b'Q')
            .unwrap_or(to_server.len());
        let sync = to_server[..before_notify]
            .iter()
            .rposition(|&b| b == b'S')?;
        if to_server.get(sync.checked_sub(2)?..sync) != Some(&b"BE"[..]) {
            return None;
        }
        let row = to_client.iter().rposition(|&b| b == b'D')?;
        let bind = to_client[..row].iter().rposition(|&b| b == b'2')?;
        let ready = row + to_client[row..].iter().position(|&b| b == b'Z')?;
        let reply = to_client.get(bind..=ready)?;
        let rows = reply.len().checked_sub(3)?;
        if reply
            .get(1..=rows)
            .is_none_or(|r| r.iter().any(|&b| b != b'D'))
            || reply.get(rows + 1..) != Some(&b"CZ"[..])
        {
            return None;
        }
        Some(Self {
            to_server: to_server.to_vec(),
            to_client: to_client.to_vec(),
            sync: position(sync)?,
            reply: (position(bind)?, position(ready)?),
        })
    }

    /// How many rows the store's reply has (one per event it stored).
    pub fn rows(&self) -> usize {
        let (bind, ready) = self.reply;
        usize::try_from(ready.saturating_sub(bind).saturating_sub(2)).unwrap_or(0)
    }

    /// Whether message `k` going `direction` is part of the last store
    /// (its prepare, statement and reply) or comes after it.
    pub fn in_last_store(&self, direction: Direction, k: u64, prepare: (u64, u64)) -> bool {
        match direction {
            Direction::ToServer => k + prepare.0 + 2 >= self.sync,
            Direction::ToClient => k + prepare.1 >= self.reply.0,
        }
    }

    /// Whether a cut after message `k` going `direction` lets the store's
    /// whole reply through (so boxhook answers 200).
    pub fn answered(&self, direction: Direction, k: u64) -> bool {
        match direction {
            Direction::ToServer => k > self.sync,
            Direction::ToClient => k >= self.reply.1,
        }
    }

    /// Whether a cut after message `k` going `direction` comes after the
    /// store committed but before boxhook read its reply.
    pub fn committed_unanswered(&self, direction: Direction, k: u64) -> bool {
        match direction {
            Direction::ToServer => k == self.sync,
            Direction::ToClient => k >= self.reply.0 && k < self.reply.1,
        }
    }

    /// The name of message `k` going `direction`.
    pub fn name(&self, direction: Direction, k: u64) -> &'static str {
        let kinds = match direction {
            Direction::ToServer => &self.to_server,
            Direction::ToClient => &self.to_client,
        };
        let kind = usize::try_from(k)
            .ok()
            .and_then(|k| k.checked_sub(1))
            .and_then(|i| kinds.get(i).copied())
            .unwrap_or(b'?');
        match (direction, kind) {
            (Direction::ToServer, 0) => "the startup message",
            (Direction::ToServer, b'P') => "Parse",
            (Direction::ToServer, b'D') => "Describe",
            (Direction::ToServer, b'S') if k == self.sync => "the store's Sync: the COMMIT",
            (Direction::ToServer, b'S') => "Sync",
            (Direction::ToServer, b'B') => "Bind",
            (Direction::ToServer, b'E') => "Execute",
            (Direction::ToServer, b'Q') => "the NOTIFY query",
            (Direction::ToServer, b'X') => "Terminate",
            (Direction::ToClient, b'R') => "Authentication",
            (Direction::ToClient, b'S') => "ParameterStatus",
            (Direction::ToClient, b'K') => "BackendKeyData",
            (Direction::ToClient, b'Z') if k == self.reply.1 => "the store's ReadyForQuery",
            (Direction::ToClient, b'Z') => "ReadyForQuery",
            (Direction::ToClient, b'1') => "ParseComplete",
            (Direction::ToClient, b't') => "ParameterDescription",
            (Direction::ToClient, b'T') => "RowDescription",
            (Direction::ToClient, b'2') => "BindComplete",
            (Direction::ToClient, b'D') => "DataRow",
            (Direction::ToClient, b'C') => "CommandComplete",
            (Direction::ToClient, b'N') => "NoticeResponse",
            _ => "another message",
        }
    }
}

pub fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::ToServer => "to the server",
        Direction::ToClient => "to boxhook",
    }
}

pub fn answer_name(answer: Answer) -> String {
    match answer {
        Answer::Status(s) => s.to_string(),
        Answer::Closed => "closed".to_owned(),
        Answer::Hung => "hung".to_owned(),
    }
}

/// Sweeps `route` of `target` on `cluster`: counts, then every point.
#[allow(
    clippy::too_many_lines,
    reason = "one sweep read top to bottom: count, then each point: fault, retry, probe, check"
)]
pub fn sweep(cluster: &Cluster, target: &PgTarget, route: PgRoute) -> PgReport {
    let started = Instant::now();
    let mut report = PgReport {
        target: target.name.to_owned(),
        route: route.name().to_owned(),
        ..PgReport::default()
    };
    let schema = if target.v1.is_some() {
        route.schema().to_owned()
    } else {
        format!("{}_double", route.schema())
    };
    let mut bench = match Bench::start(cluster, target, &schema, 1) {
        Ok(bench) => bench,
        Err(e) => {
            report.problems.push(format!("start: {e}"));
            return report;
        }
    };
    if let Err(e) = bench.after_first_prune() {
        report.problems.push(e);
    }
    // The counting run: a first delivery opens the pool's connection and
    // prepares the statement; the next is counted.
    let (answer, _) = bench.deliver_traced(&Item::v2("warm-0"));
    if answer != Answer::Status(200) {
        report.problems.push(format!(
            "the first delivery: {answer:?}: {}",
            bench.process.stderr()
        ));
        return report;
    }
    let (first, counted) = route.items("count");
    if let Some(first) = &first {
        bench.deliver(first);
        bench.quiet();
    }
    if route == PgRoute::NewConnection {
        bench.proxy.cut_all();
        std::thread::sleep(Duration::from_millis(150));
    }
    let connections = bench.proxy.connections();
    let (answer, moved) = bench.deliver_traced(&counted);
    let Some(moved) = moved.filter(|_| answer == Answer::Status(200)) else {
        report.problems.push(format!(
            "the counting delivery: {answer:?}, {moved:?}: {}",
            bench.process.stderr()
        ));
        return report;
    };
    // The types of the delivery's messages, each way.
    let kinds = |direction| {
        let all = bench.proxy.messages(moved.id, direction);
        let before = connections
            .iter()
            .find(|c| c.id == moved.id)
            .map_or(0, |c| {
                usize::try_from(match direction {
                    Direction::ToServer => c.to_server,
                    Direction::ToClient => c.to_client,
                })
                .unwrap_or(usize::MAX)
            });
        all.get(before..).unwrap_or_default().to_vec()
    };
    let shape = Shape::of(&kinds(Direction::ToServer), &kinds(Direction::ToClient));
    let Some(shape) = shape else {
        report.problems.push(format!(
            "the counted delivery's messages are not a store's: {:?} to the server, {:?} back",
            String::from_utf8_lossy(&kinds(Direction::ToServer)),
            String::from_utf8_lossy(&kinds(Direction::ToClient))
        ));
        return report;
    };
    report.messages = (moved.to_server, moved.to_client);
    report.kinds = (shape.to_server.clone(), shape.to_client.clone());
    let mut store = moved.id;
    let points: Vec<(Direction, u64)> = [
        (Direction::ToServer, moved.to_server),
        (Direction::ToClient, moved.to_client),
    ]
    .into_iter()
    .flat_map(|(d, n)| (1..=n).map(move |k| (d, k)))
    .collect();
    let mut log_seen = bench.process.stderr().len();
    let mut seen = std::collections::HashSet::new();
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
        let (first, item) = route.items(&tag);
        if let Some(first) = &first {
            let answer = bench.deliver(first);
            bench.quiet();
            if answer != Answer::Status(200) {
                report
                    .problems
                    .push(format!("{point}: the original delivery: {answer:?}"));
            }
        }
        let scope = if route == PgRoute::NewConnection {
            bench.proxy.cut_all();
            std::thread::sleep(Duration::from_millis(150));
            Scope::Next
        } else {
            Scope::Connection(store)
        };
        let faults = bench.proxy.faults();
        bench.proxy.set(
            scope,
            Fault::Cut {
                direction,
                after: k,
            },
        );
        let answer = bench.deliver(&item);
        // A receiver that answers before its store (the double) stores
        // after its answer: wait for the cut.
        let fired = crate::pg::wait_for(Duration::from_secs(2), || bench.proxy.faults() > faults);
        bench.quiet();
        bench.proxy.clear();
        report.points += 1;
        *report
            .answers
            .entry(direction_name(direction))
            .or_default()
            .entry(answer_name(answer))
            .or_default() += 1;
        if !fired {
            report.problems.push(format!(
                "{point}: the cut never happened (the store took another way)"
            ));
        }
        // Exact answers: 200 once the store's reply got through, 503
        // before.
        let want = if shape.answered(direction, k) {
            200
        } else {
            503
        };
        if answer == Answer::Hung {
            report.hangs += 1;
        }
        if answer != Answer::Status(want) {
            report
                .problems
                .push(format!("{point}: {answer:?}, not {want}"));
        }
        if answer.acknowledged() {
            report.acknowledged += 1;
        } else if matches!(item, Item::V2 { .. }) {
            // Box's retry: stored (or counted) once, by the same process.
            let retry = bench.deliver(&item);
            bench.quiet();
            if retry != Answer::Status(200) {
                report
                    .problems
                    .push(format!("{point}: Box's retry: {retry:?}, not 200"));
            }
        }
        // The fault is gone: the same process serves a new event.
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
        // Committed though not acknowledged (the ambiguous commit: the cut
        // came after the store's Sync reached the server, before its
        // ReadyForQuery came back): its retry is counted as a duplicate.
        if let Item::V2 { id, .. } = &item {
            let base = i64::from(first.is_some());
            let committed = shape.committed_unanswered(direction, k);
            let want = base + 1 + i64::from(committed);
            match bench.deliveries(id) {
                Ok(n) if n == want => {
                    if committed {
                        report.ambiguous.push(point.clone());
                    }
                }
                Ok(n) => report.problems.push(format!(
                    "{point}: {id} counted {n} deliveries, not {want}{}",
                    if committed {
                        " (committed before the cut, then Box's retry)"
                    } else {
                        ""
                    }
                )),
                Err(e) => report.problems.push(format!("{point}: {e}")),
            }
        }
        // The check reads everything sent so far: each problem is reported
        // at the first point that shows it, and `lost` is the last count.
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

/// A stall point: what is held, for how long, and what each delivery
/// must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// The store statement's messages to the server are held (the pool's
    /// only connection busy): the first delivery passes the handler
    /// deadline, the second waits for a connection, the third in the
    /// queue behind the two store statements in flight.
    Request,
    /// The statement ran and committed; its reply is held.
    Reply,
    /// A new connection's start-up is held (the pool's create timeout).
    Connect,
}

impl Stall {
    pub fn name(self) -> &'static str {
        match self {
            Self::Request => "store statement held on its way to the server",
            Self::Reply => "store statement's reply held (committed)",
            Self::Connect => "new connection's start-up held",
        }
    }
}

/// What a stall point saw.
#[derive(Debug, Default)]
pub struct StallReport {
    pub name: String,
    /// Each delivery under the stall: its answer and how long it took.
    pub answers: Vec<(String, Answer, Duration)>,
    pub lost: usize,
    pub hangs: usize,
    pub log: Vec<String>,
    pub problems: Vec<String>,
}

impl std::fmt::Display for StallReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let answers: Vec<String> = self
            .answers
            .iter()
            .map(|(id, a, t)| format!("{id}: {} in {:.1} s", answer_name(*a), t.as_secs_f64()))
            .collect();
        writeln!(
            f,
            "stall: {}: {}; {} lost, {} hangs",
            self.name,
            answers.join(", "),
            self.lost,
            self.hangs
        )?;
        for line in &self.log {
            writeln!(f, "    {line}")?;
        }
        for problem in &self.problems {
            writeln!(f, "  PROBLEM: {problem}")?;
        }
        Ok(())
    }
}

/// Runs one stall point on a receiver of its own.
#[allow(
    clippy::too_many_lines,
    reason = "one point read top to bottom: hold, deliver, answers, release, retries, check"
)]
pub fn stall(cluster: &Cluster, target: &PgTarget, stall: Stall, hold: Duration) -> StallReport {
    let mut report = StallReport {
        name: stall.name().to_owned(),
        ..StallReport::default()
    };
    let schema = match stall {
        Stall::Request => "stall_request",
        Stall::Reply => "stall_reply",
        Stall::Connect => "stall_connect",
    };
    let mut bench = match Bench::start(cluster, target, schema, 1) {
        Ok(bench) => bench,
        Err(e) => {
            report.problems.push(format!("start: {e}"));
            return report;
        }
    };
    if let Err(e) = bench.after_first_prune() {
        report.problems.push(e);
    }
    // deliver_traced waits for quiet: no NOTIFY holds the connection.
    let (answer, moved) = bench.deliver_traced(&Item::v2("warm-0"));
    let Some(store) = moved.filter(|_| answer == Answer::Status(200)) else {
        report.problems.push(format!(
            "the first delivery: {answer:?}: {}",
            bench.process.stderr()
        ));
        return report;
    };
    let (scope, direction) = match stall {
        Stall::Request => (Scope::Connection(store.id), Direction::ToServer),
        Stall::Reply => (Scope::Connection(store.id), Direction::ToClient),
        Stall::Connect => {
            bench.proxy.cut_all();
            std::thread::sleep(Duration::from_millis(150));
            (Scope::Next, Direction::ToClient)
        }
    };
    bench.proxy.set(
        scope,
        Fault::Stall {
            direction,
            after: 0,
            duration: hold,
        },
    );
    let items: Vec<Item> = match stall {
        Stall::Request => ["held-1", "held-2", "held-3"].map(Item::v2).to_vec(),
        Stall::Reply | Stall::Connect => vec![Item::v2("held-1")],
    };
    let port = bench.process.port;
    let senders: Vec<_> = items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let item = item.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300) * u32::try_from(n).unwrap_or(0));
                let started = Instant::now();
                let answer = item.send_within(port, None, BOX_WAIT);
                (item, answer, started.elapsed())
            })
        })
        .collect();
    for sender in senders {
        let Ok((item, answer, took)) = sender.join() else {
            report.problems.push("a sender thread panicked".to_owned());
            continue;
        };
        bench.sent.note(&item, answer.acknowledged());
        let Item::V2 { id, .. } = &item else {
            continue;
        };
        if answer == Answer::Hung {
            report.hangs += 1;
        }
        if answer != Answer::Status(503) {
            report.problems.push(format!(
                "{id}: {answer:?} after {took:?} under the stall, not 503 within {BOX_WAIT:?}"
            ));
        }
        report.answers.push((id.clone(), answer, took));
    }
    // The fault gone: the held statement finishes; the same process stores
    // a new event and Box's retries.
    bench.proxy.clear();
    let probe = bench.deliver(&Item::v2("after-stall"));
    if probe != Answer::Status(200) {
        report.problems.push(format!(
            "after the stall: {probe:?} for a new event (serves again without a restart)"
        ));
    }
    for item in &items {
        let retry = bench.deliver(item);
        if retry != Answer::Status(200) {
            report
                .problems
                .push(format!("Box's retry after the stall: {retry:?}, not 200"));
        }
    }
    // Committed under the stall (held reply or statement), the first is
    // counted twice; the others once.
    for (n, item) in items.iter().enumerate() {
        let Item::V2 { id, .. } = item else { continue };
        let want = if n == 0 && stall != Stall::Connect {
            2
        } else {
            1
        };
        match bench.deliveries(id) {
            Ok(got) if got == want => {}
            Ok(got) => report
                .problems
                .push(format!("{id}: {got} deliveries counted, not {want}")),
            Err(e) => report.problems.push(e),
        }
    }
    let (problems, lost) = bench.check();
    report.lost = lost;
    report.problems.extend(problems);
    report.log = crate::sweep::error_lines(&bench.process.stderr());
    report
}

/// The stall points: each past the timeouts it tests (the 5 s queue and
/// pool waits, the 10 s connection start-up, the 25 s handler deadline),
/// within Box's 30 s.
pub fn stalls() -> [(Stall, Duration); 3] {
    [
        (Stall::Request, Duration::from_secs(28)),
        (Stall::Reply, Duration::from_secs(28)),
        (Stall::Connect, Duration::from_secs(14)),
    ]
}
