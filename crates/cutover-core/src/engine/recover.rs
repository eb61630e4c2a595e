//! What a failure does. Before any switch: remove this run's work and unlock
//! (exit 1). After switching began, by `on_failure`: put every switched host
//! back and reload it (exit 3, or 4 if a host could not be put back), or halt
//! where it is (exit 4). Either way the hosts are read again for the summary.

use indexmap::IndexMap;

use crate::config::OnFailure;
use crate::event::{Event, HostSummary, Outcome, Phase, Summary};
use crate::plan::{HostScript, Node, Plan};
use crate::remote::probe::{ProbeRequest, Snapshot};

use super::execute::Progress;
use super::failure::FailureKind;
use super::preflight::{self, Checks};
use super::session::Session;
use super::{Context, Report, local_hook};

/// The first gate at or after node `index`.
pub(crate) fn next_gate(plan: &Plan, index: usize) -> Option<&str> {
    plan.nodes[index..].iter().find_map(|n| match n {
        Node::Gate(name) => Some(*name),
        _ => None,
    })
}

/// Before any switch: remove this run's work where we hold the lock.
pub(crate) async fn abort(
    ctx: &Context<'_>,
    session: &Session,
    plan: &Plan,
    mut progress: Progress,
    gate: Option<&str>,
) -> Report {
    if let Some(name) = gate {
        let mut failed: Vec<String> = progress.failures.iter().map(|f| f.host.clone()).collect();
        failed.dedup();
        ctx.emit(Event::Gate { name: name.to_owned(), passed: false, failed });
    }
    undrain(ctx, session, plan, &mut progress).await;
    clean_up(ctx, session, plan, &mut progress).await;
    let locked = progress.failures.iter().any(|f| matches!(f.kind, FailureKind::Locked { .. }));
    finish(ctx, session, plan, progress, if locked { Outcome::Locked } else { Outcome::Failed }).await
}

/// After switching began, as `on_failure` says.
pub(crate) async fn after_switch(ctx: &Context<'_>, session: &Session, plan: &Plan, mut progress: Progress) -> Report {
    if plan.rollout.on_failure == OnFailure::Halt {
        let switched = progress.switched.join(", ");
        progress.warnings.push(format!(
            "halted: {} on release {} ({switched}); the other hosts are where they were",
            progress.switched.len(),
            plan.release
        ));
        clean_up(ctx, session, plan, &mut progress).await;
        return finish(ctx, session, plan, progress, Outcome::Halted).await;
    }
    let jobs: IndexMap<String, HostScript> = progress
        .switched
        .iter()
        .filter_map(|host| {
            let undo = if progress.wrapped_up.contains(host) { &plan.undo_logged } else { &plan.undo };
            undo.get(host).map(|script| (host.clone(), script.clone()))
        })
        .collect();
    let outcome = session.run_phase(ctx, Phase::Undo, &jobs, None, false).await;
    for host in outcome.outputs.keys() {
        let to = plan.before_name(host).unwrap_or_else(|| "(none)".into());
        let at = jiff::Timestamp::now();
        ctx.emit(Event::Switched { host: host.clone(), from: Some(plan.release.to_string()), to, batch: None, at });
    }
    super::execute::wrapup_warnings(ctx, &outcome.outputs);
    // A host that wrapped up took the lock again to be put back.
    let relocked = outcome.outputs.keys().filter(|h| progress.wrapped_up.contains(h) && !progress.locked.contains(h));
    let relocked: Vec<String> = relocked.cloned().collect();
    progress.locked.extend(relocked);
    progress.failures.extend(outcome.failures.into_iter().map(super::execute::locked_failure));
    let reload = reload_scripts(plan);
    if !reload.is_empty() {
        let jobs = only(&reload, &outcome.outputs.keys().cloned().collect::<Vec<_>>());
        let reloaded = session.run_phase(ctx, Phase::Reload, &jobs, None, false).await;
        for failure in reloaded.failures {
            progress.warnings.push(format!("{failure}: the host is back on its release but PHP-FPM was not reloaded"));
        }
    }
    undrain(ctx, session, plan, &mut progress).await;
    clean_up(ctx, session, plan, &mut progress).await;
    // Whether every host is back is read from the hosts, in `finish`.
    finish(ctx, session, plan, progress, Outcome::RolledBack).await
}

