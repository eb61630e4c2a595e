//! What signals do to a run: the first SIGINT or SIGTERM stops gracefully,
//! a second stops waiting for remote work and still puts the fleet back and
//! releases every lock (as when CI cancels a job: SIGINT, then SIGTERM), a
//! third exits at once.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::failures::{deploy_with_a_slow_build, sleeping, slow_build_sleep};
use crate::harness::{HOSTS, Project, events_of, summary};

/// Sends `name` to cutover's whole process group, as a terminal does with
/// Ctrl-C (every run here is started as the leader of its own group).
fn signal(child: &Child, name: &str) {
    // The run may have ended already: that is for the caller to check.
    let _ = Command::new("kill").args([&format!("-{name}"), "--", &format!("-{}", child.id())]).status();
}

#[test]
fn sigint_then_sigterm_during_the_build_leaves_the_fleet_unchanged_and_unlocked() {
    let project = Project::new("");
    // A slow `rm` keeps the clean-up after the first signal busy when the
    // second arrives.
    project.write_executable("bin/rm", "#!/bin/sh\nsleep 3\nexec /bin/rm \"$@\"\n");
    let mut child = deploy_with_a_slow_build(&project);
    signal(&child, "INT");
    std::thread::sleep(Duration::from_secs(2));
    signal(&child, "TERM");
    assert_eq!(child.wait().expect("wait").code(), Some(1), "failed before any switch, not 130");
    assert!(!sleeping(&slow_build_sleep(&project)), "the step's processes ended");
    for host in HOSTS {
        assert!(!project.locked(host), "{host}: no lock left");
        assert!(project.releases(host).is_empty(), "{host}: the release is removed");
        assert_eq!(project.current(host), None, "{host}");
    }
}

#[test]
fn sigint_then_sigterm_during_the_switch_puts_every_host_back_and_unlocks() {
    let project = Project::new("");
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(0), "{events:?}");
    let v1 = summary(&events)["release"].as_str().expect("release").to_owned();
    // A health check that takes its time, on every host.
    project.write_inventory("health_check:\n  retries: 1\n  command: 'touch ../../../../checking; sleep 20'\n");
    project.write("app/public/index.php", "<?php echo 'v2';\n");
    let child = project.spawn_json(&["deploy"]);
    project.wait_for(&HOSTS.map(|h| format!("hosts/{h}/checking")));
    signal(&child, "INT");
    std::thread::sleep(Duration::from_secs(2));
    for host in HOSTS {
        assert_ne!(project.current(host).as_deref(), Some(v1.as_str()), "{host}: the first signal finishes the switch");
    }
    signal(&child, "TERM");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(3), "rolled back, not 130");
    let events = events_of(&out);
    let end = summary(&events);
    assert_eq!(end["outcome"], "rolled_back", "{end}");
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(v1.as_str()), "{host}: back on v1");
        assert_eq!(project.served(host), "<?php echo 'v1';\n");
        assert!(!project.locked(host), "{host}: no lock left");
    }
}

#[test]
fn a_third_signal_exits_at_once_and_unlock_clears_the_lock_left() {
    let project = Project::new("");
    project.write_executable("bin/rm", "#!/bin/sh\nsleep 3\nexec /bin/rm \"$@\"\n");
    let mut child = deploy_with_a_slow_build(&project);
    for _ in 0..3 {
        signal(&child, "INT");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(child.wait().expect("wait").code(), Some(130), "exited at once");
    // Its jobs end all the same: their reader is gone.
    let step = slow_build_sleep(&project);
    let started = Instant::now();
    while sleeping(&step) {
        assert!(started.elapsed() < Duration::from_secs(10), "the step's processes outlived cutover");
        std::thread::sleep(Duration::from_millis(100));
    }

    let (_, events) = project.cutover_json(&["status"]);
    let status = summary(&events);
    let locked: Vec<&str> = HOSTS.iter().copied().filter(|h| !status["hosts"][*h]["lock"].is_null()).collect();
    assert!(!locked.is_empty(), "status reports the lock left behind: {status}");
    let (code, _) = project.cutover_json(&["unlock", "--yes"]);
    assert_eq!(code, Some(0));
    for host in HOSTS {
        assert!(!project.locked(host), "{host}: unlocked");
    }
    project.write_inventory("");
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(0), "a deploy runs again: {events:?}");
}

