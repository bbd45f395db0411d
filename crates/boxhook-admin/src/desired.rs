//! The desired state: the webhooks a team declares in a TOML file, checked
//! locally against Box's rules before anything is sent.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde::Deserialize;

use crate::model::{NewWebhook, Target, TargetType};
use crate::triggers;

/// Box's cap on webhooks per app and user.
pub const MAX_WEBHOOKS: usize = 1000;

/// One declared webhook, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredWebhook {
    /// The watched item.
    pub target: Target,
    /// The HTTPS address Box delivers to.
    pub address: String,
    /// The triggers, in the file's order, each once.
    pub triggers: Vec<String>,
}

impl DesiredWebhook {
    /// The body that creates it.
    #[must_use]
    pub fn to_new(&self) -> NewWebhook {
        NewWebhook {
            target: self.target.clone(),
            address: self.address.clone(),
            triggers: self.triggers.clone(),
        }
    }
}

/// The declared webhooks, every one of them within Box's rules.
///
/// ```
/// use boxhook_admin::DesiredState;
///
/// let state = DesiredState::parse(r#"
///     [[webhook]]
///     target = "folder:218730924451"
///     address = "https://hooks.example.com/box"
///     triggers = ["FILE.UPLOADED", "FILE.TRASHED"]
/// "#)?;
/// assert_eq!(state.webhooks().len(), 1);
///
/// let err = DesiredState::parse(r#"
///     [[webhook]]
///     target = "folder:0"
///     address = "http://hooks.example.com:8443/box"
///     triggers = ["FILE.UPLOADED"]
/// "#).unwrap_err();
/// assert_eq!(err.to_string(), "\
/// webhook 1 (folder:0): the address must be https, not http
/// webhook 1 (folder:0): the address must use port 443 (Box delivers nowhere else), not 8443
/// webhook 1 (folder:0): Box allows no webhook on the root folder 0; watch a folder inside it
/// ");
/// # Ok::<(), boxhook_admin::DesiredError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredState {
    webhooks: Vec<DesiredWebhook>,
}

/// One rule a declared webhook breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The webhook's position in the file, from 1; `None` for the file as
    /// a whole (the 1,000 cap).
    pub entry: Option<usize>,
    /// The target as written.
    pub target: String,
    /// What is wrong and what to do.
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.entry {
            Some(n) => write!(f, "webhook {n} ({}): {}", self.target, self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

/// Why a desired-state file was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DesiredError {
    /// Not valid TOML, or not the documented shape.
    Syntax(String),
    /// Valid TOML, but webhooks Box would refuse: all of them, one line each.
    Violations(Vec<Violation>),
}

impl fmt::Display for DesiredError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(detail) => write!(
                f,
                "{detail}\neach webhook is a [[webhook]] table with target = \"folder:ID\" or \
                 \"file:ID\", address = \"https://...\" and triggers = [\"FILE.UPLOADED\", ...]"
            ),
            Self::Violations(all) => all.iter().try_for_each(|v| writeln!(f, "{v}")),
        }
    }
}

impl std::error::Error for DesiredError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    webhook: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    target: String,
    address: String,
    triggers: Vec<String>,
}

