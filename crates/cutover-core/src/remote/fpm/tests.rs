//! Choosing a host's PHP-FPM commands from what the probe found.

use super::*;

fn php_fpm(yaml_reload: Option<&str>, yaml_config_test: Option<&str>) -> PhpFpm {
    PhpFpm {
        reload: yaml_reload.map(str::to_owned),
        config_test: yaml_config_test.map(str::to_owned),
        config_file: None,
    }
}

fn found(lines: &str) -> FpmFound {
    let mut found = FpmFound::default();
    for line in lines.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        assert!(found.read(key, value), "{line}");
    }
    found
}

const DEBIAN_SYSTEMD: &str = "fpm-binary /usr/sbin/php-fpm8.2\n\
                              fpm-master php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf) \n\
                              fpm-systemctl /usr/bin/systemctl\n\
                              fpm-init /etc/init.d/php8.2-fpm\n";

#[test]
fn a_debian_host_with_systemd_reloads_its_running_service_through_sudo() {
    let commands = resolve(&php_fpm(None, None), &found(DEBIAN_SYSTEMD)).expect("found");
    assert_eq!(commands.service.as_deref(), Some("php8.2-fpm"));
    assert_eq!(commands.reload.as_deref(), Some("sudo -n /usr/bin/systemctl reload php8.2-fpm"));
    assert_eq!(commands.config_test.as_deref(), Some("sudo -n /usr/sbin/php-fpm8.2 -t"));
}

#[test]
fn without_systemd_the_init_script_reloads_and_root_needs_no_sudo() {
    let lines = "fpm-root\nfpm-binary /usr/sbin/php-fpm8.3\nfpm-init /etc/init.d/php8.3-fpm\n";
    let commands = resolve(&php_fpm(Some("auto"), None), &found(lines)).expect("found");
    assert_eq!(commands.reload.as_deref(), Some("/etc/init.d/php8.3-fpm reload"));
    assert_eq!(commands.config_test.as_deref(), Some("/usr/sbin/php-fpm8.3 -t"));
}

#[test]
fn a_rhel_host_has_one_unversioned_service() {
    let lines = "fpm-binary /usr/sbin/php-fpm\nfpm-master php-fpm: master process (/etc/php-fpm.conf)\n\
                 fpm-systemctl /usr/bin/systemctl\n";
    let commands = resolve(&php_fpm(None, None), &found(lines)).expect("found");
    assert_eq!(commands.service.as_deref(), Some("php-fpm"));
    assert_eq!(commands.reload.as_deref(), Some("sudo -n /usr/bin/systemctl reload php-fpm"));
    assert_eq!(commands.config_test.as_deref(), Some("sudo -n /usr/sbin/php-fpm -t"));
}

#[test]
fn of_two_versions_installed_the_one_running_is_chosen() {
    let lines = "fpm-binary /usr/sbin/php-fpm8.1\nfpm-binary /usr/sbin/php-fpm8.3\n\
                 fpm-master php-fpm: master process (/etc/php/8.3/fpm/php-fpm.conf)\n\
                 fpm-master php-fpm: master process (/usr/local/etc/php-fpm.conf)\n\
                 fpm-systemctl /usr/bin/systemctl\n";
    let commands = resolve(&php_fpm(None, None), &found(lines)).expect("found");
    assert_eq!(commands.service.as_deref(), Some("php8.3-fpm"), "a master in a container is no service of the host");
}

#[test]
fn two_versions_and_no_telling_which_is_refused_naming_both() {
    let installed =
        "fpm-binary /usr/sbin/php-fpm8.1\nfpm-binary /usr/sbin/php-fpm8.2\nfpm-systemctl /usr/bin/systemctl\n";
    let why = resolve(&php_fpm(None, None), &found(installed)).expect_err("ambiguous");
    assert!(why.contains("php8.1-fpm, php8.2-fpm") && why.contains("none runs"), "{why}");
    let both_run = format!(
        "{installed}fpm-master php-fpm: master process (/etc/php/8.1/fpm/php-fpm.conf)\n\
         fpm-master php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)\n"
    );
    let why = resolve(&php_fpm(None, None), &found(&both_run)).expect_err("ambiguous");
    assert!(why.contains("several PHP-FPM services run") && why.contains("php_fpm.reload"), "{why}");
}

#[test]
fn a_host_without_fpm_is_refused_unless_nothing_is_reloaded() {
    let why = resolve(&php_fpm(None, None), &FpmFound::default()).expect_err("no fpm");
    assert!(why.starts_with("no PHP-FPM found") && why.contains("php_fpm.reload: none"), "{why}");
    let none = resolve(&php_fpm(Some("none"), None), &FpmFound::default()).expect("nothing to find");
    assert_eq!(none, FpmCommands::default(), "without a reload, a config test left to cutover guards nothing");
    assert!(!needs_detection(&php_fpm(Some("none"), None)));
}

#[test]
fn a_found_service_with_no_way_to_reload_it_is_refused() {
    let why = resolve(&php_fpm(None, None), &found("fpm-binary /usr/sbin/php-fpm8.2\n")).expect_err("no manager");
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
fn the_detection_runs_in_any_posix_shell_and_prints_only_its_own_lines() {
    let mut script = Script::new();
    detect(&mut script);
    let out = std::process::Command::new("sh").arg("-c").arg(script.render()).output().expect("sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut found = FpmFound::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        assert!(found.read(key, value), "an unknown line: {line}");
    }
    assert!(found.masters.iter().all(|m| !m.contains("[:]")), "grep never finds itself: {found:?}");
}
