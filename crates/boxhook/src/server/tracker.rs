//! Which connections are open, where each is in its life, and which one
//! gives way when a new one arrives at the limit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::limits::{Limits, SHED_GRACE};

/// Locks `mutex`, going on with the data if a holder panicked: every update
/// below is a single assignment, so the data is never half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where one connection is in its life.
#[derive(Debug)]
struct Phase {
    /// A request has been handed to the service and not yet answered.
    in_flight: bool,
    /// Requests handed to the service so far.
    requests: u64,
    /// When the connection last became idle (accepted, or last answer made).
    idle_since: Instant,
    /// Asked to close (shed to make room, or stopping).
    close: bool,
}

/// One accepted connection, shared by its task, its service and the tracker.
#[derive(Debug)]
pub(super) struct Conn {
    accepted_at: Instant,
    phase: Mutex<Phase>,
    /// Wakes the connection's task to look at its phase again.
    pub(super) wake: Notify,
}

impl Conn {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            accepted_at: now,
            phase: Mutex::new(Phase {
                in_flight: false,
                requests: 0,
                idle_since: now,
                close: false,
            }),
            wake: Notify::new(),
        }
    }

    /// When the connection was accepted.
    #[cfg_attr(not(feature = "server-tls"), allow(dead_code))]
    pub(super) fn accepted_at(&self) -> Instant {
        self.accepted_at
    }

    /// Marks a request in flight; returns its number on this connection.
    pub(super) fn begin(&self) -> u64 {
        let mut phase = lock(&self.phase);
        phase.in_flight = true;
        phase.requests = phase.requests.saturating_add(1);
        phase.requests
    }

    /// Marks the request answered (or abandoned).
    pub(super) fn end(&self) {
        let mut phase = lock(&self.phase);
        phase.in_flight = false;
        phase.idle_since = Instant::now();
        drop(phase);
        self.wake.notify_one();
    }

    fn is_idle(&self) -> bool {
        !lock(&self.phase).in_flight
    }

    /// Idle, and past its first [`SHED_GRACE`] or done with a request: a
    /// connection that may be closed to make room.
    fn is_sheddable(&self, now: Instant) -> bool {
        let phase = lock(&self.phase);
        !phase.in_flight
            && (phase.requests > 0
                || self
                    .accepted_at
                    .checked_add(SHED_GRACE)
                    .is_none_or(|end| end <= now))
    }

    /// When this connection becomes sheddable if it stays idle and makes
    /// no request; `None` when it is already past its grace.
    fn grace_end(&self, now: Instant) -> Option<Instant> {
        let phase = lock(&self.phase);
        if phase.requests > 0 {
            return None;
        }
        self.accepted_at
            .checked_add(SHED_GRACE)
            .filter(|end| *end > now)
    }

    fn ask_to_close(&self) {
        lock(&self.phase).close = true;
        self.wake.notify_one();
    }

    fn asked_to_close(&self) -> bool {
        lock(&self.phase).close
    }

    /// Whether the connection should close now; if not, when to look again.
    pub(super) fn check(&self, limits: &Limits, now: Instant) -> Check {
        let phase = lock(&self.phase);
        let aged_at = self.accepted_at.checked_add(limits.max_age);
        let idle_at = if phase.in_flight {
            None
        } else {
            phase.idle_since.checked_add(limits.idle_timeout)
        };
        if phase.close || aged_at.is_some_and(|at| at <= now) || idle_at.is_some_and(|at| at <= now)
        {
            return Check::Close {
                // Nothing was ever handed to the service, so nothing is owed:
                // a half-sent first head need not hold up the close.
                drop_now: !phase.in_flight && phase.requests == 0,
            };
        }
        Check::Later(match (aged_at, idle_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}

/// What [`Conn::check`] found.
pub(super) enum Check {
    /// Close now: at once when `drop_now`, else once the answer in flight is written.
    Close { drop_now: bool },
    /// Look again at this instant (`None`: only when woken).
    Later(Option<Instant>),
}

/// Marks a request answered when dropped, so a cancelled request counts too.
pub(super) struct InFlight {
    pub(super) conn: Arc<Conn>,
    pub(super) tracker: Arc<Tracker>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.conn.end();
        self.tracker.changed.notify_one();
    }
}

/// Whether a new connection can be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Room {
    /// Below the limit.
    Free,
    /// At the limit, with an idle connection to close to make room.
    Shed,
    /// At the limit, every connection busy or new: new ones wait (until
    /// the first new idle one's grace ends, if any is).
    Full(Option<Instant>),
}

/// Every open connection, in the order they were accepted.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// A connection closed, or a request began or ended: the room changed.
    pub(super) changed: Notify,
}

