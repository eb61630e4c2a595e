//! Where a run stands: one [`Standing`] per host, moved forward by
//! [`super::forward`] and back by [`super::compensate`]; what to undo, the
//! outcome (and so the exit code) and the summary are all read from it.
//!
//! Forward, a host goes `Untouched -> Locked -> Built -> Staged -> Switched
//! -> Healthy -> Finalized`. A failure stops the run at the next gate; then
//! the compensation follows from each host's state:
//!
//! | state before the failure | compensation | state after |
//! |---|---|---|
//! | `Untouched` | nothing | `Untouched` |
//! | `Locked`, `Built`, `Staged` | abort: this run's release removed, unlocked | `Released` |
//! | `Switched`, `Healthy`, `MaybeSwitched` | undo: `current` renamed back, reloaded; then abort | `Released` (or `Switched` if the undo failed) |
//!
//! `MaybeSwitched` is a host whose flip did not say whether it renamed
//! (its connection was lost): `current` is read on every reachable host
//! before anything is decided, and a host that cannot be read stays
//! `MaybeSwitched` and makes the run inconsistent.

use indexmap::IndexMap;
use jiff::Timestamp;

use crate::fleet::Fleet;

use super::failure::HostFailure;

/// Where a host stands in one run: the states it moves through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Standing {
    /// Nothing done on it yet (or it could not be locked).
    Untouched,
    /// This run holds its lock.
    Locked,
    /// This run's release is built on it.
    Built,
    /// `current-tmp` points at the release; the FPM config test passed.
    Staged,
    /// The flip did not say whether it renamed `current`.
    MaybeSwitched,
    /// `current` points at this run's release (the host said so, or it was
    /// read).
    Switched,
    /// Switched, reloaded and its health check passed.
    Healthy,
    /// The run is kept: logged, pruned, unlocked.
    Finalized,
    /// Compensated: back where it was, this run's work removed, unlocked.
    Released,
}

impl Standing {
    /// Whether this run holds the host's lock.
    pub fn holds_lock(self) -> bool {
        matches!(self, Self::Locked | Self::Built | Self::Staged | Self::MaybeSwitched | Self::Switched | Self::Healthy)
    }

    /// Whether `current` may point at this run's release.
    pub fn may_be_switched(self) -> bool {
        matches!(self, Self::MaybeSwitched | Self::Switched | Self::Healthy)
    }
}

/// A run's state: every host's, and what the run as a whole must remember.
#[derive(Debug)]
pub(crate) struct RunState {
    pub hosts: IndexMap<String, Standing>,
    pub switched_at: IndexMap<String, Timestamp>,
    pub health: IndexMap<String, String>,
    /// The batch whose drain hook ran and whose undrain hook has not.
    pub drained: Option<usize>,
    /// Whether a step ran that a compensation cannot undo (`before_flip`:
    /// migrations).
    pub irreversible_ran: bool,
    pub failures: Vec<HostFailure>,
    pub warnings: Vec<String>,
}

impl RunState {
    pub fn new(fleet: &Fleet) -> Self {
        Self {
            hosts: fleet.hosts.iter().map(|t| (t.name.clone(), Standing::Untouched)).collect(),
            switched_at: IndexMap::new(),
            health: IndexMap::new(),
            drained: None,
            irreversible_ran: false,
            failures: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn state(&self, host: &str) -> Standing {
        self.hosts.get(host).copied().unwrap_or(Standing::Untouched)
    }

    pub fn set(&mut self, host: &str, state: Standing) {
        if let Some(slot) = self.hosts.get_mut(host) {
            *slot = state;
        }
    }

    /// Moves `host` forward to `state` (never back).
    pub fn advance(&mut self, host: &str, state: Standing) {
        if self.state(host) < state {
            self.set(host, state);
        }
    }

    /// The hosts in a state that `keep` accepts, in fleet order.
    pub fn hosts_where(&self, keep: impl Fn(Standing) -> bool) -> Vec<String> {
        self.hosts.iter().filter(|(_, s)| keep(**s)).map(|(h, _)| h.clone()).collect()
    }

    /// Whether any host may have switched: the run is past the point where
    /// aborting alone is enough.
    pub fn switching_began(&self) -> bool {
        self.hosts.values().any(|s| s.may_be_switched())
    }
}

#[cfg(test)]
mod tests {
    use super::Standing::*;

    #[test]
    fn only_hosts_between_lock_and_release_hold_the_lock() {
        let holding: Vec<_> = [Untouched, Locked, Built, Staged, MaybeSwitched, Switched, Healthy, Finalized, Released]
            .into_iter()
            .filter(|s| s.holds_lock())
            .collect();
        assert_eq!(holding, [Locked, Built, Staged, MaybeSwitched, Switched, Healthy]);
    }
}
