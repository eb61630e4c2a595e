use super::*;
use crate::config::inventory::PhpFpm;
use crate::remote::fpm::FpmFound;

fn master(color: &str) -> Master {
    Master {
        socket: format!("/run/php/app-{color}.sock"),
        start: format!("fpm start {color}"),
        stop: format!("fpm stop {color}"),
        config: None,
    }
}

fn php_fpm(yaml: &str) -> PhpFpm {
    serde_saphyr::from_str(yaml).expect("php_fpm parses")
}

const BLUE_GREEN: &str = "activation: blue-green\nblue_green:\n  link: /run/php-app/live.sock\n  blue: {socket: /run/php/app-blue.sock, start: fpm start blue, stop: fpm stop blue}\n  green: {socket: /run/php/app-green.sock, start: fpm start green, stop: fpm stop green}\n";

/// What the probe found: every listed socket is there and open to the
/// deploy user.
fn found(fastcgi: bool, listens: &[&str], link: Option<&str>) -> FpmFound {
    FpmFound {
        fastcgi,
        listens: listens.iter().map(|l| (*l).to_owned()).collect(),
        sockets_ok: listens.iter().map(|l| (*l).to_owned()).collect(),
        link: link.map(str::to_owned),
        ..FpmFound::default()
    }
}

#[test]
fn reload_waits_for_readiness_only_where_it_can_ask_the_pool() {
    let fpm = php_fpm("{}");
    let sock = ["/run/php/php8.2-fpm.sock"];
    let ready = resolve(&fpm, &found(true, &sock, None), true).expect("resolves").0;
    assert!(ready.wait_ready);
    assert_eq!(ready.socket.as_deref(), Some(sock[0]));
    assert!(!resolve(&fpm, &found(false, &sock, None), true).expect("resolves").0.wait_ready, "no cgi-fcgi");
    assert!(!resolve(&fpm, &found(true, &[], None), true).expect("resolves").0.wait_ready, "no socket");
    assert!(!resolve(&fpm, &found(true, &sock, None), false).expect("resolves").0.wait_ready, "no reload");
    let two = ["/run/php/a.sock", "/run/php/b.sock"];
    assert!(!resolve(&fpm, &found(true, &two, None), true).expect("resolves").0.wait_ready, "which pool?");
    let set = php_fpm("socket: /run/php/b.sock");
    assert_eq!(resolve(&set, &found(true, &two, None), true).expect("resolves").0.socket.as_deref(), Some(two[1]));
}

#[test]
fn warm_needs_cgi_fcgi_and_one_socket() {
    let fpm = php_fpm("activation: warm");
    let missing = resolve(&fpm, &found(false, &["/run/php/x.sock"], None), false).expect_err("no cgi-fcgi");
    assert!(missing.contains("cgi-fcgi") && missing.contains("libfcgi-bin"), "{missing}");
    let two = resolve(&fpm, &found(true, &["/run/a.sock", "9000"], None), false).expect_err("two pools");
    assert!(two.contains("/run/a.sock, 9000") && two.contains("php_fpm.socket"), "{two}");
    let port = resolve(&fpm, &found(true, &["9000", "9000"], None), false).expect("one pool").0;
    assert_eq!(port.socket.as_deref(), Some("127.0.0.1:9000"));
    assert!(port.speaks_fastcgi());
}

#[test]
fn blue_green_takes_over_with_the_master_the_link_does_not_point_at() {
    let fpm = php_fpm(BLUE_GREEN);
    let colors =
        |link: Option<&str>| resolve(&fpm, &found(true, &[], link), false).expect("resolves").0.colors.expect("colors");
    let from_blue = colors(Some("/run/php/app-blue.sock"));
    assert_eq!(
        (from_blue.idle_name, from_blue.idle.clone(), from_blue.old.clone()),
        ("green", master("green"), Some(master("blue")))
    );
    let from_green = colors(Some("/run/php/app-green.sock"));
    assert_eq!((from_green.idle_name, from_green.old.clone()), ("blue", Some(master("green"))));
    // The stock pool before the first blue-green run, or no link: not
    // one of the two, so never drained.
    for link in [Some("/run/php/php8.2-fpm.sock"), None] {
        let first = colors(link);
        assert_eq!((first.idle_name, first.old.clone(), first.live.as_deref()), ("blue", None, link));
    }
    let not_link = FpmFound { link_not_link: true, ..found(true, &[], None) };
    assert!(resolve(&fpm, &not_link, false).expect_err("a file").contains("not a symbolic link"));
    assert!(resolve(&fpm, &found(false, &[], None), false).expect_err("no cgi-fcgi").contains("cgi-fcgi"));
}

