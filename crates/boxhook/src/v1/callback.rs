//! [`V1Callback`]: one V1 callback, typed, with every parameter kept.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{Params, ParamsError, V1Trigger};
use crate::inbox::{NewRecord, RecordKind, StoredEvent};

/// Which parameter of the callback URL carries what.
///
/// In the Developer Console the owner writes the callback URL and picks
/// each parameter's name and the Box placeholder it carries, for example
/// `?token=SECRET&event_type=#event_type#&item_id=#item_id#`. boxhook
/// reads the typed fields of [`V1Callback`] from the names set here; the
/// defaults are the placeholders' own names without the `#`. Every
/// parameter stays available in [`V1Callback::params`] whatever it is
/// named.
///
/// ```
/// use boxhook::v1::V1Fields;
///
/// // For `...?event=#event_type#&item=#item_id#`:
/// let fields = V1Fields::default().trigger("event").item_id("item");
/// assert_eq!(fields.trigger_param(), "event");
/// assert_eq!(V1Fields::default().item_name_param(), "item_name");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Fields {
    trigger: String,
    item_id: String,
    item_name: String,
    item_type: String,
    user_id: String,
}

impl Default for V1Fields {
    fn default() -> Self {
        Self {
            trigger: "event_type".into(),
            item_id: "item_id".into(),
            item_name: "item_name".into(),
            item_type: "item_type".into(),
            user_id: "from_user_id".into(),
        }
    }
}

impl V1Fields {
    /// The parameter carrying the trigger (default `event_type`).
    #[must_use]
    pub fn trigger(mut self, name: impl Into<String>) -> Self {
        self.trigger = name.into();
        self
    }

    /// The parameter carrying the item's id (default `item_id`).
    #[must_use]
    pub fn item_id(mut self, name: impl Into<String>) -> Self {
        self.item_id = name.into();
        self
    }

    /// The parameter carrying the item's name (default `item_name`).
    #[must_use]
    pub fn item_name(mut self, name: impl Into<String>) -> Self {
        self.item_name = name.into();
        self
    }

    /// The parameter carrying the item's type (default `item_type`).
    #[must_use]
    pub fn item_type(mut self, name: impl Into<String>) -> Self {
        self.item_type = name.into();
        self
    }

    /// The parameter carrying the acting user's id (default
    /// `from_user_id`).
    #[must_use]
    pub fn user_id(mut self, name: impl Into<String>) -> Self {
        self.user_id = name.into();
        self
    }

    /// The trigger parameter's name.
    #[must_use]
    pub fn trigger_param(&self) -> &str {
        &self.trigger
    }

    /// The item id parameter's name.
    #[must_use]
    pub fn item_id_param(&self) -> &str {
        &self.item_id
    }

    /// The item name parameter's name.
    #[must_use]
    pub fn item_name_param(&self) -> &str {
        &self.item_name
    }

    /// The item type parameter's name.
    #[must_use]
    pub fn item_type_param(&self) -> &str {
        &self.item_type
    }

    /// The user id parameter's name.
    #[must_use]
    pub fn user_id_param(&self) -> &str {
        &self.user_id
    }
}

/// One V1 callback: the typed fields [`V1Fields`] names, and every
/// parameter in order, repeated names included (the secret parameter
/// excepted: the receiver removes it before anything else sees the
/// callback).
///
/// V1 callbacks carry no event id and Box never retries them, so the
/// receiver gives each one its own [`id`](Self::id) (see
/// [`new_id`](Self::new_id)): two identical callbacks are two events, and
/// nothing is deduplicated. A typed field is the first value of its
/// parameter; the others stay in [`params`](Self::params).
///
/// ```
/// use boxhook::v1::{Params, V1Callback, V1Fields, V1Trigger};
///
/// let params = Params::parse(b"event_type=uploaded&item_id=42&item_name=Q1+%C3%A9t%C3%A9.pdf")?;
/// let at = "2024-05-14T09:12:31Z".parse()?;
/// let callback = V1Callback::new("v1-1", at, params, &V1Fields::default());
/// assert_eq!(callback.trigger(), &V1Trigger::Uploaded);
/// assert_eq!(callback.item_id(), Some("42"));
/// assert_eq!(callback.item_name(), Some("Q1 été.pdf"));
/// assert_eq!(callback.item_type(), None);
/// assert_eq!(callback.params().len(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Callback {
    id: String,
    received_at: DateTime<Utc>,
    trigger: V1Trigger,
    item_id: Option<String>,
    item_name: Option<String>,
    item_type: Option<String>,
    user_id: Option<String>,
    params: Params,
}

