//! `cutover deploy` and `cutover plan`: preflight, choose the commit and the
//! release id once, build the plan, then execute it.

use std::sync::Arc;

use indexmap::IndexMap;
use jiff::Timestamp;

use crate::config::BatchSpec;
use crate::config::inventory::{Resolve, Strategy};
use crate::event::{CommandKind, Event, HostState, HostSummary, Outcome, Phase, Summary};
use crate::plan::{self, DeployInputs, HostScript, Plan, Rollout};
use crate::release::ReleaseId;
use crate::remote::lock::LockOwner;
use crate::remote::prepare::Delivery;
use crate::remote::probe::{self, LookupOutput, RefLookup, Snapshot};
use crate::source;
use crate::transport::Output;

use super::around::{self, HookedRun};
use super::failure::{FailureKind, HostFailure, LOCAL};
use super::preflight::{self, Checks, Preflight};
use super::session::{Patience, Session, emit_host, tail};
use super::{Context, Report, execute};

/// What the user asked a deploy for.
#[derive(Clone, Debug, Default)]
pub struct DeployRequest {
    /// A branch, tag or commit overriding the inventory's.
    pub revision: Option<String>,
    /// `--mode`: the strategy, over the inventory's.
    pub mode: Option<Strategy>,
    /// `--batch`: rolling batch sizes, over the inventory's.
    pub batch: Option<BatchSpec>,
    /// `--full-build`: reuse nothing from the live release.
    pub full_build: bool,
}

/// Runs a deploy.
pub async fn deploy(ctx: &Context<'_>, request: &DeployRequest) -> Report {
    ctx.emit(Event::RunStarted {
        command: CommandKind::Deploy,
        application: ctx.loaded.inventory.application.clone(),
        hosts: ctx.fleet.names(),
    });
    let session = Session::open(ctx);
    let mut hooked = None;
    let report = match build(ctx, &session, request, Some(&mut hooked)).await {
        Ok(plan) => execute::execute(ctx, &session, &plan).await,
        Err(report) => report,
    };
    session.close().await;
    around::finish(ctx, hooked.as_ref(), report).await
}

/// Builds the plan a deploy would run, touching nothing (and running no
/// local hook).
pub async fn plan_deploy(ctx: &Context<'_>, request: &DeployRequest) -> Result<Plan, Report> {
    let session = Session::open(ctx);
    let plan = build(ctx, &session, request, None).await;
    session.close().await;
    if let Err(report) = &plan {
        ctx.emit(Event::Summary(report.summary.clone()));
    }
    plan
}

/// Preflight, the local `before` hooks when running (`hooked` then holds
/// what the `after` hooks are told), the commit, the plan.
async fn build(
    ctx: &Context<'_>,
    session: &Session,
    request: &DeployRequest,
    mut hooked: Option<&mut Option<HookedRun>>,
) -> Result<Plan, Report> {
    let inv = &ctx.loaded.inventory;
    let delivery = Delivery::of(inv);
    let reference = reference(ctx, request);
    let (found, here) = probe(ctx, session, &delivery, &reference).await;
    if !found.failures.is_empty() {
        return Err(early_report(ctx, CommandKind::Deploy, &found, found.failures.clone()));
    }
    let on_disk = found.snapshots.values().flat_map(|s| s.releases.iter().chain(&s.partial));
    let release = ReleaseId::choose(Timestamp::now(), on_disk);
    let fail = |failure| early_report(ctx, CommandKind::Deploy, &found, vec![failure]);
    // Git: the commit first, so that the hooks are told it and a failed
    // lookup runs none. An upload packs what the `before` hooks built.
    let (commit, payload) = if let Delivery::Git { .. } = delivery {
        let code = code(ctx, session, &delivery, &reference, &found, here).await.map_err(fail)?;
        before_hooks(ctx, &mut hooked, release, Some(code.0.clone())).await.map_err(fail)?;
        code
    } else {
        before_hooks(ctx, &mut hooked, release, None).await.map_err(fail)?;
        let code = code(ctx, session, &delivery, &reference, &found, here).await.map_err(fail)?;
        if let Some(Some(run)) = hooked {
            run.revision = Some(code.0.clone());
        }
        code
    };
    ctx.emit(Event::ReleaseChosen { release, commit: commit.clone() });
    Ok(plan::deploy(DeployInputs {
        loaded: ctx.loaded,
        fleet: ctx.fleet,
        snapshots: &found.snapshots,
        fpm: &found.fpm,
        release,
        commit,
        delivery,
        payload,
        owner: LockOwner::current(&inv.application, "deploy", Some(release.to_string()))
            .in_environment(inv.environment.as_deref()),
        rollout: Rollout::new(ctx.loaded, request.mode, request.batch.clone()),
        full_build: request.full_build,
    }))
}

/// Preflight on every host and, overlapping it, the commit's lookup from
/// here when git delivery resolves it here (the primary's probe does it
/// with `resolve: host`).
async fn probe(
    ctx: &Context<'_>,
    session: &Session,
    delivery: &Delivery,
    reference: &str,
) -> (Preflight, Option<Result<String, source::SourceError>>) {
    let inv = &ctx.loaded.inventory;
    let resolve = match delivery {
        Delivery::Git { repository } if !source::is_commit_id(reference) => Some((repository.as_str(), inv.resolve)),
        _ => None,
    };
    let mut request_probe = preflight::request(ctx, Some(delivery));
    if let Some((repository, Resolve::Host)) = resolve {
        request_probe.lookup = Some(RefLookup { repository, reference });
    }
    // Resolving from here overlaps the probe: neither waits for the other.
    let here = async {
        match resolve {
            Some((repository, Resolve::Local)) => Some(source::resolve_here(repository, reference).await),
            _ => None,
        }
    };
    tokio::join!(preflight::probe(ctx, session, &request_probe, Checks::Deploy, Phase::Preflight), here)
}