impl Tracker {
    pub(super) fn add(&self, conn: Arc<Conn>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.conns).insert(id, conn);
        id
    }

    pub(super) fn remove(&self, id: u64) {
        lock(&self.conns).remove(&id);
        self.changed.notify_one();
    }

    /// Whether a new connection can be taken: fewer than `max` are held (not
    /// counting those already closing), or one of them can be shed, or
    /// neither (then also when one may become sheddable, if it stays idle).
    pub(super) fn room(&self, max: usize, now: Instant) -> Room {
        let conns = lock(&self.conns);
        let mut held = 0usize;
        let mut sheddable = false;
        let mut next = None::<Instant>;
        for conn in conns.values().filter(|c| !c.asked_to_close()) {
            held = held.saturating_add(1);
            sheddable = sheddable || conn.is_sheddable(now);
            if conn.is_idle()
                && let Some(end) = conn.grace_end(now)
            {
                next = Some(next.map_or(end, |n: Instant| n.min(end)));
            }
        }
        if held < max {
            Room::Free
        } else if sheddable {
            Room::Shed
        } else {
            Room::Full(next)
        }
    }

    /// While more than `max` connections are held, asks the oldest idle one
    /// other than `newest` to close. Returns how many were shed.
    pub(super) fn shed(&self, max: usize, newest: u64, now: Instant) -> usize {
        let conns = lock(&self.conns);
        let mut held = conns.values().filter(|c| !c.asked_to_close()).count();
        let mut shed = 0usize;
        for (_, conn) in conns.iter().filter(|(id, _)| **id != newest) {
            if held <= max {
                break;
            }
            if !conn.asked_to_close() && conn.is_sheddable(now) {
                conn.ask_to_close();
                held = held.saturating_sub(1);
                shed = shed.saturating_add(1);
            }
        }
        shed
    }

    pub(super) fn close_all(&self) {
        for conn in lock(&self.conns).values() {
            conn.ask_to_close();
        }
    }
}

/// Removes a connection from its tracker when dropped: when its task ends,
/// and also when the task panics or is aborted.
pub(super) struct Registered {
    pub(super) tracker: Arc<Tracker>,
    pub(super) id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.tracker.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 2,
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            max_age: Duration::from_secs(300),
            max_requests: 10,
        }
    }

    #[test]
    fn an_idle_connection_closes_after_the_idle_timeout() {
        let now = Instant::now();
        let conn = Conn::new(now);
        assert!(matches!(
            conn.check(&limits(), now),
            Check::Later(Some(at)) if at == now + Duration::from_secs(5)
        ));
        assert!(matches!(
            conn.check(&limits(), now + Duration::from_secs(5)),
            Check::Close { drop_now: true }
        ));
    }

    #[test]
    fn a_busy_connection_is_only_bounded_by_its_age() {
        let now = Instant::now();
        let conn = Conn::new(now);
        assert_eq!(conn.begin(), 1);
        assert!(matches!(
            conn.check(&limits(), now + Duration::from_secs(60)),
            Check::Later(Some(at)) if at == now + Duration::from_secs(300)
        ));
        assert!(matches!(
            conn.check(&limits(), now + Duration::from_secs(300)),
            Check::Close { drop_now: false }
        ));
    }

    #[test]
    fn huge_limits_do_not_overflow() {
        let now = Instant::now();
        let conn = Conn::new(now);
        let huge = Limits {
            idle_timeout: Duration::MAX,
            max_age: Duration::MAX,
            ..limits()
        };
        assert!(matches!(conn.check(&huge, now), Check::Later(_)));
    }

    #[test]
    fn shedding_picks_the_oldest_idle_connection() {
        let tracker = Tracker::default();
        let accepted = Instant::now();
        assert_eq!(tracker.room(2, accepted), Room::Free);
        let now = accepted + SHED_GRACE;
        let conns: Vec<Arc<Conn>> = (0..3).map(|_| Arc::new(Conn::new(accepted))).collect();
        let ids: Vec<u64> = conns.iter().map(|c| tracker.add(Arc::clone(c))).collect();
        conns[0].begin(); // the oldest is busy
        assert_eq!(
            tracker.room(2, now),
            Room::Shed,
            "an idle connection can give way"
        );
        assert_eq!(tracker.shed(2, ids[2], now), 1);
        assert!(!conns[0].asked_to_close(), "busy: kept");
        assert!(conns[1].asked_to_close(), "the oldest idle one");
        assert!(!conns[2].asked_to_close(), "the new one");
        conns[2].begin();
        assert_eq!(
            tracker.room(2, now),
            Room::Full(None),
            "every held connection is busy"
        );
        assert_eq!(tracker.shed(2, ids[2], now), 0);
    }

    #[test]
    fn a_new_connection_is_not_shed_before_its_grace_ends() {
        let tracker = Tracker::default();
        let accepted = Instant::now();
        let conns: Vec<Arc<Conn>> = (0..3).map(|_| Arc::new(Conn::new(accepted))).collect();
        let ids: Vec<u64> = conns.iter().map(|c| tracker.add(Arc::clone(c))).collect();
        let early = accepted + SHED_GRACE / 2;
        assert_eq!(
            tracker.room(2, early),
            Room::Full(Some(accepted + SHED_GRACE)),
            "idle but new: newcomers wait until the first grace ends"
        );
        assert_eq!(tracker.shed(2, ids[2], early), 0);
        // One that has made a request is fair game at once.
        conns[1].begin();
        conns[1].end();
        assert_eq!(tracker.room(2, early), Room::Shed);
        assert_eq!(tracker.shed(2, ids[2], early), 1);
        assert!(conns[1].asked_to_close());
        assert!(!conns[0].asked_to_close(), "still in its grace");
        // After the grace, the oldest idle one goes.
        assert_eq!(tracker.shed(1, ids[2], accepted + SHED_GRACE), 1);
        assert!(conns[0].asked_to_close());
    }
}
