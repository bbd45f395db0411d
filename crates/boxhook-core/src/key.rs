//! Signature keys: [`SigningKey`], the two-slot [`KeyRing`] and the
//! [`SharedKeyRing`] handle that lets a running server rotate keys.
//!
//! Box gives every application two signature keys (see "The signed bytes" in docs/PROTOCOL.md): the
//! primary
//! key signs `BOX-SIGNATURE-PRIMARY`, the secondary key signs
//! `BOX-SIGNATURE-SECONDARY`, and a delivery is authentic when either matches.
//! Rotation resets one key at a time, so both must be live at once.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use hmac::{Hmac, KeyInit};
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// One Box signature key.
///
/// The key is the key string's UTF-8 bytes used as-is: Box does not base64- or
/// hex-decode it. The HMAC key schedule is computed once here, so
/// each verification only hashes the message.
///
/// `Debug` and `Display` never show the secret:
///
/// ```
/// use boxhook_core::SigningKey;
///
/// let key = SigningKey::new("SamplePrimaryKey")?;
/// assert_eq!(format!("{key:?}"), "SigningKey(..)");
/// assert_eq!(key.to_string(), "SigningKey(..)");
/// # Ok::<(), boxhook_core::KeyError>(())
/// ```
#[derive(Clone)]
pub struct SigningKey {
    mac: HmacSha256,
}

impl SigningKey {
    /// Makes a key from the key string (or bytes) shown in Box's Developer Console.
    ///
    /// ```
    /// use boxhook_core::{KeyError, SigningKey};
    ///
    /// assert!(SigningKey::new("4SidLLVJLIx3L3RAvMhybvvpmJHUd4iD").is_ok());
    /// assert_eq!(SigningKey::new("").unwrap_err(), KeyError::Empty);
    /// ```
    pub fn new(key: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let key = key.as_ref();
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        // HMAC accepts keys of any length; the error arm cannot be reached.
        let mac = HmacSha256::new_from_slice(key).map_err(|_| KeyError::Empty)?;
        Ok(Self { mac })
    }

    /// A fresh HMAC-SHA256 state keyed with this key.
    pub(crate) fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// Why a key or key ring could not be made.
///
/// ```
/// use boxhook_core::{KeyError, KeyRing};
///
/// let err = KeyRing::new(None, None).unwrap_err();
/// assert_eq!(err, KeyError::NoKeys);
/// assert_eq!(err.to_string(), "a key ring needs a primary or a secondary key");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The key string was empty.
    Empty,
    /// Neither slot of a key ring holds a key.
    NoKeys,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "a signature key must not be empty",
            Self::NoKeys => "a key ring needs a primary or a secondary key",
        })
    }
}

impl std::error::Error for KeyError {}

/// Which of Box's two signature keys (and headers) matched.
///
/// ```
/// use boxhook_core::KeySlot;
///
/// assert_eq!(KeySlot::Primary.as_str(), "primary");
/// assert_eq!(KeySlot::Secondary.header_name(), "box-signature-secondary");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySlot {
    /// The primary key, checked against `BOX-SIGNATURE-PRIMARY`.
    Primary,
    /// The secondary key, checked against `BOX-SIGNATURE-SECONDARY`.
    Secondary,
}

impl KeySlot {
    /// Both slots, primary first (the order they are tried in).
    pub const BOTH: [KeySlot; 2] = [KeySlot::Primary, KeySlot::Secondary];

    /// `"primary"` or `"secondary"`: stable, for logs and JSON.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Secondary => "secondary",
        }
    }

    /// The lower-case name of the header this slot's key signs.
    #[must_use]
    pub const fn header_name(self) -> &'static str {
        match self {
            Self::Primary => crate::headers::SIGNATURE_PRIMARY,
            Self::Secondary => crate::headers::SIGNATURE_SECONDARY,
        }
    }
}

