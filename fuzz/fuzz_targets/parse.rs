//! Payload parsing into the model. Neither parser
//! panics; `Envelope::parse` accepts exactly what `WebhookEvent::parse`
//! accepts (as its docs promise), and when both succeed they read the same
//! id, trigger, webhook id and source; the raw body is kept byte for byte.
//! The router's peek never panics and, when the full parse succeeds, read
//! the same id, trigger and webhook id.
#![no_main]

use boxhook_core::model::{Envelope, RoutingFields, WebhookEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let event = WebhookEvent::parse(data);
    let envelope = Envelope::parse(data);
    if let (Some(peeked), Ok(event)) = (RoutingFields::peek(data), &event) {
        assert_eq!(peeked.id(), event.id());
        assert_eq!(peeked.trigger(), event.trigger());
        assert_eq!(Some(peeked.webhook_id()), event.envelope().webhook_id());
    }
    match (&event, &envelope) {
        (Ok(event), Ok(envelope)) => {
            assert_eq!(event.id(), envelope.id());
            assert_eq!(event.trigger(), envelope.trigger());
            assert_eq!(&event.envelope(), envelope);
            assert_eq!(event.raw().as_bytes(), data);
            // The trigger's text round-trips exactly (see "Payload shapes" in docs/PROTOCOL.md).
            let text = event.trigger().to_string();
            assert_eq!(
                text.parse::<boxhook_core::model::Trigger>().ok().as_ref(),
                Some(event.trigger())
            );
            let _ = format!("{event:?}");
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.kind(), b.kind(), "{a} / {b}");
            let _ = (a.to_string(), b.to_string());
        }
        _ => panic!(
            "parsers disagree: event {:?}, envelope {:?}",
            event.as_ref().map(WebhookEvent::id),
            envelope.as_ref().map(Envelope::id)
        ),
    }
});
