//! The open connections of one run, and running one phase on many hosts
//! concurrently: one round trip per host, events for each.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use indexmap::IndexMap;
use tokio::sync::OnceCell;

use crate::event::{Event, HostState, Phase};
use crate::plan::HostScript;
use crate::remote::steps::{STEP_TIMED_OUT, after_last_step, last_step};
use crate::remote::supervise;
use crate::transport::{LineWatch, Output, RemoteCommand, Transport, TransportError};

use super::Context;
use super::failure::{FailureKind, HostFailure};
use super::relay::{PROTOCOL, relayed};

/// How many lines of output a failure keeps.
const TAIL_LINES: usize = 20;

/// Connections to the hosts, each opened by the first phase that needs it,
/// so a host starts its first script as soon as it is connected instead of
/// waiting for the whole fleet's handshakes.
pub(crate) struct Session {
    hosts: IndexMap<String, OnceCell<Option<Box<dyn Transport>>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("hosts", &self.hosts.keys().collect::<Vec<_>>()).finish()
    }
}

/// What one phase did on each host.
#[derive(Debug, Default)]
pub(crate) struct PhaseOutcome {
    /// The hosts whose script succeeded, with what it printed.
    pub outputs: IndexMap<String, Output>,
    pub failures: Vec<HostFailure>,
    /// What the failed scripts that ran to their end printed.
    pub failed_outputs: IndexMap<String, Output>,
    /// The hosts that finalized in the same script (a flip that held for
    /// the fleet's decision), with what they printed.
    pub finalized: IndexMap<String, Output>,
    /// The hosts of a held phase that reached their ready line.
    pub ready: Vec<String>,
    /// The hosts of a held phase that were let go (only they can have
    /// switched).
    pub let_go: Vec<String>,
    /// The hosts whose switch was announced during the phase, and when.
    pub switched_at: IndexMap<String, jiff::Timestamp>,
}

/// How long a phase is waited for once the user asked the run to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Patience {
    /// Stop waiting at the first interrupt (work that can be undone).
    UntilInterrupted,
    /// Finish unless interrupted a second time (steps that cannot be
    /// undone, the switch).
    UntilHurried,
    /// Always finish (compensation, reading hosts back): each script has
    /// its own time limit.
    ToTheEnd,
}

impl Session {
    /// A session for the fleet; each host connects when its first script runs.
    pub fn open(ctx: &Context<'_>) -> Self {
        let hosts = ctx.fleet.hosts.iter().map(|t| (t.name.clone(), OnceCell::new())).collect();
        Self { hosts }
    }

    /// The host's connection, opened now if it is not yet; `Err` when it
    /// cannot be (reported once, by the phase that first needed it).
    async fn connect(&self, ctx: &Context<'_>, host: &str) -> Result<&dyn Transport, Option<TransportError>> {
        let (Some(cell), Some(target)) = (self.hosts.get(host), ctx.fleet.hosts.iter().find(|t| t.name == host)) else {
            return Err(None);
        };
        let mut error = None;
        let transport = cell
            .get_or_init(|| async {
                match ctx.connector.connect(target).await {
                    Ok(transport) => {
                        if let Some(message) = transport.notice() {
                            ctx.emit(Event::Warning { host: Some(host.to_owned()), message });
                        }
                        Some(transport)
                    }
                    Err(e) => {
                        error = Some(e);
                        None
                    }
                }
            })
            .await;
        transport.as_deref().ok_or(error)
    }

