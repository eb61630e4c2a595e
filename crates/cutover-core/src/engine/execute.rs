//! Executing a plan: phases in order, gates between them, and on failure the
//! plan's compensations: before the switch, remove this run's work and
//! unlock; after switching began, put every switched host back.

use indexmap::IndexMap;

use crate::event::{Event, HostSummary, Outcome, Phase, Summary};
use crate::plan::{Node, Plan};
use crate::remote::lock::{LOCK_HELD, LockOwner, held_by};
use crate::remote::probe::{ProbeRequest, Snapshot};

use super::failure::{FailureKind, HostFailure};
use super::session::Session;
use super::{Context, Report, preflight};

/// Where a run stands, for deciding what a failure means.
#[derive(Debug, Default)]
struct Progress {
    locked: Vec<String>,
    switched: Vec<String>,
    failures: Vec<HostFailure>,
    warnings: Vec<String>,
}

/// Runs `plan` on an open session and reports how it ended.
pub(crate) async fn execute(ctx: &Context<'_>, session: &Session, plan: &Plan) -> Report {
    let mut progress = Progress::default();
    let mut gate_pending: Option<&str> = None;
    for (index, node) in plan.nodes.iter().enumerate() {
        let p = match node {
            Node::Gate(name) => {
                ctx.emit(Event::Gate { name: (*name).to_owned(), passed: true, failed: Vec::new() });
                continue;
            }
            Node::Phase(p) => p,
        };
        let before_switch = progress.switched.is_empty() && p.phase != Phase::Flip;
        if before_switch && ctx.interrupt.is_raised() {
            let failure = HostFailure::new(&ctx.fleet.primary().name, p.phase, FailureKind::Interrupted);
            progress.failures.push(failure);
            return abort(ctx, session, plan, progress, next_gate(plan, index)).await;
        }
        let outcome = session.run_phase(ctx, p.phase, &p.hosts, plan.payload.as_ref(), before_switch).await;
        match p.phase {
            Phase::Lock => progress.locked.extend(outcome.outputs.keys().cloned()),
            Phase::Flip => {
                for host in outcome.outputs.keys() {
                    let from = plan.before.get(host).copied().flatten().map(|r| r.to_string());
                    ctx.emit(Event::Switched { host: host.clone(), from, to: plan.release.to_string() });
                    progress.switched.push(host.clone());
                }
            }
            _ => {}
        }
        if outcome.ok() {
            continue;
        }
        let failures = outcome.failures.into_iter().map(locked_failure);
        progress.failures.extend(failures);
        gate_pending = gate_pending.or(next_gate(plan, index));
        return match p.phase {
            Phase::Finalize => {
                progress.warnings.push("the run succeeded, but finishing up (log, prune, unlock) failed".into());
                finish(ctx, session, plan, progress, Outcome::Done).await
            }
            _ if before_switch => abort(ctx, session, plan, progress, gate_pending).await,
            _ => undo(ctx, session, plan, progress).await,
        };
    }
    finish(ctx, session, plan, progress, Outcome::Done).await
}

/// A lock phase failure that is a held lock becomes a `Locked` failure.
fn locked_failure(failure: HostFailure) -> HostFailure {
    match &failure.kind {
        FailureKind::CommandFailed { exit_code: Some(LOCK_HELD), output_tail } if failure.phase == Phase::Lock => {
            let owner = LockOwner::describe(&held_by(output_tail));
            HostFailure { kind: FailureKind::Locked { owner }, ..failure }
        }
        _ => failure,
    }
}

fn next_gate(plan: &Plan, index: usize) -> Option<&str> {
    plan.nodes[index..].iter().find_map(|n| match n {
        Node::Gate(name) => Some(*name),
        Node::Phase(_) => None,
    })
}

/// Before any switch: remove this run's work where we hold the lock.
async fn abort(ctx: &Context<'_>, session: &Session, plan: &Plan, progress: Progress, gate: Option<&str>) -> Report {
    if let Some(name) = gate {
        let mut failed: Vec<String> = progress.failures.iter().map(|f| f.host.clone()).collect();
        failed.dedup();
        ctx.emit(Event::Gate { name: name.to_owned(), passed: false, failed });
    }
    let jobs =
        plan.abort.iter().filter(|(h, _)| progress.locked.contains(h)).map(|(h, s)| (h.clone(), s.clone())).collect();
    let outcome = session.run_phase(ctx, Phase::Abort, &jobs, None, false).await;
    let mut progress = progress;
    for failure in outcome.failures {
        progress.warnings.push(format!("{failure}: clean up by hand or run `cutover unlock`"));
    }
    let locked = progress.failures.iter().any(|f| matches!(f.kind, FailureKind::Locked { .. }));
    finish(ctx, session, plan, progress, if locked { Outcome::Locked } else { Outcome::Failed }).await
}

