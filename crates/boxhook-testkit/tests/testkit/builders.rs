//! Every builder's output against the core's `Verifier`: the answer is written
//! out in each table row, and `Delivery::expected` must agree with it.

use std::time::Duration;

use boxhook_core::{BodyForm, ErrorKind, KeyRing, KeySlot, Verifier};
use boxhook_testkit::{fixtures, sample_keys, BoxHeader, Delivery, Expected};

const VECTOR_BODY: &str = r#"{"type":"webhook_event","webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"Test.txt"}}"#;

const RAW: Expected = Expected::Accepted(BodyForm::Raw);
const MISSING: Expected = Expected::Rejected(ErrorKind::MissingHeader);
const INVALID: Expected = Expected::Rejected(ErrorKind::InvalidHeader);
const MISMATCH: Expected = Expected::Rejected(ErrorKind::Mismatch);
const EXPIRED: Expected = Expected::Rejected(ErrorKind::Expired);
const FUTURE: Expected = Expected::Rejected(ErrorKind::Future);

type Transform = fn(Delivery) -> Delivery;

/// Builders whose answer does not depend on the body (with a two-key ring).
const ROWS: &[(&str, Transform, Expected)] = &[
    ("as sent by Box", |d| d, RAW),
    ("tampered", Delivery::tampered, MISMATCH),
    ("stale", Delivery::stale, EXPIRED),
    ("aged 600 s", |d| d.aged(Duration::from_secs(600)), RAW),
    ("aged 601 s", |d| d.aged(Duration::from_secs(601)), EXPIRED),
    ("future", Delivery::future, FUTURE),
    ("ahead 60 s", |d| d.ahead(Duration::from_secs(60)), RAW),
    ("ahead 1 h", |d| d.ahead(Duration::from_secs(3600)), FUTURE),
    ("wrong key", Delivery::wrong_key, MISMATCH),
    (
        "without delivery id",
        |d| d.without_header(BoxHeader::DeliveryId),
        RAW,
    ),
    (
        "without timestamp",
        |d| d.without_header(BoxHeader::DeliveryTimestamp),
        MISSING,
    ),
    (
        "without primary signature",
        |d| d.without_header(BoxHeader::SignaturePrimary),
        RAW,
    ),
    (
        "without secondary signature",
        |d| d.without_header(BoxHeader::SignatureSecondary),
        RAW,
    ),
    (
        "without both signatures",
        |d| {
            d.without_header(BoxHeader::SignaturePrimary)
                .without_header(BoxHeader::SignatureSecondary)
        },
        MISSING,
    ),
    (
        "without version",
        |d| d.without_header(BoxHeader::SignatureVersion),
        MISSING,
    ),
    (
        "without algorithm",
        |d| d.without_header(BoxHeader::SignatureAlgorithm),
        MISSING,
    ),
    (
        "duplicate delivery id",
        |d| d.duplicate_header(BoxHeader::DeliveryId, "another-id"),
        INVALID,
    ),
    (
        "duplicate timestamp",
        |d| d.duplicate_header(BoxHeader::DeliveryTimestamp, "2020-01-01T00:00:01-07:00"),
        INVALID,
    ),
    (
        "duplicate primary",
        |d| {
            d.duplicate_header(
                BoxHeader::SignaturePrimary,
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            )
        },
        INVALID,
    ),
    (
        "duplicate secondary",
        |d| d.duplicate_header(BoxHeader::SignatureSecondary, "x"),
        INVALID,
    ),
    (
        "duplicate version",
        |d| d.duplicate_header(BoxHeader::SignatureVersion, "2"),
        INVALID,
    ),
    (
        "duplicate algorithm",
        |d| d.duplicate_header(BoxHeader::SignatureAlgorithm, "HmacSHA1"),
        INVALID,
    ),
    (
        "identical duplicate version",
        |d| d.duplicate_header(BoxHeader::SignatureVersion, " 1 "),
        RAW,
    ),
    (
        "identical duplicate algorithm",
        |d| d.duplicate_header(BoxHeader::SignatureAlgorithm, "HmacSHA256"),
        RAW,
    ),
    (
        "duplicate of a removed header",
        |d| {
            d.without_header(BoxHeader::SignatureVersion)
                .duplicate_header(BoxHeader::SignatureVersion, "1")
        },
        MISSING,
    ),
    // Combinations answer with the verifier's first failing check.
    ("stale and tampered", |d| d.stale().tampered(), EXPIRED),
    (
        "duplicate and stale",
        |d| d.stale().duplicate_header(BoxHeader::SignatureVersion, "2"),
        INVALID,
    ),
    (
        "no timestamp and wrong key",
        |d| d.wrong_key().without_header(BoxHeader::DeliveryTimestamp),
        MISSING,
    ),
    (
        "future and no signatures",
        |d| {
            d.future()
                .without_header(BoxHeader::SignaturePrimary)
                .without_header(BoxHeader::SignatureSecondary)
        },
        FUTURE,
    ),
    (
        "re-serialized and tampered",
        |d| d.reserialized().tampered(),
        MISMATCH,
    ),
];

