//! Manage Box webhooks: keep a team's webhooks in the state it declared, and
//! put one back when Box removes it.
//!
//! - [`BoxClient`]: Box's webhooks API (`GET`/`POST /2.0/webhooks`, `GET`/
//!   `PUT`/`DELETE /2.0/webhooks/{id}`) on hyper and rustls, with typed
//!   errors ([`ApiError`]), retries on 429 and 5xx honouring `Retry-After`
//!   ([`RetryPolicy`]), and a static token or the Client Credentials Grant
//!   ([`Credentials`]).
//! - [`DesiredState`]: the declared webhooks (a TOML file), checked against
//!   Box's rules before anything is sent ([`Violation`]).
//! - [`plan()`] and [`apply()`]: the changes that converge Box to it; a 409 on
//!   create becomes an update of the webhook already there.
//! - [`Recreate`]: a `WEBHOOK.DELETED` handler for [`boxhook::Router`] that
//!   re-creates declared webhooks removed by `auto_cleanup`;
//!   [`SessionAlert`]: the `NO_ACTIVE_SESSION` alert with its remedy.
//! - [`fake`]: a fake of Box's webhooks API and token endpoint on
//!   `127.0.0.1`, keeping Box's rules, for tests and demos.
//!
//! ```no_run
//! use boxhook_admin::{apply, current_state, plan, BoxClient, Credentials, DesiredState};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let desired = DesiredState::parse(&std::fs::read_to_string("webhooks.toml")?)?;
//! let client = BoxClient::builder(Credentials::from_vars(|n| std::env::var(n).ok())?).build()?;
//! let changes = plan(&desired, &current_state(&client, &desired, false).await?, false);
//! for done in apply(&client, &desired, changes).await {
//!     println!("{:?}: {:?}", done.change, done.result.map(|a| a.name()));
//! }
//! # Ok(()) }
//! ```

#![warn(clippy::arithmetic_side_effects)]

pub mod address;
pub mod apply;
mod auth;
mod client;
pub mod desired;
mod error;
pub mod fake;
mod model;
pub mod plan;
mod recreate;
mod retry;
mod session;
pub mod triggers;
mod webhooks;

pub use apply::{apply, ensure, Applied, ApplyResult};
pub use auth::{ClientCredentials, Credentials, SubjectType};
pub use client::{BoxClient, BoxClientBuilder, DEFAULT_API_BASE};
pub use desired::{DesiredError, DesiredState, DesiredWebhook, Violation, MAX_WEBHOOKS};
pub use error::{ApiError, Error};
pub use model::{
    NewWebhook, Target, TargetParseError, TargetType, Webhook, WebhookMini, WebhookUpdate,
};
pub use plan::{current_state, plan, Change, Diff};
pub use recreate::{recreation_label, Recreate, RecreateOutcome, RecreateStats, RECREATIONS_TOTAL};
pub use retry::RetryPolicy;
pub use session::{AuthKind, SessionAlert};
pub use webhooks::{Page, LIST_PAGE_LIMIT, MAX_LIST_ENTRIES, MAX_LIST_PAGES};
