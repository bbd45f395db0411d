//! The escaped form against the real `json_encode`: PHP's own encoder, run
//! by `tests/oracles/php_oracle.php`, is the second oracle beside Box's
//! Python and Node SDKs.
//!
//! For every text in the corpus (the fixtures, Box's published test body,
//! and generated values rich in slashes, escapes and non-ASCII), PHP writes
//! the value twice: `E`, with `json_encode`'s default flags (what Box signs),
//! and `R`, with `JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE` (what a
//! re-serializing hop writes). The claims:
//!
//! 1. `escaped_form(R) == E`, byte for byte: boxhook rebuilds what Box signed;
//! 2. `escaped_form(E)` is `E` itself, borrowed: Box's own bytes are left alone;
//! 3. every fixture is already in `E`'s form: none is a body Box could not have
//!    written.
//!
//! Needs `php` on `PATH` (Debian's `php-cli`; `BOXHOOK_PHP` names another
//! binary). Without it the test says it is skipped and passes, unless
//! `BOXHOOK_ORACLES=required` (CI), where it fails.

use std::borrow::Cow;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use boxhook_core::escaped_form;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::Value;

/// How many generated values join the corpus.
const GENERATED: usize = 3000;

fn php() -> Option<PathBuf> {
    let required = std::env::var("BOXHOOK_ORACLES").is_ok_and(|v| v == "required");
    let php = std::env::var_os("BOXHOOK_PHP").map_or_else(|| PathBuf::from("php"), PathBuf::from);
    let runs = Command::new(&php)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if runs {
        return Some(php);
    }
    assert!(
        !required,
        "BOXHOOK_ORACLES=required but `{}` does not run; install Debian's php-cli \
         (apt-get install php-cli) or set BOXHOOK_PHP",
        php.display()
    );
    println!("php_json_encode: skipped (no `php`; apt-get install php-cli)");
    None
}

/// Runs the oracle over `requests` (mode letter and JSON text), one answer each.
fn ask(php: &Path, requests: &[(char, &str)]) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracles/php_oracle.php");
    let mut child = Command::new(php)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", php.display()));
    let mut input = String::new();
    for (mode, text) in requests {
        assert!(!text.contains('\n'), "one JSON text per line: {text:?}");
        input.push(*mode);
        input.push(' ');
        input.push_str(text);
        input.push('\n');
    }
    let mut stdin = child.stdin.take().expect("piped");
    // Written from a thread: PHP answers while it reads, and a full stdout
    // pipe would otherwise stall both sides.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("php ran");
    writer.join().expect("writer").expect("wrote the requests");
    assert!(
        out.status.success(),
        "php failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("json_encode writes UTF-8");
    let answers: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(answers.len(), requests.len(), "one answer per request");
    for ((mode, request), answer) in requests.iter().zip(&answers) {
        assert!(
            !answer.starts_with('!'),
            "PHP refused {mode} {request}: {answer}"
        );
    }
    answers
}

/// Strings made of what the escaped form and `json_encode` treat specially.
fn tricky_string() -> impl Strategy<Value = String> {
    let pieces = proptest::sample::select(vec![
        "/",
        "//",
        "\\",
        "\\/",
        "\"",
        "a",
        "Z",
        " ",
        "http://box.com/x",
        "\u{0}",
        "\u{1f}",
        "\n",
        "\t",
        "\u{7f}",
        "é",
        "ß",
        "スク",
        "😀",
        "\u{2028}",
        "\u{2029}",
        "\u{fffd}",
        "\u{ffff}",
        "\u{10ffff}",
        "\u{e9}\u{301}",
        "<>&'",
    ]);
    proptest::collection::vec(pieces, 0..12).prop_map(|parts| parts.concat())
}

/// Object keys: tricky strings, except that PHP's objects cannot have a
/// property name that starts with NUL, so Box never writes one.
fn key() -> impl Strategy<Value = String> {
    tricky_string().prop_map(|key| match key.strip_prefix('\0') {
        Some(rest) => format!("k{rest}"),
        None => key,
    })
}

