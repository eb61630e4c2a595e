//! Rolling switches on a local fleet: batches with load-balancer hooks and
//! health checks, and what a failure in a later batch does.

use crate::harness::{HOSTS, Project, summary};

/// Drain and undrain hooks that log to `lb.log` in the project.
const HOOKS: &str = "strategy: rolling\nrolling:\n  batch: [1, 100%]\n  \
    drain: { run: 'echo \"out $CUTOVER_BATCH $CUTOVER_BATCH_HOSTS\" >> lb.log' }\n  \
    undrain: { run: 'echo \"in $CUTOVER_BATCH $CUTOVER_BATCH_HOSTS\" >> lb.log' }\n";

/// A health check (run in the live release) that fails on a host whose
/// directory holds `unhealthy`.
const HEALTH: &str = "health_check: { command: 'test ! -e ../../../../unhealthy', retries: 2, interval: 0 }\n";

fn deployed(project: &Project) -> String {
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(0), "{events:?}");
    summary(&events)["release"].as_str().expect("release").to_owned()
}

#[test]
fn a_rolling_deploy_switches_batch_by_batch_between_drain_and_undrain() {
    let project = Project::new(&format!("{HOOKS}{HEALTH}"));
    let v1 = deployed(&project);
    let lb = std::fs::read_to_string(project.path().join("lb.log")).expect("lb.log");
    assert_eq!(lb, "out 1 web1\nin 1 web1\nout 2 web2 web3\nin 2 web2 web3\n");

    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(0));
    let end = summary(&events);
    for (host, batch) in [("web1", 1), ("web2", 2), ("web3", 2)] {
        assert_eq!(end["hosts"][host]["batch"], batch, "{end}");
        assert!(end["hosts"][host]["health"].as_str().unwrap_or("").contains("health ok"), "{end}");
        assert!(end["hosts"][host]["switched_at"].is_string(), "{end}");
    }
    let order: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "switched" || e["event"] == "batch_started")
        .map(|e| format!("{} {}", e["event"].as_str().unwrap_or(""), e["host"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(order, ["batch_started ", "switched web1", "batch_started ", "switched web2", "switched web3"]);
    assert_ne!(project.current("web1").as_deref(), Some(v1.as_str()));
}

#[test]
fn an_unhealthy_host_in_the_second_batch_rolls_back_the_first() {
    let project = Project::new(&format!("{HOOKS}{HEALTH}"));
    let v1 = deployed(&project);
    project.write("hosts/web3/unhealthy", "");
    project.write("app/public/index.php", "<?php echo 'v2';\n");
    std::fs::remove_file(project.path().join("lb.log")).expect("lb.log");

    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(3), "{events:?}");
    let end = summary(&events);
    assert_eq!(end["outcome"], "rolled_back");
    assert!(end["hosts"]["web3"]["health"].as_str().unwrap_or("").starts_with("failed"), "{end}");
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(v1.as_str()), "{host} is back on v1");
        assert_eq!(project.served(host), "<?php echo 'v1';\n");
        assert!(!project.locked(host));
    }
    let lb = std::fs::read_to_string(project.path().join("lb.log")).expect("lb.log");
    assert_eq!(lb, "out 1 web1\nin 1 web1\nout 2 web2 web3\nin 2 web2 web3\n", "batch 2 back in the balancer");
}

#[test]
fn on_failure_halt_stops_where_it_is() {
    let project = Project::new(&format!("{HOOKS}{HEALTH}on_failure: halt\n"));
    let v1 = deployed(&project);
    project.write("hosts/web3/unhealthy", "");
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(4), "{events:?}");
    let end = summary(&events);
    assert_eq!(end["outcome"], "halted");
    let v2 = end["release"].as_str().expect("release");
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(v2), "{host} switched before the halt");
        assert_eq!(end["hosts"][host]["current"], v2);
        assert!(!project.locked(host));
    }
    assert_ne!(v1, v2);
}

#[test]
fn a_failing_drain_hook_stops_before_any_host_switches() {
    let failing = "strategy: rolling\nrolling:\n  drain: { run: 'echo balancer says no >&2; exit 7' }\n";
    let project = Project::new(failing);
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(1), "{events:?}");
    let end = summary(&events);
    assert!(end["message"].as_str().unwrap_or("").contains("(local): drain"), "{end}");
    for host in HOSTS {
        assert_eq!(project.current(host), None);
        assert!(project.releases(host).is_empty() && !project.locked(host));
    }
}

#[test]
fn an_unhealthy_host_after_an_all_at_once_switch_puts_every_host_back() {
    let project = Project::new(HEALTH);
    let v1 = deployed(&project);
    project.write("hosts/web2/unhealthy", "");
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(3), "{events:?}");
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(v1.as_str()), "{host}");
        // Nothing is finalized before the fleet decides: no host logged the
        // failed deploy, though web1 and web3 passed their checks.
        let log = std::fs::read_to_string(project.deploy_path(host).join("revisions.log")).expect("log");
        assert_eq!(log.lines().count(), 1, "{host}: only v1's deploy is logged:\n{log}");
        assert!(!project.locked(host), "{host}");
    }
}

/// A health check that fails on the host holding `unhealthy`, slowly, and
/// notes whether web1 (healthy, checked at once) still holds its lock then.
const HEALTH_SLOW_ON_WEB2: &str = "health_check:
  retries: 1
  interval: 0
  command: |
    if [ -e ../../../../unhealthy ]; then
      sleep 1
      if [ -d ../../../../../web1/srv/shop/.cutover/lock ]; then echo locked > ../../../../../../web1-while-web2-failed; fi
      exit 1
    fi
";

#[test]
fn no_host_unlocks_or_prunes_while_another_can_still_fail() {
    let project = Project::new(HEALTH_SLOW_ON_WEB2);
    let v1 = deployed(&project);
    project.write("hosts/web2/unhealthy", "");
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(3), "{events:?}");
    let seen = std::fs::read_to_string(project.path().join("web1-while-web2-failed")).unwrap_or_default();
    assert_eq!(seen.trim(), "locked", "web1 kept its lock while web2's check could still fail");
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(v1.as_str()), "{host}: switched back");
        assert_eq!(project.releases(host), vec![v1.clone()], "{host}: the failed release removed");
        assert!(!project.locked(host), "{host}: unlocked");
    }
}

#[test]
fn rollback_honours_rolling_batches() {
    let project = Project::new(&format!("{HOOKS}{HEALTH}"));
    let v1 = deployed(&project);
    deployed(&project);
    std::fs::remove_file(project.path().join("lb.log")).expect("lb.log");
    let (code, events) = project.cutover_json(&["rollback", "--batch", "2"]);
    assert_eq!(code, Some(0), "{events:?}");
    let lb = std::fs::read_to_string(project.path().join("lb.log")).expect("lb.log");
    assert_eq!(lb, "out 1 web1 web2\nin 1 web1 web2\nout 2 web3\nin 2 web3\n");
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(v1.as_str()));
    }
}
