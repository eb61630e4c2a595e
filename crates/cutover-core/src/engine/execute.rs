//! Executing a plan: run forward until it ends or fails, compensate from
//! the state if it failed, then summarize. After a failure that reached the
//! switch, each host's `current` is read again for the summary rather than
//! assumed, and a rollback counts only if every host is back where it was.

use indexmap::IndexMap;

use crate::event::{Event, HostSummary, Outcome, Phase, Summary};
use crate::plan::Plan;
use crate::remote::probe::{ProbeRequest, Snapshot};

use super::forward::{self, Stop};
use super::preflight::{self, Checks};
use super::session::Session;
use super::state::{RunState, Standing};
use super::{Context, Report, compensate};

/// Runs `plan` on an open session and reports how it ended.
pub(crate) async fn execute(ctx: &Context<'_>, session: &Session, plan: &Plan) -> Report {
    let mut state = RunState::new(ctx.fleet);
    let outcome = match forward::run(ctx, session, plan, &mut state).await {
        Stop::Completed => Outcome::Done,
        Stop::Failed { at } => compensate::run(ctx, session, plan, &mut state, at).await,
    };
    finish(ctx, session, plan, state, outcome).await
}

/// Builds and returns the summary (the command emits it, after its
/// `after` local hooks).
async fn finish(ctx: &Context<'_>, session: &Session, plan: &Plan, state: RunState, outcome: Outcome) -> Report {
    for message in &state.warnings {
        ctx.emit(Event::Warning { host: None, message: message.clone() });
    }
    let mut outcome = outcome;
    let mut fresh: IndexMap<String, Snapshot> = IndexMap::new();
    if matches!(outcome, Outcome::RolledBack | Outcome::Halted) {
        fresh = preflight::probe(ctx, session, &ProbeRequest::default(), Checks::None, Phase::ReadBack).await.snapshots;
        let all_back = ctx.fleet.hosts.iter().all(|t| {
            let before = plan.before.get(&t.name).cloned().flatten();
            fresh.get(&t.name).is_some_and(|snap| snap.current_target == before)
        });
        if outcome == Outcome::RolledBack && !all_back {
            outcome = Outcome::Inconsistent;
        }
    }
    let hosts = ctx.fleet.hosts.iter().map(|t| (t.name.clone(), host_summary(plan, &state, &fresh, outcome, &t.name)));
    let not_undone = (state.irreversible_ran && outcome != Outcome::Done).then(|| {
        "before_flip steps ran (migrations): the code is back where it was, but what they changed is not undone"
            .to_owned()
    });
    let summary = Summary {
        environment: ctx.environment(),
        command: plan.command,
        outcome,
        release: Some(plan.release),
        message: state.failures.first().map(ToString::to_string),
        not_undone,
        hosts: hosts.collect(),
    };
    Report { summary, failures: state.failures }
}

fn host_summary(
    plan: &Plan,
    state: &RunState,
    fresh: &IndexMap<String, Snapshot>,
    outcome: Outcome,
    name: &str,
) -> HostSummary {
    let failure = state.failures.iter().find(|f| f.host == name);
    let before = plan.before.get(name).cloned().flatten();
    let (current, label) = match (outcome, fresh.get(name)) {
        (Outcome::Done, _) => (Some(plan.release.to_string()), "switched"),
        (_, Some(snap)) => {
            let label = if snap.current_target == before { "unchanged" } else { "switched" };
            (snap.current_name(), label)
        }
        (Outcome::RolledBack | Outcome::Inconsistent | Outcome::Halted, None) => (None, "unknown"),
        _ if state.state(name) == Standing::MaybeSwitched => (None, "unknown"),
        _ => (plan.before_name(name), if failure.is_some() { "failed" } else { "unchanged" }),
    };
    HostSummary {
        current,
        state: label.to_owned(),
        error: failure.map(ToString::to_string),
        batch: plan.batches.get(name).copied(),
        switched_at: state.switched_at.get(name).copied(),
        health: state.health.get(name).cloned(),
        php_fpm: plan.fpm.get(name).filter(|f| f.worth_saying()).cloned(),
        ..HostSummary::default()
    }
}
