//! Preflight: probe every connected host, read-only, and check that a deploy
//! or rollback can run there (path writable, tools present, disk free,
//! shared files present, no lock held).

use indexmap::IndexMap;

use crate::config::inventory::{Activation, FpmSetting};
use crate::event::{Event, Phase};
use crate::plan::HostScript;
use crate::remote::activation;
use crate::remote::fpm::{self, FpmCommands};
use crate::remote::lock::LockOwner;
use crate::remote::prepare::Delivery;
use crate::remote::probe::{self, ActivationProbe, ProbeRequest, Snapshot};

use super::Context;
use super::failure::{FailureKind, HostFailure};
use super::session::{Patience, Session};

/// The least free disk a deploy starts with, in KiB.
const MIN_FREE_KB: u64 = 50 * 1024;

/// What preflight found.
#[derive(Debug, Default)]
pub(crate) struct Preflight {
    pub snapshots: IndexMap<String, Snapshot>,
    /// Per host, the PHP-FPM commands the run uses (a deploy's or a
    /// rollback's preflight only).
    pub fpm: IndexMap<String, FpmCommands>,
    pub failures: Vec<HostFailure>,
}

impl Preflight {
    /// Whether any failure is a held lock.
    pub fn locked(&self) -> bool {
        self.failures.iter().any(|f| matches!(f.kind, FailureKind::Locked { .. }))
    }
}

/// What preflight holds a host to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Checks {
    /// Only read the host (status, the reading after a failure).
    None,
    /// A rollback: no disk space needed, everything else as a deploy.
    Rollback,
    /// A deploy: room for a release too.
    Deploy,
}

/// What the probe looks for: the tools the plan runs, the shared files, and
/// PHP-FPM's reload safety when there is a reload. `delivery` is `None` for
/// a rollback.
pub(crate) fn request<'a>(ctx: &Context<'a>, delivery: Option<&Delivery>) -> ProbeRequest<'a> {
    let inv = &ctx.loaded.inventory;
    let mut tools = vec!["mkdir", "ln", "mv", "readlink", "rm"];
    if delivery.is_some() {
        tools.extend(["tar", "df"]);
    }
    if matches!(delivery, Some(Delivery::Git { .. })) {
        tools.push("git");
    }
    if !inv.secrets.is_empty() || !inv.shared.render.is_empty() {
        tools.extend(["base64", "printenv"]);
    }
    if inv.health_check.as_ref().is_some_and(|c| c.value.url.is_some()) {
        tools.push("curl");
    }
    let reloads = inv.php_fpm.reload() != FpmSetting::None && inv.php_fpm.activation() == Activation::Reload;
    let fpm_config = reloads.then(|| inv.php_fpm.config_file.as_deref().unwrap_or(""));
    let shared_files = if delivery.is_some() { inv.shared.files() } else { Vec::new() };
    let free_space = delivery.is_some();
    let detect_fpm = fpm::needs_detection(&inv.php_fpm);
    // Blue-green's link is read in every mode: another mode must not act
    // on a pool nginx no longer uses.
    let blue_green = inv.php_fpm.blue_green.as_ref().map(|b| &b.value);
    let speaks = reloads || inv.php_fpm.activation() != Activation::Reload || blue_green.is_some();
    let activation = speaks.then_some(ActivationProbe { socket: inv.php_fpm.socket.as_deref(), blue_green });
    ProbeRequest {
        tools,
        shared_files,
        fpm_config,
        lookup: None,
        free_space,
        detect_fpm,
        activation,
        history: false,
        serving: false,
    }
}

