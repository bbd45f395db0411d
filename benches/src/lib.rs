//! Inputs shared by boxhook's benchmarks and allocation tests.
//!
//! Realistic `FILE.UPLOADED` deliveries padded to an exact size, in Box's
//! wire form (PHP-style `\/` and `\uXXXX`) or as a
//! re-encoding proxy would forward them (raw UTF-8), signed with the core's
//! [`Signer`] — never with a copy of it.

use boxhook_core::{DeliveryTimestamp, KeyRing, Signer};
use chrono::{DateTime, Utc};
use http::HeaderMap;

/// The primary key of Box's SDK test vectors (see "Known-answer vectors" in docs/PROTOCOL.md).
pub const PRIMARY_KEY: &str = "SamplePrimaryKey";
/// The secondary key of Box's SDK test vectors (see "Known-answer vectors" in docs/PROTOCOL.md).
pub const SECONDARY_KEY: &str = "SampleSecondaryKey";
/// The `BOX-DELIVERY-TIMESTAMP` every benchmark delivery carries.
pub const TIMESTAMP: &str = "2020-01-01T00:00:00-07:00";
/// Body sizes measured: 1 KiB, 8 KiB, 64 KiB.
pub const SIZES: [usize; 3] = [1024, 8 * 1024, 64 * 1024];

/// Which bytes a body is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// What Box sends: ASCII, `/` as `\/`, non-ASCII as `\uXXXX`.
    Wire,
    /// What a re-encoding hop forwards: raw UTF-8 and bare `/` in strings.
    RawUtf8,
}

/// Both sample keys.
///
/// # Panics
///
/// Never: the keys are non-empty constants.
#[must_use]
pub fn keys() -> KeyRing {
    KeyRing::from_strs(Some(PRIMARY_KEY), Some(SECONDARY_KEY)).expect("non-empty sample keys")
}

/// The receiver's clock: 30 s after [`TIMESTAMP`], well inside the defaults.
///
/// # Panics
///
/// Never: the instant is a valid constant.
#[must_use]
pub fn now() -> DateTime<Utc> {
    "2020-01-01T07:00:30Z".parse().expect("valid instant")
}

/// `1KiB`, `8KiB`, `64KiB`: the parameter shown in benchmark ids.
#[must_use]
pub fn size_label(size: usize) -> String {
    if size.is_multiple_of(1024) {
        format!("{}KiB", size / 1024)
    } else {
        format!("{size}B")
    }
}

/// The headers Box would send for `body` as given.
#[must_use]
pub fn signed_headers(body: &[u8]) -> HeaderMap {
    Signer::new(keys())
        .sign(body, &timestamp(), "bench-delivery-1")
        .to_header_map()
}

/// The headers Box would send had it written `body` itself: signed over the
/// escaped form, as for a body a proxy re-encoded to raw UTF-8.
///
/// # Panics
///
/// If `body` is not UTF-8 (it has no escaped form).
#[must_use]
pub fn signed_escaped_headers(body: &[u8]) -> HeaderMap {
    Signer::new(keys())
        .sign_escaped(body, &timestamp(), "bench-delivery-1")
        .expect("UTF-8 body")
        .to_header_map()
}

fn timestamp() -> DeliveryTimestamp {
    DeliveryTimestamp::parse(TIMESTAMP).expect("valid timestamp")
}

/// Folder names on the path to the uploaded file, in both encodings.
const FOLDERS: [(&str, &str); 6] = [
    ("Clients", "Clients"),
    ("Acme Corp \\/ Contracts", "Acme Corp / Contracts"),
    ("R\\u00e9sum\\u00e9s 2026", "Résumés 2026"),
    (
        "\\u30b9\\u30af\\u30ea\\u30fc\\u30f3\\u30b7\\u30e7\\u30c3\\u30c8",
        "スクリーンショット",
    ),
    ("Q3 \\ud83d\\ude80 launch", "Q3 🚀 launch"),
    ("Archive", "Archive"),
];

const FILLER: &str = "Quarterly forecast for the EMEA region, revised after the review. ";

/// A `FILE.UPLOADED` delivery of exactly `size` bytes, shaped like Box's
/// (see "Payload shapes" in docs/PROTOCOL.md): compact, keys in wire order, a full file object
/// whose
/// `path_collection` grows with the size, the last bytes in `description`.
///
/// # Panics
///
/// If `size` is below the smallest such event (about 1000 bytes).
#[must_use]
pub fn file_uploaded(size: usize, encoding: Encoding) -> Vec<u8> {
    let mut fitting = None;
    for depth in 0.. {
        let candidate = render(depth, 0, encoding);
        if candidate.len() > size {
            break;
        }
        fitting = Some((depth, candidate.len()));
    }
    let (depth, len) = fitting.unwrap_or_else(|| panic!("{size} bytes is too small for an event"));
    let body = render(depth, size - len, encoding);
    debug_assert_eq!(body.len(), size);
    body.into_bytes()
}

