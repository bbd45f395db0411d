//! Interop against Box's official SDKs (see "Where Box's SDKs differ" in docs/PROTOCOL.md).
//!
//! The oracles are Python `box-sdk-gen` and Node `box-node-sdk`, driven by the
//! JSON Lines scripts in `tests/oracles/` (their headers describe the
//! protocol) and installed by `.ci/install-oracles`. Each test spawns each
//! oracle once and streams all its requests.
//!
//! Without the oracles every test prints
//! `interop: skipped (oracles not installed; run .ci/install-oracles)` and
//! passes, unless `BOXHOOK_ORACLES=required`, in which case it panics.
//!
//! The SDKs check freshness against the real clock, so every timestamp here is
//! taken relative to `Utc::now()`.
//!
//! What is checked:
//! - a deterministic corpus of bodies signed by boxhook validates in both SDKs;
//! - signatures computed by both SDKs are byte-identical to boxhook's and pass
//!   boxhook's verifier, under either key;
//! - raw-UTF-8 bodies signed over their escaped form: boxhook always accepts
//!   them (as `escaped`); each SDK accepts exactly those its own escaping gets
//!   right;
//! - the deliberate differences, pinned to the SDKs' exact current behaviour:
//!   future skew, escaping edge cases, header-name case, lenient base64 and an
//!   unparseable timestamp.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use boxhook_core::{
    escaped_form, BodyForm, DeliveryTimestamp, ErrorKind, KeyRing, KeySlot, SignedHeaders, Signer,
    Verifier,
};
use chrono::{TimeDelta, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Map, Value};

const PRIMARY: &str = "SamplePrimaryKey";
const SECONDARY: &str = "SampleSecondaryKey";

// ---------------------------------------------------------------------------
// Oracles: discovery and driving
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sdk {
    Python,
    Node,
}

impl Sdk {
    const ALL: [Sdk; 2] = [Sdk::Python, Sdk::Node];
}

/// Where the installed oracles are.
struct Oracles {
    python: PathBuf,
    scripts: PathBuf,
}

/// Finds the oracles, or reports them skipped (panicking if they are required).
fn oracles() -> Option<Oracles> {
    let required = std::env::var("BOXHOOK_ORACLES").is_ok_and(|v| v == "required");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scripts = manifest.join("tests/oracles");
    let install = std::env::var_os("BOXHOOK_ORACLE_DIR")
        .map_or_else(|| manifest.join("../../target/oracles"), PathBuf::from);
    let python = install.join("venv/bin/python");

    let mut missing = Vec::new();
    if !python.is_file() {
        missing.push(python.display().to_string());
    }
    let node_sdk = scripts.join("node_modules/box-node-sdk/package.json");
    if !node_sdk.is_file() {
        missing.push(node_sdk.display().to_string());
    }
    let node_runs = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !node_runs {
        missing.push("`node` on PATH".to_owned());
    }
    if missing.is_empty() {
        return Some(Oracles { python, scripts });
    }
    assert!(
        !required,
        "BOXHOOK_ORACLES=required but the oracles are not installed (missing: {}); \
         run .ci/install-oracles",
        missing.join(", ")
    );
    println!("interop: skipped (oracles not installed; run .ci/install-oracles)");
    None
}

impl Oracles {
    /// Runs one oracle process over all `requests`, returning one response each.
    fn ask(&self, sdk: Sdk, requests: &[Value]) -> Vec<Value> {
        let mut command = match sdk {
            Sdk::Python => Command::new(&self.python),
            Sdk::Node => Command::new("node"),
        };
        let script = match sdk {
            Sdk::Python => "python_oracle.py",
            Sdk::Node => "node_oracle.js",
        };
        let mut child = command
            .arg(self.scripts.join(script))
            .current_dir(&self.scripts)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn the {sdk:?} oracle: {e}"));
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let mut input = String::new();
        for request in requests {
            writeln!(input, "{request}").expect("write to a String");
        }
        // Write from another thread so a full stdout pipe cannot deadlock us;
        // dropping stdin at the end tells the oracle to exit.
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let responses: Vec<Value> = BufReader::new(stdout)
            .lines()
            .map(|line| {
                let line = line.expect("read an oracle response");
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("{sdk:?} oracle wrote non-JSON {line:?}: {e}"))
            })
            .collect();
        writer
            .join()
            .expect("writer thread")
            .expect("write requests to the oracle");
        let status = child.wait().expect("wait for the oracle");
        assert!(status.success(), "{sdk:?} oracle exited with {status}");
        assert_eq!(
            responses.len(),
            requests.len(),
            "{sdk:?} oracle answered {} of {} requests",
            responses.len(),
            requests.len()
        );
        responses
    }

    /// Runs both oracles concurrently over the same requests: `[python, node]`.
    fn ask_both(&self, requests: &[Value]) -> [Vec<Value>; 2] {
        std::thread::scope(|scope| {
            let python = scope.spawn(|| self.ask(Sdk::Python, requests));
            let node = self.ask(Sdk::Node, requests);
            [python.join().expect("python oracle thread"), node]
        })
    }
}

/// What an oracle said about one `validate` request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Valid,
    Invalid,
    /// The SDK threw; the text is the exception's type.
    Threw(String),
}

