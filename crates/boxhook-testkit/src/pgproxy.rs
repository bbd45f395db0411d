//! A fault proxy for PostgreSQL's wire protocol: a TCP proxy on
//! 127.0.0.1 in front of a server (e.g. [`Cluster::port`](crate::postgres::Cluster::port))
//! that counts the protocol messages of each connection in each direction,
//! and, when told, cuts a connection right after its k-th message, stalls
//! it, or cuts connections at random.
//!
//! It parses the protocol just enough to find where messages end: a
//! client's first message (the startup message, or an `SSLRequest` /
//! `GSSENCRequest` / `CancelRequest`) has no type byte, only a 4-byte
//! length; every other message is 1 type byte and a 4-byte length that
//! counts itself. The server's one-byte answer to an `SSLRequest` counts as
//! one message; after an `S` (TLS) the connection is forwarded without
//! counting, so use `sslmode=disable` through it.
//!
//! Faults ([`Fault`]) apply to the messages counted after
//! [`PgProxy::set`], on one connection or on all ([`Scope`]). A cut closes
//! both sides at once (what the server had received stays received: a cut
//! after the client's `Sync` is the ambiguous commit). It runs on threads
//! of its own, needs no runtime, never panics, and stops when dropped.
//!
//! ```no_run
//! use std::time::Duration;
//! use boxhook_testkit::pgproxy::{Direction, Fault, PgProxy, Scope};
//!
//! let Some(cluster) = boxhook_testkit::postgres::Cluster::start("doc") else { return Ok(()) };
//! let proxy = PgProxy::start(cluster.port())?;
//! let url = format!("postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable", proxy.port());
//! // … connect a client to `url`, then: the next message the server sends
//! // on any connection is its last; the connection is closed after it.
//! proxy.set(Scope::All, Fault::Cut { direction: Direction::ToClient, after: 1 });
//! // … or hold every message a client sends for 6 s
//! proxy.set(Scope::All, Fault::Stall { direction: Direction::ToServer, after: 0, duration: Duration::from_secs(6) });
//! for connection in proxy.connections() {
//!     println!("#{}: {} to the server, {} back", connection.id, connection.to_server, connection.to_client);
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

#![allow(
    clippy::doc_markdown,
    reason = "PostgreSQL, SSLRequest: product and message names, not code"
)]

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a forwarding thread wakes to look at the stop flag.
const TICK: Duration = Duration::from_millis(20);

/// How many message types [`PgProxy::messages`] keeps per connection and
/// direction.
pub const KINDS_KEPT: usize = 4096;

/// The `SSLRequest` and `GSSENCRequest` codes: the server answers each with
/// one byte, and the client's next message is untyped again.
const ENCRYPTION_REQUESTS: [u32; 2] = [80_877_103, 80_877_104];

/// Which way a message goes.
///
/// ```
/// use boxhook_testkit::pgproxy::Direction;
/// assert_eq!(Direction::ToServer.reverse(), Direction::ToClient);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (boxhook) to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

impl Direction {
    /// The other direction.
    ///
    /// ```
    /// use boxhook_testkit::pgproxy::Direction;
    /// assert_eq!(Direction::ToClient.reverse(), Direction::ToServer);
    /// ```
    #[must_use]
    pub fn reverse(self) -> Self {
        match self {
            Self::ToServer => Self::ToClient,
            Self::ToClient => Self::ToServer,
        }
    }
}

/// Which connections a fault applies to.
///
/// ```
/// use boxhook_testkit::pgproxy::Scope;
/// let scope = Scope::Connection(3);
/// assert_ne!(scope, Scope::All);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every connection, open or opened later; messages are counted
    /// across all of them.
    All,
    /// The connection with this id ([`Connection::id`]).
    Connection(u64),
    /// The first connection accepted after the fault is set.
    Next,
}

