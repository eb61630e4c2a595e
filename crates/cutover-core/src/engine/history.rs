//! `cutover releases`: the releases on each host, with their commit, when
//! and by whom they were deployed (from revisions.log), and which is live.
//! Reads only.

use indexmap::IndexMap;

use crate::event::{CommandKind, Event, HostSummary, Outcome, Phase, ReleaseRecord, Summary};
use crate::remote::probe::{ProbeRequest, Snapshot};

use super::preflight::{self, Checks};
use super::session::Session;
use super::{Context, Report};

/// Reads every host's releases. `Failed` when a host could not be read.
pub async fn releases(ctx: &Context<'_>) -> Report {
    ctx.emit(Event::RunStarted {
        command: CommandKind::Releases,
        application: ctx.loaded.inventory.application.clone(),
        hosts: ctx.fleet.names(),
    });
    let session = Session::open(ctx);
    let request = ProbeRequest { history: true, ..ProbeRequest::default() };
    let found = preflight::probe(ctx, &session, &request, Checks::None, Phase::Status).await;
    session.close().await;
    let hosts: IndexMap<String, HostSummary> = ctx
        .fleet
        .hosts
        .iter()
        .map(|t| {
            let failure = found.failures.iter().find(|f| f.host == t.name);
            let summary = match found.snapshots.get(&t.name) {
                Some(snap) => HostSummary {
                    current: snap.current_name(),
                    state: "read".to_owned(),
                    history: Some(records(snap)),
                    ..HostSummary::default()
                },
                None => HostSummary {
                    state: "unreachable".to_owned(),
                    error: failure.map(ToString::to_string),
                    ..HostSummary::default()
                },
            };
            (t.name.clone(), summary)
        })
        .collect();
    let outcome = if found.failures.is_empty() { Outcome::Done } else { Outcome::Failed };
    let message = found.failures.first().map(ToString::to_string);
    let summary = Summary { command: CommandKind::Releases, outcome, release: None, message, not_undone: None, hosts };
    ctx.emit(Event::Summary(summary.clone()));
    Report { summary, failures: found.failures }
}

/// A host's releases, oldest first, each with its deploy's line of
/// revisions.log (`time, what, release, commit, who`) when there is one.
fn records(snap: &Snapshot) -> Vec<ReleaseRecord> {
    let mut deployed: IndexMap<&str, (&str, &str)> = IndexMap::new();
    for line in &snap.revision_log {
        let fields: Vec<&str> = line.split('\t').collect();
        if let [at, "deploy", release, _, who] = fields.as_slice() {
            deployed.insert(release, (at, who));
        }
    }
    let current = snap.current();
    snap.release_commits
        .iter()
        .map(|(id, commit)| {
            let name = id.to_string();
            let line = deployed.get(name.as_str());
            ReleaseRecord {
                commit: commit.clone(),
                deployed_at: line.map(|(at, _)| (*at).to_owned()),
                deployed_by: line.map(|(_, who)| (*who).to_owned()),
                current: Some(*id) == current,
                release: name,
            }
        })
        .collect()
}
