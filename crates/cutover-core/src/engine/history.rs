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
    let summary = Summary {
        environment: ctx.environment(),
        command: CommandKind::Releases,
        outcome,
        release: None,
        message,
        not_undone: None,
        hosts,
    };
    ctx.emit(Event::Summary(summary.clone()));
    Report { summary, failures: found.failures }
}

/// A host's releases, oldest first (Deployer's adopted ones before
/// cutover's), each with its deploy's line of revisions.log (`time, what,
/// release, commit, who`) or, for Deployer's, of `.dep/releases_log`.
fn records(snap: &Snapshot) -> Vec<ReleaseRecord> {
    let mut deployed: IndexMap<String, (String, String)> = IndexMap::new();
    for line in &snap.revision_log {
        let fields: Vec<&str> = line.split('\t').collect();
        // A sixth field names the environment, when the inventory has them.
        if let [at, "deploy", release, _, who, ..] = fields.as_slice() {
            deployed.insert((*release).to_owned(), ((*at).to_owned(), (*who).to_owned()));
        }
    }
    for logged in &snap.deployer_log {
        let at = logged.created_at.clone().unwrap_or_default();
        let who = format!("{} (Deployer)", logged.user.as_deref().unwrap_or("someone"));
        deployed.insert(logged.release_name.clone(), (at, who));
    }
    let current = snap.current();
    snap.releases
        .iter()
        .map(|id| {
            let name = id.to_string();
            let line = deployed.get(&name);
            let commit = snap.release_commits.iter().find(|(r, _)| r == id).map(|(_, c)| c.clone());
            ReleaseRecord {
                commit: commit.unwrap_or_default(),
                deployed_at: line.map(|(at, _)| at.clone()),
                deployed_by: line.map(|(_, who)| who.clone()),
                current: Some(*id) == current,
                rolled_back: snap.rolled_back.contains(id),
                release: name,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployers_releases_come_first_with_their_log_and_a_bad_one_is_marked() {
        let out = "current /var/www/app/releases/3\nrelease 1\nrelease 2\npartial 3\n\
                   release 20261204101010\nrolled-back 2\n\
                   dep-log {\"created_at\":\"2026-11-01T10:00:00+0000\",\"release_name\":\"1\",\"user\":\"anton\"}\n\
                   dep-log {\"release_name\":\"2\",\"user\":\"anton\"}\ndep-log {\"release_name\":\"3\",\"user\":\"bea\"}\n\
                   release-commit 1 aaa\nrelease-commit 2 bbb\nrelease-commit 20261204101010 ccc\n\
                   revision-log 2026-12-04T10:10:10Z\tdeploy\t20261204101010\tccc\tcarol\n";
        let records = records(&Snapshot::parse(out));
        let names: Vec<&str> = records.iter().map(|r| r.release.as_str()).collect();
        assert_eq!(names, ["1", "2", "3", "20261204101010"]);
        assert_eq!(records[0].deployed_by.as_deref(), Some("anton (Deployer)"));
        assert_eq!(records[0].deployed_at.as_deref(), Some("2026-11-01T10:00:00+0000"));
        assert!(records[1].rolled_back && !records[0].rolled_back);
        assert!(records[2].current, "current may be written absolute, as Deployer does");
        assert_eq!(records[3].deployed_by.as_deref(), Some("carol"));
    }
}