/// JSON values of strings, small integers, booleans, null, arrays and objects.
fn value() -> impl Strategy<Value = Value> {
    let leaf = proptest::prop_oneof![
        tricky_string().prop_map(Value::String),
        (-(1_i64 << 53)..(1_i64 << 53)).prop_map(Value::from),
        proptest::bool::ANY.prop_map(Value::Bool),
        proptest::strategy::Just(Value::Null),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        proptest::prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn generated() -> Vec<String> {
    let mut runner = TestRunner::deterministic();
    let strategy = value();
    (0..GENERATED)
        .map(|_| {
            let tree = strategy.new_tree(&mut runner).expect("a value");
            serde_json::to_string(&tree.current()).expect("serializes")
        })
        .collect()
}

fn fixtures() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut found = Vec::new();
    let mut pending = vec![dir.clone()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("fixtures directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let body = std::fs::read_to_string(&path).expect("fixture is UTF-8");
                let name = path
                    .strip_prefix(&dir)
                    .expect("below")
                    .display()
                    .to_string();
                found.push((name, body.trim_end_matches('\n').to_owned()));
            }
        }
    }
    found.sort();
    assert!(found.len() >= 40, "the fixture corpus is missing");
    found
}

/// The body of Box's published test vector, as Box signed it.
const BOX_VECTOR: &str = r#"{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"\u30b9\u30af\u30ea\u30fc\u30f3\u30b7\u30e7\u30c3\u30c8 2020-08-05.txt"}}"#;

#[test]
fn escaped_form_is_what_json_encode_writes() {
    let Some(php) = php() else { return };
    let fixtures = fixtures();
    let mut texts: Vec<String> = fixtures.iter().map(|(_, body)| body.clone()).collect();
    texts.push(BOX_VECTOR.to_owned());
    texts.extend(generated());

    let requests: Vec<(char, &str)> = texts
        .iter()
        .flat_map(|text| [('E', text.as_str()), ('R', text.as_str())])
        .collect();
    let answers = ask(&php, &requests);

    let mut changed = 0_usize;
    for (text, pair) in texts.iter().zip(answers.chunks(2)) {
        let (signed, reserialized) = (&pair[0], &pair[1]);
        let rebuilt = escaped_form(reserialized.as_bytes()).expect("json_encode writes UTF-8");
        assert_eq!(
            std::str::from_utf8(&rebuilt).expect("ASCII"),
            signed,
            "escaped form of PHP's raw {reserialized} (from {text})"
        );
        assert!(
            matches!(escaped_form(signed.as_bytes()), Ok(Cow::Borrowed(_))),
            "json_encode's own output {signed} must be left as it is"
        );
        if reserialized != signed {
            changed = changed.saturating_add(1);
        }
    }
    // The corpus exercises the rewrite, not only the borrowed path.
    assert!(
        changed > GENERATED / 2,
        "only {changed} texts differ between the forms"
    );
    println!(
        "php_json_encode: {} texts agree with json_encode ({changed} rewritten)",
        texts.len()
    );
}

#[test]
fn every_fixture_is_in_the_form_box_writes() {
    let Some(php) = php() else { return };
    let fixtures = fixtures();
    let requests: Vec<(char, &str)> = fixtures
        .iter()
        .map(|(_, body)| ('E', body.as_str()))
        .collect();
    let answers = ask(&php, &requests);
    for ((name, body), encoded) in fixtures.iter().zip(&answers) {
        assert_eq!(body, encoded, "fixture {name} is not json_encode's output");
    }
}

#[test]
fn box_vector_round_trips_through_json_encode() {
    let Some(php) = php() else { return };
    let answers = ask(&php, &[('R', BOX_VECTOR)]);
    assert!(answers[0].contains("スクリーンショット 2020-08-05.txt"));
    let rebuilt = escaped_form(answers[0].as_bytes()).expect("UTF-8");
    assert_eq!(&*rebuilt, BOX_VECTOR.as_bytes());
}
