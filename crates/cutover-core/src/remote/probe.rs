//! The read-only probe of preflight and status: what a host has on disk.
//! It prints one `key value` line per fact; [`Snapshot::parse`] reads them.

use crate::release::ReleaseId;
use crate::shell::{Script, Sh};

use super::adopt;
use super::fpm::{self, FpmFound};
use super::script_in;
use super::serving::Serving;

/// What the probe needs to check besides the layout.
#[derive(Clone, Debug, Default)]
pub struct ProbeRequest<'a> {
    /// Programs the deploy will run (`git`, `tar`).
    pub tools: Vec<&'static str>,
    /// Shared files that must exist before a deploy links them.
    pub shared_files: Vec<String>,
    /// Read PHP-FPM's `process_control_timeout`: from this file, or from
    /// `/etc/php/*/fpm/php-fpm.conf` when `Some("")`.
    pub fpm_config: Option<&'a str>,
    /// A branch or tag to look up with `git ls-remote` on the host (the
    /// primary's probe, when the commit is resolved there).
    pub lookup: Option<RefLookup<'a>>,
    /// Read the free space where releases go (a deploy needs room; a
    /// rollback or a read-back does not).
    pub free_space: bool,
    /// Look for PHP-FPM (see [`fpm`]).
    pub detect_fpm: bool,
    /// Look for what the activation needs (see [`ActivationProbe`]).
    pub activation: Option<ActivationProbe<'a>>,
    /// Read each release's commit and the end of revisions.log
    /// (`cutover releases`).
    pub history: bool,
    /// Read how the host serves the release: its clock, and whether the
    /// nginx sites that serve `current` pass `$realpath_root` (`cutover
    /// check`).
    pub serving: bool,
}

/// What the probe reads for the activation: `cgi-fcgi`, the pools'
/// sockets (and `socket`, the inventory's), and for blue-green where the
/// link points and the masters' `process_control_timeout`.
#[derive(Clone, Copy, Debug)]
pub struct ActivationProbe<'a> {
    pub socket: Option<&'a str>,
    pub blue_green: Option<&'a crate::config::inventory::BlueGreen>,
}

/// A branch or tag in a repository.
#[derive(Clone, Copy, Debug)]
pub struct RefLookup<'a> {
    pub repository: &'a str,
    pub reference: &'a str,
}

/// What `git ls-remote` said on the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LookupOutput {
    pub exit_code: i32,
    /// Its stdout, or when it failed its stdout and stderr.
    pub output: String,
}

/// Prints `fpm-pct <value>` for each readable FPM config in `$f` (a glob).
const FPM_TIMEOUT: &str = r#"for c in $f; do if [ -r "$c" ]; then v=$(sed -n 's/^[[:space:]]*process_control_timeout[[:space:]]*=[[:space:]]*//p' "$c" | tail -n 1); echo "fpm-pct ${v:-0}"; fi; done"#;

/// Runs `git ls-remote` for `$repo` and `$ref` (and the peeled tag), and
/// prints `ls-remote-exit <code>` and then each line it printed as
/// `ls-remote <line>`.
const LS_REMOTE: &str = r#"if refs=$(git ls-remote -- "$repo" "$ref" "$ref^{}" 2>&1); then echo "ls-remote-exit 0"; else echo "ls-remote-exit $?"; fi; if [ -n "$refs" ]; then printf '%s\n' "$refs" | while IFS= read -r l; do echo "ls-remote $l"; done; fi"#;

/// Prints `release-commit <id> <commit>` for each finished release and
/// `revision-log <line>` for the last 500 lines of revisions.log.
const HISTORY: &str = r#"if [ -d "$d/releases" ]; then for r in "$d"/releases/*; do if [ -f "$r/REVISION" ]; then c=; { read -r c < "$r/REVISION" || true; } 2>/dev/null; echo "release-commit ${r##*/} $c"; fi; done; fi
if [ -f "$d/revisions.log" ]; then tail -n 500 "$d/revisions.log" | while IFS= read -r l; do printf 'revision-log %s\n' "$l"; done; fi"#;

