//! Environments: staging and production in one inventory. Each entry of
//! `environments:` overrides the base for a run that names it (`cutover
//! deploy production`, or `-e production`): its `hosts` replace the base's,
//! its `vars` and `secrets` are laid over the base's, its `branch` or
//! `revision` replaces both of the base's, its `deploy_path`, `strategy`
//! and `rolling` replace the base's. Every value keeps the place it was written, so a
//! check that fails points at the environment's line. An inventory with
//! environments refuses a run that names none.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::ConfigError;
use super::inventory::{HostEntry, Inventory, SecretSource, Strategy};
use super::rollout::Rolling;
use super::suggest::closest;

/// One entry of `environments:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    #[serde(default)]
    pub deploy_path: Option<Spanned<String>>,
    #[serde(default)]
    pub hosts: Option<Vec<HostEntry>>,
    #[serde(default)]
    pub vars: IndexMap<String, Spanned<String>>,
    #[serde(default)]
    pub secrets: IndexMap<String, Spanned<SecretSource>>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub strategy: Option<Spanned<Strategy>>,
    #[serde(default)]
    pub rolling: Option<Rolling>,
}

/// Whether `name` can name an environment: letters, digits, `-`, `_` and
/// `.`, not first `-` or `.` (it stands in revisions.log and on command
/// lines).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '.'])
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Why no environment could be chosen; the caller adds the file and where.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Unchosen {
    /// Named, but the inventory has no `environments:`.
    NoneDefined(String),
    /// The inventory has environments and the run named none.
    NoneNamed(Vec<String>),
    /// Named, but not one of them.
    Unknown { name: String, known: Vec<String> },
    /// A name that could not stand in revisions.log or on a command line.
    BadName(String),
}

impl Unchosen {
    /// The error, in `path`'s terms.
    pub(super) fn into_error(self, path: &std::path::Path) -> ConfigError {
        let file = path.display();
        match self {
            Self::NoneDefined(name) => {
                ConfigError::new(path, format!("environment `{name}` was named, but {file} has no `environments:`"))
                    .hint("add an `environments:` section, or run without naming one")
            }
            Self::NoneNamed(known) => {
                ConfigError::new(path, format!("{file} has environments ({}): name the one to use", known.join(", ")))
                    .field("environments")
                    .hint(format!("for example `cutover deploy {0}` or `-e {0}`", known[0]))
            }
            Self::BadName(name) => ConfigError::new(path, format!("environment name {name:?} is not a plain word"))
                .field("environments")
                .hint("use letters, digits, `-`, `_` and `.`, not first `-` or `.`"),
            Self::Unknown { name, known } => {
                let names: Vec<&str> = known.iter().map(String::as_str).collect();
                let error =
                    ConfigError::new(path, format!("there is no environment `{name}` in {file}")).field("environments");
                match closest(&name, &names) {
                    Some(near) => error.hint(format!("did you mean `{near}`?")),
                    None => error.hint(format!("the environments are: {}", known.join(", "))),
                }
            }
        }
    }
}

/// Lays environment `name` over the base; with no environments and no
/// name, leaves the inventory as it is.
pub(super) fn choose(inv: &mut Inventory, name: Option<&str>) -> Result<(), Unchosen> {
    let known: Vec<String> = inv.environments.keys().cloned().collect();
    if let Some(bad) = known.iter().find(|n| !is_plain_name(n)) {
        return Err(Unchosen::BadName(bad.clone()));
    }
    let name = match (name, known.is_empty()) {
        (None, true) => return Ok(()),
        (Some(name), true) => return Err(Unchosen::NoneDefined(name.to_owned())),
        (None, false) => return Err(Unchosen::NoneNamed(known)),
        (Some(name), false) => name,
    };
    let Some(env) = inv.environments.swap_remove(name) else {
        return Err(Unchosen::Unknown { name: name.to_owned(), known });
    };
    if let Some(deploy_path) = env.deploy_path {
        inv.deploy_path = deploy_path;
    }
    if let Some(hosts) = env.hosts {
        inv.hosts = hosts;
    }
    inv.vars.extend(env.vars);
    inv.secrets.extend(env.secrets);
    if env.branch.is_some() || env.revision.is_some() {
        inv.branch = env.branch;
        inv.revision = env.revision;
    }
    if let Some(strategy) = env.strategy {
        inv.strategy = strategy;
    }
    if let Some(rolling) = env.rolling {
        inv.rolling = rolling;
    }
    inv.environment = Some(name.to_owned());
    Ok(())
}