impl V1Callback {
    /// The callback made of `params`, received at `received_at`, known as
    /// `id`. A missing trigger parameter is `V1Trigger::Other("")`.
    #[must_use]
    pub fn new(
        id: impl Into<String>,
        received_at: DateTime<Utc>,
        params: Params,
        fields: &V1Fields,
    ) -> Self {
        let first = |name: &str| params.get(name).map(str::to_owned);
        Self {
            id: id.into(),
            received_at,
            trigger: V1Trigger::parse(params.get(&fields.trigger).unwrap_or_default()),
            item_id: first(&fields.item_id),
            item_name: first(&fields.item_name),
            item_type: first(&fields.item_type),
            user_id: first(&fields.user_id),
            params,
        }
    }

    /// The callback an inbox stored (its body is the parameters' form
    /// encoding, as [`Params::encode`] wrote it).
    ///
    /// # Errors
    ///
    /// [`V1StoredError::NotV1`] for a V2 event, or the body's
    /// [`ParamsError`].
    pub fn from_stored(stored: &StoredEvent, fields: &V1Fields) -> Result<Self, V1StoredError> {
        if stored.entry.kind != RecordKind::V1 {
            return Err(V1StoredError::NotV1);
        }
        let params = Params::parse(&stored.body).map_err(V1StoredError::Params)?;
        Ok(Self::new(
            stored.entry.event_id.clone(),
            stored.entry.received_at,
            params,
            fields,
        ))
    }

