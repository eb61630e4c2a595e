//! A failure says what failed: the step (a recipe step, or cutover's own
//! part such as the config test), the exit code and what it means, and
//! what that step printed, both streams in order. Each failing deploy
//! leaves every host as it was. The hosts have nothing set under `php_fpm`
//! but for the config test of the last story.

use std::time::Instant;

use serde_json::Value;

use crate::harness::{Fleet, GIT_DELIVERY, docker_available, failure_of, summary};

/// A step that runs a command no host has.
const MISSING_COMMAND: &str = "hooks:
  build:
    - name: warm cache
      run: no-such-command --flag
";

/// A step that prints its reason on stdout and fails, after one that
/// printed on stderr and passed.
const REASON_ON_STDOUT: &str = "hooks:
  build:
    - name: noisy
      run: echo 'an earlier step wrote this' >&2
    - name: check env
      run: 'echo \"APP_KEY is not set\"; echo \"see .env.example\" >&2; exit 3'
";

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_names_its_step_its_exit_code_and_what_the_step_printed() {
    let name = "a_failure_names_its_step_its_exit_code_and_what_the_step_printed";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, v1) = Fleet::start_on_v1(2).await;
    let before = fleet.states();

    // A command that is not found: exit 127, said as such, never as a lost
    // connection.
    fleet.write_stock_inventory(&format!("{GIT_DELIVERY}{MISSING_COMMAND}"));
    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "failed before the switch:\n{text}");
    let error = summary(&events)["hosts"]["web1"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("step `warm cache`"), "names the step: {error}");
    assert!(error.contains("exit code 127 (command not found)"), "says what 127 means: {error}");
    assert!(!text.contains("connection lost"), "not a lost connection:\n{text}");
    let (_, tail) = failure_of(&events, "web1");
    assert!(tail.contains("no-such-command") && tail.contains("not found"), "the shell's own words: {tail}");
    assert_eq!(fleet.states(), before, "no host switched, no release left");
    fleet.assert_clean();

    // The failing step's own output, stdout and stderr in order; not what
    // an earlier step printed.
    fleet.write_stock_inventory(&format!("{GIT_DELIVERY}{REASON_ON_STDOUT}"));
    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "{text}");
    let (error, tail) = failure_of(&events, "web2");
    assert!(error.contains("exit code 3"), "{error}");
    assert_eq!(tail, "APP_KEY is not set\nsee .env.example", "the step's own output, in order");
    let step = events.iter().find(|e| e["event"] == "host" && e["host"] == "web2" && e["state"] == "failed");
    assert_eq!(step.map(|e| &e["step"]), Some(&Value::from("check env")), "{events:#?}");
    assert_eq!(fleet.states(), before);
    fleet.assert_clean();

    // A failing PHP-FPM config test (run as the deploy user, which cannot
    // open FPM's error log) is the config test's failure, before any switch,
    // not the last build step's.
    let config_test = "config_test: /usr/sbin/php-fpm8.2 -t\n";
    fleet.write_inventory_edited(GIT_DELIVERY, &[("config_test: none\n", config_test)]);
    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "{text}");
    let error = summary(&events)["hosts"]["web1"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("step `config test`"), "names the config test: {error}");
    let (_, tail) = failure_of(&events, "web1");
    assert!(tail.contains("failed to open error_log"), "FPM's own words: {tail}");
    assert!(!events.iter().any(|e| e["event"] == "switched"), "no host switched");
    assert_eq!(fleet.states(), before);
    fleet.assert_serving("v1", &v1);
    fleet.assert_clean();
    eprintln!("{name}: {:.1?}", started.elapsed());
}
