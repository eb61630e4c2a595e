//! `cutover init`: a commented inventory for the application in the current
//! directory, that loads as written, and never a file overwritten.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

fn init(dir: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("cutover").expect("binary").current_dir(dir).arg("init").args(args).output().expect("runs")
}

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
        .args(args)
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

/// The inventory written in `dir`, loaded and checked as any run loads it.
fn load(dir: &Path) -> cutover_core::config::LoadedInventory {
    cutover_core::config::load_inventory(&dir.join("cutover.yaml")).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn a_laravel_app_in_git_gets_its_recipe_shared_paths_and_repository() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("artisan"), "<?php\n").expect("artisan");
    git(dir.path(), &["init", "-q", "-b", "trunk"]);
    git(dir.path(), &["remote", "add", "origin", "git@example.com:acme/shop.git"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "one"]);

    let out = init(dir.path(), &["--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("a Laravel application"), "{out:?}");
    let loaded = load(dir.path());
    let inv = &loaded.inventory;
    assert_eq!(inv.recipe.value, "laravel");
    assert_eq!(inv.repository.as_ref().map(|r| r.value.as_str()), Some("git@example.com:acme/shop.git"));
    assert_eq!(inv.branch.as_deref(), Some("trunk"));
    assert_eq!(inv.shared.files.iter().map(|f| f.value.as_str()).collect::<Vec<_>>(), [".env"]);
    assert_eq!(inv.shared.dirs.iter().map(|f| f.value.as_str()).collect::<Vec<_>>(), ["storage"]);
    assert_eq!(inv.hosts.len(), 1);

    // Never over a file, and it says why.
    let before = std::fs::read_to_string(dir.path().join("cutover.yaml")).expect("inventory");
    let again = init(dir.path(), &["--yes"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"), "{again:?}");
    assert_eq!(std::fs::read_to_string(dir.path().join("cutover.yaml")).expect("inventory"), before);
}

#[test]
fn a_plain_directory_is_uploaded_and_symfony_is_found_by_bin_console() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("index.php"), "<?php\n").expect("index.php");
    let out = init(dir.path(), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let event: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!((event["event"].as_str(), event["recipe"].as_str()), (Some("init"), Some("php")));
    let loaded = load(dir.path());
    assert_eq!(loaded.inventory.recipe.value, "php");
    assert!(loaded.inventory.repository.is_none());
    assert_eq!(loaded.inventory.source.as_ref().map(|s| s.value.clone()), Some(".".into()));

    let symfony = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(symfony.path().join("bin")).expect("bin");
    std::fs::write(symfony.path().join("bin/console"), "<?php\n").expect("console");
    let out = init(symfony.path(), &["--yes", "--inventory", "deploy.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let loaded = cutover_core::config::load_inventory(&symfony.path().join("deploy.yaml")).expect("loads");
    assert_eq!(loaded.inventory.recipe.value, "symfony");
    assert_eq!(loaded.inventory.shared.files.iter().map(|f| f.value.as_str()).collect::<Vec<_>>(), [".env.local"]);
}

#[test]
fn a_detached_head_keeps_the_repository_without_credentials_and_source_is_found_from_the_inventory() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("index.php"), "<?php\n").expect("index.php");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["remote", "add", "origin", "https://me:ghp_secret@example.com/acme/shop.git"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "one"]);
    git(dir.path(), &["checkout", "-q", "--detach"]);
    let out = init(dir.path(), &["--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(dir.path().join("cutover.yaml")).expect("inventory");
    assert!(!text.contains("ghp_secret"), "{text}");
    let inv = load(dir.path()).inventory;
    assert_eq!(inv.repository.as_ref().map(|r| r.value.as_str()), Some("https://example.com/acme/shop.git"));
    assert_eq!(inv.branch, None, "no branch checked out");

    // No git: the directory is uploaded, named from where the inventory is.
    let plain = tempfile::tempdir().expect("tempdir");
    std::fs::write(plain.path().join("index.php"), "<?php\n").expect("index.php");
    std::fs::create_dir_all(plain.path().join("deploy")).expect("deploy dir");
    let out = init(plain.path(), &["--yes", "-i", "deploy/production.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let loaded = cutover_core::config::load_inventory(&plain.path().join("deploy/production.yaml")).expect("loads");
    assert_eq!(loaded.inventory.source.as_ref().map(|s| s.value.clone()), Some("..".into()));
}
