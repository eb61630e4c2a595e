//! `cutover run -- <command>`: one command the user typed, in the live
//! release of each selected host (or of the primary alone), in parallel,
//! with the hosts' vars exported as for steps. No lock is taken: it is the
//! user's command, not a deploy. What each host printed ends up in its
//! summary, grouped by host.

use std::time::Duration;

use indexmap::IndexMap;

use crate::event::{CommandKind, Event, HostSummary, Outcome, Phase, Summary};
use crate::fleet::Target;
use crate::plan::HostScript;
use crate::remote::steps;
use crate::shell::{Script, Sh, quote};

use super::session::{Patience, Session};
use super::{Context, Report};

/// What `cutover run` was asked.
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    /// Shell text, run with `sh` in `current/`.
    pub command: String,
    /// On the primary host alone (`--once`).
    pub once: bool,
}

impl RunRequest {
    /// The command from the words after `--`: one word is shell text
    /// (`'tail -n 50 storage/logs/*.log | grep ERROR'`); several are one
    /// command's arguments, each quoted, so none is split or expanded
    /// again (`php artisan tinker --execute 'echo 1;'`).
    pub fn from_words(words: &[String], once: bool) -> Self {
        let command = match words {
            [text] => text.clone(),
            words => words.iter().map(|w| quote(w).into_owned()).collect::<Vec<_>>().join(" "),
        };
        Self { command, once }
    }
}

/// Runs the command on the selected hosts.
pub async fn run_command(ctx: &Context<'_>, request: &RunRequest) -> Report {
    let targets: Vec<&Target> = if request.once { vec![ctx.fleet.primary()] } else { ctx.fleet.hosts.iter().collect() };
    ctx.emit(Event::RunStarted {
        command: CommandKind::Run,
        application: ctx.loaded.inventory.application.clone(),
        hosts: targets.iter().map(|t| t.name.clone()).collect(),
    });
    let limit = Duration::from_secs(ctx.loaded.inventory.step_timeout.value);
    let jobs: IndexMap<String, HostScript> =
        targets.iter().map(|t| (t.name.clone(), HostScript::new(script(t, &request.command), limit))).collect();
    let session = Session::open(ctx);
    let outcome = session.run_phase(ctx, Phase::Run, &jobs, None, Patience::UntilInterrupted).await;
    session.close().await;
    let hosts = targets
        .iter()
        .map(|t| {
            let failure = outcome.failures.iter().find(|f| f.host == t.name);
            let output = outcome.outputs.get(&t.name).or_else(|| outcome.failed_outputs.get(&t.name));
            let summary = HostSummary {
                state: if failure.is_some() { "failed" } else { "done" }.to_owned(),
                error: failure.map(ToString::to_string),
                exit_code: output.and_then(|o| o.exit_code),
                output: output.map(|o| o.stdout.clone()),
                ..HostSummary::default()
            };
            (t.name.clone(), summary)
        })
        .collect();
    let summary = Summary {
        environment: ctx.environment(),
        command: CommandKind::Run,
        outcome: if outcome.failures.is_empty() { Outcome::Done } else { Outcome::Failed },
        release: None,
        message: outcome.failures.first().map(ToString::to_string),
        not_undone: None,
        hosts,
    };
    ctx.emit(Event::Summary(summary.clone()));
    Report { summary, failures: outcome.failures }
}

/// `cd current && <command>`, both streams as one, the host's vars
/// exported.
fn script(target: &Target, command: &str) -> Script {
    let mut s = Script::new();
    s.assign("d", &target.deploy_path);
    s.line(steps::ONE_STREAM);
    for (name, value) in &target.vars {
        s.push(Sh::new("export").then(Sh::assign(name.clone(), value)));
    }
    s.line(r#"if [ ! -d "$d/current/" ]; then echo "no release is live on this host ($d/current)"; exit 1; fi"#);
    s.line(r#"cd "$d/current""#);
    s.push(Sh::user_shell(command));
    s
}
