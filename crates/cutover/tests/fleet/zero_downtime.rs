//! The switch as users see it: a steady stream of requests to every host
//! (two clients on a slow page, one on the front controller) while a deploy
//! and then a rollback run. Not one request may fail, every answer names one
//! of the two releases, and a request that started after its host switched
//! names the release it switched to. The control case turns PHP-FPM's
//! `process_control_timeout` off and shows the probe does catch failures.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::Value;

use crate::harness::{Fleet, Verdict, docker_available, summary, switches};

/// Two slow clients (300 ms) and one fast client per host.
const CLIENTS: [&str; 3] = ["/slow.php", "/slow.php", "/"];

/// Lets the probe run a moment before and after each run.
const SETTLE: Duration = Duration::from_millis(1500);

/// Whether a run warned that PHP-FPM's `process_control_timeout` is 0.
fn warns_of_process_control_timeout(events: &[Value]) -> bool {
    events.iter().any(|e| {
        e["event"] == "warning" && e["message"].as_str().is_some_and(|m| m.contains("process_control_timeout"))
    })
}

/// Deploys v2 and rolls back to v1 under load, with `mode` (extra flags).
async fn probe_deploy_and_rollback(name: &str, mode: &[&str]) {
    let started = Instant::now();
    let (fleet, v1) = Fleet::start_on_v1(3).await;
    // Every host has compiled both pages once, before the probe starts.
    for i in 0..fleet.hosts.len() {
        assert_eq!(fleet.http_get(i, "/slow.php?ms=0").0, 200);
    }
    let load = fleet.start_load(&CLIENTS);
    std::thread::sleep(SETTLE);

    let deploy_started = Timestamp::now();
    let (code, deploy, text) = fleet.run_json("deploy", mode);
    assert_eq!(code, Some(0), "deploy under load:\n{text}");
    let v2 = summary(&deploy)["release"].as_str().expect("release id").to_owned();
    assert!(!warns_of_process_control_timeout(&deploy), "process_control_timeout is 10s: no warning:\n{text}");
    std::thread::sleep(SETTLE);

    let mut args = vec!["--yes"];
    args.extend_from_slice(mode);
    let rollback_started = Timestamp::now();
    let (code, rollback, text) = fleet.run_json("rollback", &args);
    assert_eq!(code, Some(0), "rollback under load:\n{text}");
    std::thread::sleep(SETTLE);
    let samples = load.stop();

    let mut all = switches(&deploy, deploy_started);
    assert_eq!(all.len(), 3, "every host switched once in the deploy: {all:?}");
    assert!(all.iter().all(|s| s.to == v2), "{all:?}");
    if mode.contains(&"rolling") {
        let batches: Vec<(String, Value)> = deploy
            .iter()
            .filter(|e| e["event"] == "switched")
            .map(|e| (e["host"].as_str().unwrap_or_default().to_owned(), e["batch"].clone()))
            .collect();
        let expected: Vec<(String, Value)> = (1..=3).map(|b| (format!("web{b}"), Value::from(b))).collect();
        assert_eq!(batches, expected, "one host per batch, in order");
        assert!(all.windows(2).all(|w| w[0].at < w[1].at), "batches switch one after another: {all:?}");
    }
    let back = switches(&rollback, rollback_started);
    assert_eq!(back.len(), 3, "every host switched once in the rollback: {back:?}");
    assert!(back.iter().all(|s| s.to == v1), "{back:?}");
    all.extend(back);

    let verdict = Verdict::judge(&fleet, &samples, &[("v1", &v1), ("v2", &v2)], &v1, &all);
    eprintln!("{name}: {} requests: {}", samples.len(), verdict.describe());
    for (i, host) in fleet.hosts.iter().enumerate() {
        assert!(verdict.per_host[i] >= 20, "{}: a steady stream: {}", host.name, verdict.describe());
    }
    if !verdict.not_ok.is_empty() {
        for i in 0..fleet.hosts.len() {
            let logs = fleet.exec_root(i, "tail -n 20 /var/log/nginx/error.log /var/log/php8.2-fpm.log 2>&1 || true");
            eprintln!("{}: server logs after a failed request:\n{logs}", fleet.hosts[i].name);
        }
        eprintln!("switches: {all:?}");
    }
    assert!(verdict.not_ok.is_empty(), "no request failed: {}", verdict.describe());
    assert!(verdict.errors.is_empty(), "no connection failed: {}", verdict.describe());
    assert!(verdict.foreign.is_empty(), "every body names v1 or v2: {}", verdict.describe());
    assert!(verdict.stale.is_empty(), "each host serves the release it switched to: {}", verdict.describe());
    assert!(
        samples.iter().any(|s| matches!(&s.result, Ok((200, b)) if b.contains(&v2))),
        "the probe saw v2 served: {}",
        verdict.describe()
    );

    fleet.assert_serving("v1", &v1);
    for (i, host) in fleet.hosts.iter().enumerate() {
        assert!(fleet.releases(i).contains(&v2), "{}: v2 kept after the rollback", host.name);
    }
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_all_at_once_deploy_and_rollback_drop_no_request() {
    let name = "an_all_at_once_deploy_and_rollback_drop_no_request";
    if !docker_available(name) {
        return;
    }
    probe_deploy_and_rollback(name, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_deploy_and_rollback_drop_no_request() {
    let name = "a_rolling_deploy_and_rollback_drop_no_request";
    if !docker_available(name) {
        return;
    }
    probe_deploy_and_rollback(name, &["--mode", "rolling", "--batch", "1"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_probe_catches_requests_killed_by_a_reload_without_process_control_timeout() {
    let name = "the_probe_catches_requests_killed_by_a_reload_without_process_control_timeout";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = Fleet::start_on_v1(3).await;
    for i in 0..fleet.hosts.len() {
        fleet.exec_root(
            i,
            "sed -i 's/^process_control_timeout.*/process_control_timeout = 0/' /etc/php/8.2/fpm/php-fpm.conf && \
             grep -qx 'process_control_timeout = 0' /etc/php/8.2/fpm/php-fpm.conf && \
             /usr/local/sbin/reload-php-fpm",
        );
        assert_eq!(fleet.http_get(i, "/slow.php?ms=0").0, 200);
    }
    // Refused as it stands: the reload would kill requests in flight.
    let (code, refused, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "refused in preflight:\n{text}");
    let message = summary(&refused)["hosts"]["web1"]["error"].as_str().unwrap_or_default();
    assert!(message.contains("process_control_timeout is 0") && message.contains("allow_killing_requests"), "{text}");
    assert_eq!(fleet.releases(0), vec![v1.clone()], "nothing built");
    // Allowed explicitly, for the control.
    fleet.write_inventory_edited(
        crate::harness::GIT_DELIVERY,
        &[("  config_test: none\n", "  config_test: none\n  allow_killing_requests: true\n")],
    );
    // Slow requests of 1.5 s, two per host: some are in flight at the reload.
    let load = fleet.start_load(&["/slow.php?ms=1500", "/slow.php?ms=1500", "/"]);
    std::thread::sleep(SETTLE);
    let deploy_started = Timestamp::now();
    let (code, deploy, text) = fleet.run_json("deploy", &[]);
    std::thread::sleep(SETTLE);
    let samples = load.stop();
    assert_eq!(code, Some(0), "the deploy itself goes through:\n{text}");
    let v2 = summary(&deploy)["release"].as_str().expect("release id").to_owned();

    assert!(warns_of_process_control_timeout(&deploy), "allowed, and said:\n{text}");

    let verdict =
        Verdict::judge(&fleet, &samples, &[("v1", &v1), ("v2", &v2)], &v1, &switches(&deploy, deploy_started));
    eprintln!("{name}: {} requests: {}", samples.len(), verdict.describe());
    assert!(
        verdict.not_ok.len() + verdict.errors.len() > 0,
        "a reload without process_control_timeout kills requests in flight, and the probe sees it: {}",
        verdict.describe()
    );
    fleet.assert_serving("v2", &v2);
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}
