//! Deploys that work: git and upload delivery to three real hosts, the
//! switch seen over HTTP, rollback, and pruning old releases.

use std::time::Instant;

use crate::harness::{Fleet, GIT_DELIVERY, docker_available, summary, write_app};

/// Deploys v1 then v2 from the git fixture with `inventory`; returns both
/// release ids.
fn deploy_v1_then_v2(fleet: &Fleet, inventory: &str) -> (String, String) {
    fleet.write_inventory(inventory);
    let v1 = fleet.deploy_ok();
    fleet.assert_serving("v1", &v1);
    fleet.git().commit_version("v2");
    let v2 = fleet.deploy_ok();
    assert_ne!(v1, v2, "a new release id");
    (v1, v2)
}

#[tokio::test(flavor = "multi_thread")]
async fn git_deploys_switch_every_host_to_one_release_and_reload_fpm() {
    let name = "git_deploys_switch_every_host_to_one_release_and_reload_fpm";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let fleet = Fleet::start(3).await;
    fleet.write_inventory(GIT_DELIVERY);
    let v1 = fleet.deploy_ok();
    fleet.assert_serving("v1", &v1);
    let reloads: Vec<usize> = (0..3).map(|i| fleet.reload_count(i)).collect();

    let commit = fleet.git().commit_version("v2");
    let v2 = fleet.deploy_ok();
    assert_ne!(v1, v2, "a new release id");
    fleet.assert_serving("v2", &v2);
    for (i, host) in fleet.hosts.iter().enumerate() {
        assert_eq!(fleet.revision(i), commit, "{}: REVISION", host.name);
        assert!(fleet.reload_count(i) > reloads[i], "{}: PHP-FPM was reloaded", host.name);
        assert!(fleet.releases(i).contains(&v1), "{}: v1 kept", host.name);
    }

    // Resolving from here first: the repository path exists only on the
    // hosts, so the primary resolves it after all.
    fleet.write_inventory(&GIT_DELIVERY.replace("resolve: host", "resolve: local"));
    let commit = fleet.git().commit_version("v3");
    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(0), "deployed:\n{text}");
    let fell_back = events.iter().any(|e| {
        e["event"] == "warning" && e["message"].as_str().is_some_and(|m| m.contains("resolving on the primary host"))
    });
    assert!(fell_back, "says it resolved on the primary:\n{text}");
    let v3 = summary(&events)["release"].as_str().expect("release id").to_owned();
    fleet.assert_serving("v3", &v3);
    for (i, host) in fleet.hosts.iter().enumerate() {
        assert_eq!(fleet.revision(i), commit, "{}: REVISION", host.name);
    }
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}

/// The deploys and the rollback of this story run with process
/// multiplexing (macOS's default: one `ssh -S` per command), the others with
/// native (Linux's): both modes are tested here.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_puts_every_host_back_on_the_previous_release() {
    let name = "rollback_puts_every_host_back_on_the_previous_release";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let fleet = Fleet::start(3).await;
    fleet.trace_ssh();
    let process_mux = format!("{GIT_DELIVERY}ssh:\n  multiplex: process\n");
    let (v1, v2) = deploy_v1_then_v2(&fleet, &process_mux);
    fleet.assert_serving("v2", &v2);
    // Every script went through an `ssh -S <socket>` of its own.
    let scripts = fleet.ssh_invocations().iter().filter(|l| l.contains(" sh -c ")).count();
    // At least preflight and build on each of the 3 hosts, in each of the
    // 2 deploys.
    assert!(scripts >= 3 * 2 * 2, "{scripts} scripts through ssh processes: {:?}", fleet.ssh_invocations());

    let (code, events, text) = fleet.run_json("rollback", &["--yes"]);
    assert_eq!(code, Some(0), "rollback failed:\n{text}");
    assert_eq!(summary(&events)["outcome"], "done", "{text}");
    assert!(!text.contains("multiplexing failed"), "no fallback: {text}");
    fleet.assert_serving("v1", &v1);
    assert!(fleet.ssh_invocations().iter().filter(|l| l.contains(" sh -c ")).count() > scripts, "the rollback too");

    // Native multiplexing (the flag over the inventory): the masters alone
    // start an ssh.
    let before = fleet.ssh_invocations().len();
    let (code, _, text) = fleet.run_json("status", &["--multiplex", "native"]);
    assert_eq!(code, Some(0), "{text}");
    let all = fleet.ssh_invocations();
    let started_now = &all[before..];
    assert!(!started_now.is_empty() && started_now.iter().all(|l| !l.contains(" sh -c ")), "{started_now:?}");

    // A command's exit code 255 (PHP's on a fatal error) in either mode,
    // though `ssh -S` exits 255 for its own failures too.
    for mode in ["process", "native"] {
        let (code, events, text) = fleet.run_json("run", &["--multiplex", mode, "--", "exit 255"]);
        assert_eq!(code, Some(1), "{text}");
        assert_eq!(summary(&events)["hosts"]["web1"]["exit_code"], 255, "{mode}: {text}");
    }

    let (code, events, text) = fleet.run_json("status", &[]);
    assert_eq!(code, Some(0), "status: every host on one release:\n{text}");
    let summary = summary(&events);
    for host in &fleet.hosts {
        assert_eq!(summary["hosts"][&host.name]["current"], v1, "{}: {summary}", host.name);
    }
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_delivery_serves_the_local_directory_on_every_host() {
    let name = "upload_delivery_serves_the_local_directory_on_every_host";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let fleet = Fleet::start(3).await;
    write_app(&fleet.project().join("upload"), "uploaded");
    fleet.write_inventory("source: upload\n");
    let release = fleet.deploy_ok();
    fleet.assert_serving("uploaded", &release);
    for i in 0..fleet.hosts.len() {
        fleet.exec_ok(i, "test -f /var/www/app/current/vendor/autoload.php");
    }
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_releases_prunes_all_but_the_newest_five() {
    let name = "keep_releases_prunes_all_but_the_newest_five";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let fleet = Fleet::start(3).await;
    write_app(&fleet.project().join("upload"), "kept");
    fleet.write_inventory("source: upload\nkeep_releases: 5\n");
    let ids: Vec<String> = (0..7).map(|_| fleet.deploy_ok()).collect();
    let mut newest: Vec<String> = ids[2..].to_vec();
    newest.sort();
    for (i, host) in fleet.hosts.iter().enumerate() {
        let releases = fleet.releases(i);
        assert_eq!(releases, newest, "{}: the newest five remain", host.name);
        assert!(releases.contains(&ids[6]), "{}: current kept", host.name);
        assert!(releases.contains(&ids[5]), "{}: previous kept", host.name);
        assert_eq!(fleet.current(i).as_ref(), Some(&ids[6]), "{}", host.name);
    }
    fleet.assert_serving("kept", &ids[6]);
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}
