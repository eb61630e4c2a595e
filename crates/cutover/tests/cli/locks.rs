//! Locks carry the run's token: a run works under a lock and releases it
//! only while the lock is its own.

use crate::harness::{HOSTS, Project, events_of, summary};

/// A build step that says it started, waits while `hold` exists, then
/// exits with `exit`.
fn held_build(project: &Project, started: &str, hold: &str, exit: u8) -> String {
    let p = project.path().display();
    format!(
        "hooks:\n  build:\n    - name: held\n      run: touch '{p}/{started}-'\"$CUTOVER_HOST\"; \
         while [ -e '{p}/{hold}' ]; do sleep 0.05; done; exit {exit}\n"
    )
}

#[test]
fn a_stalled_run_that_wakes_after_an_unlock_touches_neither_the_new_lock_nor_the_new_release() {
    stalled_run_wakes(1);
}

#[test]
fn a_stalled_run_whose_build_then_succeeds_runs_no_migration_under_the_new_lock() {
    stalled_run_wakes(0);
}

/// Run A stalls in its build, its locks are removed by hand, run B takes
/// them and builds; A's build then ends with `a_exit` (then A's migration
/// would run, were its lock not checked first).
fn stalled_run_wakes(a_exit: u8) {
    let project = Project::new("");
    let (code, _) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(0));
    // Run B's inventory: the same hosts, a build that waits for `hold-b`.
    project.write_inventory(&held_build(&project, "b-building", "hold-b", 0));
    let b_inventory = std::fs::read_to_string(project.path().join("cutover.yaml")).expect("inventory");
    project.write("b.yaml", &b_inventory);
    // Run A stalls in its build, then ends with `a_exit`; its migration
    // leaves a mark.
    let migration = format!(
        "  before_flip:\n    - name: migrate\n      once: true\n      run: touch '{}/a-migrated'\n",
        project.path().display()
    );
    project.write_inventory(&format!("{}{migration}", held_build(&project, "a-building", "stall", a_exit)));
    project.write("stall", "");
    project.write("hold-b", "");

    let a = project.spawn_json(&["deploy", "-i", "cutover.yaml"]);
    project.wait_for(&HOSTS.map(|h| format!("a-building-{h}")));
    let (code, _) = project.cutover_json(&["unlock", "--yes"]);
    assert_eq!(code, Some(0), "the stalled run's locks are removed by hand");
    let b = project.spawn_json(&["deploy", "-i", "b.yaml"]);
    project.wait_for(&HOSTS.map(|h| format!("b-building-{h}")));
    let b_owner = |host: &str| std::fs::read_to_string(project.deploy_path(host).join(".cutover/lock/owner"));
    let b_owners: Vec<String> = HOSTS.iter().map(|h| b_owner(h).expect("b holds the lock")).collect();
    let b_release = |host: &str| project.releases(host).into_iter().max().expect("b's release");
    let b_releases: Vec<String> = HOSTS.iter().map(|h| b_release(h)).collect();

    std::fs::remove_file(project.path().join("stall")).expect("wake a");
    let a = a.wait_with_output().expect("a ends");
    assert_eq!(a.status.code(), Some(1), "a failed before any switch");
    assert!(!project.path().join("a-migrated").exists(), "a ran no migration under b's lock");
    for (i, host) in HOSTS.iter().enumerate() {
        assert_eq!(b_owner(host).ok().as_ref(), Some(&b_owners[i]), "{host}: b's lock is left alone");
        assert!(project.releases(host).contains(&b_releases[i]), "{host}: b's release is left alone");
    }
    let a_events = String::from_utf8_lossy(&a.stdout).into_owned();
    assert!(a_events.contains("the lock is no longer this run's"), "a says why it stopped: {a_events}");

    std::fs::remove_file(project.path().join("hold-b")).expect("let b go");
    let b = b.wait_with_output().expect("b ends");
    assert_eq!(b.status.code(), Some(0), "{}", String::from_utf8_lossy(&b.stdout));
    let events = events_of(&b);
    let _ = summary(&events);
    for (i, host) in HOSTS.iter().enumerate() {
        assert_eq!(project.current(host).as_ref(), Some(&b_releases[i]), "{host}: b deployed");
        assert!(!project.locked(host), "{host}");
    }
}
