//! Checks of the key material: swapped slots, white space around a key, a
//! key used base64-decoded (or given base64-encoded).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;

use super::check::Check;
use super::{ring_of, Hint, HintCode};
use crate::{Freshness, KeySlot};

pub(super) fn repairs(check: &Check<'_, '_>, freshness: Freshness) -> Vec<Hint> {
    let primary = check.keys.text(KeySlot::Primary);
    let secondary = check.keys.text(KeySlot::Secondary);
    let mut hints = Vec::new();
    let verifies = |p: Option<&[u8]>, s: Option<&[u8]>| {
        ring_of(p, s).ok().and_then(|ring| {
            check
                .verifies(&ring, check.headers, check.body, freshness)
                .map(|v| v.key_slot())
        })
    };

    if let Some(slot) = verifies(secondary, primary) {
        let given = match slot {
            KeySlot::Primary => KeySlot::Secondary,
            KeySlot::Secondary => KeySlot::Primary,
        };
        hints.push(Hint::new(
            HintCode::KeysSwapped,
            format!(
                "the keys look swapped: {} verifies with the key given as the {given} key; \
                 swap the primary and secondary keys",
                slot.header_name().to_ascii_uppercase()
            ),
        ));
    }

    let (tp, ts) = (
        primary.map(<[u8]>::trim_ascii),
        secondary.map(<[u8]>::trim_ascii),
    );
    if (tp, ts) != (primary, secondary)
        && let Some(slot) = verifies(tp, ts)
    {
        hints.push(Hint::new(
            HintCode::KeyWhitespace,
            format!(
                "the {slot} key as given has white space or a line break around it (from a \
                     file or `echo`); without it the delivery verifies: trim the key"
            ),
        ));
    }

    let decoded = |k: Option<&[u8]>| k.and_then(decode);
    let (dp, ds) = (decoded(primary), decoded(secondary));
    let encoded = |k: Option<&[u8]>| k.map(|k| STANDARD.encode(k).into_bytes());
    let (ep, es) = (encoded(primary), encoded(secondary));
    for (p, s, how) in [
        (
            dp.as_deref(),
            ds.as_deref(),
            "the key's base64-decoded bytes verify: the signer or this configuration \
             decoded the key, but Box uses the key's text as it is",
        ),
        (
            ep.as_deref(),
            es.as_deref(),
            "the key's base64 encoding verifies: the key given was decoded from the \
             one in the Developer Console; use the key's text as it is",
        ),
    ] {
        if p.is_none() && s.is_none() {
            continue;
        }
        if let Some(slot) = verifies(p, s) {
            hints.push(Hint::new(
                HintCode::KeyEncoding,
                format!("with the {slot} key, {how}"),
            ));
            break;
        }
    }
    hints
}

/// The key's bytes read as standard base64, padded or not.
fn decode(key: &[u8]) -> Option<Vec<u8>> {
    STANDARD
        .decode(key)
        .or_else(|_| STANDARD_NO_PAD.decode(key))
        .ok()
        .filter(|bytes| !bytes.is_empty())
}
