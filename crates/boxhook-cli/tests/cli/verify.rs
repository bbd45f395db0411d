//! `boxhook sign` and `boxhook verify` as processes: exit codes, JSON, and
//! every diagnosis.
#![allow(
    clippy::too_many_lines,
    clippy::format_push_string,
    clippy::format_collect,
    clippy::unwrap_used,
    reason = "tests: long literal tables, and a panic is the failure report"
)]

use crate::common;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use boxhook_core::{DeliveryTimestamp, KeyRing, Signer};
use common::{boxhook, run, temp_dir};

const T: &str = "2020-01-01T00:00:00-07:00";
/// One minute after `T`.
const NOW: &str = "2020-01-01T07:01:00Z";
const BODY: &str = r#"{"type":"webhook_event","webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"Test.txt"}}"#;
const PRIMARY_SIG: &str = "6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hI=";
const SECONDARY_SIG: &str = "v+1CD1Jdo3muIcbpv5lxxgPglOqMfsNHPV899xWYydo=";
const P: &str = "SamplePrimaryKey";
const S: &str = "SampleSecondaryKey";
const LIMIT: Duration = Duration::from_secs(20);

fn headers(primary: Option<&str>, secondary: Option<&str>) -> String {
    let mut text = format!(
        "POST /box HTTP/1.1\r\nHost: example.test\r\nbox-delivery-id: d-1\r\nBox-Delivery-Timestamp: {T}\r\n"
    );
    if let Some(sig) = primary {
        text.push_str(&format!("BOX-SIGNATURE-PRIMARY: {sig}\r\n"));
    }
    if let Some(sig) = secondary {
        text.push_str(&format!("box-signature-secondary: {sig}\r\n"));
    }
    text.push_str("BOX-SIGNATURE-VERSION: 1\r\nBOX-SIGNATURE-ALGORITHM: HmacSHA256\r\nContent-Type: application/json\r\n\r\n");
    text
}

struct Verdict {
    code: i32,
    json: serde_json::Value,
}

fn verify(dir: &Path, headers: &str, body: &[u8], args: &[&str]) -> Verdict {
    std::fs::write(dir.join("headers.txt"), headers).expect("write headers");
    std::fs::write(dir.join("body.json"), body).expect("write body");
    let out = run(
        boxhook()
            .current_dir(dir)
            .args([
                "verify",
                "--headers",
                "headers.txt",
                "--body",
                "body.json",
                "--json",
            ])
            .args(args),
        LIMIT,
    );
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "not JSON ({err}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Verdict {
        code: out.status.code().expect("exited"),
        json,
    }
}

