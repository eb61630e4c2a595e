//! Nothing left running: when cutover stops waiting for a step (Ctrl-C, the
//! step's own time limit, cutover killed), the step and every process it
//! started end on every host. One fleet serves the three stories.

use std::time::{Duration, Instant};

use crate::harness::{Fleet, GIT_DELIVERY, docker_available, summary};

/// How long a test waits for a point of a run it acts on.
const WAIT: Duration = Duration::from_secs(120);

/// A build step that sleeps ten minutes in a child and a grandchild, one of
/// them under GNU timeout (as the step's own limit runs it); `tag` tells its
/// processes apart. `limit` is the step's time limit.
fn sleeping_build(tag: u32, limit: u32) -> String {
    format!(
        "hooks:\n  build:\n    - name: sleeps\n      timeout: {limit}\n      \
         run: sh -c 'sleep 60{tag}1 & timeout 900 sleep 60{tag}2; wait'\n"
    )
}

/// The hosts on which a process of the step tagged `tag` still runs.
fn still_running(fleet: &Fleet, tag: u32) -> Vec<String> {
    (0..fleet.hosts.len())
        .filter(|i| {
            let (_, ps) = fleet.exec(*i, "ps -eo args");
            ps.lines().any(|l| l.contains(&format!("sleep 60{tag}")))
        })
        .map(|i| fleet.hosts[i].name.clone())
        .collect()
}

fn wait_until_running_everywhere(fleet: &Fleet, tag: u32) {
    let started = Instant::now();
    while still_running(fleet, tag).len() < fleet.hosts.len() {
        assert!(started.elapsed() < WAIT, "the step never ran on every host");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every host has no release but `v1`'s and no lock.
fn assert_only_v1(fleet: &Fleet, v1: &str, locked: bool) {
    for i in 0..fleet.hosts.len() {
        let host = &fleet.hosts[i].name;
        assert_eq!(fleet.current(i).as_deref(), Some(v1), "{host}: still on v1");
        assert_eq!(fleet.locked(i), locked, "{host}: lock");
        if !locked {
            assert_eq!(fleet.releases(i), [v1.to_owned()], "{host}: the release is removed");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_work_ends_when_cutover_stops_waiting_for_it() {
    let name = "remote_work_ends_when_cutover_stops_waiting_for_it";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = Fleet::start_on_v1(3).await;

    // Ctrl-C: the step's processes end before cutover exits.
    fleet.write_inventory(&format!("{GIT_DELIVERY}{}", sleeping_build(1, 900)));
    let run = fleet.live("deploy", &[]);
    wait_until_running_everywhere(&fleet, 1);
    run.signal("INT");
    let (code, events, text) = run.finish();
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(summary(&events)["outcome"], "failed", "{text}");
    assert_eq!(still_running(&fleet, 1), Vec::<String>::new(), "no process of the step is left");
    assert_only_v1(&fleet, &v1, false);

    // The step's own time limit: the same.
    fleet.write_inventory(&format!("{GIT_DELIVERY}{}", sleeping_build(2, 3)));
    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "{text}");
    let message = summary(&events)["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("sleeps") && message.contains("timed out"), "{message}");
    assert_eq!(still_running(&fleet, 2), Vec::<String>::new(), "no process of the step is left");
    assert_only_v1(&fleet, &v1, false);

    // cutover killed: its locks stay (as documented), but the step's
    // processes end once its connections are gone.
    fleet.write_inventory(&format!("{GIT_DELIVERY}{}", sleeping_build(3, 900)));
    let run = fleet.live("deploy", &[]);
    wait_until_running_everywhere(&fleet, 3);
    run.signal("KILL");
    let _ = run.finish();
    let killed = Instant::now();
    while !still_running(&fleet, 3).is_empty() {
        assert!(killed.elapsed() < Duration::from_secs(20), "left: {:?}", still_running(&fleet, 3));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_only_v1(&fleet, &v1, true);
    let (code, _, text) = fleet.run_json("unlock", &["--yes"]);
    assert_eq!(code, Some(0), "{text}");
    fleet.write_inventory(GIT_DELIVERY);
    let v2 = fleet.deploy_ok();
    fleet.assert_serving("v2", &v2);
    for i in 0..fleet.hosts.len() {
        assert_eq!(fleet.releases(i), [v1.clone(), v2.clone()], "the killed run's release is pruned");
    }
    eprintln!("{name}: {:.1?}", started.elapsed());
}
