//! A secret on a real host: the step sees it, the `.env` rendered from it
//! is the deploy user's alone, no process on the host has it on its command
//! line while the step runs, and what the step prints of it comes back
//! masked.

use std::time::{Duration, Instant};

use crate::harness::{DEPLOY_PATH, Fleet, GIT_DELIVERY, docker_available, failure_of};

const VALUE: &str = "db-pa55w0rd-do-not-show";

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_reaches_the_step_through_stdin_and_never_a_command_line() {
    let name = "a_secret_reaches_the_step_through_stdin_and_never_a_command_line";
    if !docker_available(name) {
        return;
    }
    let started = Instant::now();
    let (fleet, _v1) = Fleet::start_on_v1(1).await;
    std::fs::write(fleet.project().join("db.pass"), format!("{VALUE}\n")).expect("secret file");
    std::fs::write(fleet.project().join("env.tpl"), "APP_ENV=production\nDB_PASSWORD={{ DB_PASSWORD }}\n")
        .expect("template");
    let secrets = "secrets:\n  DB_PASSWORD: {file: db.pass}\nshared:\n  render:\n    .env: env.tpl\n";
    let step = "hooks:\n  build:\n    - name: use it\n      \
                run: 'printf %s \"$DB_PASSWORD\" > seen-secret; touch step-running; sleep 4'\n";
    fleet.write_inventory(&format!("{GIT_DELIVERY}{secrets}{step}"));

    let mut run = fleet.live("deploy", &[]);
    run.wait_for("the build", Duration::from_secs(30), |e| e["event"] == "phase_started" && e["phase"] == "build");
    fleet.wait_until(0, &format!("ls {DEPLOY_PATH}/releases/*/step-running"), Duration::from_secs(30));
    // Every process's command line on the host, while the step runs.
    let table = fleet.exec_root(0, "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done");
    assert!(table.contains("sleep 4"), "the step runs now: {table}");
    assert!(!table.contains(VALUE), "the secret is on no command line:\n{table}");
    let (code, events, said) = run.finish();
    assert_eq!(code, Some(0), "{said}");
    assert!(!said.contains(VALUE) && !serde_json::to_string(&events).expect("json").contains(VALUE));
    let seen = fleet.exec_ok(0, &format!("cat {DEPLOY_PATH}/current/seen-secret"));
    assert_eq!(seen, VALUE, "the step saw the value");
    let env = fleet.exec_ok(0, &format!("stat -c '%a %U' {DEPLOY_PATH}/current/.env; cat {DEPLOY_PATH}/current/.env"));
    assert_eq!(
        env,
        format!("600 deploy\nAPP_ENV=production\nDB_PASSWORD={VALUE}\n"),
        "rendered, the deploy user's alone"
    );

    // A step that prints it: masked in the error's output.
    let loud = "hooks:\n  build:\n    - name: loud\n      run: 'echo \"password is $DB_PASSWORD\"; exit 1'\n";
    fleet.write_inventory(&format!("{GIT_DELIVERY}{secrets}{loud}"));
    fleet.git().commit_version("v3");
    let (code, events, said) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(1), "{said}");
    let (_, tail) = failure_of(&events, "web1");
    assert_eq!(tail, "password is ********");
    assert!(!said.contains(VALUE), "{said}");
    eprintln!("{name}: {:.1?}", started.elapsed());
}
