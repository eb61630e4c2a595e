//! The switching part of a plan: all at once (flip and reload every host,
//! check), or rolling (per batch: drain, flip and reload, check, undrain,
//! pause). Shared by deploys and rollbacks.

use std::time::Duration;

use indexmap::IndexMap;

use crate::config::inventory::Strategy;
use crate::config::rollout::{BatchHook, HookPlace};
use crate::config::{BatchSpec, LoadedInventory, OnFailure};
use crate::event::Phase;
use crate::fleet::{Fleet, Target};
use crate::remote::fpm::FpmCommands;
use crate::remote::lock::{self, LockOwner};
use crate::remote::{activation, health, switch};
use crate::shell::{Script, Sh};

use super::{HostScript, LocalHook, Node, PhaseNode, StepLabel};

/// The time limit of phases that only move links.
const QUICK: Duration = Duration::from_secs(60);

/// How the fleet switches, after the command line's overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollout {
    pub strategy: Strategy,
    pub batch: BatchSpec,
    pub on_failure: OnFailure,
}

impl Rollout {
    /// The inventory's rollout, with `--mode` and `--batch` over it.
    pub fn new(loaded: &LoadedInventory, mode: Option<Strategy>, batch: Option<BatchSpec>) -> Self {
        let inv = &loaded.inventory;
        Self {
            strategy: mode.unwrap_or(inv.strategy.value),
            batch: batch.unwrap_or_else(|| inv.rolling.batch.clone()),
            on_failure: inv.on_failure,
        }
    }

    /// The hosts of each batch, in inventory order.
    pub fn batches<'a>(&self, fleet: &'a Fleet) -> Vec<Vec<&'a Target>> {
        let sizes = match self.strategy {
            Strategy::AllAtOnce => vec![fleet.hosts.len()],
            Strategy::Rolling => self.batch.split(fleet.hosts.len()),
        };
        let mut hosts = fleet.hosts.iter();
        sizes.into_iter().map(|n| hosts.by_ref().take(n).collect()).collect()
    }
}

/// The switch nodes, and the batch of each host.
pub(super) fn nodes(
    loaded: &LoadedInventory,
    fleet: &Fleet,
    fpm: &IndexMap<String, FpmCommands>,
    rollout: &Rollout,
    owner: &LockOwner,
) -> (Vec<Node>, IndexMap<String, usize>) {
    let inv = &loaded.inventory;
    let rolling = rollout.strategy == Strategy::Rolling;
    let batches = rollout.batches(fleet);
    let count = batches.len();
    let mut nodes = Vec::new();
    let mut of_host = IndexMap::new();
    for (index, hosts) in batches.into_iter().enumerate() {
        let batch = index + 1;
        of_host.extend(hosts.iter().map(|t| (t.name.clone(), batch)));
        let tag = rolling.then_some(batch);
        if rolling && let Some(drain) = &inv.rolling.drain {
            nodes.push(hook(Phase::Drain, batch, &hosts, drain, owner));
        }
        // The reload rides in the flip's script, right after the rename and
        // the line that reports it: a failing reload is a switched host.
        let reload = |host: &str| fpm.get(host).and_then(|f| f.reload.as_deref());
        let activating = |host: &str| fpm.get(host).map(|f| f.activation.clone()).unwrap_or_default();
        let mut flip = phase(Phase::Flip, tag, &hosts, |t| {
            let act = activating(&t.name);
            let mut script = switch::flip(&t.deploy_path, owner, activation::flip_link(&act).as_deref());
            if let Some(reload) = reload(&t.name) {
                activation::before_reload(&mut script, &act);
                script.extend(switch::reload_after_flip(reload));
                activation::after_reload(&mut script, &act);
            }
            script
        });
        if let Node::Phase(p) = &mut flip {
            for (host, script) in &mut p.hosts {
                script.held = true;
                if reload(host).is_some() {
                    script.steps = vec![StepLabel { name: switch::RELOAD_STEP.to_owned(), timeout: QUICK }];
                    script.timeout += QUICK;
                    if activating(host).wait_ready {
                        script.steps.push(StepLabel { name: activation::READY_STEP.to_owned(), timeout: QUICK });
                        script.timeout += QUICK;
                    }
                }
            }
        }
        nodes.push(flip);
        if let Some(check) = inv.health_check.as_ref().map(|c| &c.value) {
            let limit = Duration::from_secs((check.timeout + check.interval) * u64::from(check.retries.max(1)) + 30);
            let mut node = phase(Phase::Health, tag, &hosts, |t| health::script(&t.deploy_path, owner, check));
            if let Node::Phase(p) = &mut node {
                p.hosts.values_mut().for_each(|h| h.timeout = limit);
            }
            nodes.push(node);
        }
        if rolling && let Some(undrain) = &inv.rolling.undrain {
            nodes.push(hook(Phase::Undrain, batch, &hosts, undrain, owner));
        }
        if rolling && batch < count && inv.rolling.pause > 0 {
            nodes.push(Node::Pause(Duration::from_secs(inv.rolling.pause)));
        }
    }
    (nodes, of_host)
}

