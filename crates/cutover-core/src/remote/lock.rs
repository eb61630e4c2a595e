//! The deploy lock: an atomic `mkdir` of `$d/.cutover/lock`, with an owner
//! file saying who holds it, since when, and for which release, and a token
//! file holding the run's random token. Only the run whose token is in the
//! lock works under it or releases it: a run that stalled, was unlocked by
//! hand and woke after another run took the lock touches nothing.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::shell::{Script, Sh};

use super::script_in;

/// The exit code of the lock script when another run holds the lock.
pub const LOCK_HELD: i32 = 75;

/// The exit code of a script that found the lock no longer this run's.
pub const LOCK_LOST: i32 = 76;

/// Who holds a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    pub application: String,
    pub command: String,
    pub user: String,
    pub machine: String,
    pub pid: u32,
    pub since: Timestamp,
    pub release: Option<String>,
    /// The inventory's environment the run deploys to, when it has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Random, one per run: whose lock it is.
    #[serde(default)]
    pub token: String,
}

impl LockOwner {
    /// The owner for this process, now.
    pub fn current(application: &str, command: &str, release: Option<String>) -> Self {
        Self {
            application: application.to_owned(),
            command: command.to_owned(),
            user: crate::deployer::user(),
            machine: crate::deployer::machine(),
            pid: std::process::id(),
            since: Timestamp::now(),
            release,
            environment: None,
            token: new_token(),
        }
    }

    /// The same, for a run in the inventory's `environment`.
    pub fn in_environment(self, environment: Option<&str>) -> Self {
        Self { environment: environment.map(str::to_owned), ..self }
    }

    /// A fixed owner, for exact scripts in tests.
    #[cfg(test)]
    pub(crate) fn example() -> Self {
        Self {
            application: "shop".into(),
            command: "deploy".into(),
            user: "ana".into(),
            machine: "laptop".into(),
            pid: 42,
            since: "2026-11-23T14:30:12Z".parse().expect("timestamp"),
            release: Some("20261123143012".into()),
            environment: None,
            token: "0123456789abcdef0123456789abcdef".into(),
        }
    }

    /// "ana@laptop (pid 4242), deploy of 20261123143012, held for 3m 12s".
    pub fn describe(owner: &serde_json::Value) -> String {
        let Ok(owner) = serde_json::from_value::<LockOwner>(owner.clone()) else {
            return format!("an unknown owner ({owner})");
        };
        let age = Timestamp::now().duration_since(owner.since);
        let secs = age.as_secs().max(0);
        let age = if secs >= 3600 {
            format!("{}h {}m", secs / 3600, secs % 3600 / 60)
        } else {
            format!("{}m {}s", secs / 60, secs % 60)
        };
        let what = match &owner.release {
            Some(release) => format!("{} of {release}", owner.command),
            None => owner.command.clone(),
        };
        let what = match &owner.environment {
            Some(environment) => format!("{what} in {environment}"),
            None => what,
        };
        format!("{}@{} (pid {}), {what}, held for {age}", owner.user, owner.machine, owner.pid)
    }
}

/// 128 random bits as hex, from the standard library's per-process random
/// hash keys (no dependency for this one use).
fn new_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let half = || {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(jiff::Timestamp::now().as_nanosecond() as u128);
        hasher.finish()
    };
    format!("{:016x}{:016x}", half(), half())
}

