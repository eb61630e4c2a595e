//! The engine: runs a command against a fleet through [`crate::transport`],
//! emitting [`crate::event::Event`]s, and ends every run with a
//! [`crate::event::Summary`].
//!
//! A deploy or rollback is a two-phase commit: [`forward`] runs the plan
//! until it ends or something fails, recording each host's state in
//! [`state`]; [`compensate`] undoes from that state; [`execute`] ties the two
//! and summarizes. Neither `forward` nor `compensate` calls the other.
//!
//! # Glossary
//!
//! - **gate**: a point every host must have passed before any goes on.
//! - **stage**: point `current-tmp` at the release, test the FPM config.
//! - **flip**: rename `current-tmp` over `current` (one `rename(2)`); the
//!   host prints a line right after it, so "switched" is read, not guessed.
//! - **decision**: the last gate; every host switched and healthy (all at
//!   once) or the last batch passed (rolling). Nothing is final before it.
//! - **finalize**: after the decision, on every host: revisions.log, prune,
//!   unlock.
//! - **abort**: compensation before any switch: remove this run's release,
//!   unlock.
//! - **undo**: compensation after switching began: rename `current` back,
//!   reload; then abort.
//! - **token**: the random id of a run in its lock; only that run works
//!   under the lock or releases it.

mod adhoc;
mod around;
mod check;
mod compensate;
mod decide;
mod deploy;
mod execute;
mod failure;
mod forward;
mod history;
mod local_hook;
mod preflight;
mod relay;
mod rollback;
mod session;
mod state;
mod status;
mod together;

use tokio::sync::watch;

use crate::config::LoadedInventory;
use crate::event::{Event, EventSink, Summary};
use crate::fleet::Fleet;
use crate::secrets::Secrets;
use crate::transport::Connector;

pub use adhoc::{RunRequest, run_command};
pub use check::check;
pub use deploy::{DeployRequest, deploy, plan_deploy};
pub use failure::{FailureKind, HostFailure, LOCAL};
pub use history::releases;
pub use relay::printable;

pub use rollback::{RollbackRequest, plan_rollback, rollback};
pub use status::{HeldLocks, status, unlock};

/// Everything a run needs.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub loaded: &'a LoadedInventory,
    pub fleet: &'a Fleet,
    pub connector: &'a dyn Connector,
    pub events: &'a dyn EventSink,
    pub interrupt: &'a Interrupt,
    /// The run's secrets, read before it started (none for a run that
    /// runs no step).
    pub secrets: &'a Secrets,
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

    /// The inventory's environment this run uses, for its summary.
    fn environment(&self) -> Option<String> {
        self.loaded.inventory.environment.clone()
    }
}

/// Raised when the user asks the run to stop (Ctrl-C, SIGTERM): once to
/// stop gracefully (finish or undo as the phase requires), twice to stop
/// waiting for any remote work at once (then compensate all the same).
#[derive(Clone, Debug)]
pub struct Interrupt {
    rx: watch::Receiver<u8>,
}

/// Raises an [`Interrupt`].
#[derive(Debug)]
pub struct InterruptSender {
    tx: watch::Sender<u8>,
}

impl InterruptSender {
    /// Raises the interrupt one level (the first time: stop; the second:
    /// hurry). Returns how many times it has been raised.
    pub fn raise(&self) -> u8 {
        self.tx.send_modify(|level| *level = level.saturating_add(1));
        *self.tx.borrow()
    }
}

impl Interrupt {
    /// An interrupt and the sender that raises it.
    pub fn new() -> (InterruptSender, Self) {
        let (tx, rx) = watch::channel(0);
        (InterruptSender { tx }, Self { rx })
    }

    /// An interrupt that never fires.
    pub fn never() -> Self {
        Self::new().1
    }

    /// Whether the user asked the run to stop.
    pub fn is_raised(&self) -> bool {
        *self.rx.borrow() >= 1
    }

    /// Whether the user asked twice: stop waiting for anything.
    pub fn is_hurried(&self) -> bool {
        *self.rx.borrow() >= 2
    }

    /// Resolves when the interrupt is raised; never, if its sender is gone.
    pub async fn raised(&self) {
        self.reaches(1).await;
    }

    /// Resolves when the interrupt is raised a second time.
    pub async fn hurried(&self) {
        self.reaches(2).await;
    }

    async fn reaches(&self, level: u8) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|raised| *raised >= level).await.is_err() {
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
