//! Running a plan forward: nodes in order (phases, gates, batch hooks,
//! pauses), each host's [`Standing`] moved on as its part succeeds, until
//! the plan ends or something fails. It never compensates: it says where
//! it stopped, and [`super::compensate`] takes over from the state.

use jiff::Timestamp;

use crate::config::inventory::Strategy;
use crate::event::{CommandKind, Event, Phase};
use crate::plan::{Node, PhaseNode, Plan};
use crate::remote::lock::LOCK_HELD;
use crate::remote::switch;

use super::failure::{FailureKind, HostFailure};
use super::session::{Patience, PhaseOutcome, Session, emit_warnings};
use super::state::{RunState, Standing};
use super::{Context, local_hook};

/// Where a forward run ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Every node ran: the fleet decided for the run and finalized it.
    Completed,
    /// A node failed, or the run was interrupted, at node `at`.
    Failed { at: usize },
}

/// Runs `plan` forward on an open session, recording in `state`.
pub(crate) async fn run(ctx: &Context<'_>, session: &Session, plan: &Plan, state: &mut RunState) -> Stop {
    let mut batch_seen = None;
    for (index, node) in plan.nodes.iter().enumerate() {
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
        if let Some(stop) = interrupted(ctx, plan, node, state) {
            state.failures.push(stop);
            return Stop::Failed { at: index };
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
                    state.drained = Some(hook.batch);
                }
                let result = local_hook::run(ctx, hook).await;
                if result.is_ok() && hook.phase == Phase::Undrain {
                    state.drained = None;
                }
                result.err().into_iter().collect::<Vec<_>>()
            }
            Node::Phase(p) => {
                if p.phase == Phase::BeforeFlip {
                    state.irreversible_ran = true;
                }
                let patience = patience(p.phase, state);
                let outcome = if p.hosts.values().any(|h| h.held) {
                    let announce = |host: &str, at| emit_switched(ctx, plan, host, p.batch, at);
                    session.run_together(ctx, p.phase, &p.hosts, &announce).await
                } else {
                    session.run_phase(ctx, p.phase, &p.hosts, plan.payload.as_ref(), patience).await
                };
                record(ctx, plan, p, &outcome, state);
                outcome.failures.into_iter().map(HostFailure::about_the_lock).collect()
            }
        };
        if failures.is_empty() {
            continue;
        }
        let phase = failures[0].phase;
        health_verdicts(ctx, &failures, state);
        state.failures.extend(failures);
        match phase {
            // The fleet is where the operator asked; undoing that would put
            // it back on the release they are leaving.
            Phase::AfterRollback => {
                state.warnings.push("the rollback stands, but an after_rollback step failed".into())
            }
            // After the decision: what failed is reported, nothing undone.
            Phase::Finalize => state.warnings.push("the run stands, but finalizing (log, prune, unlock) failed".into()),
            _ => return Stop::Failed { at: index },
        }
    }
    Stop::Completed
}

/// How long a phase is waited for when the user interrupts: work that can
/// be undone stops at the first interrupt; steps that cannot be undone
/// (`before_flip`) and the switch are finished unless interrupted again.
fn patience(phase: Phase, state: &RunState) -> Patience {
    match phase {
        Phase::Lock | Phase::Prepare | Phase::Build | Phase::Stage | Phase::Drain if !state.switching_began() => {
            Patience::UntilInterrupted
        }
        _ => Patience::UntilHurried,
    }
}

