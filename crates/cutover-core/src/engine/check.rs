//! `cutover check`: whether every host is ready for a deploy, changing
//! nothing: what preflight checks (reachable, the deploy path writable, the
//! tools, free disk, shared files, no lock, PHP-FPM and its sudo rule,
//! what the activation needs: `cgi-fcgi`, the pool's socket, blue-green's
//! link), and for git delivery whether each host can reach the repository.
//! Warnings besides: an nginx site serving `current` without
//! `$realpath_root`, and a host clock off this machine's.

use indexmap::IndexMap;

use crate::event::{CommandKind, Event, HostSummary, Outcome, Phase, Summary};
use crate::plan::HostScript;
use crate::remote::prepare::Delivery;
use crate::remote::probe::{self, ProbeRequest, RefLookup, Snapshot};

use super::failure::{FailureKind, HostFailure};
use super::preflight::{self, Checks};
use super::session::{Patience, Session};
use super::{Context, Report};

/// Checks every host. `Done` only when every host is ready.
pub async fn check(ctx: &Context<'_>) -> Report {
    let inv = &ctx.loaded.inventory;
    ctx.emit(Event::RunStarted {
        command: CommandKind::Check,
        application: inv.application.clone(),
        hosts: ctx.fleet.names(),
    });
    let delivery = Delivery::of(inv);
    let session = Session::open(ctx);
    let request = ProbeRequest { serving: true, ..preflight::request(ctx, Some(&delivery)) };
    let asked = jiff::Timestamp::now();
    let found = preflight::probe(ctx, &session, &request, Checks::Deploy, Phase::Preflight).await;
    let answered = jiff::Timestamp::now();
    for (host, snapshot) in &found.snapshots {
        for message in serving_warnings(ctx, host, snapshot, (asked, answered)) {
            ctx.emit(Event::Warning { host: Some(host.clone()), message });
        }
    }
    let mut failures = found.failures.clone();
    if let Delivery::Git { repository } = &delivery {
        // A commit id cannot be looked up with ls-remote: the repository's
        // HEAD says it is reachable.
        let reference = inv.revision.clone().or_else(|| inv.branch.clone()).unwrap_or_else(|| "HEAD".to_owned());
        let reference = if crate::source::is_commit_id(&reference) { "HEAD".to_owned() } else { reference };
        let lookup = RefLookup { repository, reference: &reference };
        let jobs: IndexMap<String, HostScript> = found
            .snapshots
            .keys()
            .map(|host| {
                (host.clone(), HostScript::new(probe::lookup_script(&lookup), std::time::Duration::from_secs(60)))
            })
            .collect();
        let outcome = session.run_phase(ctx, Phase::Resolve, &jobs, None, Patience::UntilInterrupted).await;
        failures.extend(outcome.failures);
        for (host, output) in &outcome.outputs {
            let answer = Snapshot::parse(&output.stdout).lookup;
            let problem = match answer {
                Some(a) if a.exit_code == 0 && a.output.trim().is_empty() => {
                    Some(format!("`{reference}` is not in {repository}"))
                }
                Some(a) if a.exit_code == 0 => None,
                Some(a) => {
                    let said = a.output.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_owned();
                    Some(format!("cannot reach {repository}: {said}"))
                }
                None => Some("no answer from `git ls-remote`".to_owned()),
            };
            if let Some(problem) = problem {
                failures.push(HostFailure::new(host, Phase::Resolve, FailureKind::Precondition(problem)));
            }
        }
    }
    session.close().await;
    let services: Vec<&str> = found.fpm.values().filter_map(|f| f.service.as_deref()).collect();
    if services.windows(2).any(|w| w[0] != w[1]) {
        let each: Vec<String> =
            found.fpm.iter().filter_map(|(h, f)| Some(format!("{h} {}", f.service.as_deref()?))).collect();
        let message = format!("the hosts run different PHP-FPM services: {}", each.join(", "));
        ctx.emit(Event::Warning { host: None, message });
    }
    let hosts = ctx
        .fleet
        .hosts
        .iter()
        .map(|t| {
            let mine: Vec<String> = failures.iter().filter(|f| f.host == t.name).map(ToString::to_string).collect();
            let summary = HostSummary {
                current: found.snapshots.get(&t.name).and_then(Snapshot::current_name),
                state: if mine.is_empty() { "ready" } else { "not ready" }.to_owned(),
                error: (!mine.is_empty()).then(|| mine.join("; ")),
                php_fpm: found.fpm.get(&t.name).filter(|f| f.worth_saying()).cloned(),
                ..HostSummary::default()
            };
            (t.name.clone(), summary)
        })
        .collect();
    let outcome = if failures.is_empty() { Outcome::Done } else { Outcome::Failed };
    let message = failures.first().map(ToString::to_string);
    let summary = Summary { command: CommandKind::Check, outcome, release: None, message, not_undone: None, hosts };
    ctx.emit(Event::Summary(summary.clone()));
    Report { summary, failures }
}

/// How far a host's clock may be from this machine's before check says so.
const CLOCK_SLACK_S: f64 = 2.0;

/// What check says about how a host serves, besides readiness: an nginx
/// site without `$realpath_root`, a clock off this machine's.
/// The host read its clock between `asked` and `answered` (this machine's).
fn serving_warnings(
    ctx: &Context<'_>,
    host: &str,
    s: &Snapshot,
    (asked, answered): (jiff::Timestamp, jiff::Timestamp),
) -> Vec<String> {
    let mut out = Vec::new();
    let current = ctx.fleet.hosts.iter().find(|t| t.name == host).map(|t| format!("{}/current", t.deploy_path));
    for file in &s.nginx_document_root {
        out.push(format!(
            "{file} serves {} without `$realpath_root`: PHP-FPM then runs every release by the same path and \
             OPcache can go on serving the old code; pass `fastcgi_param SCRIPT_FILENAME \
             $realpath_root$fastcgi_script_name;` and `fastcgi_param DOCUMENT_ROOT $realpath_root;` (see \
             docs/nginx-php-fpm.md)",
            current.as_deref().unwrap_or("current")
        ));
    }
    if let Some(clock) = s.clock_ms.map(|ms| ms as f64 / 1000.0) {
        let seconds = |t: jiff::Timestamp| t.as_millisecond() as f64 / 1000.0;
        let offset =
            if clock > seconds(answered) { clock - seconds(answered) } else { (clock - seconds(asked)).min(0.0) };
        if offset.abs() > CLOCK_SLACK_S {
            let way = if offset > 0.0 { "ahead of" } else { "behind" };
            out.push(format!(
                "its clock is {:.1} s {way} this machine's: times in its logs will not match revisions.log (run \
                 NTP or chrony on both)",
                offset.abs()
            ));
        }
    }
    out
}
