//! [`BodyBudget`]: one byte budget for every body the verify layer holds.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A byte budget shared by every request a [`VerifyLayer`](super::VerifyLayer)
/// (and every clone of it) serves: the most body bytes held in memory at
/// once, across all connections.
///
/// Without a budget, memory for bodies grows with `body_limit` × concurrent
/// requests. With one, a request reserves its body's bytes before they are
/// buffered (the whole `Content-Length` up front when declared, otherwise
/// frame by frame as they arrive) and holds them until the inner service's
/// response is ready; a request the budget cannot cover is answered at once
/// with 503 ([`Rejection::Overloaded`](super::Rejection::Overloaded), which
/// Box retries), never queued.
///
/// Clones share one counter. Any value is valid: `0` admits only empty
/// bodies, `usize::MAX` never refuses.
///
/// ```
/// use boxhook::verify::BodyBudget;
///
/// let budget = BodyBudget::new(64 * 1024 * 1024); // 64 MiB for all bodies together
/// let shared = budget.clone();
/// assert_eq!(shared.capacity(), 64 * 1024 * 1024);
/// assert_eq!(budget.in_use(), 0);
/// assert_eq!(budget.available(), 64 * 1024 * 1024);
/// ```
#[derive(Clone)]
pub struct BodyBudget {
    inner: Arc<Counter>,
}

struct Counter {
    capacity: usize,
    used: AtomicUsize,
}

impl BodyBudget {
    /// A budget of `bytes` for all bodies held at once.
    ///
    /// ```
    /// let budget = boxhook::verify::BodyBudget::new(0); // only empty bodies pass
    /// assert_eq!(budget.available(), 0);
    /// ```
    #[must_use]
    pub fn new(bytes: usize) -> Self {
        Self {
            inner: Arc::new(Counter {
                capacity: bytes,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// The budget, in bytes.
    ///
    /// ```
    /// assert_eq!(boxhook::verify::BodyBudget::new(4096).capacity(), 4096);
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// The bytes reserved by requests in flight.
    ///
    /// ```
    /// assert_eq!(boxhook::verify::BodyBudget::new(4096).in_use(), 0);
    /// ```
    #[must_use]
    pub fn in_use(&self) -> usize {
        self.inner.used.load(Ordering::Acquire)
    }

    /// The bytes a new request could still reserve.
    ///
    /// ```
    /// assert_eq!(boxhook::verify::BodyBudget::new(4096).available(), 4096);
    /// ```
    #[must_use]
    pub fn available(&self) -> usize {
        self.inner.capacity.saturating_sub(self.in_use())
    }

    /// An empty reservation, to grow as bytes arrive.
    pub(crate) fn reservation(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            bytes: 0,
        }
    }

    /// Takes `bytes` from the budget if it has them; never waits.
    fn take(&self, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        let counter = &*self.inner;
        counter
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes)
                    .filter(|&total| total <= counter.capacity)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        if bytes > 0 {
            self.inner.used.fetch_sub(bytes, Ordering::AcqRel);
        }
    }
}

impl fmt::Debug for BodyBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyBudget")
            .field("capacity", &self.capacity())
            .field("in_use", &self.in_use())
            .finish()
    }
}

/// Bytes one request holds in a [`BodyBudget`]; given back on drop.
pub(crate) struct Reservation {
    budget: BodyBudget,
    bytes: usize,
}

impl Reservation {
    /// Makes the reservation cover at least `total` bytes; `false` (and no
    /// change) when the budget cannot.
    pub(crate) fn cover(&mut self, total: usize) -> bool {
        let Some(more) = total.checked_sub(self.bytes).filter(|&more| more > 0) else {
            return true;
        };
        if self.budget.take(more) {
            self.bytes = total;
            true
        } else {
            false
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_take_and_give_back() {
        let budget = BodyBudget::new(10);
        let mut a = budget.reservation();
        assert!(a.cover(4));
        assert!(a.cover(3), "already covered");
        assert!(a.cover(6));
        assert_eq!((budget.in_use(), budget.available()), (6, 4));
        let mut b = budget.reservation();
        assert!(!b.cover(5));
        assert_eq!(budget.in_use(), 6, "a refused reservation takes nothing");
        assert!(b.cover(4));
        assert_eq!(budget.available(), 0);
        drop(a);
        assert_eq!(budget.in_use(), 4);
        drop(b);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn extreme_budgets_never_panic() {
        for capacity in [0, 1, usize::MAX - 1, usize::MAX] {
            let budget = BodyBudget::new(capacity);
            let mut a = budget.reservation();
            assert!(a.cover(0));
            assert_eq!(a.cover(1), capacity >= 1, "{capacity}");
            assert_eq!(a.cover(usize::MAX), capacity == usize::MAX, "{capacity}");
            let mut b = budget.reservation();
            assert_eq!(
                b.cover(usize::MAX),
                capacity == usize::MAX && budget.in_use() == 0
            );
            drop((a, b));
            assert_eq!(budget.in_use(), 0, "{capacity}");
        }
    }
}
