//! Compensation: what a failure does, decided from the [`RunState`] alone.
//!
//! If the run reached the flip, `current` is first read on every host that
//! may have switched, so the decision rests on what the hosts serve, not on
//! exit codes. Then: no host switched, abort (this run's release removed,
//! unlocked; exit 1). Hosts switched: by `on_failure`, undo them (renamed
//! back, reloaded) and abort (exit 3, or 4 if a host could not be put
//! back), or halt where it is (exit 4).

use indexmap::IndexMap;

use crate::config::OnFailure;
use crate::event::{Event, Outcome, Phase};
use crate::plan::{HostScript, Node, Plan};
use crate::remote::probe::ProbeRequest;
use crate::remote::switch;

use super::failure::{FailureKind, HostFailure};
use super::preflight::{self, Checks};
use super::session::{Patience, Session, emit_warnings};
use super::state::{RunState, Standing};
use super::{Context, local_hook};

/// Compensates a run that stopped at node `at`; returns its outcome.
pub(crate) async fn run(ctx: &Context<'_>, session: &Session, plan: &Plan, state: &mut RunState, at: usize) -> Outcome {
    let reached_flip = plan.nodes[..=at].iter().any(|n| matches!(n, Node::Phase(p) if p.phase == Phase::Flip));
    if reached_flip {
        read_back(ctx, session, plan, state).await;
    }
    if !state.switching_began() {
        if let Some(name) = next_gate(plan, at) {
            let mut failed: Vec<String> = state.failures.iter().map(|f| f.host.clone()).collect();
            failed.dedup();
            ctx.emit(Event::Gate { name: name.to_owned(), passed: false, failed });
        }
        undrain(ctx, session, plan, state).await;
        abort(ctx, session, plan, state).await;
        let locked = state.failures.iter().any(|f| matches!(f.kind, FailureKind::Locked { .. }));
        return if locked { Outcome::Locked } else { Outcome::Failed };
    }
    if plan.rollout.on_failure == OnFailure::Halt {
        let switched = state.hosts_where(Standing::may_be_switched);
        state.warnings.push(format!(
            "halted: {} on release {} ({}); the other hosts are where they were",
            switched.len(),
            plan.release,
            switched.join(", ")
        ));
        abort(ctx, session, plan, state).await;
        return Outcome::Halted;
    }
    undo(ctx, session, plan, state).await;
    undrain(ctx, session, plan, state).await;
    abort(ctx, session, plan, state).await;
    Outcome::RolledBack
}

/// Reads `current` on every host that holds this run's lock: a host that
/// points at the release switched, one that points where it did before did
/// not. A host that cannot be read keeps its state.
async fn read_back(ctx: &Context<'_>, session: &Session, plan: &Plan, state: &mut RunState) {
    let ours = format!("releases/{}", plan.release);
    let found = preflight::probe(ctx, session, &ProbeRequest::default(), Checks::None, Phase::ReadBack).await;
    for (host, snapshot) in &found.snapshots {
        let here = state.state(host);
        if !here.holds_lock() {
            continue;
        }
        let before = plan.before.get(host).cloned().flatten();
        if snapshot.current_target.as_deref() == Some(ours.as_str()) && before.as_deref() != Some(ours.as_str()) {
            if !here.may_be_switched() {
                ctx.emit(Event::Warning {
                    host: Some(host.clone()),
                    message: format!("read back: `current` points at {} although the flip failed", plan.release),
                });
            }
            state.advance(host, Standing::Switched);
        } else if snapshot.current_target == before && here.may_be_switched() {
            state.set(host, Standing::Staged);
        }
    }
}

/// Renames `current` back on every host that may have switched, then
/// reloads those that were switched back.
async fn undo(ctx: &Context<'_>, session: &Session, plan: &Plan, state: &mut RunState) {
    let switched = state.hosts_where(Standing::may_be_switched);
    let jobs = only(&plan.undo, &switched);
    let outcome = session.run_phase(ctx, Phase::Undo, &jobs, None, Patience::ToTheEnd).await;
    let mut switched_back = Vec::new();
    for (host, output) in outcome.outputs.iter().chain(&outcome.failed_outputs) {
        if switch::switched(&output.stdout) {
            let to = plan.before_name(host).unwrap_or_else(|| "(none)".into());
            let at = jiff::Timestamp::now();
            ctx.emit(Event::Switched { host: host.clone(), from: Some(plan.release.to_string()), to, batch: None, at });
            state.set(host, Standing::Staged);
            switched_back.push(host.clone());
        }
    }
    state.failures.extend(outcome.failures.into_iter().map(HostFailure::about_the_lock));
    if !plan.reload.is_empty() {
        let jobs = only(&plan.reload, &switched_back);
        let reloaded = session.run_phase(ctx, Phase::Reload, &jobs, None, Patience::ToTheEnd).await;
        for failure in reloaded.failures {
            state.warnings.push(format!("{failure}: the host is back on its release but PHP-FPM was not reloaded"));
        }
    }
}

/// Runs the undrain hook of a batch left drained, so a failure does not keep
/// hosts out of the load balancer.
async fn undrain(ctx: &Context<'_>, session: &Session, plan: &Plan, state: &mut RunState) {
    let Some(batch) = state.drained.take() else { return };
    let node = plan.nodes.iter().find(|n| match n {
        Node::Local(hook) => hook.phase == Phase::Undrain && hook.batch == batch,
        Node::Phase(p) => p.phase == Phase::Undrain && p.batch == Some(batch),
        _ => false,
    });
    let failures = match node {
        Some(Node::Local(hook)) => local_hook::run(ctx, hook).await.err().into_iter().collect(),
        Some(Node::Phase(p)) => {
            session.run_phase(ctx, Phase::Undrain, &p.hosts, None, Patience::ToTheEnd).await.failures
        }
        _ => Vec::new(),
    };
    for failure in failures {
        state.warnings.push(format!("{failure}: batch {batch} may still be out of the load balancer"));
    }
}

/// On every host that holds this run's lock: this run's release removed
/// where it is not live, `current-tmp` removed, the lock released.
async fn abort(ctx: &Context<'_>, session: &Session, plan: &Plan, state: &mut RunState) {
    let locked = state.hosts_where(Standing::holds_lock);
    let outcome = session.run_phase(ctx, Phase::Abort, &only(&plan.abort, &locked), None, Patience::ToTheEnd).await;
    for (host, output) in &outcome.outputs {
        emit_warnings(ctx, host, &output.stdout);
        if !state.state(host).may_be_switched() {
            state.set(host, Standing::Released);
        }
    }
    for failure in outcome.failures {
        state.warnings.push(format!("{failure}: clean up by hand or run `cutover unlock`"));
    }
}

/// The first gate at or after node `index`.
/// The gate the failure at node `index` failed: the next one, or the
/// decision when it rode in the flip's script.
fn next_gate(plan: &Plan, index: usize) -> Option<&str> {
    let next = plan.nodes[index..].iter().find_map(|n| match n {
        Node::Gate(name) => Some(*name),
        _ => None,
    });
    let decides_in_flip = || {
        plan.nodes[index..]
            .iter()
            .any(|n| matches!(n, Node::Phase(p) if p.hosts.values().any(|h| h.then_finalize.is_some())))
    };
    next.or_else(|| decides_in_flip().then_some(crate::plan::DECIDED))
}

fn only(scripts: &IndexMap<String, HostScript>, hosts: &[String]) -> IndexMap<String, HostScript> {
    scripts.iter().filter(|(h, _)| hosts.contains(h)).map(|(h, s)| (h.clone(), s.clone())).collect()
}
