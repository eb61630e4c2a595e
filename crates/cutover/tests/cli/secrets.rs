//! Secrets: read where cutover runs, seen by the steps as environment
//! variables, and never shown: not in `plan`, not in `--json` events, not
//! in a failed step's output, not in the run's log.

use crate::harness::{HOSTS, Project, stdout};

const APP_SECRET: &str = "s3cr3t-app-key";
const DB_PASSWORD: &str = "pa55-w0rd 'quoted' $HOME";

fn project(steps: &str) -> Project {
    let project = Project::new(&format!(
        "secrets:\n  APP_SECRET: {{file: app.key}}\n  DB_PASSWORD: {{command: cat db.pass}}\n  \
         CI_TOKEN: {{env: CUTOVER_TEST_CI_TOKEN}}\n  LEGACY: {{value: inl1ne-v4lue}}\nhooks:\n  build:\n{steps}"
    ));
    project.write("app.key", &format!("{APP_SECRET}\n"));
    project.write("db.pass", DB_PASSWORD);
    project
}

const WRITE_THEM: &str =
    "    - name: write env\n      run: printf '%s|%s|%s' \"$APP_SECRET\" \"$DB_PASSWORD\" \"$CI_TOKEN\" > seen.txt\n";

/// What CI puts in the environment.
const CI: &[(&str, &str)] = &[("CUTOVER_TEST_CI_TOKEN", "ci-t0ken-from-the-environment")];

#[test]
fn steps_see_the_secrets_and_plan_names_them_without_their_values() {
    let project = project(WRITE_THEM);
    let plan = project.cutover(&["plan"]);
    let text = stdout(&plan);
    assert_eq!(plan.status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "secrets, read here at the start of the run and sent to the steps on stdin: APP_SECRET, DB_PASSWORD, CI_TOKEN, LEGACY"
        ),
        "{text}"
    );
    assert!(!text.contains(APP_SECRET) && !text.contains("pa55"), "{text}");
    let json = project.cutover(&["plan", "--json"]);
    assert!(!String::from_utf8_lossy(&json.stdout).contains("pa55"));

    let out = project.cutover_with_env(&["deploy"], CI);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    for host in HOSTS {
        let release = project.current(host).expect("deployed");
        let seen = std::fs::read_to_string(project.deploy_path(host).join("releases").join(release).join("seen.txt"))
            .expect("the step wrote them");
        assert_eq!(seen, format!("{APP_SECRET}|{DB_PASSWORD}|{}", CI[0].1), "{host}");
    }
}

#[test]
fn a_step_that_prints_a_secret_shows_it_masked_everywhere() {
    let project = project(
        "    - name: connect\n      run: 'echo \"connecting as $DB_PASSWORD\"; echo \"key $APP_SECRET $LEGACY\" >&2; exit 1'\n",
    );
    let out = project.cutover_with_env(&["deploy", "--json"], CI);
    assert_eq!(out.status.code(), Some(1));
    let events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let all = serde_json::to_string(&events).expect("json");
    assert!(!all.contains(APP_SECRET) && !all.contains("pa55") && !all.contains("inl1ne"), "{all}");
    let failed = events.iter().find(|e| e["event"] == "host" && e["state"] == "failed").expect("a failure");
    assert_eq!(failed["output_tail"], "connecting as ********\nkey ******** ********", "{failed}");
    let plain = project.cutover_with_env(&["deploy"], CI);
    let text = format!("{}{}", stdout(&plain), String::from_utf8_lossy(&plain.stderr));
    assert!(text.contains("connecting as ********") && !text.contains("pa55"), "{text}");
    let logs = std::fs::read_dir(project.path().join(".cutover/logs")).expect("run logs");
    for log in logs {
        let log = std::fs::read_to_string(log.expect("entry").path()).expect("log");
        assert!(log.contains("connecting as ********") && !log.contains("pa55") && !log.contains(APP_SECRET));
    }
}

#[test]
fn a_secret_that_cannot_be_read_stops_the_run_before_any_host_is_touched() {
    let project = project(WRITE_THEM);
    std::fs::remove_file(project.path().join("app.key")).expect("remove");
    let out = project.cutover(&["deploy"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("secret `APP_SECRET`: could not read") && err.contains("app.key"), "{err}");
    assert!(!project.path().join("hosts").exists(), "no host was touched");
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(2));
    assert_eq!((events[0]["event"].as_str(), events[0]["kind"].as_str()), (Some("error"), Some("secret")));
}

