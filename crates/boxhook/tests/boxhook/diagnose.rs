//! The diagnosis names each change a delivery suffered in transit, and only
//! that one: one case per hint code, then a property test over the fixture
//! corpus × every single transformation.

use base64::Engine as _;
use boxhook::diagnose::{diagnose, header_error_hints, DiagnosisKeys, HintCode, MAX_REPAIR_BODY};
use boxhook::{chrono::DateTime, chrono::Utc, DeliveryHeaders};
use boxhook_core::{DeliveryTimestamp, KeyRing, Signer, SigningKey};
use boxhook_testkit::{fixtures, transit, SAMPLE_PRIMARY_KEY, SAMPLE_SECONDARY_KEY};
use proptest::prelude::*;

const SENT: &str = "2020-01-01T00:00:00-07:00";
const NOTE: &str = r#"{"note":"Café déjà vu – ü","#;

/// A delivery in the making: what was signed, and what arrived.
struct Case {
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    keys: (Option<String>, Option<String>),
    now: DateTime<Utc>,
}

fn ring(primary: Option<&[u8]>, secondary: Option<&[u8]>) -> KeyRing {
    KeyRing::new(
        primary.and_then(|k| SigningKey::new(k).ok()),
        secondary.and_then(|k| SigningKey::new(k).ok()),
    )
    .expect("a key")
}

impl Case {
    /// `body` signed as Box signs it with the sample keys, arriving unchanged.
    fn signed(body: &[u8]) -> Self {
        Self::signed_with(
            body,
            &ring(
                Some(SAMPLE_PRIMARY_KEY.as_bytes()),
                Some(SAMPLE_SECONDARY_KEY.as_bytes()),
            ),
        )
    }

    fn signed_with(body: &[u8], keys: &KeyRing) -> Self {
        let ts = DeliveryTimestamp::parse(SENT).expect("timestamp");
        let signed = Signer::new(keys.clone()).sign(body, &ts, "d-1");
        Self {
            body: body.to_vec(),
            headers: signed
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            keys: (
                Some(SAMPLE_PRIMARY_KEY.to_owned()),
                Some(SAMPLE_SECONDARY_KEY.to_owned()),
            ),
            now: ts.datetime().to_utc(),
        }
    }

    fn body(mut self, change: impl FnOnce(&[u8]) -> Option<Vec<u8>>) -> Self {
        self.body = change(&self.body).expect("the change applies");
        self
    }

    fn header(mut self, name: &str, change: impl Fn(&str) -> Option<String>) -> Self {
        self.headers = self
            .headers
            .into_iter()
            .filter_map(|(n, v)| {
                if n == name {
                    change(&v).map(|v| (n, v))
                } else {
                    Some((n, v))
                }
            })
            .collect();
        self
    }

    fn signatures(self, change: impl Fn(&str) -> String) -> Self {
        self.header("box-signature-primary", |v| Some(change(v)))
            .header("box-signature-secondary", |v| Some(change(v)))
    }

    fn keys(mut self, primary: Option<&str>, secondary: Option<&str>) -> Self {
        self.keys = (primary.map(str::to_owned), secondary.map(str::to_owned));
        self
    }

    fn codes(&self) -> Vec<HintCode> {
        let headers =
            DeliveryHeaders::from_pairs(self.headers.iter().map(|(n, v)| (n, v))).expect("headers");
        let keys =
            DiagnosisKeys::new(self.keys.0.as_deref(), self.keys.1.as_deref()).expect("a key");
        diagnose(&headers, &self.body, &keys, self.now).codes()
    }
}

fn noted(fixture: &[u8]) -> Vec<u8> {
    [NOTE.as_bytes(), &fixture[1..]].concat()
}

