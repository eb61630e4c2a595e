//! The engine: runs a command against a fleet through [`crate::transport`],
//! emitting [`crate::event::Event`]s, and ends every run with a
//! [`crate::event::Summary`].

mod deploy;
mod execute;
mod failure;
mod local_hook;
mod preflight;
mod recover;
mod rollback;
mod session;
mod status;
mod together;

use tokio::sync::watch;

use crate::config::LoadedInventory;
use crate::event::{Event, EventSink, Summary};
use crate::fleet::Fleet;
use crate::transport::Connector;

pub use deploy::{DeployRequest, LOCAL, deploy, plan_deploy};
pub use failure::{FailureKind, HostFailure};
pub use rollback::{RollbackRequest, plan_rollback, rollback};
pub use status::{status, unlock};

/// Everything a run needs.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub loaded: &'a LoadedInventory,
    pub fleet: &'a Fleet,
    pub connector: &'a dyn Connector,
    pub events: &'a dyn EventSink,
    pub interrupt: &'a Interrupt,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("fleet", &self.fleet.names()).finish_non_exhaustive()
    }
}

impl Context<'_> {
    fn emit(&self, event: Event) {
        self.events.emit(event);
    }
}

/// Set when the user asks the run to stop (Ctrl-C, SIGTERM).
#[derive(Clone, Debug)]
pub struct Interrupt {
    rx: watch::Receiver<bool>,
}

impl Interrupt {
    /// An interrupt and the sender that raises it.
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self { rx })
    }

    /// An interrupt that never fires.
    pub fn never() -> Self {
        Self::new().1
    }

    pub fn is_raised(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when the interrupt is raised; never, if its sender is gone.
    pub async fn raised(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|raised| *raised).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// How a run ended: the summary every reporter shows, and the failures
/// behind it, each naming its host and step.
#[derive(Debug)]
pub struct Report {
    pub summary: Summary,
    pub failures: Vec<HostFailure>,
}
