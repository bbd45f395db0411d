//! The routing fields read off the front of a body, without reading the
//! rest: the router's fast path to a claim (see [`RoutingFields`]).

use super::trigger::Trigger;

/// `id`, `trigger` and `webhook.id` read off the front of a body, stopping
/// as soon as all three are seen; nothing after them is read or checked.
///
/// Box writes these keys first (`type`, `id`, `created_at`, `trigger`,
/// `webhook`, then the large `created_by` and `source`), so reading them
/// costs a few hundred bytes of a delivery of several KiB. The router uses
/// them to claim the event before it parses the whole body: a duplicate then
/// costs this peek and the claim, and a new event costs this peek and one
/// typed parse.
///
/// **This is not a parse.** [`peek`](Self::peek) answers `None` (so the
/// caller must fall back to [`Envelope::parse`](super::Envelope::parse) or
/// [`WebhookEvent::parse`](super::WebhookEvent::parse)) whenever the front of
/// the body is anything but the plain shape Box sends: a key or kept value
/// with an escape or a control character, a kept value that is not a
/// string, a `type` other than `"webhook_event"`, one of the three twice, or
/// a body that ends first. Other values in front (`created_at`, or anything
/// else) are skipped unchecked: strings, numbers, literals, whole objects
/// and arrays. When it answers `Some`, the
/// fields are exactly what a full parse of the same body reads, provided
/// that parse succeeds (a full parse refuses repeated keys anywhere, so a
/// later `"id"` cannot disagree with the one peeked). A caller that acts on
/// a peek must still parse the body fully before trusting anything in it.
///
/// ```
/// use boxhook_core::model::{RoutingFields, Trigger};
///
/// let body = br#"{"type":"webhook_event","id":"e-1","created_at":"2024-01-01T00:00:00Z","trigger":"FILE.UPLOADED","webhook":{"id":"4133","type":"webhook"},"source":{"broken"#;
/// let peeked = RoutingFields::peek(body).expect("the front has all three");
/// assert_eq!(peeked.id(), "e-1");
/// assert_eq!(peeked.trigger(), &Trigger::FileUploaded);
/// assert_eq!(peeked.webhook_id(), "4133");
///
/// // An escape in a kept value: not peeked, parse the body instead.
/// assert!(RoutingFields::peek(br#"{"id":"e\u002d1","trigger":"X","webhook":{"id":"1"}}"#).is_none());
/// ```
// Reason for `doc(hidden)`: this is the router's internal fast path, not a
// way to read an event (use `Envelope` or `WebhookEvent`), but the `boxhook`
// crate's router calls it across the crate boundary, and the benches, the
// fuzz targets and this crate's property tests check it from outside. The
// attribute is on the struct, not the re-export, so that `boxhook::model`,
// which re-exports the whole module, hides it too.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingFields<'a> {
    id: &'a str,
    trigger: Trigger,
    webhook_id: &'a str,
}

impl<'a> RoutingFields<'a> {
    /// Reads `id`, `trigger` and `webhook.id` off the front of `body`;
    /// `None` when the front is not the plain shape described on
    /// [`RoutingFields`]. Never allocates for a known trigger, never panics.
    #[must_use]
    pub fn peek(body: &'a [u8]) -> Option<Self> {
        let mut cursor = Cursor {
            bytes: body,
            pos: 0,
        };
        cursor.expect(b'{')?;
        let (mut id, mut trigger, mut webhook_id) = (None, None, None);
        let done = |id, trigger, webhook_id| {
            Some(Self {
                id,
                trigger: Trigger::from(trigger),
                webhook_id,
            })
        };
        loop {
            if let (Some(id), Some(trigger), Some(webhook_id)) = (id, trigger, webhook_id) {
                return done(id, trigger, webhook_id);
            }
            let key = cursor.plain_string()?;
            cursor.expect(b':')?;
            match key {
                "id" => set_once(&mut id, cursor.plain_string()?)?,
                "trigger" => set_once(&mut trigger, cursor.plain_string()?)?,
                "webhook" => set_once(&mut webhook_id, cursor.webhook_id()?)?,
                "type" => {
                    if cursor.plain_string()? != "webhook_event" {
                        return None;
                    }
                }
                _ => cursor.skip_value()?,
            }
            match cursor.next_token()? {
                b',' => {}
                b'}' => return done(id?, trigger?, webhook_id?),
                _ => return None,
            }
        }
    }