fn bodies() -> Vec<(String, Vec<u8>)> {
    let mut bodies = vec![
        ("vector".to_owned(), VECTOR_BODY.as_bytes().to_vec()),
        ("not json".to_owned(), b"hello, world".to_vec()),
        (
            "raw utf-8".to_owned(),
            "{\"n\":\"é/ü\"}".as_bytes().to_vec(),
        ),
        ("no alphanumerics".to_owned(), b"{}".to_vec()),
    ];
    bodies.extend(
        fixtures::all()
            .iter()
            .map(|f| (f.name().to_owned(), f.body().to_vec())),
    );
    bodies
}

fn check(delivery: &Delivery, verifier: &Verifier, want: Expected, label: &str) {
    let got = verifier.verify(&delivery.headers(), &delivery.body(), delivery.now());
    assert!(
        want.matches(&got),
        "{label}: want {want}, verifier said {got:?}"
    );
    assert_eq!(delivery.expected(), want, "{label}: expected() disagrees");
}

#[test]
fn every_builder_gets_its_answer_from_the_verifier() {
    let verifier = Verifier::new(sample_keys());
    for (body_name, body) in bodies() {
        for (row, transform, want) in ROWS {
            let delivery = transform(Delivery::new(body.clone()));
            check(&delivery, &verifier, *want, &format!("{body_name} / {row}"));
        }
    }
}

