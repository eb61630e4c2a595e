//! Executing a plan: nodes in order (phases, gates, batch hooks, pauses),
//! recording who is locked, switched, drained and healthy. A failure hands
//! over to [`super::recover`].

use indexmap::IndexMap;
use jiff::Timestamp;

use crate::config::inventory::Strategy;
use crate::event::{Event, Outcome, Phase};
use crate::plan::{Node, Plan};
use crate::remote::lock::{LOCK_HELD, LockOwner, held_by};
use crate::remote::wrapup;

use super::failure::{FailureKind, HostFailure};
use super::session::Session;
use super::{Context, Report, local_hook, recover};

/// Where a run stands, for deciding what a failure means.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub locked: Vec<String>,
    pub switched: Vec<String>,
    pub switched_at: IndexMap<String, Timestamp>,
    /// Hosts whose wrap-up (log, prune, unlock) ran with their switch.
    pub wrapped_up: Vec<String>,
    pub health: IndexMap<String, String>,
    /// The batch whose drain hook ran and whose undrain hook has not.
    pub drained: Option<usize>,
    pub failures: Vec<HostFailure>,
    pub warnings: Vec<String>,
}

/// Runs `plan` on an open session and reports how it ended.
pub(crate) async fn execute(ctx: &Context<'_>, session: &Session, plan: &Plan) -> Report {
    let mut progress = Progress::default();
    let mut batch_seen = None;
    for (index, node) in plan.nodes.iter().enumerate() {
        let started_switching = !progress.switched.is_empty();
        let batch = match node {
            Node::Phase(p) => p.batch,
            Node::Local(hook) => Some(hook.batch),
            _ => None,
        };
        if let Some(batch) = batch.filter(|b| Some(*b) != batch_seen) {
            batch_seen = Some(batch);
            let hosts = plan.batches.iter().filter(|(_, b)| **b == batch).map(|(h, _)| h.clone()).collect();
            ctx.emit(Event::BatchStarted { batch, hosts });
        }
        if let Some(stop) = interrupted(ctx, plan, node, started_switching) {
            progress.failures.push(stop);
            return match started_switching {
                false => recover::abort(ctx, session, plan, progress, recover::next_gate(plan, index)).await,
                true => recover::after_switch(ctx, session, plan, progress).await,
            };
        }
        let failures = match node {
            Node::Gate(name) => {
                ctx.emit(Event::Gate { name: (*name).to_owned(), passed: true, failed: Vec::new() });
                continue;
            }
            Node::Pause(duration) => {
                ctx.emit(Event::PhaseStarted { phase: Phase::Pause, hosts: Vec::new() });
                tokio::select! {
                    () = tokio::time::sleep(*duration) => {}
                    () = ctx.interrupt.raised() => {}
                }
                continue;
            }
            Node::Local(hook) => {
                if hook.phase == Phase::Drain {
                    progress.drained = Some(hook.batch);
                }
                let result = local_hook::run(ctx, hook).await;
                if result.is_ok() && hook.phase == Phase::Undrain {
                    progress.drained = None;
                }
                result.err().into_iter().collect::<Vec<_>>()
            }
            Node::Phase(p) => {
                let interruptible = !started_switching && p.phase != Phase::Flip;
                let outcome = session.run_phase(ctx, p.phase, &p.hosts, plan.payload.as_ref(), interruptible).await;
                record(ctx, plan, p.phase, p.batch, &outcome.outputs, &mut progress);
                if p.finalizes {
                    wrapup_warnings(ctx, &outcome.outputs);
                    // Their wrap-up unlocked them: no longer ours to clean up.
                    progress.locked.retain(|h| !outcome.outputs.contains_key(h));
                    progress.wrapped_up.extend(outcome.outputs.keys().cloned());
                }
                outcome.failures.into_iter().map(locked_failure).collect()
            }
        };
        if failures.is_empty() {
            continue;
        }
        return failed(ctx, session, plan, progress, failures, index).await;
    }
    recover::finish(ctx, session, plan, progress, Outcome::Done).await
}

