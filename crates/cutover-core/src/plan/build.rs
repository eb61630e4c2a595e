//! Building the plans of a deploy and of a rollback from the inventory, the
//! fleet and what preflight saw on each host. Pure: touches no host.

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;

use crate::cleanup;
use crate::config::inventory::Activation;
use crate::config::{Hook, Inventory, LoadedInventory, Step};
use crate::event::{CommandKind, Phase};
use crate::fleet::{Fleet, Target};
use crate::release::ReleaseId;
use crate::remote::activation::{self, Activating};
use crate::remote::fpm::FpmCommands;
use crate::remote::lock::{self, LockOwner};
use crate::remote::prepare::{self, Delivery, Prepare};
use crate::remote::probe::Snapshot;
use crate::remote::steps::{self, StepEnv};
use crate::remote::{end, supervise, switch};
use crate::secrets;
use crate::shell::Script;

use super::fuse;
use super::switch::{self as switching, Rollout};
use super::{HostScript, Node, PhaseNode, Plan, Scope, StepInfo, StepLabel};

/// The time limit of phases that only move links and files.
const QUICK: Duration = Duration::from_secs(60);

/// What a deploy plan is built from.
#[derive(Debug)]
pub struct DeployInputs<'a> {
    pub loaded: &'a LoadedInventory,
    pub fleet: &'a Fleet,
    pub snapshots: &'a IndexMap<String, Snapshot>,
    /// Per host, the PHP-FPM commands preflight chose.
    pub fpm: &'a IndexMap<String, FpmCommands>,
    pub release: ReleaseId,
    pub commit: String,
    pub delivery: Delivery,
    pub payload: Option<Arc<[u8]>>,
    pub owner: LockOwner,
    pub rollout: Rollout,
    /// Reuse nothing from the live release (`--full-build`).
    pub full_build: bool,
}

/// What a rollback plan is built from.
#[derive(Debug)]
pub struct RollbackInputs<'a> {
    pub loaded: &'a LoadedInventory,
    pub fleet: &'a Fleet,
    pub snapshots: &'a IndexMap<String, Snapshot>,
    /// Per host, the PHP-FPM commands preflight chose.
    pub fpm: &'a IndexMap<String, FpmCommands>,
    pub target: ReleaseId,
    pub owner: LockOwner,
    pub rollout: Rollout,
}