/// A host directory with `current` on `a`, `b` staged, the link on blue
/// and green staged: what the flip renames.
fn staged_blue_green() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for release in ["a", "b"] {
        std::fs::create_dir_all(d.join("releases").join(release)).expect("release");
    }
    std::os::unix::fs::symlink("releases/a", d.join("current")).expect("current");
    std::os::unix::fs::symlink("releases/b", d.join("current-tmp")).expect("current-tmp");
    let link = d.join("live.sock").display().to_string();
    std::os::unix::fs::symlink("/run/php/app-blue.sock", &link).expect("link");
    std::os::unix::fs::symlink("/run/php/app-green.sock", format!("{link}.cutover-tmp")).expect("staged link");
    std::fs::create_dir_all(d.join(".cutover/lock")).expect("lock");
    std::fs::write(d.join(".cutover/lock/token"), crate::remote::lock::LockOwner::example().token).expect("token");
    (dir, link)
}

fn sh(script: &Script, stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(script.render())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sh");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin");
    child.wait_with_output().expect("sh ends")
}

fn link_of(path: &str) -> String {
    std::fs::read_link(path).expect("a link").display().to_string()
}

#[test]
fn the_flip_renames_current_and_the_socket_link_and_the_undo_puts_both_back() {
    let (dir, link) = staged_blue_green();
    let d = dir.path().display().to_string();
    let owner = crate::remote::lock::LockOwner::example();
    let out = sh(&super::super::switch::flip(&d, &owner, Some(&link)), "go\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(link_of(&format!("{d}/current")), "releases/b");
    assert_eq!(link_of(&link), "/run/php/app-green.sock", "the link moved with current");
    assert!(!std::path::Path::new(&format!("{link}.cutover-tmp")).exists());

    let colors = Colors {
        link: link.clone(),
        live: Some("/run/php/app-blue.sock".into()),
        idle_name: "green",
        idle: master("green"),
        old: Some(master("blue")),
    };
    let host = Activating { activation: Activation::BlueGreen, colors: Some(colors), ..Activating::default() };
    let mut undo = super::super::switch::undo(&d, &owner, Some("releases/a"));
    undo_link(&mut undo, &host);
    let out = sh(&undo, "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(link_of(&format!("{d}/current")), "releases/a");
    assert_eq!(link_of(&link), "/run/php/app-blue.sock", "the link is back on the old master");
}

#[test]
fn stopping_the_idle_master_never_stops_the_one_the_link_points_at() {
    let (dir, link) = staged_blue_green();
    let log = dir.path().join("stops");
    let idle = |color: &str| Master { stop: format!("echo {color} >> '{}'", log.display()), ..master(color) };
    let host = |idle_name: &'static str| Activating {
        activation: Activation::BlueGreen,
        colors: Some(Colors { link: link.clone(), live: None, idle_name, idle: idle(idle_name), old: None }),
        ..Activating::default()
    };
    // The link points at blue: green (idle) is stopped, blue never.
    assert!(sh(&stop_idle(&host("green")), "").status.success());
    assert!(sh(&stop_idle(&host("blue")), "").status.success());
    assert_eq!(std::fs::read_to_string(&log).expect("stopped"), "green\n");
    assert!(!std::path::Path::new(&format!("{link}.cutover-tmp")).exists(), "the staged link is gone");
}

#[test]
fn the_program_needs_no_shell_and_answers_in_marked_lines() {
    // It reaches the host through one quoted assignment; every answer is
    // an `@@fpm` line the shell functions read.
    assert!(PROGRAM.starts_with("<?php\n"));
    for mode in ["status", "room", "list", "warm"] {
        assert!(PROGRAM.contains(&format!("'{mode}'")), "{mode}");
    }
    for key in ["pid", "opcache", "refuse", "warmed", "wait", "stopped", "free", "full", "file"] {
        assert!(PROGRAM.contains(&format!("say('{key}'")), "{key}");
        assert!(
            FUNCTIONS.contains(&format!("\"$cutover_out\" {key}"))
                || !["wait", "stopped", "warmed", "free", "full"].contains(&key),
            "{key} is read"
        );
    }
}

#[test]
fn a_socket_the_deploy_user_may_not_open_is_said_before_anything_runs() {
    let sock = "/run/php/php8.2-fpm.sock";
    let denied = FpmFound { sockets_ok: vec![], sockets_denied: vec![sock.into()], ..found(true, &[sock], None) };
    let (reload, warnings) = resolve(&php_fpm("{}"), &denied, true).expect("a reload still runs");
    assert!(!reload.wait_ready, "no wait that could only time out");
    assert!(warnings.iter().any(|w| w.contains("may not connect to") && w.contains("listen.group")), "{warnings:?}");
    let warm = resolve(&php_fpm("activation: warm"), &denied, false).expect_err("warm cannot work");
    assert!(warm.contains("may not connect to /run/php/php8.2-fpm.sock"), "{warm}");
    let missing = FpmFound { sockets_ok: vec![], sockets_missing: vec![sock.into()], ..found(true, &[sock], None) };
    assert!(resolve(&php_fpm("activation: warm"), &missing, false).expect_err("no pool").contains("does not exist"));
    // `socket: none`: a reload without the wait, and nothing said.
    let (none, warnings) = resolve(&php_fpm("socket: none"), &found(true, &[sock], None), true).expect("resolves");
    assert!(!none.wait_ready && warnings.is_empty(), "{warnings:?}");
}

#[test]
fn the_live_master_is_the_one_the_link_resolves_to_whatever_path_names_it() {
    // `/var/run/php/app-green.sock` is green's socket through /var/run.
    let aliased = FpmFound { link_is: Some("green".into()), ..found(true, &[], Some("/var/run/php/app-green.sock")) };
    let (bg, _) = resolve(&php_fpm(BLUE_GREEN), &aliased, false).expect("resolves");
    let colors = bg.colors.expect("colors");
    assert_eq!((colors.idle_name, colors.old.map(|m| m.socket)), ("blue", Some("/run/php/app-green.sock".into())));
    // Another mode on a host a colour serves would act on a pool nginx
    // no longer uses.
    let fpm = php_fpm(&BLUE_GREEN.replace("activation: blue-green", "activation: warm"));
    let refused = resolve(&fpm, &aliased, false).expect_err("not the live pool");
    assert!(refused.contains("served by the green master") && refused.contains("blue-green"), "{refused}");
}

#[test]
fn draining_a_master_without_process_control_timeout_is_refused_unless_allowed() {
    let conf = |timeout: &str| FpmFound {
        master_timeouts: vec![("/etc/php/8.2/fpm/app-blue.conf".into(), timeout.into())],
        ..found(true, &[], Some("/run/php/app-blue.sock"))
    };
    let fpm = php_fpm(BLUE_GREEN);
    let refused = resolve(&fpm, &conf("0"), false).expect_err("kills requests");
    assert!(refused.contains("app-blue.conf has process_control_timeout 0"), "{refused}");
    let allowed = php_fpm(&format!("{BLUE_GREEN}allow_killing_requests: true\n"));
    let (_, warnings) = resolve(&allowed, &conf("0"), false).expect("allowed");
    assert!(warnings.iter().any(|w| w.contains("its drain kills")), "{warnings:?}");
    let (_, warnings) = resolve(&fpm, &conf("10s"), false).expect("safe");
    assert!(warnings.iter().all(|w| !w.contains("kills")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("php_fpm.blue_green.blue.config")), "no config set: {warnings:?}");
}

#[test]
fn a_master_command_sudo_would_not_run_is_refused_naming_it() {
    let denied = FpmFound { master_sudo_denied: vec!["green.start".into()], ..found(true, &[], None) };
    let refused = resolve(&php_fpm(BLUE_GREEN), &denied, false).expect_err("no sudo rule");
    assert!(refused.contains("`fpm start green` (php_fpm.blue_green.green.start)"), "{refused}");
}
