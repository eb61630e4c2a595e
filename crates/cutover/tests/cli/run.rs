//! `cutover run`: the user's command in the live release of every selected
//! host, in parallel, output grouped by host, a non-zero exit when any
//! host failed.

use crate::harness::{Project, stdout};

#[test]
fn a_command_runs_in_each_live_release_with_the_hosts_vars_and_any_failure_fails_the_run() {
    let project = Project::new("vars:\n  WHO: everyone\n");
    assert_eq!(project.cutover(&["deploy"]).status.code(), Some(0));
    let inventory = std::fs::read_to_string(project.path().join("cutover.yaml")).expect("inventory");
    project.write(
        "cutover.yaml",
        &inventory.replace("address: hosts/web2\n", "address: hosts/web2\n    vars: {WHO: two}\n"),
    );

    let out = project.cutover(&["run", "--", "echo \"$WHO in $(basename $(pwd -P))\"; test \"$WHO\" != two"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let release = project.current("web1").expect("deployed");
    assert!(text.contains(&format!("== web1 (exit 0)\neveryone in {release}\n")), "{text}");
    assert!(text.contains(&format!("== web2 (exit 1)\ntwo in {release}\n")), "{text}");

    // Several words are one command's arguments: nothing is split again.
    let (code, events) = project.cutover_json(&["run", "--once", "--", "printf", "%s|", "a b", "$HOME"]);
    assert_eq!(code, Some(0));
    let summary = events.last().expect("a summary");
    let hosts = summary["hosts"].as_object().expect("hosts");
    assert_eq!(hosts.len(), 1, "--once: the primary alone: {summary}");
    let (_, host) = hosts.iter().next().expect("one host");
    assert_eq!((host["exit_code"].as_i64(), host["output"].as_str()), (Some(0), Some("a b|$HOME|")), "{summary}");
}

#[test]
fn a_host_with_no_live_release_says_so() {
    let project = Project::new("");
    let out = project.cutover(&["run", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("no release is live on this host"), "{}", stdout(&out));
    assert!(!project.deploy_path("web1").exists(), "nothing was created");
}
