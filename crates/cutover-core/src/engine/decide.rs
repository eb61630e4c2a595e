//! The fleet's decision inside a held flip: when finalize rides in the
//! flip's script (see [`crate::plan`]'s fuse), each host switches and
//! reloads, then holds again at a second ready line. Only when every host
//! got there does the decision pass (the gate [`DECIDED`]) and each host go
//! on to finalize; otherwise, or when the user interrupted a second time
//! meanwhile, none does: each ends switched and locked, and the
//! compensation takes over.

use std::time::Instant;

use futures::future::join_all;

use crate::event::{Event, HostState, Phase};
use crate::held::{HeldScript, Signal};
use crate::plan::{DECIDED, HostScript};
use crate::remote::switch::{FINALIZING, switched};
use crate::transport::{Output, TransportError};

use super::Context;
use super::failure::{FailureKind, HostFailure, LOCAL};
use super::session::{PhaseOutcome, Session, emit_host, emit_output, supervised};
use super::together::{Announce, Start, judge};

/// Where a host stands once let go.
enum Arrival<'a> {
    /// Switched and reloaded, waiting for the fleet's decision.
    AtDecision(HeldScript<'a>),
    /// Its script ended (it failed, or it ran unheld).
    Ended(Result<Output, FailureKind>),
}

/// A host that switched and waits to finalize.
struct Waiting<'a, 's> {
    host: &'a String,
    job: &'a HostScript,
    /// Its held script; `None` when its transport could not hold it (it
    /// finalizes with a script of its own).
    held: Option<HeldScript<'s>>,
}

impl Session {
    /// Lets every host go, waits for each at its decision line, and
    /// finalizes them all if the fleet decided for the run.
    pub(super) async fn go_then_decide<'a, 's>(
        &'s self,
        ctx: &Context<'_>,
        phase: Phase,
        hosts: Vec<(&'a String, &'a HostScript, Start<'s>, Signal)>,
        started: Instant,
        announce: &Announce<'_>,
    ) -> PhaseOutcome {
        let jobs: Vec<(&String, &HostScript)> = hosts.iter().map(|(h, j, _, _)| (*h, *j)).collect();
        let arrivals =
            join_all(hosts.into_iter().map(|(host, job, start, signal)| self.arrive(phase, host, job, start, signal)))
                .await;
        let every_host_switched = arrivals.iter().all(|a| match a {
            Arrival::AtDecision(_) => true,
            Arrival::Ended(result) => result.as_ref().is_ok_and(Output::success),
        });
        let decided = every_host_switched && !ctx.interrupt.is_hurried();
        let mut outcome = PhaseOutcome::default();
        let mut waiting = Vec::new();
        for ((host, job), arrival) in jobs.into_iter().zip(arrivals) {
            let elapsed = started.elapsed();
            match arrival {
                Arrival::AtDecision(held) => {
                    // It said it switched before the decision: say so now,
                    // not once finalize is over.
                    if switched(held.seen()) {
                        let at = jiff::Timestamp::now();
                        announce(host, at);
                        outcome.switched_at.insert(host.clone(), at);
                    }
                    emit_host(ctx, host, phase, HostState::Done, Some(elapsed.as_millis() as u64), None);
                    let flip = Output { exit_code: Some(0), stdout: held.seen().to_owned(), stderr: String::new() };
                    emit_output(ctx, host, phase, &flip);
                    outcome.outputs.insert(host.clone(), flip);
                    waiting.push(Waiting { host, job, held: Some(held) });
                }
                Arrival::Ended(result) => {
                    let ran = result.as_ref().is_ok_and(Output::success);
                    judge(ctx, phase, host, result, None, elapsed, &mut outcome);
                    if ran {
                        waiting.push(Waiting { host, job, held: None });
                    }
                }
            }
        }
        if !decided {
            if every_host_switched {
                outcome.failures.push(HostFailure::new(LOCAL, phase, FailureKind::Interrupted));
            }
            // Each held script ends at its decision line; its host stays switched.
            join_all(waiting.into_iter().filter_map(|w| w.held).map(|h| h.release(Signal::CallOff))).await;
            return outcome;
        }
        ctx.emit(Event::Gate { name: DECIDED.to_owned(), passed: true, failed: Vec::new() });
        self.finalize_all(ctx, waiting, &mut outcome).await;
        outcome
    }

    /// Lets one host go and waits for it at its decision line.
    async fn arrive<'s>(
        &'s self,
        phase: Phase,
        host: &str,
        job: &HostScript,
        start: Start<'s>,
        signal: Signal,
    ) -> Arrival<'s> {
        let ended = |result: Result<Output, TransportError>| Arrival::Ended(result.map_err(FailureKind::from));
        match start {
            Start::Ready(mut held) => {
                held.let_go(signal).await;
                match held.ready().await {
                    Ok(true) => Arrival::AtDecision(held),
                    Ok(false) => ended(held.release(Signal::CallOff).await),
                    Err(error) => ended(Err(error)),
                }
            }
            Start::Plain => ended(self.run_released(phase, host, job).await),
            Start::Ended(held) => ended(held.release(Signal::CallOff).await),
            Start::Failed(error) => ended(Err(error)),
        }
    }

    /// Tells every waiting host to finalize, and records what each did.
    async fn finalize_all(&self, ctx: &Context<'_>, waiting: Vec<Waiting<'_, '_>>, outcome: &mut PhaseOutcome) {
        let hosts = waiting.iter().map(|w| w.host.clone()).collect();
        ctx.emit(Event::PhaseStarted { phase: Phase::Finalize, hosts });
        let finishing = Instant::now();
        let finalizes = waiting.into_iter().map(|Waiting { host, job, held }| async move {
            emit_host(ctx, host, Phase::Finalize, HostState::Started, None, None);
            let result = match held {
                Some(mut held) => {
                    // Finalize gets its own time, whatever the flip took.
                    held.renew(job.timeout);
                    held.release(Signal::Go).await.map(finalize_part)
                }
                None => self.finalize_alone(host, job).await,
            };
            (host, result.map_err(FailureKind::from))
        });
        for (host, result) in join_all(finalizes).await {
            if let Ok(output) = &result
                && output.success()
            {
                outcome.finalized.insert(host.clone(), output.clone());
            }
            judge(ctx, Phase::Finalize, host, result, None, finishing.elapsed(), outcome);
        }
    }

    /// The finalize of a flip whose transport could not hold it, as a
    /// script of its own.
    async fn finalize_alone(&self, host: &str, job: &HostScript) -> Result<Output, TransportError> {
        let transport =
            self.transport(host).ok_or(TransportError::ConnectionLost { detail: "not connected".into() })?;
        let script = job.then_finalize.clone().unwrap_or_default();
        let finalize = HostScript { jobs: None, ..HostScript::new(script, job.timeout) };
        transport.run(supervised(Phase::Finalize, &finalize, Vec::new())).await
    }
}

/// What a flip printed once told to finalize: finalize's own output, for
/// its warnings and its failure.
fn finalize_part(mut output: Output) -> Output {
    let marker = format!("{FINALIZING}\n");
    if let Some(at) = output.stdout.find(&marker) {
        output.stdout = output.stdout.split_off(at + marker.len());
    }
    output
}
