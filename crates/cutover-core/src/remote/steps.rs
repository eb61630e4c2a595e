//! A hook's steps for one host, as one script: each step in a subshell in
//! the release directory, with the run's variables exported, skipped when its
//! `when` does not hold, and stopped after its own time limit (with
//! `timeout(1)` where the host has it; the phase's limit backs it up).
//! Before each step the script prints `@@cutover-step <name>` (see
//! [`mark`]), so a failure names its step, and the step's stdout and stderr
//! go to stdout in the order written: what follows its marker is its own.

use crate::config::Step;
use crate::release::ReleaseId;
use crate::shell::{Script, Sh, is_identifier};

use super::lock::{self, LockOwner};
use super::script_in;

/// The marker printed before each step.
pub const STEP_MARKER: &str = "@@cutover-step ";

/// The exit code of `timeout(1)` when it stopped a step.
pub const STEP_TIMED_OUT: i32 = 124;

/// Runs a command under a time limit where `timeout(1)` exists (GNU
/// coreutils, BusyBox), as is elsewhere.
const STEP_LIMIT: &str = r#"step_limit() { s=$1; shift; if command -v timeout >/dev/null 2>&1; then timeout -k 10 "$s" "$@"; else "$@"; fi; }"#;

/// Sends the rest of a script's stderr to its stdout, so that what each
/// marked part prints, on either stream, follows its marker in the order
/// written.
pub const ONE_STREAM: &str = "exec 2>&1";

/// Marks the start of a part of a script that can fail on its own: a
/// recipe step, or one of cutover's (the code, the shared links, the config
/// test, the reload). A failure after it is reported under `name`.
pub fn mark(s: &mut Script, name: &str) {
    let name = name.replace(['\n', '\r'], " ");
    s.push(Sh::new("printf").arg(r"%s\n").arg(format!("{STEP_MARKER}{name}")));
}

/// The variables every step sees.
#[derive(Clone, Debug)]
pub struct StepEnv<'a> {
    pub host: &'a str,
    pub release: ReleaseId,
    pub revision: &'a str,
    pub vars: Vec<(&'a str, &'a str)>,
    /// Seconds a step may take when it does not say.
    pub default_timeout: u64,
    /// `--full-build`: steps see CUTOVER_FULL_BUILD=1 and reuse nothing.
    pub full_build: bool,
    /// Whose lock the steps run under.
    pub owner: &'a LockOwner,
}