impl fmt::Display for KeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The primary and secondary keys of one Box application.
///
/// Either slot may be empty, not both. During a rotation keep both filled
/// (see "The signed bytes" in docs/PROTOCOL.md).
///
/// ```
/// use boxhook_core::{KeyRing, KeySlot, SigningKey};
///
/// let ring = KeyRing::new(
///     Some(SigningKey::new("SamplePrimaryKey")?),
///     Some(SigningKey::new("SampleSecondaryKey")?),
/// )?;
/// assert!(ring.key(KeySlot::Primary).is_some());
///
/// let only_primary = KeyRing::primary_only(SigningKey::new("SamplePrimaryKey")?);
/// assert!(only_primary.key(KeySlot::Secondary).is_none());
/// # Ok::<(), boxhook_core::KeyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct KeyRing {
    primary: Option<SigningKey>,
    secondary: Option<SigningKey>,
}

impl KeyRing {
    /// A ring with the given slots; fails with [`KeyError::NoKeys`] when both are empty.
    pub fn new(
        primary: Option<SigningKey>,
        secondary: Option<SigningKey>,
    ) -> Result<Self, KeyError> {
        if primary.is_none() && secondary.is_none() {
            return Err(KeyError::NoKeys);
        }
        Ok(Self { primary, secondary })
    }

    /// A ring from key strings, the form keys come in from configuration.
    ///
    /// ```
    /// use boxhook_core::KeyRing;
    ///
    /// let ring = KeyRing::from_strs(Some("SamplePrimaryKey"), None)?;
    /// # let _ = ring;
    /// # Ok::<(), boxhook_core::KeyError>(())
    /// ```
    pub fn from_strs(primary: Option<&str>, secondary: Option<&str>) -> Result<Self, KeyError> {
        Self::new(
            primary.map(SigningKey::new).transpose()?,
            secondary.map(SigningKey::new).transpose()?,
        )
    }

    /// A ring with only a primary key.
    #[must_use]
    pub fn primary_only(key: SigningKey) -> Self {
        Self {
            primary: Some(key),
            secondary: None,
        }
    }

    /// A ring with only a secondary key.
    #[must_use]
    pub fn secondary_only(key: SigningKey) -> Self {
        Self {
            primary: None,
            secondary: Some(key),
        }
    }

    /// The key in `slot`, if that slot is filled.
    #[must_use]
    pub fn key(&self, slot: KeySlot) -> Option<&SigningKey> {
        match slot {
            KeySlot::Primary => self.primary.as_ref(),
            KeySlot::Secondary => self.secondary.as_ref(),
        }
    }
}

/// A cheaply cloned handle to a [`KeyRing`] that can be replaced while a
/// server runs.
///
/// Every clone sees the replacement. A verification that already started keeps
/// the ring it loaded, so no request sees half a rotation.
///
/// ```
/// use boxhook_core::{KeyRing, KeySlot, SharedKeyRing, SigningKey};
///
/// let shared = SharedKeyRing::new(KeyRing::primary_only(SigningKey::new("old")?));
/// let seen_by_server = shared.clone();
///
/// // The owner reset the secondary key in the Developer Console: deploy it
/// // beside the primary without a restart.
/// shared.replace(KeyRing::from_strs(Some("old"), Some("new"))?);
/// assert!(seen_by_server.load().key(KeySlot::Secondary).is_some());
/// # Ok::<(), boxhook_core::KeyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SharedKeyRing {
    inner: Arc<RwLock<Arc<KeyRing>>>,
}

impl SharedKeyRing {
    /// A handle holding `ring`.
    #[must_use]
    pub fn new(ring: KeyRing) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Arc::new(ring))),
        }
    }

    /// The ring in force now. Cheap: one lock and one reference-count increment.
    #[must_use]
    pub fn load(&self) -> Arc<KeyRing> {
        // A poisoned lock only means a writer panicked between two whole
        // assignments; the value inside is still a complete ring.
        Arc::clone(&self.inner.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts `ring` in force for every clone of this handle, returning the old one.
    pub fn replace(&self, ring: KeyRing) -> Arc<KeyRing> {
        let mut guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *guard, Arc::new(ring))
    }
}

impl From<KeyRing> for SharedKeyRing {
    fn from(ring: KeyRing) -> Self {
        Self::new(ring)
    }
}
