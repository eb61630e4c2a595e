//! Deploys that must not go through: a build failing on one host, a second
//! run while one holds the lock, an unreachable host, an unknown host key, a
//! branch or repository the hosts cannot find.
//! Each leaves every host as it was.

use std::time::{Duration, Instant};

use crate::harness::{Fleet, GIT_DELIVERY, docker_available, spawn_cutover, summary, text, wait_limited};

/// A build step that fails on web2 only (composer refuses a missing file).
const FAIL_ON_WEB2: &str = "hooks:
  build:
    - name: composer check
      run: 'test \"$CUTOVER_HOST\" != web2 || composer validate --strict nonexistent.json'
";

/// A build step slow enough to run a second deploy meanwhile.
const SLOW_BUILD: &str = "hooks:
  build:
    - name: slow build
      run: sleep 8
";

/// Starts a fleet and deploys v1 from git to it; returns it and the release.
async fn fleet_on_v1() -> (Fleet, String) {
    let fleet = Fleet::start(3).await;
    fleet.write_inventory(GIT_DELIVERY);
    let v1 = fleet.deploy_ok();
    fleet.assert_serving("v1", &v1);
    fleet.git().commit_version("v2");
    (fleet, v1)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_failing_on_one_host_switches_no_host() {
    let name = "a_build_failing_on_one_host_switches_no_host";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = fleet_on_v1().await;
    let before = fleet.states();
    fleet.write_inventory(&format!("{GIT_DELIVERY}{FAIL_ON_WEB2}"));

    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "failed before the switch:\n{text}");
    let summary = summary(&events);
    assert_eq!(summary["outcome"], "failed", "{summary}");
    let error = summary["hosts"]["web2"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("composer check"), "names the step: {summary}");
    assert_eq!(fleet.states(), before, "no host switched, no release left");
    fleet.assert_serving("v1", &v1);
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_deploy_while_one_runs_is_refused_naming_the_owner() {
    let name = "a_second_deploy_while_one_runs_is_refused_naming_the_owner";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let fleet = Fleet::start(3).await;
    fleet.write_inventory(&format!("{GIT_DELIVERY}{SLOW_BUILD}"));
    let args = ["deploy", "-i", "cutover.yaml"];
    let first = spawn_cutover(&fleet.project(), &args);
    let pid = first.id();
    for i in 0..fleet.hosts.len() {
        let owner = "test -s /var/www/app/.cutover/lock/owner";
        fleet.wait_until(i, owner, Duration::from_secs(60));
    }

    let second = fleet.run("deploy", &[]);
    let said = text(&second);
    assert_eq!(second.status.code(), Some(5), "locked:\n{said}");
    assert!(said.contains(&format!("pid {pid}")), "names the owner:\n{said}");

    let first = wait_limited(first, &args);
    assert_eq!(first.status.code(), Some(0), "first deploy:\n{}", text(&first));
    let release = fleet.current(0).expect("web1 has a release");
    fleet.assert_serving("v1", &release);
    for (i, host) in fleet.hosts.iter().enumerate() {
        assert_eq!(fleet.releases(i), std::slice::from_ref(&release), "{}: one release", host.name);
    }
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_host_stops_the_deploy_before_any_host_changes() {
    let name = "an_unreachable_host_stops_the_deploy_before_any_host_changes";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = fleet_on_v1().await;
    let before = fleet.states();
    fleet.stop(2).await;

    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "failed before the switch:\n{text}");
    assert!(text.contains("web3"), "names the host:\n{text}");
    let summary = summary(&events);
    assert!(summary["hosts"]["web3"]["error"].is_string(), "{summary}");
    let after = fleet.states();
    for (i, host) in fleet.hosts.iter().enumerate().take(2) {
        assert_eq!(after[i], before[i], "{}: unchanged", host.name);
        assert_eq!(fleet.served(i), format!("v1 {v1} opcache"), "{}", host.name);
        assert!(!fleet.locked(i), "{}: no lock", host.name);
    }
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_host_key_is_refused_under_strict_checking() {
    let name = "an_unknown_host_key_is_refused_under_strict_checking";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = fleet_on_v1().await;
    let before = fleet.states();
    fleet.forget_host_key(1);

    let (code, _, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "refused:\n{text}");
    assert!(text.contains("web2"), "names the host:\n{text}");
    assert!(text.to_lowercase().contains("host key"), "says it is about the host key:\n{text}");
    assert_eq!(fleet.states(), before, "nothing changed on any host");
    fleet.assert_serving("v1", &v1);
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_that_outlives_its_timeout_fails_the_deploy_as_timed_out() {
    let name = "a_step_that_outlives_its_timeout_fails_the_deploy_as_timed_out";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = fleet_on_v1().await;
    let before = fleet.states();
    let hang = "hooks:\n  build:\n    - name: hang\n      run: sleep 60\n      timeout: 2\n";
    fleet.write_inventory(&format!("{GIT_DELIVERY}{hang}"));

    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "failed before the switch:\n{text}");
    let summary = summary(&events);
    for host in &fleet.hosts {
        let error = summary["hosts"][&host.name]["error"].as_str().unwrap_or_default();
        assert!(error.contains("timed out after 2s"), "{}: {summary}", host.name);
    }
    assert_eq!(fleet.states(), before, "no host switched, no release left");
    fleet.assert_serving("v1", &v1);
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_branch_or_repository_the_hosts_cannot_find_is_refused_before_any_host_changes() {
    let name = "a_branch_or_repository_the_hosts_cannot_find_is_refused_before_any_host_changes";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = fleet_on_v1().await;
    let before = fleet.states();

    let (code, events, text) = fleet.run_json("deploy", &["--revision", "no-such-branch"]);
    assert_eq!(code, Some(1), "refused:\n{text}");
    let error = summary(&events)["hosts"]["web1"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("`no-such-branch` not found in /srv/git/app.git"), "the primary says: {error}");

    fleet.write_inventory(&GIT_DELIVERY.replace("app.git", "moved.git"));
    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "refused:\n{text}");
    let error = summary(&events)["hosts"]["web1"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.starts_with("web1: resolve"), "the primary's resolve failed: {error}");
    assert!(text.contains("moved.git"), "with git's own words:\n{text}");

    assert_eq!(fleet.states(), before, "nothing changed on any host");
    fleet.assert_serving("v1", &v1);
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}
