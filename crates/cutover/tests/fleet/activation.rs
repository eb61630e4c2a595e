//! PHP-FPM's activation at the switch, with the Laravel application (its
//! database in its own container) under a steady stream of requests, fast
//! ones and slow ones in flight: `reload` (the graceful reload, then a wait
//! until a new worker answers), `warm` (the new release compiled into the
//! live pool's OPcache first; no reload) and `blue-green` (the idle one of
//! two masters started and warmed, nginx's socket link moved with
//! `current`, the old master drained once the fleet decided). Each mode
//! deploys and rolls back all at once, then rolling: not one request fails,
//! every answer names one release, and after a host's switch only the
//! release it switched to. Then what each mode must refuse or undo.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use crate::harness::activation_php_fpm;
use crate::harness::{BLUE_GREEN_PHP_FPM, Database, Fleet, GIT_DELIVERY, HARNESS_PHP_FPM, LARAVEL, Verdict, Version};
use crate::harness::{docker_available, failure_of, summary, switches};

/// Two slow clients (300 ms, in flight at the switch) and one fast one per host.
const CLIENTS: [&str; 3] = ["/?ms=300", "/?ms=300", "/"];

/// Lets the probe run a moment before and after each run.
const SETTLE: Duration = Duration::from_millis(1500);

/// Two hosts and a database with the Laravel application's v1 deployed in
/// `mode`, and v2 committed; v1's release id.
async fn laravel_in(mode: &str) -> (Fleet, Database, String) {
    let (fleet, db) = tokio::join!(Fleet::start(2), Database::start());
    fleet.prepare_laravel(&db);
    fleet.write_inventory_edited(
        &format!("{GIT_DELIVERY}{LARAVEL}"),
        &[("recipe: php", "recipe: laravel"), (HARNESS_PHP_FPM, activation_php_fpm(mode))],
    );
    let v1 = fleet.deploy_ok();
    fleet.git().commit_laravel(Version::V2, |_| {});
    (fleet, db, v1)
}

/// The step `host` failed in, and what it said (error and output).
fn failed(events: &[Value], host: &str) -> (String, String) {
    let (error, output) = failure_of(events, host);
    let event = events.iter().find(|e| e["event"] == "host" && e["host"] == host && e["state"] == "failed");
    let step = event.and_then(|e| e["step"].as_str()).unwrap_or_default().to_owned();
    (step, format!("{error}\n{output}"))
}

/// Runs `command` with `args`; its events, once it exited 0.
fn run_ok(fleet: &Fleet, command: &str, args: &[&str]) -> Vec<Value> {
    let (code, events, text) = fleet.run_json(command, args);
    assert_eq!(code, Some(0), "{command} {args:?}:\n{text}");
    events
}

/// The colors whose master runs on host `i`, and where the link points.
fn masters(fleet: &Fleet, i: usize) -> (Vec<String>, String) {
    let running = fleet.exec_root(
        i,
        "for c in blue green; do if [ -f /run/php/app-$c.pid ] && kill -0 $(cat /run/php/app-$c.pid) 2>/dev/null; \
         then echo $c; fi; done",
    );
    let link = fleet.exec_root(i, "readlink /run/php-app/live.sock");
    (running.lines().map(str::to_owned).collect(), link.trim().to_owned())
}

/// Every host runs exactly the master of `color`, and nginx's link points at it.
fn assert_only_master(fleet: &Fleet, color: &str) {
    for (i, host) in fleet.hosts.iter().enumerate() {
        let (running, link) = masters(fleet, i);
        assert_eq!(running, vec![color.to_owned()], "{}: one master, no stray one", host.name);
        assert_eq!(link, format!("/run/php/app-{color}.sock"), "{}", host.name);
    }
}

