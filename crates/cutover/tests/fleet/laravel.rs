//! A real Laravel 8 application (tests/fixtures/laravel-app) deployed with
//! the `laravel` recipe: composer offline, the framework's caches built in
//! the release, migrations against a MariaDB server in its own container,
//! queue workers on every host, and vendor/ reused only as soundly as a
//! full build.

use crate::harness::{Database, Fleet, Version, docker_available, failure_of, summary};

/// What every host serves of v1: `v1 <release> migrations=1 batches=1 legacy clock hello`.
fn v1_page(release: &str) -> String {
    format!("v1 {release} migrations=1 batches=1 legacy clock hello")
}

/// What every host serves of v2 once its migration ran (a second batch):
/// the deleted class gone, the moved and the new class and the new
/// autoload file found, the new table read.
fn v2_page(release: &str) -> String {
    format!("v2 {release} migrations=2 batches=2 tags=0 no-legacy clock shout helper hello")
}

/// Every host serves `page(release)` and `current` points at `release`.
fn assert_pages(fleet: &Fleet, release: &str, page: fn(&str) -> String) {
    for (i, host) in fleet.hosts.iter().enumerate() {
        assert_eq!(fleet.served(i), page(release), "{}", host.name);
        assert_eq!(fleet.current(i).as_deref(), Some(release), "{}", host.name);
    }
}

/// Dispatches a job on every host (`artisan app:ping` through `cutover
/// run`) and returns, per host, `<version> <release>` of the worker code
/// that processed it.
fn ping_workers(fleet: &Fleet, token: &str) -> Vec<String> {
    let out = fleet.run("run", &["--", "php", "artisan", "app:ping", token]);
    assert!(out.status.success(), "app:ping: {}", crate::harness::text(&out));
    let lines = fleet.jobs_processed(token);
    let names: Vec<String> = fleet.hosts.iter().map(|h| format!("{} ", h.name)).collect();
    for (line, name) in lines.iter().zip(&names) {
        assert!(line.starts_with(name.as_str()), "each host's worker took its own job: {lines:?}");
    }
    lines.iter().map(|l| l.split_once(' ').map_or("", |(_, rest)| rest).to_owned()).collect()
}

/// The framework's caches and composer's scripts, on host `i`, are the
/// release's own: built in its real directory, never through `current`.
fn assert_built_in_place(fleet: &Fleet, i: usize, release: &str) {
    let dir = format!("/var/www/app/releases/{release}");
    let config = fleet.exec_ok(i, &format!("cat {dir}/bootstrap/cache/config.php"));
    assert!(config.contains(&format!("{dir}/")), "{}: config cached for {dir}", fleet.hosts[i].name);
    assert!(!config.contains("/current/"), "{}: no path through current", fleet.hosts[i].name);
    fleet.exec_ok(
        i,
        &format!("test -f {dir}/bootstrap/cache/routes-v7.php && test -f {dir}/bootstrap/cache/packages.php"),
    );
}

/// Three hosts and a database, prepared for the application, with v1
/// deployed and served everywhere; v1's release id.
async fn start_on_laravel_v1() -> (Fleet, Database, String) {
    let (fleet, db) = tokio::join!(Fleet::start(3), Database::start());
    fleet.prepare_laravel(&db);
    let v1 = fleet.deploy_ok();
    assert_pages(&fleet, &v1, v1_page);
    (fleet, db, v1)
}