    /// Runs each host's script of a phase. An interrupt the `patience`
    /// does not wait through stops waiting: unfinished hosts are marked
    /// interrupted, and dropping their scripts ends them on the host.
    pub async fn run_phase(
        &self,
        ctx: &Context<'_>,
        phase: Phase,
        jobs: &IndexMap<String, HostScript>,
        payload: Option<&Arc<[u8]>>,
        patience: Patience,
    ) -> PhaseOutcome {
        if jobs.values().any(|job| job.held) {
            return self.run_together(ctx, phase, jobs, &|_, _| {}).await;
        }
        // Hosts that could not connect already have their failure.
        let connected: IndexMap<String, HostScript> =
            jobs.iter().filter(|(h, _)| !self.failed(h)).map(|(h, s)| (h.clone(), s.clone())).collect();
        let jobs = &connected;
        ctx.emit(Event::PhaseStarted { phase, hosts: jobs.keys().cloned().collect() });
        let limit = ctx.loaded.inventory.concurrency.value;
        let mut pending: Vec<String> = jobs.keys().cloned().collect();
        let mut outcome = PhaseOutcome::default();
        let mut stream = futures::stream::iter(jobs)
            .map(|(host, job)| async move { (host.clone(), self.run_one(ctx, phase, host, job, payload).await) })
            .buffer_unordered(limit);
        let mut warned = false;
        loop {
            let next = tokio::select! {
                next = stream.next() => next,
                () = ctx.interrupt.raised(), if patience == Patience::UntilHurried && !warned => {
                    warned = true;
                    let message = format!(
                        "interrupted: letting `{phase}` finish (it is not undone halfway), then stopping; \
                         interrupt again to stop it now"
                    );
                    ctx.emit(Event::Warning { host: None, message });
                    continue;
                }
                () = stop_waiting(ctx, patience) => {
                    for host in pending.drain(..) {
                        let failure = HostFailure::new(&host, phase, FailureKind::Interrupted);
                        emit_host(ctx, &host, phase, HostState::Failed, None, Some(&failure));
                        outcome.failures.push(failure);
                    }
                    break;
                }
            };
            let Some((host, result)) = next else { break };
            pending.retain(|h| *h != host);
            match result {
                Ok(output) => {
                    outcome.outputs.insert(host, output);
                }
                Err((failure, output)) => {
                    if let Some(output) = output {
                        outcome.failed_outputs.insert(host, output);
                    }
                    outcome.failures.push(failure);
                }
            }
        }
        // Results in the plan's host order, whatever order they finished in.
        let position = |host: &str| jobs.get_index_of(host).unwrap_or(usize::MAX);
        outcome.outputs.sort_by(|a, _, b, _| position(a).cmp(&position(b)));
        outcome.failures.sort_by_key(|f| position(&f.host));
        outcome
    }

    async fn run_one(
        &self,
        ctx: &Context<'_>,
        phase: Phase,
        host: &str,
        job: &HostScript,
        payload: Option<&Arc<[u8]>>,
    ) -> Result<Output, (HostFailure, Option<Output>)> {
        emit_host(ctx, host, phase, HostState::Started, None, None);
        let transport = match self.connect(ctx, host).await {
            Ok(transport) => transport,
            Err(error) => {
                let kind = match error {
                    Some(error) => FailureKind::Transport(error),
                    None => FailureKind::Precondition("not connected".into()),
                };
                let failure = HostFailure::new(host, phase, kind);
                emit_host(ctx, host, phase, HostState::Failed, None, Some(&failure));
                return Err((failure, None));
            }
        };
        let started = Instant::now();
        let mut stdin = Vec::new();
        if job.secrets {
            let vars = ctx.fleet.hosts.iter().find(|t| t.name == host).map(|t| t.vars.clone()).unwrap_or_default();
            stdin.push(Arc::from(ctx.secrets.stdin_block(&vars, job.rendered)));
        }
        stdin.extend(payload.filter(|_| job.upload).cloned());
        // What a script that only reads the host prints is cutover's own.
        let (watch, lines) = LineWatch::new();
        let watch = Some(watch).filter(|_| !job.reads_only);
        let command = RemoteCommand { watch, ..supervised(phase, job, stdin) };
        let result = relayed(ctx, host, phase, job.secrets, transport.run(command), lines).await;
        let result = if job.secrets { result.map(|output| masked(ctx, output)) } else { result };
        if let Ok(output) = &result {
            emit_output(ctx, host, phase, output);
        }
        let elapsed = Some(started.elapsed().as_millis() as u64);
        // The part of the script that was running, and its own time limit
        // when it is a recipe step.
        let step = |stdout: &str| {
            let name = last_step(stdout)?;
            let limit = job.steps.iter().find(|s| s.name == name).map(|s| s.timeout);
            Some((name.to_owned(), limit))
        };
        // A step stopped by its own limit exits 124, like `timeout(1)`.
        match result {
            Ok(output) if output.success() => {
                emit_host(ctx, host, phase, HostState::Done, elapsed, None);
                Ok(output)
            }
            Ok(output) => {
                let step = step(&output.stdout);
                let kind = match &step {
                    Some((_, Some(limit))) if output.exit_code == Some(STEP_TIMED_OUT) => {
                        FailureKind::Transport(TransportError::TimedOut { after: *limit })
                    }
                    _ => FailureKind::CommandFailed { exit_code: output.exit_code, output_tail: tail(&output) },
                };
                let failure = HostFailure { host: host.to_owned(), phase, step: step.map(|(name, _)| name), kind };
                emit_host(ctx, host, phase, HostState::Failed, elapsed, Some(&failure));
                Err((failure, Some(output)))
            }
            Err(error) => {
                let failure = HostFailure::new(host, phase, error);
                emit_host(ctx, host, phase, HostState::Failed, elapsed, Some(&failure));
                Err((failure, None))
            }
        }
    }

