//! The raw verification path allocates nothing at all, whatever the body's
//! size: the body is hashed where it lies and the delivery id in `Verified`
//! shares the header's bytes.
//!
//! A counting global allocator records, per thread, every byte requested, so
//! the test harness's other threads cannot disturb a measurement.

// Reason: a `GlobalAlloc` impl is an `unsafe impl`. This file only forwards
// each call unchanged to `System` and adds to a thread-local counter; nothing
// else in boxhook-benches may use unsafe code (`unsafe_code = "deny"`).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use boxhook_benches::{file_uploaded, keys, now, signed_escaped_headers, signed_headers, Encoding};
use boxhook_core::{BodyForm, Verifier};

struct Counting;

thread_local! {
    // `const` and drop-free: touching it never allocates, so it is safe to
    // use from inside the allocator.
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn note(bytes: usize) {
    // `try_with`: during thread teardown the slot may be gone; not counting
    // then is harmless.
    let _ = BYTES.try_with(|b| b.set(b.get().saturating_add(bytes)));
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds the `GlobalAlloc` contract; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same layout the caller gave us, per `GlobalAlloc::alloc`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes requested from the allocator on this thread while `f` runs.
fn allocated_during<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = BYTES.with(Cell::get);
    let out = f();
    (BYTES.with(Cell::get) - before, out)
}

/// Bytes allocated by one verification of a delivery of `size` bytes.
fn verify_allocation(size: usize, encoding: Encoding) -> (usize, BodyForm) {
    let body = file_uploaded(size, encoding);
    let headers = match encoding {
        Encoding::Wire => signed_headers(&body),
        Encoding::RawUtf8 => signed_escaped_headers(&body),
    };
    let verifier = Verifier::new(keys());
    let now = now();
    // A first call outside the measurement, in case anything initialises lazily.
    verifier.verify(&headers, &body, now).expect("valid");
    let (bytes, outcome) = allocated_during(|| verifier.verify(&headers, &body, now));
    (bytes, outcome.expect("valid").body_form())
}

#[test]
fn raw_path_allocates_nothing() {
    let (small, form_small) = verify_allocation(1024, Encoding::Wire);
    let (large, form_large) = verify_allocation(64 * 1024, Encoding::Wire);
    println!("raw path: {small} B allocated at 1 KiB, {large} B at 64 KiB");
    assert_eq!((form_small, form_large), (BodyForm::Raw, BodyForm::Raw));
    assert_eq!(small, 0, "{small} B allocated verifying a 1 KiB body");
    assert_eq!(large, 0, "{large} B allocated verifying a 64 KiB body");
}

/// The control: the counter does see body-sized allocations, so the test
/// above cannot pass vacuously. The escaped fallback must build a copy.
#[test]
fn escaped_path_allocation_is_seen_by_the_counter() {
    let (small, form_small) = verify_allocation(1024, Encoding::RawUtf8);
    let (large, form_large) = verify_allocation(64 * 1024, Encoding::RawUtf8);
    println!("escaped path: {small} B allocated at 1 KiB, {large} B at 64 KiB");
    assert_eq!(
        (form_small, form_large),
        (BodyForm::Escaped, BodyForm::Escaped)
    );
    assert!(
        large >= 64 * 1024,
        "escaping 64 KiB allocated only {large} B"
    );
    assert!(large > small);
}