    /// The event's `id`.
    #[must_use]
    pub fn id(&self) -> &'a str {
        self.id
    }

    /// The event's trigger.
    #[must_use]
    pub fn trigger(&self) -> &Trigger {
        &self.trigger
    }

    /// `webhook.id`.
    #[must_use]
    pub fn webhook_id(&self) -> &'a str {
        self.webhook_id
    }
}

/// Stores `value` in `slot`; `None` when the slot was set before (a key
/// seen twice: leave it to the full parse, which refuses it).
fn set_once<'a>(slot: &mut Option<&'a str>, value: &'a str) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

/// A position in the body; every method answers `None` on anything it does
/// not take, and never reads past the end.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// The next byte after JSON white space, consumed.
    fn next_token(&mut self) -> Option<u8> {
        while let Some(&byte) = self.bytes.get(self.pos) {
            self.pos = self.pos.checked_add(1)?;
            if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(byte);
            }
        }
        None
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.next_token()? == wanted).then_some(())
    }

    /// A string with no escapes and no control characters, as UTF-8.
    fn plain_string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.pos;
        let rest = self.bytes.get(start..)?;
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        let text = std::str::from_utf8(rest.get(..len)?).ok()?;
        self.pos = start.checked_add(len)?.checked_add(1)?;
        Some(text)
    }

    /// Any value, skipped without being checked: a string (escapes
    /// allowed), a number or literal, or a whole object or array (brackets
    /// counted outside strings). The full parse checks it later.
    fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0_usize;
        loop {
            match self.next_token()? {
                b'"' => self.skip_string_rest()?,
                b'{' | b'[' => depth = depth.checked_add(1)?,
                b'}' | b']' => depth = depth.checked_sub(1)?,
                b',' | b':' if depth > 0 => {}
                b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                    let rest = self.bytes.get(self.pos..)?;
                    let len = rest
                        .iter()
                        .position(|&b| {
                            !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))
                        })
                        .unwrap_or(rest.len());
                    self.pos = self.pos.checked_add(len)?;
                }
                _ => return None,
            }
            if depth == 0 {
                return Some(());
            }
        }
    }

    /// The rest of a string whose opening quote was read: up to and past
    /// the closing quote, an escaped character skipped with its backslash.
    fn skip_string_rest(&mut self) -> Option<()> {
        loop {
            let rest = self.bytes.get(self.pos..)?;
            let at = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
            let found = *rest.get(at)?;
            // Past the quote, or past the backslash and the byte it escapes.
            let step = if found == b'"' { 1 } else { 2 };
            self.pos = self.pos.checked_add(at)?.checked_add(step)?;
            if found == b'"' {
                return Some(());
            }
        }
    }

    /// The `webhook` object: its `id`, other members skipped.
    fn webhook_id(&mut self) -> Option<&'a str> {
        self.expect(b'{')?;
        let mut id = None;
        loop {
            let key = self.plain_string()?;
            self.expect(b':')?;
            if key == "id" {
                set_once(&mut id, self.plain_string()?)?;
            } else {
                self.skip_value()?;
            }
            match self.next_token()? {
                b',' => {}
                b'}' => return id,
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Envelope, WebhookEvent};

    /// Bodies whose front the peek takes, and what it reads.
    #[test]
    fn reads_the_plain_front_box_sends() {
        let cases: &[(&[u8], &str, &str, &str)] = &[
            (
                br#"{"type":"webhook_event","id":"e-1","created_at":"2024-01-01T00:00:00-08:00","trigger":"FILE.UPLOADED","webhook":{"id":"4133","type":"webhook"},"created_by":{}}"#,
                "e-1",
                "FILE.UPLOADED",
                "4133",
            ),
            (
                b"{ \"id\" : \"e\" ,\n\"trigger\":\"X.Y\",\t\"webhook\": {\"type\":\"webhook\", \"id\":\"9\"}, ",
                "e",
                "X.Y",
                "9",
            ),
            (
                br#"{"n":-1.5e3,"t":true,"z":null,"webhook":{"id":"1","n":7},"trigger":"T","id":""}"#,
                "",
                "T",
                "1",
            ),
            (
                br#"{"created_by":{"a":[1,{"b":"]}\"\\"}],"c":null},"x":[],"id":"e","trigger":"T","webhook":{"n":{"address":"https:\/\/x"},"id":"1"}}"#,
                "e",
                "T",
                "1",
            ),
            (
                "{\"id\":\"é\",\"trigger\":\"T\",\"webhook\":{\"id\":\"w\"}}".as_bytes(),
                "é",
                "T",
                "w",
            ),
        ];
        for &(body, id, trigger, webhook_id) in cases {
            let peeked = RoutingFields::peek(body).unwrap_or_else(|| {
                panic!("peeks {}", String::from_utf8_lossy(body));
            });
            assert_eq!(
                (peeked.id(), peeked.trigger().as_str(), peeked.webhook_id()),
                (id, trigger, webhook_id)
            );
        }
    }

    /// Fronts the peek leaves to the full parse.
    #[test]
    fn declines_everything_else() {
        let cases: &[&[u8]] = &[
            b"",
            b"[]",
            b"{",
            br#"{"id":"e","trigger":"T"}"#,
            br#"{"id":"e","trigger":"T","webhook":null}"#,
            br#"{"id":"e","trigger":"T","webhook":{"type":"webhook"}}"#,
            br#"{"id":"e","trigger":"T","webhook":{"id":1}}"#,
            br#"{"id":"e","trigger":"T","webhook":{"id":"1","id":"2"}}"#,
            br#"{"id":"e","id":"f","trigger":"T","webhook":{"id":"1"}}"#,
            br#"{"id":"e\"","trigger":"T","webhook":{"id":"1"}}"#,
            br#"{"i\u0064":"e","trigger":"T","webhook":{"id":"1"}}"#,
            br#"{"type":"webhook","id":"e","trigger":"T","webhook":{"id":"1"}}"#,
            br#"{"x":[1}],"id":"e","trigger":"T","webhook":{"id":"1"}}"#,
            br#"{"x":}"id":"e","trigger":"T","webhook":{"id":"1"}}"#,
            br#"{"x":"unterminated\"}"#,
            br#"{"id":7,"trigger":"T","webhook":{"id":"1"}}"#,
            b"{\"id\":\"a\tb\",\"trigger\":\"T\",\"webhook\":{\"id\":\"1\"}}",
            b"{\"id\":\"\xff\",\"trigger\":\"T\",\"webhook\":{\"id\":\"1\"}}",
            br#"{"id":"e" "trigger":"T","webhook":{"id":"1"}}"#,
        ];
        for &body in cases {
            assert_eq!(
                RoutingFields::peek(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// Whenever the full parse accepts a body the peek took, both read the
    /// same fields (the fixtures and generated bodies of the test kit live
    /// downstream; these cover Box's own order and a shuffled one).
    #[test]
    fn agrees_with_the_full_parse() {
        let bodies: &[&[u8]] = &[
            br#"{"type":"webhook_event","id":"e-1","created_at":"2024-01-01T00:00:00-08:00","trigger":"FILE.UPLOADED","webhook":{"id":"4133","type":"webhook"},"created_by":{"type":"user","id":"1"},"source":{"id":"5","type":"file"},"additional_info":[]}"#,
            br#"{"webhook":{"type":"webhook","id":"4133"},"trigger":"NEW.TRIGGER","id":"e-2","source":null}"#,
        ];
        for &body in bodies {
            let peeked = RoutingFields::peek(body).expect("peeked");
            let envelope = Envelope::parse(body).expect("an envelope");
            let event = WebhookEvent::parse(body).expect("an event");
            assert_eq!(peeked.id(), envelope.id());
            assert_eq!(peeked.id(), event.id());
            assert_eq!(peeked.trigger(), envelope.trigger());
            assert_eq!(Some(peeked.webhook_id()), envelope.webhook_id());
        }
    }
}