/// The plan of a deploy.
pub fn deploy(i: DeployInputs<'_>) -> Plan {
    let inv = &i.loaded.inventory;
    let step_timeout = Duration::from_secs(inv.step_timeout.value);
    let every = |f: &dyn Fn(&Target) -> HostScript| -> IndexMap<String, HostScript> {
        i.fleet.hosts.iter().map(|t| (t.name.clone(), f(t))).collect()
    };
    let owner = &i.owner;
    let lock = every(&|t| {
        let mut script = lock::acquire(&t.deploy_path, owner, current_of(i.snapshots, t));
        activation::install(&mut script, activating(i.fpm, t), None);
        HostScript::new(script, QUICK)
    });
    let (shared_dirs, shared_files, rendered) = (inv.shared.dirs(), inv.shared.files(), inv.shared.rendered());
    let prepare = every(&|t| {
        let p = Prepare {
            release: i.release,
            commit: &i.commit,
            delivery: &i.delivery,
            shared_dirs: &shared_dirs,
            shared_files: &shared_files,
            create_missing: inv.shared.create_missing,
            rendered: &rendered,
            owner,
        };
        HostScript {
            upload: i.delivery == Delivery::Upload,
            rendered: !rendered.is_empty(),
            ..HostScript::new(prepare::script(&t.deploy_path, &p), step_timeout)
        }
    });
    let mut nodes = vec![phase(Phase::Lock, lock), phase(Phase::Prepare, prepare)];
    nodes.extend(hook(&i, Hook::Build, i.release));
    nodes.push(Node::Gate("every host built"));
    nodes.extend(hook(&i, Hook::BeforeFlip, i.release));
    nodes.push(phase(
        Phase::Stage,
        every(&|t| {
            let config_test = config_test_of(i.fpm, t);
            let mut script = switch::stage(&t.deploy_path, owner, i.release, config_test, Some(&i.commit));
            activation::stage(&mut script, activating(i.fpm, t));
            HostScript::new(script, stage_limit(i.fpm, t))
        }),
    ));
    nodes.push(Node::Gate("every host staged"));
    let (switch_nodes, batches) = switching::nodes(i.loaded, i.fleet, i.fpm, &i.rollout, owner);
    nodes.extend(switch_nodes);
    nodes.extend(hook(&i, Hook::AfterFlip, i.release));
    nodes.push(Node::Gate(super::DECIDED));
    let log_line = log_line("deploy", &i.release.to_string(), &i.commit, &i.owner);
    nodes.push(phase(
        Phase::Finalize,
        every(&|t| {
            let snap = i.snapshots.get(&t.name).cloned().unwrap_or_default();
            let mut on_disk = snap.releases.clone();
            on_disk.push(i.release);
            let mut prune = cleanup::prune(&on_disk, inv.keep_releases.value as usize, i.release, snap.current());
            // Releases that never finished building (a run that died).
            prune.extend(snap.partial.iter().filter(|r| Some(**r) != snap.current()));
            // Newer than the release this deploy replaces, and not left by
            // a rollback: a run that failed after building them.
            let never_live: Vec<ReleaseId> = snap
                .releases
                .iter()
                .filter(|r| snap.current().is_some_and(|before| **r > before))
                .filter(|r| **r != i.release && !snap.rolled_back.contains(r) && !prune.contains(r))
                .copied()
                .collect();
            // The old master is drained once the lock is released: its wait
            // for requests in flight holds nobody up.
            let mut script = end::finalize(&t.deploy_path, owner, &log_line, &prune, &never_live);
            script.extend(activation::drain_old(activating(i.fpm, t)));
            HostScript::new(script, finalize_limit(i.fpm, t))
        }),
    ));
    fuse::prepare_into_build(&mut nodes);
    if !nodes.iter().any(|n| matches!(n, Node::Phase(p) if p.phase == Phase::BeforeFlip)) {
        fuse::stage_into_build(&mut nodes);
    }
    fuse::finalize_into_flip(&mut nodes);
    mark_work(&mut nodes, i.fleet, owner);
    read_secrets_first(&mut nodes, inv);
    Plan {
        command: CommandKind::Deploy,
        application: inv.application.clone(),
        release: i.release,
        commit: i.commit.clone(),
        nodes,
        abort: every(&|t| {
            let stop = activation::stop_idle(activating(i.fpm, t));
            HostScript::new(end::abort(&t.deploy_path, owner, i.release, stop), QUICK)
        }),
        undo: undo(i.fleet, i.snapshots, i.fpm, owner),
        reload: switching::reloads(i.fleet, i.fpm),
        fpm: i.fpm.clone(),
        secrets: inv.secrets.keys().cloned().collect(),
        local_hooks: (inv.local_hooks.before.clone(), inv.local_hooks.after.clone()),
        before: before(i.snapshots),
        payload: i.payload.clone(),
        rollout: i.rollout.clone(),
        batches,
    }
}

