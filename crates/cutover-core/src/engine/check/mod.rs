//! `cutover check`: whether every host is ready for a deploy, changing
//! nothing: what preflight checks (reachable, the deploy path writable, the
//! tools, free disk, shared files, no lock, PHP-FPM and its sudo rule,
//! what the activation needs: `cgi-fcgi`, the pool's socket, blue-green's
//! link), and for git delivery whether each host can reach the repository.
//! PHP-FPM's config test, which changes nothing either. The PHP version the
//! same on every host. Warnings besides, about how
//! the hosts serve (see [`serving`]).

mod serving;

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
        let fpm = found.fpm.get(host);
        for message in serving::warnings(ctx, host, snapshot, fpm, (asked, answered)) {
            ctx.emit(Event::Warning { host: Some(host.clone()), message });
        }
    }
    for message in serving::fleet_warnings(&found.snapshots, &found.fpm) {
        ctx.emit(Event::Warning { host: None, message });
    }
    let mut failures = found.failures.clone();
    failures.extend(serving::php_versions_apart(&found.snapshots, &found.fpm));
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
    failures.extend(config_tests(ctx, &session, &found.fpm).await);
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
    let summary = Summary {
        environment: ctx.environment(),
        command: CommandKind::Check,
        outcome,
        release: None,
        message,
        not_undone: None,
        hosts,
    };
    ctx.emit(Event::Summary(summary.clone()));
    Report { summary, failures }
}

/// Runs each host's PHP-FPM config test (`php-fpm -t`, which only reads
/// the configuration): a host whose test fails is not ready, with FPM's
/// own words.
async fn config_tests(
    ctx: &Context<'_>,
    session: &Session,
    fpm: &IndexMap<String, crate::remote::fpm::FpmCommands>,
) -> Vec<HostFailure> {
    let jobs: IndexMap<String, HostScript> = fpm
        .iter()
        .filter_map(|(host, commands)| {
            let test = commands.config_test.as_deref()?;
            let mut script = crate::shell::Script::new();
            crate::remote::switch::without_stdin(&mut script, test);
            Some((host.clone(), HostScript::new(script, std::time::Duration::from_secs(60))))
        })
        .collect();
    if jobs.is_empty() {
        return Vec::new();
    }
    let outcome = session.run_phase(ctx, Phase::Preflight, &jobs, None, Patience::UntilInterrupted).await;
    outcome
        .failures
        .into_iter()
        .map(|failure| {
            let test = fpm.get(&failure.host).and_then(|f| f.config_test.as_deref()).unwrap_or_default();
            // FPM's first error names the file and line; its last says only
            // that it gave up.
            let tail = failure.output_tail().unwrap_or_default();
            let said = tail
                .lines()
                .find(|l| l.contains("ERROR"))
                .or_else(|| tail.lines().rev().find(|l| !l.trim().is_empty()));
            let problem = match said {
                Some(said) => format!("the PHP-FPM config test (`{test}`) fails: {}", said.trim()),
                None => format!("the PHP-FPM config test (`{test}`) fails: {}", failure.kind),
            };
            HostFailure::new(&failure.host, Phase::Preflight, FailureKind::Precondition(problem))
        })
        .collect()
}