/// The `before` local hooks, when running (not planning): `hooked` then
/// holds what the `after` hooks are told.
async fn before_hooks(
    ctx: &Context<'_>,
    hooked: &mut Option<&mut Option<HookedRun>>,
    release: ReleaseId,
    revision: Option<String>,
) -> Result<(), HostFailure> {
    let Some(slot) = hooked.as_mut() else { return Ok(()) };
    let run = slot.insert(HookedRun { command: CommandKind::Deploy, release, revision });
    around::before(ctx, run).await
}

/// The branch, tag or commit asked for: `--revision`, else the inventory's.
fn reference(ctx: &Context<'_>, request: &DeployRequest) -> String {
    let inv = &ctx.loaded.inventory;
    request
        .revision
        .clone()
        .or_else(|| inv.revision.clone())
        .or_else(|| inv.branch.clone())
        .unwrap_or_else(|| "HEAD".to_owned())
}

/// The commit to deploy, and for an upload the tar stream. `here` is the
/// resolution from this machine, when it was tried; the primary's probe
/// holds its lookup when the commit is resolved there.
async fn code(
    ctx: &Context<'_>,
    session: &Session,
    delivery: &Delivery,
    reference: &str,
    found: &Preflight,
    here: Option<Result<String, source::SourceError>>,
) -> Result<(String, Option<Arc<[u8]>>), HostFailure> {
    let inv = &ctx.loaded.inventory;
    let fail = |host: &str, message: String| HostFailure::new(host, Phase::Resolve, FailureKind::Precondition(message));
    let Delivery::Git { repository } = delivery else {
        let dir = ctx.loaded.dir.join(inv.source.as_ref().map(|s| s.value.clone()).unwrap_or_default());
        let exclude: Vec<String> = inv.exclude.iter().map(|e| e.value.clone()).collect();
        let package = source::pack(&dir, &exclude).map_err(|e| fail(LOCAL, e.to_string()))?;
        return Ok((package.revision, Some(Arc::from(package.bytes))));
    };
    if source::is_commit_id(reference) {
        return Ok((reference.to_lowercase(), None));
    }
    match here {
        Some(Ok(commit)) => return Ok((commit, None)),
        Some(Err(e)) => {
            ctx.emit(Event::Warning { host: None, message: format!("{e}; resolving on the primary host instead") })
        }
        None => {}
    }
    // Only the hosts can reach the repository: the primary's answer.
    let primary = ctx.fleet.primary().name.clone();
    let lookup = RefLookup { repository, reference };
    let answer = match found.snapshots.get(&primary).and_then(|s| s.lookup.clone()) {
        Some(answer) => answer,
        None => look_up_on(ctx, session, &primary, &lookup).await?,
    };
    if answer.exit_code != 0 {
        let said = Output { exit_code: Some(answer.exit_code), stdout: answer.output, stderr: String::new() };
        let failed = FailureKind::CommandFailed { exit_code: Some(answer.exit_code), output_tail: tail(&said) };
        let failure = HostFailure::new(&primary, Phase::Resolve, failed);
        emit_host(ctx, &primary, Phase::Resolve, HostState::Failed, None, Some(&failure));
        return Err(failure);
    }
    source::commit_from_ls_remote(&answer.output, reference)
        .map(|commit| (commit, None))
        .ok_or_else(|| fail(&primary, format!("`{reference}` not found in {repository}")))
}

/// The lookup on `host` in a round trip of its own (resolving from here
/// failed).
async fn look_up_on(
    ctx: &Context<'_>,
    session: &Session,
    host: &str,
    lookup: &RefLookup<'_>,
) -> Result<LookupOutput, HostFailure> {
    let script = HostScript::new(probe::lookup_script(lookup), std::time::Duration::from_secs(60));
    let jobs: IndexMap<String, HostScript> = [(host.to_owned(), script)].into_iter().collect();
    let outcome = session.run_phase(ctx, Phase::Resolve, &jobs, None, Patience::UntilInterrupted).await;
    if let Some(failure) = outcome.failures.into_iter().next() {
        return Err(failure);
    }
    let stdout = outcome.outputs.get(host).map(|o| o.stdout.as_str()).unwrap_or_default();
    Snapshot::parse(stdout).lookup.ok_or_else(|| {
        let kind = FailureKind::Precondition("no answer from `git ls-remote`".to_owned());
        HostFailure::new(host, Phase::Resolve, kind)
    })
}

/// The report of a run that stopped before touching any host.
pub(crate) fn early_report(
    ctx: &Context<'_>,
    command: CommandKind,
    found: &Preflight,
    failures: Vec<HostFailure>,
) -> Report {
    let locked = found.locked() || failures.iter().any(|f| matches!(f.kind, FailureKind::Locked { .. }));
    let hosts = ctx
        .fleet
        .hosts
        .iter()
        .map(|t| {
            let failure = failures.iter().find(|f| f.host == t.name);
            let current = found.snapshots.get(&t.name).and_then(Snapshot::current_name);
            let summary = HostSummary {
                current,
                state: if failure.is_some() { "failed" } else { "unchanged" }.to_owned(),
                error: failure.map(ToString::to_string),
                ..HostSummary::default()
            };
            (t.name.clone(), summary)
        })
        .collect();
    let summary = Summary {
        command,
        environment: ctx.environment(),
        outcome: if locked { Outcome::Locked } else { Outcome::Failed },
        release: None,
        message: failures.first().map(ToString::to_string),
        not_undone: None,
        hosts,
    };
    Report { summary, failures }
}
