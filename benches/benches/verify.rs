//! Verification cost against a bare HMAC-SHA256 of the same bytes, the
//! escaped-form fallback, and `escaped_form` alone.
//!
//! `cargo bench -p boxhook-benches --bench verify`
#![allow(
    missing_docs,
    reason = "criterion_group! defines an undocumented pub fn; a bench has no API"
)]

use std::borrow::Cow;
use std::hint::black_box;

use boxhook_benches::{
    file_uploaded, keys, now, signed_escaped_headers, signed_headers, size_label, Encoding,
    PRIMARY_KEY, SIZES, TIMESTAMP,
};
use boxhook_core::{escaped_form, BodyForm, DeliveryHeaders, DeliveryTimestamp, KeySlot, Verifier};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// `verify/boxhook/<size>` against `verify/bare_hmac/<size>`: the full raw
/// path (header reading, version and algorithm checks, timestamp parse and
/// freshness, base64 decode, HMAC, constant-time compare) against only the
/// HMAC over body ‖ timestamp. The baseline's key schedule is computed once
/// outside the loop, as the core's is, so the difference is all overhead.
fn verify_vs_bare_hmac(c: &mut Criterion) {
    let verifier = Verifier::new(keys());
    let now = now();
    let keyed = Hmac::<Sha256>::new_from_slice(PRIMARY_KEY.as_bytes()).expect("any key length");
    let mut group = c.benchmark_group("verify");
    for size in SIZES {
        let body = file_uploaded(size, Encoding::Wire);
        let headers = signed_headers(&body);
        let outcome = verifier.verify(&headers, &body, now).expect("valid");
        assert_eq!(
            (outcome.key_slot(), outcome.body_form()),
            (KeySlot::Primary, BodyForm::Raw)
        );

        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("boxhook", size_label(size)),
            &body,
            |b, body| {
                b.iter(|| {
                    verifier
                        .verify(black_box(&headers), black_box(body), black_box(now))
                        .expect("valid")
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("bare_hmac", size_label(size)),
            &body,
            |b, body| {
                b.iter(|| {
                    let mut mac = keyed.clone();
                    mac.update(black_box(body));
                    mac.update(black_box(TIMESTAMP.as_bytes()));
                    mac.finalize().into_bytes()
                });
            },
        );
    }
    group.finish();
}

/// A raw-UTF-8 body signed over its escaped form: the raw HMAC fails, the
/// body is escaped, and the second HMAC matches (see "The escaped form" in docs/PROTOCOL.md).
fn verify_escaped_fallback(c: &mut Criterion) {
    let verifier = Verifier::new(keys());
    let now = now();
    let mut group = c.benchmark_group("verify_escaped");
    for size in SIZES {
        let body = file_uploaded(size, Encoding::RawUtf8);
        let headers = signed_escaped_headers(&body);
        let outcome = verifier.verify(&headers, &body, now).expect("valid");
        assert_eq!(outcome.body_form(), BodyForm::Escaped);

        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("boxhook", size_label(size)),
            &body,
            |b, body| {
                b.iter(|| {
                    verifier
                        .verify(black_box(&headers), black_box(body), black_box(now))
                        .expect("valid")
                });
            },
        );
    }
    group.finish();
}

/// `escaped_form` alone: scanning a body already in Box's form (borrowed,
/// no allocation) and rewriting a raw-UTF-8 one (owned).
fn escaped_form_alone(c: &mut Criterion) {
    let mut group = c.benchmark_group("escaped_form");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        for (name, encoding) in [
            ("wire_borrowed", Encoding::Wire),
            ("raw_utf8_owned", Encoding::RawUtf8),
        ] {
            let body = file_uploaded(size, encoding);
            let borrowed = matches!(escaped_form(&body), Ok(Cow::Borrowed(_)));
            assert_eq!(borrowed, encoding == Encoding::Wire);
            group.bench_with_input(
                BenchmarkId::new(name, size_label(size)),
                &body,
                |b, body| {
                    b.iter(|| escaped_form(black_box(body)).expect("UTF-8"));
                },
            );
        }
    }
    group.finish();
}

/// Where the raw path's fixed cost goes: reading the Box headers out of an
/// `HeaderMap`, parsing the timestamp, and verifying headers already read.
fn fixed_costs(c: &mut Criterion) {
    let verifier = Verifier::new(keys());
    let now = now();
    let body = file_uploaded(8 * 1024, Encoding::Wire);
    let map = signed_headers(&body);
    let read = DeliveryHeaders::from_header_map(&map).expect("well-formed");
    let mut group = c.benchmark_group("verify_parts");
    group.bench_function("read_header_map", |b| {
        b.iter(|| DeliveryHeaders::from_header_map(black_box(&map)).expect("well-formed"));
    });
    group.bench_function("parse_timestamp", |b| {
        b.iter(|| DeliveryTimestamp::parse(black_box(TIMESTAMP)).expect("valid"));
    });
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("verify_headers/8KiB", |b| {
        b.iter(|| {
            verifier
                .verify_headers(black_box(&read), black_box(&body), black_box(now))
                .expect("valid")
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    verify_vs_bare_hmac,
    fixed_costs,
    verify_escaped_fallback,
    escaped_form_alone
);
criterion_main!(benches);
