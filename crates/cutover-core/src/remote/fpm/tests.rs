//! Choosing a host's PHP-FPM commands from what the probe found.

use super::*;
use crate::shell::Script;

fn php_fpm(reload: Option<&str>, config_test: Option<&str>) -> PhpFpm {
    PhpFpm { reload: reload.map(str::to_owned), config_test: config_test.map(str::to_owned), ..PhpFpm::default() }
}

fn found(lines: &str) -> FpmFound {
    let mut found = FpmFound::default();
    for line in lines.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        assert!(found.read(key, value), "{line}");
    }
    found
}

/// A Debian host run by systemd, php8.2-fpm running, the sudo rule of
/// docs/ssh.md in place.
const DEBIAN_SYSTEMD: &str = "fpm-user deploy\nfpm-systemctl /usr/bin/systemctl\n\
                              fpm-init /etc/init.d/php8.2-fpm\nfpm-binary /usr/sbin/php-fpm8.2\n\
                              fpm-running /usr/sbin/php-fpm8.2\n\
                              fpm-sudo /usr/bin/systemctl reload php8.2-fpm\n\
                              fpm-sudo /usr/sbin/php-fpm8.2 -t\n";

#[test]
fn a_debian_host_with_systemd_reloads_its_running_service_through_sudo() {
    let commands = resolve(&php_fpm(None, None), &found(DEBIAN_SYSTEMD)).expect("found");
    assert_eq!(commands.service.as_deref(), Some("php8.2-fpm"));
    assert_eq!(commands.reload.as_deref(), Some("sudo -n /usr/bin/systemctl reload php8.2-fpm"));
    assert_eq!(commands.config_test.as_deref(), Some("sudo -n /usr/sbin/php-fpm8.2 -t"));
    assert_eq!(
        commands.sudo_rule.as_deref(),
        Some("deploy ALL=(root) NOPASSWD: /usr/bin/systemctl reload php8.2-fpm, /usr/sbin/php-fpm8.2 -t")
    );
}

#[test]
fn a_sudo_rule_that_does_not_cover_both_commands_is_refused_with_the_line_to_add() {
    let without_reload = DEBIAN_SYSTEMD.replace("fpm-sudo /usr/bin/systemctl reload php8.2-fpm\n", "");
    let why = resolve(&php_fpm(None, None), &found(&without_reload)).expect_err("no rule");
    assert!(why.contains("does not let deploy run `/usr/bin/systemctl reload php8.2-fpm`"), "{why}");
    assert!(
        why.ends_with("deploy ALL=(root) NOPASSWD: /usr/bin/systemctl reload php8.2-fpm, /usr/sbin/php-fpm8.2 -t"),
        "{why}"
    );
    // A reload the inventory sets is its own business; the config test found is checked.
    let set = php_fpm(Some("sudo /usr/local/sbin/reload-php-fpm"), None);
    let without_test = DEBIAN_SYSTEMD.replace("fpm-sudo /usr/sbin/php-fpm8.2 -t\n", "");
    let why = resolve(&set, &found(&without_test)).expect_err("no rule");
    assert!(why.contains("NOPASSWD: /usr/sbin/php-fpm8.2 -t"), "{why}");
}

#[test]
fn without_systemd_the_init_script_reloads_and_root_needs_no_sudo() {
    let lines = "fpm-root\nfpm-binary /usr/sbin/php-fpm8.3\nfpm-running /usr/sbin/php-fpm8.3\n\
                 fpm-init /etc/init.d/php8.3-fpm\n";
    let commands = resolve(&php_fpm(Some("auto"), None), &found(lines)).expect("found");
    assert_eq!(commands.reload.as_deref(), Some("/etc/init.d/php8.3-fpm reload"));
    assert_eq!(commands.config_test.as_deref(), Some("/usr/sbin/php-fpm8.3 -t"));
    assert_eq!(commands.sudo_rule, None);
}

#[test]
fn a_rhel_host_has_one_unversioned_service_seen_by_its_master() {
    let lines = "fpm-root\nfpm-binary /usr/sbin/php-fpm\nfpm-master php-fpm: master process (/etc/php-fpm.conf)\n\
                 fpm-systemctl /usr/bin/systemctl\n";
    let commands = resolve(&php_fpm(None, None), &found(lines)).expect("found");
    assert_eq!(commands.service.as_deref(), Some("php-fpm"));
    assert_eq!(commands.reload.as_deref(), Some("/usr/bin/systemctl reload php-fpm"));
}

#[test]
fn of_two_versions_installed_the_one_running_is_chosen_or_the_one_named() {
    let both = "fpm-root\nfpm-binary /usr/sbin/php-fpm8.1\nfpm-binary /usr/sbin/php-fpm8.3\n\
                fpm-systemctl /usr/bin/systemctl\n";
    let one_runs = format!("{both}fpm-running /usr/sbin/php-fpm8.3\n");
    let commands = resolve(&php_fpm(None, None), &found(&one_runs)).expect("found");
    assert_eq!(commands.service.as_deref(), Some("php8.3-fpm"));

    let both_run = format!("{one_runs}fpm-running /usr/sbin/php-fpm8.1\n");
    let why = resolve(&php_fpm(None, None), &found(&both_run)).expect_err("ambiguous");
    assert!(why.contains("several PHP-FPM services run (php8.1-fpm, php8.3-fpm)"), "{why}");
    assert!(why.contains("php_fpm.version"), "{why}");
    let named = PhpFpm { version: Some("8.1".into()), ..PhpFpm::default() };
    assert_eq!(resolve(&named, &found(&both_run)).expect("named").service.as_deref(), Some("php8.1-fpm"));
    let absent = PhpFpm { version: Some("7.4".into()), ..PhpFpm::default() };
    let why = resolve(&absent, &found(&both_run)).expect_err("not there");
    assert!(why.contains("is 7.4, but this host has php8.1-fpm, php8.3-fpm"), "{why}");

    let why = resolve(&php_fpm(None, None), &found(both)).expect_err("ambiguous");
    assert!(why.contains("are installed and none runs (php8.1-fpm, php8.3-fpm)"), "{why}");
}