fn outcome(response: &Value) -> Outcome {
    if let Some(error) = response["error"].as_str() {
        let kind = error.split(':').next().unwrap_or(error);
        return Outcome::Threw(kind.to_owned());
    }
    match response["valid"].as_bool() {
        Some(true) => Outcome::Valid,
        Some(false) => Outcome::Invalid,
        None => panic!("not a validate response: {response}"),
    }
}

/// The `(primary, secondary)` signatures of a `sign` response.
fn signatures(response: &Value) -> (String, Option<String>) {
    assert!(response["error"].is_null(), "sign failed: {response}");
    let primary = response["primary"]
        .as_str()
        .unwrap_or_else(|| panic!("no primary signature in {response}"))
        .to_owned();
    (primary, response["secondary"].as_str().map(str::to_owned))
}

fn sign_request(body: &[u8], timestamp: &str, secondary: bool, escape_body: bool) -> Value {
    json!({
        "op": "sign",
        "body_b64": STANDARD.encode(body),
        "timestamp": timestamp,
        "primary_key": PRIMARY,
        "secondary_key": secondary.then_some(SECONDARY),
        "escape_body": escape_body,
    })
}

fn validate_request(
    body: &[u8],
    headers: &Value,
    primary_key: &str,
    secondary_key: Option<&str>,
) -> Value {
    json!({
        "op": "validate",
        "body_b64": STANDARD.encode(body),
        "headers": headers,
        "primary_key": primary_key,
        "secondary_key": secondary_key,
        "max_age": null,
    })
}

/// Headers as a receiver's framework hands them to the SDKs: lower-case names.
fn sdk_headers(signed: &SignedHeaders) -> Value {
    let map: Map<String, Value> = signed
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), Value::from(value)))
        .collect();
    Value::Object(map)
}

/// The six Box headers as they arrive, with Box's upper-case names.
fn box_header_map(timestamp: &str, primary: Option<&str>, secondary: Option<&str>) -> HeaderMap {
    let mut map = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        map.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).expect("an ASCII header value"),
        );
    };
    put("box-delivery-id", "0a1b2c3d-interop");
    put("box-delivery-timestamp", timestamp);
    if let Some(primary) = primary {
        put("box-signature-primary", primary);
    }
    if let Some(secondary) = secondary {
        put("box-signature-secondary", secondary);
    }
    put("box-signature-version", "1");
    put("box-signature-algorithm", "HmacSHA256");
    map
}

fn both_keys() -> KeyRing {
    KeyRing::from_strs(Some(PRIMARY), Some(SECONDARY)).expect("two valid keys")
}

/// A timestamp `offset_secs` from now, in Box's format.
fn timestamp_from_now(offset_secs: i64) -> DeliveryTimestamp {
    DeliveryTimestamp::from_utc(Utc::now() + TimeDelta::seconds(offset_secs))
}

// ---------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------

/// `SplitMix64`: a tiny deterministic generator, so the corpus never changes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("below n fits usize")
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn digits(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'0' + u8::try_from(self.below(10)).expect("a digit")))
            .collect()
    }
}

/// String contents that stress escaping: non-ASCII in every plane, slashes,
/// quotes, backslashes, a backslash before a slash, control characters, DEL.
const TRICKY: &[&str] = &[
    "Test.txt",
    "スクリーンショット 2020-08-05.txt",
    "报告 2024/Q1 最终版.xlsx",
    "한국어 문서.hwp",
    "مرحبا بالعالم.txt",
    "naïve café résumé.docx",
    "Ünïcödé ß Straße",
    "e\u{301}\u{301} combining",
    "😀 party 🎉.png",
    "𝄞 music 𝕏.mp3",
    "family 👩\u{200d}👩\u{200d}👧\u{200d}👦 and flag 🇯🇵",
    "edge \u{ffff} \u{10000} \u{10ffff}",
    "line sep \u{2028} para sep \u{2029}",
    "a/b/c",
    "https://app.box.com/s/abc123xyz",
    "</script><b>",
    "C:\\Users\\me\\file.txt",
    "backslash then slash \\/ here",
    "two backslashes then slash \\\\/ here",
    "say \"hi\" / \"bye\"",
    "json {\"k\":\"v/w\"}",
    "tab\tnew\nline\rcr",
    "ctrl \u{1}\u{8}\u{c}\u{1f}",
    "del \u{7f} char",
    "",
    " ",
    "\\",
    "/",
    "😀/😀\\😀",
    "日本語/中文\\한국어",
];

const TRIGGERS: &[&str] = &[
    "FILE.UPLOADED",
    "FILE.PREVIEWED",
    "FILE.RENAMED",
    "FILE.TRASHED",
    "FOLDER.CREATED",
    "FOLDER.MOVED",
    "COMMENT.CREATED",
    "SIGN_REQUEST.COMPLETED",
    "WEBHOOK.DELETED",
    "NO_ACTIVE_SESSION",
    "SOMETHING.NEW_IN_2030",
];

