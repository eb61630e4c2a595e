//! The composer step of the built-in recipes (`reuse: vendor`) starts from a
//! copy of the live release's vendor/ when composer.lock and the PHP version
//! are unchanged, and composer still runs in every release. Here `composer`
//! and `php` are stand-ins on PATH that log what they found; the fleet's
//! Laravel story runs the real ones.

use std::os::unix::fs::MetadataExt;

use crate::harness::{HOSTS, Project, events_of, summary};

/// A stand-in `composer install`: logs whether vendor/ was there already,
/// installs when it was not, and (as composer does) always rewrites the
/// autoloader.
const FAKE_COMPOSER: &str = "#!/bin/sh\nset -e\n\
    if [ -f vendor/composer/installed.json ]; then found=found; else found=empty; fi\n\
    mkdir -p vendor/composer vendor/acme\n\
    [ \"$found\" = found ] || { echo lib > vendor/acme/lib.php; echo '{}' > vendor/composer/installed.json; }\n\
    echo \"<?php // autoload for $CUTOVER_RELEASE\" > vendor/autoload.php\n\
    echo \"$CUTOVER_HOST $found\" >> \"$COMPOSER_LOG\"\n";

/// A stand-in `php` for the reuse's one PHP script: the key (the lock's
/// hash and FAKE_PHP_VERSION), and no packages from path repositories.
const FAKE_PHP: &str = "#!/bin/sh\nprintf 'composer.lock %s php %s\\n' \"$(sha256sum < composer.lock | cut -c1-64)\" \
                        \"${FAKE_PHP_VERSION:-8.2.7}\"\n";

/// A project whose app has composer files, the stand-ins on PATH, and a
/// build step after composer that appends to a vendor file.
fn project() -> Project {
    let project =
        Project::new("hooks:\n  build:\n    - name: patch vendor\n      run: echo patched >> vendor/acme/lib.php\n");
    project.write("app/composer.json", "{\"require\": {}}\n");
    project.write("app/composer.lock", "{\"packages\": []}\n");
    project.write_executable("bin/composer", FAKE_COMPOSER);
    project.write_executable("bin/php", FAKE_PHP);
    project
}

/// Deploys; returns the new release and its log (what the hosts printed).
fn deploy(project: &Project, extra: &[&str], php_version: &str) -> (String, String) {
    let log = project.path().join("composer.log");
    let path = project.path_with_bin();
    let args: Vec<&str> = ["deploy", "--json"].into_iter().chain(extra.iter().copied()).collect();
    let env =
        [("PATH", path.as_str()), ("COMPOSER_LOG", log.to_str().expect("utf-8")), ("FAKE_PHP_VERSION", php_version)];
    let out = project.cutover_with_env(&args, &env);
    assert_eq!(out.status.code(), Some(0), "{}", crate::harness::stderr(&out));
    let events = events_of(&out);
    (summary(&events)["release"].as_str().expect("release").to_owned(), newest_log(project))
}

/// The newest run log in `.cutover/logs/`.
fn newest_log(project: &Project) -> String {
    let dir = project.path().join(".cutover/logs");
    let logs = std::fs::read_dir(&dir).expect("logs").map(|e| e.expect("log").path());
    let newest = logs.max_by_key(|p| p.metadata().and_then(|m| m.modified()).expect("mtime")).expect("a log");
    std::fs::read_to_string(newest).expect("read log")
}

/// What composer found on each run, in order (`web1 empty`, `web2 found`...).
fn composer_runs(project: &Project) -> Vec<String> {
    let log = std::fs::read_to_string(project.path().join("composer.log")).unwrap_or_default();
    log.lines().map(str::to_owned).collect()
}

/// How many of the last three composer runs found vendor/ already there.
fn found_in_last_run(project: &Project) -> usize {
    let runs = composer_runs(project);
    runs.iter().rev().take(HOSTS.len()).filter(|r| r.ends_with(" found")).count()
}

fn file(project: &Project, host: &str, release: &str, name: &str) -> std::path::PathBuf {
    project.deploy_path(host).join("releases").join(release).join(name)
}

fn read(project: &Project, host: &str, release: &str, name: &str) -> String {
    let path = file(project, host, release, name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn an_unchanged_lock_seeds_vendor_with_a_copy_and_composer_still_runs() {
    let project = project();
    let (first, _) = deploy(&project, &[], "8.2.7");
    assert_eq!(composer_runs(&project).len(), 3, "composer ran on each host");
    assert_eq!(found_in_last_run(&project), 0, "nothing to start from");

    let (second, out) = deploy(&project, &[], "8.2.7");
    assert_eq!(composer_runs(&project).len(), 6, "composer runs in every release");
    assert_eq!(found_in_last_run(&project), 3, "every host started from the live vendor/");
    assert_eq!(
        out.matches("reuse: vendor/ copied from the live release (composer.lock and PHP 8.2.7").count(),
        3,
        "{out}"
    );
    for host in HOSTS {
        let lib = "vendor/acme/lib.php";
        let (old, new) = (file(&project, host, &first, lib), file(&project, host, &second, lib));
        assert_ne!(old.metadata().expect("old").ino(), new.metadata().expect("new").ino(), "{host}: a copy");
        assert_eq!(read(&project, host, &first, lib), "lib\npatched\n", "{host}: the live copy, patched once");
        assert_eq!(read(&project, host, &second, lib), "lib\npatched\npatched\n", "{host}: the new copy");
        let autoload = read(&project, host, &second, "vendor/autoload.php");
        assert!(autoload.contains(&second), "{host}: the autoloader is the new release's: {autoload}");
    }
}

#[test]
fn full_build_a_changed_lock_or_another_php_starts_from_nothing() {
    let project = project();
    deploy(&project, &[], "8.2.7");

    deploy(&project, &["--full-build"], "8.2.7");
    assert_eq!(found_in_last_run(&project), 0, "--full-build copies nothing");

    deploy(&project, &[], "8.2.8");
    assert_eq!(found_in_last_run(&project), 0, "another PHP version copies nothing");

    project.write("app/composer.lock", "{\"packages\": [{\"name\": \"acme/lib\"}]}\n");
    deploy(&project, &[], "8.2.8");
    assert_eq!(found_in_last_run(&project), 0, "a changed lock copies nothing");

    let (release, _) = deploy(&project, &[], "8.2.8");
    assert_eq!(found_in_last_run(&project), 3, "unchanged again: copied");
    assert!(read(&project, "web1", &release, "vendor/.cutover-reuse").contains("php 8.2.8"));
}
