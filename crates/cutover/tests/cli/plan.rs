//! `cutover plan`: every command for every host, before anything runs.

use crate::harness::{HOSTS, Project, stdout};

#[test]
fn plan_prints_every_phase_and_touches_nothing() {
    let project = Project::new(
        "hooks:\n  before_flip:\n    - name: migrate\n      run: php artisan migrate --force\n      once: true\n",
    );
    let out = project.cutover(&["plan"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for host in HOSTS {
        assert!(!project.deploy_path(host).exists(), "{host}: plan touched nothing");
    }
    assert!(!project.path().join("hosts").exists(), "plan made no host directory");
    project.cutover(&["status"]);
    assert!(!project.path().join("hosts").exists(), "status made no host directory");
    let root = project.path().display().to_string();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&root), "[PROJECT]");
    settings.add_filter(r"\b20\d{12}\b", "[RELEASE]");
    settings.add_filter(r"upload-[0-9a-f]{16}", "[REVISION]");
    settings.add_filter(r#"owner='\{[^']*\}'"#, "owner='[OWNER]'");
    settings.add_filter(r"line='[^']*'", "line='[LOG LINE]'");
    settings.add_filter(r"token=[0-9a-f]{32}", "token=[TOKEN]");
    settings.bind(|| insta::assert_snapshot!(text));
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_alphanumeric() || c == '/' || c == '_' || c == '-' { c.to_string() } else { format!("\\{c}") })
        .collect()
}

/// `plan --rollback --to <release>` plans going back to that release, as a
/// refused rollback suggests; a release no host has is refused.
#[test]
fn plan_of_a_rollback_to_a_named_release() {
    let project = Project::new("");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (code, events) = project.cutover_json(&["deploy"]);
        assert_eq!(code, Some(0));
        ids.push(crate::harness::summary(&events)["release"].as_str().expect("release").to_owned());
    }
    let out = project.cutover(&["plan", "--rollback", "--to", &ids[0]]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::harness::stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with(&format!("Rollback of shop: release {}\n", ids[0])), "no commit: {text}");
    let out = project.cutover(&["plan", "--rollback", "--to", "20000101000000"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = project.cutover(&["plan", "--to", &ids[0]]);
    assert_eq!(out.status.code(), Some(2), "--to needs --rollback");
}
