//! `cutover releases`: every release across the fleet, its commit, when
//! and by whom it was deployed, where it is live, and where it is missing.

use crate::harness::{HOSTS, Project, stdout};

#[test]
fn releases_lists_each_release_with_who_deployed_it_where_it_is_live_and_where_it_is_missing() {
    let project = Project::new("");
    let deploy = |user: &str| {
        let out = project.cutover_with_env(&["deploy"], &[("CUTOVER_USER", user)]);
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        std::thread::sleep(std::time::Duration::from_millis(1100));
    };
    deploy("ana");
    deploy("ci-bot");
    let newest = project.current("web1").expect("deployed");
    let older = project.releases("web1").into_iter().find(|r| *r != newest).expect("two releases");
    std::fs::remove_dir_all(project.deploy_path("web2").join("releases").join(&older)).expect("remove one");

    let out = project.cutover(&["releases"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line =
        |id: &str| text.lines().find(|l| l.contains(id)).unwrap_or_else(|| panic!("{id} in:\n{text}")).to_owned();
    assert!(line(&newest).contains("ci-bot@") && line(&newest).ends_with("live"), "{text}");
    assert!(line(&older).contains("ana@") && line(&older).ends_with("not on web2"), "{text}");
    assert!(text.find(&newest) < text.find(&older), "newest first:\n{text}");

    let (code, events) = project.cutover_json(&["releases"]);
    assert_eq!(code, Some(0));
    let summary = events.last().expect("summary");
    for host in HOSTS {
        let history = summary["hosts"][host]["history"].as_array().expect("history");
        let live: Vec<&serde_json::Value> = history.iter().filter(|r| r["current"] == true).collect();
        assert_eq!(live.len(), 1, "{host}: {summary}");
        assert_eq!(live[0]["release"], newest.as_str());
        assert!(live[0]["deployed_by"].as_str().is_some_and(|by| by.starts_with("ci-bot@")), "{summary}");
    }
}
