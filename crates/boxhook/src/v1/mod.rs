//! V1 callbacks: the only way Box notifies about the root folder.
//!
//! Box's V2 webhooks cannot watch the root folder (id `0`); Box sends
//! people to V1 webhooks for that. A V1 webhook is set up in the Developer
//! Console, for the whole account, and differs from V2 in every way that
//! matters to a receiver (see "V1 webhooks" in docs/PROTOCOL.md):
//!
//! - its data is the callback parameters the owner picked, in the query
//!   string (`GET`) or a form body (`POST`), not a JSON event;
//! - it is **not signed** and **not retried**, and its address may be plain
//!   HTTP; it carries **no event id**.
//!
//! So it has its own service, never the V2 [`VerifyLayer`](crate::VerifyLayer):
//!
//! - [`V1Auth`]: a secret in the callback URL, compared in constant time,
//!   several live at once for rotation. Nothing else protects V1.
//! - [`Params`] → [`V1Callback`]: every parameter kept in order, plus
//!   typed fields read from the parameter names in [`V1Fields`], and an
//!   open [`V1Trigger`].
//! - [`V1Router`]: handlers by trigger, a fallback, and
//!   [`store_in`](V1Router::store_in) an inbox (the advised default:
//!   Box never retries, so answer 2xx only once the callback is durable).
//! - [`V1Service`]: the tower service putting these together.
//!
//! **No deduplication.** Without an event id nothing tells a repeated
//! callback from a new one, so each callback gets its own id
//! ([`V1Callback::new_id`]) and is stored on its own.
//!
//! ```
//! use boxhook::inbox::{Inbox, RecordKind};
//! use boxhook::v1::{V1Auth, V1Router, V1Service};
//! use tower::ServiceExt as _;
//! # use boxhook::inbox::*;
//! # use std::sync::{Arc, Mutex};
//! # #[derive(Default, Clone)] struct Vec1(Arc<Mutex<Vec<NewRecord>>>);
//! # impl Inbox for Vec1 {
//! #   async fn store(&self, r: NewRecord) -> Result<Stored, InboxError> { self.0.lock().unwrap().push(r); Ok(Stored::New) }
//! #   async fn claim_next(&self, _: &str, _: std::time::Duration, _: chrono::DateTime<chrono::Utc>) -> Result<Option<Claimed>, InboxError> { Ok(None) }
//! #   async fn ack(&self, _: &Claimed) -> Result<(), InboxError> { Ok(()) }
//! #   async fn requeue(&self, _: &Claimed, _: chrono::DateTime<chrono::Utc>) -> Result<(), InboxError> { Ok(()) }
//! #   async fn list(&self, _: ListFilter) -> Result<Vec<InboxEntry>, InboxError> { Ok(vec![]) }
//! #   async fn get(&self, _: &str) -> Result<Option<StoredEvent>, InboxError> { Ok(None) }
//! #   async fn counts(&self) -> Result<boxhook::inbox::Counts, InboxError> { Ok(Default::default()) }
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let inbox = Vec1::default(); // boxhook_sqlite::SqliteInbox in real life
//! let auth = V1Auth::secret("token", "a-long-random-secret")?;
//! let service = V1Service::new(auth, V1Router::new().store_in(inbox.clone()));
//!
//! let request = http::Request::get("/box/v1?token=a-long-random-secret&event_type=uploaded&item_id=42")
//!     .body(http_body_util::Empty::<bytes::Bytes>::new())?;
//! let response = service.clone().oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//!
//! let stored = inbox.0.lock().unwrap()[0].clone();
//! assert_eq!(stored.kind, RecordKind::V1);
//! assert_eq!(&stored.body[..], b"event_type=uploaded&item_id=42"); // no secret
//!
//! let forged = http::Request::get("/box/v1?token=guess&event_type=deleted")
//!     .body(http_body_util::Empty::<bytes::Bytes>::new())?;
//! let response = service.oneshot(forged).await?;
//! assert_eq!(response.status(), 401);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod auth;
mod callback;
mod params;
mod rejection;
mod router;
mod service;
mod trigger;

pub use trigger::V1Trigger;

pub use auth::{V1Auth, V1AuthError, V1AuthFailure, MIN_SECRET_LEN};
pub use callback::{V1Callback, V1Fields, V1StoredError};
pub use params::{Params, ParamsError, MAX_PARAMS};
pub use rejection::V1Rejection;
pub use router::{V1Handler, V1Router};
pub use service::{V1Accepted, V1Service, DEFAULT_V1_BODY_LIMIT, DEFAULT_V1_READ_TIMEOUT};

pub(crate) use service::{has_v2_headers, is_form};
