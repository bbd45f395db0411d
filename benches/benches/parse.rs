//! Envelope-only against full typed parse of a realistic `FILE.UPLOADED`
//! delivery, and both against `serde_json::Value` (`value_tree`), the tree a
//! generic parse builds of the same bytes: the typed parse builds none, so it
//! should cost well under it (target: `full` <= 0.6 x `value_tree`, same run).
//!
//! `cargo bench -p boxhook-benches --bench parse`
#![allow(
    missing_docs,
    reason = "criterion_group! defines an undocumented pub fn; a bench has no API"
)]

use std::hint::black_box;

use boxhook_benches::{file_uploaded, Encoding};
use boxhook_core::model::{Envelope, RoutingFields, Trigger, WebhookEvent};
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
        group.bench_with_input(BenchmarkId::new("value_tree", name), body, |b, body| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(body)).expect("JSON"));
        });
    }
    group.finish();
}

/// The parsing a router does per delivery, in its three possible designs:
///
/// - `lazy`: the envelope first (route, claim), then the typed event only
///   for a claimed delivery with a handler: a new event pays both, a
///   duplicate the envelope alone;
/// - `eager`: the typed event first, the routing fields read off it: a new
///   event pays one typed parse, and so does a duplicate;
/// - `peek` (the router's, for a handler route): the routing fields read off
///   the front of the body (`RoutingFields::peek`), then the typed event
///   only for a claimed delivery: a new event pays the peek and one typed
///   parse, a duplicate the peek alone.
fn router_designs(c: &mut Criterion) {
    let body = file_uploaded(3 * 1024, Encoding::Wire);
    let mut group = c.benchmark_group("router_parse");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("lazy/new_event", |b| {
        b.iter(|| {
            let envelope = Envelope::parse(black_box(&body)).expect("parses");
            black_box(envelope.id());
            WebhookEvent::parse(black_box(&body)).expect("parses")
        });
    });
    group.bench_function("lazy/duplicate", |b| {
        b.iter(|| Envelope::parse(black_box(&body)).expect("parses"));
    });
    group.bench_function("eager/new_event", |b| {
        b.iter(|| {
            let event = WebhookEvent::parse(black_box(&body)).expect("parses");
            black_box(event.envelope().id());
            event
        });
    });
    group.bench_function("eager/duplicate", |b| {
        b.iter(|| {
            let event = WebhookEvent::parse(black_box(&body)).expect("parses");
            black_box(event.envelope().id().len())
        });
    });
    group.bench_function("peek/new_event", |b| {
        b.iter(|| {
            let peeked = RoutingFields::peek(black_box(&body)).expect("peeked");
            black_box(peeked.id());
            WebhookEvent::parse(black_box(&body)).expect("parses")
        });
    });
    group.bench_function("peek/duplicate", |b| {
        b.iter(|| RoutingFields::peek(black_box(&body)).expect("peeked"));
    });
    group.finish();
}

criterion_group!(benches, envelope_vs_full, router_designs);
criterion_main!(benches);
