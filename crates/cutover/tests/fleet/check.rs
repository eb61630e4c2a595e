//! `cutover check` on real hosts, one thing broken at a time on web2:
//! each time web2 is "not ready" with what is wrong and what to do, web1
//! stays ready, the exit code is 1, and nothing on either host changes.
//! (The nginx, clock and OPcache warnings, and a repository or branch the
//! hosts cannot reach, are in `stock_host.rs`; `cgi-fcgi` and blue-green's
//! masters in `activation.rs`.)

use std::time::Instant;

use crate::harness::{DEPLOY_PATH, Fleet, GIT_DELIVERY, docker_available, summary};

/// `check`, which must find web1 ready and web2 not, for `expected`.
fn web2_not_ready(fleet: &Fleet, expected: &[&str]) {
    let before = fleet.states();
    let (code, events, said) = fleet.run_json("check", &[]);
    assert_eq!(code, Some(1), "{said}");
    let hosts = &summary(&events)["hosts"];
    assert_eq!(hosts["web1"]["state"], "ready", "{said}");
    assert_eq!(hosts["web2"]["state"], "not ready", "{said}");
    let error = hosts["web2"]["error"].as_str().unwrap_or_default();
    for text in expected {
        assert!(error.contains(text), "expected `{text}` in: {error}");
    }
    assert_eq!(fleet.states(), before, "check changed nothing");
    fleet.assert_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn check_names_what_keeps_each_host_from_a_deploy() {
    let name = "check_names_what_keeps_each_host_from_a_deploy";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, _v1) = Fleet::start_on_v1(2).await;
    // What cutover finds on a stock host: the reload, the config test and
    // the sudo rule for both.
    fleet.write_stock_inventory(GIT_DELIVERY);
    let (code, events, said) = fleet.run_json("check", &[]);
    assert_eq!(code, Some(0), "both ready to begin with: {said}");
    assert_eq!(summary(&events)["hosts"]["web2"]["state"], "ready");

    // A tool the recipe needs.
    fleet.exec_root(1, "mv /usr/bin/git /usr/bin/git.away");
    web2_not_ready(&fleet, &["`git` is not installed"]);
    fleet.exec_root(1, "mv /usr/bin/git.away /usr/bin/git");

    // The deploy path, not writable by the deploy user.
    fleet.exec_root(1, &format!("chmod 555 {DEPLOY_PATH}"));
    web2_not_ready(&fleet, &["the deploy path (or the directory that would hold it) is not writable"]);
    fleet.exec_root(1, &format!("chmod 755 {DEPLOY_PATH}"));

    // A full disk (a `df` that says 10 MiB are left comes first in PATH).
    fleet.exec_root(
        1,
        "printf '#!/bin/sh\\necho \"Filesystem 1024-blocks Used Available Capacity Mounted\"\\n\
         echo \"/dev/x 100000 89760 10240 90%% /\"\\n' > /usr/local/bin/df && chmod 755 /usr/local/bin/df",
    );
    web2_not_ready(&fleet, &["only 10 MiB of disk free"]);
    fleet.exec_root(1, "rm /usr/local/bin/df");

    // The sudo rule for the reload.
    fleet.exec_root(1, "cp /etc/sudoers.d/deploy /root/sudoers && sed -i '/init.d/d' /etc/sudoers.d/deploy");
    web2_not_ready(&fleet, &["sudo does not let deploy run `/etc/init.d/php8.2-fpm reload`", "NOPASSWD"]);
    fleet.exec_root(1, "cp /root/sudoers /etc/sudoers.d/deploy");

    // A pool the config test refuses, in FPM's own words.
    fleet.exec_root(1, "cp /etc/php/8.2/fpm/pool.d/www.conf /root/www.conf");
    fleet.exec_root(1, "echo 'pm = sometimes' >> /etc/php/8.2/fpm/pool.d/www.conf");
    web2_not_ready(
        &fleet,
        &["the PHP-FPM config test (`sudo -n /usr/sbin/php-fpm8.2 -t`) fails", "invalid process manager"],
    );
    fleet.exec_root(1, "cp /root/www.conf /etc/php/8.2/fpm/pool.d/www.conf");

    // A reload that would kill requests in flight.
    fleet.exec_root(
        1,
        "cp /etc/php/8.2/fpm/php-fpm.conf /root/php-fpm.conf && \
         sed -i 's/^process_control_timeout = 10s$/process_control_timeout = 0/' /etc/php/8.2/fpm/php-fpm.conf",
    );
    web2_not_ready(&fleet, &["process_control_timeout"]);
    fleet.exec_root(1, "cp /root/php-fpm.conf /etc/php/8.2/fpm/php-fpm.conf");

    // Another PHP minor version than the rest of the fleet (a php-fpm that
    // says so, in front of the real one).
    fleet.exec_root(
        1,
        "mv /usr/sbin/php-fpm8.2 /usr/sbin/php-fpm8.2.real && printf '#!/bin/sh\\n\
         if [ \"$1\" = -v ]; then echo \"PHP 8.1.31 (fpm-fcgi) (built: Jan 1 2026)\"; exit 0; fi\\n\
         exec /usr/sbin/php-fpm8.2.real \"$@\"\\n' > /usr/sbin/php-fpm8.2 && chmod 755 /usr/sbin/php-fpm8.2",
    );
    web2_not_ready(&fleet, &["PHP 8.1.31 here, PHP 8.2 on the rest of the fleet"]);
    fleet.exec_root(1, "mv /usr/sbin/php-fpm8.2.real /usr/sbin/php-fpm8.2");

    // Its host key unknown here.
    let known_hosts = std::fs::read_to_string(fleet.known_hosts()).expect("known_hosts");
    fleet.forget_host_key(1);
    web2_not_ready(&fleet, &["host key unknown"]);
    std::fs::write(fleet.known_hosts(), known_hosts).expect("restore known_hosts");

    // The deploy key no longer authorized.
    fleet.exec_root(1, "mv /home/deploy/.ssh/authorized_keys /root/authorized_keys");
    web2_not_ready(&fleet, &["authentication refused"]);
    fleet.exec_root(1, "mv /root/authorized_keys /home/deploy/.ssh/authorized_keys");

    // Gone.
    fleet.stop(1).await;
    let (code, events, said) = fleet.run_json("check", &[]);
    assert_eq!(code, Some(1), "{said}");
    assert_eq!(summary(&events)["hosts"]["web1"]["state"], "ready", "{said}");
    let error = summary(&events)["hosts"]["web2"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("unreachable") || error.contains("connection"), "{error}");
    eprintln!("{name}: {:.1?}", started.elapsed());
}
