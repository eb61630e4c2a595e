//! Every remote script runs supervised: when cutover stops waiting for it
//! (Ctrl-C, a time limit, cutover killed, its connection lost), the script
//! and all its children on the host are ended within seconds.
//!
//! The supervisor is a small perl program (`supervise.pl`, core modules of
//! Debian's `perl-base` only) that runs the script as `sh -c` in a process
//! group of its own, and watches its own standard output: when nobody reads
//! it any more (sshd closes the channel's pipe when cutover's side goes
//! away; a local parent's pipe closes when cutover exits), it sends SIGTERM
//! to the group, then SIGKILL after a grace period. While a script of a
//! run's work is running, its supervisor holds a shared `flock` on
//! `$d/.cutover/jobs.<token>`; the abort waits for an exclusive one, so
//! cutover removes a release only once every job in it has ended. A
//! supervisor that starts after its reader went away runs nothing.
//!
//! A host without perl runs the script with plain `sh -c`: unsupervised,
//! as preflight warns.

use std::sync::LazyLock;
use std::time::Duration;

use crate::event::Phase;
use crate::shell::{Script, Sh};

/// The supervisor's source, comment lines and blank lines left out.
static PROGRAM: LazyLock<String> = LazyLock::new(|| {
    let source = include_str!("supervise.pl");
    let lines = source.lines().map(str::trim_end).filter(|l| !l.is_empty() && !l.trim_start().starts_with('#'));
    lines.collect::<Vec<_>>().join("\n")
});

/// The file whose `flock` the work of a run (known by its lock's token)
/// holds on a host.
pub fn jobs_file(deploy_path: &str, token: &str) -> String {
    format!("{}/.cutover/jobs.{token}", deploy_path.trim_end_matches('/'))
}

/// Whether a phase's scripts are work the abort waits for (rather than the
/// lock, the reading of a host, or a clean-up, which must not wait for
/// themselves).
pub fn is_work(phase: Phase) -> bool {
    !matches!(
        phase,
        Phase::Preflight
            | Phase::Resolve
            | Phase::Lock
            | Phase::Abort
            | Phase::Undo
            | Phase::Finalize
            | Phase::ReadBack
            | Phase::Status
            | Phase::Unlock
    )
}

/// How long after cutover's own time limit the host ends a job on its own
/// (when the connection was cut without sshd noticing).
const BACKSTOP: Duration = Duration::from_secs(30);

