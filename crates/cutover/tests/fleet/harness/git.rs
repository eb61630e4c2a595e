//! A tiny PHP application and a bare git repository holding it. The
//! repository lives in a host directory that every container mounts
//! read-only at `/srv/git`, so it is `/srv/git/app.git` on the hosts.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The front controller: the version, the release directory it runs from
/// and whether OPcache is on, e.g. `v1 20261123143012 opcache`.
const INDEX_PHP: &str = r#"<?php
$release = basename(realpath(__DIR__ . '/..'));
$opcache = function_exists('opcache_get_status') && opcache_get_status() ? 'opcache' : 'no';
echo "@VERSION@ {$release} {$opcache}\n";
"#;

/// A slow page: sleeps `ms` milliseconds (300 unless the query says), then
/// prints the same line as the front controller. Its release is fixed when
/// the request arrives (nginx resolves `$realpath_root` then), so a request
/// in flight across a switch still names the release it started on.
const SLOW_PHP: &str = r#"<?php
usleep(max(0, (int) ($_GET['ms'] ?? 300)) * 1000);
$release = basename(realpath(__DIR__ . '/..'));
$opcache = function_exists('opcache_get_status') && opcache_get_status() ? 'opcache' : 'no';
echo "@VERSION@ {$release} {$opcache}\n";
"#;

/// A health page for `health_check.url`: 503 `sick` while `/tmp/unhealthy`
/// exists on the host, otherwise 200 `<version> ok`.
const HEALTH_PHP: &str = r#"<?php
if (file_exists('/tmp/unhealthy')) {
    http_response_code(503);
    echo "sick\n";
} else {
    echo "@VERSION@ ok\n";
}
"#;

/// No packages and no Packagist, so `composer install` works offline.
const COMPOSER_JSON: &str = r#"{"name":"acme/app","repositories":[{"packagist.org":false}],"require":{}}"#;

/// What `composer install` writes for `COMPOSER_JSON` (composer 2.5).
const COMPOSER_LOCK: &str = r#"{
    "_readme": [
        "This file locks the dependencies of your project to a known state",
        "Read more about it at https://getcomposer.org/doc/01-basic-usage.md#installing-dependencies",
        "This file is @generated automatically"
    ],
    "content-hash": "033cbbfcf0fd2e51923a94eb5ca032c5",
    "packages": [],
    "packages-dev": [],
    "aliases": [],
    "minimum-stability": "stable",
    "stability-flags": [],
    "prefer-stable": false,
    "prefer-lowest": false,
    "platform": [],
    "platform-dev": [],
    "plugin-api-version": "2.3.0"
}
"#;

/// Writes the application, printing `version`, into `dir`.
pub fn write_app(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir.join("public")).expect("app dir");
    let index = INDEX_PHP.replace("@VERSION@", version);
    std::fs::write(dir.join("public/index.php"), index).expect("index.php");
    std::fs::write(dir.join("public/slow.php"), SLOW_PHP.replace("@VERSION@", version)).expect("slow.php");
    std::fs::write(dir.join("public/health.php"), HEALTH_PHP.replace("@VERSION@", version)).expect("health.php");
    std::fs::write(dir.join("composer.json"), COMPOSER_JSON).expect("composer.json");
    std::fs::write(dir.join("composer.lock"), COMPOSER_LOCK).expect("composer.lock");
}

/// A bare repository (branch `main`) and the work tree that pushes to it.
#[derive(Debug)]
pub struct GitRepo {
    bare: PathBuf,
    work: PathBuf,
}

impl GitRepo {
    /// `bare` (made world-readable for the hosts' `deploy` user) with `v1`
    /// committed on `main`.
    pub fn create(bare: PathBuf, work: PathBuf) -> Self {
        git(None, &["init", "-q", "--bare", "-b", "main", "--shared=0644"], &bare);
        git(None, &["init", "-q", "-b", "main"], &work);
        let repo = Self { bare, work };
        let bare = repo.bare.to_string_lossy().into_owned();
        repo.git(&["remote", "add", "origin", &bare]);
        repo.commit_version("v1");
        repo
    }

    /// Commits the application printing `version` and pushes it; returns the
    /// new commit.
    pub fn commit_version(&self, version: &str) -> String {
        self.commit_tree(version, |work| write_app(work, version))
    }

    /// Empties the work tree (but `.git`), lets `fill` write it, commits
    /// everything and pushes it; returns the new commit.
    pub fn commit_tree(&self, message: &str, fill: impl FnOnce(&Path)) -> String {
        for entry in std::fs::read_dir(&self.work).expect("read work tree") {
            let path = entry.expect("work tree entry").path();
            if path.file_name().is_some_and(|n| n != ".git") {
                let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                removed.expect("empty the work tree");
            }
        }
        self.commit_change(message, fill)
    }

    /// Lets `edit` change the work tree, commits everything and pushes it;
    /// returns the new commit.
    pub fn commit_change(&self, message: &str, edit: impl FnOnce(&Path)) -> String {
        edit(&self.work);
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["push", "-q", "origin", "main"]);
        self.head()
    }

    /// The commit at the head of `main`.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }

    fn git(&self, args: &[&str]) -> String {
        git(Some(&self.work), args, Path::new(""))
    }
}

/// `git [-C dir] <args> [path]` with a fixed identity; panics on failure.
fn git(dir: Option<&Path>, args: &[&str], path: &Path) -> String {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.arg("-C").arg(dir);
    }
    cmd.args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(["-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"])
        .args(args);
    if !path.as_os_str().is_empty() {
        cmd.arg(path);
    }
    let out = cmd.output().expect("run git");
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cp -a from/. to/`: a fixture's files into a work tree.
pub fn copy_into(from: &Path, to: &Path) {
    let status = Command::new("cp").arg("-a").arg(from.join(".")).arg(to).status().expect("run cp");
    assert!(status.success(), "cp -a {} {}", from.display(), to.display());
}
