//! The life of an application: deploy, deploy again, roll back, check status.

use crate::harness::{HOSTS, Project, summary};

#[test]
fn deploy_twice_then_roll_back_and_every_host_agrees() {
    let project = Project::new("");

    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(0), "{events:?}");
    let first = summary(&events)["release"].as_str().expect("release").to_owned();
    assert_eq!(summary(&events)["outcome"], "done");
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(first.as_str()), "{host}");
        assert_eq!(project.served(host), "<?php echo 'v1';\n");
        assert!(!project.locked(host), "{host} still locked");
    }

    project.write("app/public/index.php", "<?php echo 'v2';\n");
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(0), "{events:?}");
    let second = summary(&events)["release"].as_str().expect("release").to_owned();
    assert!(second > first, "{second} after {first}");
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(second.as_str()));
        assert_eq!(project.served(host), "<?php echo 'v2';\n");
        assert_eq!(project.releases(host), vec![first.clone(), second.clone()]);
    }

    let (code, events) = project.cutover_json(&["rollback"]);
    assert_eq!(code, Some(0), "{events:?}");
    assert_eq!(summary(&events)["release"], first.as_str());
    for host in HOSTS {
        assert_eq!(project.served(host), "<?php echo 'v1';\n", "{host} serves v1 again");
    }

    let (code, events) = project.cutover_json(&["status"]);
    assert_eq!(code, Some(0));
    let status = summary(&events);
    assert_eq!(status["command"], "status");
    for host in HOSTS {
        let h = &status["hosts"][host];
        assert_eq!(h["current"], first.as_str(), "{host}: {h}");
        assert_eq!(h["releases"].as_array().map(Vec::len), Some(2));
        assert!(h["lock"].is_null());
    }
    let log = std::fs::read_to_string(project.deploy_path("web1").join("revisions.log")).expect("log");
    let kinds: Vec<&str> = log.lines().map(|l| l.split('\t').nth(1).unwrap_or("")).collect();
    assert_eq!(kinds, ["deploy", "deploy", "rollback"]);
}

#[test]
fn every_host_gets_the_same_release_revision_and_shared_links() {
    let project = Project::new("");
    let (code, _) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(0));
    let revisions: Vec<String> = HOSTS
        .iter()
        .map(|h| std::fs::read_to_string(project.deploy_path(h).join("current/REVISION")).expect("REVISION"))
        .collect();
    assert!(revisions.iter().all(|r| r == &revisions[0] && !r.trim().is_empty()), "{revisions:?}");
    for host in HOSTS {
        let storage = project.deploy_path(host).join("current/storage");
        let meta = std::fs::symlink_metadata(&storage).expect("storage link");
        assert!(meta.file_type().is_symlink(), "{host}: storage is a link into shared/");
        let current = std::fs::symlink_metadata(project.deploy_path(host).join("current")).expect("current");
        assert!(current.file_type().is_symlink(), "{host}: current is a symlink");
        assert!(!project.deploy_path(host).join("current-tmp").exists());
    }
}

#[test]
fn runs_within_one_second_get_distinct_ids_and_old_releases_are_pruned() {
    let project = Project::new("");
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (code, events) = project.cutover_json(&["deploy"]);
        assert_eq!(code, Some(0), "{events:?}");
        ids.push(summary(&events)["release"].as_str().expect("release").to_owned());
    }
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique, ids, "five deploys, five ids, in order");
    for host in HOSTS {
        // keep_releases is 3 in the harness.
        assert_eq!(project.releases(host), ids[2..].to_vec(), "{host}");
    }
}

#[test]
fn rollback_to_a_named_release_and_refusal_when_it_is_missing() {
    let project = Project::new("");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, events) = project.cutover_json(&["deploy"]);
        ids.push(summary(&events)["release"].as_str().expect("release").to_owned());
    }
    let (code, _) = project.cutover_json(&["rollback", "--to", &ids[0]]);
    assert_eq!(code, Some(0));
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(ids[0].as_str()));
    }
    let (code, events) = project.cutover_json(&["rollback", "--to", "20000101000000"]);
    assert_eq!(code, Some(1), "{events:?}");
    assert!(summary(&events)["message"].as_str().unwrap_or("").contains("is not on this host"));
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(ids[0].as_str()), "unchanged");
    }
}

