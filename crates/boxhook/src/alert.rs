//! The operator alerts for the two triggers that need a person: the one
//! text for each, shared by the router's `warn` log line, `boxhook serve`'s
//! delivery log and `boxhook demo`.
//!
//! Both are logged whether or not a handler takes the event: a receiver
//! that ignores them stops receiving events without anyone noticing.
//!
//! ```
//! use boxhook::alert;
//! use boxhook::model::Trigger;
//!
//! assert_eq!(alert::for_trigger(&Trigger::WebhookDeleted), Some(alert::WEBHOOK_DELETED));
//! assert_eq!(alert::for_trigger(&Trigger::NoActiveSession), Some(alert::NO_ACTIVE_SESSION));
//! assert_eq!(alert::for_trigger(&Trigger::FileUploaded), None);
//! ```

use boxhook_core::model::Trigger;

/// What to do about `WEBHOOK.DELETED`: Box removed the webhook (its app was
/// deleted, its tokens are all gone, or deliveries kept failing for 30
/// days), and nothing more arrives until it is recreated. The text holds
/// whether or not a handler (such as `boxhook-admin`'s `Recreate`) puts the
/// webhook back: that handler logs its own outcome next.
///
/// ```
/// assert_eq!(
///     boxhook::alert::WEBHOOK_DELETED,
///     "Box deleted this webhook; no events arrive until it is recreated"
/// );
/// ```
pub const WEBHOOK_DELETED: &str =
    "Box deleted this webhook; no events arrive until it is recreated";

/// What to do about `NO_ACTIVE_SESSION`: the authorization that created the
/// webhook died (an expired developer token, a removed JWT authorization,
/// expired OAuth tokens); the owner must re-authorize the application. The
/// webhook itself need not be recreated.
///
/// ```
/// assert_eq!(
///     boxhook::alert::NO_ACTIVE_SESSION,
///     "the webhook's authorization expired; re-authorize the Box app"
/// );
/// ```
pub const NO_ACTIVE_SESSION: &str = "the webhook's authorization expired; re-authorize the Box app";

/// The alert for `trigger`: [`WEBHOOK_DELETED`], [`NO_ACTIVE_SESSION`], or
/// `None` for every other trigger.
///
/// ```
/// use boxhook::model::Trigger;
///
/// let line = |trigger: &str| match boxhook::alert::for_trigger(&Trigger::from(trigger)) {
///     Some(alert) => format!("{trigger} ALERT: {alert}"),
///     None => trigger.to_owned(),
/// };
/// assert_eq!(line("FILE.UPLOADED"), "FILE.UPLOADED");
/// assert_eq!(
///     line("NO_ACTIVE_SESSION"),
///     "NO_ACTIVE_SESSION ALERT: the webhook's authorization expired; re-authorize the Box app"
/// );
/// ```
#[must_use]
pub fn for_trigger(trigger: &Trigger) -> Option<&'static str> {
    match trigger {
        Trigger::WebhookDeleted => Some(WEBHOOK_DELETED),
        Trigger::NoActiveSession => Some(NO_ACTIVE_SESSION),
        _ => None,
    }
}
