//! The open connections of one run, and running one phase on many hosts
//! concurrently: one round trip per host, events for each.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use indexmap::IndexMap;

use crate::event::{Event, HostState, Phase};
use crate::plan::HostScript;
use crate::remote::steps::{STEP_MARKER, STEP_TIMED_OUT, last_step};
use crate::transport::{Output, RemoteCommand, Transport, TransportError};

use super::Context;
use super::failure::{FailureKind, HostFailure};

/// How many lines of output a failure keeps.
const TAIL_LINES: usize = 20;

/// Connections to the hosts that answered.
#[derive(Debug)]
pub(crate) struct Session {
    transports: IndexMap<String, Box<dyn Transport>>,
}

/// What one phase did on each host.
#[derive(Debug, Default)]
pub(crate) struct PhaseOutcome {
    pub outputs: IndexMap<String, Output>,
    pub failures: Vec<HostFailure>,
}

impl Session {
    /// Connects to every host of the fleet, concurrently.
    pub async fn open(ctx: &Context<'_>) -> (Self, Vec<HostFailure>) {
        let limit = ctx.loaded.inventory.concurrency;
        let results: Vec<_> = futures::stream::iter(&ctx.fleet.hosts)
            .map(|target| async move { (target.name.clone(), ctx.connector.connect(target).await) })
            .buffered(limit)
            .collect()
            .await;
        let mut transports = IndexMap::new();
        let mut failures = Vec::new();
        for (name, result) in results {
            match result {
                Ok(transport) => {
                    transports.insert(name, transport);
                }
                Err(error) => {
                    let failure = HostFailure::new(&name, Phase::Preflight, error);
                    emit_host(ctx, &name, Phase::Preflight, HostState::Failed, None, Some(&failure));
                    failures.push(failure);
                }
            }
        }
        (Self { transports }, failures)
    }

    /// Runs each host's script of a phase. With `interruptible`, an interrupt
    /// stops waiting and marks unfinished hosts as interrupted.
    pub async fn run_phase(
        &self,
        ctx: &Context<'_>,
        phase: Phase,
        jobs: &IndexMap<String, HostScript>,
        payload: Option<&Arc<[u8]>>,
        interruptible: bool,
    ) -> PhaseOutcome {
        if jobs.values().any(|job| job.held) {
            return self.run_together(ctx, phase, jobs).await;
        }
        // Hosts that never connected already have their failure.
        let connected: IndexMap<String, HostScript> = jobs
            .iter()
            .filter(|(h, _)| self.transports.contains_key(*h))
            .map(|(h, s)| (h.clone(), s.clone()))
            .collect();
        let jobs = &connected;
        ctx.emit(Event::PhaseStarted { phase, hosts: jobs.keys().cloned().collect() });
        let limit = ctx.loaded.inventory.concurrency;
        let mut pending: Vec<String> = jobs.keys().cloned().collect();
        let mut outcome = PhaseOutcome::default();
        let mut stream = futures::stream::iter(jobs)
            .map(|(host, job)| async move { (host.clone(), self.run_one(ctx, phase, host, job, payload).await) })
            .buffer_unordered(limit);
        loop {
            let next = tokio::select! {
                next = stream.next() => next,
                () = ctx.interrupt.raised(), if interruptible => {
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
                Err(failure) => outcome.failures.push(failure),
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
    ) -> Result<Output, HostFailure> {
        let Some(transport) = self.transports.get(host) else {
            let failure = HostFailure::new(host, phase, FailureKind::Precondition("not connected".into()));
            return Err(failure);
        };
        emit_host(ctx, host, phase, HostState::Started, None, None);
        let started = Instant::now();
        let command = RemoteCommand {
            script: job.script.render(),
            stdin: if job.upload { payload.cloned() } else { None },
            timeout: job.timeout,
        };
        let result = transport.run(command).await;
        let elapsed = Some(started.elapsed().as_millis() as u64);
        let step = |stdout: &str| last_step(stdout).and_then(|i| job.steps.get(i)).cloned();
        // A step stopped by its own limit exits 124, like `timeout(1)`.
        match result {
            Ok(output) if output.success() => {
                emit_host(ctx, host, phase, HostState::Done, elapsed, None);
                Ok(output)
            }
            Ok(output) => {
                let step = step(&output.stdout);
                let kind = match &step {
                    Some(step) if output.exit_code == Some(STEP_TIMED_OUT) => {
                        FailureKind::Transport(TransportError::TimedOut { after: step.timeout })
                    }
                    _ => FailureKind::CommandFailed { exit_code: output.exit_code, output_tail: tail(&output) },
                };
                let failure = HostFailure { host: host.to_owned(), phase, step: step.map(|s| s.name), kind };
                emit_host(ctx, host, phase, HostState::Failed, elapsed, Some(&failure));
                Err(failure)
            }
            Err(error) => {
                let failure = HostFailure::new(host, phase, error);
                emit_host(ctx, host, phase, HostState::Failed, elapsed, Some(&failure));
                Err(failure)
            }
        }
    }

    pub(crate) fn connected(&self, host: &str) -> bool {
        self.transports.contains_key(host)
    }

    pub(crate) fn transport(&self, host: &str) -> Option<&dyn Transport> {
        self.transports.get(host).map(|t| t.as_ref())
    }

    /// Closes every connection.
    pub async fn close(self) {
        futures::future::join_all(self.transports.into_values().map(|t| t.close())).await;
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

/// The last lines of a failed command's output, stderr first, without
/// cutover's own step markers.
pub(crate) fn tail(output: &Output) -> String {
    let text = if output.stderr.trim().is_empty() { &output.stdout } else { &output.stderr };
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with(STEP_MARKER)).collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}
