//! `cutover rollback`: switch the fleet back to the previous release (the
//! one before the fleet's common `current`) or to `--to <release>`.

use crate::config::BatchSpec;
use crate::config::inventory::Strategy;
use crate::event::{CommandKind, Event, Phase};
use crate::plan::{self, Plan, RollbackInputs, Rollout};
use crate::release::ReleaseId;
use crate::remote::lock::LockOwner;
use crate::remote::probe::Snapshot;

use super::around::{self, HookedRun};
use super::deploy::early_report;
use super::failure::{FailureKind, HostFailure};
use super::preflight::{self, Checks};
use super::session::Session;
use super::{Context, Report, execute};

/// What the user asked a rollback for.
#[derive(Clone, Debug, Default)]
pub struct RollbackRequest {
    /// The release to go to; the previous one when `None`.
    pub to: Option<ReleaseId>,
    /// `--mode`: the strategy, over the inventory's.
    pub mode: Option<Strategy>,
    /// `--batch`: rolling batch sizes, over the inventory's.
    pub batch: Option<BatchSpec>,
}

/// Runs a rollback.
pub async fn rollback(ctx: &Context<'_>, request: &RollbackRequest) -> Report {
    ctx.emit(Event::RunStarted {
        command: CommandKind::Rollback,
        application: ctx.loaded.inventory.application.clone(),
        hosts: ctx.fleet.names(),
    });
    let session = Session::open(ctx);
    let mut hooked = None;
    let report = match build(ctx, &session, request, Some(&mut hooked)).await {
        Ok(plan) => execute::execute(ctx, &session, &plan).await,
        Err(report) => report,
    };
    session.close().await;
    around::finish(ctx, hooked.as_ref(), report).await
}

/// Builds the plan a rollback would run, touching nothing (and running no
/// local hook).
pub async fn plan_rollback(ctx: &Context<'_>, request: &RollbackRequest) -> Result<Plan, Report> {
    let session = Session::open(ctx);
    let plan = build(ctx, &session, request, None).await;
    session.close().await;
    if let Err(report) = &plan {
        ctx.emit(Event::Summary(report.summary.clone()));
    }
    plan
}

/// Preflight, the target, the local `before` hooks when running (`hooked`
/// then holds what the `after` hooks are told), the plan.
async fn build(
    ctx: &Context<'_>,
    session: &Session,
    request: &RollbackRequest,
    hooked: Option<&mut Option<HookedRun>>,
) -> Result<Plan, Report> {
    let found =
        preflight::probe(ctx, session, &preflight::request(ctx, None), Checks::Rollback, Phase::Preflight).await;
    let mut failures = found.failures.clone();
    if failures.is_empty() {
        match target(ctx, &found.snapshots, request) {
            Ok(target) => {
                if let Some(slot) = hooked {
                    let run =
                        slot.insert(HookedRun { command: CommandKind::Rollback, release: target, revision: None });
                    if let Err(failure) = around::before(ctx, run).await {
                        return Err(early_report(ctx, CommandKind::Rollback, &found, vec![failure]));
                    }
                }
                let inv = &ctx.loaded.inventory;
                let owner = LockOwner::current(&inv.application, "rollback", Some(target.to_string()))
                    .in_environment(inv.environment.as_deref());
                return Ok(plan::rollback(RollbackInputs {
                    loaded: ctx.loaded,
                    fleet: ctx.fleet,
                    snapshots: &found.snapshots,
                    fpm: &found.fpm,
                    target,
                    owner,
                    rollout: Rollout::new(ctx.loaded, request.mode, request.batch.clone()),
                }));
            }
            Err(failure) => failures.push(failure),
        }
    }
    Err(early_report(ctx, CommandKind::Rollback, &found, failures))
}

/// The release to roll back to, checked to exist on every host. Without
/// `--to`: the hosts must agree on what is current, and the target is the
/// newest release older than it that every host has, provided it is every
/// host's previous release (no host would silently skip one of its own).
fn target(
    ctx: &Context<'_>,
    snapshots: &indexmap::IndexMap<String, Snapshot>,
    request: &RollbackRequest,
) -> Result<ReleaseId, HostFailure> {
    let refuse =
        |host: &str, message: String| HostFailure::new(host, Phase::Preflight, FailureKind::Precondition(message));
    let primary = &ctx.fleet.primary().name;
    let target = match request.to {
        Some(to) => to,
        None => previous_everywhere(snapshots).map_err(|message| refuse(primary, message))?,
    };
    for (host, snapshot) in snapshots {
        if snapshot.partial.contains(&target) {
            return Err(refuse(host, format!("release {target} never finished building on this host")));
        }
        if !snapshot.releases.contains(&target) {
            return Err(refuse(host, format!("release {target} is not on this host")));
        }
    }
    Ok(target)
}

