//! A failure on one host: which host, which phase and step, and what.

use crate::event::Phase;
use crate::remote::lock::{LOCK_HELD, LOCK_LOST, LockOwner, held_by};
use crate::transport::TransportError;

/// The name failures of this machine's own work are reported under.
pub const LOCAL: &str = "(local)";

/// What went wrong on a host.
#[derive(Clone, Debug, thiserror::Error)]
pub enum FailureKind {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("command failed with {}", exit_status(*exit_code))]
    CommandFailed { exit_code: Option<i32>, output_tail: String },
    #[error("locked by {owner}")]
    Locked { owner: String },
    /// The lock this run took is no longer its own (removed by hand, and
    /// maybe taken by another run): nothing more is done on the host.
    #[error("the lock is no longer this run's (now held by {owner}); nothing more was done on this host")]
    LockLost { owner: String },
    #[error("{0}")]
    Precondition(String),
    #[error("interrupted")]
    Interrupted,
    /// The flip was not let go on this host (it or another host was not
    /// ready): it did not switch.
    #[error("flip called off ({reason})")]
    CalledOff { reason: String },
}

/// An exit code for people, with what the shell means by it when that is
/// well known.
fn exit_status(code: Option<i32>) -> String {
    match code {
        None => "no exit code (killed by a signal)".to_owned(),
        Some(127) => "exit code 127 (command not found)".to_owned(),
        Some(126) => "exit code 126 (found but not executable)".to_owned(),
        Some(code) => format!("exit code {code}"),
    }
}

/// A failure on one host, in one phase.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{host}: {phase}{}: {kind}", step.as_ref().map(|s| format!(" (step `{s}`)")).unwrap_or_default())]
pub struct HostFailure {
    pub host: String,
    pub phase: Phase,
    pub step: Option<String>,
    #[source]
    pub kind: FailureKind,
}

impl HostFailure {
    pub fn new(host: &str, phase: Phase, kind: impl Into<FailureKind>) -> Self {
        Self { host: host.to_owned(), phase, step: None, kind: kind.into() }
    }

    /// What the user can do about it, when known.
    pub fn hint(&self) -> Option<String> {
        match &self.kind {
            FailureKind::Transport(e) => e.hint().map(str::to_owned),
            FailureKind::Locked { .. } => {
                Some("wait for the other run to finish, or run `cutover unlock` if it died".to_owned())
            }
            _ => None,
        }
    }

    /// A lock script's "held" exit (in the lock phase, or before any step
    /// of a script that locks first, such as a rollback's flip), or a
    /// "lost" exit in any phase, as what it means: the lock is (now)
    /// another run's.
    pub(crate) fn about_the_lock(self) -> Self {
        let locking = self.phase == Phase::Lock || self.step.is_none();
        match &self.kind {
            FailureKind::CommandFailed { exit_code: Some(LOCK_HELD), output_tail }
                if locking && !held_by(output_tail).is_null() =>
            {
                let owner = LockOwner::describe(&held_by(output_tail));
                Self { kind: FailureKind::Locked { owner }, ..self }
            }
            FailureKind::CommandFailed { exit_code: Some(LOCK_LOST), output_tail } => {
                let owner = LockOwner::describe(&held_by(output_tail));
                Self { kind: FailureKind::LockLost { owner }, ..self }
            }
            _ => self,
        }
    }

    /// The last lines of the command's output, when it ran.
    pub fn output_tail(&self) -> Option<&str> {
        match &self.kind {
            FailureKind::CommandFailed { output_tail, .. } if !output_tail.is_empty() => Some(output_tail),
            _ => None,
        }
    }
}
