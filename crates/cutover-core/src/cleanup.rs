//! Which old releases to remove after a deploy: keep the newest
//! `keep_releases`, and never the live release or the one it replaced.

use crate::release::ReleaseId;

/// The releases to remove from a host.
///
/// `releases` is what is on disk (names that are not release ids were never
/// parsed into it, so they are never touched). `live` is the release
/// `current` points to after the run, `previous` the one it replaced.
pub fn prune(releases: &[ReleaseId], keep: usize, live: ReleaseId, previous: Option<ReleaseId>) -> Vec<ReleaseId> {
    let mut sorted: Vec<ReleaseId> = releases.to_vec();
    sorted.sort();
    sorted.dedup();
    let excess = sorted.len().saturating_sub(keep);
    sorted.into_iter().take(excess).filter(|r| *r != live && Some(*r) != previous).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ids(n: u64) -> Vec<ReleaseId> {
        (0..n).map(|i| format!("202611231200{:02}", i).parse().expect("id")).collect()
    }

    #[test]
    fn keeps_the_newest() {
        let all = ids(7);
        let removed = prune(&all, 5, all[6], Some(all[5]));
        assert_eq!(removed, vec![all[0], all[1]]);
    }

    #[test]
    fn never_removes_live_or_previous_even_when_old() {
        let all = ids(7);
        // A rollback put an old release live; the one it replaced is old too.
        let removed = prune(&all, 2, all[0], Some(all[1]));
        assert!(!removed.contains(&all[0]));
        assert!(!removed.contains(&all[1]));
        assert_eq!(removed.len(), 3);
    }

    proptest! {
        #[test]
        fn live_and_previous_survive(n in 1u64..40, keep in 2usize..10, live in 0usize..40, prev in 0usize..40) {
            let all = ids(n);
            let live = all[live % all.len()];
            let prev = all[prev % all.len()];
            let removed = prune(&all, keep, live, Some(prev));
            prop_assert!(!removed.contains(&live));
            prop_assert!(!removed.contains(&prev));
            prop_assert!(all.len() - removed.len() >= keep.min(all.len()));
        }
    }
}