/// What the newest run's log says each host did to activate the release:
/// the reload and the wait for a new worker, or the warm-up of the live
/// pool, or of the idle master.
fn assert_activated(fleet: &Fleet, mode: &str) {
    let log = fleet.newest_log();
    let said: Vec<&str> =
        log.lines().filter(|l| l.contains("OPcache at") || l.contains("cutover-step ready")).collect();
    eprintln!("{mode}: {said:#?}");
    if mode == "blue-green" {
        for host in &fleet.hosts {
            let drained =
                |l: &&str| l.contains(&host.name) && l.contains("drained the PHP-FPM master at /run/php/app-");
            assert_eq!(
                log.lines().filter(drained).count(),
                1,
                "{}: the old master drained, and said:\n{log}",
                host.name
            );
        }
    }
    for host in &fleet.hosts {
        let mine = |what: &str| said.iter().filter(|l| l.contains(&host.name) && l.contains(what)).count();
        match mode {
            "reload" => assert_eq!(mine("cutover-step ready"), 1, "{}: waited for readiness:\n{log}", host.name),
            "warm" => assert_eq!(mine("OPcache at /run/php/php8.2-fpm.sock: "), 1, "{}: warmed:\n{log}", host.name),
            _ => assert_eq!(mine("OPcache at /run/php/app-"), 1, "{}: the idle master warmed:\n{log}", host.name),
        }
        // `<compiled> files compiled, <cached> already cached, ...`
        let counts: Vec<usize> = said
            .iter()
            .filter(|l| l.contains(&host.name))
            .filter_map(|l| l.split(": ").nth(1))
            .flat_map(|l| l.split(", ").take(2).filter_map(|p| p.split(' ').next()?.parse().ok()))
            .collect();
        match (mode, counts.as_slice()) {
            ("reload", _) => {}
            // The release's own files compiled into the live pool; the
            // framework (Debian's, outside the release) was cached already.
            ("warm", [compiled, cached]) => assert!(*compiled > 10 && *cached > 100, "{}: {said:?}", host.name),
            // A fresh master: everything the live one had cached.
            (_, [compiled, 0]) => assert!(*compiled > 100, "{}: {said:?}", host.name),
            _ => panic!("{}: OPcache's counts: {said:?}", host.name),
        }
    }
}