#[test]
fn reserialized_box_bodies_verify_through_the_escaped_form() {
    let verifier = Verifier::new(sample_keys());
    let strict = Verifier::builder(sample_keys())
        .escaped_fallback(false)
        .build();
    let mut escaped_seen = 0;
    for fixture in fixtures::all() {
        let delivery = fixture.delivery().reserialized();
        let changed = delivery.body() != delivery.signed_body();
        let want = if changed {
            escaped_seen += 1;
            Expected::Accepted(BodyForm::Escaped)
        } else {
            RAW
        };
        check(&delivery, &verifier, want, fixture.name());
        assert!(
            !std::str::from_utf8(&delivery.body())
                .expect("serde_json writes UTF-8")
                .contains("\\/"),
            "{}: escapes must be gone",
            fixture.name()
        );
        if changed {
            let got = strict.verify(&delivery.headers(), &delivery.body(), delivery.now());
            assert_eq!(
                got.map_err(|e| e.kind()).err(),
                Some(ErrorKind::Mismatch),
                "{}: without the fallback",
                fixture.name()
            );
        }
    }
    if !fixtures::all().is_empty() {
        assert!(escaped_seen > 0, "the corpus has escaped bodies");
    }

    // Re-serializing a body that was not Box's compact form changes more than
    // the escapes: no form matches.
    let spaced = Delivery::new(r#"{ "name": "a\/b" }"#).reserialized();
    check(&spaced, &verifier, MISMATCH, "spaced body");
}

#[test]
fn signature_headers_follow_the_key_slots() {
    let primary_only = KeyRing::from_strs(Some("only-primary"), None).expect("ring");
    let secondary_only = KeyRing::from_strs(None, Some("only-secondary")).expect("ring");
    let rows: &[(&KeyRing, Transform, Expected)] = &[
        (&primary_only, |d| d, RAW),
        (
            &primary_only,
            |d| d.without_header(BoxHeader::SignaturePrimary),
            MISSING,
        ),
        (
            &primary_only,
            |d| d.without_header(BoxHeader::SignatureSecondary),
            RAW,
        ),
        (
            &primary_only,
            |d| d.duplicate_header(BoxHeader::SignatureSecondary, "x"),
            RAW,
        ),
        (&primary_only, Delivery::wrong_key, MISMATCH),
        (&secondary_only, |d| d, RAW),
        (
            &secondary_only,
            |d| d.without_header(BoxHeader::SignatureSecondary),
            MISSING,
        ),
        (
            &secondary_only,
            |d| d.without_header(BoxHeader::SignaturePrimary),
            RAW,
        ),
        (&secondary_only, Delivery::wrong_key, MISMATCH),
    ];
    for (i, (ring, transform, want)) in rows.iter().enumerate() {
        let delivery = transform(Delivery::new(VECTOR_BODY).keys((*ring).clone()));
        let verifier = Verifier::new((*ring).clone());
        check(&delivery, &verifier, *want, &format!("row {i}"));
        let headers = delivery.headers();
        for slot in KeySlot::BOTH {
            if ring.key(slot).is_none() {
                assert!(!headers.contains_key(slot.header_name()), "row {i}");
            }
        }
    }
}

#[test]
fn requests_look_like_box() {
    let delivery = Delivery::new(VECTOR_BODY).delivery_id("f96bb54b-ee16-4fc5-aa65-8c2d9e5b546f");
    let request = delivery.to_request();
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(request.uri(), "/");
    let h = request.headers();
    let header = |name: &str| h.get(name).map(|v| v.to_str().expect("ascii"));
    // Box's published vector, signed by the core's Signer.
    assert_eq!(
        header("BOX-SIGNATURE-PRIMARY"),
        Some("6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hI=")
    );
    assert_eq!(
        header("box-signature-secondary"),
        Some("v+1CD1Jdo3muIcbpv5lxxgPglOqMfsNHPV899xWYydo=")
    );
    assert_eq!(
        header("box-delivery-timestamp"),
        Some("2020-01-01T00:00:00-07:00")
    );
    assert_eq!(
        header("box-delivery-id"),
        Some("f96bb54b-ee16-4fc5-aa65-8c2d9e5b546f")
    );
    assert_eq!(header("box-signature-version"), Some("1"));
    assert_eq!(header("box-signature-algorithm"), Some("HmacSHA256"));
    assert_eq!(header("user-agent"), Some("Box-WH-Client/0.1"));
    assert_eq!(
        header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    assert_eq!(
        header("content-length"),
        Some(VECTOR_BODY.len().to_string().as_str())
    );
    assert_eq!(h.len(), 9);
    assert!(h["box-signature-primary"].is_sensitive());

    let bytes_request = delivery.to_bytes_request();
    assert_eq!(&bytes_request.body()[..], VECTOR_BODY.as_bytes());
    assert_eq!(bytes_request.headers(), h);
}

#[test]
fn at_sends_to_the_path_and_changes_nothing_else() {
    let delivery = Delivery::new(VECTOR_BODY);
    let plain = delivery.to_bytes_request();
    for (path, want) in [
        ("/box/webhooks", "/box/webhooks"),
        ("box/webhooks", "/box/webhooks"),
        ("/box/webhooks?tenant=7", "/box/webhooks?tenant=7"),
        ("/", "/"),
        ("", "/"),
    ] {
        let request = delivery.clone().at(path).to_bytes_request();
        assert_eq!(request.uri(), want, "{path:?}");
        assert_eq!(request.method(), plain.method(), "{path:?}");
        assert_eq!(
            request.headers(),
            plain.headers(),
            "{path:?}: the path is not signed"
        );
        assert_eq!(request.body(), plain.body(), "{path:?}");
    }
    let moved = delivery.clone().at("/box/webhooks");
    assert_eq!(moved.expected(), RAW);
    let verifier = Verifier::new(moved.key_ring().clone());
    check(&moved, &verifier, RAW, "at /box/webhooks");
    // The last call wins, whether `at` or `uri`.
    let request = delivery.at("/a").at("/b").to_request();
    assert_eq!(request.uri(), "/b");
}

#[test]
#[should_panic(expected = "\"/box webhooks\" is not a valid request path")]
fn at_refuses_a_path_that_cannot_be_sent() {
    let _ = Delivery::new("{}").at("/box webhooks");
}

#[test]
fn tampering_changes_exactly_one_byte() {
    for (name, body) in bodies() {
        let delivery = Delivery::new(body.clone()).tampered();
        let sent = delivery.body();
        assert_eq!(sent.len(), body.len(), "{name}");
        let changed = sent.iter().zip(&body).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 1, "{name}");
    }
    assert_eq!(&Delivery::new("").tampered().body()[..], b" ");
}

#[test]
fn time_shifts_are_relative_to_now() {
    let delivery = Delivery::new("{}").sent_at("2024-03-01T10:00:00Z".parse().expect("time"));
    let cases = [
        (delivery.clone(), "2024-03-01T10:00:00+00:00"),
        (delivery.clone().stale(), "2024-03-01T09:49:59+00:00"),
        (delivery.clone().future(), "2024-03-01T10:01:01+00:00"),
        (
            delivery.clone().aged(Duration::from_secs(86_400)),
            "2024-02-29T10:00:00+00:00",
        ),
    ];
    for (delivery, sent) in cases {
        assert_eq!(delivery.sent_timestamp().as_str(), sent);
        assert_eq!(delivery.now().to_rfc3339(), "2024-03-01T10:00:00+00:00");
    }
    // A fractional "now" keeps the shift exact, so the boundary still holds.
    let fractional = Delivery::new("{}")
        .timestamp(boxhook_core::DeliveryTimestamp::parse("2024-03-01T10:00:00.5Z").expect("ts"))
        .aged(Duration::from_secs(600));
    assert_eq!(
        fractional.sent_timestamp().as_str(),
        "2024-03-01T09:50:00.500+00:00"
    );
    check(
        &fractional,
        &Verifier::new(sample_keys()),
        RAW,
        "fractional boundary",
    );
}

#[test]
fn the_fixture_table_is_the_directory() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../boxhook-core/fixtures");
    let mut on_disk = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(next) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable directory").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                on_disk.push(path);
            }
        }
    }
    assert_eq!(fixtures::all().len(), on_disk.len());
    for path in on_disk {
        let name = path
            .strip_prefix(&dir)
            .expect("below dir")
            .with_extension("")
            .to_string_lossy()
            .replace('\\', "/");
        let fixture = fixtures::get(&name).unwrap_or_else(|| panic!("{name} is not in the table"));
        assert_eq!(
            fixture.body(),
            std::fs::read(&path).expect("readable"),
            "{name}"
        );
        let trigger = serde_json::from_slice::<serde_json::Value>(fixture.body())
            .ok()
            .and_then(|v| v.get("trigger")?.as_str().map(str::to_owned));
        assert_eq!(fixture.trigger(), trigger.as_deref(), "{name}");
        if let Some(trigger) = fixture.trigger() {
            assert!(fixtures::for_trigger(trigger).any(|f| f.name() == name));
        }
    }
    let uploads: Vec<_> = fixtures::for_trigger("FILE.UPLOADED").collect();
    if !fixtures::all().is_empty() {
        assert!(!uploads.is_empty());
    }
    assert!(uploads.iter().all(|f| f.trigger() == Some("FILE.UPLOADED")));
}
