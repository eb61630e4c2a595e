//! Moving in from Deployer: two hosts laid out by hand as Deployer 7
//! leaves them (numbered releases, `.dep/releases_log`, a release it rolled
//! back from marked `BAD_RELEASE`, `current` absolute on one host and
//! relative on the other, `shared/`). cutover lists those releases, deploys
//! over them, rolls back into Deployer's release, never into the bad one,
//! and prunes under `keep_releases`, losing nothing it was not asked to.

use std::time::Instant;

use crate::harness::{DEPLOY_PATH, Fleet, GIT_DELIVERY, docker_available, summary};

/// Deployer's releases 1, 2 and 3 (2 rolled back from), 4 (a deploy that
/// failed while building), an unlogged `9` it never made, its log and
/// shared `.env`; `current` on 3, written absolute (`ln -s` of the release
/// path) or relative (`mv -T`).
fn lay_out_as_deployer_leaves_it(fleet: &Fleet, i: usize, absolute: bool) {
    let d = DEPLOY_PATH;
    let mut script =
        format!("set -e\nmkdir -p {d}/.dep {d}/shared\nprintf 'APP_KEY=base64:deployer\\n' > {d}/shared/.env\n");
    for (n, commit) in [(1, "1111111"), (2, "2222222"), (3, "3333333"), (9, "9999999")] {
        script.push_str(&format!(
            "mkdir -p {d}/releases/{n}/public\n\
             printf '%s\\n' '<?php' '$release = basename(realpath(__DIR__ . \"/..\"));' \
             '$opcache = function_exists(\"opcache_get_status\") && opcache_get_status() ? \"opcache\" : \"no\";' \
             'echo \"deployer-v{n} {{$release}} {{$opcache}}\\n\";' > {d}/releases/{n}/public/index.php\n\
             echo {commit} > {d}/releases/{n}/REVISION\nln -s {d}/shared/.env {d}/releases/{n}/.env\n"
        ));
    }
    for (n, at) in [(1, "2026-10-01T09:00:00+0000"), (2, "2026-10-08T09:00:00+0000"), (3, "2026-10-15T09:00:00+0000")] {
        script.push_str(&format!(
            "echo '{{\"created_at\":\"{at}\",\"release_name\":\"{n}\",\"user\":\"anton\",\"target\":\"main\"}}' >> {d}/.dep/releases_log\n"
        ));
    }
    // Release 4 failed while building: logged, no REVISION, and Deployer's
    // `release` link still points at it.
    script.push_str(&format!(
        "mkdir -p {d}/releases/4/public\nln -s releases/4 {d}/release\n\
         echo '{{\"created_at\":\"2026-10-22T09:00:00+0000\",\"release_name\":\"4\",\"user\":\"anton\"}}' >> {d}/.dep/releases_log\n"
    ));
    script.push_str(&format!("echo 4 > {d}/.dep/latest_release\ntouch {d}/releases/2/BAD_RELEASE\n"));
    let target = if absolute { format!("{d}/releases/3") } else { "releases/3".to_owned() };
    script.push_str(&format!("ln -sfn {target} {d}/current\n"));
    fleet.exec_ok(i, &script);
}

/// What Deployer kept that cutover must not touch: its log, its counter,
/// the shared file, and the directory its log does not name.
fn deployers_own(fleet: &Fleet, i: usize) -> String {
    let d = DEPLOY_PATH;
    fleet.exec_ok(
        i,
        &format!("cat {d}/.dep/releases_log {d}/.dep/latest_release {d}/shared/.env {d}/releases/9/REVISION"),
    )
}

fn releases_of(events: &[serde_json::Value], host: &str) -> Vec<String> {
    let history = summary(events)["hosts"][host]["history"].as_array().cloned().unwrap_or_default();
    history.iter().map(|r| r["release"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployer_server_is_deployed_over_rolled_back_into_and_pruned_losing_nothing() {
    let name = "a_deployer_server_is_deployed_over_rolled_back_into_and_pruned_losing_nothing";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let fleet = Fleet::start(2).await;
    lay_out_as_deployer_leaves_it(&fleet, 0, true);
    lay_out_as_deployer_leaves_it(&fleet, 1, false);
    fleet.assert_serving("deployer-v3", "3");
    let kept: Vec<String> = (0..2).map(|i| deployers_own(&fleet, i)).collect();
    fleet.write_inventory(&format!("{GIT_DELIVERY}keep_releases: 3\nshared:\n  files: [.env]\n"));

    // Listed from Deployer's log, in its order; 9 is not Deployer's release.
    let (code, events, said) = fleet.run_json("releases", &[]);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(releases_of(&events, "web1"), ["1", "2", "3", "4"], "{said}");
    let history = &summary(&events)["hosts"]["web2"]["history"];
    assert_eq!(history[0]["deployed_by"], "anton (Deployer)", "{said}");
    assert_eq!(history[0]["commit"], "1111111", "{said}");
    assert_eq!(history[1]["rolled_back"], true, "Deployer's BAD_RELEASE: {said}");
    assert_eq!(history[2]["current"], true, "{said}");

    // cutover's first deploy: its release sorts after Deployer's, the
    // oldest of Deployer's is pruned (keep 3: 2, 3 and the new one).
    let v1 = fleet.deploy_ok();
    fleet.assert_serving("v1", &v1);
    for i in 0..2 {
        let mut expected = vec![v1.clone(), "3".into(), "4".into(), "9".into()];
        expected.sort();
        assert_eq!(fleet.releases(i), expected, "{}: 1 and 2 pruned, 9 left alone", fleet.hosts[i].name);
        assert!(fleet.exec(i, &format!("test -e {DEPLOY_PATH}/releases/4/NEVER_LIVE")).0 == 0, "4 was never live");
        assert_eq!(fleet.exec_ok(i, &format!("cat {DEPLOY_PATH}/current/.env")), "APP_KEY=base64:deployer\n");
    }

    // Back into Deployer's release 3, the one the deploy replaced: not 4,
    // newer but never live.
    let (code, events, said) = fleet.run_json("rollback", &["--yes"]);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(summary(&events)["release"], "3", "{said}");
    fleet.assert_serving("deployer-v3", "3");

    // Before 3 there is only 2, which Deployer rolled back from: refused,
    // nothing touched.
    let before = fleet.states();
    let (code, events, said) = fleet.run_json("rollback", &["--yes"]);
    assert_eq!(code, Some(1), "{said}");
    let message = summary(&events)["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("no release older than 3 is on every host"), "{message}");
    assert_eq!(fleet.states(), before);

    // A second deploy of cutover's: 3 served last and stays, so nothing
    // is pruned; Deployer's files are as they were.
    fleet.git().commit_version("v2");
    let v2 = fleet.deploy_ok();
    fleet.assert_serving("v2", &v2);
    let (code, events, said) = fleet.run_json("releases", &[]);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(releases_of(&events, "web2"), ["3", "4", v1.as_str(), v2.as_str()], "{said}");
    for (i, kept) in kept.iter().enumerate() {
        assert!(fleet.releases(i).contains(&"9".to_owned()), "{}: 9 left alone", fleet.hosts[i].name);
        assert_eq!(&deployers_own(&fleet, i), kept, "{}: Deployer's files", fleet.hosts[i].name);
    }
    // And back into Deployer's release by name.
    let (code, _, said) = fleet.run_json("rollback", &["--yes", "--to", "3"]);
    assert_eq!(code, Some(0), "{said}");
    fleet.assert_serving("deployer-v3", "3");
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}
