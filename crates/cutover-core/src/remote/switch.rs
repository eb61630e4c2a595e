//! Switching `current`: stage `current-tmp`, rename it over `current` in one
//! `rename(2)`, reload PHP-FPM; and the undo that puts a host back.
//!
//! `current` is never the target of `ln -sfn`: that unlinks and recreates it,
//! leaving a moment with no `current` at all.

use crate::release::ReleaseId;
use crate::shell::{Script, Sh};

use super::lock::{self, LockOwner};
use super::script_in;
use super::steps;

/// The line a flip or undo prints right after its `rename(2)` of `current`:
/// the host itself says it switched, whatever happens after.
pub const SWITCHED: &str = "@@cutover-switched";

/// Whether a flip's or an undo's output says `current` was renamed.
pub fn switched(stdout: &str) -> bool {
    stdout.lines().any(|l| l == SWITCHED)
}

/// Which `mv` renames a link over another without following it: GNU
/// `mv -T` on Linux hosts, BSD `mv -h` for a local host on macOS. Decided
/// before the flip is let go, so the rename itself is one process start.
const PICK_MV: &str = r#"if mv --version >/dev/null 2>&1; then over="-T"; else over="-fh"; fi"#;

/// The atomic rename of `current-tmp` over `current`, then [`SWITCHED`].
const RENAME: &str = r#"mv "$over" "$d/current-tmp" "$d/current"; echo '@@cutover-switched'"#;