/// What to do to the connections of a [`Scope`]. Message counts start
/// from zero when the fault is set.
///
/// ```
/// use std::time::Duration;
/// use boxhook_testkit::pgproxy::{Direction, Fault};
/// let cut = Fault::Cut { direction: Direction::ToServer, after: 3 };
/// let stall = Fault::Stall { direction: Direction::ToClient, after: 0, duration: Duration::from_secs(1) };
/// let random = Fault::CutAtRandom { probability: 0.05, seed: 7 };
/// assert_ne!(cut, stall);
/// assert_ne!(stall, random);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Forward the `after`-th message in `direction`, then close both
    /// sides of its connection (`after` 0: before the first byte). Once.
    Cut {
        /// The direction whose messages are counted.
        direction: Direction,
        /// The last message forwarded.
        after: u64,
    },
    /// Forward the `after`-th message in `direction`, then forward nothing
    /// more that way for `duration` (the bytes wait, in the proxy or the
    /// kernel), then go on. Once.
    Stall {
        /// The direction held.
        direction: Direction,
        /// The last message forwarded before the stall (0: none).
        after: u64,
        /// How long nothing more is forwarded that way.
        duration: Duration,
    },
    /// After each message, either way, close its connection with this
    /// probability (a seeded generator: the same seed and the same
    /// messages cut at the same places). Until the fault is replaced.
    CutAtRandom {
        /// The chance of a cut after each message, 0 to 1.
        probability: f64,
        /// The generator's seed.
        seed: u64,
    },
}

/// One connection's counts so far.
///
/// ```no_run
/// # let proxy = boxhook_testkit::pgproxy::PgProxy::start(5432)?;
/// let open = proxy.connections().into_iter().filter(|c| c.open).count();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// Its id: 1 for the first connection accepted, then 2, …
    pub id: u64,
    /// Complete messages the client sent through.
    pub to_server: u64,
    /// Complete messages the server sent through.
    pub to_client: u64,
    /// Whether both sides are still connected.
    pub open: bool,
}