    /// Whether the host's connection was tried and failed.
    pub(crate) fn failed(&self, host: &str) -> bool {
        self.hosts.get(host).is_none_or(|cell| cell.get().is_some_and(Option::is_none))
    }

    /// The host's connection, if it is open.
    pub(crate) fn transport(&self, host: &str) -> Option<&dyn Transport> {
        self.hosts.get(host)?.get()?.as_deref()
    }

    /// Closes every connection that was opened.
    pub async fn close(self) {
        let open = self.hosts.into_values().filter_map(|cell| cell.into_inner().flatten());
        futures::future::join_all(open.map(|t| t.close())).await;
    }
}

/// The command that runs `job` on `host`, under the supervisor that ends it
/// when cutover stops waiting (see [`crate::remote::supervise`]); a script
/// that only reads the host runs as it is.
pub(crate) fn supervised(phase: Phase, job: &HostScript, stdin: Vec<Arc<[u8]>>) -> RemoteCommand {
    let script = if job.reads_only {
        job.script.render()
    } else {
        supervise::wrap(&job.script.render(), job.jobs.as_deref(), job.timeout)
    };
    RemoteCommand { phase, script, stdin, timeout: job.timeout, watch: None }
}

/// The output of a script that had the secrets, every value masked before
/// anything (an error, a tail, an event, the log) sees it; cutover's own
/// protocol lines are kept as written (a secret that happens to match a
/// release id must not change what cutover reads). Scripts without the
/// secrets cannot print them and are left alone.
fn masked(ctx: &Context<'_>, mut output: Output) -> Output {
    let mask = |text: &str| -> String {
        let lines = text.split_inclusive('\n');
        lines.map(|line| if line.starts_with(PROTOCOL) { line.into() } else { ctx.secrets.mask(line) }).collect()
    };
    if !ctx.secrets.is_empty() {
        output.stdout = mask(&output.stdout);
        output.stderr = mask(&output.stderr);
    }
    output
}

/// Resolves when a run with this patience stops waiting for a phase.
async fn stop_waiting(ctx: &Context<'_>, patience: Patience) {
    match patience {
        Patience::UntilInterrupted => ctx.interrupt.raised().await,
        Patience::UntilHurried => ctx.interrupt.hurried().await,
        Patience::ToTheEnd => std::future::pending().await,
    }
}

pub(crate) fn emit_host(
    ctx: &Context<'_>,
    host: &str,
    phase: Phase,
    state: HostState,
    duration_ms: Option<u64>,
    failure: Option<&HostFailure>,
) {
    ctx.emit(Event::Host {
        host: host.to_owned(),
        phase,
        state,
        step: failure.and_then(|f| f.step.clone()),
        duration_ms,
        error: failure.map(|f| f.kind.to_string()),
        output_tail: failure.and_then(|f| f.output_tail().map(str::to_owned)),
    });
}

/// The last lines of a failed script's output: what its failing part (a
/// step, or one of cutover's marked parts) printed, on either stream, in
/// the order written, then anything on stderr; without cutover's own
/// protocol lines.
pub(crate) fn tail(output: &Output) -> String {
    let text: Vec<&str> = match after_last_step(&output.stdout) {
        Some(own) => own.lines().chain(output.stderr.lines()).collect(),
        None if output.stderr.trim().is_empty() => output.stdout.lines().collect(),
        None => output.stderr.lines().collect(),
    };
    let lines: Vec<&str> = text.into_iter().filter(|l| !l.starts_with(PROTOCOL)).collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// Reports everything a script printed, for the run's log.
pub(crate) fn emit_output(ctx: &Context<'_>, host: &str, phase: Phase, output: &Output) {
    ctx.emit(Event::Output {
        host: host.to_owned(),
        phase,
        exit_code: output.exit_code,
        stdout: output.stdout.clone(),
        stderr: output.stderr.clone(),
    });
}

/// Reports the `warning ...` lines of a finalize or abort script.
pub(crate) fn emit_warnings(ctx: &Context<'_>, host: &str, stdout: &str) {
    for message in crate::remote::end::warnings(stdout) {
        ctx.emit(Event::Warning { host: Some(host.to_owned()), message: message.to_owned() });
    }
}
