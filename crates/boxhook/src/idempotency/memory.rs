//! [`MemoryStore`]: the default, in-process idempotency store.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Claim, EventKey, IdempotencyStore, StoreError};

/// An in-memory [`IdempotencyStore`], bounded in entries and time.
///
/// - An entry lives `ttl` after its last change (default 24 h: Box's retries
///   span about 2 h; see "Retries and deduplication" in docs/PROTOCOL.md), then is forgotten.
/// - At `max_entries` (default 100 000) the least recently changed entry is
///   forgotten first. A forgotten event that Box delivers again is handled
///   again, so size the cap above the events one `ttl` brings.
/// - Memory: 215 heap bytes per entry with Box-shaped ids (a 9-digit
///   webhook id and a 36-character event id) — a `HashMap` slot, a queue
///   slot and one shared copy of the key — so the default cap costs about
///   21.5 MB at most. Measured by `benches/tests/store_memory.rs`
///   (`cargo test -p boxhook-benches --test store_memory -- --nocapture`),
///   which fails if the figure leaves 150–300 bytes.
///
/// State is lost on restart; events handled before a restart may be handled
/// again if Box retries them. Use a durable store where that matters.
///
/// ```
/// use std::time::Duration;
/// use boxhook::idempotency::MemoryStore;
///
/// let store = MemoryStore::new(10_000, Duration::from_secs(6 * 3600));
/// assert_eq!(store.len(), 0);
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    max_entries: usize,
    ttl: TimeDelta,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Arc<EventKey>, Entry>,
    /// Keys in the order they were last changed, each with the generation
    /// of that change; a queue slot whose generation is no longer the
    /// entry's is stale and skipped.
    order: VecDeque<(Arc<EventKey>, u64)>,
    generation: u64,
}

#[derive(Debug)]
struct Entry {
    done: bool,
    /// For a claim, when its lease ends; for a done entry, when it was done.
    at: DateTime<Utc>,
    changed: DateTime<Utc>,
    generation: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(100_000, Duration::from_secs(24 * 3600))
    }
}

impl MemoryStore {
    /// A store holding at most `max_entries` for `ttl` each.
    ///
    /// # Panics
    ///
    /// When `max_entries` is zero: such a store could deduplicate nothing.
    #[must_use]
    pub fn new(max_entries: usize, ttl: Duration) -> Self {
        assert!(
            max_entries > 0,
            "a MemoryStore needs room for at least one entry"
        );
        Self {
            state: Mutex::new(State::default()),
            max_entries,
            ttl: TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX),
        }
    }

    /// How many events are remembered now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no event is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the state whole, so a poisoned lock's
        // state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn claim_now(&self, key: &EventKey, now: DateTime<Utc>, lease: Duration) -> Claim {
        let mut state = self.lock();
        state.expire(now, self.ttl);
        if let Some(entry) = state.entries.get(key) {
            if entry.done {
                return Claim::Done;
            }
            if entry.at > now {
                return Claim::InProgress;
            }
        }
        let until = crate::inbox::backend::lease_end(now, lease);
        state.touch(key, false, until, now, self.max_entries);
        Claim::Acquired
    }
}

impl State {
    /// Records a change to `key`, evicting the oldest entries past the cap.
    fn touch(
        &mut self,
        key: &EventKey,
        done: bool,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
        cap: usize,
    ) {
        // Wrapping: a u64 counter of changes never wraps in practice, and if
        // it did, the only cost is one stale queue slot kept a little longer.
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let shared = if let Some((shared, _)) = self.entries.get_key_value(key) {
            Arc::clone(shared)
        } else {
            // Every entry has a current queue slot, so this always makes room.
            while self.entries.len() >= cap && self.evict_oldest() {}
            Arc::new(key.clone())
        };
        self.entries.insert(
            Arc::clone(&shared),
            Entry {
                done,
                at,
                changed: now,
                generation,
            },
        );
        self.order.push_back((shared, generation));
        if self.order.len() > self.entries.len().saturating_mul(2).saturating_add(64) {
            let entries = &self.entries;
            self.order
                .retain(|(k, g)| entries.get(k).is_some_and(|e| e.generation == *g));
        }
    }

    fn evict_oldest(&mut self) -> bool {
        while let Some((key, generation)) = self.order.pop_front() {
            if self
                .entries
                .get(&key)
                .is_some_and(|e| e.generation == generation)
            {
                self.entries.remove(&key);
                return true;
            }
        }
        false
    }