/// Probes the hosts, and reports what would stop the run as `checks` says,
/// as `phase` (preflight, status, or the reading back after a failure).
/// The request's lookup, if any, is the primary host's alone.
pub(crate) async fn probe(
    ctx: &Context<'_>,
    session: &Session,
    request: &ProbeRequest<'_>,
    checks: Checks,
    phase: Phase,
) -> Preflight {
    let primary = &ctx.fleet.primary().name;
    let others = ProbeRequest { lookup: None, ..request.clone() };
    let jobs: IndexMap<String, HostScript> = ctx
        .fleet
        .hosts
        .iter()
        .map(|t| {
            let request = if &t.name == primary { request } else { &others };
            let script = probe::script(&t.deploy_path, request);
            let reads_only = request.lookup.is_none();
            (t.name.clone(), HostScript { reads_only, ..HostScript::new(script, std::time::Duration::from_secs(60)) })
        })
        .collect();
    let outcome = session.run_phase(ctx, phase, &jobs, None, Patience::ToTheEnd).await;
    let mut found = Preflight { failures: outcome.failures, ..Preflight::default() };
    for (host, output) in outcome.outputs {
        let snapshot = Snapshot::parse(&output.stdout);
        if checks != Checks::None {
            let deploy_path = ctx.fleet.hosts.iter().find(|t| t.name == host).map_or("", |t| t.deploy_path.as_str());
            let create_missing = ctx.loaded.inventory.shared.create_missing;
            let problems = problems(&snapshot, checks, deploy_path, create_missing);
            found.failures.extend(problems.into_iter().map(|kind| HostFailure::new(&host, phase, kind)));
            if create_missing {
                for file in &snapshot.missing_shared {
                    let message = format!("{deploy_path}/shared/{file} is missing: it is created empty");
                    ctx.emit(Event::Warning { host: Some(host.clone()), message });
                }
            }
            if snapshot.no_perl {
                let message = "perl is not installed: scripts run unsupervised (a script cutover stops waiting \
                               for keeps running on the host), and the flip is not held at one moment";
                ctx.emit(Event::Warning { host: Some(host.clone()), message: message.to_owned() });
            }
            match fpm_of(ctx, &host, &snapshot) {
                Ok(commands) => {
                    found.fpm.insert(host.clone(), commands);
                }
                Err(why) => found.failures.push(HostFailure::new(&host, phase, FailureKind::Precondition(why))),
            }
        }
        found.snapshots.insert(host, snapshot);
    }
    found
}

/// The PHP-FPM commands and the activation of a host, with the warnings
/// they call for, or why the run cannot go on there.
fn fpm_of(ctx: &Context<'_>, host: &str, snapshot: &Snapshot) -> Result<FpmCommands, String> {
    let php_fpm = &ctx.loaded.inventory.php_fpm;
    let mut commands = fpm::resolve(php_fpm, &snapshot.fpm)?;
    let (activating, warnings) = activation::resolve(php_fpm, &snapshot.fpm, commands.reload.is_some())?;
    commands.activation = activating;
    let warn = |message: String| ctx.emit(Event::Warning { host: Some(host.to_owned()), message });
    warnings.into_iter().for_each(warn);
    if commands.reload.is_some() && snapshot.fpm_reload_kills_requests() {
        if !php_fpm.allow_killing_requests {
            return Err("PHP-FPM's process_control_timeout is 0: a reload kills the requests in flight. Set \
                        `process_control_timeout = 10s` in php-fpm.conf's [global] section (see \
                        docs/nginx-php-fpm.md), or `php_fpm.allow_killing_requests: true` to reload anyway"
                .to_owned());
        }
        warn(
            "PHP-FPM's process_control_timeout is 0: this reload kills the requests in flight \
              (`php_fpm.allow_killing_requests` is set)"
                .to_owned(),
        );
    }
    Ok(commands)
}

fn problems(s: &Snapshot, checks: Checks, deploy_path: &str, create_missing: bool) -> Vec<FailureKind> {
    let mut out = Vec::new();
    if let Some(owner) = &s.lock {
        out.push(FailureKind::Locked { owner: LockOwner::describe(owner) });
    }
    if !s.writable {
        out.push(FailureKind::Precondition(
            "the deploy path (or the directory that would hold it) is not writable".into(),
        ));
    }
    if s.current_not_link {
        out.push(FailureKind::Precondition(
            "`current` is a directory, not a symbolic link: move it into releases/ and link it".into(),
        ));
    }
    if let Some(problem) = &s.adoption_problem {
        out.push(FailureKind::Precondition(problem.clone()));
    }
    if let Some(free) = s.free_kb.filter(|kb| *kb < MIN_FREE_KB && checks == Checks::Deploy) {
        out.push(FailureKind::Precondition(format!("only {} MiB of disk free", free / 1024)));
    }
    for tool in &s.missing_tools {
        out.push(FailureKind::Precondition(format!("`{tool}` is not installed")));
    }
    for file in s.missing_shared.iter().filter(|_| !create_missing) {
        out.push(FailureKind::Precondition(format!(
            "shared file {deploy_path}/shared/{file} is missing: create it on this host before the first deploy, \
             or set `shared.create_missing: true` to have it created empty"
        )));
    }
    out
}
