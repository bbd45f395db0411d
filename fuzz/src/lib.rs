//! Shared pieces of boxhook's fuzz targets: the fixed keys and clock, and the
//! `verify` target's input format with an encoder, so seeds can be written
//! from real deliveries (see `src/bin/make_seeds.rs` and docs/FUZZING.md).

use arbitrary::{Arbitrary, Unstructured};
use boxhook_core::{KeyRing, Verifier};

/// The keys of Box's SDK test vectors (see "Known-answer vectors" in docs/PROTOCOL.md).
pub const PRIMARY_KEY: &str = "SamplePrimaryKey";
/// The secondary key of the same vectors.
pub const SECONDARY_KEY: &str = "SampleSecondaryKey";
/// The timestamp of those vectors; seeds are signed with it.
pub const TIMESTAMP: &str = "2020-01-01T00:00:00-07:00";
/// The fuzzed verifier's clock: 30 s after [`TIMESTAMP`].
pub const NOW: &str = "2020-01-01T07:00:30Z";

/// The six Box header names, in the order the selector uses.
pub const BOX_HEADERS: [&str; 6] = [
    "box-delivery-id",
    "box-delivery-timestamp",
    "box-signature-primary",
    "box-signature-secondary",
    "box-signature-version",
    "box-signature-algorithm",
];

/// Both sample keys.
///
/// # Panics
///
/// Never: the keys are non-empty constants.
#[must_use]
pub fn keys() -> KeyRing {
    KeyRing::from_strs(Some(PRIMARY_KEY), Some(SECONDARY_KEY)).expect("non-empty keys")
}

/// The default verifier (escaped fallback on) over both sample keys.
#[must_use]
pub fn verifier() -> Verifier {
    Verifier::new(keys())
}

/// One header name as the fuzzer spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// One of [`BOX_HEADERS`], in one of four spellings.
    Box { index: usize, case: Case },
    /// Anything else (lossy UTF-8 of up to 255 bytes).
    Other(String),
}

/// How a Box header name is spelled: names are case-insensitive (see "A delivery on the wire" in
/// docs/PROTOCOL.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// `box-delivery-id`
    Lower,
    /// `BOX-DELIVERY-ID`
    Upper,
    /// `Box-Delivery-Id`
    Title,
    /// ` box-delivery-id ` (surrounding whitespace)
    Padded,
}

impl Name {
    /// The header name as sent.
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            Self::Other(text) => text.clone(),
            Self::Box { index, case } => {
                let name = BOX_HEADERS[*index % BOX_HEADERS.len()];
                match case {
                    Case::Lower => name.to_owned(),
                    Case::Upper => name.to_ascii_uppercase(),
                    Case::Padded => format!(" {name} "),
                    Case::Title => {
                        let mut out = String::with_capacity(name.len());
                        let mut up = true;
                        for c in name.chars() {
                            out.push(if up { c.to_ascii_uppercase() } else { c });
                            up = c == '-';
                        }
                        out
                    }
                }
            }
        }
    }
}

/// The `verify` target's input: a few headers and a body.
///
/// Byte format, read front to back so seeds can be encoded ([`Self::encode`]):
///
/// ```text
/// count    1 byte   number of headers = byte % 9
/// per header:
///   sel    1 byte   sel < 0xe0: Box name BOX_HEADERS[sel % 6], case (sel / 6) % 4
///                   otherwise:  a free name follows: len (1 byte), len bytes
///   vlen   2 bytes  value length = (b0 & 1) * 256 + b1 (so up to 511, past the
///                   256-byte header limit)
///   value  vlen bytes (fewer if the input ends)
/// body     every remaining byte
/// ```
///
/// Seven in eight selector values name a Box header, so most inputs exercise
/// the verifier rather than the "missing header" exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyInput {
    /// Header (name, value) pairs in order; duplicates allowed.
    pub headers: Vec<(Name, Vec<u8>)>,
    /// The delivery body.
    pub body: Vec<u8>,
}

const FREE_NAME: u8 = 0xe0;

fn take<'a>(u: &mut Unstructured<'a>, len: usize) -> arbitrary::Result<&'a [u8]> {
    u.bytes(len.min(u.len()))
}

impl<'a> Arbitrary<'a> for VerifyInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let count = u.arbitrary::<u8>()? % 9;
        let mut headers = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let sel = u.arbitrary::<u8>()?;
            let name = if sel < FREE_NAME {
                let case = match (sel / 6) % 4 {
                    0 => Case::Lower,
                    1 => Case::Upper,
                    2 => Case::Title,
                    _ => Case::Padded,
                };
                Name::Box {
                    index: usize::from(sel % 6),
                    case,
                }
            } else {
                let len = u.arbitrary::<u8>()?;
                Name::Other(String::from_utf8_lossy(take(u, usize::from(len))?).into_owned())
            };
            let (hi, lo) = (u.arbitrary::<u8>()?, u.arbitrary::<u8>()?);
            let len = usize::from(hi & 1) * 256 + usize::from(lo);
            headers.push((name, take(u, len)?.to_vec()));
        }
        Ok(Self {
            headers,
            body: take(u, usize::MAX)?.to_vec(),
        })
    }
}

impl VerifyInput {
    /// The bytes [`Arbitrary::arbitrary`] reads back as `self`.
    ///
    /// # Panics
    ///
    /// If the input cannot be represented: more than 8 headers, a value over
    /// 511 bytes, or a free name that is not valid UTF-8 of at most 255 bytes
    /// (or that decodes as something else).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        assert!(self.headers.len() <= 8, "at most 8 headers");
        let mut out = vec![u8::try_from(self.headers.len()).expect("<= 8")];
        for (name, value) in &self.headers {
            match name {
                Name::Box { index, case } => {
                    let case = match case {
                        Case::Lower => 0,
                        Case::Upper => 1,
                        Case::Title => 2,
                        Case::Padded => 3,
                    };
                    out.push(u8::try_from(case * 6 + index % 6).expect("< 24"));
                }
                Name::Other(text) => {
                    out.push(FREE_NAME);
                    out.push(u8::try_from(text.len()).expect("free name up to 255 bytes"));
                    out.extend_from_slice(text.as_bytes());
                }
            }
            let len = value.len();
            assert!(len <= 511, "header value up to 511 bytes");
            out.push(u8::from(len >= 256));
            out.push(u8::try_from(len % 256).expect("< 256"));
            out.extend_from_slice(value);
        }
        out.extend_from_slice(&self.body);
        out
    }

    /// The headers as (name, value) pairs for `DeliveryHeaders::from_pairs`.
    #[must_use]
    pub fn pairs(&self) -> Vec<(String, &[u8])> {
        self.headers
            .iter()
            .map(|(name, value)| (name.text(), value.as_slice()))
            .collect()
    }
}
