//! `cutover status` (each host's current release, commit, releases on disk,
//! lock, and whether the fleet drifted apart) and `cutover unlock`.

use indexmap::IndexMap;

use crate::event::{CommandKind, Event, HostSummary, Outcome, Phase, Summary};
use crate::plan::HostScript;
use crate::remote::lock::{self, LockOwner};
use crate::remote::probe::{ProbeRequest, Snapshot};

use super::failure::{FailureKind, HostFailure};
use super::preflight::{self, Checks};
use super::session::{Patience, Session};
use super::{Context, Report};

/// Reports every host's state. The outcome is `Inconsistent` when hosts are
/// on different releases, `Failed` when a host could not be read.
pub async fn status(ctx: &Context<'_>) -> Report {
    ctx.emit(Event::RunStarted {
        command: CommandKind::Status,
        application: ctx.loaded.inventory.application.clone(),
        hosts: ctx.fleet.names(),
    });
    let session = Session::open(ctx);
    let mut failures = Vec::new();
    let found = preflight::probe(ctx, &session, &ProbeRequest::default(), Checks::None, Phase::Status).await;
    session.close().await;
    failures.extend(found.failures);
    let mut hosts = IndexMap::new();
    for target in &ctx.fleet.hosts {
        let failure = failures.iter().find(|f| f.host == target.name);
        let summary = match found.snapshots.get(&target.name) {
            Some(snap) => describe(snap),
            None => HostSummary {
                state: "unreachable".into(),
                error: failure.map(ToString::to_string),
                ..HostSummary::default()
            },
        };
        hosts.insert(target.name.clone(), summary);
    }
    let currents: Vec<&Option<String>> = hosts.values().map(|h: &HostSummary| &h.current).collect();
    let drifted = currents.windows(2).any(|w| w[0] != w[1]);
    let (outcome, message) = if !failures.is_empty() {
        (Outcome::Failed, failures.first().map(ToString::to_string))
    } else if drifted {
        (Outcome::Inconsistent, Some("the hosts are on different releases".to_owned()))
    } else {
        (Outcome::Done, None)
    };
    let release = currents.first().and_then(|c| c.as_ref()).and_then(|c| c.parse().ok()).filter(|_| !drifted);
    let summary = Summary {
        environment: ctx.environment(),
        command: CommandKind::Status,
        outcome,
        release,
        message,
        not_undone: None,
        hosts,
    };
    ctx.emit(Event::Summary(summary.clone()));
    Report { summary, failures }
}

fn describe(snap: &Snapshot) -> HostSummary {
    HostSummary {
        current: snap.current_name(),
        state: if snap.lock.is_some() {
            "locked"
        } else if snap.current().is_some() {
            "deployed"
        } else {
            "empty"
        }
        .into(),
        commit: snap.revision.clone(),
        releases: Some(snap.releases.iter().map(ToString::to_string).collect()),
        lock: Some(snap.lock.clone().unwrap_or(serde_json::Value::Null)),
        ..HostSummary::default()
    }
}

/// The locks `cutover unlock` found: per host, who holds it.
pub type HeldLocks = [(String, String)];

/// Removes the deploy lock on every selected host that has one, once
/// `confirm` accepted the list of hosts and owners. Only the lock shown is
/// removed: one another run took after the question is left alone.
pub async fn unlock(ctx: &Context<'_>, confirm: &(dyn Fn(&HeldLocks) -> bool + Sync)) -> Report {
    ctx.emit(Event::RunStarted {
        command: CommandKind::Unlock,
        application: ctx.loaded.inventory.application.clone(),
        hosts: ctx.fleet.names(),
    });
    let session = Session::open(ctx);
    let mut failures = Vec::new();
    let found = preflight::probe(ctx, &session, &ProbeRequest::default(), Checks::None, Phase::Status).await;
    failures.extend(found.failures);
    let held: Vec<(String, serde_json::Value)> =
        found.snapshots.iter().filter_map(|(h, s)| Some((h.clone(), s.lock.clone()?))).collect();
    let shown: Vec<(String, String)> = held.iter().map(|(h, o)| (h.clone(), LockOwner::describe(o))).collect();
    let mut removed = Vec::new();
    if !held.is_empty() && failures.is_empty() {
        if confirm(&shown) {
            let jobs: IndexMap<String, HostScript> = ctx
                .fleet
                .hosts
                .iter()
                .filter_map(|t| {
                    let owner = &held.iter().find(|(h, _)| *h == t.name)?.1;
                    let script = lock::release_seen(&t.deploy_path, lock::token_of(owner));
                    Some((t.name.clone(), HostScript::new(script, std::time::Duration::from_secs(60))))
                })
                .collect();
            let outcome = session.run_phase(ctx, Phase::Unlock, &jobs, None, Patience::ToTheEnd).await;
            for host in outcome.outputs.into_keys() {
                let owner = shown.iter().find(|(h, _)| *h == host).map(|(_, o)| o.clone()).unwrap_or_default();
                let message = format!("removed the lock held by {owner}");
                ctx.emit(Event::Warning { host: Some(host.clone()), message });
                removed.push(host);
            }
            failures.extend(outcome.failures.into_iter().map(|f| match f.kind {
                FailureKind::CommandFailed { exit_code: Some(lock::LOCK_LOST), output_tail } => {
                    let owner = LockOwner::describe(&lock::held_by(&output_tail));
                    let kind = FailureKind::Precondition(format!("left alone: a run took the lock since ({owner})"));
                    HostFailure::new(&f.host, Phase::Unlock, kind)
                }
                _ => f,
            }));
        } else {
            failures.push(HostFailure::new(
                super::LOCAL,
                Phase::Unlock,
                FailureKind::Precondition("not confirmed; pass --yes to remove the locks shown".into()),
            ));
        }
    }
    session.close().await;
    let hosts = ctx
        .fleet
        .hosts
        .iter()
        .map(|t| {
            let failure = failures.iter().find(|f| f.host == t.name);
            let owner = held.iter().find(|(h, _)| *h == t.name).map(|(_, o)| o.clone());
            let state = match (failure, removed.contains(&t.name), &owner) {
                (Some(_), _, _) => "failed",
                (None, true, _) => "unlocked",
                (None, false, Some(_)) => "locked",
                (None, false, None) => "not locked",
            };
            let summary = HostSummary {
                state: state.into(),
                // The lock as it is now: none where it was removed.
                lock: owner.filter(|_| !removed.contains(&t.name)),
                error: failure.map(ToString::to_string),
                ..HostSummary::default()
            };
            (t.name.clone(), summary)
        })
        .collect();
    let outcome = if failures.is_empty() { Outcome::Done } else { Outcome::Failed };
    let summary = Summary {
        environment: ctx.environment(),
        command: CommandKind::Unlock,
        outcome,
        release: None,
        message: failures.first().map(ToString::to_string),
        not_undone: None,
        hosts,
    };
    ctx.emit(Event::Summary(summary.clone()));
    Report { summary, failures }
}
