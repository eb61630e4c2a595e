//! The composer step of the built-in recipes reuses the live release's
//! vendor/ when composer.lock did not change, and `--full-build` does not.

use std::os::unix::fs::MetadataExt;

use assert_cmd::Command;

use crate::harness::{HOSTS, Project, summary};

/// A project whose app has composer files, and a fake `composer` on PATH
/// that writes vendor/ and logs each run.
fn project() -> Project {
    let project = Project::new("");
    project.write("app/composer.json", "{\"require\": {}}\n");
    project.write("app/composer.lock", "{\"packages\": []}\n");
    let fake = "#!/bin/sh\nset -e\nmkdir -p vendor/composer vendor/acme\necho '<?php' > vendor/autoload.php\n\
                echo lib > vendor/acme/lib.php\necho '{}' > vendor/composer/installed.json\n\
                echo \"$CUTOVER_HOST $*\" >> \"$COMPOSER_LOG\"\n";
    project.write_executable("bin/composer", fake);
    project
}

fn deploy(project: &Project, extra: &[&str]) -> String {
    let out = Command::cargo_bin("cutover")
        .expect("binary")
        .current_dir(project.path())
        .env("PATH", project.path_with_bin())
        .env("COMPOSER_LOG", project.path().join("composer.log"))
        .args(["deploy", "--json"])
        .args(extra)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    summary(&events)["release"].as_str().expect("release").to_owned()
}

fn composer_runs(project: &Project) -> usize {
    std::fs::read_to_string(project.path().join("composer.log")).map(|l| l.lines().count()).unwrap_or(0)
}

fn inode(project: &Project, host: &str, release: &str, file: &str) -> u64 {
    let path = project.deploy_path(host).join("releases").join(release).join(file);
    std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).ino()
}

#[test]
fn an_unchanged_lock_reuses_vendor_and_a_changed_one_or_full_build_runs_composer() {
    let project = project();
    let first = deploy(&project, &[]);
    assert_eq!(composer_runs(&project), 3, "composer ran on each host");

    let second = deploy(&project, &[]);
    assert_eq!(composer_runs(&project), 3, "composer did not run again");
    for host in HOSTS {
        let lib = "vendor/acme/lib.php";
        assert_eq!(inode(&project, host, &first, lib), inode(&project, host, &second, lib), "{host}: hard link");
        let installed = "vendor/composer/installed.json";
        assert_ne!(
            inode(&project, host, &first, installed),
            inode(&project, host, &second, installed),
            "{host}: own copy"
        );
        let autoload = "vendor/autoload.php";
        assert_ne!(
            inode(&project, host, &first, autoload),
            inode(&project, host, &second, autoload),
            "{host}: own copy"
        );
    }

    deploy(&project, &["--full-build"]);
    assert_eq!(composer_runs(&project), 6, "--full-build runs composer");

    project.write("app/composer.lock", "{\"packages\": [{\"name\": \"acme/lib\"}]}\n");
    deploy(&project, &[]);
    assert_eq!(composer_runs(&project), 9, "a changed lock runs composer");
}