/// The step `host` failed in.
fn failed_step(events: &[serde_json::Value], host: &str) -> String {
    let failed = events.iter().find(|e| e["event"] == "host" && e["host"] == host && e["state"] == "failed");
    failed
        .and_then(|e| e["step"].as_str())
        .unwrap_or_else(|| panic!("{host} failed in no step: {events:#?}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn laravel_deploys_with_migrations_and_workers_reuses_vendor_soundly_and_rolls_back() {
    let name = "laravel_deploys_with_migrations_and_workers_reuses_vendor_soundly_and_rolls_back";
    if !docker_available(name) {
        return;
    }
    // 1. v1: composer installs offline, the caches are built in the
    // release, the migration ran once, before the switch.
    let (fleet, db, v1) = start_on_laravel_v1().await;
    assert_eq!(db.query("select count(*), count(distinct batch) from migrations"), "1\t1");
    for i in 0..fleet.hosts.len() {
        assert_built_in_place(&fleet, i, &v1);
    }
    assert_eq!(ping_workers(&fleet, "after-v1"), vec![format!("v1 {v1}"); 3]);

    // 2. v2 with composer.lock unchanged: a class added, one deleted, one
    // moved, an autoload file added, the path package's files changed.
    // vendor/ starts from a copy, and composer writes the new autoloader.
    fleet.git().commit_laravel(Version::V2, |_| {});
    let v2 = fleet.deploy_ok();
    assert_pages(&fleet, &v2, v2_page);
    assert_eq!(fleet.vendor_copies(), 3, "{}", fleet.newest_log());
    for (i, host) in fleet.hosts.iter().enumerate() {
        let dir = |r: &str| format!("/var/www/app/releases/{r}/vendor");
        let stand_in = fleet.exec_ok(i, &format!("cat {}/laravel/framework/debian.php", dir(&v2)));
        assert!(stand_in.contains("(v2 of the stand-in"), "{}: the path package is v2's", host.name);
        // acme/greeting was kept from the copy, a copy and not a hard link.
        let file = "acme/greeting/src/Greeting.php";
        let inodes = fleet.exec_ok(i, &format!("stat -c %i {}/{file} {}/{file}", dir(&v1), dir(&v2)));
        let inodes: Vec<&str> = inodes.lines().collect();
        assert_ne!(inodes[0], inodes[1], "{}: a copy, not a hard link", host.name);
        assert_built_in_place(&fleet, i, &v2);
    }
    assert_eq!(db.query("select count(*), count(distinct batch) from migrations"), "2\t2");

    // 3. The workers restarted after the switch: v2's code takes the jobs.
    assert_eq!(ping_workers(&fleet, "after-v2"), vec![format!("v2 {v2}"); 3]);

    // The same checks pass with nothing reused.
    let v2_full = fleet.deploy_ok_with(&["--full-build"]);
    assert_eq!(fleet.vendor_copies(), 0, "--full-build copies nothing");
    assert_pages(&fleet, &v2_full, v2_page);
    for (i, host) in fleet.hosts.iter().enumerate() {
        let (reused, full) = (format!("/var/www/app/releases/{v2}"), format!("/var/www/app/releases/{v2_full}"));
        // Byte for byte, but for the suffix of composer's autoloader class,
        // which composer keeps from an autoload.php it finds (a name only).
        let suffix = "'Composer[A-Za-z]*Init[0-9a-f]\\{32\\}'";
        let diff = format!("diff -r -x .cutover-reuse -I {suffix} {reused}/vendor {full}/vendor 2>&1");
        let (code, diff) = fleet.exec(i, &diff);
        assert_eq!((code, diff.as_str()), (0, ""), "{}: vendor/ reused is vendor/ built afresh", host.name);
    }
    assert_eq!(ping_workers(&fleet, "after-v2-full"), vec![format!("v2 {v2_full}"); 3]);

    // 4. Rollback to v1: v1 is served again (v2's migration only added a
    // table), and after_rollback restarted the workers on v1's code.
    let out = fleet.run("rollback", &["--to", &v1, "--yes"]);
    assert!(out.status.success(), "rollback: {}", crate::harness::text(&out));
    let page = |r: &str| format!("v1 {r} migrations=2 batches=2 legacy clock hello");
    assert_pages(&fleet, &v1, page);
    assert_eq!(ping_workers(&fleet, "after-rollback"), vec![format!("v1 {v1}"); 3]);
    fleet.assert_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_laravel_build_or_a_failing_migration_switches_no_host() {
    let name = "a_broken_laravel_build_or_a_failing_migration_switches_no_host";
    if !docker_available(name) {
        return;
    }
    let (fleet, db, v1) = start_on_laravel_v1().await;

    // 5. v2 with a syntax error in web2's .env (unquoted whitespace): the
    // application cannot boot there (first in composer's `package:discover`
    // script), the gate fails, no host switches, v2's migration never ran.
    fleet.git().commit_laravel(Version::V2, |_| {});
    fleet.exec_ok(1, "echo 'APP_NAME=two words' >> /var/www/app/shared/.env");
    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(failed_step(&events, "web2"), "composer install", "{text}");
    assert!(failure_of(&events, "web2").1.contains("The environment file is invalid!"), "{text}");
    assert_pages(&fleet, &v1, v1_page);
    assert_eq!(db.query("select count(*) from migrations"), "1", "no migration ran");
    assert_eq!(summary(&events)["outcome"], "failed", "{text}");
    fleet.exec_ok(1, "sed -i '/^APP_NAME=/d' /var/www/app/shared/.env");

    // 6. A migration that fails: no host switches, the run names it.
    fleet.git().commit_laravel(Version::V2, |work| {
        let failing = "<?php\n\nuse Illuminate\\Database\\Migrations\\Migration;\n\n\
                       class BreakThings extends Migration\n{\n    public function up()\n    {\n        \
                       throw new RuntimeException('this migration fails');\n    }\n}\n";
        std::fs::write(work.join("database/migrations/2026_03_01_000000_break_things.php"), failing).expect("write");
    });
    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(failed_step(&events, "web1"), "migrate", "{text}");
    let (_, output) = failure_of(&events, "web1");
    assert!(output.contains("this migration fails"), "{output}");
    assert_pages(&fleet, &v1, |r| format!("v1 {r} migrations=2 batches=2 legacy clock hello"));
    fleet.assert_clean();
}