fn hex(signature: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(signature)
        .expect("base64")
        .iter()
        .fold(String::new(), |mut out, b| {
            use std::fmt::Write as _;
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn hmac_b64(key: &[u8], parts: &[&[u8]]) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("key");
    for part in parts {
        mac.update(part);
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// One single change of each kind the diagnosis must name, applied to
/// `fixture`, and the code it must give.
#[allow(
    clippy::too_many_lines,
    reason = "one entry per transformation, read as a table"
)]
fn transformations(fixture: &[u8]) -> Vec<(&'static str, Case, HintCode)> {
    let noted = noted(fixture);
    let primary_decoded = base64::engine::general_purpose::STANDARD
        .decode(SAMPLE_PRIMARY_KEY)
        .expect("the sample primary key is base64 text");
    vec![
        (
            "spaced",
            Case::signed(&noted).body(transit::spaced),
            HintCode::ReserializedWhitespace,
        ),
        (
            "indented",
            Case::signed(&noted).body(transit::indented),
            HintCode::ReserializedWhitespace,
        ),
        (
            "reordered",
            Case::signed(&noted).body(transit::reordered),
            HintCode::Reserialized,
        ),
        (
            "mojibake",
            Case::signed(&noted).body(transit::mojibake),
            HintCode::Charset,
        ),
        (
            "crlf",
            Case::signed(&transit::indented(&noted).expect("json")).body(transit::crlf),
            HintCode::Crlf,
        ),
        (
            "bom",
            Case::signed(&noted).body(transit::bom),
            HintCode::Bom,
        ),
        (
            "trailing newline",
            Case::signed(&noted).body(transit::trailing_newline),
            HintCode::TrailingNewline,
        ),
        (
            "nfd",
            Case::signed(&noted).body(transit::nfd),
            HintCode::UnicodeNormalized,
        ),
        (
            "keys swapped",
            Case::signed(&noted).keys(Some(SAMPLE_SECONDARY_KEY), Some(SAMPLE_PRIMARY_KEY)),
            HintCode::KeysSwapped,
        ),
        (
            "keys with a line break",
            Case::signed(&noted).keys(
                Some(&format!("{SAMPLE_PRIMARY_KEY}\n")),
                Some(&format!(" {SAMPLE_SECONDARY_KEY}")),
            ),
            HintCode::KeyWhitespace,
        ),
        (
            "key used base64-decoded",
            Case::signed_with(&noted, &ring(Some(&primary_decoded), None))
                .keys(Some(SAMPLE_PRIMARY_KEY), None),
            HintCode::KeyEncoding,
        ),
        (
            "hex signatures",
            Case::signed(&noted).signatures(hex),
            HintCode::HexSignature,
        ),
        (
            "wrapped signatures",
            Case::signed(&noted).signatures(|v| format!("{} {}", &v[..20], &v[20..])),
            HintCode::WrappedBase64,
        ),
        (
            "url-safe signatures",
            Case::signed(&noted)
                .signatures(|v| v.trim_end_matches('=').replace('+', "-").replace('/', "_")),
            HintCode::UrlSafeBase64,
        ),
        (
            "hmac of the body alone",
            Case::signed(&noted)
                .header("box-signature-primary", |_| {
                    Some(hmac_b64(SAMPLE_PRIMARY_KEY.as_bytes(), &[&noted]))
                })
                .header("box-signature-secondary", |_| None),
            HintCode::BodyOnlyHmac,
        ),
        (
            "hmac of timestamp then body",
            Case::signed(&noted)
                .header("box-signature-primary", |_| {
                    Some(hmac_b64(
                        SAMPLE_PRIMARY_KEY.as_bytes(),
                        &[SENT.as_bytes(), &noted],
                    ))
                })
                .header("box-signature-secondary", |_| None),
            HintCode::BodyOnlyHmac,
        ),
        (
            "timestamp in UTC",
            Case::signed(&noted).header("box-delivery-timestamp", |_| {
                Some("2020-01-01T07:00:00Z".to_owned())
            }),
            HintCode::TimestampAltered,
        ),
        (
            "timestamp with milliseconds",
            Case::signed(&noted).header("box-delivery-timestamp", |_| {
                Some("2020-01-01T00:00:00.000-07:00".to_owned())
            }),
            HintCode::TimestampAltered,
        ),
        (
            "stale",
            {
                let mut case = Case::signed(&noted);
                case.now += boxhook::chrono::TimeDelta::seconds(601);
                case
            },
            HintCode::Expired,
        ),
        (
            "from the future",
            {
                let mut case = Case::signed(&noted);
                case.now -= boxhook::chrono::TimeDelta::seconds(61);
                case
            },
            HintCode::Future,
        ),
        (
            "no timestamp",
            Case::signed(&noted).header("box-delivery-timestamp", |_| None),
            HintCode::MissingHeader,
        ),
    ]
}

#[test]
fn each_transformation_of_one_fixture_gets_exactly_its_code() {
    let fixture = fixtures::get("file.uploaded").expect("fixture").body();
    for (name, case, code) in transformations(fixture) {
        assert_eq!(case.codes(), [code], "{name}");
    }
}

/// One case for each code the transformations do not produce.
#[allow(
    clippy::too_many_lines,
    reason = "one case per remaining code, read as a table"
)]
fn other_cases() -> Vec<(&'static str, Case, &'static [HintCode])> {
    let fixture = fixtures::get("file.uploaded").expect("fixture").body();
    let escaped = fixtures::get("file.renamed.non-ascii")
        .expect("fixture")
        .body();
    let truncate = |v: &str| {
        base64::engine::general_purpose::STANDARD.encode(
            &base64::engine::general_purpose::STANDARD
                .decode(v)
                .expect("b64")[..20],
        )
    };
    let tampered = boxhook_testkit::Delivery::new(fixture)
        .tampered()
        .body()
        .to_vec();
    let huge = vec![b' '; MAX_REPAIR_BODY + 1];
    vec![
        ("unchanged", Case::signed(fixture), &[]),
        (
            "re-encoded, accepted",
            Case::signed(escaped).body(|b| {
                Some(
                    boxhook_testkit::Delivery::new(b.to_vec())
                        .reserialized()
                        .body()
                        .to_vec(),
                )
            }),
            &[HintCode::EscapedForm],
        ),
        (
            "primary key wrong",
            Case::signed(fixture).keys(Some("another-key"), Some(SAMPLE_SECONDARY_KEY)),
            &[HintCode::SecondaryOnly],
        ),
        (
            "secondary header, no secondary key",
            Case::signed(fixture).keys(Some("another-key"), None),
            &[HintCode::MissingKey],
        ),
        (
            "no signature headers",
            Case::signed(fixture)
                .header("box-signature-primary", |_| None)
                .header("box-signature-secondary", |_| None),
            &[HintCode::MissingHeader],
        ),
        (
            "version 2",
            Case::signed(fixture).header("box-signature-version", |_| Some("2".to_owned())),
            &[HintCode::UnsupportedSignature],
        ),
        (
            "timestamp not RFC 3339",
            Case::signed(fixture)
                .header("box-delivery-timestamp", |_| Some("yesterday".to_owned())),
            &[HintCode::TimestampFormat],
        ),
        (
            "truncated signatures",
            Case::signed(fixture).signatures(truncate),
            &[HintCode::SignatureLength],
        ),
        (
            "one byte changed",
            Case::signed(fixture).body(move |_| Some(tampered.clone())),
            &[HintCode::Unexplained],
        ),
        (
            "stale and swapped",
            {
                let mut case = Case::signed(fixture)
                    .keys(Some(SAMPLE_SECONDARY_KEY), Some(SAMPLE_PRIMARY_KEY));
                case.now += boxhook::chrono::TimeDelta::seconds(900);
                case
            },
            &[HintCode::Expired, HintCode::KeysSwapped],
        ),
        (
            "over the cap",
            Case::signed(fixture).body(move |_| Some(huge.clone())),
            &[HintCode::BodyTooLarge],
        ),
    ]
}