/// The proxy (see the [module docs](self)). Dropped: it stops accepting,
/// closes every connection through it, and its threads end.
#[derive(Debug)]
pub struct PgProxy {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl PgProxy {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to
    /// `upstream_port` on 127.0.0.1.
    ///
    /// ```no_run
    /// let proxy = boxhook_testkit::pgproxy::PgProxy::start(5432)?;
    /// assert_ne!(proxy.port(), 5432);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When it cannot listen or start its thread.
    pub fn start(upstream_port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
            stop: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        });
        let accepting = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("pgproxy-accept".to_owned())
            .spawn(move || accept_loop(&listener, &accepting))?;
        Ok(Self {
            port,
            shared,
            accept: Some(accept),
        })
    }

    /// The port it listens on (127.0.0.1).
    ///
    /// ```no_run
    /// let proxy = boxhook_testkit::pgproxy::PgProxy::start(5432)?;
    /// let url = format!("postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable", proxy.port());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sets the fault (replacing any other), counting from now.
    ///
    /// ```no_run
    /// use boxhook_testkit::pgproxy::{Direction, Fault, PgProxy, Scope};
    /// let proxy = PgProxy::start(5432)?;
    /// proxy.set(Scope::Next, Fault::Cut { direction: Direction::ToClient, after: 2 });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set(&self, scope: Scope, fault: Fault) {
        let mut state = self.shared.state();
        let seed = match fault {
            Fault::CutAtRandom { seed, .. } => seed,
            _ => 0,
        };
        state.rule = Some(Rule {
            scope,
            fault,
            counted: 0,
            bound: None,
            rng: seed,
            done: false,
        });
        // A fault "after 0" on open connections: at once.
        let targets: Vec<u64> = state
            .connections
            .iter()
            .filter(|(id, c)| c.open && scope_has(scope, None, **id))
            .map(|(id, _)| *id)
            .collect();
        match fault {
            Fault::Cut {
                direction: _,
                after: 0,
            } if !targets.is_empty() => {
                for id in targets {
                    state.cut(id);
                }
                if let Some(rule) = &mut state.rule {
                    rule.done = true;
                }
            }
            Fault::Stall {
                direction,
                after: 0,
                duration,
            } if !targets.is_empty() => {
                let until = later(duration);
                for id in targets {
                    if let Some(c) = state.connections.get_mut(&id) {
                        c.stalled[index(direction)] = Some(until);
                    }
                }
                state.faults = state.faults.saturating_add(1);
                if let Some(rule) = &mut state.rule {
                    rule.done = true;
                }
            }
            _ => {}
        }
    }

    /// Removes the fault; ends any stall at once.
    ///
    /// ```no_run
    /// # let proxy = boxhook_testkit::pgproxy::PgProxy::start(5432)?;
    /// proxy.clear();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn clear(&self) {
        let mut state = self.shared.state();
        state.rule = None;
        for connection in state.connections.values_mut() {
            connection.stalled = [None, None];
        }
    }

    /// Closes every open connection through it now (both sides).
    ///
    /// ```no_run
    /// # let proxy = boxhook_testkit::pgproxy::PgProxy::start(5432)?;
    /// proxy.cut_all();
    /// assert!(proxy.connections().iter().all(|c| !c.open));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cut_all(&self) {
        let mut state = self.shared.state();
        let open: Vec<u64> = state
            .connections
            .iter()
            .filter(|(_, c)| c.open)
            .map(|(id, _)| *id)
            .collect();
        for id in open {
            state.cut(id);
        }
    }

    /// Every connection accepted so far, by id.
    ///
    /// ```no_run
    /// # let proxy = boxhook_testkit::pgproxy::PgProxy::start(5432)?;
    /// let sent: u64 = proxy.connections().iter().map(|c| c.to_server).sum();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn connections(&self) -> Vec<Connection> {
        self.shared
            .state()
            .connections
            .iter()
            .map(|(id, c)| Connection {
                id: *id,
                to_server: c.counts[0],
                to_client: c.counts[1],
                open: c.open,
            })
            .collect()
    }

    /// The type bytes of the messages connection `id` carried in
    /// `direction` so far (the first [`KINDS_KEPT`]), in order: `0` for an
    /// untyped message (the startup message, an `SSLRequest`), the byte
    /// itself for the server's one-byte answer to an `SSLRequest`. Empty
    /// for an unknown id.
    ///
    /// ```no_run
    /// use boxhook_testkit::pgproxy::{Direction, PgProxy};
    /// # let proxy = PgProxy::start(5432)?;
    /// // e.g. b"\0PBDSBES" for a startup, a prepare and a first query
    /// let sent = String::from_utf8_lossy(&proxy.messages(1, Direction::ToServer)).into_owned();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn messages(&self, id: u64, direction: Direction) -> Vec<u8> {
        self.shared
            .state()
            .connections
            .get(&id)
            .map(|c| c.kinds[index(direction)].clone())
            .unwrap_or_default()
    }

    /// How many faults it applied so far (cuts and stalls, each once).
    ///
    /// ```no_run
    /// # let proxy = boxhook_testkit::pgproxy::PgProxy::start(5432)?;
    /// assert_eq!(proxy.faults(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn faults(&self) -> u64 {
        self.shared.state().faults
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut_all();
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    stop: AtomicBool,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    connections: BTreeMap<u64, Conn>,
    rule: Option<Rule>,
    faults: u64,
}

#[derive(Debug)]
struct Conn {
    client: TcpStream,
    server: TcpStream,
    open: bool,
    /// A cut is under way: the direction that decided it writes its last
    /// bytes; the other forwards nothing more (set before those bytes go,
    /// so nothing the peer sends in answer to them gets through).
    closing: bool,
    /// Messages counted: to the server, to the client.
    counts: [u64; 2],
    /// Until when each direction forwards nothing.
    stalled: [Option<Instant>; 2],
    /// The type bytes of the messages counted, each way (the first
    /// [`KINDS_KEPT`]).
    kinds: [Vec<u8>; 2],
    wire: Wire,
}

#[derive(Debug)]
struct Rule {
    scope: Scope,
    fault: Fault,
    counted: u64,
    /// For [`Scope::Next`]: the connection it took.
    bound: Option<u64>,
    rng: u64,
    done: bool,
}

/// What a forwarding thread does at a message boundary.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Go,
    Cut,
    Stall(Duration),
}

/// Now plus `duration`, or far ahead when that overflows.
fn later(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration).unwrap_or_else(|| {
        now.checked_add(Duration::from_secs(86_400 * 365))
            .unwrap_or(now)
    })
}