/// A JSON value whose strings can be written in either style.
#[derive(Clone, Debug)]
enum J {
    Null,
    Bool(bool),
    Int(u64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

fn s(text: impl Into<String>) -> J {
    J::Str(text.into())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// Box's wire form, as PHP's `json_encode` writes it (see "The escaped form" in
    /// docs/PROTOCOL.md).
    Php,
    /// Re-serialized as raw UTF-8 without `\/` (`serde_json`, `JSON.stringify`).
    Raw,
    /// Each string independently in one style or the other.
    Mixed,
}

/// Writes one JSON string. This is the test's own reference for PHP's
/// `json_encode` defaults, independent of `boxhook_core::escaped_form`.
fn write_str(out: &mut String, text: &str, php: bool) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if php => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                write!(out, "\\u{:04x}", u32::from(c)).expect("write to a String");
            }
            c if php && !c.is_ascii() => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    write!(out, "\\u{unit:04x}").expect("write to a String");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_json(out: &mut String, value: &J, style: Style, rng: &mut Rng) {
    let php = |rng: &mut Rng| match style {
        Style::Php => true,
        Style::Raw => false,
        Style::Mixed => rng.below(2) == 0,
    };
    match value {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Int(n) => write!(out, "{n}").expect("write to a String"),
        J::Str(text) => {
            let php = php(rng);
            write_str(out, text, php);
        }
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item, style, rng);
            }
            out.push(']');
        }
        J::Obj(fields) => {
            out.push('{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, key, true);
                out.push(':');
                write_json(out, item, style, rng);
            }
            out.push('}');
        }
    }
}

fn encode(value: &J, style: Style, rng: &mut Rng) -> String {
    let mut out = String::new();
    write_json(&mut out, value, style, rng);
    out
}

fn user(rng: &mut Rng) -> J {
    let name = rng.pick(TRICKY);
    J::Obj(vec![
        ("type", s("user")),
        ("id", s(rng.digits(10))),
        ("name", s(*name)),
        ("login", s(format!("u{}@example.com", rng.digits(4)))),
    ])
}

fn mini(kind: &str, rng: &mut Rng) -> J {
    J::Obj(vec![("id", s(rng.digits(12))), ("type", s(kind))])
}

fn folder_mini(rng: &mut Rng) -> J {
    J::Obj(vec![
        ("type", s("folder")),
        ("id", s(rng.digits(11))),
        ("sequence_id", s(rng.digits(1))),
        ("etag", s(rng.digits(1))),
        ("name", s(*rng.pick(TRICKY))),
    ])
}

fn file_object(rng: &mut Rng) -> J {
    let all_files = J::Obj(vec![
        ("type", s("folder")),
        ("id", s("0")),
        ("sequence_id", J::Null),
        ("etag", J::Null),
        ("name", s("All Files")),
    ]);
    J::Obj(vec![
        ("id", s(rng.digits(12))),
        ("type", s("file")),
        (
            "file_version",
            J::Obj(vec![
                ("type", s("file_version")),
                ("id", s(rng.digits(12))),
                ("sha1", s("134b65991ed521fcfe4724b7d814ab8ded5185dc")),
            ]),
        ),
        ("sequence_id", s(rng.digits(1))),
        ("etag", s(rng.digits(1))),
        ("sha1", s("134b65991ed521fcfe4724b7d814ab8ded5185dc")),
        ("name", s(*rng.pick(TRICKY))),
        ("description", s(*rng.pick(TRICKY))),
        ("size", J::Int(rng.next() % 10_000_000)),
        (
            "path_collection",
            J::Obj(vec![
                ("total_count", J::Int(2)),
                ("entries", J::Arr(vec![all_files, folder_mini(rng)])),
            ]),
        ),
        ("created_at", s("2024-03-05T10:11:12-08:00")),
        ("modified_at", s("2024-03-05T10:11:12-08:00")),
        ("trashed_at", J::Null),
        ("purged_at", J::Null),
        ("created_by", user(rng)),
        ("owned_by", user(rng)),
        ("shared_link", J::Null),
        ("parent", folder_mini(rng)),
        ("item_status", s("active")),
    ])
}

/// One `webhook_event` (or, now and then, another JSON shape).
fn record(index: usize, rng: &mut Rng) -> J {
    let trigger = TRIGGERS[index % TRIGGERS.len()];
    let (source, additional_info) = match trigger {
        "FILE.RENAMED" => (
            file_object(rng),
            J::Obj(vec![("old_name", s(*rng.pick(TRICKY)))]),
        ),
        "FILE.TRASHED" | "NO_ACTIVE_SESSION" => (mini("file", rng), J::Arr(vec![])),
        "FOLDER.CREATED" => (folder_mini(rng), J::Arr(vec![])),
        "FOLDER.MOVED" => (
            folder_mini(rng),
            J::Obj(vec![
                ("before", mini("folder", rng)),
                ("after", mini("folder", rng)),
            ]),
        ),
        "COMMENT.CREATED" => (
            J::Obj(vec![
                ("id", s(rng.digits(9))),
                ("type", s("comment")),
                ("is_reply_comment", J::Bool(rng.below(2) == 0)),
                ("message", s(*rng.pick(TRICKY))),
                ("created_by", user(rng)),
                ("created_at", s("2024-03-05T10:11:12-08:00")),
                ("modified_at", s("2024-03-05T10:11:12-08:00")),
                ("item", mini("file", rng)),
            ]),
            J::Arr(vec![]),
        ),
        "SIGN_REQUEST.COMPLETED" => (
            file_object(rng),
            J::Obj(vec![
                ("sign_request_id", s(rng.digits(8))),
                (
                    "signer_emails",
                    J::Arr(vec![s("a@example.com"), s(*rng.pick(TRICKY))]),
                ),
                ("external_id", s(*rng.pick(TRICKY))),
            ]),
        ),
        "WEBHOOK.DELETED" => (
            mini("webhook", rng),
            J::Obj(vec![("reason", s("auto_cleanup"))]),
        ),
        "SOMETHING.NEW_IN_2030" => (
            J::Arr(vec![
                s(*rng.pick(TRICKY)),
                J::Int(7),
                J::Null,
                J::Bool(true),
            ]),
            J::Obj(vec![("note", s(*rng.pick(TRICKY)))]),
        ),
        _ => (file_object(rng), J::Arr(vec![])),
    };
    J::Obj(vec![
        ("type", s("webhook_event")),
        ("id", s(format!("{}-{index}", rng.digits(8)))),
        ("created_at", s("2024-03-05T10:11:12-08:00")),
        ("trigger", s(trigger)),
        (
            "webhook",
            J::Obj(vec![("id", s(rng.digits(7))), ("type", s("webhook"))]),
        ),
        ("created_by", user(rng)),
        ("source", source),
        ("additional_info", additional_info),
    ])
}

