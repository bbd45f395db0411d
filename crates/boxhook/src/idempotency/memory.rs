//! [`MemoryStore`]: the default, in-process idempotency store.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher as _, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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
/// Sharded, so that no request waits behind another's lock for long: the
/// entries are split over up to the next power of two ≥ 4 × the cores'
/// shards, each its own lock, map and eviction queue, an event going to
/// the shard a hash of its (webhook id, event id) picks. A map growing past
/// a rehash point then moves one shard's entries, not all of them, and
/// requests for other shards go on meanwhile. The cap is the store's, not
/// a shard's: one atomic count of all entries, so nothing is evicted until
/// the store holds `max_entries`, and it never holds more (but for the
/// moment between a new entry and the eviction it causes). When it is full,
/// a new entry evicts the least recently changed entry of its own shard
/// (of another shard if its own is empty): with events spread evenly by the
/// hash, that is close to the store's oldest. There are fewer shards when
/// one would average under 1 024 entries, so a store capped under 2 048
/// entries has one shard and evicts exactly the least recently changed
/// entry.
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
    shards: Box<[Shard]>,
    /// Picks an event's shard; independent of the maps' own hashers.
    hasher: RandomState,
    /// How far to shift a 64-bit hash right to get a shard index (64 −
    /// log2 of the shard count): the top bits pick the shard.
    shift: u32,
    /// Entries in all shards, changed under the shard's lock.
    len: AtomicUsize,
    max_entries: usize,
    ttl: TimeDelta,
}

#[derive(Debug)]
struct Shard {
    state: Mutex<State>,
}

/// The fewest entries a shard has room for: below that, fewer shards.
const MIN_SHARD_ENTRIES: usize = 1024;

