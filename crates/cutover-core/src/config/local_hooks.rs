//! `local_hooks`: commands run on the machine running cutover around a
//! deploy or a rollback. `before` runs once every host passed preflight and
//! before any host is touched (build front-end assets into an upload, make
//! an artifact); a failure stops the run there. `after` runs once the run
//! ended, whatever its outcome (tell a chat channel or a deploy tracker); a
//! failure is a warning.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::ConfigError;
use super::validate::error;

/// Seconds a local hook may take when it does not say.
pub const DEFAULT_TIMEOUT: u64 = 600;

/// The commands before and after a run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalHooks {
    #[serde(default)]
    pub before: Vec<LocalStep>,
    #[serde(default)]
    pub after: Vec<LocalStep>,
}

/// One command, run with `sh -c` in the inventory's directory.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalStep {
    /// Shown in progress and in errors.
    pub name: String,
    /// Shell text.
    pub run: Spanned<String>,
    /// Seconds it may take ([`DEFAULT_TIMEOUT`] otherwise).
    #[serde(default)]
    pub timeout: Option<Spanned<u64>>,
}

impl LocalStep {
    /// Its time limit in seconds.
    pub fn timeout_secs(&self) -> u64 {
        self.timeout.as_ref().map_or(DEFAULT_TIMEOUT, |t| t.value)
    }
}

/// Refuses an empty command or a time limit of 0, naming the field.
pub(super) fn check(hooks: &LocalHooks) -> Result<(), ConfigError> {
    for (when, steps) in [("before", &hooks.before), ("after", &hooks.after)] {
        for (i, step) in steps.iter().enumerate() {
            if step.run.value.trim().is_empty() {
                let message = format!("local hook `{}` has an empty command", step.name);
                return Err(error(message).at(&step.run.referenced).field(format!("local_hooks.{when}[{i}].run")));
            }
            if let Some(timeout) = step.timeout.as_ref().filter(|t| t.value == 0) {
                let field = format!("local_hooks.{when}[{i}].timeout");
                return Err(error("must be at least 1 second").at(&timeout.referenced).field(field));
            }
        }
    }
    Ok(())
}
