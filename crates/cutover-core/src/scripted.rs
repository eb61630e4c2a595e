//! A scripted transport, for table tests of the engine: each host is a
//! directory where every script really runs (the local transport), except
//! where a fault table says what goes wrong instead, per host and phase.
//! Each fault strikes once: the compensation that follows runs normally.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::event::Phase;
use crate::fleet::Target;
use crate::held::HeldScript;
use crate::local::LocalConnector;
use crate::transport::{Connector, Output, RemoteCommand, Transport, TransportError};

/// What goes wrong with a host's script in a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The script does not run; it "exits" with this code.
    Fail(i32),
    /// The script runs, then exits with this code (a flip that renamed and
    /// then failed).
    FailAfter(i32),
    /// The connection is lost before the script runs.
    LoseBefore,
    /// The script runs; the connection is lost before its result arrives.
    LoseAfter,
    /// The script never answers: its time limit strikes.
    Hang,
    /// The lock is held by another run: the lock script's "held" answer.
    HeldByAnother,
}

/// What a lock script prints when another run holds the lock.
const HELD: &str = "held {\"user\":\"someone\",\"machine\":\"elsewhere\",\"command\":\"deploy\"}\n";

type Faults = Arc<Mutex<HashMap<(String, Phase), Fault>>>;

/// Every round trip started, in order: host and phase.
type RoundTrips = Arc<Mutex<Vec<(String, Phase)>>>;

/// Connects `connection: local` hosts through the fault table.
#[derive(Clone, Debug, Default)]
pub struct ScriptedConnector {
    faults: Faults,
    round_trips: RoundTrips,
}

impl ScriptedConnector {
    /// A connector with one fault: `fault` for `host`'s script of `phase`.
    pub fn with(host: &str, phase: Phase, fault: Fault) -> Self {
        let faults = HashMap::from([((host.to_owned(), phase), fault)]);
        Self { faults: Arc::new(Mutex::new(faults)), round_trips: RoundTrips::default() }
    }

    /// The round trips started so far (one per script), host and phase.
    pub fn round_trips(&self) -> Vec<(String, Phase)> {
        self.round_trips.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Whether every fault struck.
    pub fn all_struck(&self) -> bool {
        self.faults.lock().map(|f| f.is_empty()).unwrap_or(false)
    }
}

impl Connector for ScriptedConnector {
    fn connect<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Box<dyn Transport>, TransportError>> {
        async move {
            let inner = LocalConnector.connect(target).await?;
            let host = target.name.clone();
            let (faults, round_trips) = (Arc::clone(&self.faults), Arc::clone(&self.round_trips));
            Ok(Box::new(ScriptedTransport { inner, host, faults, round_trips }) as Box<dyn Transport>)
        }
        .boxed()
    }
}

/// One host of a [`ScriptedConnector`].
#[derive(Debug)]
struct ScriptedTransport {
    inner: Box<dyn Transport>,
    host: String,
    faults: Faults,
    round_trips: RoundTrips,
}

impl ScriptedTransport {
    /// The fault for this phase, taken from the table (it strikes once).
    fn take(&self, phase: Phase) -> Option<Fault> {
        self.faults.lock().ok()?.remove(&(self.host.clone(), phase))
    }

    fn count(&self, phase: Phase) {
        if let Ok(mut round_trips) = self.round_trips.lock() {
            round_trips.push((self.host.clone(), phase));
        }
    }

    fn has(&self, phase: Phase) -> bool {
        self.faults.lock().is_ok_and(|f| f.contains_key(&(self.host.clone(), phase)))
    }
}

fn lost() -> TransportError {
    TransportError::ConnectionLost { detail: "scripted: the connection dropped".into() }
}

impl ScriptedTransport {
    /// A held script that fails before its ready line: at once, or once it
    /// ran as far as its ready line (and is then called off).
    async fn fail_before_ready(
        &self,
        command: RemoteCommand,
        fault: Fault,
    ) -> Result<Option<HeldScript<'_>>, TransportError> {
        let timeout = command.timeout;
        if matches!(fault, Fault::FailAfter(_) | Fault::LoseAfter)
            && let Some(mut held) = self.inner.hold(command).await?
        {
            held.ready().await?;
            held.release(crate::held::Signal::CallOff).await?;
        }
        let ended = |code: i32, stdout: &'static str, stderr: &'static str| {
            Ok(Some(HeldScript::new(
                Box::pin(tokio::io::sink()),
                Box::pin(stdout.as_bytes()),
                Box::pin(stderr.as_bytes()),
                async move { Ok(Some(code)) }.boxed(),
                timeout,
            )))
        };
        match fault {
            Fault::Fail(code) | Fault::FailAfter(code) => ended(code, "", "scripted failure\n"),
            Fault::HeldByAnother => ended(crate::remote::lock::LOCK_HELD, HELD, ""),
            Fault::LoseBefore | Fault::LoseAfter => Err(lost()),
            Fault::Hang => Err(TransportError::TimedOut { after: timeout }),
        }
    }
}

impl Transport for ScriptedTransport {
    fn run(&self, command: RemoteCommand) -> BoxFuture<'_, Result<Output, TransportError>> {
        self.count(command.phase);
        async move {
            let failed =
                |code| Output { exit_code: Some(code), stderr: "scripted failure\n".into(), ..Output::default() };
            match self.take(command.phase) {
                None => self.inner.run(command).await,
                Some(Fault::Fail(code)) => Ok(failed(code)),
                Some(Fault::FailAfter(code)) => {
                    let ran = self.inner.run(command).await?;
                    Ok(Output { exit_code: Some(code), ..ran })
                }
                Some(Fault::LoseBefore) => Err(lost()),
                Some(Fault::LoseAfter) => {
                    self.inner.run(command).await?;
                    Err(lost())
                }
                Some(Fault::Hang) => Err(TransportError::TimedOut { after: command.timeout }),
                Some(Fault::HeldByAnother) => Ok(Output {
                    exit_code: Some(crate::remote::lock::LOCK_HELD),
                    stdout: HELD.into(),
                    ..Output::default()
                }),
            }
        }
        .boxed()
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.inner.close()
    }

    /// A held script with a fault is run plainly (released with `go`), so
    /// the fault applies to its whole round trip. So is a flip that would
    /// finalize in the same script when finalize has a fault: the engine
    /// then runs that host's finalize as a script of its own, where the
    /// fault strikes.
    ///
    /// A lock fault still pending when a flip starts means the lock rides
    /// in the flip (a rollback all at once): it strikes before the ready
    /// line, so no host is let go.
    fn hold(&self, command: RemoteCommand) -> BoxFuture<'_, Result<Option<HeldScript<'_>>, TransportError>> {
        if command.phase == Phase::Flip
            && let Some(fault) = self.take(Phase::Lock)
        {
            self.count(command.phase);
            return self.fail_before_ready(command, fault).boxed();
        }
        // A flip that locks cannot run unheld: its fault strikes before
        // its ready line too (in staging, say).
        if command.phase == Phase::Flip
            && crate::remote::lock::takes_lock(&command.script)
            && let Some(fault) = self.take(Phase::Flip)
        {
            self.count(command.phase);
            return self.fail_before_ready(command, fault).boxed();
        }
        let finalizes_here = command.phase == Phase::Flip && command.script.contains(crate::remote::switch::FINALIZING);
        if self.has(command.phase) || (finalizes_here && self.has(Phase::Finalize)) {
            return async { Ok(None) }.boxed();
        }
        self.count(command.phase);
        self.inner.hold(command)
    }
}