/// Moves each host on by what the phase did.
fn record(ctx: &Context<'_>, plan: &Plan, node: &PhaseNode, outcome: &PhaseOutcome, state: &mut RunState) {
    let (phase, batch) = (node.phase, node.batch);
    // Staging rides with the build (a deploy without before_flip steps) or
    // with the lock (a rollback) when it has no phase of its own.
    let staged_with_it = !plan.nodes.iter().any(|n| matches!(n, Node::Phase(p) if p.phase == Phase::Stage));
    let rollback = plan.command == CommandKind::Rollback;
    for (host, output) in &outcome.outputs {
        match phase {
            Phase::Lock if staged_with_it && rollback => state.advance(host, Standing::Staged),
            Phase::Lock => state.advance(host, Standing::Locked),
            Phase::Prepare | Phase::Build if staged_with_it => state.advance(host, Standing::Staged),
            Phase::Prepare | Phase::Build => state.advance(host, Standing::Built),
            Phase::Stage => state.advance(host, Standing::Staged),
            Phase::Health => {
                let detail = output.stdout.lines().last().unwrap_or("ok").to_owned();
                ctx.emit(Event::Health { host: host.clone(), passed: true, detail: detail.clone() });
                state.health.insert(host.clone(), detail);
                state.advance(host, Standing::Healthy);
            }
            Phase::Finalize => {
                emit_warnings(ctx, host, &output.stdout);
                state.advance(host, Standing::Finalized);
            }
            _ => {}
        }
    }
    // A flip that locks first (a rollback all at once): a host that got to
    // its ready line holds the lock and is staged.
    let locks = node.hosts.values().any(|h| h.locks);
    if locks {
        outcome.ready.iter().for_each(|host| state.advance(host, Standing::Staged));
    }
    // A lock that may have been taken (the script failed or its answer was
    // lost; not one held by another run): the abort runs there too, and
    // touches only a lock holding this run's token.
    if phase == Phase::Lock || locks {
        let held_by_another = |f: &&HostFailure| {
            matches!(f.kind, FailureKind::CommandFailed { exit_code: Some(LOCK_HELD), .. } | FailureKind::Locked { .. })
        };
        for failure in outcome.failures.iter().filter(|f| f.host != super::failure::LOCAL && !held_by_another(f)) {
            state.advance(&failure.host, Standing::Locked);
        }
    }
    match phase {
        Phase::Drain => state.drained = batch,
        Phase::Undrain if outcome.failures.is_empty() => state.drained = None,
        Phase::Flip => {
            flipped(ctx, plan, batch, outcome, state);
            for (host, output) in &outcome.finalized {
                emit_warnings(ctx, host, &output.stdout);
                state.advance(host, Standing::Finalized);
            }
        }
        _ => {}
    }
}

/// Which hosts the flip switched, as each host said: the line it prints
/// right after its rename. A host whose connection failed may have renamed:
/// it is read again before anything is decided.
fn flipped(ctx: &Context<'_>, plan: &Plan, batch: Option<usize>, outcome: &PhaseOutcome, state: &mut RunState) {
    // A host that switched and then failed to finalize has both.
    let failed = outcome.failed_outputs.iter().filter(|(h, _)| !outcome.outputs.contains_key(*h));
    for (host, output) in outcome.outputs.iter().chain(failed) {
        if switch::switched(&output.stdout) {
            let at = match outcome.switched_at.get(host) {
                Some(at) => *at,
                None => {
                    let at = Timestamp::now();
                    emit_switched(ctx, plan, host, batch, at);
                    at
                }
            };
            state.switched_at.insert(host.clone(), at);
            state.advance(host, Standing::Switched);
        }
    }
    for failure in outcome.failures.iter().filter(|f| f.phase == Phase::Flip) {
        let unheard = !outcome.failed_outputs.contains_key(&failure.host);
        let let_go = outcome.let_go.contains(&failure.host);
        if unheard && let_go && matches!(failure.kind, FailureKind::Transport(_)) {
            state.advance(&failure.host, Standing::MaybeSwitched);
        }
    }
}

fn emit_switched(ctx: &Context<'_>, plan: &Plan, host: &str, batch: Option<usize>, at: Timestamp) {
    let (from, to) = (plan.before_name(host), plan.release.to_string());
    ctx.emit(Event::Switched { host: host.to_owned(), from, to, batch, at });
}

/// Emits the health verdict of each failed health check.
fn health_verdicts(ctx: &Context<'_>, failures: &[HostFailure], state: &mut RunState) {
    for failure in failures.iter().filter(|f| f.phase == Phase::Health) {
        let detail = failure.output_tail().unwrap_or("failed").lines().last().unwrap_or("failed").to_owned();
        ctx.emit(Event::Health { host: failure.host.clone(), passed: false, detail: detail.clone() });
        state.health.insert(failure.host.clone(), format!("failed: {detail}"));
    }
}

/// Whether an interrupt stops the run before `node`: always before any host
/// switched; between batches of a rolling switch; in the middle of an
/// all-at-once switch only when interrupted again (it is finished instead).
fn interrupted(ctx: &Context<'_>, plan: &Plan, node: &Node, state: &RunState) -> Option<HostFailure> {
    if !ctx.interrupt.is_raised() {
        return None;
    }
    let at_batch_start = match node {
        Node::Local(hook) => hook.phase == Phase::Drain,
        Node::Phase(p) => p.phase == Phase::Drain || (p.phase == Phase::Flip && p.batch.is_some()),
        Node::Pause(_) | Node::Gate(_) => false,
    };
    let phase = match node {
        Node::Phase(p) => p.phase,
        Node::Local(hook) => hook.phase,
        _ => Phase::Pause,
    };
    let before_the_decision = !matches!(phase, Phase::Finalize | Phase::AfterRollback);
    let stop = !state.switching_began()
        || (plan.rollout.strategy == Strategy::Rolling && at_batch_start)
        || (ctx.interrupt.is_hurried() && before_the_decision);
    stop.then(|| HostFailure::new(super::failure::LOCAL, phase, FailureKind::Interrupted))
}
