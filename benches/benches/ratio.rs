//! Verification against a bare HMAC-SHA256 measured interleaved: short
//! alternating batches of each, so a machine busy with other work slows both
//! alike, and the median of the per-round ratios is the figure to trust when
//! criterion's back-to-back groups drift (docs/PERFORMANCE.md).
//!
//! `cargo bench -p boxhook-benches --bench ratio`

use std::hint::black_box;
use std::time::{Duration, Instant};

use boxhook_benches::{
    file_uploaded, keys, now, signed_headers, size_label, Encoding, PRIMARY_KEY, SIZES, TIMESTAMP,
};
use boxhook_core::Verifier;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const ROUNDS: usize = 501;
const BATCH_TARGET: Duration = Duration::from_millis(1);

/// Nanoseconds per call of `f` over a batch of `n` calls.
fn per_call(n: u32, f: &mut impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() * 1e9 / f64::from(n)
}

fn quartiles(values: &mut [f64]) -> [f64; 3] {
    values.sort_by(f64::total_cmp);
    let at = |q: usize| values[(values.len() - 1) * q / 4];
    [at(1), at(2), at(3)]
}

fn main() {
    let verifier = Verifier::new(keys());
    let now = now();
    let keyed = Hmac::<Sha256>::new_from_slice(PRIMARY_KEY.as_bytes()).expect("any key length");
    println!(
        "{:>6}  {:>12}  {:>12}  {:>22}",
        "body", "verify (ns)", "bare (ns)", "ratio p25 / p50 / p75"
    );
    for size in SIZES {
        let body = file_uploaded(size, Encoding::Wire);
        let headers = signed_headers(&body);
        let mut verify = || {
            black_box(
                verifier
                    .verify(black_box(&headers), black_box(&body), black_box(now))
                    .expect("valid"),
            );
        };
        let mut bare = || {
            let mut mac = keyed.clone();
            mac.update(black_box(&body));
            mac.update(black_box(TIMESTAMP.as_bytes()));
            black_box(mac.finalize().into_bytes());
        };

        // Calibrate a batch to about BATCH_TARGET, warming both up.
        let estimate = per_call(1000, &mut bare).max(1.0);
        per_call(1000, &mut verify);
        let batch_ns = BATCH_TARGET.as_secs_f64() * 1e9;
        // Truncation is fine: any batch of a few hundred calls will do.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a positive batch size well inside u32"
        )]
        let n = (batch_ns / estimate).clamp(10.0, 1e6) as u32;

        let (mut ratios, mut verify_ns, mut bare_ns) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let (v, b) = if round % 2 == 0 {
                let v = per_call(n, &mut verify);
                (v, per_call(n, &mut bare))
            } else {
                let b = per_call(n, &mut bare);
                (per_call(n, &mut verify), b)
            };
            ratios.push(v / b);
            verify_ns.push(v);
            bare_ns.push(b);
        }
        let [r25, r50, r75] = quartiles(&mut ratios);
        let [_, v50, _] = quartiles(&mut verify_ns);
        let [_, b50, _] = quartiles(&mut bare_ns);
        println!(
            "{:>6}  {v50:>12.0}  {b50:>12.0}  {r25:>6.3} / {r50:.3} / {r75:.3}",
            size_label(size)
        );
    }
}