#[test]
fn a_secret_named_like_a_var_or_with_two_sources_is_refused_with_its_position() {
    let project = Project::new("vars:\n  APP_ENV: prod\nsecrets:\n  APP_ENV: {env: X}\n");
    let err = String::from_utf8_lossy(&project.cutover(&["deploy"]).stderr).into_owned();
    assert!(err.contains("secrets.APP_ENV") && err.contains("is also a var"), "{err}");
    let project = Project::new("secrets:\n  TOKEN: {env: X, file: t.txt}\n");
    let out = project.cutover(&["deploy"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("secrets.TOKEN") && err.contains("exactly one of"), "{err}");
}

const TEMPLATE: &str = "APP_ENV={{ APP_ENV }}\nAPP_KEY={{APP_SECRET}}\nDB_URL=\"mysql://app:${DB_PASS}@db\"\n";

/// A fleet whose `.env` is rendered from `deploy/env.tpl`; web2 sets its
/// own APP_ENV.
fn rendering(steps: &str) -> Project {
    let project =
        Project::new(&format!("vars:\n  APP_ENV: production\nsecrets:\n  APP_SECRET: {{file: app.key}}\n{steps}"));
    project.write("app.key", APP_SECRET);
    project.write("deploy/env.tpl", TEMPLATE);
    let inventory = std::fs::read_to_string(project.path().join("cutover.yaml")).expect("inventory");
    let edited = inventory
        .replace("shared:\n  dirs: [storage]\n", "shared:\n  dirs: [storage]\n  render:\n    .env: deploy/env.tpl\n")
        .replace("address: hosts/web2\n", "address: hosts/web2\n    vars: {APP_ENV: canary}\n");
    assert!(edited.contains("render:") && edited.contains("canary"), "{edited}");
    project.write("cutover.yaml", &edited);
    project
}

#[test]
fn a_file_rendered_from_a_template_is_each_releases_own_and_a_failed_deploy_leaves_the_live_one() {
    use std::os::unix::fs::PermissionsExt;
    let refuse = "  before_flip:\n    - name: refuse\n      run: test ! -e fail-build\n";
    let read_it = "  build:\n    - name: read it\n      run: grep -q APP_KEY= .env\n";
    for steps in [format!("hooks:\n{refuse}"), format!("hooks:\n{read_it}{refuse}")] {
        let project = rendering(&steps);
        let out = project.cutover(&["deploy"]);
        assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        let live_env = |host: &str| {
            let release = project.current(host).expect("deployed");
            project.deploy_path(host).join("releases").join(release).join(".env")
        };
        for (host, app_env) in [("web1", "production"), ("web2", "canary")] {
            let text = std::fs::read_to_string(live_env(host)).expect("rendered");
            assert_eq!(
                text,
                format!("APP_ENV={app_env}\nAPP_KEY={APP_SECRET}\nDB_URL=\"mysql://app:${{DB_PASS}}@db\"\n")
            );
            let meta = std::fs::symlink_metadata(live_env(host)).expect("meta");
            assert!(meta.is_file(), "{host}: a file of the release, not a link into shared/");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{host}");
        }
        // A changed template with a build that fails: the live release
        // still reads what it was deployed with.
        let before = std::fs::read_to_string(live_env("web1")).expect("rendered");
        project.write("deploy/env.tpl", &format!("{TEMPLATE}MAIL=on\n"));
        project.write("app/fail-build", "");
        let failed = project.cutover(&["deploy"]);
        assert_eq!(failed.status.code(), Some(1), "{}", stdout(&failed));
        assert_eq!(std::fs::read_to_string(live_env("web1")).expect("rendered"), before, "untouched");
        std::fs::remove_file(project.path().join("app/fail-build")).expect("remove");
        assert_eq!(project.cutover(&["deploy"]).status.code(), Some(0));
        assert!(std::fs::read_to_string(live_env("web1")).expect("rendered").ends_with("MAIL=on\n"));
    }
}

#[test]
fn a_template_naming_neither_a_var_nor_a_secret_is_refused_with_its_line() {
    let project = rendering("");
    project.write("deploy/env.tpl", "A=1\nB={{ NOPE }}\n");
    let out = project.cutover(&["deploy"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("shared.render..env") && err.contains("line 2: `NOPE` is neither a secret nor a var"),
        "{err}"
    );
    assert!(!project.path().join("hosts").exists());
}

/// A secret that happens to be part of cutover's own words (the year, in
/// every release id) is masked in what the steps print, and changes
/// nothing cutover reads.
#[test]
fn a_secret_that_matches_a_release_id_breaks_nothing() {
    let year = jiff::Zoned::now().year().to_string();
    let project = Project::new(
        "secrets:\n  PIN: {env: CUTOVER_TEST_PIN}\nhooks:\n  build:\n    - name: say\n      run: echo \"pin $PIN\"\n",
    );
    let env = [("CUTOVER_TEST_PIN", year.as_str())];
    for _ in 0..2 {
        let out = project.cutover_with_env(&["deploy"], &env);
        assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    }
    let out = project.cutover_with_env(&["rollback", "--yes"], &env);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn what_a_local_batch_hook_prints_of_a_secret_is_masked() {
    let project = Project::new(
        "secrets:\n  LB_TOKEN: {env: CUTOVER_TEST_LB_TOKEN}\nstrategy: rolling\n\
         rolling:\n  drain: {run: 'echo \"token $CUTOVER_TEST_LB_TOKEN\"; exit 1', on: local}\n",
    );
    let out = project.cutover_with_env(&["deploy", "--json"], &[("CUTOVER_TEST_LB_TOKEN", "lb-t0ken-value")]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("token ********") && !said.contains("lb-t0ken"), "{said}");
}
