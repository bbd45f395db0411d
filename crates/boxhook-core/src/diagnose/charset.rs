//! Undoing charset damage: a body decoded as Windows-1252 (or Latin-1) and
//! encoded again as UTF-8, so that `é` arrives as `Ã©`.

/// Windows-1252's bytes 0x80–0x9F, as the WHATWG Encoding Standard maps them
/// (<https://encoding.spec.whatwg.org/index-windows-1252.txt>); the five
/// unassigned bytes map to the C1 control of the same value, as in Latin-1.
/// Bytes 0x00–0x7F and 0xA0–0xFF are the code point of the same value.
const WINDOWS_1252_80_9F: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}',
    '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

/// The bytes whose Windows-1252 (or Latin-1) decoding, written as UTF-8, is
/// `body`; `None` when `body` is not UTF-8, holds nothing outside ASCII, or
/// holds a character neither charset has.
pub(super) fn undo_mojibake(body: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    if text.is_ascii() {
        return None;
    }
    text.chars().map(byte_of).collect()
}

fn byte_of(c: char) -> Option<u8> {
    if let Ok(byte) = u8::try_from(u32::from(c)) {
        return Some(byte);
    }
    let index = WINDOWS_1252_80_9F.iter().position(|&t| t == c)?;
    u8::try_from(index).ok()?.checked_add(0x80)
}

#[cfg(test)]
mod tests {
    use super::undo_mojibake;

    #[test]
    fn undoes_latin_1_and_windows_1252_damage() {
        let cases: &[(&str, Option<&[u8]>)] = &[
            ("CafÃ©", Some("Café".as_bytes())),
            ("â‚¬ 5", Some("€ 5".as_bytes())),
            ("â€œquotedâ€\u{9d}", Some("“quoted”".as_bytes())),
            ("plain", None),
            ("ス", None),
        ];
        for (input, want) in cases {
            assert_eq!(undo_mojibake(input.as_bytes()).as_deref(), *want, "{input}");
        }
        assert_eq!(undo_mojibake(b"\xff"), None, "not UTF-8");
    }
}