/// Runs the undrain hook of a batch left drained, so a failure does not keep
/// hosts out of the load balancer.
async fn undrain(ctx: &Context<'_>, session: &Session, plan: &Plan, progress: &mut Progress) {
    let Some(batch) = progress.drained.take() else { return };
    let node = plan.nodes.iter().find(|n| match n {
        Node::Local(hook) => hook.phase == Phase::Undrain && hook.batch == batch,
        Node::Phase(p) => p.phase == Phase::Undrain && p.batch == Some(batch),
        _ => false,
    });
    let failures = match node {
        Some(Node::Local(hook)) => local_hook::run(ctx, hook).await.err().into_iter().collect(),
        Some(Node::Phase(p)) => session.run_phase(ctx, Phase::Undrain, &p.hosts, None, false).await.failures,
        _ => Vec::new(),
    };
    for failure in failures {
        progress.warnings.push(format!("{failure}: batch {batch} may still be out of the load balancer"));
    }
}

/// This run's release removed where it is not live, `current-tmp` removed,
/// locks released.
async fn clean_up(ctx: &Context<'_>, session: &Session, plan: &Plan, progress: &mut Progress) {
    let jobs = only(&plan.abort, &progress.locked);
    let outcome = session.run_phase(ctx, Phase::Abort, &jobs, None, false).await;
    super::execute::wrapup_warnings(ctx, &outcome.outputs);
    for failure in outcome.failures {
        progress.warnings.push(format!("{failure}: clean up by hand or run `cutover unlock`"));
    }
}

fn only(scripts: &IndexMap<String, HostScript>, hosts: &[String]) -> IndexMap<String, HostScript> {
    scripts.iter().filter(|(h, _)| hosts.contains(h)).map(|(h, s)| (h.clone(), s.clone())).collect()
}

/// Every host's reload script, from whichever batch it is in.
fn reload_scripts(plan: &Plan) -> IndexMap<String, HostScript> {
    let reloads = plan.nodes.iter().filter_map(|n| match n {
        Node::Phase(p) if p.phase == Phase::Reload => Some(&p.hosts),
        _ => None,
    });
    reloads.flat_map(|hosts| hosts.iter().map(|(h, s)| (h.clone(), s.clone()))).collect()
}

/// Builds, emits and returns the summary. After a failure that reached the
/// switch, each host's `current` is read again rather than assumed, and a
/// rollback counts only if every host is back where it was.
pub(crate) async fn finish(
    ctx: &Context<'_>,
    session: &Session,
    plan: &Plan,
    progress: Progress,
    outcome: Outcome,
) -> Report {
    for message in &progress.warnings {
        ctx.emit(Event::Warning { host: None, message: message.clone() });
    }
    let mut outcome = outcome;
    let mut fresh: IndexMap<String, Snapshot> = IndexMap::new();
    if matches!(outcome, Outcome::RolledBack | Outcome::Halted) {
        fresh = preflight::probe(ctx, session, &ProbeRequest::default(), Checks::None).await.snapshots;
        let all_back = ctx.fleet.hosts.iter().all(|t| {
            let before = plan.before.get(&t.name).cloned().flatten();
            fresh.get(&t.name).is_some_and(|snap| snap.current_target == before)
        });
        if outcome == Outcome::RolledBack && !all_back {
            outcome = Outcome::Inconsistent;
        }
    }
    let hosts =
        ctx.fleet.hosts.iter().map(|t| (t.name.clone(), host_summary(plan, &progress, &fresh, outcome, &t.name)));
    let summary = Summary {
        command: plan.command,
        outcome,
        release: Some(plan.release),
        message: progress.failures.first().map(ToString::to_string),
        hosts: hosts.collect(),
    };
    ctx.emit(Event::Summary(summary.clone()));
    Report { summary, failures: progress.failures }
}

fn host_summary(
    plan: &Plan,
    progress: &Progress,
    fresh: &IndexMap<String, Snapshot>,
    outcome: Outcome,
    name: &str,
) -> HostSummary {
    let before = plan.before.get(name).cloned().flatten();
    let failure = progress.failures.iter().find(|f| f.host == name);
    let (current, state) = match (outcome, fresh.get(name)) {
        (Outcome::Done, _) => (Some(plan.release.to_string()), "switched"),
        (Outcome::RolledBack | Outcome::Inconsistent | Outcome::Halted, Some(snap)) => {
            let state = if snap.current_target == before { "unchanged" } else { "switched" };
            (snap.current_name(), state)
        }
        (Outcome::RolledBack | Outcome::Inconsistent | Outcome::Halted, None) => (None, "unknown"),
        _ => (plan.before_name(name), if failure.is_some() { "failed" } else { "unchanged" }),
    };
    HostSummary {
        current,
        state: state.to_owned(),
        error: failure.map(ToString::to_string),
        batch: plan.batches.get(name).copied(),
        switched_at: progress.switched_at.get(name).copied(),
        health: progress.health.get(name).cloned(),
        ..HostSummary::default()
    }
}