/// Deploys v2, rolls back, deploys again and rolls back, all at once and
/// then rolling, under load; judges every request.
async fn switch_under_load(name: &str, mode: &str) {
    let started = std::time::Instant::now();
    let (fleet, _db, v1) = laravel_in(mode).await;
    let reloads_before: Vec<usize> = (0..2).map(|i| fleet.reload_count(i)).collect();
    for i in 0..fleet.hosts.len() {
        assert!(fleet.served(i).starts_with(&format!("v1 {v1} ")), "{}", fleet.hosts[i].name);
    }
    if mode == "blue-green" {
        assert_only_master(&fleet, "blue");
    }
    let load = fleet.start_load(&CLIENTS);
    std::thread::sleep(SETTLE);

    let mut all = Vec::new();
    let mut releases = vec![("v1", v1.clone())];
    let mut expect_color = ["green", "blue"].iter().cycle();
    for strategy in [&[][..], &["--mode", "rolling", "--batch", "1"][..]] {
        let at = Timestamp::now();
        let deploy = run_ok(&fleet, "deploy", strategy);
        let v2 = summary(&deploy)["release"].as_str().expect("release").to_owned();
        let switched = switches(&deploy, at);
        assert_eq!(switched.len(), 2, "{mode} {strategy:?}: each host switched once: {switched:?}");
        all.extend(switched);
        releases.push(("v2", v2.clone()));
        assert_activated(&fleet, mode);
        if mode == "blue-green" {
            assert_only_master(&fleet, expect_color.next().expect("a color"));
        }
        std::thread::sleep(SETTLE);

        let mut args = vec!["--yes"];
        args.extend_from_slice(strategy);
        let at = Timestamp::now();
        let rollback = run_ok(&fleet, "rollback", &args);
        let back = switches(&rollback, at);
        assert!(back.len() == 2 && back.iter().all(|s| s.to == v1), "{mode}: back to v1: {back:?}");
        all.extend(back);
        if mode == "blue-green" {
            assert_only_master(&fleet, expect_color.next().expect("a color"));
        }
        std::thread::sleep(SETTLE);
    }
    let samples = load.stop();

    let named: Vec<(&str, &str)> = releases.iter().map(|(v, r)| (*v, r.as_str())).collect();
    let verdict = Verdict::judge(&fleet, &samples, &named, &v1, &all);
    eprintln!("{name}: {} requests: {}", samples.len(), verdict.describe());
    for (i, host) in fleet.hosts.iter().enumerate() {
        assert!(verdict.per_host[i] >= 40, "{}: a steady stream: {}", host.name, verdict.describe());
    }
    assert!(verdict.across_switch.iter().all(|n| *n > 0), "requests were in flight: {}", verdict.describe());
    assert!(verdict.not_ok.is_empty(), "{mode}: no request failed: {}", verdict.describe());
    assert!(verdict.errors.is_empty(), "{mode}: no connection failed: {}", verdict.describe());
    assert!(verdict.foreign.is_empty(), "{mode}: every body names a release: {}", verdict.describe());
    assert!(verdict.stale.is_empty(), "{mode}: each host serves what it switched to: {}", verdict.describe());

    for (i, host) in fleet.hosts.iter().enumerate() {
        let reloads = fleet.reload_count(i) - reloads_before[i];
        let expected = if mode == "reload" { 4 } else { 0 };
        assert_eq!(reloads, expected, "{}: {mode} reloads {expected} times in four runs", host.name);
    }
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn laravel_under_load_switches_with_a_reload_that_waits_until_fpm_is_ready() {
    let name = "laravel_under_load_switches_with_a_reload_that_waits_until_fpm_is_ready";
    if !docker_available(name) {
        return;
    }
    switch_under_load(name, "reload").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn laravel_under_load_switches_warm_without_a_reload() {
    let name = "laravel_under_load_switches_warm_without_a_reload";
    if !docker_available(name) {
        return;
    }
    switch_under_load(name, "warm").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn laravel_under_load_switches_between_blue_and_green_masters() {
    let name = "laravel_under_load_switches_between_blue_and_green_masters";
    if !docker_available(name) {
        return;
    }
    switch_under_load(name, "blue-green").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_refuses_when_two_releases_do_not_fit_in_opcache_and_says_what_to_do() {
    let name = "warm_refuses_when_two_releases_do_not_fit_in_opcache_and_says_what_to_do";
    if !docker_available(name) {
        return;
    }
    let (fleet, _db, v1) = laravel_in("warm").await;
    // Without cgi-fcgi, check names what to install, and a deploy stops in
    // preflight.
    fleet.exec_root(1, "mv /usr/bin/cgi-fcgi /usr/bin/cgi-fcgi.away");
    let (code, events, text) = fleet.run_json("check", &[]);
    assert_eq!(code, Some(1), "web2 is not ready:\n{text}");
    let web2 = &summary(&events)["hosts"]["web2"];
    assert!(web2["error"].as_str().is_some_and(|e| e.contains("cgi-fcgi") && e.contains("libfcgi-bin")), "{text}");
    assert_eq!(summary(&events)["hosts"]["web1"]["state"], "ready", "{text}");
    fleet.exec_root(1, "mv /usr/bin/cgi-fcgi.away /usr/bin/cgi-fcgi");

    // web2's pool gets an OPcache too small for a second release.
    fleet.exec_root(
        1,
        "printf 'opcache.memory_consumption=8\\nopcache.interned_strings_buffer=1\\n' > \
         /etc/php/8.2/fpm/conf.d/98-small.ini && /usr/local/sbin/reload-php-fpm",
    );
    assert!(fleet.served(1).starts_with(&format!("v1 {v1} ")), "serves v1 with a full OPcache");
    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "refused:\n{text}");
    let (step, message) = failed(&events, "web2");
    assert_eq!(step, "opcache room", "{text}");
    assert!(message.contains("two releases do not fit") && message.contains("--activation reload"), "{message}");
    for i in 0..2 {
        assert_eq!(fleet.releases(i), vec![v1.clone()], "{}: nothing built", fleet.hosts[i].name);
    }
    fleet.assert_clean();

    // As it says: once with a reload (OPcache emptied), then warm again.
    let reloads = fleet.reload_count(1);
    let v2 = fleet.deploy_ok_with(&["--activation", "reload"]);
    assert_eq!(fleet.reload_count(1), reloads + 1, "the reload ran");
    assert!(fleet.served(1).starts_with(&format!("v2 {v2} ")));
    fleet.assert_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn blue_green_leaves_one_master_and_one_link_when_a_run_fails_before_or_after_the_switch() {
    let name = "blue_green_leaves_one_master_and_one_link_when_a_run_fails_before_or_after_the_switch";
    if !docker_available(name) {
        return;
    }
    let (fleet, _db, v1) = laravel_in("blue-green").await;
    assert_only_master(&fleet, "blue");

    // 1. web2's green master cannot start: no host switches, and web1's
    // green master, started for the run, is stopped again.
    fleet.exec_root(
        1,
        "cp /etc/php/8.2/fpm/colors/green.conf /tmp/green.conf && echo 'pm = nonsense' >> /etc/php/8.2/fpm/colors/green.conf",
    );
    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(failed(&events, "web2").0, "start green", "{text}");
    assert_only_master(&fleet, "blue");
    for i in 0..2 {
        assert!(fleet.served(i).starts_with(&format!("v1 {v1} ")));
        assert_eq!(fleet.releases(i), vec![v1.clone()]);
    }
    fleet.assert_clean();
    fleet.exec_root(1, "cp /tmp/green.conf /etc/php/8.2/fpm/colors/green.conf");

    // 2. web2 fails its health check after the switch: both hosts are put
    // back, `current` and the link, on the blue master that kept running;
    // green is stopped.
    let check = "health_check:\n  command: test ! -e /tmp/unhealthy\n  retries: 2\n  interval: 1\n";
    fleet.write_inventory_edited(
        &format!("{GIT_DELIVERY}{LARAVEL}{check}"),
        &[("recipe: php", "recipe: laravel"), (HARNESS_PHP_FPM, BLUE_GREEN_PHP_FPM)],
    );
    fleet.exec_root(1, "touch /tmp/unhealthy");
    let at = Timestamp::now();
    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(3), "rolled back:\n{text}");
    assert_eq!(switches(&events, at).len(), 4, "switched and back on both: {text}");
    assert_only_master(&fleet, "blue");
    for i in 0..2 {
        assert!(fleet.served(i).starts_with(&format!("v1 {v1} ")), "{}", fleet.hosts[i].name);
    }
    fleet.assert_clean();

    // 3. Healthy again: the deploy goes through to green, blue drained.
    fleet.exec_root(1, "rm /tmp/unhealthy");
    let v2 = fleet.deploy_ok();
    assert_only_master(&fleet, "green");
    for i in 0..2 {
        assert!(fleet.served(i).starts_with(&format!("v2 {v2} ")), "{}", fleet.hosts[i].name);
    }
    let colors = fleet.exec_root(0, "cat /var/log/php-fpm-colors.log");
    assert!(colors.contains("stop blue by=deploy"), "blue drained by the run:\n{colors}");

    // 4. A rollback whose blue master cannot start gives its lock back and
    // stops nothing that serves: green stays live, no blue left running.
    fleet.exec_root(1, "echo 'pm = nonsense' >> /etc/php/8.2/fpm/colors/blue.conf");
    let (code, events, text) = fleet.run_json("rollback", &["--yes"]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(failed(&events, "web2").0, "start blue", "{text}");
    assert_only_master(&fleet, "green");
    fleet.assert_clean();
    fleet.exec_root(
        1,
        "cp /etc/php/8.2/fpm/colors/green.conf /etc/php/8.2/fpm/colors/blue.conf && \
                       sed -i 's/green/blue/g' /etc/php/8.2/fpm/colors/blue.conf",
    );

    // 5. The link names green's socket by another path (/var/run is /run):
    // still green, so blue takes over and green is drained, never the
    // other way round.
    for i in 0..2 {
        fleet.exec_root(i, "ln -sfn /var/run/php/app-green.sock /run/php-app/live.sock");
    }
    let v3 = fleet.deploy_ok();
    assert_only_master(&fleet, "blue");
    for i in 0..2 {
        assert!(fleet.served(i).starts_with(&format!("v2 {v3} ")), "{}", fleet.hosts[i].name);
    }
    let _ = v2;

    // 6. A master whose drain would not wait for requests in flight is
    // refused before anything runs.
    fleet.exec_root(
        0,
        "sed -i 's/^process_control_timeout.*/process_control_timeout = 0/' /etc/php/8.2/fpm/colors/green.conf",
    );
    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "{text}");
    let error = summary(&events)["hosts"]["web1"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("green.conf has process_control_timeout 0"), "{text}");
    assert_eq!(fleet.releases(0).len(), fleet.releases(1).len(), "nothing built");
    assert_only_master(&fleet, "blue");

    // 7. A start command sudo would not run (a typo): check says which.
    let typo = BLUE_GREEN_PHP_FPM.replace("php-fpm-color start green", "php-fpm-colour start green");
    fleet.write_inventory_edited(
        &format!("{GIT_DELIVERY}{LARAVEL}"),
        &[("recipe: php", "recipe: laravel"), (HARNESS_PHP_FPM, typo.as_str())],
    );
    let (code, events, text) = fleet.run_json("check", &[]);
    assert_eq!(code, Some(1), "{text}");
    let error = summary(&events)["hosts"]["web2"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("php-fpm-colour start green") && error.contains("green.start"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_replaces_no_worker_is_caught_by_the_wait_for_readiness() {
    let name = "a_reload_that_replaces_no_worker_is_caught_by_the_wait_for_readiness";
    if !docker_available(name) {
        return;
    }
    // A reload command that returns at once and reloads nothing: what a
    // `systemctl reload` looks like to cutover until the new master is up,
    // forever. The wait must notice that no worker is new.
    let (fleet, v1) = Fleet::start_on_v1(1).await;
    fleet.write_inventory_edited(GIT_DELIVERY, &[("reload: sudo /usr/local/sbin/reload-php-fpm", "reload: 'true'")]);
    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(3), "switched, not ready, put back:\n{text}");
    let (step, message) = failed(&events, "web1");
    assert_eq!(step, "ready", "{text}");
    assert!(message.contains("no new worker answered within 30 s of the reload"), "{message}");
    fleet.assert_serving("v1", &v1);
    fleet.assert_clean();
}
