//! The plan: every phase of a run, every host's exact script, the gates
//! between them, and what runs if something fails. Built completely before
//! any host is touched; `cutover plan` prints it.

mod build;
mod fuse;
mod render;
mod switch;

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;

use crate::config::local_hooks::LocalStep;
use crate::event::{CommandKind, Phase};
use crate::release::ReleaseId;
use crate::remote::fpm::FpmCommands;
use crate::shell::Script;

pub use build::{DeployInputs, RollbackInputs, deploy, rollback};
pub use switch::Rollout;

/// Which hosts a step runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every selected host.
    Every,
    /// The primary host only.
    Once(String),
    /// Hosts with one of these roles.
    Roles(Vec<String>),
}

/// A step inside a phase, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepInfo {
    pub name: String,
    pub scope: Scope,
    /// What the step may start from, copied from the live release.
    pub reuse: Option<crate::config::Reuse>,
}

/// A step inside a host's script: its name and time limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepLabel {
    pub name: String,
    pub timeout: Duration,
}

/// One host's part of a phase: one script, one round trip.
#[derive(Clone, Debug)]
pub struct HostScript {
    pub script: Script,
    pub timeout: Duration,
    /// The steps in the script, in order (for failures).
    pub steps: Vec<StepLabel>,
    /// Whether the upload payload is fed to the script's stdin.
    pub upload: bool,
    /// Whether the script holds at its ready line until the whole phase is
    /// released together (the flip).
    pub held: bool,
    /// The file whose shared `flock` the script holds while it runs: the
    /// run's work, which the abort waits for (see
    /// [`crate::remote::supervise`]).
    pub jobs: Option<String>,
    /// For a held flip that finalizes in the same round trip: the finalize
    /// part, which the script holds before (at a second ready line) until
    /// every host switched. Kept apart to run on its own on a host whose
    /// transport cannot hold a script.
    pub then_finalize: Option<Script>,
    /// Whether the script takes the run's lock (and stages) before its
    /// ready line: a rollback all at once, whose lock rides in its flip.
    pub locks: bool,
    /// Whether the script only reads the host and runs no command that can
    /// wait on anything (a probe without a lookup): it ends by itself in
    /// milliseconds, so it runs without the supervisor.
    pub reads_only: bool,
    /// Whether the script runs the user's steps and starts by reading the
    /// run's secrets from stdin (see [`crate::secrets`]).
    pub secrets: bool,
    /// Whether the script writes the rendered files into the release: its
    /// stdin carries them too.
    pub rendered: bool,
}

impl HostScript {
    pub fn new(script: Script, timeout: Duration) -> Self {
        Self {
            script,
            timeout,
            steps: Vec::new(),
            upload: false,
            held: false,
            jobs: None,
            then_finalize: None,
            locks: false,
            reads_only: false,
            secrets: false,
            rendered: false,
        }
    }
}

/// The gate before finalize: the fleet's decision to keep the run.
pub const DECIDED: &str = "every host switched and healthy";

/// A phase: the same kind of work on some hosts, concurrently.
#[derive(Clone, Debug)]
pub struct PhaseNode {
    pub phase: Phase,
    /// The rolling batch it belongs to (1, 2, ...), if any.
    pub batch: Option<usize>,
    pub steps: Vec<StepInfo>,
    pub hosts: IndexMap<String, HostScript>,
}

/// A node of the plan.
#[derive(Clone, Debug)]
pub enum Node {
    Phase(PhaseNode),
    /// Every host must have passed every phase before it.
    Gate(&'static str),
    /// A command run where cutover runs, for a batch (a load-balancer hook).
    Local(LocalHook),
    /// A wait between batches.
    Pause(Duration),
}

/// A batch hook run on this machine.
#[derive(Clone, Debug)]
pub struct LocalHook {
    pub phase: Phase,
    /// Its name, for a named hook (`local_hooks`).
    pub step: Option<String>,
    pub batch: usize,
    pub hosts: Vec<String>,
    pub command: String,
    /// CUTOVER_BATCH, CUTOVER_BATCH_HOSTS, CUTOVER_BATCH_ADDRESSES.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
}

/// A whole run, ready to execute.
#[derive(Clone, Debug)]
pub struct Plan {
    pub command: CommandKind,
    pub application: String,
    /// The release this run switches to.
    pub release: ReleaseId,
    pub commit: String,
    pub nodes: Vec<Node>,
    /// On a failure before any switch: per host, undo this run's work.
    pub abort: IndexMap<String, HostScript>,
    /// On a failure after switching began: per host, back to where it was.
    pub undo: IndexMap<String, HostScript>,
    /// Per host, the reload after an undo (none without a reload command).
    pub reload: IndexMap<String, HostScript>,
    /// Per host, the PHP-FPM commands of the run, as set or as found.
    pub fpm: IndexMap<String, FpmCommands>,
    /// The names of the secrets the steps read from stdin.
    pub secrets: Vec<String>,
    /// The inventory's `local_hooks`: before and after the run, here.
    pub local_hooks: (Vec<LocalStep>, Vec<LocalStep>),
    /// Per host, where `current` pointed before the run, as read.
    pub before: IndexMap<String, Option<String>>,
    /// The tar stream of an upload delivery.
    pub payload: Option<Arc<[u8]>>,
    /// How the fleet switches and what a failure after switching does.
    pub rollout: Rollout,
    /// Per host, the batch it switches in.
    pub batches: IndexMap<String, usize>,
}

impl Plan {
    /// The name of the release a host was on before the run, for people.
    pub fn before_name(&self, host: &str) -> Option<String> {
        let target = self.before.get(host)?.as_deref()?;
        target.trim_end_matches('/').rsplit('/').next().map(str::to_owned)
    }

    /// The plan as text for people, secrets masked.
    pub fn render(&self) -> String {
        render::text(self)
    }
}

#[cfg(test)]
mod tests;
