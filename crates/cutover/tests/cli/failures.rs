//! Things going wrong: a failing build on one host, a held lock, a reload
//! that fails after the switch, Ctrl-C during the build.

use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use crate::harness::{HOSTS, Project, stderr, summary};

const FAIL_ON_WEB2: &str = "hooks:\n  build:\n    - name: fussy check\n      run: test \"$CUTOVER_HOST\" != web2\n";

#[test]
fn a_build_step_failing_on_one_host_switches_no_host_and_leaves_nothing() {
    let project = Project::new("");
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(0));
    let v1 = summary(&events)["release"].as_str().expect("release").to_owned();

    project.write_inventory(FAIL_ON_WEB2);
    project.write("app/public/index.php", "<?php echo 'v2';\n");
    let out = project.cutover(&["deploy"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("web2: build (step `fussy check`) failed"), "{err}");
    assert!(err.contains("gate failed: every host built"), "{err}");
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(v1.as_str()), "{host} not switched");
        assert_eq!(project.served(host), "<?php echo 'v1';\n");
        assert_eq!(project.releases(host), vec![v1.clone()], "{host}: the new release was removed");
        assert!(!project.locked(host), "{host}: lock released");
        assert!(!project.deploy_path(host).join("current-tmp").exists());
    }
}

#[test]
fn a_held_lock_refuses_with_its_owner_and_unlock_clears_it() {
    let project = Project::new("");
    let lock = project.deploy_path("web2").join(".cutover/lock");
    std::fs::create_dir_all(&lock).expect("lock dir");
    let owner = r#"{"application":"shop","command":"deploy","user":"ana","machine":"ci-7","pid":4242,"since":"2026-01-01T00:00:00Z","release":"20260101000000"}"#;
    std::fs::write(lock.join("owner"), owner).expect("owner");

    let out = project.cutover(&["deploy"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let text = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(text.contains("ana@ci-7 (pid 4242), deploy of 20260101000000"), "{text}");
    for host in HOSTS {
        assert_eq!(project.current(host), None, "{host}: nothing deployed");
        assert!(project.releases(host).is_empty());
    }
    assert!(!project.locked("web1"), "no lock taken on other hosts");
    assert!(project.locked("web2"), "the other run's lock is left alone");

    let (code, events) = project.cutover_json(&["status"]);
    assert_eq!(code, Some(0));
    assert_eq!(summary(&events)["hosts"]["web2"]["lock"]["user"], "ana");

    // Another run's lock is removed only when the user says so.
    let out = project.cutover(&["unlock"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(said.contains("ana@ci-7") && said.contains("pass --yes"), "{said}");
    assert!(project.locked("web2"), "not removed without --yes");
    let (code, events) = project.cutover_json(&["unlock", "--yes"]);
    assert_eq!(code, Some(0), "{events:?}");
    let end = summary(&events);
    assert_eq!(
        (end["hosts"]["web1"]["state"].as_str(), end["hosts"]["web2"]["state"].as_str()),
        (Some("not locked"), Some("unlocked"))
    );
    assert!(end["hosts"]["web2"]["lock"].is_null(), "no lock now: {end}");
    let removed = events.iter().find(|e| e["event"] == "warning" && e["host"] == "web2").expect("a removal note");
    assert!(
        removed["message"].as_str().unwrap_or_default().contains("ana@ci-7"),
        "it names whose lock it was: {removed}"
    );
    assert!(!project.locked("web2"));
    let (code, _) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(0));
}

#[test]
fn a_reload_failing_on_one_host_after_the_switch_puts_every_host_back() {
    let project = Project::new("");
    project.write_inventory("");
    let (_, events) = project.cutover_json(&["deploy"]);
    let v1 = summary(&events)["release"].as_str().expect("release").to_owned();

    // The reload runs in the host's directory; web2's refuses.
    let extra = "";
    project.write_inventory(extra);
    let inventory = std::fs::read_to_string(project.path().join("cutover.yaml")).expect("inventory");
    project.write("cutover.yaml", &inventory.replace("reload: none", "reload: test ! -e fail-reload"));
    project.write("hosts/web2/fail-reload", "");
    project.write("app/public/index.php", "<?php echo 'v2';\n");

    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(3), "{events:?}");
    let end = summary(&events);
    assert_eq!(end["outcome"], "rolled_back");
    let switched = events.iter().filter(|e| e["event"] == "switched").count();
    assert_eq!(switched, 6, "three switched forward, three back");
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(v1.as_str()), "{host} back on v1");
        assert_eq!(end["hosts"][host]["current"], v1.as_str());
        assert_eq!(project.served(host), "<?php echo 'v1';\n");
        assert!(!project.locked(host));
    }
}

