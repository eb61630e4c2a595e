//! `cutover rollback`: switch the fleet back to the previous release (the
//! one before the fleet's common `current`) or to `--to <release>`.

use crate::config::BatchSpec;
use crate::config::inventory::Strategy;
use crate::event::{CommandKind, Event, Phase};
use crate::plan::{self, Plan, RollbackInputs, Rollout};
use crate::release::ReleaseId;
use crate::remote::lock::LockOwner;
use crate::remote::probe::Snapshot;

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
    let (session, failures) = Session::open(ctx);
    let report = match build(ctx, &session, failures, request).await {
        Ok(plan) => execute::execute(ctx, &session, &plan).await,
        Err(report) => report,
    };
    session.close().await;
    report
}

/// Builds the plan a rollback would run, touching nothing.
pub async fn plan_rollback(ctx: &Context<'_>, request: &RollbackRequest) -> Result<Plan, Report> {
    let (session, failures) = Session::open(ctx);
    let plan = build(ctx, &session, failures, request).await;
    session.close().await;
    plan
}

async fn build(
    ctx: &Context<'_>,
    session: &Session,
    mut failures: Vec<HostFailure>,
    request: &RollbackRequest,
) -> Result<Plan, Report> {
    let found = preflight::probe(ctx, session, &preflight::request(ctx, None), Checks::Rollback).await;
    failures.extend(found.failures.iter().cloned());
    if failures.is_empty() {
        match target(ctx, &found.snapshots, request) {
            Ok(target) => {
                let owner = LockOwner::current(&ctx.loaded.inventory.application, "rollback", Some(target.to_string()));
                return Ok(plan::rollback(RollbackInputs {
                    loaded: ctx.loaded,
                    fleet: ctx.fleet,
                    snapshots: &found.snapshots,
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

/// The release to roll back to: checked to exist on every host, and, without
/// `--to`, the hosts must agree on what is current.
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
        None => {
            let currents: Vec<(String, Option<ReleaseId>)> =
                snapshots.iter().map(|(h, s)| (h.clone(), s.current())).collect();
            let first = currents.first().and_then(|(_, c)| *c);
            if currents.iter().any(|(_, c)| *c != first) {
                let where_ = currents
                    .iter()
                    .map(|(h, c)| format!("{h} on {}", c.map_or("nothing".to_owned(), |c| c.to_string())))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(refuse(
                    primary,
                    format!("the hosts disagree on the current release ({where_}); pass --to <release>"),
                ));
            }
            let Some(current) = first else {
                return Err(refuse(primary, "nothing is deployed yet".to_owned()));
            };
            let previous =
                snapshots.values().filter_map(|s| s.releases.iter().rev().find(|r| **r < current).copied()).min();
            previous.ok_or_else(|| refuse(primary, format!("no release older than {current} to roll back to")))?
        }
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
