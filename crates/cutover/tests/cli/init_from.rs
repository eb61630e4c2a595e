//! `cutover init --from capistrano|deployer`: a team's existing deploy
//! files carried over into an inventory that loads as written, each stage
//! an environment, and what could not be carried over listed with its file
//! and line, never guessed.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use cutover_core::config::{LoadedInventory, load_inventory_in};

fn init_from(dir: &Path, tool: &str) -> Output {
    let out = Command::cargo_bin("cutover")
        .expect("binary")
        .current_dir(dir)
        .args(["init", "--from", tool])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
    std::fs::write(path, text).expect("write");
}

/// The inventory written, loaded for `environment` as a run loads it.
fn load(dir: &Path, environment: Option<&str>) -> LoadedInventory {
    load_inventory_in(&dir.join("cutover.yaml"), environment).unwrap_or_else(|e| {
        let text = std::fs::read_to_string(dir.join("cutover.yaml")).unwrap_or_default();
        panic!("{e:?}\n{text}")
    })
}

/// Each host as `name address user port roles`.
fn hosts(loaded: &LoadedInventory) -> Vec<String> {
    loaded
        .inventory
        .hosts
        .iter()
        .map(|h| {
            let address = h.address.as_ref().map(|a| a.value.clone()).unwrap_or_default();
            let user = h.user.as_ref().map(|u| u.value.clone()).unwrap_or_default();
            let port = h.port.as_ref().map(|p| p.value.to_string()).unwrap_or_default();
            format!("{} {address} {user} {port} {}", h.name.value, h.roles.value.join(","))
        })
        .collect()
}

const DEPLOY_RB: &str = r#"# config valid for current version and patch releases of Capistrano
lock "~> 3.18.0"

set :application, "shop"
set :repo_url, "git@github.com:acme/shop.git"
set :branch, ENV.fetch("BRANCH", "main")
set :deploy_to, "/var/www/shop/"
set :keep_releases, 7
append :linked_files, ".env", "auth.json"
set :linked_dirs, fetch(:linked_dirs, []).push("storage",
                                                 "public/uploads")
set :ssh_options, { forward_agent: true }

namespace :deploy do
  after :publishing, :restart do
    on roles(:app) do
      execute :sudo, :systemctl, :reload, "php8.2-fpm"
    end
  end
end
"#;

const PRODUCTION_RB: &str = r##"server "deploy@web1.example.com:2222", roles: %w{app web db}, primary: true
server "web2.example.com", user: "deploy", roles: %w{app web}
role :web, %w{deploy@web2.example.com}
role :db, %w{deploy@[2001:db8::7]:22}
server "#{ENV['EXTRA']}", roles: %w{app}
server 'cron.example.com', roles: %w{cron}, no_release: true, ssh_options: { keys: %w(~/.ssh/x) }
set :branch, "release"
set :repo_url, "https://deploy:ghp_t0ken@github.com/acme/shop-fork.git"
"##;

const STAGING_RB: &str = "server 'staging.example.com', user: 'deploy', roles: [:app, :web], primary: true\n\
                          set :deploy_to, '/srv/staging/shop'\n";

