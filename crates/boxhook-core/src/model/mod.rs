//! The `webhook_event` payload, parsed into types without losing a byte
//! (see "Payload shapes" in docs/PROTOCOL.md).
//!
//! [`WebhookEvent::parse`] reads a whole body, straight into the types in
//! one pass (no JSON tree is built); [`Envelope::parse`] reads only
//! what a router needs (`id`, `trigger`, `webhook.id`, the source's `type`
//! and `id`). Box's vocabulary drifts, so every closed-looking type has an
//! open end: [`Trigger::Other`] keeps an unknown trigger's exact spelling,
//! [`Source::Unknown`] keeps an unmodelled source whole, and
//! [`WebhookEvent::raw`] keeps the body as received.
//!
//! # Matching on triggers and sources
//!
//! ```
//! use boxhook_core::model::{Source, Trigger, TriggerFamily, WebhookEvent};
//!
//! let body = br#"{
//!     "type": "webhook_event", "id": "e-1", "trigger": "FILE.UPLOADED",
//!     "webhook": {"id": "w-9", "type": "webhook"},
//!     "source": {"id": "5", "type": "file", "name": "Q1.pdf", "size": 629644},
//!     "additional_info": []
//! }"#;
//! let event = WebhookEvent::parse(body)?;
//!
//! match (event.trigger(), event.source()) {
//!     (Trigger::FileUploaded | Trigger::FileCopied, Some(Source::File(file))) => {
//!         println!("new file {} ({:?} bytes)", file.item.id, file.size);
//!     }
//!     (Trigger::FolderMoved, Some(Source::Folder(folder))) => {
//!         let to = event.additional_info().after();
//!         println!("folder {} moved to {to:?}", folder.item.id);
//!     }
//!     // Box spells some Sign triggers two ways; both are distinct variants.
//!     (Trigger::SignRequestSignerSigned | Trigger::SignRequestSignSignerSigned, _) => {}
//!     // A wildcard route: every FILE.* trigger, known today or not.
//!     (trigger, _) if trigger.family() == TriggerFamily::File => {}
//!     // A trigger Box added after this version: still routed, name intact.
//!     (Trigger::Other(name), _) => println!("unhandled trigger {name}"),
//!     _ => {}
//! }
//! # Ok::<(), boxhook_core::model::ParseError>(())
//! ```
//!
//! # `NO_ACTIVE_SESSION` and `WEBHOOK.DELETED`
//!
//! Both are operational signals, not content events. `NO_ACTIVE_SESSION`
//! replaces the real trigger once the authorization behind the webhook died;
//! its source keeps only `type` and `id`. `WEBHOOK.DELETED`
//! says Box removed the webhook, with `reason: "auto_cleanup"` when it was
//! cleaned up for failing deliveries (see "`WEBHOOK.DELETED` and `NO_ACTIVE_SESSION`" in
//! docs/PROTOCOL.md). Alert on them, and still
//! answer 2xx.
//!
//! ```
//! use boxhook_core::model::{DeletionReason, Trigger, WebhookEvent};
//!
//! fn alert(event: &WebhookEvent) -> Option<String> {
//!     match event.trigger() {
//!         Trigger::NoActiveSession => Some(format!(
//!             "webhook {:?} lost its authorization: re-authorize the app (event on {:?} {:?})",
//!             event.webhook().map(|w| &w.id),
//!             event.source().map(|s| s.type_name()),
//!             event.source().map(|s| s.id()),
//!         )),
//!         Trigger::WebhookDeleted => match event.additional_info().deletion_reason() {
//!             Some(DeletionReason::AutoCleanup) => Some("webhook auto-deleted".into()),
//!             Some(DeletionReason::Other(why)) => Some(format!("webhook deleted: {why}")),
//!             None => Some("webhook deleted".into()),
//!         },
//!         _ => None,
//!     }
//! }
//!
//! let thin = br#"{
//!     "type": "webhook_event", "id": "e-2", "trigger": "NO_ACTIVE_SESSION",
//!     "webhook": {"id": "w-9", "type": "webhook"}, "source": {"id": "5", "type": "file"},
//!     "additional_info": []
//! }"#;
//! let event = WebhookEvent::parse(thin)?;
//! assert!(event.source().is_some_and(|s| s.name().is_none()));
//! assert!(alert(&event).is_some_and(|a| a.contains("re-authorize")));
//!
//! let gone = br#"{
//!     "type": "webhook_event", "id": "e-3", "trigger": "WEBHOOK.DELETED",
//!     "webhook": {"id": "w-9", "type": "webhook"}, "additional_info": {"reason": "auto_cleanup"}
//! }"#;
//! let event = WebhookEvent::parse(gone)?;
//! assert_eq!(alert(&event).as_deref(), Some("webhook auto-deleted"));
//! # Ok::<(), boxhook_core::model::ParseError>(())
//! ```
//!
//! # Leniency
//!
//! The rule, in full:
//!
//! 1. **A body fails to parse only when** it is not JSON (including bytes
//!    that are not UTF-8), is JSON but not an object, has a `type` other
//!    than `"webhook_event"` ([`ParseErrorKind::NotAWebhookEvent`]: some
//!    other document, not a malformed event), or lacks a string `id` or
//!    `trigger`, or repeats a key within one object
//!    ([`ParseErrorKind::DuplicateKey`], rule 6). The [`ParseError`] names
//!    the field and what was found: ``"`trigger` is missing"``,
//!    ``"`id` is a number, expected a string"``. A missing `type` is
//!    tolerated (Box's own SDK test vectors omit it).
//! 2. **Unknown fields never fail a parse**; they stay in the raw JSON.
//! 3. **A known field with an unexpected type reads as `None`**, and nothing
//!    else is affected: the event still parses and routes by its trigger.
//!    There is no coercion (a size sent as `"12"` is not `Some(12)`); the
//!    value stays reachable raw, in the source's `raw` ([`RawJson`]: the
//!    text as sent, read as a [`Value`] on demand) and always in
//!    [`WebhookEvent::raw`].
//! 4. **Nested objects need their `id`**: a `webhook`, `created_by`,
//!    `parent`, ... without a string `id` reads as `None`; a `source` also
//!    needs a string `type`. So `source`, `webhook`, `created_by` and
//!    `created_at` are all optional: `NO_ACTIVE_SESSION` and future events may
//!    be thin.
//! 5. `additional_info` of `[]`, `{}`, `null`, absent, or any other
//!    non-object reads as empty.
//! 6. **A key repeated within one object fails the parse**, at any depth
//!    (the top level, `webhook`, `source`, deep inside `additional_info`),
//!    keys compared after unescaping (`"id"` and `"\u0069d"` are one key).
//!    Box never sends one, and JSON parsers disagree on which value counts
//!    (first or last), so reading one would let boxhook deduplicate and
//!    route on a different `id` than a downstream consumer of the raw body
//!    sees. The same key in *different* objects is of course fine. The
//!    check runs in the same pass as the parse, in both parsers.
//!
//! ```
//! use boxhook_core::model::{ParseErrorKind, Trigger, WebhookEvent};
//!
//! let odd = br#"{
//!     "type": "webhook_event", "id": "e-4", "trigger": "FILE.UPLOADED",
//!     "webhook": {"id": 12345, "type": "webhook"},
//!     "source": {"id": "5", "type": "file", "size": "629644", "etag": null, "color": "teal"}
//! }"#;
//! let event = WebhookEvent::parse(odd)?;
//! assert_eq!(event.trigger(), &Trigger::FileUploaded); // still routes
//! assert!(event.webhook().is_none()); // id as a number: not a webhook id
//! let file = event.source().and_then(|s| s.as_file()).expect("a file");
//! assert_eq!(file.size, None); // size as a string: None ...
//! assert_eq!(file.raw["size"], "629644"); // ... but still there
//! assert_eq!(file.raw["color"], "teal"); // unknown fields too
//!
//! let err = WebhookEvent::parse(br#"{
//!     "type": "webhook_event", "trigger": "FILE.UPLOADED"
//! }"#).unwrap_err();
//! assert_eq!(err.to_string(), "`id` is missing");
//!
//! let twice = br#"{"id": "e-5", "trigger": "FILE.UPLOADED", "id": "e-6"}"#;
//! let err = WebhookEvent::parse(twice).unwrap_err();
//! assert_eq!(err.kind(), ParseErrorKind::DuplicateKey);
//! assert_eq!(err.to_string(), r#"duplicate key "id" in an object at line 1 column 46"#);
//! # Ok::<(), boxhook_core::model::ParseError>(())
//! ```
//!
//! [`Value`]: serde_json::Value

mod additional_info;
mod de;
mod envelope;
mod error;
mod event;
mod family;
mod json;
mod peek;
mod raw;
#[cfg(test)]
mod reference_tests;
mod refs;
mod scan;
mod source;
mod trigger;
mod webhook;

pub use additional_info::{AdditionalInfo, DeletionReason};
pub use envelope::Envelope;
pub use error::{ParseError, ParseErrorKind};
pub use event::WebhookEvent;
pub use family::TriggerFamily;
// Hidden from the docs, not private: see the reason on the struct.
pub use peek::RoutingFields;
pub use raw::RawJson;
pub use refs::{FileVersion, FolderMini, ItemRef, SharedLink, UserMini};
pub use source::{
    Collaboration, Comment, File, Folder, ItemFields, MetadataInstance, Source, TaskAssignment,
    WebLink,
};
pub use trigger::Trigger;
pub use webhook::WebhookRef;
