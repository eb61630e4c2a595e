//! The end of a run on a host: finalize after the fleet decided to keep the
//! run (append to revisions.log, prune old releases, unlock), or abort after
//! a failure before any switch (remove this run's release where it is not
//! live, unlock).
//!
//! Each works only under this run's lock (see [`lock::guard_or_leave`]),
//! and releases it last whatever failed before: a line that fails prints
//! `warning <what>` (the engine reports it) instead of stopping the script.

use crate::release::ReleaseId;
use crate::shell::{Script, Sh};

use super::lock::{self, LockOwner};
use super::script_in;
use super::supervise;

/// Appends `log_line` to revisions.log, marks `never_live` (see
/// [`NEVER_LIVE`]), removes `prune` (never the release `current` points
/// to, checked again on the host), and releases the lock.
pub fn finalize(
    deploy_path: &str,
    owner: &LockOwner,
    log_line: &str,
    prune: &[ReleaseId],
    never_live: &[ReleaseId],
) -> Script {
    let mut s = logged(deploy_path, owner, log_line);
    for release in never_live {
        s.push(Sh::assign("r", release.to_string()));
        s.line(r#"if [ -d "$d/releases/$r" ]; then : > "$d/releases/$r/NEVER_LIVE" || echo "warning could not mark release $r as never live"; fi"#);
    }
    if !prune.is_empty() {
        s.line(GENTLY);
    }
    for release in prune {
        s.push(Sh::assign("r", release.to_string()));
        // `-ef`: whatever form `current` takes (Deployer may write it absolute).
        s.line(r#"if ! [ "$d/current" -ef "$d/releases/$r" ]; then $gently rm -rf "$d/releases/$r" 2>/dev/null || echo "warning could not remove old release $r completely; remove $d/releases/$r by hand"; fi"#);
    }
    s.line(lock::RELEASE_OURS);
    s
}

/// The mark of a release newer than the one a deploy replaced, which a
/// failed or interrupted run left (cutover's own, or the tool's before it):
/// it was never live, so no rollback goes there unless named with `--to`.
pub const NEVER_LIVE: &str = "NEVER_LIVE";

/// Finalizes a rollback to `target`: logs it, marks the releases it went
/// back over (`left`: newer than the target, up to the one that was live)
/// `ROLLED_BACK`, so that no later rollback returns there unless named
/// with `--to`, clears the mark of `target` (live again), and releases
/// the lock.
pub fn finalize_rollback(
    deploy_path: &str,
    owner: &LockOwner,
    log_line: &str,
    target: ReleaseId,
    left: &[ReleaseId],
) -> Script {
    let mut s = logged(deploy_path, owner, log_line);
    s.push(Sh::assign("r", target.to_string()));
    // Live again: no mark says otherwise (cutover's, or Deployer's BAD_RELEASE).
    s.line(r#"rm -f "$d/releases/$r/ROLLED_BACK" "$d/releases/$r/NEVER_LIVE" "$d/releases/$r/BAD_RELEASE" || echo "warning could not clear the marks of $d/releases/$r""#);
    for left in left {
        s.push(Sh::assign("r", left.to_string()));
        s.line(r#"if [ -d "$d/releases/$r" ]; then : > "$d/releases/$r/ROLLED_BACK" || echo "warning could not mark release $r as rolled back"; fi"#);
    }
    s.line(lock::RELEASE_OURS);
    s
}

/// The head of every finalize, under this run's lock: the line appended
/// to revisions.log, the run's jobs file forgotten.
/// Sets `$gently`: the prune runs at the lowest CPU and I/O priority the
/// host allows (`nice -n 19`, `ionice -c 3` where it works), so removing a
/// release of thousands of files right after the switch does not slow the
/// requests the new release is serving.
const GENTLY: &str = r#"gently=; if command -v nice >/dev/null 2>&1; then gently="nice -n 19"; fi; if command -v ionice >/dev/null 2>&1 && ionice -c 3 true 2>/dev/null; then gently="$gently ionice -c 3"; fi"#;

fn logged(deploy_path: &str, owner: &LockOwner, log_line: &str) -> Script {
    let mut s = script_in(deploy_path);
    lock::guard_or_leave(&mut s, owner);
    s.push(Sh::assign("line", log_line));
    s.line(LOG_APPEND);
    s.line(supervise::FORGET_JOBS);
    s
}

/// Appends `$line` to revisions.log; a failure is a warning.
const LOG_APPEND: &str =
    r#"printf '%s\n' "$line" >> "$d/revisions.log" || echo "warning could not append to $d/revisions.log""#;

/// The `warning ...` lines a finalize or abort script printed.
pub fn warnings(stdout: &str) -> impl Iterator<Item = &str> {
    stdout.lines().filter_map(|l| l.strip_prefix("warning "))
}

/// Waits until this run's work on the host has ended (see
/// [`supervise`]), then removes its release and staged link, and releases
/// the lock.
pub fn abort(deploy_path: &str, owner: &LockOwner, release: ReleaseId, before_unlock: Script) -> Script {
    let mut s = script_in(deploy_path);
    wait_for_jobs(&mut s, owner);
    lock::guard_or_leave(&mut s, owner);
    s.push(Sh::assign("r", release.to_string()));
    s.line(r#"if [ "$(readlink "$d/current" 2>/dev/null)" != "releases/$r" ]; then rm -rf "$d/releases/$r" "$d/releases/$r.tar" 2>/dev/null || echo "warning could not remove $d/releases/$r completely"; fi"#);
    s.line(r#"rm -f "$d/current-tmp" || echo "warning could not remove $d/current-tmp""#);
    s.extend(before_unlock);
    s.line(lock::RELEASE_OURS);
    s
}

/// Waits until this run's work on the host ended, then releases the lock
/// and removes a staged link, for a rollback that failed before switching
/// (the target release is kept).
pub fn unlock_only(deploy_path: &str, owner: &LockOwner, before_unlock: Script) -> Script {
    let mut s = script_in(deploy_path);
    wait_for_jobs(&mut s, owner);
    lock::guard_or_leave(&mut s, owner);
    s.line(r#"rm -f "$d/current-tmp" || echo "warning could not remove $d/current-tmp""#);
    s.extend(before_unlock);
    s.line(lock::RELEASE_OURS);
    s
}

/// Waits until this run's work on the host ended (a script stopped
/// half-way may still be taking the lock), before the lock is looked at.
fn wait_for_jobs(s: &mut Script, owner: &LockOwner) {
    s.push(Sh::assign("token", &owner.token));
    s.line(supervise::WAIT_FOR_JOBS);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_log_append_still_unlocks_and_warns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let owner = LockOwner::current("shop", "deploy", None);
        std::fs::create_dir_all(d.join(".cutover/lock")).expect("lock");
        std::fs::write(d.join(".cutover/lock/token"), format!("{}\n", owner.token)).expect("token");
        // A directory where the log should be: appending fails, even as root.
        std::fs::create_dir_all(d.join("revisions.log")).expect("log dir");
        let script = finalize(&d.display().to_string(), &owner, "line", &[], &[]).render();
        let out = std::process::Command::new("sh").arg("-c").arg(script).output().expect("sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(!d.join(".cutover/lock").exists(), "the lock is released");
        assert_eq!(
            warnings(&stdout).collect::<Vec<_>>(),
            [format!("could not append to {}/revisions.log", d.display())]
        );
    }
}