#[test]
fn capistrano_stages_become_environments_and_expressions_are_listed_not_guessed() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "config/deploy.rb", DEPLOY_RB);
    write(dir.path(), "config/deploy/production.rb", PRODUCTION_RB);
    write(dir.path(), "config/deploy/staging.rb", STAGING_RB);
    let out = init_from(dir.path(), "capistrano");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();

    // Not merged: each stage is its own environment, and the file names them.
    assert!(load_inventory_in(&dir.path().join("cutover.yaml"), None).is_err(), "a run must name one");
    let production = load(dir.path(), Some("production"));
    let inv = &production.inventory;
    assert_eq!(inv.application, "shop");
    assert_eq!(inv.deploy_path.value, "/var/www/shop", "the trailing slash dropped");
    assert_eq!(inv.keep_releases.value, 7);
    assert_eq!(inv.repository.as_ref().map(|r| r.value.as_str()), Some("git@github.com:acme/shop.git"));
    assert_eq!(inv.branch.as_deref(), Some("release"), "the stage's branch");
    let files: Vec<&str> = inv.shared.files.iter().map(|f| f.value.as_str()).collect();
    let dirs: Vec<&str> = inv.shared.dirs.iter().map(|d| d.value.as_str()).collect();
    assert_eq!((files, dirs), (vec![".env", "auth.json"], vec!["storage", "public/uploads"]), "a multi-line push");
    assert_eq!(
        hosts(&production),
        [
            "web1.example.com web1.example.com deploy 2222 primary,app,web,db",
            "web2.example.com web2.example.com deploy  app,web",
            "2001:db8::7 2001:db8::7 deploy 22 db",
        ],
        "options are not hosts; one server in two roles is one host"
    );
    let staging = load(dir.path(), Some("staging"));
    assert_eq!(staging.inventory.deploy_path.value, "/srv/staging/shop");
    assert_eq!(hosts(&staging), ["staging.example.com staging.example.com deploy  primary,app,web"]);
    assert_eq!(staging.inventory.branch, None, "an expression is no branch");

    for left in [
        "config/deploy.rb:6: `set :branch, ...`: an expression",
        "config/deploy.rb:12: `set :ssh_options, ...`: cutover's ssh reads ~/.ssh/config",
        "config/deploy.rb:14: `namespace :deploy do`: tasks and hooks are not carried over",
        "config/deploy/production.rb:5: `server \"#{ENV['EXTRA']}\", ...`: a server named by an expression",
        "config/deploy/production.rb:6: `server 'cron.example.com', ...`: option `ssh_options` is not carried over",
        "config/deploy/production.rb:6: `server 'cron.example.com', ...`: `no_release: true`: a server cutover deploys nothing to is left out",
        "config/deploy/production.rb:8: `set :repo_url, ...`: `:repo_url` set for one stage",
    ] {
        assert!(said.contains(left), "`{left}` in:\n{said}");
    }
    let written = std::fs::read_to_string(dir.path().join("cutover.yaml")).expect("written");
    assert!(written.contains("#   config/deploy.rb:6:"), "listed in the file too:\n{written}");
    assert!(!written.contains("ghp_t0ken") && !said.contains("ghp_t0ken"), "a token is never written or shown");
}

const DEPLOY_PHP: &str = r#"<?php
namespace Deployer;

require 'recipe/laravel.php';
require 'contrib/cachetool.php';

set('application', 'shop');
set('repository', 'https://deploy:ghp_s3cret@github.com/acme/shop.git');
set('keep_releases', -1);
add('shared_files', ['auth.json']);
add('writable_dirs', []);
set('branch', "release-$version");

host('prod1')
    ->setHostname('10.0.1.11')
    ->setRemoteUser('deploy')
    ->setDeployPath('/var/www/{{application}}')
    ->setLabels(['stage' => 'production']);
host('prod2')->set('hostname', '10.0.1.12')->set('remote_user', 'deploy')
    ->set('deploy_path', '/var/www/{{application}}')->set('labels', ['stage' => 'production'])
    ->set('forward_agent', true);
host('staging')
    ->setHostname('staging.example.com')
    ->setRemoteUser('deploy')
    ->setDeployPath('~/{{application}}')
    ->setLabels(['stage' => 'staging']);

after('deploy:failed', 'deploy:unlock');
"#;