fn index(direction: Direction) -> usize {
    match direction {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

fn scope_has(scope: Scope, bound: Option<u64>, id: u64) -> bool {
    match scope {
        Scope::All => true,
        Scope::Connection(target) => target == id,
        Scope::Next => bound == Some(id),
    }
}

impl State {
    fn cut(&mut self, id: u64) {
        if let Some(c) = self.connections.get_mut(&id) {
            // A cut that a forwarder began ([`State::begin_cut`]) was
            // counted then.
            if c.open && !c.closing {
                self.faults = self.faults.saturating_add(1);
            }
            c.closing = true;
            c.open = false;
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.server.shutdown(Shutdown::Both);
        }
    }

    /// The rule's word on connection `id` before it forwards anything more
    /// in `direction` (a fault "after 0" on a connection opened later).
    fn before_first(&mut self, id: u64, direction: Direction) -> Action {
        let Some(rule) = &mut self.rule else {
            return Action::Go;
        };
        if rule.done || rule.counted != 0 || !scope_has(rule.scope, rule.bound, id) {
            return Action::Go;
        }
        let action = match rule.fault {
            Fault::Cut {
                direction: d,
                after: 0,
            } if d == direction => Action::Cut,
            Fault::Stall {
                direction: d,
                after: 0,
                duration,
            } if d == direction => Action::Stall(duration),
            _ => return Action::Go,
        };
        rule.done = true;
        action
    }

    /// Counts a message that just ended on connection `id`, and says what
    /// to do after forwarding it.
    fn counted(&mut self, id: u64, direction: Direction, kind: u8) -> Action {
        if let Some(c) = self.connections.get_mut(&id) {
            c.counts[index(direction)] = c.counts[index(direction)].saturating_add(1);
            let kinds = &mut c.kinds[index(direction)];
            if kinds.len() < KINDS_KEPT {
                kinds.push(kind);
            }
        }
        let Some(rule) = &mut self.rule else {
            return Action::Go;
        };
        if rule.done || !scope_has(rule.scope, rule.bound, id) {
            return Action::Go;
        }
        match rule.fault {
            Fault::Cut {
                direction: d,
                after,
            } if d == direction => {
                rule.counted = rule.counted.saturating_add(1);
                if rule.counted >= after {
                    rule.done = true;
                    return Action::Cut;
                }
            }
            Fault::Stall {
                direction: d,
                after,
                duration,
            } if d == direction => {
                rule.counted = rule.counted.saturating_add(1);
                if rule.counted >= after {
                    rule.done = true;
                    return Action::Stall(duration);
                }
            }
            Fault::CutAtRandom { probability, .. } => {
                rule.counted = rule.counted.saturating_add(1);
                if unit(&mut rule.rng) < probability {
                    return Action::Cut;
                }
            }
            _ => {}
        }
        Action::Go
    }
}

/// A number in [0, 1) from a splitmix64 step of `state`.
#[allow(
    clippy::arithmetic_side_effects,
    reason = "shifts by constants below 64 and a division by a nonzero constant"
)]
fn unit(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // The top 53 bits, as a fraction.
    #[allow(
        clippy::cast_precision_loss,
        reason = "53 bits fit a f64's mantissa exactly"
    )]
    let fraction = (z >> 11) as f64 / (1_u64 << 53) as f64;
    fraction
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stopped() {
        match listener.accept() {
            // When the server cannot be reached, the client sees its
            // connection closed: nothing else to do.
            Ok((client, _)) => drop(open(client, shared)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(_) => std::thread::sleep(TICK),
        }
    }
}

/// Connects `client` to the server and starts forwarding both ways.
fn open(client: TcpStream, shared: &Arc<Shared>) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5))?;
    for stream in [&client, &server] {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(TICK))?;
    }
    let id = {
        let mut state = shared.state();
        state.next_id = state.next_id.saturating_add(1);
        let id = state.next_id;
        if let Some(rule) = &mut state.rule
            && rule.scope == Scope::Next
            && rule.bound.is_none()
            && !rule.done
        {
            rule.bound = Some(id);
        }
        state.connections.insert(
            id,
            Conn {
                client: client.try_clone()?,
                server: server.try_clone()?,
                open: true,
                closing: false,
                counts: [0, 0],
                stalled: [None, None],
                kinds: [Vec::new(), Vec::new()],
                wire: Wire::default(),
            },
        );
        id
    };
    for (direction, from, to) in [
        (
            Direction::ToServer,
            client.try_clone()?,
            server.try_clone()?,
        ),
        (Direction::ToClient, server, client),
    ] {
        let forwarding = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("pgproxy-{id}"))
            .spawn(move || forward(&forwarding, id, direction, from, to));
        if spawned.is_err() {
            shared.state().cut(id);
        }
    }
    Ok(())
}

