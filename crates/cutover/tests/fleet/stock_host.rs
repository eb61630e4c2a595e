//! A stock Debian host with nothing set under `php_fpm`: cutover finds the
//! PHP-FPM service that runs there, tests its configuration and reloads it
//! through the one sudo rule docs/ssh.md gives, as a non-root deploy user.
//! A broken pool is the config test's failure, before any switch; a host
//! whose sudo rule does not cover both commands, whose FPM is stopped, or
//! that has none, is refused in preflight (unless nothing is reloaded).

use std::time::Instant;

use crate::harness::{DEPLOY_PATH, Fleet, GIT_DELIVERY, HARNESS_PHP_FPM, docker_available, failure_of, summary, text};

/// What cutover finds on a host of the test image: php8.2-fpm, no systemd,
/// Debian's init script.
const FOUND: &str = "php8.2-fpm on web1, web2: reload `sudo -n /etc/init.d/php8.2-fpm reload`, \
                     config test `sudo -n /usr/sbin/php-fpm8.2 -t`";

/// The line of the image's /etc/sudoers.d/deploy that lets cutover run them.
const SUDO_RULE: &str =
    "  sudo rule: deploy ALL=(root) NOPASSWD: /etc/init.d/php8.2-fpm reload, /usr/sbin/php-fpm8.2 -t";

impl Fleet {
    /// How many graceful reloads PHP-FPM's own log has on host `i`.
    fn fpm_log_reloads(&self, i: usize) -> usize {
        self.exec_root(i, "cat /var/log/php8.2-fpm.log").matches("Reloading in progress").count()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_stock_hosts_the_php_fpm_found_is_tested_and_reloaded_and_a_host_without_it_is_refused() {
    let name = "on_stock_hosts_the_php_fpm_found_is_tested_and_reloaded_and_a_host_without_it_is_refused";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, _v1) = Fleet::start_on_v1(2).await;
    fleet.write_stock_inventory(GIT_DELIVERY);

    // The plan says what was found, and its scripts run it.
    let plan = fleet.run("plan", &[]);
    let said = text(&plan);
    assert!(plan.status.success(), "{said}");
    assert!(said.contains(&format!("PHP-FPM found: {FOUND}")), "{said}");
    assert!(said.contains(SUDO_RULE), "{said}");

    // A deploy tests and reloads the service found, as the deploy user.
    let reloads: Vec<usize> = (0..2).map(|i| fleet.fpm_log_reloads(i)).collect();
    let v2 = fleet.deploy_ok();
    let (_, events, _) = fleet.run_json("status", &[]);
    assert_eq!(summary(&events)["outcome"], "done");
    fleet.assert_serving("v2", &v2);
    for (i, host) in fleet.hosts.iter().enumerate() {
        fleet.wait_until(i, "test -S /run/php/php8.2-fpm.sock", std::time::Duration::from_secs(10));
        assert!(fleet.fpm_log_reloads(i) > reloads[i], "{}: PHP-FPM was reloaded", host.name);
    }

    // The summary names it too, for people and for scripts.
    fleet.git().commit_version("v3");
    let (code, events, said) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(0), "{said}");
    let fpm = &summary(&events)["hosts"]["web2"]["php_fpm"];
    assert_eq!(fpm["service"], "php8.2-fpm", "{fpm}");
    assert_eq!(fpm["reload"], "sudo -n /etc/init.d/php8.2-fpm reload", "{fpm}");
    assert_eq!(fpm["config_test"], "sudo -n /usr/sbin/php-fpm8.2 -t", "{fpm}");
    let v3 = summary(&events)["release"].as_str().expect("release").to_owned();
    fleet.assert_serving("v3", &v3);

