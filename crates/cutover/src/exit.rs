//! Exit codes, as documented in docs/exit-codes.md.

use cutover_core::event::Outcome;

/// Done.
pub const DONE: u8 = 0;
/// Failed before any host switched: the fleet is unchanged.
pub const FAILED: u8 = 1;
/// Bad input or configuration: nothing was touched.
pub const BAD_INPUT: u8 = 2;
/// Failed after switching began; every switched host was rolled back.
pub const ROLLED_BACK: u8 = 3;
/// The fleet is left on different releases, or halted where it failed
/// (`on_failure: halt`); the summary says who is where.
pub const INCONSISTENT: u8 = 4;
/// Another run holds the lock.
pub const LOCKED: u8 = 5;
/// Interrupted a third time: exited at once, a lock may be left.
pub const INTERRUPTED_THRICE: u8 = 130;

/// The exit code of a run that ended with `outcome`.
pub fn code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Done => DONE,
        Outcome::Failed => FAILED,
        Outcome::RolledBack => ROLLED_BACK,
        Outcome::Inconsistent | Outcome::Halted => INCONSISTENT,
        Outcome::Locked => LOCKED,
    }
}
