//! The fixture itself, without `cutover`: the hosts start, listen on
//! 127.0.0.1 only, are reachable over SSH with strict host key checking,
//! can read the mounted git repository, run composer offline, and serve PHP
//! through PHP-FPM with OPcache.

use std::time::Instant;

use crate::harness::{Fleet, docker_available};

#[tokio::test(flavor = "multi_thread")]
async fn harness_smoke() {
    if !docker_available("harness_smoke") {
        return;
    }
    let started = Instant::now();
    let fleet = Fleet::start(3).await;
    for (i, host) in fleet.hosts.iter().enumerate() {
        let ports = fleet.docker_port(i);
        assert_eq!(ports.lines().count(), 2, "{}: only 22 and 80 published: {ports}", host.name);
        for line in ports.lines() {
            assert!(line.contains("-> 127.0.0.1:"), "{}: {line}", host.name);
        }
        assert!(ports.contains(&format!("22/tcp -> 127.0.0.1:{}", host.ssh_port)));
        assert!(ports.contains(&format!("80/tcp -> 127.0.0.1:{}", host.http_port)));
        let out = fleet.ssh(i, "id -un");
        assert!(out.status.success(), "{}: strict ssh: {}", host.name, String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "deploy");
    }
    let known_hosts = std::fs::read_to_string(fleet.known_hosts()).expect("known_hosts");
    assert_eq!(known_hosts.lines().count(), 3, "{known_hosts}");
    fleet.forget_host_key(1);
    assert!(!fleet.ssh(1, "true").status.success(), "an unknown host key is refused under StrictHostKeyChecking=yes");
    assert!(fleet.ssh(0, "true").status.success());

    git_composer_and_php_work(&fleet);
    eprintln!("harness_smoke: {:.1?}", started.elapsed());
}

/// Clones the mounted repository into a release by hand, installs it with
/// composer (offline) and serves it.
fn git_composer_and_php_work(fleet: &Fleet) {
    let head = fleet.git().head();
    for i in 0..fleet.hosts.len() {
        let refs = fleet.exec_ok(i, "git ls-remote /srv/git/app.git");
        assert!(refs.contains(&format!("{head}\trefs/heads/main")), "{refs}");
        assert_eq!(fleet.http_get(i, "/").0, 404, "nothing deployed yet");
        fleet.exec_ok(
            i,
            "cd /var/www/app && mkdir releases && \
             git clone -q /srv/git/app.git releases/smoke && cd releases/smoke && \
             composer install --no-dev --no-interaction && \
             test -f vendor/autoload.php && cd /var/www/app && ln -s releases/smoke current",
        );
        assert_eq!(fleet.served(i), "v1 smoke opcache");
        assert_eq!(fleet.current(i).as_deref(), Some("smoke"));
        assert!(fleet.current_is_symlink(i));
        assert_eq!(fleet.releases(i), ["smoke"]);
        assert!(!fleet.locked(i));
        assert!(!fleet.staged(i));
        assert_eq!(fleet.reload_count(i), 0);
    }
    let v2 = fleet.git().commit_version("v2");
    let refs = fleet.exec_ok(2, "git ls-remote /srv/git/app.git main");
    assert!(refs.starts_with(&v2), "the mount is live: {refs}");
}
