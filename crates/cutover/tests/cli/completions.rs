//! Shell completions and the man page, made from the command line's
//! definition: no inventory needed.

use crate::harness::{Project, stdout};

#[test]
fn completions_load_in_bash_and_name_every_command() {
    let project = Project::new("");
    std::fs::remove_file(project.path().join("cutover.yaml")).expect("no inventory needed");
    let bash = project.cutover(&["completions", "bash"]);
    assert_eq!(bash.status.code(), Some(0));
    let script = stdout(&bash);
    for word in ["deploy", "rollback", "status", "plan", "unlock", "--revision", "--full-build", "--hosts"] {
        assert!(script.contains(word), "{word} in the bash completions");
    }
    project.write("cutover.bash", &script);
    let loaded = std::process::Command::new("bash")
        .arg("-c")
        .arg("source ./cutover.bash && complete -p cutover")
        .current_dir(project.path())
        .output()
        .expect("bash");
    assert!(String::from_utf8_lossy(&loaded.stdout).contains("-F _cutover"), "{loaded:?}");
    for shell in ["zsh", "fish"] {
        let out = project.cutover(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0));
        assert!(stdout(&out).contains("rollback"), "{shell}");
    }
    let refused = project.cutover(&["completions", "tcsh"]);
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn the_man_page_is_roff_naming_every_command() {
    let project = Project::new("");
    let out = project.cutover(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = stdout(&out);
    assert!(page.contains(".TH cutover 1"), "{page}");
    for word in ["deploy", "rollback", "status", "unlock", "completions"] {
        assert!(page.contains(word), "{word} in the man page");
    }
}