    /// Forgets entries whose last change is older than `ttl`.
    fn expire(&mut self, now: DateTime<Utc>, ttl: TimeDelta) {
        while let Some((key, generation)) = self.order.front() {
            match self.entries.get(key) {
                Some(e) if e.generation == *generation => {
                    // `changed` may be later than `now` (a clock stepped
                    // back): such an entry is not expired.
                    if now.signed_duration_since(e.changed) <= ttl {
                        return;
                    }
                    let key = Arc::clone(key);
                    self.entries.remove(&key);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }
}

impl IdempotencyStore for MemoryStore {
    async fn claim(
        &self,
        key: &EventKey,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        Ok(self.claim_now(key, now, lease))
    }

    async fn complete(&self, key: &EventKey, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.touch(key, true, now, now, self.max_entries);
        Ok(())
    }

    async fn release(&self, key: &EventKey) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.entries.get(key).is_some_and(|e| !e.done) {
            state.entries.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_600_000_000_i64.saturating_add(s), 0).expect("in range")
    }

    const LEASE: Duration = Duration::from_secs(30);

    #[test]
    fn claim_complete_release() {
        let store = MemoryStore::default();
        let k = EventKey::new("w", "e");
        assert_eq!(store.claim_now(&k, t(0), LEASE), Claim::Acquired);
        assert_eq!(store.claim_now(&k, t(1), LEASE), Claim::InProgress);
        // The lease ran out (a crashed attempt): the next claim wins.
        assert_eq!(store.claim_now(&k, t(31), LEASE), Claim::Acquired);
        futures_lite_block_on(IdempotencyStore::release(&store, &k)).expect("release");
        assert_eq!(store.claim_now(&k, t(32), LEASE), Claim::Acquired);
        futures_lite_block_on(IdempotencyStore::complete(&store, &k, t(33))).expect("complete");
        assert_eq!(store.claim_now(&k, t(34), LEASE), Claim::Done);
        // Release after completion does not forget the completion.
        futures_lite_block_on(IdempotencyStore::release(&store, &k)).expect("release");
        assert_eq!(store.claim_now(&k, t(35), LEASE), Claim::Done);
    }

    #[test]
    fn ttl_forgets_and_cap_evicts_oldest() {
        let store = MemoryStore::new(3, Duration::from_secs(100));
        for (i, id) in ["a", "b", "c", "d"].into_iter().enumerate() {
            let k = EventKey::new("w", id);
            assert_eq!(store.claim_now(&k, t(i as i64), LEASE), Claim::Acquired);
            futures_lite_block_on(IdempotencyStore::complete(&store, &k, t(i as i64)))
                .expect("complete");
        }
        assert_eq!(store.len(), 3);
        assert_eq!(
            store.claim_now(&EventKey::new("w", "a"), t(5), LEASE),
            Claim::Acquired,
            "evicted"
        );
        assert_eq!(
            store.claim_now(&EventKey::new("w", "d"), t(5), LEASE),
            Claim::Done
        );
        assert_eq!(
            store.claim_now(&EventKey::new("w", "d"), t(104), LEASE),
            Claim::Acquired,
            "expired"
        );
        assert!(store.len() <= 3);
    }

    #[test]
    fn queue_stays_bounded_under_churn() {
        let store = MemoryStore::new(10, Duration::from_secs(1_000_000));
        let k = EventKey::new("w", "e");
        for i in 0..10_000 {
            assert_eq!(store.claim_now(&k, t(i), LEASE), Claim::Acquired);
            futures_lite_block_on(IdempotencyStore::release(&store, &k)).expect("release");
        }
        assert!(store.lock().order.len() <= 2 * 10 + 64 + 1);
    }

    #[test]
    fn extreme_leases_and_times_never_panic() {
        let store = MemoryStore::new(4, Duration::MAX);
        let k = EventKey::new("w", "e");
        let max = DateTime::<Utc>::MAX_UTC;
        let min = DateTime::<Utc>::MIN_UTC;
        assert_eq!(store.claim_now(&k, t(0), Duration::MAX), Claim::Acquired);
        // The lease saturates at the end of time: held until then.
        assert_eq!(
            store.claim_now(&k, max - TimeDelta::seconds(1), Duration::MAX),
            Claim::InProgress
        );
        let k2 = EventKey::new("w", "e2");
        assert_eq!(store.claim_now(&k2, max, Duration::MAX), Claim::Acquired);
        assert_eq!(store.claim_now(&k2, min, Duration::ZERO), Claim::InProgress);
        let k3 = EventKey::new("w", "e3");
        assert_eq!(store.claim_now(&k3, min, Duration::ZERO), Claim::Acquired);
        // A zero lease ends at once.
        assert_eq!(store.claim_now(&k3, min, Duration::ZERO), Claim::Acquired);
    }

    /// The store's futures never wait, so one poll finishes them.
    fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => unreachable!("MemoryStore futures are always ready"),
        }
    }
}
