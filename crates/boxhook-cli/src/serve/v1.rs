//! `serve --v1-path`: V1 callbacks on their own path, beside V2, into the
//! same inbox.

use boxhook::v1::{V1Auth, V1Router, V1Service};
use boxhook_core::Printable;

use crate::usage;

/// The V1 options of `boxhook serve`.
#[derive(clap::Args)]
#[command(next_help_heading = "V1 callbacks")]
#[allow(
    clippy::struct_field_names,
    reason = "the fields are the --v1-* flags, named as the user types them"
)]
pub(crate) struct V1Args {
    /// Also receive V1 callbacks (Box's root-folder webhooks) on this path,
    /// e.g. /v1, into the same inbox as kind v1. Needs --v1-secret-env.
    #[arg(long, value_name = "P", requires = "v1_secret_env")]
    v1_path: Option<String>,
    /// The environment variable holding the V1 secret (at least 16 bytes),
    /// the value of the secret parameter in the callback URL configured in
    /// the Developer Console. Repeat it to accept several during a rotation.
    #[arg(long, value_name = "NAME", requires = "v1_path")]
    v1_secret_env: Vec<String>,
    /// The name of the secret parameter in the callback URL.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "token",
        requires = "v1_path"
    )]
    v1_param: String,
}

/// The checked V1 options: the path and the secrets.
pub(crate) struct V1Config {
    path: String,
    auth: V1Auth,
}

impl V1Config {
    /// The V1 path and the service storing into `inbox`.
    pub(crate) fn service(
        self,
        inbox: &(impl boxhook::inbox::Inbox + Clone),
    ) -> (String, V1Service) {
        let service = V1Service::new(self.auth, V1Router::new().store_in(inbox.clone()));
        (self.path, service)
    }
}

/// Checks the V1 options (path, secrets) without touching anything: `None`
/// without `--v1-path`.
pub(crate) fn prepare(args: &V1Args, v2_path: &str) -> anyhow::Result<Option<V1Config>> {
    let Some(path) = &args.v1_path else {
        return Ok(None);
    };
    if !path.starts_with('/') {
        return Err(usage(format!(
            "--v1-path {} must start with /, e.g. --v1-path /v1",
            Printable(path)
        )));
    }
    if path == v2_path {
        return Err(usage(format!(
            "--v1-path {} is also --path: V1 callbacks need a path of their own",
            Printable(path)
        )));
    }
    let mut auth: Option<V1Auth> = None;
    for name in &args.v1_secret_env {
        let secret = std::env::var(name).map_err(|_| {
            usage(format!(
                "--v1-secret-env {}: the environment variable is not set (or not UTF-8); \
                 set it to the secret in the V1 callback URL",
                Printable(name)
            ))
        })?;
        let built = match auth {
            None => V1Auth::secret(args.v1_param.as_str(), secret.as_bytes()),
            Some(auth) => auth.or_secret(secret.as_bytes()),
        };
        auth = Some(
            built.map_err(|err| usage(format!("--v1-secret-env {}: {err}", Printable(name))))?,
        );
    }
    let auth = auth.ok_or_else(|| usage("--v1-path needs --v1-secret-env NAME"))?;
    Ok(Some(V1Config {
        path: path.clone(),
        auth,
    }))
}
