//! Writes `fuzz/seeds/<target>/` from Box's known-answer vectors (see
//! "Known-answer vectors" in docs/PROTOCOL.md), edge cases, and (for `verify` only) the fixture
//! corpus
//! `crates/boxhook-core/fixtures/*.json` signed with the core's `Signer`.
//!
//! The `escaped_form` and `parse` targets take raw bodies, so they read the
//! fixture directory itself as a second seed corpus (see `fuzz/smoke.sh`)
//! instead of a copy of it here.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --bin make-seeds`

use std::fs;
use std::path::{Path, PathBuf};

use boxhook_core::{escaped_form, DeliveryTimestamp, Signer};
use boxhook_fuzz::{keys, Case, Name, VerifyInput, TIMESTAMP};

const KAT_1: &str = r#"{"type":"webhook_event","webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"Test.txt"}}"#;
const KAT_1_PRIMARY: &str = "6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hI=";
const KAT_1_SECONDARY: &str = "v+1CD1Jdo3muIcbpv5lxxgPglOqMfsNHPV899xWYydo=";
const KAT_2: &str = r#"{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"\u30b9\u30af\u30ea\u30fc\u30f3\u30b7\u30e7\u30c3\u30c8 2020-08-05.txt"}}"#;
const KAT_2_UTF8: &str = r#"{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"スクリーンショット 2020-08-05.txt"}}"#;
const KAT_2_PRIMARY: &str = "LV2uCu+5NJtIHrCXDYgZ0v/PP5THGRuegw3RtdnEyuE=";
const KAT_JAVA: &str = r#"{ "payload" : "test" }"#;

