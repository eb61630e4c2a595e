//! Everything the engine does, as events. The CLI draws bars, prints lines or
//! writes JSON from these; nothing in the engine prints.

use std::fmt;
use std::sync::Mutex;

use indexmap::IndexMap;
use serde::Serialize;

use crate::release::ReleaseId;
use crate::remote::fpm::FpmCommands;

/// The phases of a run, in the order a deploy goes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Connect, check the host, read its state. Touches nothing.
    Preflight,
    /// Resolve the commit to deploy.
    Resolve,
    /// The inventory's `local_hooks.before`, here, before any host is touched.
    BeforeRun,
    /// Take the deploy lock.
    Lock,
    /// Create the release, fetch the code, write REVISION, link shared paths.
    Prepare,
    /// The recipe's build steps.
    Build,
    /// Steps after every host built, before any switch (migrations).
    BeforeFlip,
    /// `current-tmp` staged, PHP-FPM config tested.
    Stage,
    /// A batch taken out of the load balancer before it switches.
    Drain,
    /// `current-tmp` renamed over `current`.
    Flip,
    /// PHP-FPM reloaded.
    Reload,
    /// The health check of switched hosts.
    Health,
    /// A batch returned to the load balancer.
    Undrain,
    /// The wait between two batches.
    Pause,
    /// Steps after the switch (queue restart).
    AfterFlip,
    /// Steps after a rollback's switch.
    AfterRollback,
    /// revisions.log appended, old releases pruned, lock released.
    Finalize,
    /// After a failure before the switch: this run's release removed, unlocked.
    Abort,
    /// After a failure during the switch: switched hosts renamed back.
    Undo,
    /// `current` read again on every host after a failure, before
    /// deciding and for the summary.
    ReadBack,
    /// Read-only report of each host.
    Status,
    /// A held lock removed by `cutover unlock`.
    Unlock,
    /// The user's own command, `cutover run`.
    Run,
    /// The inventory's `local_hooks.after`, here, once the run ended.
    AfterRun,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned));
        f.write_str(&text.unwrap_or_default().replace('_', "-"))
    }
}

/// How a host's part of a phase went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    Started,
    Done,
    Failed,
    Skipped,
}

/// The command a run was started for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    Deploy,
    Rollback,
    Status,
    Unlock,
    Plan,
    Run,
    Releases,
    Check,
}

/// How a run ended. The CLI maps each to an exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything asked for was done.
    Done,
    /// Failed before any host switched: the fleet is unchanged.
    Failed,
    /// Failed after switching began; every switched host was switched back.
    RolledBack,
    /// Hosts are on different releases; the summary says who is where.
    Inconsistent,
    /// Another run holds the lock.
    Locked,
    /// Stopped where it failed (`on_failure: halt`); hosts may differ.
    Halted,
}

/// One host in the final summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostSummary {
    /// The release `current` points to, if any.
    pub current: Option<String>,
    /// What happened to the host in this run (`switched`, `unchanged`, ...).
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub releases: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The batch the host switched in (1, 2, ...; all-at-once is batch 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// When the host switched in this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<jiff::Timestamp>,
    /// The health check's verdict, when one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// `cutover releases`: the releases on the host, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<ReleaseRecord>>,
    /// `cutover run`: the command's exit code on the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// `cutover run`: what the command printed (both streams, in order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The PHP-FPM service cutover found on the host and the commands it
    /// ran for it, when the inventory left them to cutover.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub php_fpm: Option<FpmCommands>,
}

/// A release on a host, as `cutover releases` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReleaseRecord {
    pub release: String,
    /// The commit in its REVISION.
    pub commit: String,
    /// When and by whom it was deployed, from revisions.log (when the
    /// log still has its line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_by: Option<String>,
    /// `current` points at it.
    pub current: bool,
    /// Never gone back to without `--to`: a rollback left it (cutover's
    /// `ROLLED_BACK`, Deployer's `BAD_RELEASE`), or it was never live
    /// (`NEVER_LIVE`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rolled_back: bool,
}

/// The last event of every run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub command: CommandKind,
    /// The inventory's environment the run used, when it has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub outcome: Outcome,
    pub release: Option<ReleaseId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What ran that a failure does not undo (migrations), when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_undone: Option<String>,
    pub hosts: IndexMap<String, HostSummary>,
}

/// Something the engine did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A run began: what, where, and (for a deploy) which release and commit.
    RunStarted { command: CommandKind, application: String, hosts: Vec<String> },
    /// The release id and commit, chosen once for every host.
    ReleaseChosen { release: ReleaseId, commit: String },
    /// A phase began on some hosts.
    PhaseStarted { phase: Phase, hosts: Vec<String> },
    /// A host's part of a phase changed state.
    Host {
        host: String,
        phase: Phase,
        state: HostState,
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        output_tail: Option<String>,
    },
    /// A gate: every host must have passed before the run goes on.
    Gate { name: String, passed: bool, failed: Vec<String> },
    /// A batch of a rolling switch began.
    BatchStarted { batch: usize, hosts: Vec<String> },
    /// A host's `current` now points at another release.
    Switched {
        host: String,
        from: Option<String>,
        to: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        batch: Option<usize>,
        at: jiff::Timestamp,
    },
    /// A host's health check passed or failed.
    Health { host: String, passed: bool, detail: String },
    /// A host's script entered one of its steps (while it runs: for the
    /// person watching; `--json` and the run's log leave it out).
    StepStarted { host: String, phase: Phase, step: String },
    /// A line a host's script printed, as it printed it (masked like all
    /// output; for the person watching, like [`Event::StepStarted`]).
    Line { host: String, phase: Phase, line: String },
    /// Everything a host's script printed, once it ended: for the run's
    /// log file (the CLI keeps it there, not on the screen or in `--json`).
    Output {
        host: String,
        phase: Phase,
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        stdout: String,
        stderr: String,
    },
    /// Worth knowing, not fatal.
    Warning {
        #[serde(skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        message: String,
    },
    /// The run's end.
    Summary(Summary),
}

/// Where events go.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Keeps every event; for tests.
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl EventSink for Recorder {
    fn emit(&self, event: Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }
}