    // A broken pool on web2: the config test's failure, before any switch.
    let before = fleet.states();
    fleet.exec_root(1, "cp /etc/php/8.2/fpm/pool.d/www.conf /root/www.conf");
    fleet.exec_root(1, "echo 'pm = sometimes' >> /etc/php/8.2/fpm/pool.d/www.conf");
    fleet.git().commit_version("v4");
    let (code, events, said) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "{said}");
    let error = summary(&events)["hosts"]["web2"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("step `config test`"), "{error}");
    let (_, tail) = failure_of(&events, "web2");
    assert!(tail.contains("invalid process manager"), "FPM's own words: {tail}");
    assert!(!events.iter().any(|e| e["event"] == "switched"), "no host switched");
    assert_eq!(fleet.states(), before);
    fleet.assert_serving("v3", &v3);
    fleet.assert_clean();
    fleet.exec_root(1, "cp /root/www.conf /etc/php/8.2/fpm/pool.d/www.conf");

    // What would stop the reload on web2 is refused in preflight, with
    // what to do, and nothing is touched anywhere: the sudo rule missing,
    // FPM stopped, no FPM at all.
    let refused_on_web2 = |expected: &[&str]| {
        let before = fleet.states();
        let (code, events, said) = fleet.run_json("deploy", &[]);
        assert_eq!(code, Some(1), "{said}");
        let error = summary(&events)["hosts"]["web2"]["error"].as_str().unwrap_or_default().to_owned();
        for text in expected {
            assert!(error.contains(text), "expected `{text}` in: {error}");
        }
        assert_eq!(summary(&events)["hosts"]["web1"]["state"], "unchanged");
        assert_eq!(fleet.states(), before, "no release directory, no lock");
        fleet.assert_clean();
    };
    fleet.exec_root(1, "cp /etc/sudoers.d/deploy /root/sudoers && sed -i '/init.d/d' /etc/sudoers.d/deploy");
    refused_on_web2(&[
        "sudo does not let deploy run `/etc/init.d/php8.2-fpm reload`",
        SUDO_RULE.trim_start_matches("  sudo rule: "),
    ]);
    fleet.exec_root(1, "cp /root/sudoers /etc/sudoers.d/deploy");

    fleet
        .exec_root(1, "p=$(cat /run/php/php-fpm.pid); kill -QUIT $p; while kill -0 $p 2>/dev/null; do sleep 0.1; done");
    refused_on_web2(&["php8.2-fpm is installed but not running: start it"]);
    fleet.exec_root(1, "php-fpm8.2 --daemonize");
    fleet.wait_until(1, "test -S /run/php/php8.2-fpm.sock", std::time::Duration::from_secs(10));

    fleet.exec_root(1, "mv /usr/sbin/php-fpm8.2 /root/");
    refused_on_web2(&["no PHP-FPM found", "php_fpm.reload: none"]);

    // Unless the inventory says nothing is reloaded.
    fleet.write_inventory_edited(GIT_DELIVERY, &[(HARNESS_PHP_FPM, "php_fpm:\n  reload: none\n")]);
    let v4 = fleet.deploy_ok();
    fleet.assert_serving("v4", &v4);
    fleet.exec_root(1, "mv /root/php-fpm8.2 /usr/sbin/");

    // A shared file that only web1 has: refused naming the absolute path
    // on web2, nothing touched; created empty when the inventory asks.
    fleet.exec_ok(
        0,
        &format!("mkdir -p {DEPLOY_PATH}/shared && printf 'APP_KEY=base64:k\\n' > {DEPLOY_PATH}/shared/.env"),
    );
    fleet.write_stock_inventory(&format!("{GIT_DELIVERY}shared:\n  files: [.env]\n"));
    let before = fleet.states();
    let (code, events, said) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "{said}");
    let error = summary(&events)["hosts"]["web2"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains(&format!("shared file {DEPLOY_PATH}/shared/.env is missing")), "{error}");
    assert!(error.contains("shared.create_missing: true"), "{error}");
    assert_eq!(summary(&events)["hosts"]["web1"]["state"], "unchanged");
    assert_eq!(fleet.states(), before);
    fleet.assert_clean();

    fleet.write_stock_inventory(&format!("{GIT_DELIVERY}shared:\n  files: [.env]\n  create_missing: true\n"));
    let (code, events, said) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(0), "{said}");
    let warned = events.iter().any(|e| {
        e["event"] == "warning"
            && e["host"] == "web2"
            && e["message"].as_str().is_some_and(|m| m.contains("created empty"))
    });
    assert!(warned, "says it creates the file on web2: {said}");
    let env = |i: usize| {
        fleet.exec_ok(i, &format!("stat -c '%U %s' {DEPLOY_PATH}/shared/.env; cat {DEPLOY_PATH}/current/.env"))
    };
    assert_eq!(env(1), "deploy 0\n", "web2's is new, empty, the deploy user's, and linked into the release");
    assert_eq!(env(0), "deploy 17\nAPP_KEY=base64:k\n", "web1's is untouched");

    // Every host ready, the repository reachable from each; nothing to say
    // about nginx or the clocks.
    let (code, events, said) = fleet.run_json("check", &[]);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(summary(&events)["hosts"]["web2"]["state"], "ready");
    let warnings = |events: &[serde_json::Value]| -> Vec<String> {
        let warning = |e: &&serde_json::Value| e["event"] == "warning";
        events.iter().filter(warning).map(|e| format!("{} {}", e["host"], e["message"])).collect()
    };
    assert!(warnings(&events).iter().all(|w| !w.contains("realpath_root") && !w.contains("clock")), "{said}");
    // web2's nginx passes $document_root, and its clock runs an hour ahead
    // (a `date` that says so first in PATH): ready, with both said.
    fleet.exec_root(
        1,
        "cp /etc/nginx/conf.d/cutover.conf /tmp/cutover.conf && \
         sed -i 's/\\$realpath_root/$document_root/g' /etc/nginx/conf.d/cutover.conf && \
         printf '#!/bin/sh\\nexec /bin/date -d \"+1 hour\" \"$@\"\\n' > /usr/local/bin/date && chmod 755 /usr/local/bin/date",
    );
    let (code, events, said) = fleet.run_json("check", &[]);
    assert_eq!(code, Some(0), "warnings, not readiness: {said}");
    let said_of_web2: Vec<String> = warnings(&events).into_iter().filter(|w| w.starts_with("\"web2\"")).collect();
    assert!(
        said_of_web2
            .iter()
            .any(|w| w.contains("/etc/nginx/conf.d/cutover.conf serves /var/www/app/current without `$realpath_root`")),
        "{said}"
    );
    // An hour, less the moment between the host reading its clock and the
    // answer arriving.
    let ahead = said_of_web2
        .iter()
        .find_map(|w| w.split("its clock is ").nth(1)?.split(" s ahead of").next()?.parse::<f64>().ok());
    assert!(ahead.is_some_and(|s| (3590.0..3610.0).contains(&s)), "{said}");
    assert!(warnings(&events).iter().all(|w| !w.starts_with("\"web1\"") || !w.contains("clock")), "{said}");
    // The image's PHP-FPM runs with validate_timestamps off: the nginx
    // warning says what that adds.
    assert!(said_of_web2.iter().any(|w| w.contains("with opcache.validate_timestamps Off here")), "{said}");
    assert!(warnings(&events).iter().all(|w| !w.contains("OPcache is off")), "{said}");
    // web2's PHP-FPM gets OPcache turned off and timestamps validated: said
    // of web2, and the difference said of the fleet.
    fleet.exec_root(
        1,
        "printf 'opcache.enable=0\\nopcache.validate_timestamps=1\\n' > /etc/php/8.2/fpm/conf.d/zz-check.ini",
    );
    let (code, events, said) = fleet.run_json("check", &[]);
    assert_eq!(code, Some(0), "warnings, not readiness: {said}");
    let warned = warnings(&events);
    assert!(warned.iter().any(|w| w.starts_with("\"web2\"") && w.contains("OPcache is off in php-fpm8.2")), "{said}");
    assert!(warned.iter().all(|w| !w.starts_with("\"web1\"") || !w.contains("OPcache")), "{said}");
    assert!(
        warned.iter().any(|w| w.starts_with("null")
            && w.contains("opcache.validate_timestamps differs between the hosts")
            && w.contains("web1 Off")
            && w.contains("web2 On")),
        "{said}"
    );
    fleet.exec_root(1, "rm /etc/php/8.2/fpm/conf.d/zz-check.ini");
    fleet.exec_root(1, "rm /usr/local/bin/date && cp /tmp/cutover.conf /etc/nginx/conf.d/cutover.conf");
    let pinned = GIT_DELIVERY.replace("branch: main", &format!("revision: {}", fleet.git().head()));
    fleet.write_inventory_edited(&pinned, &[(HARNESS_PHP_FPM, "")]);
    let (code, _, said) = fleet.run_json("check", &[]);
    assert_eq!(code, Some(0), "a commit id is not looked up as a branch: {said}");
    fleet.write_inventory_edited(&GIT_DELIVERY.replace("branch: main", "branch: nope"), &[(HARNESS_PHP_FPM, "")]);
    let (code, events, said) = fleet.run_json("check", &[]);
    assert_eq!(code, Some(1), "{said}");
    let error = summary(&events)["hosts"]["web1"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("`nope` is not in /srv/git/app.git"), "{error}");

    // An ad-hoc command in every live release, over SSH.
    let (code, events, said) =
        fleet.run_json("run", &["--", "php", "-r", "echo PHP_MAJOR_VERSION, '.', PHP_MINOR_VERSION;"]);
    assert_eq!(code, Some(0), "{said}");
    for host in &fleet.hosts {
        assert_eq!(summary(&events)["hosts"][&host.name]["output"], "8.2", "{}: {said}", host.name);
    }
    eprintln!("{name}: {:.1?}", started.elapsed());
}