/// What a failure at node `index` means, by phase and by whether any host
/// switched yet.
async fn failed(
    ctx: &Context<'_>,
    session: &Session,
    plan: &Plan,
    mut progress: Progress,
    failures: Vec<HostFailure>,
    index: usize,
) -> Report {
    let phase = failures[0].phase;
    if phase == Phase::Health {
        for failure in &failures {
            let detail = failure.output_tail().unwrap_or("failed").lines().last().unwrap_or("failed").to_owned();
            ctx.emit(Event::Health { host: failure.host.clone(), passed: false, detail: detail.clone() });
            progress.health.insert(failure.host.clone(), format!("failed: {detail}"));
        }
    }
    progress.failures.extend(failures);
    if phase == Phase::Flip {
        // A flip that lost its connection after it was let go may have
        // renamed `current`: undo it too (putting a host back is idempotent).
        let maybe = progress.failures.iter().filter(|f| matches!(f.kind, FailureKind::Transport(_)));
        let maybe: Vec<String> = maybe.map(|f| f.host.clone()).filter(|h| !progress.switched.contains(h)).collect();
        progress.switched.extend(maybe);
    }
    match phase {
        Phase::AfterRollback => {
            // The fleet is where the operator asked; undoing that would
            // put it back on the release they are leaving.
            progress.warnings.push("the rollback stands, but an after_rollback step failed".into());
            recover::finish(ctx, session, plan, progress, Outcome::Done).await
        }
        Phase::Finalize => {
            progress.warnings.push("the run succeeded, but finishing up (log, prune, unlock) failed".into());
            recover::finish(ctx, session, plan, progress, Outcome::Done).await
        }
        _ if progress.switched.is_empty() => {
            recover::abort(ctx, session, plan, progress, recover::next_gate(plan, index)).await
        }
        _ => recover::after_switch(ctx, session, plan, progress).await,
    }
}

/// Records what a phase did: locks taken, hosts switched, health verdicts,
/// a batch drained or undrained.
fn record(
    ctx: &Context<'_>,
    plan: &Plan,
    phase: Phase,
    batch: Option<usize>,
    outputs: &IndexMap<String, crate::transport::Output>,
    progress: &mut Progress,
) {
    match phase {
        Phase::Lock => progress.locked.extend(outputs.keys().cloned()),
        Phase::Finalize => wrapup_warnings(ctx, outputs),
        Phase::Drain => progress.drained = batch,
        Phase::Undrain => progress.drained = None,
        Phase::Flip => {
            for host in outputs.keys() {
                let at = Timestamp::now();
                let from = plan.before_name(host);
                let to = plan.release.to_string();
                ctx.emit(Event::Switched { host: host.clone(), from, to, batch, at });
                progress.switched.push(host.clone());
                progress.switched_at.insert(host.clone(), at);
            }
        }
        Phase::Health => {
            for (host, output) in outputs {
                let detail = output.stdout.lines().last().unwrap_or("ok").to_owned();
                ctx.emit(Event::Health { host: host.clone(), passed: true, detail: detail.clone() });
                progress.health.insert(host.clone(), detail);
            }
        }
        _ => {}
    }
}

/// Reports what a wrap-up script could not do (it goes on, and unlocks).
pub(crate) fn wrapup_warnings(ctx: &Context<'_>, outputs: &IndexMap<String, crate::transport::Output>) {
    for (host, output) in outputs {
        for message in wrapup::warnings(&output.stdout) {
            ctx.emit(Event::Warning { host: Some(host.clone()), message: message.to_owned() });
        }
    }
}

/// Whether an interrupt stops the run before `node`: always before any host
/// switched; between batches of a rolling switch; never in the middle of an
/// all-at-once switch, which is finished instead.
fn interrupted(ctx: &Context<'_>, plan: &Plan, node: &Node, started_switching: bool) -> Option<HostFailure> {
    if !ctx.interrupt.is_raised() {
        return None;
    }
    let at_batch_start = match node {
        Node::Local(hook) => hook.phase == Phase::Drain,
        Node::Phase(p) => p.phase == Phase::Drain || (p.phase == Phase::Flip && p.batch.is_some()),
        Node::Pause(_) | Node::Gate(_) => false,
    };
    let stop = !started_switching || (plan.rollout.strategy == Strategy::Rolling && at_batch_start);
    let phase = match node {
        Node::Phase(p) => p.phase,
        Node::Local(hook) => hook.phase,
        _ => Phase::Pause,
    };
    stop.then(|| HostFailure::new(super::deploy::LOCAL, phase, FailureKind::Interrupted))
}

/// A lock phase failure that is a held lock becomes a `Locked` failure.
/// A lock script's "held" exit as the lock's owner (in the lock phase, or a
/// put-back that takes the lock again).
pub(crate) fn locked_failure(failure: HostFailure) -> HostFailure {
    match &failure.kind {
        FailureKind::CommandFailed { exit_code: Some(LOCK_HELD), output_tail }
            if matches!(failure.phase, Phase::Lock | Phase::Undo) =>
        {
            let owner = LockOwner::describe(&held_by(output_tail));
            HostFailure { kind: FailureKind::Locked { owner }, ..failure }
        }
        _ => failure,
    }
}