/// Forwards `from` to `to`, message by message, as the rule says.
fn forward(shared: &Shared, id: u64, direction: Direction, mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0_u8; 64 * 1024];
    let mut first = true;
    loop {
        if shared.stopped() {
            break;
        }
        // A stall set on this connection: read nothing until it ends.
        if !held(shared, id, direction) {
            break;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        // A stall set while this read waited: its bytes wait too; a cut
        // decided meanwhile by the other direction: they never go.
        if !held(shared, id, direction) || closing(shared, id) {
            break;
        }
        let chunk = &buf[..n];
        if first {
            first = false;
            let action = shared.state().before_first(id, direction);
            if !apply(shared, id, direction, action, &mut to, &[]) {
                return;
            }
        }
        let ends = match shared.state().connections.get_mut(&id) {
            Some(c) => c.wire.feed(direction, chunk),
            None => break,
        };
        let mut start = 0;
        for (end, kind) in ends {
            let action = shared.state().counted(id, direction, kind);
            if action == Action::Go {
                continue;
            }
            if !apply(shared, id, direction, action, &mut to, &chunk[start..end]) {
                return;
            }
            start = end;
        }
        if closing(shared, id) || to.write_all(&chunk[start..]).is_err() {
            break;
        }
    }
    shared.state().cut_quietly(id);
}

/// Whether connection `id` is being cut (or is gone).
fn closing(shared: &Shared, id: u64) -> bool {
    shared
        .state()
        .connections
        .get(&id)
        .is_none_or(|c| c.closing || !c.open)
}

/// Writes `bytes`, then cuts or stalls; false when the connection is done.
fn apply(
    shared: &Shared,
    id: u64,
    direction: Direction,
    action: Action,
    to: &mut TcpStream,
    bytes: &[u8],
) -> bool {
    if action == Action::Cut {
        shared.state().begin_cut(id);
    }
    if to.write_all(bytes).is_err() {
        shared.state().cut_quietly(id);
        return false;
    }
    match action {
        Action::Go => true,
        Action::Cut => {
            shared.state().cut(id);
            false
        }
        Action::Stall(duration) => {
            let until = later(duration);
            {
                let mut state = shared.state();
                state.faults = state.faults.saturating_add(1);
                if let Some(c) = state.connections.get_mut(&id) {
                    c.stalled[index(direction)] = Some(until);
                }
            }
            // Held here (the rest of this read waits with it) until the
            // stall ends, is cleared, or the proxy stops.
            held(shared, id, direction)
        }
    }
}

/// Waits while `direction` of connection `id` is stalled; false when the
/// connection is closed or the proxy stops.
fn held(shared: &Shared, id: u64, direction: Direction) -> bool {
    loop {
        if shared.stopped() {
            return false;
        }
        let until = {
            let mut state = shared.state();
            let Some(c) = state.connections.get_mut(&id) else {
                return false;
            };
            if !c.open {
                return false;
            }
            let until = c.stalled[index(direction)];
            if until.is_some_and(|until| Instant::now() >= until) {
                c.stalled[index(direction)] = None;
                return true;
            }
            until
        };
        match until {
            Some(until) => {
                std::thread::sleep(TICK.min(until.saturating_duration_since(Instant::now())));
            }
            None => return true,
        }
    }
}

impl State {
    /// Marks connection `id` as being cut, and counts the fault: from now
    /// on the other direction forwards nothing, while this one writes its
    /// last message.
    fn begin_cut(&mut self, id: u64) {
        if let Some(c) = self.connections.get_mut(&id)
            && c.open
            && !c.closing
        {
            c.closing = true;
            self.faults = self.faults.saturating_add(1);
        }
    }

    /// Closes connection `id` because a side went away (not a fault).
    fn cut_quietly(&mut self, id: u64) {
        if let Some(c) = self.connections.get_mut(&id) {
            c.open = false;
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.server.shutdown(Shutdown::Both);
        }
    }
}

/// Both directions' parsers of one connection.
#[derive(Debug)]
struct Wire {
    to_server: Framer,
    to_client: Framer,
}

