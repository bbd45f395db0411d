//! [`Options`]: how to connect (pool size, schema, migrations, trusted CAs).

use std::sync::Arc;

use boxhook::inbox::{ErrorKind, InboxError};

/// How to connect: pool size, schema, whether to migrate at start, which
/// CA certificates to trust for TLS.
///
/// ```
/// use boxhook_postgres::Options;
/// let options = Options::default().pool_size(4).schema("boxhook").migrate(false);
/// assert_eq!(options.pool_size_value(), 4);
/// assert_eq!(
///     format!("{:?}", options.root_certificates_pem("-----BEGIN CERTIFICATE-----")),
///     "Options { pool_size: 4, schema: Some(\"boxhook\"), migrate: false, \
///      root_certificates: Some(\"27 bytes of PEM\") }"
/// );
/// ```
#[derive(Clone)]
pub struct Options {
    pub(crate) pool_size: usize,
    pub(crate) schema: Option<String>,
    pub(crate) migrate: bool,
    pub(crate) root_certificates: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for Options {
    /// The fields, with the root certificates as their size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("pool_size", &self.pool_size)
            .field("schema", &self.schema)
            .field("migrate", &self.migrate)
            .field(
                "root_certificates",
                &self
                    .root_certificates
                    .as_ref()
                    .map(|pem| format!("{} bytes of PEM", pem.len())),
            )
            .finish()
    }
}

impl Default for Options {
    /// 16 connections, the connection's default schema (`public`), and the
    /// schema migrated at start.
    fn default() -> Self {
        Self {
            pool_size: 16,
            schema: None,
            migrate: true,
            root_certificates: None,
        }
    }
}

impl Options {
    /// The most connections the pool holds (at least 1).
    #[must_use]
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// The pool size set.
    #[must_use]
    pub fn pool_size_value(&self) -> usize {
        self.pool_size
    }

    /// Keeps boxhook's tables in this schema (created if missing), by
    /// setting `search_path` on every connection: several inboxes can share
    /// one database. The name must be a plain lower-case identifier
    /// (letters, digits, `_`; at most 63): connecting refuses any other.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Whether to apply pending migrations at start (default yes); when
    /// not, a database whose schema is not current is refused.
    #[must_use]
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Trusts these CA certificates (PEM, one or more `-----BEGIN
    /// CERTIFICATE-----` blocks) instead of the Mozilla root store: your
    /// database provider's CA bundle, as `sslrootcert=PATH` gives it in
    /// the URL (give one or the other, not both). Unless the URL says
    /// otherwise, this also turns TLS on with `sslmode=verify-full`. Needs
    /// the `tls` feature; the certificates are parsed when connecting.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), boxhook::inbox::InboxError> {
    /// use boxhook_postgres::{Options, PgInbox};
    /// // e.g. the region bundle of a managed database, shipped with the app
    /// let ca = std::fs::read("/etc/boxhook/db-ca.pem").expect("the CA bundle");
    /// let options = Options::default().root_certificates_pem(ca);
    /// let inbox =
    ///     PgInbox::connect_with("postgres://boxhook@db.example.com/boxhook", &options).await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates = Some(pem.into().into());
        self
    }
}

/// Refuses a schema name that is not a plain lower-case identifier: it goes
/// unquoted into the connection's `-c search_path=…` (where a space would
/// start another setting, and PostgreSQL folds upper case to lower, away
/// from the quoted name the schema is created with).
pub(crate) fn check_schema_name(schema: &str) -> Result<(), InboxError> {
    let mut chars = schema.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63;
    if plain {
        return Ok(());
    }
    Err(InboxError::new(
        ErrorKind::Storage,
        format!(
            "schema name {schema:?} is not a plain identifier: use lower-case letters, digits \
             and underscores, at most 63, not starting with a digit (e.g. boxhook)"
        ),
    ))
}

#[cfg(test)]
mod schema_names {
    #[test]
    fn only_plain_lower_case_identifiers_are_schema_names() {
        let cases = [
            ("boxhook", true),
            ("_b0x_hook", true),
            (&"a".repeat(63)[..], true),
            (&"a".repeat(64)[..], false),
            ("", false),
            ("0box", false),
            ("Boxhook", false),
            ("box hook", false),
            ("box -c fsync=off", false),
            ("box\"hook", false),
            ("bóx", false),
            ("box-hook", false),
        ];
        for (name, ok) in cases {
            let got = super::check_schema_name(name);
            assert_eq!(got.is_ok(), ok, "{name:?}");
            if let Err(error) = got {
                assert_eq!(error.kind(), boxhook::inbox::ErrorKind::Storage);
                assert!(
                    error.to_string().contains("is not a plain identifier"),
                    "{error}"
                );
            }
        }
    }
}
