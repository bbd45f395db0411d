//! [`Outcome`]: what the router did with a delivery, and the status it answers.

use std::fmt;

use boxhook_core::model::{DeletionReason, Trigger};
use http::StatusCode;

/// What the router did with one verified delivery.
///
/// The status follows one rule: 2xx only when Box must not send the event
/// again, so Box retries everything else (see "Retries and deduplication" in docs/PROTOCOL.md), and
/// never non-2xx for
/// an event the receiver merely does not handle.
///
/// | outcome | status | why |
/// |---|---|---|
/// | [`Handled`](Outcome::Handled) | 200 | the handler returned `Ok`; with [`Router::store_in`](crate::Router::store_in), the inbox stored the event for the first time ([`Stored::New`](crate::inbox::Stored::New)) |
/// | [`Duplicate`](Outcome::Duplicate) | 200 | handled before, not run again; with `store_in`, the inbox had the event already and counted this delivery ([`Stored::Duplicate`](crate::inbox::Stored::Duplicate)) |
/// | [`Unhandled`](Outcome::Unhandled) | 200 | no handler and no fallback: logged, acknowledged |
/// | [`Failed`](Outcome::Failed) | 500 | the handler returned an error: Box retries |
/// | [`RetryRequested`](Outcome::RetryRequested) | 503 | the handler asked for a retry |
/// | [`Panicked`](Outcome::Panicked) | 500 | the handler panicked: caught, the server keeps serving |
/// | [`TimedOut`](Outcome::TimedOut) | 503 | the handler passed its deadline (default 25 s) and was cancelled |
/// | [`InProgress`](Outcome::InProgress) | 503 | a concurrent attempt of the same event holds the claim |
/// | [`StoreFailed`](Outcome::StoreFailed) | 503 | the idempotency store could not answer |
/// | [`InboxFailed`](Outcome::InboxFailed) | 503 | with `store_in`, the inbox could not store the event |
/// | [`NotAnEvent`](Outcome::NotAnEvent) | 400 | a verified body that is not a `webhook_event` |
/// | [`Unverified`](Outcome::Unverified) | 500 | the router was reached without the verify layer: a setup error |
///
/// The router puts the outcome in the response's extensions.
///
/// ```
/// use boxhook::Outcome;
/// use http::StatusCode;
///
/// assert_eq!(Outcome::Unhandled.status(), StatusCode::OK);
/// assert_eq!(Outcome::TimedOut.status(), StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(Outcome::Panicked.as_str(), "panicked");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The handler returned `Ok`, or the inbox of
    /// [`Router::store_in`](crate::Router::store_in) stored the event anew.
    Handled,
    /// The event was handled before, or the inbox had it already.
    Duplicate,
    /// No handler and no fallback.
    Unhandled,
    /// The handler returned an error.
    Failed,
    /// The handler asked for a retry.
    RetryRequested,
    /// The handler panicked.
    Panicked,
    /// The handler passed its deadline.
    TimedOut,
    /// A concurrent attempt holds the claim.
    InProgress,
    /// The idempotency store failed.
    StoreFailed,
    /// The inbox of [`Router::store_in`](crate::Router::store_in) failed to
    /// store the event.
    InboxFailed,
    /// The verified body is not a `webhook_event`.
    NotAnEvent,
    /// No [`Verified`](crate::Verified) proof in the request.
    Unverified,
}

impl Outcome {
    /// The HTTP status for this outcome (see the table above).
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::Handled | Self::Duplicate | Self::Unhandled => StatusCode::OK,
            Self::Failed | Self::Panicked | Self::Unverified => StatusCode::INTERNAL_SERVER_ERROR,
            Self::RetryRequested
            | Self::TimedOut
            | Self::InProgress
            | Self::StoreFailed
            | Self::InboxFailed => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotAnEvent => StatusCode::BAD_REQUEST,
        }
    }

    /// A stable snake-case name, for logs and metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Handled => "handled",
            Self::Duplicate => "duplicate",
            Self::Unhandled => "unhandled",
            Self::Failed => "failed",
            Self::RetryRequested => "retry_requested",
            Self::Panicked => "panicked",
            Self::TimedOut => "timed_out",
            Self::InProgress => "in_progress",
            Self::StoreFailed => "store_failed",
            Self::InboxFailed => "inbox_failed",
            Self::NotAnEvent => "not_an_event",
            Self::Unverified => "unverified",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which event a delivery carried: put in the response's extensions beside
/// the [`Outcome`] whenever the verified body was a `webhook_event`, so a
/// logging or metrics layer around the router needs no second parse.
///
/// ```
/// use boxhook::RoutedEvent;
///
/// # fn log(response: &http::Response<()>) {
/// if let Some(event) = response.extensions().get::<RoutedEvent>() {
///     println!("event {} ({})", event.event_id(), event.trigger());
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedEvent {
    event_id: String,
    webhook_id: Option<String>,
    trigger: Trigger,
    deletion_reason: Option<DeletionReason>,
}

impl RoutedEvent {
    pub(crate) fn new(event_id: String, webhook_id: Option<String>, trigger: Trigger) -> Self {
        Self {
            event_id,
            webhook_id,
            trigger,
            deletion_reason: None,
        }
    }

    pub(crate) fn with_deletion_reason(mut self, reason: Option<DeletionReason>) -> Self {
        self.deletion_reason = reason;
        self
    }

    /// For `WEBHOOK.DELETED`: `additional_info.reason`, when Box sent one
    /// (`None` for every other trigger), so the log line can say why the
    /// webhook is gone.
    ///
    /// ```
    /// use boxhook::RoutedEvent;
    ///
    /// # fn log(response: &http::Response<()>) {
    /// if let Some(reason) = response.extensions().get::<RoutedEvent>().and_then(|e| e.deletion_reason()) {
    ///     println!("webhook deleted: {}", reason.as_str());
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn deletion_reason(&self) -> Option<&DeletionReason> {
        self.deletion_reason.as_ref()
    }

    /// The event's `id`.
    #[must_use]
    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    /// `webhook.id`, when sent.
    #[must_use]
    pub fn webhook_id(&self) -> Option<&str> {
        self.webhook_id.as_deref()
    }

    /// The trigger, exactly as sent.
    #[must_use]
    pub fn trigger(&self) -> &Trigger {
        &self.trigger
    }
}