fn phase(phase: Phase, batch: Option<usize>, hosts: &[&Target], script: impl Fn(&Target) -> Script) -> Node {
    let hosts = hosts.iter().map(|t| (t.name.clone(), HostScript::new(script(t), QUICK))).collect();
    Node::Phase(PhaseNode { phase, batch, steps: Vec::new(), hosts })
}

/// A drain or undrain hook, here or on each host of the batch.
fn hook(phase: Phase, batch: usize, hosts: &[&Target], hook: &BatchHook, owner: &LockOwner) -> Node {
    let names: Vec<String> = hosts.iter().map(|t| t.name.clone()).collect();
    let addresses: Vec<String> = hosts.iter().map(|t| t.address.clone()).collect();
    let env = vec![
        ("CUTOVER_BATCH".to_owned(), batch.to_string()),
        ("CUTOVER_BATCH_HOSTS".to_owned(), names.join(" ")),
        ("CUTOVER_BATCH_ADDRESSES".to_owned(), addresses.join(" ")),
    ];
    let timeout = Duration::from_secs(hook.timeout);
    match hook.on {
        HookPlace::Local => {
            Node::Local(LocalHook { phase, step: None, batch, hosts: names, command: hook.run.clone(), env, timeout })
        }
        HookPlace::Hosts => {
            let mut node = phase_with_env(phase, batch, hosts, &env, &hook.run, owner);
            if let Node::Phase(p) = &mut node {
                p.hosts.values_mut().for_each(|h| h.timeout = timeout);
            }
            node
        }
    }
}

fn phase_with_env(
    phase_kind: Phase,
    batch: usize,
    hosts: &[&Target],
    env: &[(String, String)],
    run: &str,
    owner: &LockOwner,
) -> Node {
    phase(phase_kind, Some(batch), hosts, |t| {
        let mut s = Script::new();
        s.assign("d", &t.deploy_path);
        lock::guard(&mut s, owner);
        for (name, value) in env {
            s.push(Sh::new("export").then(Sh::assign(name.clone(), value)));
        }
        s.push(Sh::user_shell(run));
        s
    })
}

/// Each host's reload alone, for putting a host back after a failure.
/// (Blue-green has none: the undo moves the link back to the master still
/// running, and the abort stops the one started for the run.)
pub(super) fn reloads(fleet: &Fleet, fpm: &IndexMap<String, FpmCommands>) -> IndexMap<String, HostScript> {
    fleet
        .hosts
        .iter()
        .filter_map(|t| {
            let reload = fpm.get(&t.name)?.reload.as_deref()?;
            Some((t.name.clone(), HostScript::new(switch::reload(reload), QUICK)))
        })
        .collect()
}