fn render(depth: usize, description_len: usize, encoding: Encoding) -> String {
    let pick = |(wire, raw): (&'static str, &'static str)| match encoding {
        Encoding::Wire => wire,
        Encoding::RawUtf8 => raw,
    };
    let owner = pick(("Ren\\u00e9e O'Brien", "Renée O'Brien"));
    let file_name = pick(("Q3 forecast \\/ EMEA.xlsx", "Q3 forecast / EMEA.xlsx"));
    let user = format!(
        r#"{{"type":"user","id":"22015483","name":"{owner}","login":"renee@example.com"}}"#
    );
    let mut entries = String::from(
        r#"{"type":"folder","id":"0","sequence_id":null,"etag":null,"name":"All Files"}"#,
    );
    let mut parent = String::from(
        r#"{"type":"folder","id":"0","sequence_id":null,"etag":null,"name":"All Files"}"#,
    );
    for i in 0..depth {
        let name = pick(FOLDERS[i % FOLDERS.len()]);
        parent = format!(
            r#"{{"type":"folder","id":"{}","sequence_id":"{}","etag":"{}","name":"{name}"}}"#,
            180_000_000_000_u64 + i as u64 * 7919,
            i % 5,
            i % 5,
        );
        entries.push(',');
        entries.push_str(&parent);
    }
    let description: String = FILLER.chars().cycle().take(description_len).collect();
    let sha1 = "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12";
    format!(
        concat!(
            r#"{{"type":"webhook_event","id":"f8a3c7e2-7b1d-4c5e-9f2a-3d6e8b1c0a94","#,
            r#""created_at":"2020-01-01T00:00:00-07:00","trigger":"FILE.UPLOADED","#,
            r#""webhook":{{"id":"1847502","type":"webhook"}},"created_by":{user},"#,
            r#""source":{{"id":"1403762891234","type":"file","#,
            r#""file_version":{{"type":"file_version","id":"1537089912345"}},"#,
            r#""sequence_id":"0","etag":"0","sha1":"{sha1}","name":"{file_name}","#,
            r#""description":"{description}","size":48213,"#,
            r#""path_collection":{{"total_count":{total},"entries":[{entries}]}},"#,
            r#""created_at":"2019-12-31T23:59:58-08:00","modified_at":"2019-12-31T23:59:58-08:00","#,
            r#""owned_by":{user},"#,
            r#""shared_link":null,"parent":{parent},"item_status":"active"}},"#,
            r#""additional_info":[]}}"#,
        ),
        user = user,
        sha1 = sha1,
        file_name = file_name,
        description = description,
        total = depth + 1,
        entries = entries,
        parent = parent,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxhook_core::{escaped_form, BodyForm, Verifier};
    use std::borrow::Cow;

    #[test]
    fn bodies_have_the_exact_size_and_are_json() {
        for size in [1024, 3 * 1024, 8 * 1024, 64 * 1024] {
            for encoding in [Encoding::Wire, Encoding::RawUtf8] {
                let body = file_uploaded(size, encoding);
                assert_eq!(body.len(), size, "{encoding:?}");
                let value: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
                assert_eq!(value["trigger"], "FILE.UPLOADED");
                let entries = value["source"]["path_collection"]["entries"]
                    .as_array()
                    .expect("entries")
                    .len();
                assert_eq!(value["source"]["path_collection"]["total_count"], entries);
            }
        }
    }

    #[test]
    fn wire_bodies_are_already_escaped_and_raw_ones_are_not() {
        let wire = file_uploaded(8 * 1024, Encoding::Wire);
        assert!(matches!(escaped_form(&wire), Ok(Cow::Borrowed(_))));
        let raw = file_uploaded(8 * 1024, Encoding::RawUtf8);
        assert!(matches!(escaped_form(&raw), Ok(Cow::Owned(_))));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&wire).expect("json")["source"]["name"],
            serde_json::from_slice::<serde_json::Value>(&raw).expect("json")["source"]["name"],
        );
    }

    #[test]
    fn signed_deliveries_verify_on_the_intended_path() {
        let verifier = Verifier::new(keys());
        let wire = file_uploaded(1024, Encoding::Wire);
        let ok = verifier
            .verify(&signed_headers(&wire), &wire, now())
            .expect("raw path");
        assert_eq!(ok.body_form(), BodyForm::Raw);
        let raw = file_uploaded(1024, Encoding::RawUtf8);
        let ok = verifier
            .verify(&signed_escaped_headers(&raw), &raw, now())
            .expect("escaped path");
        assert_eq!(ok.body_form(), BodyForm::Escaped);
    }
}
