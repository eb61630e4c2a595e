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
use crate::transport::{Output, TransportError};

use super::Context;
use super::failure::{FailureKind, HostFailure};
use super::session::{PhaseOutcome, Session, emit_host, emit_output, supervised, tail};
use crate::remote::steps::last_step;

/// Where a host stands before the release.
#[derive(Debug)]
pub(super) enum Start<'a> {
    /// Waiting at its ready line.
    Ready(HeldScript<'a>),
    /// Ended before its ready line (it failed on its own).
    Ended(HeldScript<'a>),
    /// Its transport cannot hold a script: it runs when released.
    Plain,
    Failed(TransportError),
}

/// Told each host that said it switched, and when, as soon as it is known
/// (the engine reports it; see [`PhaseOutcome::switched_at`]).
pub(crate) type Announce<'a> = dyn Fn(&str, jiff::Timestamp) + Sync + 'a;

impl Session {
    /// Runs a held phase: start everywhere, then release everywhere at once.
    pub(crate) async fn run_together(
        &self,
        ctx: &Context<'_>,
        phase: Phase,
        jobs: &IndexMap<String, HostScript>,
        announce: &Announce<'_>,
    ) -> PhaseOutcome {
        let jobs: Vec<(&String, &HostScript)> = jobs.iter().filter(|(h, _)| !self.failed(h)).collect();
        ctx.emit(Event::PhaseStarted { phase, hosts: jobs.iter().map(|(h, _)| (*h).clone()).collect() });
        let started = Instant::now();
        // Until the go, a second interrupt calls the flip off everywhere
        // (the first too, for a flip that is still taking its locks):
        // dropping a held script closes its stdin, and it renames nothing.
        let locks = jobs.iter().any(|(_, job)| job.locks);
        let starting = join_all(jobs.iter().map(|(host, job)| self.start(ctx, phase, host, job)));
        let stop = async { if locks { ctx.interrupt.raised().await } else { ctx.interrupt.hurried().await } };
        let mut starts = tokio::select! {
            starts = starting => starts,
            () = stop => {
                let mut outcome = PhaseOutcome::default();
                for (host, _) in &jobs {
                    let failure = HostFailure::new(host, phase, FailureKind::Interrupted);
                    emit_host(ctx, host, phase, HostState::Failed, None, Some(&failure));
                    outcome.failures.push(failure);
                }
                return outcome;
            }
        };
        // A host whose transport cannot hold its script would take its lock
        // only once let go, after the others renamed: a flip that locks
        // needs every host held.
        if locks {
            for start in starts.iter_mut().filter(|s| matches!(s, Start::Plain)) {
                let detail = "this host's transport cannot hold a script, as a rollback all at once needs".into();
                *start = Start::Failed(TransportError::Spawn { detail });
            }
        }
        let signals = agree_on_a_moment(&mut starts).await;
        let called_off = signals.is_none().then(|| {
            let who: Vec<&str> = jobs
                .iter()
                .zip(&starts)
                .filter(|(_, s)| !matches!(s, Start::Ready(_) | Start::Plain))
                .map(|((h, _), _)| h.as_str())
                .collect();
            format!("not released: {} failed before the go", who.join(", "))
        });
        let go = signals.is_some();
        let signals = signals.unwrap_or_default();
        let ready =
            jobs.iter().zip(&starts).filter(|(_, s)| matches!(s, Start::Ready(_))).map(|((h, _), _)| (*h).clone());
        let ready: Vec<String> = ready.collect();
        let let_go: Vec<String> = if go { jobs.iter().map(|(h, _)| (*h).clone()).collect() } else { Vec::new() };
        if go && jobs.iter().any(|(_, job)| job.then_finalize.is_some()) {
            let hosts = jobs.iter().zip(starts).zip(signals).map(|(((h, j), s), g)| (*h, *j, s, g)).collect();
            let mut outcome = self.go_then_decide(ctx, phase, hosts, started, announce).await;
            outcome.ready = ready;
            outcome.let_go = let_go;
            return outcome;
        }
        let mut signals = signals.into_iter();
        let reason = called_off.as_deref().unwrap_or_default();
        // A host that failed before the go reports its own failure; the
        // others were called off because of it.
        let finishes = jobs.iter().zip(starts).map(|((host, job), start)| {
            let signal = signals.next().unwrap_or(Signal::CallOff);
            async move {
                let (result, called_off_here) = match start {
                    Start::Ready(held) => (held.release(signal).await.map_err(FailureKind::from), !go),
                    Start::Plain if go => (self.run_released(phase, host, job).await.map_err(FailureKind::from), false),
                    Start::Plain => (Err(FailureKind::CalledOff { reason: reason.to_owned() }), false),
                    Start::Ended(held) => (held.release(Signal::CallOff).await.map_err(FailureKind::from), false),
                    Start::Failed(error) => (Err(FailureKind::Transport(error)), false),
                };
                ((*host).clone(), result, called_off_here)
            }
        });
        let mut outcome = PhaseOutcome { ready, let_go, ..PhaseOutcome::default() };
        for (host, result, called_off_here) in join_all(finishes).await {
            let called_off = if called_off_here { called_off.as_deref() } else { None };
            judge(ctx, phase, &host, result, called_off, started.elapsed(), &mut outcome);
        }
        outcome
    }

    async fn start<'s>(&'s self, ctx: &Context<'_>, phase: Phase, host: &str, job: &HostScript) -> Start<'s> {
        emit_host(ctx, host, phase, HostState::Started, None, None);
        let Some(transport) = self.transport(host) else {
            return Start::Failed(TransportError::ConnectionLost { detail: "not connected".into() });
        };
        match transport.hold(supervised(phase, job, Vec::new())).await {
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
    pub(super) async fn run_released(
        &self,
        phase: Phase,
        host: &str,
        job: &HostScript,
    ) -> Result<Output, TransportError> {
        let transport =
            self.transport(host).ok_or(TransportError::ConnectionLost { detail: "not connected".into() })?;
        let stdin = vec![std::sync::Arc::from(b"go\n".to_vec())];
        transport.run(supervised(phase, job, stdin)).await
    }
}

/// Records one host's result of a held phase (or of the finalize that
/// rode in it): its event, and its output or failure in `outcome`.
pub(super) fn judge(
    ctx: &Context<'_>,
    phase: Phase,
    host: &str,
    result: Result<Output, FailureKind>,
    called_off: Option<&str>,
    elapsed: std::time::Duration,
    outcome: &mut PhaseOutcome,
) {
    let elapsed = Some(elapsed.as_millis() as u64);
    if let Ok(output) = &result {
        emit_output(ctx, host, phase, output);
    }
    let mut step = None;
    let failure = match result {
        Ok(output) if output.success() => {
            emit_host(ctx, host, phase, HostState::Done, elapsed, None);
            outcome.outputs.entry(host.to_owned()).or_insert(output);
            return;
        }
        Ok(output) if called_off.is_some() => {
            let reason = called_off.unwrap_or_default().to_owned();
            outcome.failed_outputs.insert(host.to_owned(), output);
            FailureKind::CalledOff { reason }
        }
        Ok(output) => {
            step = last_step(&output.stdout).map(str::to_owned);
            let kind = FailureKind::CommandFailed { exit_code: output.exit_code, output_tail: tail(&output) };
            outcome.failed_outputs.insert(host.to_owned(), output);
            kind
        }
        Err(kind) => kind,
    };
    let failure = HostFailure { step, ..HostFailure::new(host, phase, failure) }.about_the_lock();
    emit_host(ctx, host, phase, HostState::Failed, elapsed, Some(&failure));
    outcome.failures.push(failure);
}

/// When every host is ready, the signal for each (in the order of
/// `starts`): go at one moment when every host keeps time; go now on every
/// host otherwise (a host that cannot wait for a moment would rename ahead
/// of the others by the lead), and on a lone host, which has no one to keep
/// in step with. `None` when some host is not ready, including one whose
/// clock could not be read: then none goes.
async fn agree_on_a_moment(starts: &mut [Start<'_>]) -> Option<Vec<Signal>> {
    if !starts.iter().all(|s| matches!(s, Start::Ready(_) | Start::Plain)) {
        return None;
    }
    let all_keep_time = starts.iter().all(|s| matches!(s, Start::Ready(held) if held.keeps_time()));
    if starts.len() < 2 || !all_keep_time {
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
    let Some(readings) = readings.into_iter().collect::<Option<Vec<ClockReading>>>() else {
        return Some(vec![Signal::Go; starts.len()]);
    };
    let moment = Moment::after(moment::now(), &readings);
    Some(readings.iter().map(|r| Signal::GoAt(moment.on_host(r))).collect())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::local::LocalTransport;
    use crate::transport::{RemoteCommand, Transport};

    /// Keeps time: answers `clock` with its clock; prints its go line.
    const TIMED: &str = "echo '@@cutover-ready clock'; read -r go; if [ \"$go\" = clock ]; then \
        echo \"@@cutover-clock $(perl -MTime::HiRes -e 'printf q(%.6f), Time::HiRes::time()')\"; \
        read -r go; fi; echo \"got $go\"";
    /// Does not keep time: prints the first line it gets.
    const UNTIMED: &str = "echo '@@cutover-ready'; read -r go; echo \"got $go\"";
    /// Says it keeps time but answers nonsense.
    const GARBLED: &str = "echo '@@cutover-ready clock'; read -r q; echo 'half past ten'; read -r go";

    async fn ready<'a>(host: &'a LocalTransport, script: &str) -> Start<'a> {
        let command = RemoteCommand {
            phase: crate::event::Phase::Flip,
            script: script.to_owned(),
            stdin: Vec::new(),
            timeout: Duration::from_secs(10),
            watch: None,
        };
        let mut held = host.hold(command).await.expect("starts").expect("holds");
        assert!(held.ready().await.expect("reads"), "{script}: ready");
        Start::Ready(held)
    }

    async fn released(start: Start<'_>, signal: Signal) -> String {
        let Start::Ready(held) = start else { panic!("not ready") };
        held.release(signal).await.expect("finishes").stdout
    }

    #[tokio::test]
    async fn a_fleet_that_keeps_time_goes_at_one_moment_ahead() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = LocalTransport::at(dir.path());
        let mut starts = vec![ready(&host, TIMED).await, ready(&host, TIMED).await];
        let before = moment::now();
        let signals = agree_on_a_moment(&mut starts).await.expect("all ready");
        let [Signal::GoAt(a), Signal::GoAt(b)] = signals[..] else { panic!("{signals:?}") };
        assert_eq!(a, b, "one machine, one clock: one moment");
        assert!(a > before && a < before + 1.0, "a little ahead: {a} from {before}");
        let out = released(starts.remove(0), signals[0]).await;
        assert!(out.ends_with(&format!("got go {a:.6}\n")), "{out}");
    }

    #[tokio::test]
    async fn a_host_that_cannot_wait_for_a_moment_makes_every_host_go_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = LocalTransport::at(dir.path());
        let mut starts = vec![ready(&host, TIMED).await, ready(&host, UNTIMED).await];
        let signals = agree_on_a_moment(&mut starts).await.expect("all ready");
        assert_eq!(signals, [Signal::Go, Signal::Go]);
        let untimed = released(starts.pop().expect("two"), Signal::Go).await;
        assert_eq!(untimed, "got go\n");
        let timed = released(starts.pop().expect("one"), Signal::Go).await;
        assert_eq!(timed, "got go\n", "no clock was asked for");
    }

    #[tokio::test]
    async fn a_clock_that_cannot_be_read_calls_off_every_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = LocalTransport::at(dir.path());
        let mut starts = vec![ready(&host, TIMED).await, ready(&host, GARBLED).await];
        assert_eq!(agree_on_a_moment(&mut starts).await, None);
        assert!(matches!(&starts[1], Start::Failed(e) if e.to_string().contains("half past ten")), "{:?}", starts[1]);
    }

    #[tokio::test]
    async fn a_lone_host_goes_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = LocalTransport::at(dir.path());
        let mut starts = vec![ready(&host, TIMED).await];
        assert_eq!(agree_on_a_moment(&mut starts).await, Some(vec![Signal::Go]));
    }
}
