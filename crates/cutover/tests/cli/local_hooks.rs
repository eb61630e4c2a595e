//! `local_hooks`: commands run here before a deploy or rollback touches any
//! host (what they build is in the upload) and after it ended, told the
//! outcome, the release, the commit and the hosts.

use std::collections::BTreeMap;

use crate::harness::{HOSTS, Project, summary};

/// A `before` hook that builds an asset into the uploaded directory, and an
/// `after` hook that records what it was told in `after-<command>.env`.
const HOOKS: &str = "local_hooks:
  before:
    - name: build assets
      run: mkdir -p app/public/build && echo \"built for $CUTOVER_RELEASE\" > app/public/build/app.css
  after:
    - name: notify
      run: env | grep '^CUTOVER_' > \"after-$CUTOVER_COMMAND.env\"
";

/// What the `after` hook of `command` was told.
fn told(project: &Project, command: &str) -> BTreeMap<String, String> {
    let path = project.path().join(format!("after-{command}.env"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn release(events: &[serde_json::Value]) -> String {
    summary(events)["release"].as_str().expect("release").to_owned()
}

#[test]
fn before_builds_into_the_upload_and_after_is_told_the_outcome() {
    let project = Project::new(HOOKS);
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(0), "{events:?}");
    assert_eq!(events.last().expect("events")["event"], "summary", "the summary comes last");
    let v1 = release(&events);
    for host in HOSTS {
        let asset = project.deploy_path(host).join("current/public/build/app.css");
        assert_eq!(std::fs::read_to_string(asset).expect("asset"), format!("built for {v1}\n"), "{host}");
    }
    let after = told(&project, "deploy");
    assert_eq!(after["CUTOVER_OUTCOME"], "success");
    assert_eq!(after["CUTOVER_RELEASE"], v1);
    assert_eq!(after["CUTOVER_HOSTS"], HOSTS.join(" "));
    assert_eq!(after["CUTOVER_APPLICATION"], "shop");
    let revision = std::fs::read_to_string(project.deploy_path("web1").join("current/REVISION")).expect("REVISION");
    assert_eq!(after["CUTOVER_REVISION"], revision.trim());

    project.write("app/public/index.php", "<?php echo 'v2';\n");
    let (code, _) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(0));
    let (code, events) = project.cutover_json(&["rollback", "--yes"]);
    assert_eq!(code, Some(0), "{events:?}");
    let after = told(&project, "rollback");
    assert_eq!((after["CUTOVER_OUTCOME"].as_str(), after["CUTOVER_RELEASE"].as_str()), ("success", v1.as_str()));
}

#[test]
fn a_failing_before_hook_touches_no_host_and_after_is_told_of_the_failure() {
    let project = Project::new(&HOOKS.replace("mkdir -p app/public/build", "echo no npm >&2; exit 3; mkdir -p x"));
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(1), "{events:?}");
    let failed = events.iter().find(|e| e["event"] == "host" && e["state"] == "failed").expect("a failure");
    assert_eq!((failed["host"].as_str(), failed["phase"].as_str()), (Some("(local)"), Some("before_run")));
    assert_eq!(failed["step"], "build assets");
    assert!(failed["output_tail"].as_str().unwrap_or_default().contains("no npm"), "{failed}");
    for host in HOSTS {
        assert!(!project.deploy_path(host).exists(), "{host}: touched");
    }
    assert_eq!(told(&project, "deploy")["CUTOVER_OUTCOME"], "failure");
}

#[test]
fn a_failing_after_hook_is_a_warning_and_a_rolled_back_run_says_so() {
    let failing =
        "local_hooks:\n  after:\n    - name: notify\n      run: env | grep '^CUTOVER_OUTCOME' >> outcomes; exit 1\n";
    let project = Project::new(failing);
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(0), "an after hook's failure does not fail the run: {events:?}");
    let warning = events.iter().find(|e| e["event"] == "warning").expect("a warning");
    assert!(warning["message"].as_str().unwrap_or_default().contains("`notify`"), "{warning}");
    assert_eq!(events.last().expect("events")["event"], "summary");

    // A reload that fails on web2 after the switch: every host is put back.
    let inventory = std::fs::read_to_string(project.path().join("cutover.yaml")).expect("inventory");
    project.write("cutover.yaml", &inventory.replace("reload: none", "reload: test ! -e fail-reload"));
    project.write("hosts/web2/fail-reload", "");
    let (code, _) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(3));
    let outcomes = std::fs::read_to_string(project.path().join("outcomes")).expect("outcomes");
    assert_eq!(outcomes, "CUTOVER_OUTCOME=success\nCUTOVER_OUTCOME=rolled_back\n");
}

#[test]
fn an_interrupt_during_a_before_hook_stops_it_and_its_children_and_touches_no_host() {
    // `finished` would say the hook ran to its end.
    let slow = "local_hooks:\n  before:\n    - name: slow build\n      run: sleep 300 & echo $! > child.pid; wait; touch finished\n";
    let project = Project::new(slow);
    let child = project.spawn_json(&["deploy"]);
    project.wait_for(&["child.pid".to_owned()]);
    let _ = std::process::Command::new("kill").args(["-INT", "--", &format!("-{}", child.id())]).status();
    let out = child.wait_with_output().expect("cutover ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(!project.path().join("finished").exists(), "the hook was stopped, not waited for");
    assert!(stdout.contains(r#""error":"interrupted""#), "the hook's failure says why: {stdout}");
    // Gone, or a zombie waiting to be reaped by whoever inherited it (a
    // SIGKILL lands within moments).
    let pid = std::fs::read_to_string(project.path().join("child.pid")).expect("pid");
    let dead = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).unwrap_or("gone");
        matches!(state, "gone" | "Z" | "X")
    };
    let since = std::time::Instant::now();
    while !dead() && since.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(dead(), "the hook's child was stopped too");
    for host in HOSTS {
        assert!(!project.deploy_path(host).exists(), "{host}: touched");
    }
}