impl Wire {
    /// Feeds `bytes` going `direction`; returns where, in `bytes`, each
    /// message that completes ends, and its type byte.
    fn feed(&mut self, direction: Direction, bytes: &[u8]) -> Vec<(usize, u8)> {
        match direction {
            Direction::ToServer => {
                let (ends, requests) = self.to_server.feed(bytes);
                // Each encryption request gets a one-byte answer.
                self.to_client.bytes_expected =
                    self.to_client.bytes_expected.saturating_add(requests);
                ends
            }
            Direction::ToClient => {
                let (ends, encrypted) = self.to_client.feed(bytes);
                if encrypted > 0 {
                    // TLS or GSS from here on: nothing more can be read.
                    self.to_server.opaque = true;
                    self.to_client.opaque = true;
                }
                ends
            }
        }
    }
}

/// Finds where messages end in one direction of the stream.
#[derive(Debug)]
struct Framer {
    /// The next message has no type byte (a client's first).
    untyped: bool,
    /// One-byte messages due first (the server's answers to encryption
    /// requests).
    bytes_expected: u64,
    /// No longer parsed (encrypted, or not the protocol).
    opaque: bool,
    /// The current message's header bytes read so far.
    head: Vec<u8>,
    /// The current message's body bytes still to come.
    left: u64,
    /// The current message's type byte (0: untyped).
    kind: u8,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new(false)
    }
}

impl Framer {
    fn new(untyped: bool) -> Self {
        Self {
            untyped,
            bytes_expected: 0,
            opaque: false,
            head: Vec::with_capacity(8),
            left: 0,
            kind: 0,
        }
    }

    /// Where messages end in `bytes`, and how many were encryption
    /// requests (client side) or answers that start encryption (server
    /// side).
    fn feed(&mut self, bytes: &[u8]) -> (Vec<(usize, u8)>, u64) {
        let mut ends = Vec::new();
        let mut special = 0_u64;
        let mut rest = bytes;
        // Where `rest` starts in `bytes`.
        let at = |rest: &[u8]| bytes.len().saturating_sub(rest.len());
        while !rest.is_empty() && !self.opaque {
            if self.left > 0 {
                let take = usize::try_from(self.left)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                rest = rest.get(take..).unwrap_or_default();
                self.left = self
                    .left
                    .saturating_sub(u64::try_from(take).unwrap_or(u64::MAX));
                if self.left == 0 {
                    ends.push((at(rest), self.kind));
                }
                continue;
            }
            if self.head.is_empty() && self.bytes_expected > 0 {
                self.bytes_expected = self.bytes_expected.saturating_sub(1);
                let Some((&answer, after)) = rest.split_first() else {
                    break;
                };
                rest = after;
                ends.push((at(rest), answer));
                if answer != b'N' {
                    special = special.saturating_add(1);
                    self.opaque = true;
                }
                continue;
            }
            let size: usize = if self.untyped { 8 } else { 5 };
            let take = size.saturating_sub(self.head.len()).min(rest.len());
            let (head, after) = rest.split_at(take);
            self.head.extend_from_slice(head);
            rest = after;
            if self.head.len() < size {
                continue;
            }
            let word = |from: usize| {
                self.head
                    .get(from..from.saturating_add(4))
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(0, u32::from_be_bytes)
            };
            let (length, header) = if self.untyped {
                (word(0), 8)
            } else {
                (word(1), 4)
            };
            let code = if self.untyped { word(4) } else { 0 };
            self.kind = if self.untyped {
                0
            } else {
                self.head.first().copied().unwrap_or(0)
            };
            self.head.clear();
            let Some(left) = length.checked_sub(header) else {
                // Not this protocol: stop counting, go on forwarding.
                self.opaque = true;
                break;
            };
            self.left = u64::from(left);
            if self.untyped {
                if ENCRYPTION_REQUESTS.contains(&code) {
                    special = special.saturating_add(1);
                } else {
                    self.untyped = false;
                }
            }
            if self.left == 0 {
                ends.push((at(rest), self.kind));
            }
        }
        (ends, special)
    }
}

impl Default for Wire {
    fn default() -> Self {
        Self {
            to_server: Framer::new(true),
            to_client: Framer::new(false),
        }
    }
}

#[cfg(test)]
mod tests;
