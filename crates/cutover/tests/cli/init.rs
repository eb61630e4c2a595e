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

const DEPLOY_RB: &str = r#"# config valid for current version and patch releases of Capistrano
lock "~> 3.17.0"

set :application, "shop"
set :repo_url, "git@example.com:acme/shop.git"
ask :branch, `git rev-parse --abbrev-ref HEAD`.chomp
set :branch, "main"
set :deploy_to, "/var/www/shop"
set :keep_releases, 7
append :linked_files, ".env", "config/local.php"
append :linked_dirs, "storage", "public/uploads"
set :ssh_options, { forward_agent: true }

namespace :deploy do
  task :restart do
    on roles(:app) { execute :sudo, :systemctl, :reload, "php8.2-fpm" }
  end
end
"#;

const PRODUCTION_RB: &str = r#"server "10.0.1.11", user: "deploy", roles: %w{app web}
server "10.0.1.12", user: "deploy", roles: [:app, :db], port: 2222, primary: true
role :worker, %w{deploy@10.0.1.13}
"#;

#[test]
fn from_capistrano_carries_hosts_roles_paths_and_lists_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("config/deploy")).expect("config");
    std::fs::write(dir.path().join("config/deploy.rb"), DEPLOY_RB).expect("deploy.rb");
    std::fs::write(dir.path().join("config/deploy/production.rb"), PRODUCTION_RB).expect("production.rb");
    let out = init(dir.path(), &["--yes", "--from", "capistrano"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    for left in ["ask :branch", "set :ssh_options", "namespace :deploy do"] {
        assert!(said.contains(left), "{left} listed as not carried over: {said}");
    }
    let inv = load(dir.path()).inventory;
    assert_eq!(inv.application, "shop");
    assert_eq!(inv.deploy_path.value, "/var/www/shop");
    assert_eq!(inv.keep_releases.value, 7);
    assert_eq!(inv.repository.as_ref().map(|r| r.value.as_str()), Some("git@example.com:acme/shop.git"));
    assert_eq!(inv.branch.as_deref(), Some("main"));
    let files: Vec<&str> = inv.shared.files.iter().map(|f| f.value.as_str()).collect();
    assert_eq!(files, [".env", "config/local.php"]);
    let dirs: Vec<&str> = inv.shared.dirs.iter().map(|f| f.value.as_str()).collect();
    assert_eq!(dirs, ["storage", "public/uploads"]);
    let hosts: Vec<String> = inv.hosts.iter().map(|h| format!("{} {:?}", h.name.value, h.roles.value)).collect();
    assert_eq!(
        hosts,
        [r#"10.0.1.11 ["app", "web"]"#, r#"10.0.1.12 ["primary", "app", "db"]"#, r#"10.0.1.13 ["worker"]"#]
    );
    assert_eq!(inv.hosts[1].port.as_ref().map(|p| p.value), Some(2222));
}

const DEPLOY_PHP: &str = r#"<?php
namespace Deployer;

require 'recipe/laravel.php';

set('application', 'blog');
set('repository', 'https://example.com/acme/blog.git');
set('keep_releases', 4);
add('shared_files', ['.env']);
add('shared_dirs', ['storage', 'bootstrap/cache']);
set('writable_dirs', ['storage']);

host('prod-1')
    ->setHostname('192.0.2.10')
    ->setRemoteUser('www')
    ->setDeployPath('~/blog');
host('prod-2')->set('hostname', '192.0.2.11')->set('remote_user', 'www')->set('port', 2200);

after('deploy:failed', 'deploy:unlock');
"#;

#[test]
fn from_deployer_carries_its_recipe_hosts_and_a_home_deploy_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("deploy.php"), DEPLOY_PHP).expect("deploy.php");
    let out = init(dir.path(), &["--yes", "--from", "deployer"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    for left in ["set('writable_dirs'", "after('deploy:failed'"] {
        assert!(said.contains(left), "{left} listed as not carried over: {said}");
    }
    let inv = load(dir.path()).inventory;
    assert_eq!((inv.application.as_str(), inv.recipe.value.as_str()), ("blog", "laravel"));
    assert_eq!(inv.deploy_path.value, "/home/www/blog");
    assert_eq!(inv.keep_releases.value, 4);
    let dirs: Vec<&str> = inv.shared.dirs.iter().map(|f| f.value.as_str()).collect();
    assert_eq!(dirs, ["storage", "bootstrap/cache"]);
    let address = |h: &cutover_core::config::inventory::HostEntry| h.address.as_ref().map(|a| a.value.clone());
    let hosts: Vec<(String, Option<String>)> = inv.hosts.iter().map(|h| (h.name.value.clone(), address(h))).collect();
    assert_eq!(hosts, [("prod-1".into(), Some("192.0.2.10".into())), ("prod-2".into(), Some("192.0.2.11".into()))]);
    assert_eq!(inv.hosts[1].port.as_ref().map(|p| p.value), Some(2200));

    // deploy.yaml, Deployer 7's other form.
    let yaml = tempfile::tempdir().expect("tempdir");
    let text = "import: recipe/symfony.php\nconfig:\n  repository: 'git@example.com:a/b.git'\n  shared_files: [.env.local]\n  \
                writable_mode: chmod\nhosts:\n  web:\n    hostname: 192.0.2.20\n    remote_user: deploy\n    deploy_path: /srv/b\n";
    std::fs::write(yaml.path().join("deploy.yaml"), text).expect("deploy.yaml");
    let out = init(yaml.path(), &["--yes", "--from", "deployer"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("writable_mode"), "{out:?}");
    let inv = load(yaml.path()).inventory;
    assert_eq!((inv.recipe.value.as_str(), inv.deploy_path.value.as_str()), ("symfony", "/srv/b"));
    assert_eq!(address(&inv.hosts[0]).as_deref(), Some("192.0.2.20"));
}

#[test]
fn from_a_tool_whose_files_are_missing_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = init(dir.path(), &["--yes", "--from", "capistrano"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config/deploy.rb"), "{out:?}");
    assert!(!dir.path().join("cutover.yaml").exists());
}