/// After switching began: put every switched host back, then clean up.
async fn undo(ctx: &Context<'_>, session: &Session, plan: &Plan, progress: Progress) -> Report {
    let jobs =
        plan.undo.iter().filter(|(h, _)| progress.switched.contains(h)).map(|(h, s)| (h.clone(), s.clone())).collect();
    let outcome = session.run_phase(ctx, Phase::Undo, &jobs, None, false).await;
    for host in outcome.outputs.keys() {
        let to = plan.before.get(host).copied().flatten().map(|r| r.to_string()).unwrap_or_else(|| "(none)".into());
        ctx.emit(Event::Switched { host: host.clone(), from: Some(plan.release.to_string()), to });
    }
    let mut progress = progress;
    progress.failures.extend(outcome.failures);
    let reload = plan.nodes.iter().find_map(|n| match n {
        Node::Phase(p) if p.phase == Phase::Reload => Some(p),
        _ => None,
    });
    if let Some(reload) = reload {
        let jobs = reload
            .hosts
            .iter()
            .filter(|(h, _)| outcome.outputs.contains_key(*h))
            .map(|(h, s)| (h.clone(), s.clone()))
            .collect();
        let reloaded = session.run_phase(ctx, Phase::Reload, &jobs, None, false).await;
        for failure in reloaded.failures {
            progress.warnings.push(format!("{failure}: the host is back on its release but PHP-FPM was not reloaded"));
        }
    }
    let jobs =
        plan.abort.iter().filter(|(h, _)| progress.locked.contains(h)).map(|(h, s)| (h.clone(), s.clone())).collect();
    let cleanup = session.run_phase(ctx, Phase::Abort, &jobs, None, false).await;
    for failure in cleanup.failures {
        progress.warnings.push(format!("{failure}: clean up by hand or run `cutover unlock`"));
    }
    // Whether every host is back is read from the hosts, in `finish`.
    finish(ctx, session, plan, progress, Outcome::RolledBack).await
}

/// Builds, emits and returns the summary. After a failure that reached the
/// switch, each host's `current` is read again rather than assumed, and the
/// outcome is `RolledBack` only if every host is back where it was.
async fn finish(ctx: &Context<'_>, session: &Session, plan: &Plan, progress: Progress, outcome: Outcome) -> Report {
    for message in &progress.warnings {
        ctx.emit(Event::Warning { host: None, message: message.clone() });
    }
    let fresh: IndexMap<String, Snapshot> = if matches!(outcome, Outcome::RolledBack | Outcome::Inconsistent) {
        preflight::probe(ctx, session, &ProbeRequest::default(), false).await.snapshots
    } else {
        IndexMap::new()
    };
    let mut hosts = IndexMap::new();
    for target in &ctx.fleet.hosts {
        let name = &target.name;
        let before = plan.before.get(name).copied().flatten();
        let failure = progress.failures.iter().find(|f| &f.host == name);
        let (current, state) = match (outcome, fresh.get(name)) {
            (Outcome::Done, _) => (Some(plan.release), "switched"),
            (Outcome::RolledBack | Outcome::Inconsistent, Some(snap)) => {
                let state = if snap.current() == before { "unchanged" } else { "switched" };
                (snap.current(), state)
            }
            (Outcome::RolledBack | Outcome::Inconsistent, None) => (None, "unknown"),
            _ => (before, if failure.is_some() { "failed" } else { "unchanged" }),
        };
        hosts.insert(
            name.clone(),
            HostSummary {
                current: current.map(|r| r.to_string()),
                state: state.to_owned(),
                error: failure.map(|f| f.to_string()),
                ..HostSummary::default()
            },
        );
    }
    let summary = Summary {
        command: plan.command,
        outcome,
        release: Some(plan.release),
        message: progress.failures.first().map(ToString::to_string),
        hosts,
    };
    ctx.emit(Event::Summary(summary.clone()));
    Report { summary, failures: progress.failures }
}