impl DesiredState {
    /// Parses and checks a desired-state file; every violation is reported
    /// at once.
    pub fn parse(toml_text: &str) -> Result<Self, DesiredError> {
        let file: File =
            toml::from_str(toml_text).map_err(|err| DesiredError::Syntax(err.to_string()))?;
        let mut violations = Vec::new();
        let mut webhooks = Vec::new();
        let mut seen: HashMap<Target, usize> = HashMap::new();
        if file.webhook.len() > MAX_WEBHOOKS {
            violations.push(Violation {
                entry: None,
                target: String::new(),
                problem: format!(
                    "{} webhooks are declared; Box allows at most {MAX_WEBHOOKS} per app and \
                     user: watch parent folders instead of single items, or split them across apps",
                    file.webhook.len()
                ),
            });
        }
        for (index, entry) in file.webhook.into_iter().enumerate() {
            let n = index.saturating_add(1);
            let mut problems = Vec::new();
            problems.extend(address_problems(&entry.address));
            let target = match entry.target.parse::<Target>() {
                Ok(target) => Some(target),
                Err(err) => {
                    problems.push(err.to_string());
                    None
                }
            };
            if let Some(target) = &target {
                if target.kind == TargetType::Folder && target.id == "0" {
                    problems.push(
                        "Box allows no webhook on the root folder 0; watch a folder inside it"
                            .to_owned(),
                    );
                }
                if let Some(first) = seen.insert(target.clone(), n) {
                    problems.push(format!(
                        "webhook {first} has this target too; Box allows one webhook per item \
                         (per app and user): merge their triggers into one"
                    ));
                }
            }
            if entry.triggers.is_empty() {
                problems.push("no triggers: list at least one, e.g. FILE.UPLOADED".to_owned());
            }
            let mut unique = BTreeSet::new();
            for trigger in &entry.triggers {
                if !unique.insert(trigger.as_str()) {
                    problems.push(format!("{trigger} is listed twice"));
                    continue;
                }
                let kind = target.as_ref().map_or(TargetType::Folder, |t| t.kind);
                problems.extend(triggers::problem(trigger, kind));
            }
            if problems.is_empty() {
                if let Some(target) = target {
                    webhooks.push(DesiredWebhook {
                        target,
                        address: entry.address,
                        triggers: entry.triggers,
                    });
                }
            } else {
                violations.extend(problems.into_iter().map(|problem| Violation {
                    entry: Some(n),
                    target: entry.target.clone(),
                    problem,
                }));
            }
        }
        if violations.is_empty() {
            Ok(Self { webhooks })
        } else {
            Err(DesiredError::Violations(violations))
        }
    }

    /// The declared webhooks, in the file's order.
    #[must_use]
    pub fn webhooks(&self) -> &[DesiredWebhook] {
        &self.webhooks
    }

    /// The declared webhook on `target`, if any.
    #[must_use]
    pub fn on_target(&self, target: &Target) -> Option<&DesiredWebhook> {
        self.webhooks.iter().find(|w| &w.target == target)
    }

    /// Whether `address` is one of the declared addresses.
    #[must_use]
    pub fn has_address(&self, address: &str) -> bool {
        self.webhooks.iter().any(|w| w.address == address)
    }
}

/// Why Box would refuse `address`, each problem once: not https, not port
/// 443, a `box.com` host. Box also needs it to resolve to a public IP with a
/// CA-signed certificate, which only Box can check.
///
/// ```
/// use boxhook_admin::desired::address_problems;
///
/// assert!(address_problems("https://hooks.example.com/box").is_empty());
/// assert!(address_problems("https://hooks.example.com:443/box").is_empty());
/// assert_eq!(
///     address_problems("https://api.BOX.com./hook"),
///     ["the address must not be box.com or a subdomain of it (api.BOX.com.)"]
/// );
/// ```
#[must_use]
pub fn address_problems(address: &str) -> Vec<String> {
    let Ok(uri) = address.parse::<http::Uri>() else {
        return vec![format!(
            "the address {address:?} is not a URL; write it as https://host/path"
        )];
    };
    let mut problems = Vec::new();
    match uri.scheme_str() {
        Some("https") => {}
        Some(other) => problems.push(format!("the address must be https, not {other}")),
        None => problems.push("the address must be an absolute https:// URL".to_owned()),
    }
    match uri.port_u16() {
        None | Some(443) => {}
        Some(port) => problems.push(format!(
            "the address must use port 443 (Box delivers nowhere else), not {port}"
        )),
    }
    match uri.host() {
        None | Some("") => problems.push("the address has no host".to_owned()),
        Some(host) => {
            let bare = host.trim_end_matches('.').to_ascii_lowercase();
            if bare == "box.com" || bare.ends_with(".box.com") {
                problems.push(format!(
                    "the address must not be box.com or a subdomain of it ({host})"
                ));
            }
        }
    }
    problems
}
