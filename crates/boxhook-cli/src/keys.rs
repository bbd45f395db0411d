//! The signature keys, from flags or the environment.

use boxhook_core::diagnose::DiagnosisKeys;
use boxhook_core::{KeyRing, SigningKey};

use crate::usage;

/// `--primary-key` / `--secondary-key`, shared by every subcommand.
///
/// Not `Debug`: the values are secrets.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct KeyArgs {
    /// The app's primary signature key (Developer Console → Webhooks).
    #[arg(
        long,
        env = "BOX_PRIMARY_KEY",
        global = true,
        hide_env_values = true,
        value_name = "KEY"
    )]
    primary_key: Option<String>,
    /// The app's secondary signature key.
    #[arg(
        long,
        env = "BOX_SECONDARY_KEY",
        global = true,
        hide_env_values = true,
        value_name = "KEY"
    )]
    secondary_key: Option<String>,
}

impl KeyArgs {
    /// The key ring; an empty value counts as absent, and having neither key
    /// is a usage error.
    pub(crate) fn ring(&self) -> anyhow::Result<KeyRing> {
        let primary = key(self.primary_key.as_deref());
        let secondary = key(self.secondary_key.as_deref());
        if primary.is_none() && secondary.is_none() {
            return Err(usage(
                "no signature key: pass --primary-key and/or --secondary-key, \
                 or set BOX_PRIMARY_KEY and/or BOX_SECONDARY_KEY",
            ));
        }
        KeyRing::new(primary, secondary).map_err(|err| usage(err.to_string()))
    }

    /// The keys exactly as given, for the diagnosis (which checks them for
    /// white space, swapped slots and encodings).
    pub(crate) fn diagnosis_keys(&self) -> anyhow::Result<DiagnosisKeys> {
        self.ring()?;
        DiagnosisKeys::new(self.primary_key.as_deref(), self.secondary_key.as_deref())
            .map_err(|err| usage(err.to_string()))
    }
}

fn key(value: Option<&str>) -> Option<SigningKey> {
    value
        .filter(|v| !v.is_empty())
        .and_then(|v| SigningKey::new(v).ok())
}