#[test]
fn cutover_killed_leaves_its_lock_but_not_its_jobs() {
    let project = Project::new("");
    let mut child = deploy_with_a_slow_build(&project);
    let step = slow_build_sleep(&project);
    assert!(sleeping(&step));
    signal(&child, "KILL");
    let _ = child.wait();
    let started = Instant::now();
    while sleeping(&step) {
        assert!(started.elapsed() < Duration::from_secs(10), "the step's processes outlived cutover");
        std::thread::sleep(Duration::from_millis(100));
    }
    for host in HOSTS {
        assert!(project.locked(host), "{host}: a SIGKILL leaves the lock, as documented");
    }
}

/// A `before_flip` migration on the primary that says when it starts and
/// when it ends, taking `seconds`.
fn slow_migration(project: &Project, seconds: &str) -> String {
    let p = project.path().display();
    format!(
        "hooks:\n  before_flip:\n    - name: migrate\n      once: true\n      \
         run: touch '{p}/migrating'; sleep {seconds}; touch '{p}/migrated'\n"
    )
}

#[test]
fn ctrl_c_during_a_migration_lets_it_finish_then_stops_before_the_switch() {
    let project = Project::new("");
    let (_, events) = project.cutover_json(&["deploy"]);
    let v1 = summary(&events)["release"].as_str().expect("release").to_owned();
    project.write_inventory(&slow_migration(&project, "2"));
    let child = project.spawn_json(&["deploy"]);
    project.wait_for(&["migrating".to_owned()]);
    signal(&child, "INT");
    let out = child.wait_with_output().expect("wait");
    let events = events_of(&out);
    assert_eq!(out.status.code(), Some(1), "{events:?}");
    assert!(project.path().join("migrated").exists(), "the migration ran to its end");
    let said: Vec<&str> =
        events.iter().filter(|e| e["event"] == "warning").filter_map(|e| e["message"].as_str()).collect();
    assert!(said.iter().any(|m| m.contains("letting `before-flip` finish")), "{said:?}");
    let end = summary(&events);
    assert!(end["not_undone"].as_str().unwrap_or_default().contains("migrations"), "{end}");
    assert!(!events.iter().any(|e| e["event"] == "switched"), "no host switched");
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(v1.as_str()), "{host}");
        assert_eq!(project.releases(host), vec![v1.clone()], "{host}");
        assert!(!project.locked(host), "{host}");
    }
}

#[test]
fn a_second_signal_during_a_migration_stops_it_and_says_so() {
    let project = Project::new("");
    let (_, events) = project.cutover_json(&["deploy"]);
    let v1 = summary(&events)["release"].as_str().expect("release").to_owned();
    // A duration of this project's own, to tell its process from others'.
    let seconds = slow_build_sleep(&project).replacen("30.", "20.", 1);
    project.write_inventory(&slow_migration(&project, &seconds));
    let child = project.spawn_json(&["deploy"]);
    project.wait_for(&["migrating".to_owned()]);
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "TERM");
    let out = child.wait_with_output().expect("wait");
    let events = events_of(&out);
    assert_eq!(out.status.code(), Some(1), "{events:?}");
    assert!(!project.path().join("migrated").exists(), "the migration was stopped");
    assert!(!sleeping(&seconds), "no process of it is left");
    let end = summary(&events);
    assert!(end["not_undone"].as_str().unwrap_or_default().contains("migrations"), "{end}");
    assert!(end["message"].as_str().unwrap_or_default().contains("interrupted"), "{end}");
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(v1.as_str()), "{host}");
        assert!(!project.locked(host), "{host}");
    }
}
