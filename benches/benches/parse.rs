//! Envelope-only against full typed parse of a realistic `FILE.UPLOADED`
//! delivery.
//!
//! `cargo bench -p boxhook-benches --bench parse`
#![allow(
    missing_docs,
    reason = "criterion_group! defines an undocumented pub fn; a bench has no API"
)]

use std::hint::black_box;

use boxhook_benches::{file_uploaded, Encoding};
use boxhook_core::model::{Envelope, Trigger, WebhookEvent};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// The largest `FILE.UPLOADED` of the fixture corpus.
const FIXTURE: &[u8] =
    include_bytes!("../../crates/boxhook-core/fixtures/file.uploaded.deep-path.json");

fn envelope_vs_full(c: &mut Criterion) {
    let generated = file_uploaded(3 * 1024, Encoding::Wire);
    let inputs: [(&str, &[u8]); 2] = [
        ("fixture_deep_path", FIXTURE),
        ("generated_3KiB", &generated),
    ];
    let mut group = c.benchmark_group("parse");
    for (name, body) in inputs {
        let event = WebhookEvent::parse(body).expect("parses");
        assert_eq!(event.trigger(), &Trigger::FileUploaded);
        assert_eq!(Envelope::parse(body).expect("parses"), event.envelope());

        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("envelope", name), body, |b, body| {
            b.iter(|| Envelope::parse(black_box(body)).expect("parses"));
        });
        group.bench_with_input(BenchmarkId::new("full", name), body, |b, body| {
            b.iter(|| WebhookEvent::parse(black_box(body)).expect("parses"));
        });
    }
    group.finish();
}

criterion_group!(benches, envelope_vs_full);
criterion_main!(benches);