#[test]
fn a_service_that_is_not_running_is_refused_when_cutover_would_reload_it() {
    let stopped = DEBIAN_SYSTEMD.replace("fpm-running /usr/sbin/php-fpm8.2\n", "");
    let why = resolve(&php_fpm(None, None), &found(&stopped)).expect_err("stopped");
    assert!(why.starts_with("php8.2-fpm is installed but not running: start it"), "{why}");
    // A reload of the inventory's own: the config test is still found.
    let set = php_fpm(Some("sudo /usr/local/sbin/reload-php-fpm"), None);
    assert!(resolve(&set, &found(&stopped)).is_ok());
}

#[test]
fn a_host_without_fpm_is_refused_unless_nothing_is_reloaded() {
    let why = resolve(&php_fpm(None, None), &FpmFound::default()).expect_err("no fpm");
    assert!(why.starts_with("no PHP-FPM found") && why.contains("php_fpm.reload: none"), "{why}");
    let why = resolve(&php_fpm(None, None), &found("fpm-not-executable /usr/sbin/php-fpm8.2\n")).expect_err("no x");
    assert!(why.starts_with("/usr/sbin/php-fpm8.2 is there but not executable"), "{why}");
    let none = resolve(&php_fpm(Some("none"), None), &FpmFound::default()).expect("nothing to find");
    assert_eq!(none, FpmCommands::default(), "without a reload, a config test left to cutover guards nothing");
    assert!(!needs_detection(&php_fpm(Some("none"), None)));
}

#[test]
fn a_found_service_with_no_way_to_reload_it_is_refused() {
    let lines = "fpm-root\nfpm-binary /usr/sbin/php-fpm8.2\nfpm-running /usr/sbin/php-fpm8.2\n";
    let why = resolve(&php_fpm(None, None), &found(lines)).expect_err("no manager");
    assert!(why.contains("/etc/init.d/php8.2-fpm") && why.contains("php_fpm.reload"), "{why}");
}

#[test]
fn commands_the_inventory_sets_are_kept_and_only_the_rest_is_found() {
    let set = php_fpm(Some("sudo /usr/local/sbin/reload-php-fpm"), Some("none"));
    assert!(!needs_detection(&set));
    let commands = resolve(&set, &FpmFound::default()).expect("nothing to find");
    assert_eq!(commands.reload.as_deref(), Some("sudo /usr/local/sbin/reload-php-fpm"));
    assert_eq!((commands.config_test, commands.service), (None, None));

    let half = php_fpm(Some("sudo /usr/local/sbin/reload-php-fpm"), None);
    assert!(needs_detection(&half));
    let commands = resolve(&half, &found(DEBIAN_SYSTEMD)).expect("found");
    assert_eq!(commands.reload.as_deref(), Some("sudo /usr/local/sbin/reload-php-fpm"));
    assert_eq!(commands.config_test.as_deref(), Some("sudo -n /usr/sbin/php-fpm8.2 -t"));
}

#[test]
fn found_lines_group_hosts_and_give_the_sudo_rule() {
    let commands = resolve(&php_fpm(None, None), &found(DEBIAN_SYSTEMD)).expect("found");
    let lines = found_lines([("web1", &commands), ("web2", &commands), ("web3", &FpmCommands::default())]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("PHP-FPM found: php8.2-fpm on web1, web2: reload `sudo -n"), "{lines:?}");
    assert!(lines[1].starts_with("  sudo rule: deploy ALL=(root) NOPASSWD:"), "{lines:?}");
}

/// The detection in a real shell, with a process titled as an FPM master
/// (`exec -a`): the master is found, grep does not find itself, and every
/// line is one [`FpmFound::read`] knows.
#[test]
fn the_detection_finds_a_master_of_this_host_in_any_posix_shell() {
    let title = "php-fpm: master process (/etc/php/8.9/fpm/php-fpm.conf)";
    let mut master =
        std::process::Command::new("bash").arg("-c").arg(format!("exec -a '{title}' sleep 30")).spawn().expect("bash");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut script = Script::new();
    detect(&mut script);
    let out = std::process::Command::new("sh").arg("-c").arg(script.render()).output();
    let _ = master.kill();
    let _ = master.wait();
    let out = out.expect("sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut found = FpmFound::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        assert!(found.read(key, value), "an unknown line: {line}");
    }
    assert!(found.masters.contains(&"/etc/php/8.9/fpm/php-fpm.conf".to_owned()), "{found:?}");
    assert!(found.masters.iter().all(|m| !m.contains("[:]")), "grep never finds itself: {found:?}");
    assert!(found.user.is_some(), "{found:?}");
}
