//! `cutover check`: every host's readiness for a deploy, changing nothing.

use crate::harness::{Project, stdout};

#[test]
fn check_says_which_host_is_not_ready_and_why_and_changes_nothing() {
    let project = Project::new("");
    let inventory = std::fs::read_to_string(project.path().join("cutover.yaml")).expect("inventory");
    project.write(
        "cutover.yaml",
        &inventory.replace("shared:\n  dirs: [storage]\n", "shared:\n  dirs: [storage]\n  files: [.env]\n"),
    );
    let out = project.cutover(&["check"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("3 of 3 host(s) not ready") && text.contains("shared/.env is missing"), "{text}");
    assert!(!project.path().join("hosts").exists(), "nothing was created");

    for host in ["web1", "web2", "web3"] {
        project.write(&format!("hosts/{host}/srv/shop/shared/.env"), "APP_KEY=x\n");
    }
    project.write("hosts/web2/srv/shop/.cutover/lock/owner", "{\"user\":\"ana\",\"machine\":\"laptop\"}");
    let (code, events) = project.cutover_json(&["check"]);
    assert_eq!(code, Some(1));
    let summary = events.last().expect("summary");
    assert_eq!(summary["hosts"]["web1"]["state"], "ready", "{summary}");
    assert_eq!(summary["hosts"]["web2"]["state"], "not ready", "{summary}");
    assert!(summary["hosts"]["web2"]["error"].as_str().is_some_and(|e| e.contains("ana")), "{summary}");

    std::fs::remove_dir_all(project.path().join("hosts/web2/srv/shop/.cutover")).expect("unlock");
    let out = project.cutover(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("all 3 host(s) are ready for a deploy"));
}
