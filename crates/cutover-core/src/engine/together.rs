//! A phase released on every host at the same moment (the flip): each host's
//! script is started and waits at its ready line; once every host is ready,
//! cutover reads the clocks of those that keep time, picks one moment a
//! little ahead (see [`crate::moment`]) and lets all go, each told that
//! moment on its own clock. If any host is not ready, none is let go.

use std::time::Instant;

use futures::future::join_all;
use indexmap::IndexMap;

use crate::event::{Event, HostState, Phase};
use crate::held::{HeldScript, Signal};
use crate::moment::{self, ClockReading, Moment};
use crate::plan::HostScript;
use crate::transport::{Output, RemoteCommand, TransportError};

use super::Context;
use super::failure::{FailureKind, HostFailure};
use super::session::{PhaseOutcome, Session, emit_host, tail};

/// Where a host stands before the release.
enum Start<'a> {
    /// Waiting at its ready line.
    Ready(HeldScript<'a>),
    /// Ended before its ready line (it failed on its own).
    Ended(HeldScript<'a>),
    /// Its transport cannot hold a script: it runs when released.
    Plain,
    Failed(TransportError),
}

impl Session {
    /// Runs a held phase: start everywhere, then release everywhere at once.
    pub(crate) async fn run_together(
        &self,
        ctx: &Context<'_>,
        phase: Phase,
        jobs: &IndexMap<String, HostScript>,
    ) -> PhaseOutcome {
        let jobs: Vec<(&String, &HostScript)> = jobs.iter().filter(|(h, _)| !self.failed(h)).collect();
        ctx.emit(Event::PhaseStarted { phase, hosts: jobs.iter().map(|(h, _)| (*h).clone()).collect() });
        let started = Instant::now();
        let mut starts = join_all(jobs.iter().map(|(host, job)| self.start(ctx, phase, host, job))).await;
        let signals = agree_on_a_moment(&mut starts).await;
        let called_off = signals.is_none().then(|| {
            let who: Vec<&str> = jobs
                .iter()
                .zip(&starts)
                .filter(|(_, s)| !matches!(s, Start::Ready(_) | Start::Plain))
                .map(|((h, _), _)| h.as_str())
                .collect();
            format!("not released: {} not ready", who.join(", "))
        });
        let go = signals.is_some();
        let mut signals = signals.unwrap_or_default().into_iter();
        let reason = called_off.as_deref().unwrap_or_default();
        let finishes = jobs.iter().zip(starts).map(|((host, job), start)| {
            let signal = signals.next().unwrap_or(Signal::CallOff);
            async move {
                let result = match start {
                    Start::Ready(held) => held.release(signal).await.map_err(FailureKind::from),
                    Start::Ended(held) => held.release(Signal::CallOff).await.map_err(FailureKind::from),
                    Start::Plain if go => self.run_released(host, job).await.map_err(FailureKind::from),
                    Start::Plain => Err(FailureKind::CalledOff { reason: reason.to_owned() }),
                    Start::Failed(error) => Err(FailureKind::CalledOff { reason: error.to_string() }),
                };
                ((*host).clone(), result)
            }
        });
        let mut outcome = PhaseOutcome::default();
        for (host, result) in join_all(finishes).await {
            let elapsed = Some(started.elapsed().as_millis() as u64);
            let failure = match result {
                Ok(output) if output.success() => {
                    emit_host(ctx, &host, phase, HostState::Done, elapsed, None);
                    outcome.outputs.insert(host, output);
                    continue;
                }
                Ok(output) if !go => {
                    FailureKind::CalledOff { reason: called_off.clone().unwrap_or_else(|| tail(&output)) }
                }
                Ok(output) => FailureKind::CommandFailed { exit_code: output.exit_code, output_tail: tail(&output) },
                Err(kind) => kind,
            };
            let failure = HostFailure::new(&host, phase, failure);
            emit_host(ctx, &host, phase, HostState::Failed, elapsed, Some(&failure));
            outcome.failures.push(failure);
        }
        outcome
    }

    async fn start<'s>(&'s self, ctx: &Context<'_>, phase: Phase, host: &str, job: &HostScript) -> Start<'s> {
        emit_host(ctx, host, phase, HostState::Started, None, None);
        let Some(transport) = self.transport(host) else {
            return Start::Failed(TransportError::ConnectionLost { detail: "not connected".into() });
        };
        let command = RemoteCommand { script: job.script.render(), stdin: None, timeout: job.timeout };
        match transport.hold(command).await {
            Ok(Some(mut held)) => match held.ready().await {
                Ok(true) => Start::Ready(held),
                Ok(false) => Start::Ended(held),
                Err(error) => Start::Failed(error),
            },
            Ok(None) => Start::Plain,
            Err(error) => Start::Failed(error),
        }
    }

    /// A plain run of a held script, with `go` already on its stdin.
    async fn run_released(&self, host: &str, job: &HostScript) -> Result<Output, TransportError> {
        let transport =
            self.transport(host).ok_or(TransportError::ConnectionLost { detail: "not connected".into() })?;
        let stdin = Some(std::sync::Arc::from(b"go\n".to_vec()));
        transport.run(RemoteCommand { script: job.script.render(), stdin, timeout: job.timeout }).await
    }
}

/// When every host is ready, the signal for each (in the order of
/// `starts`): go at one moment on the hosts that keep time, go now on the
/// others (and on a lone host, which has no one to keep in step with).
/// `None` when some host is not ready, including one whose clock could not
/// be read: then none goes.
async fn agree_on_a_moment(starts: &mut [Start<'_>]) -> Option<Vec<Signal>> {
    if !starts.iter().all(|s| matches!(s, Start::Ready(_) | Start::Plain)) {
        return None;
    }
    if starts.len() < 2 {
        return Some(vec![Signal::Go; starts.len()]);
    }
    let reads = join_all(starts.iter_mut().map(|start| async move {
        match start {
            Start::Ready(held) => held.read_clock().await,
            _ => Ok(None),
        }
    }))
    .await;
    let mut readings: Vec<Option<ClockReading>> = Vec::with_capacity(reads.len());
    for (start, read) in starts.iter_mut().zip(reads) {
        match read {
            Ok(reading) => readings.push(reading),
            // Dropping the held script closes its stdin: it stops.
            Err(error) => *start = Start::Failed(error),
        }
    }
    if readings.len() < starts.len() {
        return None;
    }
    let taken: Vec<ClockReading> = readings.iter().flatten().copied().collect();
    let moment = Moment::after(moment::now(), &taken);
    Some(readings.iter().map(|r| r.map_or(Signal::Go, |r| Signal::GoAt(moment.on_host(&r)))).collect())
}
