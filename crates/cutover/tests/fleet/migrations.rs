//! Migrations: a `once` step in `before_flip` runs on the primary host only,
//! once per deploy, after every host built; a failing one stops the deploy
//! before any host switches.

use std::time::Instant;

use crate::harness::{Fleet, GIT_DELIVERY, docker_available, summary};

/// A migration that records each release in an sqlite database in shared/.
const MIGRATE: &str = r#"hooks:
  before_flip:
    - name: migrate
      once: true
      run: |
        mkdir -p "$CUTOVER_SHARED_PATH"
        php -r '$db = new PDO("sqlite:" . getenv("CUTOVER_SHARED_PATH") . "/db.sqlite"); $db->exec("create table if not exists m (rel text)"); $db->exec("insert into m values (\"" . getenv("CUTOVER_RELEASE") . "\")");'
"#;

/// A migration that fails.
const FAILING_MIGRATION: &str = "hooks:
  before_flip:
    - name: migrate
      once: true
      run: exit 1
";

/// Where the migration keeps its database on each host.
const DB: &str = "/var/www/app/shared/db.sqlite";

#[tokio::test(flavor = "multi_thread")]
async fn a_once_migration_runs_on_the_primary_only_once_per_deploy() {
    let name = "a_once_migration_runs_on_the_primary_only_once_per_deploy";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let fleet = Fleet::start(3).await;
    fleet.write_inventory(&format!("{GIT_DELIVERY}{MIGRATE}"));
    let v1 = fleet.deploy_ok();
    fleet.git().commit_version("v2");
    let v2 = fleet.deploy_ok();
    fleet.assert_serving("v2", &v2);

    let rows = fleet.exec_ok(
        0,
        &format!(
            "php -r '$db = new PDO(\"sqlite:{DB}\"); foreach ($db->query(\"select rel from m order by rowid\") as $r) \
             echo $r[0], \"\\n\";'"
        ),
    );
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(rows, [v1.as_str(), v2.as_str()], "web1 (primary): one row per release");
    for i in 1..fleet.hosts.len() {
        let (code, _) = fleet.exec(i, &format!("test -e {DB}"));
        assert_ne!(code, 0, "{}: no database (the migration ran on the primary only)", fleet.hosts[i].name);
    }
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_migration_stops_the_deploy_before_any_switch() {
    let name = "a_failed_migration_stops_the_deploy_before_any_switch";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = Fleet::start_on_v1(3).await;
    let before = fleet.states();
    fleet.write_inventory(&format!("{GIT_DELIVERY}{FAILING_MIGRATION}"));

    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "failed before the switch:\n{text}");
    let summary = summary(&events);
    assert_eq!(summary["outcome"], "failed", "{summary}");
    let error = summary["hosts"]["web1"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("migrate"), "names the step on the primary: {summary}");
    assert!(!events.iter().any(|e| e["event"] == "switched"), "no host switched:\n{text}");
    assert_eq!(fleet.states(), before, "no host switched, no release left");
    fleet.assert_serving("v1", &v1);
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}