#[test]
fn deployer_add_keeps_the_recipes_shared_paths_and_hosts_go_to_their_stage() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "deploy.php", DEPLOY_PHP);
    let out = init_from(dir.path(), "deployer");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let production = load(dir.path(), Some("production"));
    let inv = &production.inventory;
    assert_eq!(inv.recipe.value, "laravel");
    assert_eq!(inv.repository.as_ref().map(|r| r.value.as_str()), Some("https://github.com/acme/shop.git"));
    let written = std::fs::read_to_string(dir.path().join("cutover.yaml")).expect("written");
    assert!(!written.contains("ghp_s3cret") && !said.contains("ghp_s3cret"), "a token is never written or shown");
    assert!(said.contains("deploy.php:8: `set('repository', ...`: the credentials"));
    assert_eq!(inv.deploy_path.value, "/var/www/shop", "{{{{application}}}} is the application");
    let files: Vec<&str> = inv.shared.files.iter().map(|f| f.value.as_str()).collect();
    let dirs: Vec<&str> = inv.shared.dirs.iter().map(|d| d.value.as_str()).collect();
    assert_eq!((files, dirs), (vec![".env", "auth.json"], vec!["storage"]), "add() after the recipe's own");
    assert_eq!(inv.keep_releases.value, 10, "-1 is listed; Deployer's default is written");
    assert_eq!(inv.branch, None, "an interpolated string is no branch");
    assert_eq!(hosts(&production), ["prod1 10.0.1.11 deploy  ", "prod2 10.0.1.12 deploy  "], "named as in Deployer");
    // Staging's `~/shop` is written as it was, so that a run is refused at
    // its line until someone writes the path out: never production's path.
    let refused = load_inventory_in(&dir.path().join("cutover.yaml"), Some("staging")).expect_err("not absolute");
    let written = std::fs::read_to_string(dir.path().join("cutover.yaml")).expect("written");
    let line = written.lines().position(|l| l.contains("deploy_path: \"~/shop\"")).expect("written as it was") + 1;
    assert_eq!(refused.position.map(|p| p.line), Some(line as u64), "{refused:?}");
    for left in [
        "deploy.php:5: `require 'contrib/cachetool.php';`",
        "deploy.php:9: `set('keep_releases', ...`: keeps every release",
        "deploy.php:12: `set('branch', ...`: an expression",
        "deploy.php:19: `host('prod2')",
        "forward_agent",
        "host `staging`: deploy_path `~/shop`: cutover needs an absolute path",
        "deploy.php:28: `after('deploy:failed', ...`: tasks and hooks",
    ] {
        assert!(said.contains(left), "`{left}` in:\n{said}");
    }
}

#[test]
fn deployer_yaml_hosts_keep_their_order_and_odd_addresses_are_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "deploy.yaml",
        "import:\n  - recipe/symfony.php\nconfig:\n  application: shop\n  repository: 'git@github.com:acme/shop.git'\n  \
         keep_releases: 3\n  shared_dirs: [var/log, var/sessions]\nhosts:\n  zeta:\n    hostname: zeta.example.com\n    \
         remote_user: deploy\n    deploy_path: /srv/shop\n  alpha:\n    hostname: alpha.example.com\n    port: 2200\n    \
         remote_user: deploy\n    deploy_path: /srv/shop\n  mid:\n    hostname: 'bad host; rm -rf /'\n    deploy_path: /srv/shop\n\
         tasks:\n  build:\n    - run: uptime\nafter:\n  deploy:failed: deploy:unlock\n",
    );
    let out = init_from(dir.path(), "deployer");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let loaded = load(dir.path(), None);
    assert_eq!(loaded.inventory.recipe.value, "symfony");
    assert_eq!(loaded.inventory.keep_releases.value, 3);
    assert_eq!(loaded.inventory.deploy_path.value, "/srv/shop");
    let dirs: Vec<&str> = loaded.inventory.shared.dirs.iter().map(|d| d.value.as_str()).collect();
    assert_eq!(dirs, ["var/log", "var/sessions"], "set in config replaces the recipe's");
    assert_eq!(
        hosts(&loaded),
        ["zeta zeta.example.com deploy  ", "alpha alpha.example.com deploy 2200 "],
        "in the file's order"
    );
    assert!(
        said.contains("host `mid`: `bad host; rm -rf /`: `bad host; rm -rf /` has whitespace, which no host name has"),
        "{said}"
    );
    assert!(said.contains("deploy.yaml: `tasks`") && said.contains("deploy.yaml: `after`"), "{said}");
}