/// One corpus entry: a body as it might arrive, plus the raw-UTF-8 and the
/// PHP (Box-signed) encodings of the same value.
struct Case {
    wire: Vec<u8>,
    raw: Vec<u8>,
    php: Vec<u8>,
}

/// How many bodies `corpus()` generates (plus the public vectors).
const GENERATED: usize = 240;

/// The deterministic corpus: 240 generated bodies and the bodies of Box's
/// published test vectors.
fn corpus() -> Vec<Case> {
    let mut rng = Rng(0x0b0c_4f00_2024_0001);
    let mut cases: Vec<Case> = (0..GENERATED)
        .map(|i| {
            let value = record(i, &mut rng);
            let style = [Style::Php, Style::Raw, Style::Mixed][i % 3];
            Case {
                wire: encode(&value, style, &mut rng).into_bytes(),
                raw: encode(&value, Style::Raw, &mut rng).into_bytes(),
                php: encode(&value, Style::Php, &mut rng).into_bytes(),
            }
        })
        .collect();
    let vectors: [(&str, &str); 3] = [
        (
            r#"{"type":"webhook_event","webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"Test.txt"}}"#,
            r#"{"type":"webhook_event","webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"Test.txt"}}"#,
        ),
        (
            r#"{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"\u30b9\u30af\u30ea\u30fc\u30f3\u30b7\u30e7\u30c3\u30c8 2020-08-05.txt"}}"#,
            r#"{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"スクリーンショット 2020-08-05.txt"}}"#,
        ),
        (r#"{ "payload" : "test" }"#, r#"{ "payload" : "test" }"#),
    ];
    for (php, raw) in vectors {
        cases.push(Case {
            wire: php.as_bytes().to_vec(),
            raw: raw.as_bytes().to_vec(),
            php: php.as_bytes().to_vec(),
        });
    }
    cases
}

#[test]
fn corpus_is_large_and_varied() {
    let cases = corpus();
    assert!(cases.len() >= 200, "corpus has {} bodies", cases.len());
    let any = |needle: &[u8]| cases.iter().any(|c| contains(&c.wire, needle));
    for needle in [
        "😀".as_bytes(),       // raw emoji beyond U+FFFF
        "ス".as_bytes(),       // raw CJK
        br"\ud83d\ude00",      // escaped surrogate pair
        br"\u30b9",            // escaped CJK
        br"\/",                // already-escaped slash
        br"a/b",               // raw slash
        br"\\/",               // escaped backslash before a raw slash
        br"\\\/",              // escaped backslash before an escaped slash
        br#"\""#,              // escaped quote
        b"\x7f",               // DEL
        br"\u2028",            // escaped line separator
        "\u{2028}".as_bytes(), // raw line separator
    ] {
        assert!(
            any(needle),
            "corpus lacks {:?}",
            String::from_utf8_lossy(needle)
        );
    }
    // The reference PHP encoder and boxhook's escaped form agree on the corpus.
    for case in &cases {
        let escaped = escaped_form(&case.raw).expect("corpus bodies are UTF-8");
        assert_eq!(
            String::from_utf8_lossy(&escaped),
            String::from_utf8_lossy(&case.php),
            "escaped_form disagrees with json_encode"
        );
    }
}

// ---------------------------------------------------------------------------
// (b) boxhook signs, the SDKs validate
// ---------------------------------------------------------------------------

#[test]
fn sdks_accept_boxhook_signatures() {
    let Some(oracles) = oracles() else { return };
    let signer = Signer::new(both_keys());
    let ts = timestamp_from_now(0);
    let cases = corpus();
    let bodies: Vec<&[u8]> = cases
        .iter()
        .flat_map(|c| [c.wire.as_slice(), c.raw.as_slice()])
        .collect();
    // Rotate through: both keys right; a stale primary key (the secondary
    // matches); the receiver knows only the primary key.
    let requests: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let headers = sdk_headers(&signer.sign(body, &ts, "interop-b"));
            match i % 3 {
                0 => validate_request(body, &headers, PRIMARY, Some(SECONDARY)),
                1 => validate_request(body, &headers, "StalePrimaryKey", Some(SECONDARY)),
                _ => validate_request(body, &headers, PRIMARY, None),
            }
        })
        .collect();
    for (sdk, responses) in Sdk::ALL.into_iter().zip(oracles.ask_both(&requests)) {
        for (body, response) in bodies.iter().zip(&responses) {
            assert_eq!(
                outcome(response),
                Outcome::Valid,
                "{sdk:?} rejects boxhook's signature for {}",
                String::from_utf8_lossy(body)
            );
        }
    }
    println!(
        "interop: {} boxhook-signed bodies validated by python and node",
        bodies.len()
    );
}