/// Bodies that probe the escaped form's edges (see "The escaped form" in docs/PROTOCOL.md).
const EDGES: [(&str, &[u8]); 9] = [
    (
        "slash-after-escaped-backslash",
        br#"{"p":"a\\/b","q":"c\\\/d"}"#,
    ),
    ("raw-slash", br#"{"path":"All Files/Clients/Acme"}"#),
    ("emoji-raw", "{\"name\":\"launch 🚀 😀.txt\"}".as_bytes()),
    ("emoji-escaped", br#"{"name":"launch \ud83d\ude80.txt"}"#),
    ("escaped-quote", br#"{"name":"say \"hi\" / bye"}"#),
    ("slash-outside-string", b"{\"a\":1}/"),
    ("unterminated", b"{\"a\":\"/\xc3\xa9"),
    ("invalid-utf8", b"{\"a\":\"\xff\xfe\"}"),
    ("empty", b""),
];

fn main() {
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = read_fixtures(&fuzz_dir.join("../crates/boxhook-core/fixtures"));
    println!("{} fixture(s) found", fixtures.len());

    let bodies: Vec<(String, Vec<u8>)> = vec![
        ("kat-1".into(), KAT_1.into()),
        ("kat-2-escaped".into(), KAT_2.into()),
        ("kat-2-utf8".into(), KAT_2_UTF8.into()),
        ("kat-java".into(), KAT_JAVA.into()),
    ];

    let mut escape_seeds = bodies.clone();
    escape_seeds.extend(
        EDGES
            .iter()
            .map(|(name, body)| ((*name).to_owned(), body.to_vec())),
    );
    write_dir(&fuzz_dir.join("seeds/escaped_form"), &escape_seeds);

    let mut parse_seeds = bodies.clone();
    parse_seeds.extend([
        ("not-an-object".into(), b"[]".to_vec()),
        (
            "no-trigger".into(),
            br#"{"type":"webhook_event","id":"1"}"#.to_vec(),
        ),
        (
            "trigger-number".into(),
            br#"{"id":"1","trigger":7}"#.to_vec(),
        ),
        (
            "duplicate-keys".into(),
            br#"{"id":"1","trigger":"FILE.UPLOADED","id":"2"}"#.to_vec(),
        ),
    ]);
    write_dir(&fuzz_dir.join("seeds/parse"), &parse_seeds);

    let verify_seeds: Vec<(String, Vec<u8>)> = verify_inputs(&fixtures)
        .into_iter()
        .map(|(name, input)| {
            let bytes = input.encode();
            let back = arbitrary::Unstructured::new(&bytes);
            let decoded: VerifyInput =
                arbitrary::Arbitrary::arbitrary_take_rest(back).expect("decodes");
            assert_eq!(decoded, input, "{name}: the encoding must read back");
            (name, bytes)
        })
        .collect();
    write_dir(&fuzz_dir.join("seeds/verify"), &verify_seeds);
}

fn read_fixtures(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let stem = p.file_stem().expect("file").to_string_lossy().into_owned();
            let body = fs::read(&p).expect("readable fixture");
            // Fixtures end with a newline for readability; Box's bodies do not.
            let body = body
                .strip_suffix(b"\n")
                .map_or(body.clone(), <[u8]>::to_vec);
            (format!("fixture-{stem}"), body)
        })
        .collect()
}

fn write_dir(dir: &Path, seeds: &[(String, Vec<u8>)]) {
    if dir.exists() {
        fs::remove_dir_all(dir).expect("clear the old seeds");
    }
    fs::create_dir_all(dir).expect("create seeds dir");
    for (name, bytes) in seeds {
        fs::write(dir.join(name), bytes).expect("write seed");
    }
    println!("{}: {} seeds", dir.display(), seeds.len());
}

fn boxh(index: usize, case: Case) -> Name {
    Name::Box { index, case }
}

/// Box's headers in `case`, with the given signatures.
fn delivery(
    case: Case,
    timestamp: &str,
    primary: Option<&str>,
    secondary: Option<&str>,
    body: &[u8],
) -> VerifyInput {
    let mut headers = vec![
        (
            boxh(0, case),
            b"f96bb54b-ee16-4fc5-aa65-8c2d9e5b546f".to_vec(),
        ),
        (boxh(1, case), timestamp.as_bytes().to_vec()),
    ];
    headers.extend(primary.map(|s| (boxh(2, case), s.as_bytes().to_vec())));
    headers.extend(secondary.map(|s| (boxh(3, case), s.as_bytes().to_vec())));
    headers.push((boxh(4, case), b"1".to_vec()));
    headers.push((boxh(5, case), b"HmacSHA256".to_vec()));
    VerifyInput {
        headers,
        body: body.to_vec(),
    }
}

fn signed(case: Case, timestamp: &str, body: &[u8], escaped: bool) -> VerifyInput {
    let ts = DeliveryTimestamp::parse(timestamp).expect("valid timestamp");
    let signer = Signer::new(keys());
    let headers = if escaped {
        signer.sign_escaped(body, &ts, "d").expect("UTF-8")
    } else {
        signer.sign(body, &ts, "d")
    };
    delivery(
        case,
        timestamp,
        headers.primary(),
        headers.secondary(),
        body,
    )
}

fn verify_inputs(fixtures: &[(String, Vec<u8>)]) -> Vec<(String, VerifyInput)> {
    let kat1 = KAT_1.as_bytes();
    let mut out = vec![
        (
            "kat-1-both".to_owned(),
            delivery(
                Case::Lower,
                TIMESTAMP,
                Some(KAT_1_PRIMARY),
                Some(KAT_1_SECONDARY),
                kat1,
            ),
        ),
        (
            "kat-1-secondary-upper".to_owned(),
            delivery(Case::Upper, TIMESTAMP, None, Some(KAT_1_SECONDARY), kat1),
        ),
        (
            "kat-2-escaped".to_owned(),
            delivery(
                Case::Title,
                TIMESTAMP,
                Some(KAT_2_PRIMARY),
                None,
                KAT_2.as_bytes(),
            ),
        ),
        (
            "kat-2-utf8-fallback".to_owned(),
            delivery(
                Case::Padded,
                TIMESTAMP,
                Some(KAT_2_PRIMARY),
                None,
                KAT_2_UTF8.as_bytes(),
            ),
        ),
        (
            "ts-zulu".to_owned(),
            signed(Case::Lower, "2020-01-01T07:00:00Z", kat1, false),
        ),
        (
            "ts-fraction".to_owned(),
            signed(Case::Lower, "2020-01-01T07:00:10.5+00:00", kat1, false),
        ),
        (
            "edge-escaped-signed".to_owned(),
            signed(Case::Lower, TIMESTAMP, EDGES[0].1, true),
        ),
        (
            "emoji-escaped-signed".to_owned(),
            signed(Case::Title, TIMESTAMP, EDGES[2].1, true),
        ),
    ];
    out.extend(refusals());
    for (name, body) in fixtures {
        out.push((name.clone(), signed(Case::Title, TIMESTAMP, body, false)));
        // Fixtures are in Box's wire form; one that is not (raw UTF-8) also
        // gets a delivery signed over its escaped form, the fallback path.
        if escaped_form(body).is_ok_and(|e| e.as_ref() != body.as_slice()) {
            out.push((
                format!("{name}-escaped"),
                signed(Case::Lower, TIMESTAMP, body, true),
            ));
        }
    }
    out
}

/// One delivery per kind of refusal.
fn refusals() -> Vec<(String, VerifyInput)> {
    let kat1 = KAT_1.as_bytes();
    let mut version = delivery(Case::Lower, TIMESTAMP, Some(KAT_1_PRIMARY), None, kat1);
    version.headers[3].1 = b"2".to_vec();
    let mut algorithm = version.clone();
    algorithm.headers[3].1 = b"1".to_vec();
    algorithm.headers[4].1 = b"HmacSHA1".to_vec();
    let mut missing_ts = delivery(Case::Lower, TIMESTAMP, Some(KAT_1_PRIMARY), None, kat1);
    missing_ts.headers.remove(1);
    let mut conflicting = delivery(Case::Lower, TIMESTAMP, Some(KAT_1_PRIMARY), None, kat1);
    conflicting
        .headers
        .push((boxh(1, Case::Upper), b"2020-01-01T00:00:01-07:00".to_vec()));
    let mut other = delivery(Case::Lower, TIMESTAMP, Some(KAT_1_PRIMARY), None, kat1);
    other.headers.insert(
        0,
        (
            Name::Other("content-type".into()),
            b"application/json".to_vec(),
        ),
    );
    let mut long = delivery(Case::Lower, TIMESTAMP, Some(KAT_1_PRIMARY), None, kat1);
    long.headers[0].1 = vec![b'a'; 300];
    vec![
        ("bad-version".to_owned(), version),
        ("bad-algorithm".to_owned(), algorithm),
        ("missing-timestamp".to_owned(), missing_ts),
        ("conflicting-timestamp".to_owned(), conflicting),
        ("other-header".to_owned(), other),
        ("long-value".to_owned(), long),
        (
            "expired".to_owned(),
            signed(Case::Lower, "2019-12-31T23:00:00-07:00", kat1, false),
        ),
        (
            "hex-signature".to_owned(),
            delivery(
                Case::Lower,
                TIMESTAMP,
                Some("e937de016dc0d4f5129206e8c71039caa1cd28ec05c8c5ae1179f2fc53c3e612"),
                None,
                kat1,
            ),
        ),
    ]
}
