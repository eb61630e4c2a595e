//! The health check after a switch, run on the host against itself: an HTTP
//! request with curl, or a command, retried until it passes or runs out of
//! attempts. The last line says `health ok ...` or why it failed.

use crate::config::HealthCheck;
use crate::shell::{Script, Sh};

use super::lock::{self, LockOwner};
use super::script_in;

/// The health-check script.
pub fn script(deploy_path: &str, owner: &LockOwner, check: &HealthCheck) -> Script {
    let mut s = script_in(deploy_path);
    lock::guard(&mut s, owner);
    s.push(Sh::assign("tries", check.retries.max(1).to_string()));
    s.push(Sh::assign("interval", check.interval.to_string()));
    s.push(Sh::assign("limit", check.timeout.max(1).to_string()));
    s.line(r#"body_file="$d/.cutover/health-body""#);
    s.line(r#"mkdir -p "$d/.cutover""#);
    match (&check.url, &check.command) {
        (Some(url), _) => {
            s.push(Sh::assign("url", url));
            s.push(Sh::assign("want", check.status.to_string()));
            s.push(Sh::assign("text", check.body.as_deref().unwrap_or("")));
            s.line(r#"attempt() { code=$(curl -s -o "$body_file" -w '%{http_code}' --max-time "$limit" "$url" || true); [ "$code" = "$want" ] && { [ -z "$text" ] || grep -qF -- "$text" "$body_file"; }; }"#);
            s.line(r#"why() { echo "got status ${code:-none}, expected $want${text:+ with \"$text\" in the body}"; }"#);
        }
        (None, command) => {
            // A command check runs in the live release, like `php artisan ...`.
            s.line(r#"cd "$d/current""#);
            s.push(Sh::assign("check", command.as_deref().unwrap_or("true")));
            s.line(r#"attempt() { if command -v timeout >/dev/null 2>&1; then timeout "$limit" sh -c "$check" >"$body_file" 2>&1; else sh -c "$check" >"$body_file" 2>&1; fi; }"#);
            s.line(r#"why() { echo "the check command failed: $(tail -n 3 "$body_file" | tr '\n' ' ')"; }"#);
        }
    }
    s.line(r#"i=1"#);
    s.line(r#"while ! attempt; do if [ "$i" -ge "$tries" ]; then echo "unhealthy after $i attempt(s): $(why)" >&2; exit 1; fi; i=$((i + 1)); sleep "$interval"; done"#);
    s.line(r#"echo "health ok after $i attempt(s)""#);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> HealthCheck {
        serde_saphyr::from_str(yaml).expect("health check")
    }

    /// A host at `dir` locked by [`LockOwner::example`].
    fn locked(dir: &std::path::Path) {
        std::fs::create_dir_all(dir.join(".cutover/lock")).expect("lock");
        std::fs::write(dir.join(".cutover/lock/token"), LockOwner::example().token).expect("token");
    }

    #[test]
    fn a_passing_command_check_says_ok() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deploy = dir.path().to_string_lossy().into_owned();
        std::fs::create_dir_all(dir.path().join("current/public")).expect("release");
        locked(dir.path());
        let script =
            script(&deploy, &LockOwner::example(), &check("command: test -d public\nretries: 2\ninterval: 0\n"))
                .render();
        let out = std::process::Command::new("sh").arg("-c").arg(&script).output().expect("sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("health ok after 1 attempt(s)"));
    }

    #[test]
    fn a_failing_check_retries_then_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deploy = dir.path().to_string_lossy().into_owned();
        std::fs::create_dir_all(dir.path().join("current")).expect("release");
        locked(dir.path());
        let yaml = "command: echo 'db down'; exit 3\nretries: 3\ninterval: 0\n";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script(&deploy, &LockOwner::example(), &check(yaml)).render())
            .output()
            .expect("sh");
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("unhealthy after 3 attempt(s)") && err.contains("db down"), "{err}");
    }

    #[test]
    fn the_url_check_script_is_exact() {
        let c = check("url: http://127.0.0.1/health?full=1\nbody: \"it's ok\"\n");
        insta::assert_snapshot!(script("/var/www/app", &LockOwner::example(), &c).render());
    }
}