    /// The record an inbox stores for this callback: its [`id`](Self::id)
    /// as `event_id` (unique, so never a duplicate), an empty `webhook_id`,
    /// the trigger's text, `item_type` and `item_id` as the source, and the
    /// parameters, form-encoded, as the body. [`from_stored`](Self::from_stored)
    /// reads it back.
    ///
    /// ```
    /// use boxhook::inbox::RecordKind;
    /// use boxhook::v1::{Params, V1Callback, V1Fields};
    ///
    /// let at = "2024-05-14T09:12:31Z".parse()?;
    /// let params = Params::parse(b"event_type=uploaded&item_id=42&item_type=file")?;
    /// let record = V1Callback::new("v1-x", at, params, &V1Fields::default()).to_record();
    /// assert_eq!(record.kind, RecordKind::V1);
    /// assert_eq!((record.event_id.as_str(), record.trigger.as_str()), ("v1-x", "uploaded"));
    /// assert_eq!(record.webhook_id, "");
    /// assert_eq!((record.source_type.as_deref(), record.source_id.as_deref()), (Some("file"), Some("42")));
    /// assert_eq!((record.delivery_id, record.received_at), (None, at));
    /// assert_eq!(&record.body[..], b"event_type=uploaded&item_id=42&item_type=file");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn to_record(&self) -> NewRecord {
        NewRecord {
            webhook_id: String::new(),
            event_id: self.id.clone(),
            trigger: self.trigger.as_str().to_owned(),
            source_type: self.item_type.clone(),
            source_id: self.item_id.clone(),
            delivery_id: None,
            received_at: self.received_at,
            body: Bytes::from(self.params.encode()),
            kind: RecordKind::V1,
        }
    }

    /// A new, unique id for a callback received at `at`:
    /// `v1-<milliseconds since the Unix epoch, 13 digits>-<16 hex digits>`,
    /// the hex digits random per process and counted per callback, so ids
    /// sort by time and never repeat.
    ///
    /// ```
    /// let at = "2024-05-14T09:12:31.250Z".parse()?;
    /// let (a, b) = (boxhook::v1::V1Callback::new_id(at), boxhook::v1::V1Callback::new_id(at));
    /// assert!(a.starts_with("v1-1715677951250-"));
    /// assert_eq!(a.len(), "v1-".len() + 13 + 1 + 16);
    /// assert_ne!(a, b);
    /// # Ok::<(), boxhook::chrono::ParseError>(())
    /// ```
    #[must_use]
    pub fn new_id(at: DateTime<Utc>) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let seed = *SEED.get_or_init(|| RandomState::new().hash_one(std::process::id()));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // An odd multiplier and an XOR are both one-to-one on u64, so
        // distinct counters give distinct suffixes; the seed makes
        // processes differ.
        let suffix = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!(
            "v1-{:013}-{suffix:016x}",
            at.timestamp_millis().clamp(0, 9_999_999_999_999)
        )
    }

    /// The id the receiver gave this callback.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the receiver accepted it.
    #[must_use]
    pub fn received_at(&self) -> DateTime<Utc> {
        self.received_at
    }

    /// What happened.
    #[must_use]
    pub fn trigger(&self) -> &V1Trigger {
        &self.trigger
    }

    /// The item's id, when the URL asks for it.
    #[must_use]
    pub fn item_id(&self) -> Option<&str> {
        self.item_id.as_deref()
    }

    /// The item's name, when the URL asks for it.
    #[must_use]
    pub fn item_name(&self) -> Option<&str> {
        self.item_name.as_deref()
    }

    /// The item's type (`file` or `folder`), when the URL asks for it.
    #[must_use]
    pub fn item_type(&self) -> Option<&str> {
        self.item_type.as_deref()
    }

    /// The acting user's id, when the URL asks for it.
    #[must_use]
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// Every parameter, in order (the secret parameter removed).
    #[must_use]
    pub fn params(&self) -> &Params {
        &self.params
    }
}

/// A stored event could not be read back as a [`V1Callback`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum V1StoredError {
    /// The event is a V2 event.
    NotV1,
    /// The stored body is not form-encoded parameters.
    Params(ParamsError),
}

impl std::fmt::Display for V1StoredError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotV1 => f.write_str("the stored event is a V2 event, not a V1 callback"),
            Self::Params(error) => write!(f, "the stored V1 callback is unreadable: {error}"),
        }
    }
}

impl std::error::Error for V1StoredError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_repeat_and_sort_by_time() {
        let early = "2024-05-14T09:12:31.001Z".parse().expect("time");
        let late = "2024-05-14T09:12:31.002Z".parse().expect("time");
        let mut ids: Vec<String> = (0..10_000).map(|_| V1Callback::new_id(early)).collect();
        let later = V1Callback::new_id(late);
        assert!(ids.iter().all(|id| *id < later));
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 10_000);
        let before_epoch = "1960-01-01T00:00:00Z".parse().expect("time");
        assert!(V1Callback::new_id(before_epoch).starts_with("v1-0000000000000-"));
    }

    #[test]
    fn typed_fields_take_the_first_value_of_their_parameter() {
        let params = Params::parse(b"item_id=1&item_id=2&event_type=&x=y").expect("params");
        let at = "2024-05-14T09:12:31Z".parse().expect("time");
        let callback = V1Callback::new("id", at, params, &V1Fields::default().user_id("x"));
        assert_eq!(callback.item_id(), Some("1"));
        assert_eq!(callback.trigger(), &V1Trigger::Other(String::new()));
        assert_eq!(callback.user_id(), Some("y"));
        assert_eq!(callback.params().get_all("item_id").count(), 2);
    }
}