/// The plan of a rollback to `target`.
pub fn rollback(i: RollbackInputs<'_>) -> Plan {
    let inv = &i.loaded.inventory;
    let every = |f: &dyn Fn(&Target) -> HostScript| -> IndexMap<String, HostScript> {
        i.fleet.hosts.iter().map(|t| (t.name.clone(), f(t))).collect()
    };
    let commit = String::new();
    let owner = &i.owner;
    let mut nodes = vec![
        phase(
            Phase::Lock,
            every(&|t| {
                let mut script = lock::acquire(&t.deploy_path, owner, current_of(i.snapshots, t));
                activation::install(&mut script, activating(i.fpm, t), Some(&i.target.to_string()));
                HostScript::new(script, QUICK)
            }),
        ),
        phase(
            Phase::Stage,
            every(&|t| {
                let config_test = config_test_of(i.fpm, t);
                let mut script = switch::stage(&t.deploy_path, owner, i.target, config_test, None);
                activation::stage(&mut script, activating(i.fpm, t));
                HostScript::new(script, stage_limit(i.fpm, t))
            }),
        ),
        Node::Gate("every host staged"),
    ];
    let (switch_nodes, batches) = switching::nodes(i.loaded, i.fleet, i.fpm, &i.rollout, owner);
    nodes.extend(switch_nodes);
    let deploy_like = DeployInputs {
        loaded: i.loaded,
        fleet: i.fleet,
        snapshots: i.snapshots,
        fpm: i.fpm,
        release: i.target,
        commit: commit.clone(),
        delivery: Delivery::Upload,
        payload: None,
        owner: i.owner.clone(),
        rollout: i.rollout.clone(),
        full_build: false,
    };
    nodes.extend(hook(&deploy_like, Hook::AfterRollback, i.target));
    nodes.push(Node::Gate(super::DECIDED));
    let log_line = log_line("rollback", &i.target.to_string(), "", &i.owner);
    nodes.push(phase(
        Phase::Finalize,
        every(&|t| {
            // The releases gone back over: newer than the target, up to the
            // one that was live (a `--to` a newer one goes forward: none).
            let snap = i.snapshots.get(&t.name);
            let live = snap.and_then(|s| s.current());
            let left: Vec<ReleaseId> = snap
                .map(|s| s.releases.iter().copied().filter(|r| *r > i.target && Some(*r) <= live).collect())
                .unwrap_or_default();
            let mut script = end::finalize_rollback(&t.deploy_path, owner, &log_line, i.target, &left);
            script.extend(activation::drain_old(activating(i.fpm, t)));
            HostScript::new(script, finalize_limit(i.fpm, t))
        }),
    ));
    fuse::stage_into_lock(&mut nodes);
    fuse::finalize_into_flip(&mut nodes);
    fuse::lock_into_flip(&mut nodes);
    mark_work(&mut nodes, i.fleet, owner);
    read_secrets_first(&mut nodes, inv);
    Plan {
        command: CommandKind::Rollback,
        application: inv.application.clone(),
        release: i.target,
        commit,
        nodes,
        abort: every(&|t| {
            let stop = activation::stop_idle(activating(i.fpm, t));
            HostScript::new(end::unlock_only(&t.deploy_path, owner, stop), QUICK)
        }),
        undo: undo(i.fleet, i.snapshots, i.fpm, owner),
        reload: switching::reloads(i.fleet, i.fpm),
        fpm: i.fpm.clone(),
        secrets: inv.secrets.keys().cloned().collect(),
        local_hooks: (inv.local_hooks.before.clone(), inv.local_hooks.after.clone()),
        before: before(i.snapshots),
        payload: None,
        rollout: i.rollout.clone(),
        batches,
    }
}

fn phase(phase: Phase, hosts: IndexMap<String, HostScript>) -> Node {
    Node::Phase(PhaseNode { phase, batch: None, steps: Vec::new(), hosts })
}

/// The steps of `hook` (recipe first, then the inventory's own), per host.
fn hook(i: &DeployInputs<'_>, hook: Hook, release: ReleaseId) -> Option<Node> {
    let inv = &i.loaded.inventory;
    let all: Vec<&Step> = i.loaded.recipe.hooks.steps(hook).iter().chain(inv.hooks.steps(hook)).collect();
    if all.is_empty() {
        return None;
    }
    let primary = i.fleet.primary().name.clone();
    let steps = all
        .iter()
        .map(|s| StepInfo {
            name: s.name.clone(),
            reuse: s.reuse,
            scope: if s.once {
                Scope::Once(primary.clone())
            } else if !s.roles.is_empty() {
                Scope::Roles(s.roles.clone())
            } else {
                Scope::Every
            },
        })
        .collect();
    let mut hosts = IndexMap::new();
    for target in &i.fleet.hosts {
        let mine: Vec<&Step> = all
            .iter()
            .copied()
            .filter(|s| !s.once || i.fleet.is_primary(target))
            .filter(|s| s.roles.is_empty() || s.roles.iter().any(|r| target.roles.contains(r)))
            .collect();
        let env = StepEnv {
            host: &target.name,
            release,
            revision: &i.commit,
            vars: target.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            default_timeout: inv.step_timeout.value,
            full_build: i.full_build,
            owner: &i.owner,
        };
        if let Some(script) = steps::script(&target.deploy_path, &mine, &env) {
            let limit = |s: &Step| Duration::from_secs(s.timeout.as_ref().map_or(inv.step_timeout.value, |t| t.value));
            let timeout = mine.iter().map(|s| limit(s)).sum();
            let names = mine.iter().map(|s| StepLabel { name: s.name.clone(), timeout: limit(s) }).collect();
            hosts.insert(target.name.clone(), HostScript { steps: names, ..HostScript::new(script, timeout) });
        }
    }
    let phase = match hook {
        Hook::Build => Phase::Build,
        Hook::BeforeFlip => Phase::BeforeFlip,
        Hook::AfterFlip => Phase::AfterFlip,
        Hook::AfterRollback => Phase::AfterRollback,
    };
    Some(Node::Phase(PhaseNode { phase, batch: None, steps, hosts }))
}

