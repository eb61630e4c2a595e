//! The inventory's `local_hooks` around a deploy or a rollback, run here:
//! `before` once every host passed preflight and before any host is
//! touched (a failure stops the run there), `after` once the run ended,
//! whatever its outcome (a failure is a warning). Each sees
//! `CUTOVER_COMMAND`, `CUTOVER_APPLICATION`, `CUTOVER_RELEASE` and
//! `CUTOVER_HOSTS`; `after` also `CUTOVER_OUTCOME`; both `CUTOVER_REVISION`
//! once it is known (git delivery resolves it before `before`; an upload
//! packs the directory after it), and `CUTOVER_ENVIRONMENT` when the run
//! names one of the inventory's environments.

use std::time::Duration;

use crate::config::local_hooks::LocalStep;
use crate::event::{CommandKind, Event, Outcome, Phase};
use crate::plan::LocalHook;
use crate::release::ReleaseId;

use super::failure::HostFailure;
use super::{Context, Report, local_hook};

/// What the hooks are told about a run that got past preflight.
#[derive(Clone, Debug)]
pub(crate) struct HookedRun {
    pub command: CommandKind,
    /// The release the run switches to.
    pub release: ReleaseId,
    /// The commit, once it is known (for an upload, after `before`).
    pub revision: Option<String>,
}

/// Runs the `before` hooks in order; the first failure stops them.
pub(crate) async fn before(ctx: &Context<'_>, run: &HookedRun) -> Result<(), HostFailure> {
    let env = env(ctx, run);
    for step in &ctx.loaded.inventory.local_hooks.before {
        local_hook::run(ctx, &hook(ctx, step, Phase::BeforeRun, env.clone())).await?;
    }
    Ok(())
}

/// Runs the `after` hooks of a run whose `before` hooks began (`run`), each
/// whatever the others did, then emits the run's summary.
pub(crate) async fn finish(ctx: &Context<'_>, run: Option<&HookedRun>, report: Report) -> Report {
    if let Some(run) = run {
        let mut env = env(ctx, run);
        env.push(("CUTOVER_OUTCOME".to_owned(), outcome_word(report.summary.outcome).to_owned()));
        for step in &ctx.loaded.inventory.local_hooks.after {
            if let Err(failure) = local_hook::run(ctx, &hook(ctx, step, Phase::AfterRun, env.clone())).await {
                let message = format!("the local hook `{}` after the run failed: {}", step.name, failure.kind);
                ctx.emit(Event::Warning { host: None, message });
            }
        }
    }
    ctx.emit(Event::Summary(report.summary.clone()));
    report
}

/// `success`, `rolled_back` (every switched host was switched back) or
/// `failure` (the rest: nothing switched, hosts differ, halted, locked).
fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Done => "success",
        Outcome::RolledBack => "rolled_back",
        Outcome::Failed | Outcome::Inconsistent | Outcome::Locked | Outcome::Halted => "failure",
    }
}

fn env(ctx: &Context<'_>, run: &HookedRun) -> Vec<(String, String)> {
    let command = serde_json::to_value(run.command).ok().and_then(|v| v.as_str().map(str::to_owned));
    let mut env = vec![
        ("CUTOVER_COMMAND".to_owned(), command.unwrap_or_default()),
        ("CUTOVER_APPLICATION".to_owned(), ctx.loaded.inventory.application.clone()),
        ("CUTOVER_RELEASE".to_owned(), run.release.to_string()),
        ("CUTOVER_HOSTS".to_owned(), ctx.fleet.names().join(" ")),
    ];
    if let Some(revision) = &run.revision {
        env.push(("CUTOVER_REVISION".to_owned(), revision.clone()));
    }
    if let Some(environment) = ctx.environment() {
        env.push(("CUTOVER_ENVIRONMENT".to_owned(), environment));
    }
    env
}

fn hook(ctx: &Context<'_>, step: &LocalStep, phase: Phase, env: Vec<(String, String)>) -> LocalHook {
    LocalHook {
        phase,
        step: Some(step.name.clone()),
        batch: 0,
        hosts: ctx.fleet.names(),
        command: step.run.value.clone(),
        env,
        timeout: Duration::from_secs(step.timeout_secs()),
    }
}