/// The probe script.
pub fn script(deploy_path: &str, request: &ProbeRequest<'_>) -> Script {
    let mut s = script_in(deploy_path);
    s.line(r#"if [ -d "$d" ]; then echo "exists 1"; else echo "exists 0"; fi"#);
    s.line(r#"p="$d"; while [ ! -e "$p" ]; do p=$(dirname "$p"); done"#);
    s.line(r#"if [ -w "$p" ]; then echo "writable 1"; else echo "writable 0"; fi"#);
    if request.free_space {
        s.line(r#"echo "free-kb $(df -Pk "$p" | awk 'NR==2 {print $4}')""#);
    }
    s.line(r#"if [ -L "$d/current" ]; then echo "current $(readlink "$d/current")"; elif [ -e "$d/current" ]; then echo "current-not-link"; fi"#);
    s.line(r#"if [ -f "$d/current/REVISION" ]; then rev=; { read -r rev < "$d/current/REVISION" || true; } 2>/dev/null; echo "revision $rev"; fi"#);
    s.line(r#"if [ -d "$d/releases" ]; then for r in "$d"/releases/*; do if [ -f "$r/REVISION" ]; then echo "release ${r##*/}"; elif [ -d "$r" ]; then echo "partial ${r##*/}"; fi; if [ -e "$r/ROLLED_BACK" ] || [ -e "$r/NEVER_LIVE" ] || [ -e "$r/BAD_RELEASE" ]; then echo "rolled-back ${r##*/}"; fi; done; fi"#);
    s.line(super::adopt::PROBE);
    s.line(r#"if [ -d "$d/.cutover/lock" ]; then echo "lock $(cat "$d/.cutover/lock/owner" 2>/dev/null || echo '{}')"; fi"#);
    s.line(r#"command -v perl >/dev/null 2>&1 || echo "no-perl""#);
    for tool in &request.tools {
        s.push(Sh::assign("t", tool));
        s.line(r#"command -v "$t" >/dev/null 2>&1 || echo "missing-tool $t""#);
    }
    match request.fpm_config {
        Some("") => {
            s.line("f='/etc/php/*/fpm/php-fpm.conf'");
            s.line(FPM_TIMEOUT);
        }
        Some(file) => {
            s.push(Sh::assign("f", file));
            s.line(FPM_TIMEOUT);
        }
        None => {}
    }
    if request.detect_fpm {
        fpm::detect(&mut s);
    }
    if let Some(a) = &request.activation {
        fpm::look_for_fastcgi(&mut s, a.socket, a.blue_green);
    }
    if request.history {
        s.line(HISTORY);
    }
    if request.serving {
        s.line(super::serving::SERVING);
    }
    for file in &request.shared_files {
        s.push(Sh::assign("f", file));
        s.line(r#"[ -e "$d/shared/$f" ] || echo "missing-shared $f""#);
    }
    if let Some(lookup) = &request.lookup {
        s.extend(lookup_script(lookup));
    }
    s
}

/// The lookup of a branch or tag alone, as the probe does it: its answer is
/// [`Snapshot::lookup`] of the output.
pub fn lookup_script(lookup: &RefLookup<'_>) -> Script {
    let mut s = Script::new();
    s.push(Sh::assign("repo", lookup.repository));
    s.push(Sh::assign("ref", lookup.reference));
    s.line(LS_REMOTE);
    s
}

/// A host's state as the probe saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub deploy_path_exists: bool,
    pub writable: bool,
    pub free_kb: Option<u64>,
    /// The target of `current`, as written (`releases/<id>`).
    pub current_target: Option<String>,
    /// The commit in the current release's REVISION.
    pub revision: Option<String>,
    /// Releases on disk that finished building (they have REVISION), oldest
    /// first. Names that are not ids are left out.
    pub releases: Vec<ReleaseId>,
    /// Releases without REVISION: a run died while building them.
    pub partial: Vec<ReleaseId>,
    /// Releases a rollback left (they carry `ROLLED_BACK`): never the
    /// target of a rollback without `--to`.
    pub rolled_back: Vec<ReleaseId>,
    /// The lock owner, when the lock is held.
    pub lock: Option<serde_json::Value>,
    pub missing_tools: Vec<String>,
    pub missing_shared: Vec<String>,
    /// `current` exists but is not a symbolic link.
    pub current_not_link: bool,
    /// `process_control_timeout` of each PHP-FPM config found.
    pub fpm_control_timeouts: Vec<String>,
    /// The branch or tag looked up, when the request asked for one.
    pub lookup: Option<LookupOutput>,
    /// The host has no perl: its scripts run unsupervised.
    pub no_perl: bool,
    /// PHP-FPM on the host, when the request looked for it.
    pub fpm: FpmFound,
    /// Each finished release's commit, when the request asked for history.
    pub release_commits: Vec<(ReleaseId, String)>,
    /// The end of revisions.log, oldest first, when asked for history.
    pub revision_log: Vec<String>,
    /// How the host serves, when the request asked (`cutover check`).
    pub serving: Serving,
    /// Deployer's `.dep/releases_log`, oldest first (empty without one).
    pub deployer_log: Vec<adopt::Logged>,
    /// Why the host's Deployer releases cannot be adopted, when they cannot.
    pub adoption_problem: Option<String>,
    /// Numbered directories Deployer's log does not name: left alone.
    pub unlogged: Vec<ReleaseId>,
}

impl Snapshot {
    /// Whether a PHP-FPM config on the host lets a reload kill requests in
    /// flight (`process_control_timeout` unset or zero).
    pub fn fpm_reload_kills_requests(&self) -> bool {
        self.fpm_control_timeouts.iter().any(|v| v.trim().trim_end_matches(['s', 'm', 'h', 'd']).trim() == "0")
    }
}

impl Snapshot {
    /// Reads the probe's output.
    pub fn parse(stdout: &str) -> Self {
        let mut snap = Self::default();
        // Names under releases/ that are no release id.
        let mut others = Vec::new();
        for line in stdout.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "exists" => snap.deploy_path_exists = value == "1",
                "writable" => snap.writable = value == "1",
                "free-kb" => snap.free_kb = value.trim().parse().ok(),
                "current" => snap.current_target = Some(value.to_owned()),
                "revision" => snap.revision = Some(value.to_owned()),
                "release" | "partial" => match value.parse::<ReleaseId>() {
                    Ok(id) if key == "release" => snap.releases.push(id),
                    Ok(id) => snap.partial.push(id),
                    Err(_) => others.push(value.to_owned()),
                },
                "dep-log" => snap.deployer_log.extend(adopt::read(value)),
                "rolled-back" => snap.rolled_back.extend(value.parse::<ReleaseId>().ok()),
                "lock" => {
                    snap.lock = Some(serde_json::from_str(value).unwrap_or(serde_json::Value::String(value.into())))
                }
                "missing-tool" => snap.missing_tools.push(value.to_owned()),
                "missing-shared" => snap.missing_shared.push(value.to_owned()),
                "current-not-link" => snap.current_not_link = true,
                "no-perl" => snap.no_perl = true,
                "release-commit" => {
                    let (id, commit) = value.split_once(' ').unwrap_or((value, ""));
                    if let Ok(id) = id.parse() {
                        snap.release_commits.push((id, commit.to_owned()));
                    }
                }
                "revision-log" => snap.revision_log.push(value.to_owned()),
                "fpm-pct" => snap.fpm_control_timeouts.push(value.to_owned()),
                "ls-remote-exit" => {
                    let exit_code = value.trim().parse().unwrap_or(-1);
                    snap.lookup = Some(LookupOutput { exit_code, output: String::new() });
                }
                "ls-remote" => {
                    if let Some(lookup) = &mut snap.lookup {
                        lookup.output.push_str(value);
                        lookup.output.push('\n');
                    }
                }
                _ => {
                    let _ = snap.fpm.read(key, value) || snap.serving.read(key, value);
                }
            }
        }
        snap.adopt(&others);
        snap.releases.sort();
        snap.partial.sort();
        snap
    }

    /// Deployer's numbered releases: those its log names are releases
    /// (finished or not: Deployer's own need no REVISION), the rest are
    /// left alone (see [`adopt`]).
    fn adopt(&mut self, others: &[String]) {
        let numbered: Vec<ReleaseId> =
            self.releases.iter().chain(&self.partial).copied().filter(|r| r.is_adopted()).collect();
        let adopted = adopt::settle(&self.deployer_log, &numbered, others);
        self.releases.retain(|r| !r.is_adopted());
        self.partial.retain(|r| !r.is_adopted());
        self.rolled_back.retain(|r| !r.is_adopted() || adopted.releases.contains(r));
        self.releases.extend(&adopted.releases);
        // A release Deployer named in its own time format (`YmdHis`) is still
        // Deployer's: never a partial one of cutover's to remove.
        let logged = |r: &ReleaseId| self.deployer_log.iter().any(|l| l.release_name == r.to_string());
        let (theirs, partial): (Vec<ReleaseId>, Vec<ReleaseId>) = self.partial.iter().partition(|r| logged(r));
        self.partial = partial;
        self.releases.extend(theirs);
        self.unlogged = adopted.unlogged;
        self.adoption_problem = adopted.problem;
    }

    /// The release `current` points to, when it points into `releases/`.
    pub fn current(&self) -> Option<ReleaseId> {
        let target = self.current_target.as_deref()?;
        let name = target.trim_end_matches('/').rsplit('/').next()?;
        name.parse().ok()
    }

    /// The name `current` points to (its last path component), whatever its
    /// form: a release id, or another tool's name for a release.
    pub fn current_name(&self) -> Option<String> {
        let target = self.current_target.as_deref()?;
        target.trim_end_matches('/').rsplit('/').next().map(str::to_owned)
    }

    /// The newest release older than `current` (the rollback target).
    pub fn previous(&self) -> Option<ReleaseId> {
        let current = self.current()?;
        self.releases.iter().rev().find(|r| **r < current && !self.rolled_back.contains(r)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_deployed_host() {
        let out = "exists 1\nwritable 1\nfree-kb 1024\ncurrent releases/20261123143012\n\
                   revision abc123\nrelease 20261123120433\nrelease 20261123143012\nrelease junk\n";
        let snap = Snapshot::parse(out);
        assert!(snap.deploy_path_exists);
        assert_eq!(snap.free_kb, Some(1024));
        assert_eq!(snap.current().map(|r| r.to_string()).as_deref(), Some("20261123143012"));
        assert_eq!(snap.previous().map(|r| r.to_string()).as_deref(), Some("20261123120433"));
        assert_eq!(snap.releases.len(), 2);
        assert_eq!(snap.lock, None);
    }

    #[test]
    fn flags_an_fpm_that_kills_requests_on_reload() {
        assert!(Snapshot::parse("fpm-pct 0\n").fpm_reload_kills_requests());
        assert!(Snapshot::parse("fpm-pct 0s\n").fpm_reload_kills_requests());
        assert!(!Snapshot::parse("fpm-pct 10s\n").fpm_reload_kills_requests());
        assert!(!Snapshot::parse("exists 1\n").fpm_reload_kills_requests());
    }

    #[test]
    fn reads_process_control_timeout_from_the_fpm_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("php-fpm.conf");
        std::fs::write(&conf, "[global]\npid = /run/x.pid\nprocess_control_timeout = 10s\n").expect("write");
        let request = ProbeRequest { fpm_config: Some(conf.to_str().expect("utf-8")), ..ProbeRequest::default() };
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script(&dir.path().display().to_string(), &request).render())
            .output()
            .expect("sh");
        let snap = Snapshot::parse(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(snap.fpm_control_timeouts, ["10s"]);
    }

    /// A bare repository with `main` at one commit, and its head.
    fn repository_with_main(dir: &std::path::Path) -> String {
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"])
                .args(args)
                .current_dir(dir)
                .output()
                .expect("git");
            assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        git(&["init", "-q", "work"]);
        git(&["-C", "work", "commit", "-q", "--allow-empty", "-m", "one"]);
        git(&["clone", "-q", "--bare", "work", "app's repo.git"]);
        git(&["-C", "work", "rev-parse", "HEAD"])
    }

    fn probe_with_lookup(dir: &std::path::Path, reference: &str) -> Snapshot {
        let repository = dir.join("app's repo.git").display().to_string();
        let lookup = Some(RefLookup { repository: &repository, reference });
        let request = ProbeRequest { lookup, ..ProbeRequest::default() };
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script(&dir.join("app").display().to_string(), &request).render())
            .output()
            .expect("sh");
        Snapshot::parse(&String::from_utf8_lossy(&out.stdout))
    }

    #[test]
    fn looks_up_a_branch_on_the_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let head = repository_with_main(dir.path());
        let found = probe_with_lookup(dir.path(), "main").lookup.expect("looked up");
        assert_eq!(found.exit_code, 0, "{found:?}");
        assert_eq!(crate::source::commit_from_ls_remote(&found.output, "main"), Some(head));
        let missing = probe_with_lookup(dir.path(), "nope").lookup.expect("looked up");
        assert_eq!((missing.exit_code, missing.output.as_str()), (0, ""), "no such branch is not an error of git's");
        let gone = probe_with_lookup(&dir.path().join("elsewhere"), "main").lookup.expect("looked up");
        assert_ne!(gone.exit_code, 0, "{gone:?}");
        assert!(!gone.output.trim().is_empty(), "git says why: {gone:?}");
    }

    #[test]
    fn parses_a_lock_owner() {
        let snap = Snapshot::parse("exists 1\nlock {\"user\":\"ana\"}\n");
        assert_eq!(snap.lock, Some(serde_json::json!({"user": "ana"})));
    }
}