/// How many shards a store of `max_entries` gets on `cores` cores: the next
/// power of two ≥ 4 × `cores`, halved while a shard would hold fewer than
/// [`MIN_SHARD_ENTRIES`]; at least one.
fn shard_count(max_entries: usize, cores: usize) -> usize {
    let mut shards = cores
        .saturating_mul(4)
        .checked_next_power_of_two()
        .unwrap_or(1 << 10)
        .clamp(1, 1 << 10);
    while shards > 1 && max_entries.checked_div(shards).unwrap_or(0) < MIN_SHARD_ENTRIES {
        shards /= 2;
    }
    shards
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
    /// ```
    /// use std::time::Duration;
    /// use boxhook::idempotency::MemoryStore;
    ///
    /// let store = MemoryStore::new(1_000, Duration::from_secs(3600));
    /// assert!(store.is_empty());
    /// ```
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
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let count = shard_count(max_entries, cores);
        let shards = (0..count)
            .map(|_| Shard {
                state: Mutex::new(State::default()),
            })
            .collect();
        Self {
            shards,
            hasher: RandomState::new(),
            shift: 64_u32.saturating_sub(count.trailing_zeros()),
            len: AtomicUsize::new(0),
            max_entries,
            ttl: TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX),
        }
    }

    /// How many events are remembered now.
    ///
    /// ```
    /// let store = boxhook::idempotency::MemoryStore::default();
    /// assert_eq!(store.len(), 0);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no event is remembered.
    ///
    /// ```
    /// assert!(boxhook::idempotency::MemoryStore::default().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shard `key` lives in.
    fn shard(&self, key: &EventKey) -> &Shard {
        let hash = self.hasher.hash_one(key);
        // `shift` is 64 − log2(count) with count ≥ 1; `checked_shr` is
        // `None` only for a shift of 64 (one shard): index 0.
        let index = hash.checked_shr(self.shift).unwrap_or(0);
        let index = usize::try_from(index).unwrap_or(0);
        // In bounds: the top log2(count) bits of a hash are below count.
        &self.shards[index]
    }

    fn claim_now(&self, key: &EventKey, now: DateTime<Utc>, lease: Duration) -> Claim {
        let shard = self.shard(key);
        let mut state = lock(shard);
        let expired = state.expire(now, self.ttl);
        self.forgot(expired);
        if let Some(entry) = state.entries.get(key) {
            if entry.done {
                return Claim::Done;
            }
            if entry.at > now {
                return Claim::InProgress;
            }
        }
        let until = super::lease_end(now, lease);
        self.record(shard, state, key, false, until, now);
        Claim::Acquired
    }

    /// Records a change to `key` in its `shard` (locked as `state`),
    /// evicting the least recently changed entry if a new entry takes the
    /// store past `max_entries`.
    fn record(
        &self,
        shard: &Shard,
        mut state: MutexGuard<'_, State>,
        key: &EventKey,
        done: bool,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        let mut evict_elsewhere = false;
        if !state.entries.contains_key(key)
            && self.len.fetch_add(1, Ordering::Relaxed) >= self.max_entries
        {
            if state.evict_oldest() {
                self.forgot(1);
            } else {
                evict_elsewhere = true;
            }
        }
        state.touch(key, done, at, now);
        drop(state);
        if evict_elsewhere {
            // One lock at a time (this shard's is released): no deadlock.
            for other in self
                .shards
                .iter()
                .filter(|other| !std::ptr::eq(*other, shard))
            {
                if lock(other).evict_oldest() {
                    self.forgot(1);
                    break;
                }
            }
        }
    }

    /// Counts `n` entries removed.
    fn forgot(&self, n: usize) {
        if n > 0 {
            self.len.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

fn lock(shard: &Shard) -> std::sync::MutexGuard<'_, State> {
    // Every critical section leaves the state whole, so a poisoned lock's
    // state is still consistent.
    shard.state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    /// Records a change to `key` (the store counts and evicts).
    fn touch(&mut self, key: &EventKey, done: bool, at: DateTime<Utc>, now: DateTime<Utc>) {
        // Wrapping: a u64 counter of changes never wraps in practice, and if
        // it did, the only cost is one stale queue slot kept a little longer.
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let shared = if let Some((shared, _)) = self.entries.get_key_value(key) {
            Arc::clone(shared)
        } else {
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

    /// Forgets entries whose last change is older than `ttl`; how many.
    fn expire(&mut self, now: DateTime<Utc>, ttl: TimeDelta) -> usize {
        let mut expired = 0_usize;
        while let Some((key, generation)) = self.order.front() {
            match self.entries.get(key) {
                Some(e) if e.generation == *generation => {
                    // `changed` may be later than `now` (a clock stepped
                    // back): such an entry is not expired.
                    if now.signed_duration_since(e.changed) <= ttl {
                        return expired;
                    }
                    let key = Arc::clone(key);
                    self.entries.remove(&key);
                    expired = expired.saturating_add(1);
                }
                _ => {}
            }
            self.order.pop_front();
        }
        expired
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
        let shard = self.shard(key);
        self.record(shard, lock(shard), key, true, now, now);
        Ok(())
    }

    async fn release(&self, key: &EventKey) -> Result<(), StoreError> {
        let mut state = lock(self.shard(key));
        if state.entries.get(key).is_some_and(|e| !e.done) {
            state.entries.remove(key);
            self.forgot(1);
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
        assert_eq!(store.shards.len(), 1);
        assert!(lock(&store.shards[0]).order.len() <= 2 * 10 + 64 + 1);
    }

    #[test]
    fn shard_counts() {
        // Under 2 048 entries: one shard, so eviction is exactly LRU.
        assert_eq!(shard_count(3, 64), 1);
        assert_eq!(shard_count(2_047, 64), 1);
        assert_eq!(shard_count(2_048, 64), 2);
        // 4 × cores, rounded up to a power of two.
        assert_eq!(shard_count(100_000, 1), 4);
        assert_eq!(shard_count(100_000, 2), 8);
        assert_eq!(shard_count(100_000, 3), 16);
        // Capped by the room per shard, and overall.
        assert_eq!(shard_count(100_000, 64), 64);
        assert_eq!(shard_count(usize::MAX, usize::MAX), 1 << 10);
        assert_eq!(shard_count(usize::MAX, 0), 1);
    }

    #[test]
    fn the_cap_is_the_stores_not_a_shards() {
        let store = MemoryStore::new(5_000, Duration::from_secs(1_000_000));
        // Nothing is evicted before the store holds `max_entries`.
        for i in 0..5_000 {
            let k = EventKey::new("w", format!("first-{i}"));
            assert_eq!(store.claim_now(&k, t(0), LEASE), Claim::Acquired);
        }
        assert_eq!(store.len(), 5_000);
        for i in 0..5_000 {
            let k = EventKey::new("w", format!("first-{i}"));
            assert_eq!(store.claim_now(&k, t(0), LEASE), Claim::InProgress);
        }
        for i in 0..20_000 {
            let k = EventKey::new("w", format!("e-{i}"));
            assert_eq!(store.claim_now(&k, t(0), LEASE), Claim::Acquired);
            futures_lite_block_on(IdempotencyStore::complete(&store, &k, t(0))).expect("complete");
        }
        // Every shard filled up (each got about 20 000 / shards keys).
        assert_eq!(store.len(), 5_000);
        // The newest event is remembered; the oldest were evicted.
        assert_eq!(
            store.claim_now(&EventKey::new("w", "e-19999"), t(1), LEASE),
            Claim::Done
        );
        assert_eq!(
            store.claim_now(&EventKey::new("w", "e-0"), t(1), LEASE),
            Claim::Acquired
        );
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
