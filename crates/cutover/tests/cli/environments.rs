//! Staging and production in one inventory: `cutover deploy production`
//! (or `-e production`) lays that environment over the base; a run that
//! names none, or one that is not there, is refused before any host is
//! touched; the lock owner, revisions.log and the summary name it.

use crate::harness::{Project, stderr, summary};

/// The base names no hosts; staging has web1, production web2 and web3,
/// each with its own `APP_ENV`, and production its own strategy.
const INVENTORY: &str = "application: shop\ndeploy_path: /srv/shop\nsource: app\nrecipe: php\n\
    php_fpm: {reload: none, config_test: none}\ndefaults:\n  connection: local\n\
    vars:\n  APP_ENV: base\n  REGION: eu\n\
    hooks:\n  build:\n    - name: record\n      run: printf '%s %s' \"$APP_ENV\" \"$REGION\" > env.txt && cp ../../.cutover/lock/owner owner.json\n\
    environments:\n  staging:\n    hosts:\n      - name: web1\n        address: hosts/web1\n    vars:\n      APP_ENV: staging\n\
    \x20 production:\n    strategy: rolling\n    hosts:\n      - name: web2\n        address: hosts/web2\n      - name: web3\n        address: hosts/web3\n    vars:\n      APP_ENV: production\n";

fn project(inventory: &str) -> Project {
    let project = Project::new("");
    project.write("cutover.yaml", inventory);
    project
}

#[test]
fn deploying_production_reaches_its_hosts_with_its_vars_and_names_it_everywhere() {
    let project = project(INVENTORY);
    let (code, events) = project.cutover_json(&["deploy", "production"]);
    assert_eq!(code, Some(0), "{events:?}");
    let done = summary(&events);
    assert_eq!(done["environment"], "production", "{done}");
    let release = done["release"].as_str().expect("release").to_owned();
    assert!(project.releases("web1").is_empty(), "staging's host is not touched");
    for host in ["web2", "web3"] {
        let live = project.deploy_path(host).join("current");
        assert_eq!(std::fs::read_to_string(live.join("env.txt")).expect("env"), "production eu", "{host}");
        let owner = std::fs::read_to_string(live.join("owner.json")).expect("owner");
        assert!(owner.contains(r#""environment":"production""#), "{host}: the lock owner: {owner}");
        let log = std::fs::read_to_string(project.deploy_path(host).join("revisions.log")).expect("log");
        let line = log.lines().last().expect("a line");
        assert!(line.contains(&release) && line.ends_with("\tproduction"), "{host}: {line}");
    }
    assert!(events.iter().any(|e| e["event"] == "batch_started"), "production's own strategy: rolling");

    // The same with `-e`, and the text summary names it.
    let out = project.cutover(&["-e", "staging", "deploy"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("staging: deployed release"), "{out:?}");
    let env = project.deploy_path("web1").join("current/env.txt");
    assert_eq!(std::fs::read_to_string(env).expect("env"), "staging eu");

    // `releases` reads the line with its sixth field.
    let (code, events) = project.cutover_json(&["releases", "production"]);
    assert_eq!(code, Some(0));
    assert_eq!(summary(&events)["hosts"]["web2"]["history"][0]["release"], release.as_str());
    assert!(summary(&events)["hosts"]["web2"]["history"][0]["deployed_by"].is_string());
}

#[test]
fn a_run_naming_no_environment_or_an_unknown_one_is_refused_touching_nothing() {
    let project = project(INVENTORY);
    let out = project.cutover(&["deploy"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("has environments (staging, production): name the one to use"), "{err}");
    let at = format!("cutover.yaml:{}:1", line_of(INVENTORY, "environments:"));
    assert!(err.contains(&at), "points at `environments:` ({at}): {err}");
    assert!(err.contains("cutover deploy staging"), "{err}");

    let out = project.cutover(&["deploy", "prodution"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("there is no environment `prodution`"), "{}", stderr(&out));
    assert!(stderr(&out).contains("did you mean `production`?"), "{}", stderr(&out));

    let out = project.cutover(&["-e", "staging", "deploy", "production"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("two environments named"), "{}", stderr(&out));
    assert!(!project.path().join("hosts").exists(), "no host was touched");

    let plain = Project::new("");
    let out = plain.cutover(&["deploy", "production"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("has no `environments:`"), "{}", stderr(&out));
}

#[test]
fn a_mistake_inside_an_environment_points_at_its_line() {
    let text = INVENTORY.replace("        address: hosts/web3\n", "        address: hosts/web3\n        port: 99999\n");
    let out = project(&text).cutover(&["deploy", "production"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let at = format!("cutover.yaml:{}:", line_of(&text, "port: 99999"));
    assert!(err.contains(&at), "the port's line in production ({at}): {err}");
    let project = project_with_unknown_key();
    let out = project.cutover(&["deploy", "staging"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown key `branchh`"), "{}", stderr(&out));
}

#[test]
fn an_environment_name_that_is_not_a_plain_word_is_refused() {
    let out = project(&INVENTORY.replace("  staging:\n", "  \"stag ing\":\n")).cutover(&["deploy", "production"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("environment name \"stag ing\" is not a plain word"), "{}", stderr(&out));
}

fn project_with_unknown_key() -> Project {
    project(&INVENTORY.replace("    vars:\n      APP_ENV: staging\n", "    branchh: main\n"))
}

/// The 1-based line of `text` holding `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect("in the text") + 1
}
