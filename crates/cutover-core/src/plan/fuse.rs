//! Fewer round trips: phases that need no gate between them are sent as
//! one script per host. Prepare and staging join the build when no step
//! runs between them (deploy), staging joins the lock (rollback), and a
//! rollback all at once locks in its flip's script, before the ready line
//! that holds every host until all are ready. Finalize
//! joins a flip that every host runs at once with nothing after it, but
//! held: each host's script waits at a second ready line until every host
//! switched, so finalize still waits for the fleet's decision. The plan
//! still shows every command.

use indexmap::IndexMap;

use crate::event::Phase;
use crate::remote::{lock, switch};

use super::{DECIDED, HostScript, Node, PhaseNode};

/// Puts the prepare phase (release directory, code, shared links) at the
/// head of the build phase right after it: no gate stands between them, so
/// each host goes on building as soon as its code is in place.
pub(super) fn prepare_into_build(nodes: &mut Vec<Node>) {
    let Some(prepare) = position(nodes, Phase::Prepare) else { return };
    if !matches!(nodes.get(prepare + 1), Some(Node::Phase(p)) if p.phase == Phase::Build) {
        return;
    }
    let Node::Phase(prepare_node) = nodes.remove(prepare) else { return };
    let Some(Node::Phase(build)) = nodes.get_mut(prepare) else { return };
    let mut hosts = IndexMap::new();
    for (host, mut first) in prepare_node.hosts {
        if let Some(then) = build.hosts.shift_remove(&host) {
            first.script.extend(then.script);
            first.timeout += then.timeout;
            first.steps = then.steps;
        }
        hosts.insert(host, first);
    }
    hosts.extend(std::mem::take(&mut build.hosts));
    build.hosts = hosts;
}

/// Appends the stage phase to the phase before it (build or prepare) when
/// only a gate separates them; the two gates become one.
pub(super) fn stage_into_build(nodes: &mut Vec<Node>) {
    let Some(stage) = position(nodes, Phase::Stage) else { return };
    let Some(prior) = stage.checked_sub(2) else { return };
    let joinable = matches!(&nodes[prior], Node::Phase(p) if matches!(p.phase, Phase::Build | Phase::Prepare))
        && matches!(nodes[prior + 1], Node::Gate(_));
    if !joinable {
        return;
    }
    let Node::Phase(stage_node) = nodes.remove(stage) else { return };
    nodes.remove(prior + 1);
    if let Node::Phase(build) = &mut nodes[prior] {
        append(build, stage_node.hosts);
    }
    if let Some(Node::Gate(name)) = nodes.get_mut(prior + 1) {
        *name = "every host built and staged";
    }
}

/// Appends the stage phase to the lock phase right before it (a rollback).
/// If staging fails on a host, that host's script gives its lock back.
pub(super) fn stage_into_lock(nodes: &mut Vec<Node>) {
    let Some(stage) = position(nodes, Phase::Stage) else { return };
    if stage == 0 || !matches!(&nodes[stage - 1], Node::Phase(p) if p.phase == Phase::Lock) {
        return;
    }
    let Node::Phase(stage_node) = nodes.remove(stage) else { return };
    if let Node::Phase(lock_node) = &mut nodes[stage - 1] {
        for script in lock_node.hosts.values_mut() {
            script.script.line(lock::RELEASE_ON_FAILURE);
        }
        append(lock_node, stage_node.hosts);
        for script in lock_node.hosts.values_mut() {
            script.script.line(lock::KEEP);
        }
    }
}

/// Joins finalize to the flip right before its gate, when that flip is
/// every host's (all at once, no health check, no step after the switch):
/// each host's flip script holds once it switched and reloaded, and goes
/// on to finalize when the engine lets it (see
/// [`crate::remote::switch::decide_then`]). The gate and the finalize phase
/// then live in the flip; the engine reports them as before.
pub(super) fn finalize_into_flip(nodes: &mut Vec<Node>) {
    let Some(flip) = position(nodes, Phase::Flip) else { return };
    let joinable = matches!(nodes.get(flip + 1), Some(Node::Gate(name)) if *name == DECIDED)
        && matches!(nodes.get(flip + 2), Some(Node::Phase(p)) if p.phase == Phase::Finalize);
    if !joinable || position(&nodes[flip + 1..], Phase::Flip).is_some() {
        return;
    }
    let (Node::Phase(flip_node), Some(Node::Phase(finalize))) = (&nodes[flip], nodes.get(flip + 2)) else { return };
    if !finalize.hosts.keys().all(|h| flip_node.hosts.contains_key(h)) {
        return;
    }
    let Node::Phase(finalize) = nodes.remove(flip + 2) else { return };
    nodes.remove(flip + 1);
    let Node::Phase(flip_node) = &mut nodes[flip] else { return };
    for (host, then) in finalize.hosts {
        if let Some(script) = flip_node.hosts.get_mut(&host) {
            script.script.extend(switch::decide_then(then.script.clone()));
            script.timeout += then.timeout;
            script.then_finalize = Some(then.script);
        }
    }
}

/// Puts a rollback's lock (with its staging) at the head of its flip when
/// the flip is every host's and comes right after the lock's gate (all at
/// once, no drain): each host locks and stages, then says it is ready, and
/// no host is let go unless every host got there. A host that cannot lock
/// or stage gives its lock back itself; the others keep theirs until the
/// engine aborts them.
pub(super) fn lock_into_flip(nodes: &mut Vec<Node>) {
    let joinable = matches!(nodes.first(), Some(Node::Phase(p)) if p.phase == Phase::Lock)
        && matches!(nodes.get(1), Some(Node::Gate(_)))
        && matches!(nodes.get(2), Some(Node::Phase(p)) if p.phase == Phase::Flip)
        && position(&nodes[3..], Phase::Flip).is_none();
    if !joinable {
        return;
    }
    let (Node::Phase(lock_node), Some(Node::Phase(flip))) = (&nodes[0], nodes.get(2)) else { return };
    if lock_node.hosts.len() != flip.hosts.len() || !lock_node.hosts.keys().all(|h| flip.hosts.contains_key(h)) {
        return;
    }
    let Node::Phase(lock_node) = nodes.remove(0) else { return };
    nodes.remove(0);
    let Node::Phase(flip) = &mut nodes[0] else { return };
    for (host, mut first) in lock_node.hosts {
        if let Some(then) = flip.hosts.get_mut(&host) {
            first.script.extend(std::mem::take(&mut then.script));
            then.script = first.script;
            then.timeout += first.timeout;
            then.locks = true;
        }
    }
}

fn position(nodes: &[Node], phase: Phase) -> Option<usize> {
    nodes.iter().position(|n| matches!(n, Node::Phase(p) if p.phase == phase))
}

/// Appends each host's script of `more` to its script in `node` (hosts the
/// node did not have get the appended part alone).
fn append(node: &mut PhaseNode, more: IndexMap<String, HostScript>) {
    for (host, extra) in more {
        match node.hosts.get_mut(&host) {
            Some(script) => {
                script.script.extend(extra.script);
                script.timeout += extra.timeout;
            }
            None => {
                node.hosts.insert(host, extra);
            }
        }
    }
}
