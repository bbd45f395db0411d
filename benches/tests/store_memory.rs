//! What one remembered event costs `MemoryStore` in heap bytes, so the
//! figure in its documentation is measured, not guessed.
//!
//! A counting global allocator tracks live heap bytes (allocations minus
//! frees); the test fills a store with events whose ids have Box's shapes
//! (a 9-digit webhook id, a 36-character UUID event id), completes each,
//! and divides the growth by the number of events. It fails if the cost per
//! entry leaves the range the documentation states.

// Reason: a `GlobalAlloc` impl is an `unsafe impl`. This file only forwards
// each call unchanged to `System` and adds to an atomic counter; nothing
// else in boxhook-benches may use unsafe code (`unsafe_code = "deny"`).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use boxhook::idempotency::{Claim, EventKey, IdempotencyStore, MemoryStore};

static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Live;

fn change(bytes: usize, sign: isize) {
    LIVE.fetch_add(
        sign * isize::try_from(bytes).unwrap_or(isize::MAX),
        Ordering::Relaxed,
    );
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds the `GlobalAlloc` contract; the counter has no effect on memory.
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        change(layout.size(), 1);
        // SAFETY: same layout the caller gave us.
        unsafe { System.alloc(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        change(layout.size(), -1);
        change(new_size, 1);
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        change(layout.size(), -1);
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

/// `MemoryStore`'s futures never wait, so one poll finishes them.
fn now_or_never<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("MemoryStore futures are always ready"),
    }
}

#[test]
fn bytes_per_entry_match_the_docs() {
    const N: usize = 100_000;
    let keys: Vec<EventKey> = (0..N)
        .map(|i| EventKey::new("413309744", format!("a3b9ce1d-2df5-4a1b-b4a2-{i:012x}")))
        .collect();
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("in range");
    let store = MemoryStore::new(N, Duration::from_secs(24 * 3600));
    let before = LIVE.load(Ordering::Relaxed);
    for key in &keys {
        assert_eq!(
            now_or_never(store.claim(key, now, Duration::from_secs(30))).expect("claim"),
            Claim::Acquired
        );
        now_or_never(store.complete(key, now)).expect("complete");
    }
    let per_entry = (LIVE.load(Ordering::Relaxed) - before) / isize::try_from(N).expect("fits");
    println!("MemoryStore: {per_entry} heap bytes per entry ({N} entries, 9 + 36 byte ids)");
    assert_eq!(store.len(), N);
    // The range MemoryStore's docs state for these id lengths.
    assert!(
        (150..=300).contains(&per_entry),
        "{per_entry} bytes per entry"
    );
}