fn hex(sig: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(sig)
        .expect("base64")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every diagnosis: what is captured, what keys and clock, and what
/// `verify --json` must answer.
#[test]
fn every_diagnosis() {
    let utf8_body = r#"{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"スクリーンショット 2020-08-05.txt"}}"#;
    let wrapped = format!("{}\r\n  {}", &PRIMARY_SIG[..20], &PRIMARY_SIG[20..]);
    let other_sig = Signer::new(KeyRing::from_strs(Some("another key"), None).unwrap())
        .signature(
            boxhook_core::KeySlot::Primary,
            BODY.as_bytes(),
            &DeliveryTimestamp::parse(T).unwrap(),
        )
        .unwrap();
    let body_nl = format!("{BODY}\n");

    #[allow(clippy::type_complexity)] // Reason: a test table.
    let cases: Vec<(
        &str,
        String,
        &[u8],
        Vec<&str>,
        i32,
        Option<&str>,
        Option<&str>,
        Option<&str>,
        &str,
        &str,
    )> = vec![
        // name, headers, body, args, exit, reason, key, form, message part, hint part
        (
            "valid, primary",
            headers(Some(PRIMARY_SIG), Some(SECONDARY_SIG)),
            BODY.as_bytes(),
            vec!["--primary-key", P, "--secondary-key", S, "--now", NOW],
            0,
            None,
            Some("primary"),
            Some("raw"),
            "60 s old",
            "",
        ),
        (
            "valid, secondary only",
            headers(Some(&other_sig), Some(SECONDARY_SIG)),
            BODY.as_bytes(),
            vec!["--primary-key", P, "--secondary-key", S, "--now", NOW],
            0,
            None,
            Some("secondary"),
            Some("raw"),
            "secondary key",
            "secondary_only",
        ),
        (
            "escaped form only",
            headers(Some("LV2uCu+5NJtIHrCXDYgZ0v/PP5THGRuegw3RtdnEyuE="), None),
            utf8_body.as_bytes(),
            vec!["--primary-key", P, "--now", NOW],
            0,
            None,
            Some("primary"),
            Some("escaped"),
            "escaped body",
            "escaped_form",
        ),
        (
            "hex signature",
            headers(Some(&hex(PRIMARY_SIG)), None),
            BODY.as_bytes(),
            vec!["--primary-key", P, "--now", NOW],
            1,
            Some("malformed_signature"),
            None,
            None,
            "looks like hex",
            "hex_signature",
        ),
        (
            "wrapped signature",
            headers(Some(&wrapped), None),
            BODY.as_bytes(),
            vec!["--primary-key", P, "--now", NOW],
            1,
            Some("malformed_signature"),
            None,
            None,
            "white space",
            "wrapped_base64",
        ),
        (
            "expired",
            headers(Some(PRIMARY_SIG), None),
            BODY.as_bytes(),
            vec!["--primary-key", P, "--now", "2020-01-01T07:12:22Z"],
            1,
            Some("expired"),
            None,
            None,
            "timestamp is 742 s old, limit 600 s",
            "expired",
        ),
        (
            "expired, own limit",
            headers(Some(PRIMARY_SIG), None),
            BODY.as_bytes(),
            vec!["--primary-key", P, "--now", NOW, "--max-age", "30"],
            1,
            Some("expired"),
            None,
            None,
            "timestamp is 60 s old, limit 30 s",
            "expired",
        ),
        (
            "future",
            headers(Some(PRIMARY_SIG), None),
            BODY.as_bytes(),
            vec!["--primary-key", P, "--now", "2020-01-01T06:58:00Z"],
            1,
            Some("future"),
            None,
            None,
            "timestamp is 120 s in the future, limit 60 s",
            "future",
        ),
        (
            "swapped keys",
            headers(Some(PRIMARY_SIG), Some(SECONDARY_SIG)),
            BODY.as_bytes(),
            vec!["--primary-key", S, "--secondary-key", P, "--now", NOW],
            1,
            Some("mismatch"),
            None,
            None,
            "no signature matches",
            "keys_swapped",
        ),
        (
            "swapped, one key",
            headers(None, Some(SECONDARY_SIG)),
            BODY.as_bytes(),
            vec!["--secondary-key", P, "--primary-key", S, "--now", NOW],
            1,
            Some("mismatch"),
            None,
            None,
            "no signature matches",
            "keys_swapped",
        ),
        (
            "trailing newline",
            headers(Some(PRIMARY_SIG), None),
            body_nl.as_bytes(),
            vec!["--primary-key", P, "--now", NOW],
            1,
            Some("mismatch"),
            None,
            None,
            "no signature matches",
            "trailing_newline",
        ),
        (
            "wrong key",
            headers(Some(PRIMARY_SIG), None),
            BODY.as_bytes(),
            vec!["--primary-key", "not the key", "--now", NOW],
            1,
            Some("mismatch"),
            None,
            None,
            "no signature matches",
            "unexplained",
        ),
        (
            "missing timestamp",
            headers(Some(PRIMARY_SIG), None)
                .replace(&format!("Box-Delivery-Timestamp: {T}\r\n"), ""),
            BODY.as_bytes(),
            vec!["--primary-key", P, "--now", NOW],
            1,
            Some("missing_header"),
            None,
            None,
            "box-delivery-timestamp is missing",
            "missing_header",
        ),
        (
            "missing signature for the key given",
            headers(None, Some(SECONDARY_SIG)),
            BODY.as_bytes(),
            vec!["--primary-key", P, "--now", NOW],
            1,
            Some("missing_header"),
            None,
            None,
            "box-signature-primary is missing",
            "missing_key",
        ),
        (
            "missing algorithm",
            headers(Some(PRIMARY_SIG), None).replace("BOX-SIGNATURE-ALGORITHM: HmacSHA256\r\n", ""),
            BODY.as_bytes(),
            vec!["--primary-key", P, "--now", NOW],
            1,
            Some("missing_header"),
            None,
            None,
            "box-signature-algorithm is missing",
            "missing_header",
        ),
    ];
    let dir = temp_dir("diagnoses");
    for (name, headers, body, args, code, reason, key, form, message, hint) in cases {
        let got = verify(&dir, &headers, body, &args);
        let j = &got.json;
        assert_eq!(got.code, code, "{name}: {j}");
        assert_eq!(j["valid"], code == 0, "{name}: {j}");
        assert_eq!(j["reason"].as_str(), reason, "{name}: {j}");
        assert_eq!(j["key"].as_str(), key, "{name}: {j}");
        assert_eq!(j["form"].as_str(), form, "{name}: {j}");
        assert!(
            j["message"].as_str().unwrap().contains(message),
            "{name}: {j}"
        );
        let hints: Vec<&str> = j["hints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["code"].as_str().unwrap())
            .collect();
        assert!(hint.is_empty() || hints.contains(&hint), "{name}: {j}");
        assert!(
            j["hints"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| !h["message"].as_str().unwrap().is_empty()),
            "{name}: {j}"
        );
        if hint.is_empty() {
            assert!(hints.is_empty(), "{name}: {j}");
        }
    }
}

/// A hint is only given when its alternative really verifies.
#[test]
fn no_false_hints() {
    let dir = temp_dir("false-hints");
    let got = verify(
        &dir,
        &headers(Some(&hex(PRIMARY_SIG)), None),
        b"{}",
        &["--primary-key", P, "--now", NOW],
    );
    let codes: Vec<&str> = got.json["hints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["code"].as_str().unwrap())
        .collect();
    // The hex reading does not verify over this body: no `hex_signature`.
    assert_eq!(codes, ["unexplained"], "{}", got.json);
}

#[test]
fn text_output_names_key_and_form() {
    let dir = temp_dir("text");
    std::fs::write(dir.join("h.txt"), headers(Some(PRIMARY_SIG), None)).unwrap();
    std::fs::write(dir.join("b.json"), BODY).unwrap();
    let out = run(
        boxhook().current_dir(&dir).env("BOX_PRIMARY_KEY", P).args([
            "verify",
            "--headers",
            "h.txt",
            "--body",
            "b.json",
            "--now",
            NOW,
        ]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        "valid: signed with the primary key over the raw body, 60 s old\n"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = temp_dir("usage");
    std::fs::write(dir.join("h.txt"), headers(Some(PRIMARY_SIG), None)).unwrap();
    std::fs::write(dir.join("b.json"), BODY).unwrap();
    let cases: [(&str, Vec<&str>); 6] = [
        (
            "no key",
            vec!["verify", "--headers", "h.txt", "--body", "b.json"],
        ),
        (
            "unreadable body",
            vec![
                "--primary-key",
                P,
                "verify",
                "--headers",
                "h.txt",
                "--body",
                "missing.json",
            ],
        ),
        (
            "unreadable headers",
            vec![
                "--primary-key",
                P,
                "verify",
                "--headers",
                "missing.txt",
                "--body",
                "b.json",
            ],
        ),
        (
            "bad --now",
            vec![
                "--primary-key",
                P,
                "verify",
                "--headers",
                "h.txt",
                "--body",
                "b.json",
                "--now",
                "yesterday",
            ],
        ),
        (
            "missing argument",
            vec!["--primary-key", P, "verify", "--body", "b.json"],
        ),
        (
            "headers file without headers",
            vec![
                "--primary-key",
                P,
                "verify",
                "--headers",
                "b.json",
                "--body",
                "b.json",
            ],
        ),
    ];
    for (name, args) in cases {
        let out = run(boxhook().current_dir(&dir).args(&args), LIMIT);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Empty environment values count as absent.
    let out = run(
        boxhook()
            .current_dir(&dir)
            .env("BOX_PRIMARY_KEY", "")
            .args(["verify", "--headers", "h.txt", "--body", "b.json"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
}

/// Box's published test vectors (see "Known-answer vectors" in docs/PROTOCOL.md), checked as of the
/// vector's own time.
#[test]
fn protocol_vectors() {
    let dir = temp_dir("vectors");
    let now = "2020-01-01T07:00:00Z";
    for (keys, key) in [
        (vec!["--primary-key", P, "--secondary-key", S], "primary"),
        (vec!["--primary-key", P], "primary"),
        (vec!["--secondary-key", S], "secondary"),
    ] {
        let mut args = keys;
        args.extend(["--now", now]);
        let got = verify(
            &dir,
            &headers(Some(PRIMARY_SIG), Some(SECONDARY_SIG)),
            BODY.as_bytes(),
            &args,
        );
        assert_eq!(
            (got.code, got.json["key"].as_str()),
            (0, Some(key)),
            "{}",
            got.json
        );
    }
    let escaped = r#"{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file","name":"\u30b9\u30af\u30ea\u30fc\u30f3\u30b7\u30e7\u30c3\u30c8 2020-08-05.txt"}}"#;
    let got = verify(
        &dir,
        &headers(Some("LV2uCu+5NJtIHrCXDYgZ0v/PP5THGRuegw3RtdnEyuE="), None),
        escaped.as_bytes(),
        &["--primary-key", P, "--now", now],
    );
    assert_eq!(
        (got.code, got.json["form"].as_str()),
        (0, Some("raw")),
        "{}",
        got.json
    );

    // The Java SDK's vector.
    let java = "BOX-DELIVERY-TIMESTAMP: 2016-07-08T01:20:32-07:00\nBOX-SIGNATURE-PRIMARY: R54s9jpedqP/Og92+77Ip8hVtfWjR4pnaJXcvRGafCQ=\nBOX-SIGNATURE-SECONDARY: V4b6jfPoCaTpcPvUDaaYLfVC4+DUZ3/B6F0pz44shEE=\nBOX-SIGNATURE-VERSION: 1\nBOX-SIGNATURE-ALGORITHM: HmacSHA256\n";
    let got = verify(
        &dir,
        java,
        br#"{ "payload" : "test" }"#,
        &[
            "--secondary-key",
            "4SidLLVJLIx3L3RAvMhybvvpmJHUd4iD",
            "--now",
            "2016-07-08T08:20:40Z",
        ],
    );
    assert_eq!(
        (got.code, got.json["key"].as_str()),
        (0, Some("secondary")),
        "{}",
        got.json
    );
}

#[test]
fn sign_prints_box_headers_and_round_trips_through_verify() {
    let dir = temp_dir("sign");
    std::fs::write(dir.join("b.json"), BODY).unwrap();
    let out = run(
        boxhook()
            .current_dir(&dir)
            .env("BOX_PRIMARY_KEY", P)
            .env("BOX_SECONDARY_KEY", S)
            .args([
                "sign",
                "--body",
                "b.json",
                "--timestamp",
                T,
                "--delivery-id",
                "d-42",
            ]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        format!("BOX-DELIVERY-ID: d-42\nBOX-DELIVERY-TIMESTAMP: {T}\nBOX-SIGNATURE-PRIMARY: {PRIMARY_SIG}\nBOX-SIGNATURE-SECONDARY: {SECONDARY_SIG}\nBOX-SIGNATURE-VERSION: 1\nBOX-SIGNATURE-ALGORITHM: HmacSHA256\n")
    );

    // Default timestamp (now) and delivery id, then verify on the real clock;
    // and `--escaped` for a body that was re-encoded as UTF-8.
    let utf8 = r#"{"name":"ス a/b.txt"}"#;
    std::fs::write(dir.join("u.json"), utf8).unwrap();
    for (body, extra, form) in [
        ("b.json", None, "raw"),
        ("u.json", Some("--escaped"), "escaped"),
    ] {
        let out = run(
            boxhook()
                .current_dir(&dir)
                .env("BOX_SECONDARY_KEY", S)
                .args(["sign", "--body", body])
                .args(extra),
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(0));
        std::fs::write(dir.join("signed.txt"), &out.stdout).unwrap();
        let out = run(
            boxhook()
                .current_dir(&dir)
                .env("BOX_SECONDARY_KEY", S)
                .args([
                    "verify",
                    "--headers",
                    "signed.txt",
                    "--body",
                    body,
                    "--json",
                ]),
            LIMIT,
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{json}");
        assert_eq!(
            (json["key"].as_str(), json["form"].as_str()),
            (Some("secondary"), Some(form))
        );
        assert_eq!(json["delivery_id"].as_str().map(str::len), Some(36));
    }

    let out = run(
        boxhook()
            .current_dir(&dir)
            .args(["sign", "--body", "b.json"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "no key");
    let out = run(
        boxhook().current_dir(&dir).env("BOX_PRIMARY_KEY", P).args([
            "sign",
            "--body",
            "b.json",
            "--timestamp",
            "noon",
        ]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "bad timestamp");
}

/// `--body-from-request` reads a raw capture and gives the same verdict,
/// with the trailing line break the capture tool added cut by Content-Length.
#[test]
fn body_from_request_reads_a_raw_capture() {
    let dir = temp_dir("from-request");
    let head = headers(Some(PRIMARY_SIG), None);
    let capture = format!(
        "POST /box HTTP/1.1\r\nContent-Length: {}\r\n{}\r\n\r\n{BODY}\n",
        BODY.len(),
        head.trim_end_matches("\r\n")
    );
    let path = dir.join("request.txt");
    std::fs::write(&path, capture).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_boxhook"))
        .args([
            "verify",
            "--json",
            "--primary-key",
            P,
            "--now",
            NOW,
            "--body-from-request",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{json}");
    assert_eq!(json["key"], "primary");
    assert_eq!(json["hints"], serde_json::json!([]));
}

/// `boxhook sign … | head -1`: a reader that closes the pipe before the
/// headers are written ends the command quietly (exit 0, nothing on
/// stderr), not with a panic about a broken pipe.
#[test]
fn sign_into_a_closed_pipe_exits_quietly() {
    let dir = temp_dir("sign-pipe");
    std::fs::write(dir.join("b.json"), BODY).unwrap();
    for _ in 0..3 {
        let mut child = boxhook()
            .current_dir(&dir)
            .env("BOX_PRIMARY_KEY", P)
            .args(["sign", "--body", "b.json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end at once: the headers are written after it.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).as_ref()
            ),
            (Some(0), ""),
        );
    }
}
