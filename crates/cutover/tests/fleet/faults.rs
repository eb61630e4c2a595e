//! Faults in the middle of a run: a host that freezes or dies during the
//! build or between staging and the flip, a health check that fails after a
//! switch (rolling and all at once), Ctrl-C at each stage, a drain hook that
//! fails. Each story says what every host serves afterwards and what is left
//! on disk.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Fleet, GIT_DELIVERY, HostState, docker_available, summary};

/// A build slow enough to act on a host meanwhile.
const SLOW_BUILD: &str = "hooks:
  build:
    - name: slow build
      run: sleep 5
      timeout: 30
";

/// The deploy flags of a rolling switch, one host per batch.
const ROLLING: [&str; 4] = ["--mode", "rolling", "--batch", "1"];

/// How long a test waits for a point of a run it is about to act on.
const WAIT: Duration = Duration::from_secs(120);

/// The hosts named in `switched` events to `release`, in order.
fn switched_to(events: &[Value], release: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "switched" && e["to"] == release)
        .map(|e| e["host"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The release the run chose (from its `release_chosen` event).
fn chosen(events: &[Value]) -> String {
    let event = events.iter().find(|e| e["event"] == "release_chosen").expect("a release_chosen event");
    event["release"].as_str().expect("release id").to_owned()
}

/// A phase began (`phase_started`).
fn phase_started(phase: &'static str) -> impl Fn(&Value) -> bool {
    move |e| e["event"] == "phase_started" && e["phase"] == phase
}

/// The first `n` hosts are exactly as `before`, serve v1, and hold no lock
/// or staged link.
fn assert_on_v1(fleet: &Fleet, n: usize, before: &[HostState], v1: &str) {
    let now = fleet.states();
    for (i, was) in before.iter().enumerate().take(n) {
        let host = &fleet.hosts[i].name;
        assert_eq!(&now[i], was, "{host}: unchanged, no release left");
        assert_eq!(fleet.served(i), format!("v1 {v1} opcache"), "{host}");
        assert!(!fleet.locked(i), "{host}: no lock");
        assert!(!fleet.staged(i), "{host}: no current-tmp");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_frozen_during_the_build_fails_the_deploy_before_any_switch() {
    let name = "a_host_frozen_during_the_build_fails_the_deploy_before_any_switch";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = Fleet::start_on_v1(3).await;
    let before = fleet.states();
    fleet.write_inventory(&format!("{GIT_DELIVERY}{SLOW_BUILD}"));

    let mut run = fleet.live("deploy", &[]);
    run.wait_for("the build", WAIT, phase_started("build"));
    for i in 0..fleet.hosts.len() {
        fleet.wait_until(i, "test -e /var/www/app/.cutover/lock/owner", WAIT);
    }
    fleet.docker(2, "pause");
    let (code, events, text) = run.finish();
    fleet.docker(2, "unpause");

    assert_eq!(code, Some(1), "failed before the switch:\n{text}");
    let summary = summary(&events);
    assert_eq!(summary["outcome"], "failed", "{summary}");
    assert!(summary["hosts"]["web3"]["error"].is_string(), "names the frozen host: {summary}");
    eprintln!("{name}: web3: {}", summary["hosts"]["web3"]["error"]);
    assert!(switched_to(&events, &chosen(&events)).is_empty(), "no host switched:\n{text}");
    assert_on_v1(&fleet, 2, &before, &v1);
    // web3 was never switched; what the frozen host kept is for `status`.
    assert_eq!(fleet.current(2).as_deref(), Some(v1.as_str()), "web3 still on v1");
    assert_eq!(fleet.served(2), format!("v1 {v1} opcache"), "web3");
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_stopped_during_the_build_fails_the_deploy_before_any_switch() {
    let name = "a_host_stopped_during_the_build_fails_the_deploy_before_any_switch";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = Fleet::start_on_v1(3).await;
    let before = fleet.states();
    fleet.write_inventory(&format!("{GIT_DELIVERY}{SLOW_BUILD}"));

    let mut run = fleet.live("deploy", &[]);
    run.wait_for("the build", WAIT, phase_started("build"));
    fleet.stop(2).await;
    let (code, events, text) = run.finish();

    assert_eq!(code, Some(1), "failed before the switch:\n{text}");
    let summary = summary(&events);
    assert_eq!(summary["outcome"], "failed", "{summary}");
    assert!(summary["hosts"]["web3"]["error"].is_string(), "names the stopped host: {summary}");
    eprintln!("{name}: web3: {}", summary["hosts"]["web3"]["error"]);
    assert!(switched_to(&events, &chosen(&events)).is_empty(), "no host switched:\n{text}");
    assert_on_v1(&fleet, 2, &before, &v1);
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_health_check_in_the_second_batch_puts_every_switched_host_back() {
    let name = "a_failed_health_check_in_the_second_batch_puts_every_switched_host_back";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = Fleet::start_on_v1(3).await;
    let before = fleet.states();
    let check = "health_check:\n  command: test ! -e /tmp/unhealthy\n  retries: 2\n  interval: 1\n";
    fleet.write_inventory(&format!("{GIT_DELIVERY}{check}"));
    fleet.exec_ok(1, "touch /tmp/unhealthy");

    let (code, events, text) = fleet.run_json("deploy", &ROLLING);
    assert_eq!(code, Some(3), "rolled back:\n{text}");
    let v2 = chosen(&events);
    assert_eq!(switched_to(&events, &v2), ["web1", "web2"], "batch 1 and 2 switched, batch 3 never:\n{text}");
    let summary = summary(&events);
    assert_eq!(summary["outcome"], "rolled_back", "{summary}");
    let health = summary["hosts"]["web2"]["health"].as_str().unwrap_or_default();
    assert!(health.starts_with("failed"), "web2's health: {summary}");
    let failed_check = events.iter().any(|e| e["event"] == "health" && e["host"] == "web2" && e["passed"] == false);
    assert!(failed_check, "a failed health event for web2:\n{text}");
    assert_on_v1(&fleet, 3, &before, &v1);
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_health_check_after_an_all_at_once_switch_puts_every_host_back() {
    let name = "a_failed_health_check_after_an_all_at_once_switch_puts_every_host_back";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = Fleet::start_on_v1(3).await;
    let before = fleet.states();
    let check = "health_check:\n  url: http://127.0.0.1/health.php\n  status: 200\n  body: ok\n  \
                 retries: 2\n  interval: 1\n";
    fleet.write_inventory(&format!("{GIT_DELIVERY}{check}"));
    // web3's health page answers 503 (see harness/git.rs).
    fleet.exec_ok(2, "touch /tmp/unhealthy");
    assert_eq!(fleet.http_get(2, "/health.php").0, 503);

    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(3), "rolled back:\n{text}");
    let v2 = chosen(&events);
    assert_eq!(switched_to(&events, &v2).len(), 3, "every host switched at once:\n{text}");
    let summary = summary(&events);
    assert_eq!(summary["outcome"], "rolled_back", "{summary}");
    let health = summary["hosts"]["web3"]["health"].as_str().unwrap_or_default();
    assert!(health.starts_with("failed"), "web3's health: {summary}");
    assert_on_v1(&fleet, 3, &before, &v1);
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_the_build_removes_the_release_everywhere() {
    let name = "ctrl_c_during_the_build_removes_the_release_everywhere";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = Fleet::start_on_v1(3).await;
    let before = fleet.states();
    fleet.write_inventory(&format!("{GIT_DELIVERY}{SLOW_BUILD}"));

    let mut run = fleet.live("deploy", &[]);
    run.wait_for("the build", WAIT, phase_started("build"));
    for i in 0..fleet.hosts.len() {
        fleet.wait_until(i, "test -e /var/www/app/.cutover/lock/owner", WAIT);
    }
    run.signal("INT");
    let (code, events, text) = run.finish();

    assert_eq!(code, Some(1), "aborted before the switch:\n{text}");
    assert_eq!(summary(&events)["outcome"], "failed", "{text}");
    assert!(switched_to(&events, &chosen(&events)).is_empty(), "no host switched:\n{text}");
    assert_on_v1(&fleet, 3, &before, &v1);
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_an_all_at_once_switch_finishes_the_switch() {
    let name = "ctrl_c_during_an_all_at_once_switch_finishes_the_switch";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, _v1) = Fleet::start_on_v1(3).await;
    let reloads: Vec<usize> = (0..3).map(|i| fleet.reload_count(i)).collect();
    fleet.write_inventory_edited(
        GIT_DELIVERY,
        &[(
            "reload: sudo /usr/local/sbin/reload-php-fpm\n",
            "reload: 'sudo /usr/local/sbin/reload-php-fpm && sleep 3'\n",
        )],
    );

    let mut run = fleet.live("deploy", &[]);
    run.wait_for("the flip", WAIT, phase_started("flip"));
    let v2 = chosen(&run.events());
    // The reload (and its 3 s) rides in the flip's script, after the rename.
    let waiting = Instant::now();
    while switched_to(&run.events(), &v2).len() < fleet.hosts.len() {
        assert!(waiting.elapsed() < WAIT, "not every host switched: {:#?}", run.events());
        std::thread::sleep(Duration::from_millis(50));
    }
    for (i, host) in fleet.hosts.iter().enumerate() {
        assert_eq!(fleet.current(i).as_deref(), Some(v2.as_str()), "{}: switched before the interrupt", host.name);
    }
    run.signal("INT");
    let (code, events, text) = run.finish();

    assert_eq!(code, Some(0), "the switch was finished:\n{text}");
    assert_eq!(summary(&events)["outcome"], "done", "{text}");
    fleet.assert_serving("v2", &v2);
    for (i, host) in fleet.hosts.iter().enumerate() {
        assert!(fleet.reload_count(i) > reloads[i], "{}: PHP-FPM was reloaded", host.name);
    }
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_between_rolling_batches_puts_the_switched_batch_back() {
    let name = "ctrl_c_between_rolling_batches_puts_the_switched_batch_back";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = Fleet::start_on_v1(3).await;
    let before = fleet.states();
    fleet.write_inventory(&format!("{GIT_DELIVERY}rolling:\n  pause: 5\n"));

    let mut run = fleet.live("deploy", &ROLLING);
    run.wait_for("the pause after batch 1", WAIT, phase_started("pause"));
    let v2 = chosen(&run.events());
    assert_eq!(fleet.current(0).as_deref(), Some(v2.as_str()), "web1 switched in batch 1");
    run.signal("INT");
    let (code, events, text) = run.finish();

    assert_eq!(code, Some(3), "stopped at the batch boundary and switched back:\n{text}");
    assert_eq!(summary(&events)["outcome"], "rolled_back", "{text}");
    assert_eq!(switched_to(&events, &v2), ["web1"], "only batch 1 switched:\n{text}");
    assert_on_v1(&fleet, 3, &before, &v1);
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_stopped_between_staging_and_the_flip_leaves_the_others_on_v1() {
    let name = "a_host_stopped_between_staging_and_the_flip_leaves_the_others_on_v1";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = Fleet::start_on_v1(3).await;
    let before = fleet.states();
    // The config test runs while staging; on web1 it takes four seconds, so
    // web3 is staged and waits at the gate meanwhile.
    let web1 = fleet.hostname(0);
    let slow = format!("config_test: 'if [ \"$(cat /etc/hostname)\" = {web1} ]; then sleep 4; fi'\n");
    fleet.write_inventory_edited(GIT_DELIVERY, &[("config_test: none\n", &slow)]);

    let mut run = fleet.live("deploy", &[]);
    // With no before_flip steps, staging rides in the build's round trip.
    run.wait_for("building and staging", WAIT, phase_started("build"));
    fleet.wait_until(2, "test -L /var/www/app/current-tmp", WAIT);
    assert!(fleet.current(0).as_deref() == Some(v1.as_str()), "web1 not switched yet");
    fleet.stop(2).await;
    let (code, events, text) = run.finish();

    // web3's flip cannot start (its connection is gone), so it never says
    // it is ready: no host is let go, none switches, and the run fails
    // before the switch.
    assert_eq!(code, Some(1), "failed before the switch, the reachable hosts unchanged:\n{text}");
    let summary = summary(&events);
    assert_eq!(summary["outcome"], "failed", "{summary}");
    let web3 = &summary["hosts"]["web3"];
    assert!(web3["error"].as_str().is_some_and(|e| e.contains("web3")), "names the stopped host: {summary}");
    for host in ["web1", "web2"] {
        assert_eq!(summary["hosts"][host]["current"], v1.as_str(), "{host} on v1: {summary}");
    }
    assert!(!events.iter().any(|e| e["event"] == "switched"), "no host switched:\n{text}");
    assert_on_v1(&fleet, 2, &before, &v1);
    eprintln!("{name}: exit {code:?}, {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_drain_hook_stops_a_rolling_deploy_before_any_switch() {
    let name = "a_failing_drain_hook_stops_a_rolling_deploy_before_any_switch";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = Fleet::start_on_v1(3).await;
    let before = fleet.states();
    fleet.write_inventory(&format!("{GIT_DELIVERY}rolling:\n  drain:\n    run: exit 7\n"));

    let (code, events, text) = fleet.run_json("deploy", &["--mode", "rolling"]);
    assert_eq!(code, Some(1), "failed before any switch:\n{text}");
    assert_eq!(summary(&events)["outcome"], "failed", "{text}");
    assert!(switched_to(&events, &chosen(&events)).is_empty(), "no host switched:\n{text}");
    assert!(text.contains("drain"), "says the drain failed:\n{text}");
    assert_on_v1(&fleet, 3, &before, &v1);
    eprintln!("{name}: {:.1?}", started.elapsed());
}