// ---------------------------------------------------------------------------
// (c) the SDKs sign, boxhook verifies
// ---------------------------------------------------------------------------

#[test]
fn boxhook_accepts_sdk_signatures() {
    let Some(oracles) = oracles() else { return };
    let signer = Signer::new(both_keys());
    let both = Verifier::new(both_keys());
    let secondary_only = Verifier::new(KeyRing::from_strs(None, Some(SECONDARY)).expect("a key"));
    let ts = timestamp_from_now(0);
    let cases = corpus();
    let requests: Vec<Value> = cases
        .iter()
        .map(|c| sign_request(&c.wire, ts.as_str(), true, false))
        .collect();
    for (sdk, responses) in Sdk::ALL.into_iter().zip(oracles.ask_both(&requests)) {
        for (case, response) in cases.iter().zip(&responses) {
            let body = String::from_utf8_lossy(&case.wire);
            let (primary, secondary) = signatures(response);
            let secondary = secondary.expect("a secondary signature");
            let ours = signer.sign(&case.wire, &ts, "interop-c");
            assert_eq!(Some(primary.as_str()), ours.primary(), "{sdk:?}: {body}");
            assert_eq!(
                Some(secondary.as_str()),
                ours.secondary(),
                "{sdk:?}: {body}"
            );

            let headers = box_header_map(ts.as_str(), Some(&primary), Some(&secondary));
            let verified = both
                .verify(&headers, &case.wire, Utc::now())
                .unwrap_or_else(|e| panic!("{sdk:?} signature rejected ({e}): {body}"));
            assert_eq!(verified.key_slot(), KeySlot::Primary);
            assert_eq!(verified.body_form(), BodyForm::Raw);
            let verified = secondary_only
                .verify(&headers, &case.wire, Utc::now())
                .unwrap_or_else(|e| panic!("{sdk:?} secondary rejected ({e}): {body}"));
            assert_eq!(verified.key_slot(), KeySlot::Secondary);
        }
    }
    println!(
        "interop: {} SDK-signed bodies verified by boxhook (python and node)",
        cases.len()
    );
}

// ---------------------------------------------------------------------------
// (d) raw-UTF-8 bodies signed over their escaped form
// ---------------------------------------------------------------------------