/// Points `current-tmp` at the release and runs the PHP-FPM config test, so
/// a host whose FPM config is broken fails before any host switches. For a
/// new release, first writes REVISION: the mark of a release that built.
pub fn stage(
    deploy_path: &str,
    owner: &LockOwner,
    release: ReleaseId,
    config_test: Option<&str>,
    revision: Option<&str>,
) -> Script {
    let mut s = script_in(deploy_path);
    lock::guard(&mut s, owner);
    s.line(steps::ONE_STREAM);
    steps::mark(&mut s, "stage");
    s.push(Sh::assign("r", release.to_string()));
    s.line(r#"if [ ! -d "$d/releases/$r" ]; then echo "release $r is not on this host" >&2; exit 1; fi"#);
    if let Some(revision) = revision {
        s.push(Sh::assign("commit", revision));
        s.line(r#"printf '%s\n' "$commit" > "$d/releases/$r/REVISION""#);
    }
    s.line(r#"ln -sfn "releases/$r" "$d/current-tmp""#);
    if let Some(test) = config_test {
        steps::mark(&mut s, "config test");
        without_stdin(&mut s, test);
    }
    s
}

/// Renames the staged `current-tmp` over `current`, once released: the
/// script says it is ready and waits for `go` on its stdin, so every host's
/// rename can be let go at the same moment (see [`crate::held`]).
///
/// Where the host has perl (every Debian and Ubuntu host: perl-base is
/// essential), a perl process already running does the wait and then the
/// `rename(2)` itself, so nothing has to start after `go`: on a busy host a
/// process start for `mv` is most of what spreads the fleet's renames.
/// Elsewhere the shell waits and runs `mv`.
///
/// With `link` (activation blue-green), the staged `<link>.cutover-tmp` is
/// renamed over nginx's socket link right after `current`, in the same
/// process.
pub fn flip(deploy_path: &str, owner: &LockOwner, link: Option<&str>) -> Script {
    let mut s = script_in(deploy_path);
    lock::guard(&mut s, owner);
    // After a rollback's lock and staging in the same script, a failure
    // from here on is the flip's own.
    steps::mark(&mut s, "flip");
    s.line(r#"if [ ! -L "$d/current-tmp" ]; then echo "nothing staged: $d/current-tmp is missing" >&2; exit 1; fi"#);
    if let Some(link) = link {
        s.push(Sh::assign("l", link));
        s.line(
            r#"if [ ! -L "$l.cutover-tmp" ]; then echo "nothing staged: $l.cutover-tmp is missing" >&2; exit 1; fi"#,
        );
    }
    s.line("if command -v perl >/dev/null 2>&1; then");
    s.line(if link.is_some() { HELD_RENAME_BOTH_IN_PERL } else { HELD_RENAME_IN_PERL });
    s.line("else");
    s.line(PICK_MV);
    s.line(READY_LINE);
    s.line("read -r go || go=''");
    s.line(r#"if [ "$go" != go ]; then echo "not released: the flip was called off" >&2; exit 1; fi"#);
    s.line(RENAME);
    if link.is_some() {
        s.line(r#"mv "$over" "$l.cutover-tmp" "$l""#);
    }
    s.line("fi");
    s
}

/// The held flip as one perl process: ready line, clock readings, `go`,
/// `rename(2)`. With Time::HiRes (in Debian's `perl`, not in `perl-base`)
/// it keeps time: it answers `clock` with its clock and waits for the
/// moment a `go <time>` names (see [`crate::moment`]); a moment already
/// past, or more than 5 s ahead, renames at once. Right after the rename it
/// prints [`SWITCHED`]. Its program is in single quotes, so it has none
/// itself.
macro_rules! held_rename_in_perl {
    () => {
        concat!(
    r#"perl -e '"#,
    r#"$| = 1; my $hires = eval { require Time::HiRes; 1 }; "#,
    r#"print q(@@cutover-ready), ($hires ? q( clock) : q()), qq(\n); "#,
    r#"my $go; while (defined($go = <STDIN>)) { chomp $go; last if $go ne q(clock) || !$hires; "#,
    r#"print q(@@cutover-clock ), sprintf(q(%.6f), Time::HiRes::time()), qq(\n) } "#,
    r#"$go = q() unless defined $go; my ($at) = $go =~ /\Ago(?: ([0-9]+(?:\.[0-9]*)?))?\z/ "#,
    r#"or do { print STDERR qq(not released: the flip was called off\n); exit 1 }; "#,
    r#"my $timed = defined $at && $hires; "#,
    r#"if ($timed) { my $wait = $at - Time::HiRes::time(); Time::HiRes::sleep($wait) if $wait > 0 && $wait < 5 } "#,
    r#"rename($ARGV[0], $ARGV[1]) or do { print STDERR qq(cannot rename $ARGV[0] over $ARGV[1]: $!\n); exit 1 }; "#,
    r#"print qq(\@\@cutover-switched\n)"#,
        )
    };
}
const HELD_RENAME_IN_PERL: &str = concat!(held_rename_in_perl!(), r#"' "$d/current-tmp" "$d/current""#);

/// [`HELD_RENAME_IN_PERL`] renaming the staged socket link `$l` too.
const HELD_RENAME_BOTH_IN_PERL: &str = concat!(
    held_rename_in_perl!(),
    r#"; rename($ARGV[2], $ARGV[3]) or do { print STDERR qq(cannot rename $ARGV[2] over $ARGV[3]: $!\n); exit 1 }"#,
    r#"' "$d/current-tmp" "$d/current" "$l.cutover-tmp" "$l""#
);

/// Prints [`crate::held::READY`].
const READY_LINE: &str = "echo '@@cutover-ready'";

/// The graceful reload (never a restart).
pub fn reload(reload: &str) -> Script {
    let mut s = Script::new();
    s.push(Sh::user_shell(reload));
    s
}

/// The reload in the flip's script, after its rename: a failure names it.
pub fn reload_after_flip(reload: &str) -> Script {
    let mut s = Script::new();
    s.line(steps::ONE_STREAM);
    steps::mark(&mut s, RELOAD_STEP);
    without_stdin(&mut s, reload);
    s
}

/// A user's command in a script whose stdin is cutover's line to it (a
/// held flip): it reads nothing from there.
pub(crate) fn without_stdin(s: &mut Script, command: &str) {
    s.line("{");
    s.push(Sh::user_shell(command));
    s.line("} </dev/null");
}

/// The name a failing reload is reported under.
pub const RELOAD_STEP: &str = "reload";

/// The line a flip that finalizes in the same script prints once it is
/// told the fleet decided to keep the run, before finalizing.
pub const FINALIZING: &str = "@@cutover-finalizing";

/// Whether a flip's output says it went on to finalize.
pub fn finalizing(stdout: &str) -> bool {
    stdout.lines().any(|l| l == FINALIZING)
}

/// Holds a flip that switched and reloaded at a second ready line until
/// the fleet decides (see [`crate::held`]): on `go` (every host switched)
/// it goes on to `finalize`; on anything else, its stdin closed included,
/// it ends there, leaving the host switched and locked for the engine to
/// undo. The decision's `go` is sent only once this second
/// ready line is read: the perl that waited for the first `go` reads its
/// stdin buffered and would take a line sent with it.
pub fn decide_then(finalize: Script) -> Script {
    let mut s = Script::new();
    s.line("# held until every host switched (the decision), then finalize:");
    // On a line of its own, whatever the reload printed last.
    s.line("echo");
    s.line(READY_LINE);
    s.line("read -r verdict || verdict=''");
    s.line(r#"if [ "$verdict" != go ]; then exit 0; fi"#);
    s.line("echo '@@cutover-finalizing'");
    s.extend(finalize);
    s
}

/// Puts a host back where `current` pointed before the run, exactly as the
/// probe read it (a Capistrano or Deployer host may use other names), or
/// removes `current` when the host had none. The reload after it is the
/// plan's reload phase.
pub fn undo(deploy_path: &str, owner: &LockOwner, previous_target: Option<&str>) -> Script {
    let mut s = script_in(deploy_path);
    lock::guard(&mut s, owner);
    match previous_target {
        Some(target) => {
            s.push(Sh::assign("t", target));
            s.line(r#"ln -sfn "$t" "$d/current-tmp""#);
            s.line(PICK_MV);
            s.line(RENAME);
        }
        None => {
            s.line(r#"rm -f "$d/current" "$d/current-tmp"; echo '@@cutover-switched'"#);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_and_flip_never_link_onto_current() {
        let id = "20261123143012".parse().expect("id");
        let owner = LockOwner::example();
        let stage = stage("/srv/app", &owner, id, Some("php-fpm8.3 -t"), Some("abc123")).render();
        let flip = flip("/srv/app", &owner, None).render();
        insta::assert_snapshot!(format!("{stage}---\n{flip}"));
        assert!(stage.contains(r#"ln -sfn "releases/$r" "$d/current-tmp""#));
        assert!(!stage.contains(
            r#""$d/current"
"#
        ));
        assert!(!flip.contains("ln "));
        assert!(HELD_RENAME_IN_PERL.contains(crate::held::READY), "perl prints the same ready line");
    }

    /// A host with `current` on release `a` and `current-tmp` staged on `b`.
    fn staged_host() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for release in ["a", "b"] {
            std::fs::create_dir_all(dir.path().join("releases").join(release)).expect("release dir");
        }
        std::os::unix::fs::symlink("releases/a", dir.path().join("current")).expect("current");
        std::os::unix::fs::symlink("releases/b", dir.path().join("current-tmp")).expect("current-tmp");
        std::fs::create_dir_all(dir.path().join(".cutover/lock")).expect("lock");
        std::fs::write(dir.path().join(".cutover/lock/token"), LockOwner::example().token).expect("token");
        dir
    }

    /// The perl a test host has: Debian's `perl` (with Time::HiRes), perl
    /// without Time::HiRes (`perl-base` alone), or none.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Perl {
        Full,
        WithoutHiRes,
        Missing,
    }

    const EVERY_PERL: [Perl; 3] = [Perl::Full, Perl::WithoutHiRes, Perl::Missing];

    /// Runs the flip script on `host` with `stdin`, with `perl` as said.
    fn run_flip(host: &std::path::Path, stdin: &[u8], perl: Perl) -> std::process::Output {
        use std::io::Write;
        // By its path: a `PATH` set below is also where the program is looked up.
        let mut command = std::process::Command::new("/bin/sh");
        // What follows the flip in the same script runs too.
        let mut script = flip(&host.display().to_string(), &LockOwner::example(), None);
        script.line(r#": > "$d/after-the-flip""#);
        command.arg("-c").arg(script.render());
        let tools = tempfile::tempdir().expect("tools dir");
        match perl {
            Perl::Full => {}
            Perl::WithoutHiRes => {
                std::fs::create_dir_all(tools.path().join("Time")).expect("Time/");
                std::fs::write(tools.path().join("Time/HiRes.pm"), "die qq(no Time::HiRes here\\n);\n").expect("pm");
                command.env("PERL5LIB", tools.path());
            }
            Perl::Missing => {
                let mv = ["/bin/mv", "/usr/bin/mv"].into_iter().find(|p| std::path::Path::new(p).exists());
                std::os::unix::fs::symlink(mv.expect("mv"), tools.path().join("mv")).expect("link mv");
                command.env("PATH", tools.path());
            }
        }
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
        child.wait_with_output().expect("wait for sh")
    }

    fn current_of(host: &std::path::Path) -> String {
        std::fs::read_link(host.join("current")).expect("current is a link").display().to_string()
    }

    #[test]
    fn flip_renames_once_released_with_perl_or_mv() {
        for perl in EVERY_PERL {
            // A moment long past renames at once.
            let timed = (perl != Perl::Missing).then_some(&b"go 1000.25\n"[..]);
            for stdin in [Some(&b"go\n"[..]), timed].into_iter().flatten() {
                let host = staged_host();
                let out = run_flip(host.path(), stdin, perl);
                let said = format!("{perl:?} {stdin:?}");
                assert!(out.status.success(), "{said}: {}", String::from_utf8_lossy(&out.stderr));
                // Only perl with Time::HiRes says it keeps time.
                let ready = match perl {
                    Perl::Full => format!("{} clock", crate::held::READY),
                    _ => crate::held::READY.to_owned(),
                };
                let marked = format!("{}flip\n{ready}\n{SWITCHED}\n", steps::STEP_MARKER);
                assert_eq!(String::from_utf8_lossy(&out.stdout), marked, "{said}");
                assert_eq!(current_of(host.path()), "releases/b", "{said}");
                assert!(!host.path().join("current-tmp").exists(), "{said}: the staged link was renamed");
                assert!(host.path().join("after-the-flip").exists(), "{said}: the rest of the script ran");
            }
        }
    }

    /// Holds the flip with finalize after it on `host`, lets it go, and
    /// answers the decision with `verdict`; what it printed.
    async fn flip_then_decide(host: &std::path::Path, verdict: crate::held::Signal) -> String {
        use crate::held::Signal;
        use crate::transport::{RemoteCommand, Transport};
        let d = host.display().to_string();
        let owner = LockOwner::example();
        let mut script = flip(&d, &owner, None);
        script.extend(decide_then(super::super::end::finalize(&d, &owner, "a line", &[], &[])));
        let local = crate::local::LocalTransport::at(host);
        let command = RemoteCommand {
            phase: crate::event::Phase::Flip,
            script: script.render(),
            stdin: Vec::new(),
            timeout: std::time::Duration::from_secs(10),
            watch: None,
        };
        let mut held = local.hold(command).await.expect("starts").expect("holds");
        assert!(held.ready().await.expect("ready"), "held before the rename");
        held.let_go(Signal::Go).await;
        assert!(held.ready().await.expect("switched"), "held again at the decision");
        assert!(switched(held.seen()), "it said it switched before the decision: {}", held.seen());
        assert_eq!(current_of(host), "releases/b", "switched while waiting");
        assert!(host.join(".cutover/lock").exists(), "still locked while waiting");
        let out = held.release(verdict).await.expect("ends");
        assert_eq!(out.exit_code, Some(0), "{out:?}");
        out.stdout
    }

    #[tokio::test]
    async fn a_flip_finalizes_only_when_the_fleet_decided() {
        let host = staged_host();
        let stdout = flip_then_decide(host.path(), crate::held::Signal::Go).await;
        assert!(finalizing(&stdout), "{stdout}");
        assert!(!host.path().join(".cutover/lock").exists(), "unlocked");
        let log = std::fs::read_to_string(host.path().join("revisions.log")).expect("logged");
        assert_eq!(log, "a line\n");
    }

    #[tokio::test]
    async fn a_flip_called_off_at_the_decision_stays_switched_and_locked() {
        // Called off, or cutover gone: its stdin closes with no go.
        let host = staged_host();
        let stdout = flip_then_decide(host.path(), crate::held::Signal::CallOff).await;
        assert!(!finalizing(&stdout), "{stdout}");
        assert_eq!(current_of(host.path()), "releases/b");
        assert!(host.path().join(".cutover/lock").exists(), "still locked, for the undo");
        assert!(!host.path().join("revisions.log").exists(), "not logged");
    }

    #[test]
    fn flip_called_off_leaves_current_alone() {
        for perl in EVERY_PERL {
            for stdin in [&b""[..], b"stop\n", b"clock\n", b"go abc\n", b"gox\n", b"go 12 34\n"] {
                let host = staged_host();
                let out = run_flip(host.path(), stdin, perl);
                let said = format!("{perl:?} {:?}", String::from_utf8_lossy(stdin));
                assert_eq!(out.status.code(), Some(1), "{said}");
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(stderr.contains("the flip was called off"), "{said}: {stderr}");
                assert!(!switched(&String::from_utf8_lossy(&out.stdout)), "{said}");
                assert_eq!(current_of(host.path()), "releases/a", "{said}");
                assert!(!host.path().join("after-the-flip").exists(), "{said}: the script stopped");
            }
        }
    }
}
