//! [`BoxHeader`]: the six Box headers by name, for the negative builders.

use std::fmt;
use std::str::FromStr;

use boxhook_core::headers;

/// One of the six headers Box sends with every delivery (see "A delivery on the wire" in
/// docs/PROTOCOL.md).
///
/// ```
/// use boxhook::runtime::send::BoxHeader;
///
/// assert_eq!(BoxHeader::DeliveryTimestamp.name(), "box-delivery-timestamp");
/// // Parsed case-insensitively, as Box's names are printed upper-case.
/// assert_eq!("BOX-SIGNATURE-PRIMARY".parse(), Ok(BoxHeader::SignaturePrimary));
/// assert!("content-type".parse::<BoxHeader>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoxHeader {
    /// `BOX-DELIVERY-ID`.
    DeliveryId,
    /// `BOX-DELIVERY-TIMESTAMP`.
    DeliveryTimestamp,
    /// `BOX-SIGNATURE-PRIMARY`.
    SignaturePrimary,
    /// `BOX-SIGNATURE-SECONDARY`.
    SignatureSecondary,
    /// `BOX-SIGNATURE-VERSION`.
    SignatureVersion,
    /// `BOX-SIGNATURE-ALGORITHM`.
    SignatureAlgorithm,
}

impl BoxHeader {
    /// All six, in the order Box lists them.
    pub const ALL: [BoxHeader; 6] = [
        Self::DeliveryId,
        Self::DeliveryTimestamp,
        Self::SignaturePrimary,
        Self::SignatureSecondary,
        Self::SignatureVersion,
        Self::SignatureAlgorithm,
    ];

    /// The lower-case header name (the core's [`headers`] constant).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::DeliveryId => headers::DELIVERY_ID,
            Self::DeliveryTimestamp => headers::DELIVERY_TIMESTAMP,
            Self::SignaturePrimary => headers::SIGNATURE_PRIMARY,
            Self::SignatureSecondary => headers::SIGNATURE_SECONDARY,
            Self::SignatureVersion => headers::SIGNATURE_VERSION,
            Self::SignatureAlgorithm => headers::SIGNATURE_ALGORITHM,
        }
    }
}

impl fmt::Display for BoxHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing a [`BoxHeader`] from a name that is not one of the six.
///
/// ```
/// let err = "x-box".parse::<boxhook::runtime::send::BoxHeader>().unwrap_err();
/// assert_eq!(err.to_string(), "\"x-box\" is not one of the six box-* delivery headers");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownHeader(String);

impl fmt::Display for UnknownHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not one of the six box-* delivery headers",
            self.0
        )
    }
}

impl std::error::Error for UnknownHeader {}

impl FromStr for BoxHeader {
    type Err = UnknownHeader;

    fn from_str(name: &str) -> Result<Self, UnknownHeader> {
        let trimmed = name.trim();
        Self::ALL
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| UnknownHeader(name.to_owned()))
    }
}