/// Bytes that make at least one SDK's escaping differ from `json_encode`.
fn has_escaping_hazard(raw: &[u8]) -> bool {
    raw.iter().any(|b| matches!(b, b'/' | b'\\' | 0x7f))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A `/` that no backslash precedes.
fn has_bare_slash(raw: &[u8]) -> bool {
    raw.iter()
        .enumerate()
        .any(|(i, &b)| b == b'/' && (i == 0 || raw[i - 1] != b'\\'))
}

#[test]
fn escaped_form_fallback_against_sdks() {
    let Some(oracles) = oracles() else { return };
    let signer = Signer::new(both_keys());
    let verifier = Verifier::new(both_keys());
    let ts = timestamp_from_now(0);
    let cases: Vec<Case> = corpus().into_iter().filter(|c| c.raw != c.php).collect();
    let mut requests = Vec::new();
    for case in &cases {
        // What Box sent: the PHP form, signed. What arrived: the raw form.
        let box_signed = signer.sign(&case.php, &ts, "interop-d");
        requests.push(validate_request(
            &case.raw,
            &sdk_headers(&box_signed),
            PRIMARY,
            Some(SECONDARY),
        ));
        // The signature each SDK computes over its own escaped copy.
        requests.push(sign_request(&case.raw, ts.as_str(), false, true));

        // boxhook: accepts through the escaped form, and sign_escaped agrees.
        let proof = verifier
            .verify(&box_signed.to_header_map(), &case.raw, Utc::now())
            .unwrap_or_else(|e| {
                panic!(
                    "boxhook rejects ({e}): {}",
                    String::from_utf8_lossy(&case.raw)
                )
            });
        assert_eq!(proof.body_form(), BodyForm::Escaped);
        let escaped = signer
            .sign_escaped(&case.raw, &ts, "interop-d")
            .expect("UTF-8 body");
        assert_eq!(escaped.primary(), box_signed.primary());
    }

    let mut agreed = BTreeMap::new();
    for (sdk, responses) in Sdk::ALL.into_iter().zip(oracles.ask_both(&requests)) {
        let mut count = 0;
        for (case, pair) in cases.iter().zip(responses.chunks(2)) {
            let body = String::from_utf8_lossy(&case.raw);
            let box_signature = signer.signature(KeySlot::Primary, &case.php, &ts);
            let (sdk_escaped_signature, _) = signatures(&pair[1]);
            let escapes_like_php = Some(sdk_escaped_signature) == box_signature;
            let valid = outcome(&pair[0]);
            // The SDK accepts exactly when its escaping reproduces json_encode's.
            let expected = if escapes_like_php {
                Outcome::Valid
            } else {
                Outcome::Invalid
            };
            assert_eq!(valid, expected, "{sdk:?}: {body}");
            match sdk {
                // Node escapes every `/` not preceded by a backslash, and DEL.
                Sdk::Node => assert_eq!(
                    escapes_like_php,
                    !contains(&case.raw, b"\x7f") && !contains(&case.raw, br"\\/"),
                    "node: {body}"
                ),
                // Python never escapes a `/` on its own.
                Sdk::Python => assert!(
                    !escapes_like_php || !has_bare_slash(&case.raw),
                    "python: {body}"
                ),
            }
            if !has_escaping_hazard(&case.raw) {
                assert!(
                    escapes_like_php,
                    "{sdk:?} escapes plain non-ASCII wrongly: {body}"
                );
            }
            count += usize::from(escapes_like_php);
        }
        println!(
            "interop: escaped-form fallback: {sdk:?} accepts {count} of {} re-encoded bodies, boxhook all",
            cases.len()
        );
        agreed.insert(format!("{sdk:?}"), count);
    }
    // Pinned on the deterministic corpus (update with the corpus): Node misses
    // the bodies with DEL or a backslash before a slash, Python every body
    // with a slash, a backslash escape or DEL.
    assert_eq!(
        agreed,
        BTreeMap::from([
            ("Node".to_owned(), PINNED_NODE_ESCAPED_AGREEMENT),
            ("Python".to_owned(), PINNED_PYTHON_ESCAPED_AGREEMENT),
        ]),
        "an SDK's escaping changed"
    );
}

const PINNED_NODE_ESCAPED_AGREEMENT: usize = 148;
const PINNED_PYTHON_ESCAPED_AGREEMENT: usize = 44;

// ---------------------------------------------------------------------------
// (e) deliberate differences, pinned to the SDKs' exact behaviour
// ---------------------------------------------------------------------------

/// Freshness: the SDKs reject any timestamp ahead of their clock
/// (`timestamp > int(now)` in whole seconds, so even 1 s ahead); boxhook allows
/// 60 s of future skew. Both reject more than 600 s of age.
///
/// The SDKs read the real clock when the request reaches them, which on a
/// loaded machine can be seconds after it was signed: the offsets keep 15 s
/// clear of every boundary so the test cannot race.
#[test]
fn pinned_freshness() {
    let Some(oracles) = oracles() else { return };
    let signer = Signer::new(both_keys());
    let verifier = Verifier::new(both_keys());
    let body = br#"{"type":"webhook_event","trigger":"FILE.UPLOADED"}"#;
    // (offset from now in s, SDKs' verdict, boxhook's verdict)
    let table: &[(i64, Outcome, Option<ErrorKind>)] = &[
        (0, Outcome::Valid, None),
        (-585, Outcome::Valid, None),
        (-615, Outcome::Invalid, Some(ErrorKind::Expired)),
        (15, Outcome::Invalid, None),
        (30, Outcome::Invalid, None),
        (45, Outcome::Invalid, None),
        (75, Outcome::Invalid, Some(ErrorKind::Future)),
    ];
    let deliveries: Vec<SignedHeaders> = table
        .iter()
        .map(|&(offset, ..)| signer.sign(body, &timestamp_from_now(offset), "interop-e"))
        .collect();
    let requests: Vec<Value> = deliveries
        .iter()
        .map(|h| validate_request(body, &sdk_headers(h), PRIMARY, Some(SECONDARY)))
        .collect();
    let now = Utc::now();
    for ((offset, _, boxhook), headers) in table.iter().zip(&deliveries) {
        let got = verifier
            .verify(&headers.to_header_map(), body, now)
            .err()
            .map(|e| e.kind());
        assert_eq!(got, *boxhook, "boxhook at {offset:+} s");
    }
    for (sdk, responses) in Sdk::ALL.into_iter().zip(oracles.ask_both(&requests)) {
        for ((offset, want, _), response) in table.iter().zip(&responses) {
            assert_eq!(&outcome(response), want, "{sdk:?} at {offset:+} s");
        }
    }

    // max_age is honoured by the SDKs as a number of seconds.
    let old = signer.sign(body, &timestamp_from_now(-120), "interop-e");
    let mut request = validate_request(body, &sdk_headers(&old), PRIMARY, None);
    request["max_age"] = json!(60);
    let strict = Verifier::builder(both_keys())
        .max_age(Duration::from_secs(60))
        .build();
    let got = strict.verify(&old.to_header_map(), body, Utc::now());
    assert_eq!(got.err().map(|e| e.kind()), Some(ErrorKind::Expired));
    for (sdk, responses) in Sdk::ALL.into_iter().zip(oracles.ask_both(&[request])) {
        assert_eq!(
            outcome(&responses[0]),
            Outcome::Invalid,
            "{sdk:?} max_age 60"
        );
    }
}

/// One escaping edge case: a raw body and the text each party escapes it to.
struct Edge {
    /// The body as it arrived.
    raw: &'static str,
    /// What `json_encode` wrote and Box signed.
    php: &'static str,
    /// What box-sdk-gen hashes on its escaped path.
    python: &'static str,
    /// What box-node-sdk hashes on its escaped path.
    node: &'static str,
}
const EDGES: &[Edge] = &[
    // Agreement: BMP, beyond U+FFFF (surrogate pair), U+2028, U+FFFF.
    Edge {
        raw: r#"{"n":"é"}"#,
        php: r#"{"n":"\u00e9"}"#,
        python: r#"{"n":"\u00e9"}"#,
        node: r#"{"n":"\u00e9"}"#,
    },
    Edge {
        raw: r#"{"n":"😀 𝄞"}"#,
        php: r#"{"n":"\ud83d\ude00 \ud834\udd1e"}"#,
        python: r#"{"n":"\ud83d\ude00 \ud834\udd1e"}"#,
        node: r#"{"n":"\ud83d\ude00 \ud834\udd1e"}"#,
    },
    Edge {
        raw: "{\"n\":\"\u{2028}\u{ffff}\u{10ffff}\"}",
        php: r#"{"n":"\u2028\uffff\udbff\udfff"}"#,
        python: r#"{"n":"\u2028\uffff\udbff\udfff"}"#,
        node: r#"{"n":"\u2028\uffff\udbff\udfff"}"#,
    },
    // A raw slash: Python does not escape `/` at all.
    Edge {
        raw: r#"{"u":"a/b","n":"é"}"#,
        php: r#"{"u":"a\/b","n":"\u00e9"}"#,
        python: r#"{"u":"a/b","n":"\u00e9"}"#,
        node: r#"{"u":"a\/b","n":"\u00e9"}"#,
    },
    // `/` after an escaped backslash: Node leaves it (its look-behind sees
    // a backslash); Python happens to match json_encode here.
    Edge {
        raw: r#"{"p":"a\\/b","n":"é"}"#,
        php: r#"{"p":"a\\\/b","n":"\u00e9"}"#,
        python: r#"{"p":"a\\\/b","n":"\u00e9"}"#,
        node: r#"{"p":"a\\/b","n":"\u00e9"}"#,
    },
    // Escaped quotes: Python doubles every backslash not before a `/`.
    Edge {
        raw: r#"{"q":"say \"hi\"","n":"é"}"#,
        php: r#"{"q":"say \"hi\"","n":"\u00e9"}"#,
        python: r#"{"q":"say \\"hi\\"","n":"\u00e9"}"#,
        node: r#"{"q":"say \"hi\"","n":"\u00e9"}"#,
    },
    // Already-escaped input next to raw non-ASCII: Python re-escapes it.
    Edge {
        raw: r#"{"a":"\u00e9\/x","n":"é"}"#,
        php: r#"{"a":"\u00e9\/x","n":"\u00e9"}"#,
        python: r#"{"a":"\\u00e9\/x","n":"\u00e9"}"#,
        node: r#"{"a":"\u00e9\/x","n":"\u00e9"}"#,
    },
    // A `\n` escape: Python doubles its backslash.
    Edge {
        raw: r#"{"n":"é\nx"}"#,
        php: r#"{"n":"\u00e9\nx"}"#,
        python: r#"{"n":"\u00e9\\nx"}"#,
        node: r#"{"n":"\u00e9\nx"}"#,
    },
    // DEL is ASCII: json_encode leaves it, both SDKs escape it.
    Edge {
        raw: "{\"d\":\"\u{7f}\",\"n\":\"é\"}",
        php: "{\"d\":\"\u{7f}\",\"n\":\"\\u00e9\"}",
        python: r#"{"d":"\u007f","n":"\u00e9"}"#,
        node: r#"{"d":"\u007f","n":"\u00e9"}"#,
    },
];

/// Escaping edge cases: for raw bodies, the exact text each SDK hashes on its
/// escaped path (pinned through the HMAC: the SDK's escaped-path signature
/// must equal boxhook's signature over that text), and whether the SDK then
/// accepts the body signed over `json_encode`'s output (which boxhook does).
#[test]
fn pinned_escaping_edge_cases() {
    // boxhook's escaped form is json_encode's on every edge case.
    for edge in EDGES {
        let escaped = escaped_form(edge.raw.as_bytes()).expect("UTF-8");
        assert_eq!(
            String::from_utf8_lossy(&escaped),
            edge.php,
            "boxhook on {}",
            edge.raw
        );
    }
    let Some(oracles) = oracles() else { return };
    let signer = Signer::new(both_keys());
    let verifier = Verifier::new(both_keys());
    let ts = timestamp_from_now(0);
    let mut requests = Vec::new();
    for edge in EDGES {
        let box_signed = signer.sign(edge.php.as_bytes(), &ts, "interop-e");
        let proof = verifier
            .verify(&box_signed.to_header_map(), edge.raw.as_bytes(), Utc::now())
            .unwrap_or_else(|e| panic!("boxhook rejects ({e}): {}", edge.raw));
        assert_eq!(proof.body_form(), BodyForm::Escaped, "{}", edge.raw);
        requests.push(sign_request(edge.raw.as_bytes(), ts.as_str(), false, true));
        requests.push(validate_request(
            edge.raw.as_bytes(),
            &sdk_headers(&box_signed),
            PRIMARY,
            None,
        ));
    }
    for (sdk, responses) in Sdk::ALL.into_iter().zip(oracles.ask_both(&requests)) {
        for (edge, pair) in EDGES.iter().zip(responses.chunks(2)) {
            let hashed = match sdk {
                Sdk::Python => edge.python,
                Sdk::Node => edge.node,
            };
            let (sdk_signature, _) = signatures(&pair[0]);
            let want = signer.signature(KeySlot::Primary, hashed.as_bytes(), &ts);
            assert_eq!(
                Some(sdk_signature),
                want,
                "{sdk:?} no longer escapes {} as {hashed}",
                edge.raw
            );
            let accepts = if hashed == edge.php {
                Outcome::Valid
            } else {
                Outcome::Invalid
            };
            assert_eq!(outcome(&pair[1]), accepts, "{sdk:?} on {}", edge.raw);
        }
    }
}

/// One delivery on which the SDKs and boxhook are pinned to differ (or agree).
struct Lenient {
    label: &'static str,
    /// The headers as handed to the SDKs.
    sdk_headers: Value,
    /// The same headers as handed to boxhook.
    header_map: HeaderMap,
    python: Outcome,
    node: Outcome,
    boxhook: Option<ErrorKind>,
}

/// Inputs where the SDKs are laxer or stricter than boxhook, pinned.
#[test]
fn pinned_header_and_encoding_leniency() {
    let Some(oracles) = oracles() else { return };
    let signer = Signer::new(both_keys());
    let verifier = Verifier::new(both_keys());
    let body = br#"{"type":"webhook_event","trigger":"FILE.UPLOADED"}"#;
    let ts = timestamp_from_now(0);
    let delivery = signer.sign(body, &ts, "interop-e");
    let primary = delivery.primary().expect("signed").to_owned();
    let lower = sdk_headers(&delivery);

    // Header names exactly as Box's docs print them. boxhook reads names
    // case-insensitively; the SDKs index a plain map with lower-case names, so
    // Python dereferences a missing timestamp and Node finds no version.
    let upper: Map<String, Value> = delivery
        .iter()
        .map(|(n, v)| (n.to_ascii_uppercase(), Value::from(v)))
        .collect();
    // Unpadded base64: Node decodes both sides with `Buffer.from(_, "base64")`
    // and compares bytes; Python compares strings; boxhook is strict.
    let unpadded = primary.trim_end_matches('=').to_owned();
    let mut unpadded_headers = lower.clone();
    unpadded_headers["box-signature-primary"] = json!(unpadded);
    unpadded_headers
        .as_object_mut()
        .expect("an object")
        .remove("box-signature-secondary");
    // Version 2: everyone refuses.
    let mut v2_headers = lower.clone();
    v2_headers["box-signature-version"] = json!("2");
    let mut v2_map = delivery.to_header_map();
    v2_map.insert("box-signature-version", HeaderValue::from_static("2"));

    let table = [
        Lenient {
            label: "upper-case header names",
            sdk_headers: Value::Object(upper),
            header_map: delivery.to_header_map(),
            python: Outcome::Threw("AttributeError".to_owned()),
            node: Outcome::Invalid,
            boxhook: None,
        },
        Lenient {
            label: "unpadded signature",
            sdk_headers: unpadded_headers,
            header_map: box_header_map(ts.as_str(), Some(&unpadded), None),
            python: Outcome::Invalid,
            node: Outcome::Valid,
            boxhook: Some(ErrorKind::MalformedSignature),
        },
        Lenient {
            label: "version 2",
            sdk_headers: v2_headers,
            header_map: v2_map,
            python: Outcome::Invalid,
            node: Outcome::Invalid,
            boxhook: Some(ErrorKind::UnsupportedVersion),
        },
    ];
    let requests: Vec<Value> = table
        .iter()
        .map(|case| validate_request(body, &case.sdk_headers, PRIMARY, Some(SECONDARY)))
        .collect();
    let [python, node] = oracles.ask_both(&requests);
    for (i, case) in table.iter().enumerate() {
        assert_eq!(outcome(&python[i]), case.python, "python: {}", case.label);
        assert_eq!(outcome(&node[i]), case.node, "node: {}", case.label);
        let got = verifier
            .verify(&case.header_map, body, Utc::now())
            .err()
            .map(|e| e.kind());
        assert_eq!(got, case.boxhook, "boxhook: {}", case.label);
    }

    // An unparseable timestamp, signed by the SDKs themselves: Node's
    // `new Date("garbage")` is NaN, every comparison with NaN is false, so its
    // freshness check passes and the delivery is accepted. Python's
    // `fromisoformat` throws. boxhook rejects it as malformed.
    let garbage = "not-a-timestamp";
    let sign = [sign_request(body, garbage, false, false)];
    let [python_sig, node_sig] = oracles.ask_both(&sign);
    let (node_signature, _) = signatures(&node_sig[0]);
    assert_eq!(signatures(&python_sig[0]).0, node_signature);
    let headers = json!({
        "box-delivery-timestamp": garbage,
        "box-signature-primary": node_signature,
        "box-signature-version": "1",
        "box-signature-algorithm": "HmacSHA256",
    });
    let [python, node] = oracles.ask_both(&[validate_request(body, &headers, PRIMARY, None)]);
    assert_eq!(outcome(&python[0]), Outcome::Threw("ValueError".to_owned()));
    assert_eq!(
        outcome(&node[0]),
        Outcome::Valid,
        "node accepts a NaN timestamp"
    );
    let map = box_header_map(garbage, Some(&node_signature), None);
    let got = verifier
        .verify(&map, body, Utc::now())
        .err()
        .map(|e| e.kind());
    assert_eq!(got, Some(ErrorKind::MalformedTimestamp));
}