fn undo(
    fleet: &Fleet,
    snapshots: &IndexMap<String, Snapshot>,
    fpm: &IndexMap<String, FpmCommands>,
    owner: &LockOwner,
) -> IndexMap<String, HostScript> {
    fleet
        .hosts
        .iter()
        .map(|t| {
            let previous = snapshots.get(&t.name).and_then(|s| s.current_target.as_deref());
            let mut script = switch::undo(&t.deploy_path, owner, previous);
            activation::undo_link(&mut script, activating(fpm, t));
            (t.name.clone(), HostScript::new(script, QUICK))
        })
        .collect()
}

/// A host's activation, as preflight resolved it (`reload` for a host it
/// did not resolve).
fn activating<'a>(fpm: &'a IndexMap<String, FpmCommands>, target: &Target) -> &'a Activating {
    static NONE: std::sync::OnceLock<Activating> = std::sync::OnceLock::new();
    fpm.get(&target.name).map_or_else(|| NONE.get_or_init(Activating::default), |f| &f.activation)
}

/// The time limit of staging: longer where a pool is warmed (and with
/// blue-green, a master started).
fn stage_limit(fpm: &IndexMap<String, FpmCommands>, target: &Target) -> Duration {
    match activating(fpm, target).activation {
        Activation::Reload => QUICK,
        Activation::Warm | Activation::BlueGreen => QUICK * 5,
    }
}

/// The time limit of finalize: longer where the old master is drained
/// (its requests in flight finish first).
fn finalize_limit(fpm: &IndexMap<String, FpmCommands>, target: &Target) -> Duration {
    match activating(fpm, target).activation {
        Activation::BlueGreen => QUICK * 5,
        Activation::Reload | Activation::Warm => QUICK,
    }
}

/// Marks the scripts of the run's work with the run's jobs file, which
/// their supervisors hold while they run.
fn mark_work(nodes: &mut [Node], fleet: &Fleet, owner: &LockOwner) {
    for node in nodes {
        let Node::Phase(p) = node else { continue };
        if !supervise::is_work(p.phase) {
            continue;
        }
        for (host, script) in &mut p.hosts {
            let target = fleet.hosts.iter().find(|t| &t.name == host);
            script.jobs = target.map(|t| supervise::jobs_file(&t.deploy_path, &owner.token));
        }
    }
}

/// A host's PHP-FPM config test, if any.
fn config_test_of<'a>(fpm: &'a IndexMap<String, FpmCommands>, target: &Target) -> Option<&'a str> {
    fpm.get(&target.name).and_then(|f| f.config_test.as_deref())
}

/// Puts the reading of the run's secrets first in every script that runs
/// the user's steps (or a batch hook on the hosts): they reach the steps
/// through stdin, never through a command line.
fn read_secrets_first(nodes: &mut [Node], inv: &Inventory) {
    if inv.secrets.is_empty() && inv.shared.render.is_empty() {
        return;
    }
    for node in nodes {
        let Node::Phase(p) = node else { continue };
        let runs_steps = matches!(
            p.phase,
            Phase::Build | Phase::BeforeFlip | Phase::AfterFlip | Phase::AfterRollback | Phase::Drain | Phase::Undrain
        );
        for job in p.hosts.values_mut() {
            // The prepare part (alone, or at the head of the build) writes
            // the rendered files.
            if !(runs_steps || job.rendered) {
                continue;
            }
            let mut script = Script::new();
            script.line(secrets::PROLOGUE);
            script.extend(std::mem::replace(&mut job.script, Script::new()));
            job.script = script;
            job.secrets = true;
        }
    }
}

/// Where preflight saw a host's `current` point.
fn current_of<'a>(snapshots: &'a IndexMap<String, Snapshot>, target: &Target) -> Option<&'a str> {
    snapshots.get(&target.name).and_then(|s| s.current_target.as_deref())
}

fn before(snapshots: &IndexMap<String, Snapshot>) -> IndexMap<String, Option<String>> {
    snapshots.iter().map(|(name, s)| (name.clone(), s.current_target.clone())).collect()
}

/// One line of revisions.log: time, what, release, commit, who.
fn log_line(what: &str, release: &str, commit: &str, owner: &LockOwner) -> String {
    let commit = if commit.is_empty() { "-" } else { commit };
    let at = owner.since.strftime("%Y-%m-%dT%H:%M:%SZ");
    let line = format!("{at}\t{what}\t{release}\t{commit}\t{}@{}", owner.user, owner.machine);
    // The environment, when the inventory has them, as a sixth field.
    match &owner.environment {
        Some(environment) => format!("{line}\t{environment}"),
        None => line,
    }
}