/// Starts `cutover deploy` with a build step that sleeps on every host, and
/// returns once every host is building.
pub fn deploy_with_a_slow_build(project: &Project) -> std::process::Child {
    let marker = project.path().join("building");
    let hook = format!(
        "hooks:\n  build:\n    - name: slow build\n      run: touch '{}-'\"$CUTOVER_HOST\"; sleep {}\n",
        marker.display(),
        slow_build_sleep(project)
    );
    project.write_inventory(&hook);
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("cutover"))
        .current_dir(project.path())
        .env("PATH", project.path_with_bin())
        .args(["deploy", "--progress=plain"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while !HOSTS.iter().all(|h| project.path().join(format!("building-{h}")).exists()) {
        assert!(started.elapsed() < Duration::from_secs(30), "build never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// What the slow build's step sleeps: 30 s and a fraction of this project's
/// own, so its processes can be told from other tests'.
pub fn slow_build_sleep(project: &Project) -> String {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(project.path());
    format!("30.{:06}", hash % 1_000_000)
}

/// Whether a process runs whose command line is exactly `sleep <seconds>`.
pub fn sleeping(seconds: &str) -> bool {
    let out = std::process::Command::new("ps").args(["-eo", "args"]).output().expect("ps");
    String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == format!("sleep {seconds}"))
}

#[test]
fn ctrl_c_during_the_build_removes_the_release_and_every_lock() {
    let project = Project::new("");
    let mut child = deploy_with_a_slow_build(&project);
    let step = slow_build_sleep(&project);
    assert!(sleeping(&step), "the step runs");
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(kill.success());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1));
    assert!(!sleeping(&step), "the step's processes ended before cutover exited");
    for host in HOSTS {
        assert!(project.releases(host).is_empty(), "{host}: {:?}", project.releases(host));
        assert!(!project.locked(host), "{host}: lock released");
        assert_eq!(project.current(host), None);
    }
}

#[test]
fn a_missing_shared_file_fails_preflight_before_anything_is_created_unless_asked_to_create_it() {
    let project = Project::new("");
    let inventory = std::fs::read_to_string(project.path().join("cutover.yaml")).expect("inventory");
    project.write("cutover.yaml", &inventory.replace("  dirs: [storage]", "  dirs: [storage]\n  files: [.env]"));
    let out = project.cutover(&["deploy"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    for host in HOSTS {
        let path = project.deploy_path(host).join("shared/.env");
        let expected = format!("{host}: preflight: shared file {} is missing", path.display());
        assert!(said.contains(&expected), "names the host and the absolute path: {said}");
        assert!(!project.deploy_path(host).exists(), "{host}: nothing created");
    }
    assert!(said.contains("shared.create_missing: true"), "says how to have it created: {said}");

    // Asked to, the first deploy creates it empty, says so, and links it.
    let inventory = std::fs::read_to_string(project.path().join("cutover.yaml")).expect("inventory");
    project.write("cutover.yaml", &inventory.replace("  files: [.env]", "  files: [.env]\n  create_missing: true"));
    let out = project.cutover(&["deploy"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("shared/.env is missing: it is created empty"), "{}", stderr(&out));
    for host in HOSTS {
        let shared = project.deploy_path(host).join("shared/.env");
        assert_eq!(std::fs::read_to_string(&shared).expect("created"), "", "{host}: empty");
        let linked = project.deploy_path(host).join("current/.env");
        assert_eq!(std::fs::read_link(&linked).expect("linked"), shared, "{host}: linked into the release");
    }
    // A file that exists is left as it is.
    std::fs::write(project.deploy_path("web1").join("shared/.env"), "APP_KEY=x\n").expect("fill in");
    project.write("app/public/index.php", "<?php echo 'v2';\n");
    let out = project.cutover(&["deploy"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let kept = std::fs::read_to_string(project.deploy_path("web1").join("current/.env")).expect("read");
    assert_eq!(kept, "APP_KEY=x\n");
}

#[test]
fn a_step_past_its_own_timeout_fails_the_build_and_names_the_step() {
    let project = Project::new("hooks:\n  build:\n    - name: hang\n      run: sleep 30\n      timeout: 1\n");
    let started = Instant::now();
    let out = project.cutover(&["deploy"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("build (step `hang`): timed out after 1s"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(25), "the step was stopped, not waited for");
    for host in HOSTS {
        assert!(project.releases(host).is_empty() && !project.locked(host), "{host}");
    }
}

#[test]
fn a_host_whose_fpm_config_test_fails_stops_the_deploy_before_any_switch() {
    let project = Project::new("");
    let (_, events) = project.cutover_json(&["deploy"]);
    let v1 = summary(&events)["release"].as_str().expect("release").to_owned();
    let inventory = std::fs::read_to_string(project.path().join("cutover.yaml")).expect("inventory");
    project.write("cutover.yaml", &inventory.replace("config_test: none", "config_test: test ! -e bad-fpm-config"));
    project.write("hosts/web2/bad-fpm-config", "");
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(1), "{events:?}");
    assert!(summary(&events)["hosts"]["web2"]["error"].is_string());
    assert!(!events.iter().any(|e| e["event"] == "switched"), "no host switched");
    for host in HOSTS {
        assert_eq!(project.current(host).as_deref(), Some(v1.as_str()), "{host}");
        assert!(!project.locked(host));
    }
}

/// A step that prints 30 lines and fails: the screen shows the last lines
/// of its output, the run's log keeps all of it, and the failure names
/// the log (in the summary for people, as `log` in `--json`).
#[test]
fn a_failure_names_the_log_that_keeps_the_whole_output() {
    let project = Project::new(
        "hooks:\n  build:\n    - name: chatty\n      run: 'for i in $(seq 1 30); do echo \"line $i\"; done; exit 2'\n",
    );
    let out = project.cutover(&["deploy"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("| line 30") && !err.contains("| line 1\n"), "the screen shows the tail: {err}");
    let said = crate::harness::stdout(&out);
    let path = said
        .lines()
        .find_map(|l| l.strip_prefix("the whole output of every host: "))
        .unwrap_or_else(|| panic!("names the log: {said}"));
    assert!(path.starts_with(&project.path().join(".cutover/logs").display().to_string()), "{path}");
    let log = std::fs::read_to_string(path).expect("the log exists");
    for host in HOSTS {
        for i in [1, 30] {
            assert!(log.contains(&format!("{host} stdout | line {i}\n")), "{host} line {i} in the log:\n{log}");
        }
    }
    assert!(log.contains("summary: {"), "{log}");

    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(1));
    let log = summary(&events)["log"].as_str().expect("the summary names the log").to_owned();
    assert!(std::fs::read_to_string(&log).expect("log").contains("line 30"));
    assert!(!events.iter().any(|e| e["event"] == "output"), "the whole output stays out of --json");
}
