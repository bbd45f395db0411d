//! The signature keys, from flags or the environment.

use boxhook_core::diagnose::DiagnosisKeys;
use boxhook_core::{KeyRing, SigningKey};

use crate::usage;

/// `--primary-key` / `--secondary-key`, on the commands that sign or
/// verify (sign, verify, send, serve, work, inbox replay), under the help
/// heading "Keys".
///
/// Not `Debug`: the values are secrets.
#[derive(clap::Args, Clone, Default)]
#[command(next_help_heading = "Keys")]
pub(crate) struct KeyArgs {
    /// The app's primary signature key (Developer Console → Webhooks).
    #[arg(
        long,
        env = "BOX_PRIMARY_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    primary_key: Option<String>,
    /// The app's secondary signature key.
    #[arg(
        long,
        env = "BOX_SECONDARY_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    secondary_key: Option<String>,
}

/// The same two flags before the subcommand (`boxhook --primary-key K
/// serve`, as `benches/load` and older scripts write it): hidden, since no
/// command but those above uses them, and read only where the subcommand's
/// own flag was not given ([`KeyArgs::or_global`]).
#[derive(clap::Args, Clone, Default)]
pub(crate) struct GlobalKeyArgs {
    #[arg(
        long = "primary-key",
        id = "global_primary_key",
        hide = true,
        value_name = "KEY"
    )]
    primary_key: Option<String>,
    #[arg(
        long = "secondary-key",
        id = "global_secondary_key",
        hide = true,
        value_name = "KEY"
    )]
    secondary_key: Option<String>,
}

/// The ids of [`KeyArgs`]' two flags, to ask clap where their values came from.
pub(crate) const KEY_IDS: [&str; 2] = ["primary_key", "secondary_key"];

impl KeyArgs {
    /// These keys, each taken from `global` (the flag given before the
    /// subcommand) when the subcommand's own flag was not on the command
    /// line (`flagged`, in [`KEY_IDS`] order): a flag wins over the
    /// environment wherever it is written, as it did when the flags were
    /// global.
    pub(crate) fn or_global(&self, global: &GlobalKeyArgs, flagged: [bool; 2]) -> Self {
        let [primary_flagged, secondary_flagged] = flagged;
        Self {
            primary_key: if primary_flagged {
                self.primary_key.clone()
            } else {
                global
                    .primary_key
                    .clone()
                    .or_else(|| self.primary_key.clone())
            },
            secondary_key: if secondary_flagged {
                self.secondary_key.clone()
            } else {
                global
                    .secondary_key
                    .clone()
                    .or_else(|| self.secondary_key.clone())
            },
        }
    }

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
