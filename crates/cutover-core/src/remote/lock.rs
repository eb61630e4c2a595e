//! The deploy lock: an atomic `mkdir` of `$d/.cutover/lock`, with an owner
//! file saying who holds it, since when, and for which release.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::shell::{Script, Sh};

use super::script_in;

/// The exit code of the lock script when another run holds the lock.
pub const LOCK_HELD: i32 = 75;

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
}

impl LockOwner {
    /// The owner for this process, now.
    pub fn current(application: &str, command: &str, release: Option<String>) -> Self {
        let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
        let machine = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_owned()))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into());
        Self {
            application: application.to_owned(),
            command: command.to_owned(),
            user,
            machine,
            pid: std::process::id(),
            since: Timestamp::now(),
            release,
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
        format!("{}@{} (pid {}), {what}, held for {age}", owner.user, owner.machine, owner.pid)
    }
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
    s.line(r#"if ! printf '%s\n' "$owner" > "$d/.cutover/lock/owner"; then rm -rf "$d/.cutover/lock"; exit 1; fi"#);
    s.line(r#"now=$(readlink "$d/current" 2>/dev/null || true)"#);
    s.line(r#"if [ "$now" != "$expected" ]; then rm -rf "$d/.cutover/lock"; echo "current changed since preflight (now ${now:-none}, was ${expected:-none}); run again" >&2; exit 1; fi"#);
    s
}

/// In a script that goes on after taking the lock: give it back if any
/// later line fails.
pub const RELEASE_ON_FAILURE: &str = r#"trap 'rm -rf "$d/.cutover/lock"' EXIT"#;

/// The end of such a script: it succeeded, keep the lock.
pub const KEEP: &str = "trap - EXIT";

/// Removes the lock, whoever holds it.
pub fn release(deploy_path: &str) -> Script {
    let mut s = script_in(deploy_path);
    s.line(r#"rm -rf "$d/.cutover/lock""#);
    s
}

/// Reads the owner from the lock script's output when it exited [`LOCK_HELD`].
pub fn held_by(stdout: &str) -> serde_json::Value {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("held "))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_script_is_exact() {
        let owner = LockOwner {
            application: "shop".into(),
            command: "deploy".into(),
            user: "ana".into(),
            machine: "laptop".into(),
            pid: 42,
            since: "2026-11-23T14:30:12Z".parse().expect("timestamp"),
            release: Some("20261123143012".into()),
        };
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

    #[test]
    fn describes_owner_with_age() {
        let owner = LockOwner::current("shop", "deploy", Some("20261123143012".into()));
        let text = LockOwner::describe(&serde_json::to_value(&owner).expect("json"));
        assert!(text.contains("deploy of 20261123143012"), "{text}");
        assert!(text.contains(&format!("pid {}", std::process::id())), "{text}");
    }
}
