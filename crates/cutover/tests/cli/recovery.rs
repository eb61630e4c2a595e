//! What a run leaves behind when it meets another tool's host, a run that
//! died, or a failing step after a rollback's switch.

use crate::harness::{HOSTS, Project, stderr, summary};

#[test]
fn a_failed_switch_on_a_deployer_style_host_restores_its_own_current() {
    let project = Project::new("");
    let inventory = std::fs::read_to_string(project.path().join("cutover.yaml")).expect("inventory");
    project.write("cutover.yaml", &inventory.replace("reload: none", "reload: test ! -e fail-reload"));
    for host in HOSTS {
        let d = project.deploy_path(host);
        std::fs::create_dir_all(d.join("releases/7/public")).expect("release 7");
        std::os::unix::fs::symlink("releases/7", d.join("current")).expect("current");
    }
    project.write("hosts/web2/fail-reload", "");
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(3), "{events:?}");
    for host in HOSTS {
        let link = std::fs::read_link(project.deploy_path(host).join("current")).expect("current is still there");
        assert_eq!(link.to_string_lossy(), "releases/7", "{host}");
        assert_eq!(summary(&events)["hosts"][host]["current"], "7");
        assert!(project.deploy_path(host).join("releases/7").is_dir(), "{host}: never pruned");
    }
}

#[test]
fn a_release_left_by_a_run_that_died_is_never_a_rollback_target_and_is_pruned() {
    let project = Project::new("");
    let (_, events) = project.cutover_json(&["deploy"]);
    let first = summary(&events)["release"].as_str().expect("release").to_owned();
    // A run killed while building: its release has no REVISION.
    let dead = "20990101000000";
    for host in HOSTS {
        std::fs::create_dir_all(project.deploy_path(host).join("releases").join(dead).join("public")).expect("dead");
    }
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(0), "{events:?}");
    let third = summary(&events)["release"].as_str().expect("release").to_owned();
    assert!(third.as_str() > dead, "a new id past the dead one: {third}");
    for host in HOSTS {
        assert_eq!(project.releases(host), vec![first.clone(), third.clone()], "{host}: the dead release was pruned");
    }
    let (code, events) = project.cutover_json(&["rollback"]);
    assert_eq!(code, Some(0), "{events:?}");
    assert_eq!(summary(&events)["release"], first.as_str());
}

#[test]
fn a_failing_after_rollback_step_does_not_undo_the_rollback() {
    let project = Project::new("hooks:\n  after_rollback:\n    - name: queue restart\n      run: exit 1\n");
    let (_, events) = project.cutover_json(&["deploy"]);
    let first = summary(&events)["release"].as_str().expect("release").to_owned();
    project.cutover_json(&["deploy"]);
    let out = project.cutover(&["rollback"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("the rollback stands"), "{}", stderr(&out));
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(first.as_str()), "{host}");
    }
}