/// The previous release of a fleet that agrees on `current`, or why there is
/// none to take without `--to`, naming each host and what it has.
fn previous_everywhere(snapshots: &indexmap::IndexMap<String, Snapshot>) -> Result<ReleaseId, String> {
    let name = |r: Option<ReleaseId>| r.map_or("nothing".to_owned(), |r| r.to_string());
    let currents: Vec<(&String, Option<ReleaseId>)> = snapshots.iter().map(|(h, s)| (h, s.current())).collect();
    let first = currents.first().and_then(|(_, c)| *c);
    if currents.iter().any(|(_, c)| *c != first) {
        let where_ = currents.iter().map(|(h, c)| format!("{h} on {}", name(*c))).collect::<Vec<_>>().join(", ");
        return Err(format!("the hosts disagree on the current release ({where_}); pass --to <release>"));
    }
    let Some(current) = first else {
        return Err("nothing is deployed yet".to_owned());
    };
    // A release a rollback left is not gone back to without `--to`.
    let older_everywhere = |r: &&ReleaseId| {
        **r < current && snapshots.values().all(|s| s.releases.contains(r) && !s.rolled_back.contains(r))
    };
    let first_releases = snapshots.values().next().map(|s| s.releases.as_slice()).unwrap_or_default();
    let Some(common) = first_releases.iter().rev().find(older_everywhere).copied() else {
        let each = snapshots.iter().map(|(h, s)| format!("{h}: {}", name(s.previous()))).collect::<Vec<_>>();
        return Err(format!(
            "no release older than {current} is on every host (previous releases: {}); pass --to <release>",
            each.join(", ")
        ));
    };
    let ahead: Vec<String> = snapshots
        .iter()
        .filter(|(_, s)| s.previous() != Some(common))
        .map(|(h, s)| format!("{h} has {}", name(s.previous())))
        .collect();
    if !ahead.is_empty() {
        return Err(format!(
            "the hosts disagree on the previous release: {common} is the newest on every host, but {}; \
             pass --to {common} to go back to it everywhere, or --to <release>",
            ahead.join(", ")
        ));
    }
    Ok(common)
}

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;

    use super::*;

    const A: &str = "20261101000000";
    const B: &str = "20261102000000";
    const C: &str = "20261103000000";

    fn host(current: &str, releases: &[&str]) -> Snapshot {
        Snapshot {
            current_target: Some(format!("releases/{current}")),
            releases: releases.iter().map(|r| r.parse().expect("id")).collect(),
            ..Snapshot::default()
        }
    }

    fn fleet(hosts: &[(&str, Snapshot)]) -> IndexMap<String, Snapshot> {
        hosts.iter().map(|(h, s)| ((*h).to_owned(), s.clone())).collect()
    }

    #[test]
    fn takes_the_previous_release_when_every_host_has_it() {
        let hosts = fleet(&[("web1", host(C, &[A, B, C])), ("web2", host(C, &[B, C]))]);
        assert_eq!(previous_everywhere(&hosts).map(|r| r.to_string()), Ok(B.to_owned()));
    }

    #[test]
    fn never_goes_back_to_a_release_a_rollback_left() {
        // A and B deployed, rolled back to A (B marked), C deployed: back to A.
        let left = |mut s: Snapshot| {
            s.rolled_back = vec![B.parse().expect("id")];
            s
        };
        let hosts = fleet(&[("web1", left(host(C, &[A, B, C]))), ("web2", left(host(C, &[A, B, C])))]);
        assert_eq!(previous_everywhere(&hosts).map(|r| r.to_string()), Ok(A.to_owned()));
    }

    #[test]
    fn refuses_when_a_host_would_skip_its_own_previous_release() {
        let hosts = fleet(&[("web1", host(C, &[A, B, C])), ("web2", host(C, &[A, C]))]);
        let refused = previous_everywhere(&hosts).expect_err("refused");
        assert!(refused.contains(&format!("{A} is the newest on every host")), "{refused}");
        assert!(refused.contains(&format!("web1 has {B}")), "{refused}");
        assert!(refused.contains(&format!("--to {A}")), "{refused}");
    }

    #[test]
    fn refuses_when_no_older_release_is_common() {
        let hosts = fleet(&[("web1", host(C, &[B, C])), ("web2", host(C, &[A, C]))]);
        let refused = previous_everywhere(&hosts).expect_err("refused");
        assert!(refused.contains(&format!("web1: {B}, web2: {A}")), "{refused}");
    }

    #[test]
    fn refuses_when_hosts_disagree_on_current() {
        let hosts = fleet(&[("web1", host(C, &[B, C])), ("web2", host(B, &[B, C]))]);
        let refused = previous_everywhere(&hosts).expect_err("refused");
        assert!(refused.contains(&format!("web1 on {C}, web2 on {B}")), "{refused}");
    }
}