#[test]
fn without_the_tools_files_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::cargo_bin("cutover")
        .expect("binary")
        .current_dir(dir.path())
        .args(["init", "--from", "capistrano"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config/deploy.rb"), "{out:?}");
    assert!(!dir.path().join("cutover.yaml").exists());
}

#[test]
fn one_primary_per_stage_one_branch_per_environment_and_no_placeholder_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "config/deploy.rb", "set :application, 'shop'\nset :deploy_to, '/srv/shop'\n");
    write(
        dir.path(),
        "config/deploy/production.rb",
        "role :app, %w{a.example.com b.example.com}, primary: true, port: 2200\nserver 'c.example.com', roles: %w{db}, primary: true\n",
    );
    write(
        dir.path(),
        "config/deploy/staging.rb",
        "server 'd.example.com', roles: %w{app}\nserver 'e.example.com', roles: %w{db}\n",
    );
    let said = String::from_utf8_lossy(&init_from(dir.path(), "capistrano").stdout).into_owned();
    let production = load(dir.path(), Some("production"));
    assert_eq!(
        hosts(&production),
        [
            "a.example.com a.example.com  2200 primary,app",
            "b.example.com b.example.com  2200 app",
            "c.example.com c.example.com   db"
        ],
        "the role's first server is its primary; the port of the role applies to each: {said}"
    );
    assert!(
        said.contains("`primary` on more than one server: a.example.com is the primary, not c.example.com"),
        "{said}"
    );
    let staging = load(dir.path(), Some("staging"));
    assert_eq!(
        hosts(&staging),
        ["d.example.com d.example.com   app", "e.example.com e.example.com   primary,db"],
        "without one marked, the first db server migrates, as in Capistrano"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "deploy.php",
        "<?php\nnamespace Deployer;\nrequire 'recipe/laravel.php';\nset('application', 'shop');\n\
         set('repository', 'git@github.com:acme/shop.git');\nset('deploy_path', '/var/www/{{application}}');\n\
         host('web1')->setLabels(['stage' => 'prod', 'region' => 'eu'])->set('branch', 'main')->roles('app', 'cron');\n\
         host('web2')->setLabels(['stage' => 'prod'])->set('branch', 'hotfix');\n\
         host('web3')->setLabels(['stage' => 'test'])->setDeployPath('/var/www/{{release_name}}');\n\
         host('{{hostname}}')->setLabels(['stage' => 'test']);\n",
    );
    let said = String::from_utf8_lossy(&init_from(dir.path(), "deployer").stdout).into_owned();
    let prod = load(dir.path(), Some("prod"));
    assert_eq!(prod.inventory.branch, None, "web1 and web2 disagree: {said}");
    assert_eq!(hosts(&prod), ["web1 web1   app,cron", "web2 web2   "], "every role of ->roles(): {said}");
    assert!(said.contains("the hosts of `prod` deploy different branches (web1 main, web2 hotfix)"), "{said}");
    assert!(said.contains("deploy.php:7: `host('web1')"), "{said}");
    assert!(said.contains("labels other than `stage` (region)"), "{said}");
    assert!(
        said.contains("deploy.php:9: host `web3`: deploy_path `/var/www/{{release_name}}`: a placeholder"),
        "{said}"
    );
    assert!(said.contains("host `{{hostname}}`: `{{hostname}}`: a placeholder"), "{said}");
    let refused = load_inventory_in(&dir.path().join("cutover.yaml"), Some("test")).expect_err("a placeholder path");
    assert!(refused.to_string().contains("deploy_path"), "{refused}");
}
