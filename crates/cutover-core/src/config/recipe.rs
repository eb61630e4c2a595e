//! Recipes: the steps a framework needs, attached to the hooks of a deploy.
//!
//! The built-in recipes (`recipes/*.yaml` at the top of the repository) are
//! embedded in the binary; a recipe can also be a path.

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A recipe file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// A line saying what the recipe is for.
    #[serde(default)]
    pub description: String,
    /// The steps, by hook.
    #[serde(default)]
    pub hooks: Hooks,
}

/// Steps attached to each hook of a deploy.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// In the new release on every host, before the gate.
    #[serde(default)]
    pub build: Vec<Step>,
    /// After every host built, before any switch (migrations, `once`).
    #[serde(default)]
    pub before_flip: Vec<Step>,
    /// After the switch and the reload (queue restart, `once`).
    #[serde(default)]
    pub after_flip: Vec<Step>,
    /// After a rollback switched the fleet back.
    #[serde(default)]
    pub after_rollback: Vec<Step>,
}

/// The hooks, by name, for events and plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hook {
    Build,
    BeforeFlip,
    AfterFlip,
    AfterRollback,
}

impl Hooks {
    /// The steps of one hook.
    /// Each hook's name as written and its steps.
    pub fn all(&self) -> [(&'static str, &[Step]); 4] {
        [
            ("build", &self.build),
            ("before_flip", &self.before_flip),
            ("after_flip", &self.after_flip),
            ("after_rollback", &self.after_rollback),
        ]
    }

    pub fn steps(&self, hook: Hook) -> &[Step] {
        match hook {
            Hook::Build => &self.build,
            Hook::BeforeFlip => &self.before_flip,
            Hook::AfterFlip => &self.after_flip,
            Hook::AfterRollback => &self.after_rollback,
        }
    }
}

/// One command of a recipe.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A short name, shown in progress and errors.
    pub name: String,
    /// Shell text run in the release directory.
    pub run: Spanned<String>,
    /// Run on the primary host only.
    #[serde(default)]
    pub once: bool,
    /// Run only on hosts with one of these roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Run only when a condition holds in the release.
    #[serde(default)]
    pub when: Option<Spanned<When>>,
    /// Time limit in seconds (the inventory's `step_timeout` otherwise).
    #[serde(default)]
    pub timeout: Option<Spanned<u64>>,
    /// What the step may start from: a copy of a directory of the live
    /// release (see [`Reuse`]).
    #[serde(default)]
    pub reuse: Option<Reuse>,
}

/// A directory a build step may start from, copied from the live release
/// when what decides its content is unchanged. The step still runs: the
/// copy only saves it work. `--full-build` copies nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reuse {
    /// Composer's `vendor/`, when `composer.lock` and the PHP version are
    /// those the live release's `vendor/` was built with. The step (composer
    /// install) then finds the packages installed and only writes the
    /// autoloader for the new code and runs the scripts.
    Vendor,
}

/// A condition on the release directory.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// A path, relative to the release, that must exist.
    pub exists: String,
}
