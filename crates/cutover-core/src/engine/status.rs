//! `cutover status` (each host's current release, commit, releases on disk,
//! lock, and whether the fleet drifted apart) and `cutover unlock`.

use indexmap::IndexMap;

use crate::event::{CommandKind, Event, HostSummary, Outcome, Phase, Summary};
use crate::plan::HostScript;
use crate::remote::lock;
use crate::remote::probe::{ProbeRequest, Snapshot};

use super::preflight::{self, Checks};
use super::session::Session;
use super::{Context, Report};

/// Reports every host's state. The outcome is `Inconsistent` when hosts are
/// on different releases, `Failed` when a host could not be read.
pub async fn status(ctx: &Context<'_>) -> Report {
    ctx.emit(Event::RunStarted {
        command: CommandKind::Status,
        application: ctx.loaded.inventory.application.clone(),
        hosts: ctx.fleet.names(),
    });
    let (session, mut failures) = Session::open(ctx);
    let found = preflight::probe(ctx, &session, &ProbeRequest::default(), Checks::None).await;
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
    let summary = Summary { command: CommandKind::Status, outcome, release, message, hosts };
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

/// Removes the deploy lock on every selected host.
pub async fn unlock(ctx: &Context<'_>) -> Report {
    ctx.emit(Event::RunStarted {
        command: CommandKind::Unlock,
        application: ctx.loaded.inventory.application.clone(),
        hosts: ctx.fleet.names(),
    });
    let (session, mut failures) = Session::open(ctx);
    let jobs: IndexMap<String, HostScript> = ctx
        .fleet
        .hosts
        .iter()
        .map(|t| (t.name.clone(), HostScript::new(lock::release(&t.deploy_path), std::time::Duration::from_secs(60))))
        .collect();
    let outcome = session.run_phase(ctx, Phase::Unlock, &jobs, None, false).await;
    session.close().await;
    failures.extend(outcome.failures);
    let hosts = ctx
        .fleet
        .hosts
        .iter()
        .map(|t| {
            let failure = failures.iter().find(|f| f.host == t.name);
            let state = if failure.is_some() { "failed" } else { "unlocked" };
            (
                t.name.clone(),
                HostSummary { state: state.into(), error: failure.map(ToString::to_string), ..HostSummary::default() },
            )
        })
        .collect();
    let outcome = if failures.is_empty() { Outcome::Done } else { Outcome::Failed };
    let summary = Summary {
        command: CommandKind::Unlock,
        outcome,
        release: None,
        message: failures.first().map(ToString::to_string),
        hosts,
    };
    ctx.emit(Event::Summary(summary.clone()));
    Report { summary, failures }
}
