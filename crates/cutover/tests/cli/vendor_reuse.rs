//! The composer step of the built-in recipes (`reuse: vendor`) starts from a
//! copy of the live release's vendor/ when composer.lock and the PHP version
//! are unchanged and nothing wrote into it after its composer step, and
//! composer still runs in every release. Here `composer`
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

/// A stand-in `php` for the reuse's PHP program: `key` prints the lock's
/// hash and FAKE_PHP_VERSION (no path packages); `manifest DIR` a hash of
/// DIR's files but `.cutover-reuse`.
const FAKE_PHP: &str = r#"#!/bin/sh
for a in "$@"; do before=$last; last=$a; done
if [ "$last" = key ]; then
  printf 'composer.lock %s config - php %s\n' "$(sha256sum < composer.lock | cut -c1-64)" "${FAKE_PHP_VERSION:-8.2.7}"
elif [ "$before" = manifest ]; then
  find "$last" -type f ! -name .cutover-reuse | sort | xargs cat | sha256sum | cut -c1-64
fi
"#;

/// A project whose app has composer files and the stand-ins on PATH;
/// `extra` is appended to its inventory.
fn project(extra: &str) -> Project {
    let project = Project::new(extra);
    project.write("app/composer.json", "{\"require\": {}}\n");
    project.write("app/composer.lock", "{\"packages\": []}\n");
    project.write_executable("bin/composer", FAKE_COMPOSER);
    project.write_executable("bin/php", FAKE_PHP);
    project
}

/// A build step after composer that writes into vendor/.
const PATCH_VENDOR: &str =
    "hooks:\n  build:\n    - name: patch vendor\n      run: echo patched >> vendor/acme/lib.php\n";

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
    let project = project("");
    let (first, _) = deploy(&project, &[], "8.2.7");
    assert_eq!(composer_runs(&project).len(), 3, "composer ran on each host");
    assert_eq!(found_in_last_run(&project), 0, "nothing to start from");

    let (second, log) = deploy(&project, &[], "8.2.7");
    assert_eq!(composer_runs(&project).len(), 6, "composer runs in every release");
    assert_eq!(found_in_last_run(&project), 3, "every host started from the live vendor/");
    assert_eq!(log.matches("reuse: vendor/ copied from the live release").count(), 3, "{log}");
    for host in HOSTS {
        let lib = "vendor/acme/lib.php";
        let (old, new) = (file(&project, host, &first, lib), file(&project, host, &second, lib));
        assert_ne!(old.metadata().expect("old").ino(), new.metadata().expect("new").ino(), "{host}: a copy");
        assert_eq!(read(&project, host, &second, lib), "lib\n", "{host}: the same content");
        let autoload = read(&project, host, &second, "vendor/autoload.php");
        assert!(autoload.contains(&second), "{host}: the autoloader is the new release's: {autoload}");
    }
}

#[test]
fn a_write_into_the_live_vendor_after_composer_turns_the_reuse_off() {
    let project = project(PATCH_VENDOR);
    let (first, _) = deploy(&project, &[], "8.2.7");
    let (second, log) = deploy(&project, &[], "8.2.7");
    assert_eq!(found_in_last_run(&project), 0, "built afresh, as --full-build would");
    assert_eq!(log.matches("changed after its composer step").count(), 3, "{log}");
    for host in HOSTS {
        let lib = "vendor/acme/lib.php";
        assert_eq!(read(&project, host, &first, lib), "lib\npatched\n", "{host}: the live copy, patched once");
        assert_eq!(read(&project, host, &second, lib), "lib\npatched\n", "{host}: the new one, patched once");
    }
}

#[test]
fn a_live_vendor_written_at_run_time_or_that_cannot_be_copied_is_built_afresh() {
    let project = project("");
    deploy(&project, &[], "8.2.7");
    // The application writes a cache into web1's live vendor/; on web2 the
    // copy fails (a stand-in `cp` refusing it, as for a file the deploy
    // user cannot read).
    let live = project.deploy_path("web1").join("current/vendor/acme/cache.php");
    std::fs::write(live, "<?php // a cache").expect("write into vendor/");
    let refusing = "#!/bin/sh\ncase \"$*\" in *web2*current/vendor*) echo 'cp: Permission denied' >&2; exit 1 ;; esac\nexec /bin/cp \"$@\"\n";
    project.write_executable("bin/cp", refusing);
    let (_, log) = deploy(&project, &[], "8.2.7");
    assert!(log.contains("web2 stdout | reuse: the live release's vendor/ could not be copied"), "{log}");
    let runs = composer_runs(&project);
    let last: Vec<&str> = runs.iter().rev().take(3).map(String::as_str).collect();
    assert!(
        last.contains(&"web1 empty") && last.contains(&"web2 empty") && last.contains(&"web3 found"),
        "{last:?}\n{log}"
    );
}

#[test]
fn full_build_a_changed_lock_or_another_php_starts_from_nothing() {
    let project = project("");
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