#[test]
fn the_other_codes_each_have_a_case() {
    let cases = other_cases();
    for (name, case, want) in cases {
        assert_eq!(case.codes(), want, "{name}");
    }

    let conflicting = DeliveryHeaders::from_pairs([
        ("box-signature-version", "1"),
        ("BOX-SIGNATURE-VERSION", "2"),
    ])
    .expect_err("conflicting");
    let codes: Vec<_> = header_error_hints(&conflicting)
        .iter()
        .map(boxhook::diagnose::Hint::code)
        .collect();
    assert_eq!(codes, [HintCode::ConflictingHeader]);
}

/// Every code is produced by at least one case above.
#[test]
fn every_code_has_a_case() {
    let fixture = fixtures::get("file.uploaded").expect("fixture").body();
    let mut covered: Vec<HintCode> = transformations(fixture)
        .into_iter()
        .map(|(_, _, code)| code)
        .collect();
    covered.extend(
        other_cases()
            .into_iter()
            .flat_map(|(_, _, codes)| codes.iter().copied()),
    );
    covered.push(HintCode::ConflictingHeader);
    covered.sort_unstable();
    covered.dedup();
    assert_eq!(covered, HintCode::ALL);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any fixture × any single transformation: that code and no other.
    #[test]
    fn any_fixture_any_single_change_gets_exactly_its_code(
        fixture in 0..fixtures::all().len(),
        which in 0..21usize,
    ) {
        let body = fixtures::all()[fixture].body();
        prop_assume!(body.first() == Some(&b'{') && body.len() > 2);
        let mut all = transformations(body);
        let (name, case, code) = all.swap_remove(which % all.len());
        prop_assume!(name != "reordered" || transit::reordered(&noted(body)).is_some());
        prop_assert_eq!(case.codes(), vec![code], "{} on {}", name, fixtures::all()[fixture].name());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Never a false "it verifies when…": a body and signatures that no key
    /// made get no repair code, whatever the bytes.
    #[test]
    fn unrelated_bytes_never_get_a_repair_code(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        primary in proptest::array::uniform32(any::<u8>()),
    ) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(primary);
        let case = Case::signed(&body)
            .header("box-signature-primary", |_| Some(b64.clone()))
            .header("box-signature-secondary", |_| None);
        let codes = case.codes();
        prop_assert!(codes.iter().all(|c| !c.is_repair()), "{:?}", codes);
        prop_assert!(!codes.is_empty());
    }
}