/// Takes the lock, or exits [`LOCK_HELD`] printing `held <owner json>`
/// when another run holds it. Any other failure exits 1 and leaves no lock.
/// `expected` is where preflight saw `current` point: if another run moved it
/// in between, the lock is given back and the run stops.
pub fn acquire(deploy_path: &str, owner: &LockOwner, expected: Option<&str>) -> Script {
    let json = serde_json::to_string(owner).unwrap_or_else(|_| "{}".to_owned());
    let mut s = script_in(deploy_path);
    s.push(Sh::assign("owner", json));
    s.push(Sh::assign("expected", expected.unwrap_or("")));
    s.line(r#"mkdir -p "$d/.cutover""#);
    s.line(r#"if ! mkdir "$d/.cutover/lock" 2>/dev/null; then if [ -d "$d/.cutover/lock" ]; then echo "held $(cat "$d/.cutover/lock/owner" 2>/dev/null || echo '{}')"; exit 75; fi; echo "could not create $d/.cutover/lock" >&2; exit 1; fi"#);
    s.push(Sh::assign("token", &owner.token));
    s.line(r#"if ! printf '%s\n' "$owner" > "$d/.cutover/lock/owner" || ! printf '%s\n' "$token" > "$d/.cutover/lock/token"; then rm -rf "$d/.cutover/lock"; exit 1; fi"#);
    s.line(r#"now=$(readlink "$d/current" 2>/dev/null || true)"#);
    s.line(r#"if [ "$now" != "$expected" ]; then rm -rf "$d/.cutover/lock"; echo "current changed since preflight (now ${now:-none}, was ${expected:-none}); run again" >&2; exit 1; fi"#);
    s
}

/// In a script that goes on after taking the lock: give it back if any
/// later line fails, provided it is still this run's (a guard that finds
/// another run's token exits, and must leave that lock alone).
///
/// What the staging part left is undone first: `current-tmp`, and what
/// `cutover_undo_stage` undoes where the script defined it (blue-green's
/// idle master).
pub const RELEASE_ON_FAILURE: &str = concat!(
    r#"trap 'held=; { read -r held < "$d/.cutover/lock/token"; } 2>/dev/null || true; "#,
    r#"if [ "$held" = "$token" ]; then "#,
    r#"if command -v cutover_undo_stage >/dev/null 2>&1; then cutover_undo_stage || true; fi; "#,
    r#"rm -f "$d/current-tmp"; rm -rf "$d/.cutover/lock"; fi' EXIT"#
);

/// The end of such a script: it succeeded, keep the lock.
pub const KEEP: &str = "trap - EXIT";

/// Reads the lock's token into `$held` ("" when there is none), with the
/// shell alone: a host may lack every other tool.
const READ_TOKEN: &str = r#"held=; { read -r held < "$d/.cutover/lock/token"; } 2>/dev/null || true"#;

/// Starts the work of a script under this run's lock: assigns `$token` and
/// exits [`LOCK_LOST`], printing `lost <owner json>`, when the lock is no
/// longer this run's. `$d` must be assigned.
pub fn guard(s: &mut Script, owner: &LockOwner) {
    s.push(Sh::assign("token", &owner.token));
    s.line(READ_TOKEN);
    s.line(r#"if [ "$held" != "$token" ]; then echo "lost $(cat "$d/.cutover/lock/owner" 2>/dev/null || echo '{}')"; exit 76; fi"#);
}

/// Like [`guard`] for a clean-up that must not fail the run: when the lock
/// is not this run's it says so as a warning and touches nothing.
pub fn guard_or_leave(s: &mut Script, owner: &LockOwner) {
    s.push(Sh::assign("token", &owner.token));
    s.line(READ_TOKEN);
    s.line(r#"if [ "$held" != "$token" ]; then echo "warning the lock is no longer this run's: nothing touched on this host"; exit 0; fi"#);
}

/// Whether a script (as sent, supervised or not) takes the lock.
pub fn takes_lock(script: &str) -> bool {
    script.contains(r#"mkdir "$d/.cutover/lock" 2>/dev/null"#)
}

/// Releases the lock if it holds `$token` (assigned by a guard).
pub const RELEASE_OURS: &str = concat!(
    r#"held=; { read -r held < "$d/.cutover/lock/token"; } 2>/dev/null || true; "#,
    r#"if [ "$held" = "$token" ]; then rm -rf "$d/.cutover/lock"; fi"#
);

/// Removes the lock `cutover unlock` was shown, identified by its token
/// (empty for a lock written before locks had tokens), and no other: a run
/// that took the lock since is left alone.
pub fn release_seen(deploy_path: &str, seen_token: &str) -> Script {
    let mut s = script_in(deploy_path);
    s.push(Sh::assign("token", seen_token));
    s.line(r#"if [ ! -d "$d/.cutover/lock" ]; then exit 0; fi"#);
    s.line(READ_TOKEN);
    s.line(r#"if [ "$held" = "$token" ]; then rm -rf "$d/.cutover/lock"; else echo "lost $(cat "$d/.cutover/lock/owner" 2>/dev/null || echo '{}')"; exit 76; fi"#);
    s
}

/// The token of a lock's owner as the probe read it ("" when it has none).
pub fn token_of(owner: &serde_json::Value) -> &str {
    owner.get("token").and_then(serde_json::Value::as_str).unwrap_or("")
}

/// Reads the owner from the output of a script that exited [`LOCK_HELD`]
/// (`held <owner>`) or [`LOCK_LOST`] (`lost <owner>`).
pub fn held_by(stdout: &str) -> serde_json::Value {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("held ").or_else(|| l.strip_prefix("lost ")))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A script that took the lock and then finds another run's token (its
    /// lock was removed by hand and taken again) leaves that lock alone.
    #[test]
    fn a_failing_script_gives_back_only_its_own_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        let owner = LockOwner::example();
        let mut script = acquire(&d, &owner, None);
        script.line(RELEASE_ON_FAILURE);
        // Meanwhile another run took the lock; then a line fails.
        script.line(r#"printf '%s\n' someone-else > "$d/.cutover/lock/token""#);
        script.line("false");
        let out = std::process::Command::new("sh").arg("-c").arg(script.render()).output().expect("sh");
        assert_eq!(out.status.code(), Some(1));
        let token = std::fs::read_to_string(dir.path().join(".cutover/lock/token")).expect("the other run's lock");
        assert_eq!(token, "someone-else\n");
        // Its own lock is given back.
        std::fs::remove_dir_all(dir.path().join(".cutover")).expect("clear");
        let mut script = acquire(&d, &owner, None);
        script.line(RELEASE_ON_FAILURE);
        script.line("false");
        let out = std::process::Command::new("sh").arg("-c").arg(script.render()).output().expect("sh");
        assert_eq!(out.status.code(), Some(1));
        assert!(!dir.path().join(".cutover/lock").exists(), "its own lock is given back");
    }

    #[test]
    fn acquire_script_is_exact() {
        let owner = LockOwner::example();
        insta::assert_snapshot!(acquire("/srv/my app", &owner, Some("releases/20261123120000")).render());
    }

    fn run(d: &std::path::Path, expected: Option<&str>) -> std::process::Output {
        let owner = LockOwner::current("shop", "deploy", None);
        let script = acquire(&d.display().to_string(), &owner, expected).render();
        std::process::Command::new("sh").arg("-c").arg(script).output().expect("sh")
    }

    #[test]
    fn a_second_acquire_is_held_and_names_the_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(run(dir.path(), None).status.success());
        let second = run(dir.path(), None);
        assert_eq!(second.status.code(), Some(LOCK_HELD));
        let owner = held_by(&String::from_utf8_lossy(&second.stdout));
        assert_eq!(owner["pid"], std::process::id());
    }

    #[test]
    fn a_current_moved_since_preflight_gives_the_lock_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("releases/20261123120000", dir.path().join("current")).expect("link");
        let out = run(dir.path(), Some("releases/20260101000000"));
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("current changed since preflight"));
        assert!(!dir.path().join(".cutover/lock").exists());
        assert!(run(dir.path(), Some("releases/20261123120000")).status.success());
    }

    /// A host where this run (`ours`) took the lock.
    fn locked_by(ours: &LockOwner) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = acquire(&dir.path().display().to_string(), ours, None).render();
        let out = std::process::Command::new("sh").arg("-c").arg(script).output().expect("sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        dir
    }

    fn run_guarded(dir: &std::path::Path, owner: &LockOwner, leave: bool) -> std::process::Output {
        let mut s = script_in(&dir.display().to_string());
        if leave {
            guard_or_leave(&mut s, owner)
        } else {
            guard(&mut s, owner)
        }
        s.line(r#": > "$d/touched""#);
        s.line(RELEASE_OURS);
        std::process::Command::new("sh").arg("-c").arg(s.render()).output().expect("sh")
    }

    #[test]
    fn only_the_run_whose_token_is_in_the_lock_works_under_it_or_releases_it() {
        let ours = LockOwner::current("shop", "deploy", None);
        let theirs = LockOwner::current("shop", "deploy", None);
        assert_ne!(ours.token, theirs.token, "one token per run");
        assert_eq!(ours.token.len(), 32);
        let dir = locked_by(&theirs);
        let lost = run_guarded(dir.path(), &ours, false);
        assert_eq!(lost.status.code(), Some(LOCK_LOST));
        assert_eq!(held_by(&String::from_utf8_lossy(&lost.stdout))["token"], theirs.token.as_str());
        let left = run_guarded(dir.path(), &ours, true);
        assert!(left.status.success());
        assert!(String::from_utf8_lossy(&left.stdout).starts_with("warning the lock is no longer this run's"));
        assert!(!dir.path().join("touched").exists() && dir.path().join(".cutover/lock").exists());

        let mine = run_guarded(dir.path(), &theirs, false);
        assert!(mine.status.success(), "{}", String::from_utf8_lossy(&mine.stderr));
        assert!(dir.path().join("touched").exists() && !dir.path().join(".cutover/lock").exists());
    }

    #[test]
    fn unlock_removes_only_the_lock_it_was_shown() {
        let first = LockOwner::current("shop", "deploy", None);
        let dir = locked_by(&first);
        let unlock = |token: &str| {
            let script = release_seen(&dir.path().display().to_string(), token).render();
            std::process::Command::new("sh").arg("-c").arg(script).output().expect("sh")
        };
        assert_eq!(unlock("another").status.code(), Some(LOCK_LOST), "a lock taken since is left");
        assert_eq!(unlock("").status.code(), Some(LOCK_LOST), "a lock seen without a token is not this one");
        assert!(dir.path().join(".cutover/lock").exists());
        assert!(unlock(&first.token).status.success());
        assert!(!dir.path().join(".cutover/lock").exists());
        assert!(unlock(&first.token).status.success(), "no lock: nothing to do");
    }

    #[test]
    fn describes_owner_with_age() {
        let owner = LockOwner::current("shop", "deploy", Some("20261123143012".into()));
        let text = LockOwner::describe(&serde_json::to_value(&owner).expect("json"));
        assert!(text.contains("deploy of 20261123143012"), "{text}");
        assert!(text.contains(&format!("pid {}", std::process::id())), "{text}");
    }
}