/// `script` wrapped in the supervisor, ended on the host `limit` (plus a
/// margin) after it started; with `jobs`, holding its `flock` while the
/// script runs (when the directory holding it exists).
pub fn wrap(script: &str, jobs: Option<&str>, limit: Duration) -> String {
    let mut s = Script::new();
    s.push(Sh::assign("job", script));
    s.push(Sh::assign("supervise", PROGRAM.as_str()));
    s.push(Sh::assign("t", (limit + BACKSTOP).as_secs().to_string()));
    s.line("if command -v perl >/dev/null 2>&1; then");
    if let Some(jobs) = jobs {
        s.push(Sh::assign("jobs", jobs));
        s.line(r#"if [ -d "${jobs%/*}" ]; then exec perl -e "$supervise" -- -l "$jobs" -t "$t" "$job"; fi"#);
    }
    s.line(r#"exec perl -e "$supervise" -- -t "$t" "$job""#);
    s.line("fi");
    s.line(r#"exec sh -c "$job""#);
    s.render()
}

/// Waits, in an abort script, until no supervised job of the run holds
/// its jobs file (at most 30 s, then a warning), then removes the file;
/// `$d` and `$token` must be set.
pub const WAIT_FOR_JOBS: &str = concat!(
    r#"if [ -e "$d/.cutover/jobs.$token" ] && command -v perl >/dev/null 2>&1; then "#,
    r#"perl -MFcntl=:flock -e 'open(my $f, "<", $ARGV[0]) or exit 0; "#,
    r#"for (1 .. 300) { exit 0 if flock($f, LOCK_EX | LOCK_NB); select(undef, undef, undef, 0.1) } "#,
    r#"print "warning work of this run was still running on the host after 30 s\n"' "$d/.cutover/jobs.$token"; fi; "#,
    r#"rm -f "$d/.cutover/jobs.$token""#
);

/// Removes the run's jobs file (finalize: no job of the run is left).
pub const FORGET_JOBS: &str = r#"rm -f "$d/.cutover/jobs.$token""#;

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::process::{Command, Stdio};
    use std::time::Instant;

    use super::*;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.arg("-c").arg(script);
        command
    }

    #[test]
    fn the_program_has_no_single_quote_and_passes_output_and_exit_codes_through() {
        assert!(!PROGRAM.contains('\''));
        for code in [0, 3, 127] {
            let script = format!("echo out; echo err >&2; read -r line; echo \"got $line\"; exit {code}");
            let mut child = sh(&wrap(&script, None, Duration::from_secs(60)))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("sh");
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(b"go\n").expect("stdin");
            let out = child.wait_with_output().expect("wait");
            assert_eq!(out.status.code(), Some(code));
            assert_eq!(String::from_utf8_lossy(&out.stdout), "out\ngot go\n");
            assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
        }
    }

    /// Whether a process whose command line contains `needle` runs.
    fn running(needle: &str) -> bool {
        let out = Command::new("ps").args(["-eo", "args"]).output().expect("ps");
        String::from_utf8_lossy(&out.stdout).lines().any(|l| l.contains(needle) && !l.contains("ps -eo"))
    }

    #[test]
    fn a_job_whose_reader_went_away_ends_with_its_children_and_releases_the_jobs_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".cutover")).expect(".cutover");
        let jobs = jobs_file(&dir.path().display().to_string(), "t0k3n");
        // A child and grandchildren, one under GNU timeout (which moves its
        // command to a process group of its own), sleeping for ten minutes.
        let tag = format!("60{}", std::process::id() % 1000);
        let script = format!("echo started; sh -c 'sleep {tag}1 & timeout 900 sleep {tag}2; wait'");
        let mut child = sh(&wrap(&script, Some(&jobs), Duration::from_secs(60)))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut first = [0u8; 8];
        stdout.read_exact(&mut first).expect("started");
        assert!(running(&format!("sleep {tag}2")));
        assert!(!exclusive_lock_free(&jobs), "the job holds the jobs lock");
        drop(stdout);
        let started = Instant::now();
        while running(&format!("sleep {tag}1")) || running(&format!("sleep {tag}2")) {
            assert!(started.elapsed() < Duration::from_secs(10), "the job's processes still run");
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.wait();
        assert!(exclusive_lock_free(&jobs), "the jobs lock is released");
        let d = crate::shell::quote(&dir.path().display().to_string()).into_owned();
        let out = sh(&format!("d={d}; token=t0k3n; {WAIT_FOR_JOBS}")).output().expect("wait for jobs");
        assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    }

    #[test]
    fn what_a_job_leaves_running_ends_with_it_even_an_orphan_in_a_group_of_its_own() {
        let tag = format!("61{}", std::process::id() % 1000);
        // The step's shell is gone at once; its orphan, in a process group
        // of its own (as GNU timeout makes one), still holds the output.
        let script = format!("timeout 900 sleep {tag}3 & echo left");
        let started = Instant::now();
        let out = sh(&wrap(&script, None, Duration::from_secs(60))).output().expect("sh");
        assert!(started.elapsed() < Duration::from_secs(10), "the output closed: {:?}", started.elapsed());
        assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).as_ref()), (Some(0), "left\n"));
        assert!(!running(&format!("sleep {tag}3")), "the orphan is ended");
    }

    #[test]
    fn a_job_past_its_limit_on_the_host_ends_with_124() {
        let program = PROGRAM.as_str();
        let out = Command::new("perl").args(["-e", program, "--", "-t", "1", "sleep 30"]).output().expect("perl");
        assert_eq!(out.status.code(), Some(124));
    }

    /// Whether an exclusive `flock` on `file` would be granted now.
    fn exclusive_lock_free(file: &str) -> bool {
        let probe = r#"open(my $f, "<", $ARGV[0]) or exit 2; exit(flock($f, LOCK_EX | LOCK_NB) ? 0 : 1)"#;
        let out = Command::new("perl").args(["-MFcntl=:flock", "-e", probe, file]).output().expect("perl");
        out.status.code() == Some(0)
    }
}