#[test]
fn rollback_refuses_when_hosts_disagree_unless_told_where_to() {
    let project = Project::new("");
    let (_, first) = project.cutover_json(&["deploy"]);
    let first = summary(&first)["release"].as_str().expect("release").to_owned();
    let (_, second) = project.cutover_json(&["deploy", "--hosts", "web1,web2"]);
    let second = summary(&second)["release"].as_str().expect("release").to_owned();
    assert_eq!(project.current("web3").as_deref(), Some(first.as_str()));

    let (code, events) = project.cutover_json(&["status"]);
    assert_eq!(code, Some(4), "drift is reported");
    assert_eq!(summary(&events)["outcome"], "inconsistent");

    let (code, events) = project.cutover_json(&["rollback"]);
    assert_eq!(code, Some(1), "{events:?}");
    let message = summary(&events)["message"].as_str().unwrap_or("").to_owned();
    assert!(message.contains("disagree") && message.contains(&second), "{message}");
    assert_eq!(project.current("web1").as_deref(), Some(second.as_str()), "nothing changed");

    let (code, _) = project.cutover_json(&["rollback", "--to", &first, "--hosts", "web1,web2"]);
    assert_eq!(code, Some(0));
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(first.as_str()));
    }
}

/// A release a rollback left is not gone back to: deploy A and B, roll
/// back to A, deploy C, roll back: the fleet goes to A, not to the B it
/// left once already. `--to B` still goes there, and B is live again.
#[test]
fn a_rollback_never_returns_to_a_release_a_rollback_left() {
    let project = Project::new("");
    // Every release of the story stays on disk.
    let inventory = std::fs::read_to_string(project.path().join("cutover.yaml")).expect("inventory");
    project.write("cutover.yaml", &inventory.replace("keep_releases: 3", "keep_releases: 10"));
    let deploy = |version: &str| {
        project.write("app/public/index.php", &format!("<?php echo '{version}';\n"));
        let (code, events) = project.cutover_json(&["deploy"]);
        assert_eq!(code, Some(0), "{events:?}");
        summary(&events)["release"].as_str().expect("release").to_owned()
    };
    let rollback = |args: &[&str]| {
        let (code, events) = project.cutover_json(&[&["rollback"], args].concat());
        assert_eq!(code, Some(0), "{events:?}");
        summary(&events)["release"].as_str().expect("release").to_owned()
    };
    let a = deploy("a");
    let b = deploy("b");
    assert_eq!(rollback(&[]), a);
    for host in HOSTS {
        assert!(project.deploy_path(host).join(format!("releases/{b}/ROLLED_BACK")).exists(), "{host}: b marked");
    }
    let _c = deploy("c");
    assert_eq!(rollback(&[]), a, "back to a, the release live before c, not b");
    for host in HOSTS {
        assert_eq!(project.served(host), "<?php echo 'a';\n", "{host}");
    }
    assert_eq!(rollback(&["--to", &b]), b, "a release a rollback left can still be named");
    for host in HOSTS {
        assert!(!project.deploy_path(host).join(format!("releases/{b}/ROLLED_BACK")).exists(), "{host}: b is live");
        assert_eq!(project.served(host), "<?php echo 'b';\n", "{host}");
        let a_marked = project.deploy_path(host).join(format!("releases/{a}/ROLLED_BACK")).exists();
        assert!(!a_marked, "{host}: going forward to b marks nothing");
    }
    assert_eq!(rollback(&[]), a, "and back from b is a again");

    // A rollback --to far back marks every release it went back over:
    // deploy d, e; --to a; deploy f; roll back: a again, not d or e.
    let (d, e) = (deploy("d"), deploy("e"));
    assert_eq!(rollback(&["--to", &a]), a);
    for host in HOSTS {
        for over in [&d, &e] {
            assert!(project.deploy_path(host).join(format!("releases/{over}/ROLLED_BACK")).exists(), "{host}: {over}");
        }
    }
    let _f = deploy("f");
    assert_eq!(rollback(&[]), a, "back to a, the release live before f");
}