/// The script for `steps` (already filtered for this host), or `None` when
/// there is nothing to run here.
pub fn script(deploy_path: &str, steps: &[&Step], env: &StepEnv<'_>) -> Option<Script> {
    if steps.is_empty() {
        return None;
    }
    let mut s = script_in(deploy_path);
    lock::guard(&mut s, env.owner);
    s.line(ONE_STREAM);
    s.push(Sh::assign("r", env.release.to_string()));
    s.line(r#"rel="$d/releases/$r""#);
    s.line(r#"export CUTOVER_RELEASE="$r" CUTOVER_RELEASE_PATH="$rel" CUTOVER_DEPLOY_PATH="$d" CUTOVER_SHARED_PATH="$d/shared""#);
    s.push(Sh::new("export").then(Sh::assign("CUTOVER_REVISION", env.revision)));
    s.push(Sh::new("export").then(Sh::assign("CUTOVER_HOST", env.host)));
    if env.full_build {
        s.line("export CUTOVER_FULL_BUILD=1");
    }
    for (name, value) in &env.vars {
        if is_identifier(name) {
            s.push(Sh::new("export").then(Sh::assign(*name, value)));
        }
    }
    s.line(STEP_LIMIT);
    let mut reuses = Vec::new();
    for reuse in steps.iter().filter_map(|s| s.reuse) {
        if !reuses.contains(&reuse) {
            reuses.push(reuse);
        }
    }
    for reuse in reuses {
        s.line(super::reuse::functions(reuse));
    }
    for step in steps {
        mark(&mut s, &step.name);
        if let Some(when) = &step.when {
            s.push(Sh::assign("w", &when.value.exists));
            s.line(r#"if [ -e "$rel/$w" ]; then"#);
        }
        let limit = step.timeout.as_ref().map_or(env.default_timeout, |t| t.value).to_string();
        s.line(r#"( cd "$rel""#);
        let reuse = step.reuse.map(super::reuse::calls);
        if let Some((seed, _)) = reuse {
            s.line(seed);
        }
        s.push(Sh::new("step_limit").arg(limit).lit("sh -ec").arg(step.run.value.trim()));
        if let Some((_, record)) = reuse {
            s.line(record);
        }
        s.line(")");
        if step.when.is_some() {
            s.line("fi");
        }
    }
    Some(s)
}

/// The name of the step that was running when the script stopped.
pub fn last_step(stdout: &str) -> Option<&str> {
    stdout.lines().rev().find_map(|l| l.strip_prefix(STEP_MARKER))
}

/// What the script printed after the last step's marker (that step's own
/// output), or `None` when no step began.
pub fn after_last_step(stdout: &str) -> Option<&str> {
    // The same marker line as `last_step`: a line that starts with it.
    let mut start = None;
    let mut at = 0;
    for line in stdout.split_inclusive('\n') {
        if line.starts_with(STEP_MARKER) {
            start = Some(at + line.len());
        }
        at += line.len();
    }
    start.map(|i| &stdout[i..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(yaml: &str) -> Step {
        serde_saphyr::from_str(yaml).expect("step")
    }

    /// The variables of web1's steps for release 20261123143012.
    fn env(owner: &LockOwner) -> StepEnv<'_> {
        StepEnv {
            host: "web1",
            release: "20261123143012".parse().expect("id"),
            revision: "abc",
            vars: Vec::new(),
            default_timeout: 60,
            full_build: false,
            owner,
        }
    }

    #[test]
    fn renders_steps_with_env_and_conditions() {
        let composer = step("name: composer\nrun: composer install --no-dev\nwhen: { exists: composer.json }\n");
        let optimize = step("name: optimize\nrun: php artisan optimize\n");
        let owner = LockOwner::example();
        let env = StepEnv {
            host: "web 1",
            vars: vec![("APP_ENV", "prod uction"), ("bad name", "x")],
            default_timeout: 600,
            ..env(&owner)
        };
        let script = script("/var/www/shop", &[&composer, &optimize], &env).expect("steps");
        insta::assert_snapshot!(script.render());
    }

    #[test]
    fn reuse_functions_are_defined_once_and_called_around_their_steps() {
        let install = step("name: composer\nrun: composer install\nreuse: vendor\n");
        let again = step("name: again\nrun: composer dump-autoload\nreuse: vendor\n");
        let plain = step("name: plain\nrun: echo hi\n");
        let owner = LockOwner::example();
        let text = script("/srv", &[&install, &again, &plain], &env(&owner)).expect("steps").render();
        assert_eq!(text.matches("cutover_seed_vendor() {").count(), 1, "{text}");
        assert_eq!(text.matches("\ncutover_seed_vendor\n").count(), 2, "{text}");
        assert_eq!(text.matches("\ncutover_record_vendor\n").count(), 2, "{text}");
        let none = script("/srv", &[&plain], &env(&owner)).expect("steps").render();
        assert!(!none.contains("cutover_seed_vendor"), "{none}");
    }

    #[test]
    fn finds_the_failing_step_and_its_own_output() {
        let stdout = "@@cutover-step composer\nok\n@@cutover-step migrate\nboom\nno table\n";
        assert_eq!(last_step(stdout), Some("migrate"));
        assert_eq!(after_last_step(stdout), Some("boom\nno table\n"));
        assert_eq!(last_step("nothing"), None);
        assert_eq!(after_last_step("nothing"), None);
        // A marker inside a line (a trace of the script) is not one.
        let traced = "@@cutover-step build\n+ echo x @@cutover-step fake\nboom\n";
        assert_eq!(
            (last_step(traced), after_last_step(traced)),
            (Some("build"), Some("+ echo x @@cutover-step fake\nboom\n"))
        );
        let mut script = Script::new();
        mark(&mut script, "it's a\nstep");
        assert_eq!(script.render(), "set -eu\nprintf \"%s\\\\n\" \"@@cutover-step it's a step\"\n");
    }

    /// A step's stdout and stderr come back in the order written, after
    /// its marker, and a failure stops the script there.
    #[test]
    fn a_failing_step_keeps_its_own_output_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("releases/20261123143012")).expect("release");
        std::fs::create_dir_all(d.join(".cutover/lock")).expect("lock");
        std::fs::write(d.join(".cutover/lock/token"), LockOwner::example().token).expect("token");
        let first = step("name: first\nrun: echo fine\n");
        let second = step("name: second\nrun: 'echo out; echo err >&2; echo out again; exit 3'\n");
        let third = step("name: third\nrun: echo never\n");
        let owner = LockOwner::example();
        let env = env(&owner);
        let script = script(&d.display().to_string(), &[&first, &second, &third], &env).expect("steps");
        let out = std::process::Command::new("sh").arg("-c").arg(script.render()).output().expect("sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "{stdout}");
        assert_eq!(last_step(&stdout), Some("second"));
        assert_eq!(after_last_step(&stdout), Some("out\nerr\nout again\n"));
    }
}
