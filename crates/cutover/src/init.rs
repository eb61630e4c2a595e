//! `cutover init`: a commented `cutover.yaml` for the application in the
//! current directory. It finds the framework (Laravel's `artisan`,
//! Symfony's `bin/console`, plain PHP otherwise), the git remote and branch
//! the hosts would fetch (an upload of the directory when there is none),
//! and writes the recipe, the shared files and directories that framework
//! keeps between releases, and one placeholder host. It never overwrites a
//! file.

mod capistrano;
mod deployer;
mod import;

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use import::Imported;
use import::ImportedHost;

/// Another tool whose settings `--from` carries over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FromTool {
    /// config/deploy.rb and config/deploy/*.rb
    Capistrano,
    /// deploy.php or deploy.yaml
    Deployer,
}

/// Reads `tool`'s settings in `dir`.
pub fn import(tool: FromTool, dir: &Path) -> Result<Imported, InitError> {
    match tool {
        FromTool::Capistrano => capistrano::read(dir),
        FromTool::Deployer => deployer::read(dir),
    }
}

/// What was found in the application's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The directory's name, as the application's name.
    pub application: String,
    pub framework: Framework,
    /// The `origin` remote and the branch checked out, when it is a git work tree.
    pub git: Option<(String, String)>,
}

/// The framework the directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framework {
    Laravel,
    Symfony,
    Php,
}

impl Framework {
    /// The built-in recipe for it.
    pub fn recipe(self) -> &'static str {
        match self {
            Framework::Laravel => "laravel",
            Framework::Symfony => "symfony",
            Framework::Php => "php",
        }
    }

    /// The files and directories kept in `shared/`, as YAML lines.
    fn shared(self) -> &'static str {
        match self {
            Framework::Laravel => {
                "shared:\n  files: [.env]                 # create it on each host before the first deploy\n  dirs: [storage]               # logs, sessions, uploads: kept across releases\n"
            }
            Framework::Symfony => {
                "shared:\n  files: [.env.local]           # create it on each host before the first deploy\n  dirs: [var/log]\n"
            }
            Framework::Php => {
                "# shared:\n#   files: [config.local.php]   # kept in shared/ and linked into every release\n#   dirs: [uploads]\n"
            }
        }
    }
}

/// Looks at `dir`.
pub fn inspect(dir: &Path) -> Found {
    let framework = if dir.join("artisan").is_file() {
        Framework::Laravel
    } else if dir.join("bin/console").is_file() {
        Framework::Symfony
    } else {
        Framework::Php
    };
    let application = std::path::absolute(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| name(&n.to_string_lossy())))
        .unwrap_or_else(|| "app".to_owned());
    let git = git(dir, &["remote", "get-url", "origin"]).zip(git(dir, &["rev-parse", "--abbrev-ref", "HEAD"]));
    Found { application, framework, git }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty() && text != "HEAD").then_some(text)
}

/// The inventory for what was found, with what `--from` carried over.
pub fn inventory(found: &Found, imported: &Imported) -> String {
    // JSON strings are YAML's double-quoted scalars: any value reads back
    // as written.
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let app = imported.application.as_deref().map(name).unwrap_or_else(|| found.application.clone());
    let git = match (&imported.repository, &found.git) {
        (Some(repository), _) => Some((repository.clone(), imported.branch.clone())),
        (None, Some((remote, branch))) => Some((remote.clone(), Some(branch.clone()))),
        (None, None) => None,
    };
    let mut out = String::new();
    let _ = writeln!(out, "# cutover.yaml for {app}, written by `cutover init`: see docs/inventory.md.");
    if !imported.files.is_empty() {
        let _ = writeln!(out, "# Carried over from {}.", imported.files.join(", "));
    }
    let _ = writeln!(out, "# Check the hosts with `cutover check`; see every command with `cutover plan`.");
    let _ = writeln!(out, "application: {app}");
    let _ = writeln!(out, "deploy_path: {}", quoted(&deploy_path(imported, &app)));
    let _ = writeln!(out, "keep_releases: {}", imported.keep_releases.unwrap_or(5).max(2));
    match git {
        Some((repository, branch)) => {
            let _ = writeln!(out, "# Every host fetches the repository (give the hosts a deploy key); the");
            let _ = writeln!(out, "# branch is resolved to one commit, once, for every host.");
            let _ = writeln!(out, "repository: {}", quoted(&repository));
            if let Some(branch) = branch {
                let _ = writeln!(out, "branch: {}", quoted(&branch));
            }
        }
        None => {
            let _ = writeln!(out, "# No git remote found: this directory is uploaded to every host.");
            let _ = writeln!(out, "source: .\nexclude: [vendor, node_modules, .cutover]");
        }
    }
    let recipe = imported.recipe.unwrap_or_else(|| found.framework.recipe());
    let _ = writeln!(out, "recipe: {recipe}                    # php, laravel, symfony, or a path to your own");
    if imported.shared_files.is_empty() && imported.shared_dirs.is_empty() {
        out.push_str(found.framework.shared());
    } else {
        let list = |items: &[String]| items.iter().map(|i| quoted(i)).collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            out,
            "shared:\n  files: [{}]\n  dirs: [{}]",
            list(&imported.shared_files),
            list(&imported.shared_dirs)
        );
    }
    out.push_str(
        "# php_fpm: unset, cutover finds the PHP-FPM service on each host and reloads it\n\
         # through `sudo -n`; `cutover plan` prints the commands and the sudo rule.\n\
         defaults:\n  connection: ssh\n  user: deploy\n  # identity_file: ~/.ssh/id_ed25519\n  \
         host_key_checking: strict      # the host's key must be in known_hosts\nhosts:\n",
    );
    hosts(&mut out, &imported.hosts);
    if !imported.left.is_empty() {
        let _ = writeln!(out, "# Not carried over (write what you need as hooks or settings):");
        for line in &imported.left {
            let _ = writeln!(out, "#   {line}");
        }
    }
    out
}

/// The hosts, or one placeholder; the first `primary` (or the first host)
/// gets the `primary` role.
fn hosts(out: &mut String, imported: &[ImportedHost]) {
    if imported.is_empty() {
        out.push_str(
            "  - name: web1\n    address: 203.0.113.10         # a placeholder: your server's address\n    \
             roles: [primary, web]         # the primary runs `once` steps (migrations)\n",
        );
        return;
    }
    let primary = imported.iter().position(|h| h.primary).unwrap_or(0);
    for (i, host) in imported.iter().enumerate() {
        let mut roles: Vec<String> = host.roles.iter().map(|r| name(r)).collect();
        if i == primary && !roles.iter().any(|r| r == "primary") {
            roles.insert(0, "primary".to_owned());
        }
        let _ = writeln!(
            out,
            "  - name: {}\n    address: {}",
            name(&host.name),
            serde_json::to_string(&host.address).unwrap_or_default()
        );
        if let Some(user) = &host.user {
            let _ = writeln!(out, "    user: {}", serde_json::to_string(user).unwrap_or_default());
        }
        if let Some(port) = host.port {
            let _ = writeln!(out, "    port: {port}");
        }
        if !roles.is_empty() {
            let _ = writeln!(out, "    roles: [{}]", roles.join(", "));
        }
    }
}

/// The deploy path: the one carried over when absolute (`~/x` read as the
/// first host's `/home/<user>/x`), else `/var/www/<application>`.
fn deploy_path(imported: &Imported, app: &str) -> String {
    let user = imported.hosts.iter().find_map(|h| h.user.clone()).unwrap_or_else(|| "deploy".to_owned());
    match imported.deploy_path.as_deref() {
        Some(path) if path.starts_with('/') => path.to_owned(),
        Some(path) if path.starts_with("~/") => format!("/home/{user}/{}", &path[2..]),
        _ => format!("/var/www/{app}"),
    }
}

/// A name made of letters, digits, `-`, `_` and `.`.
fn name(text: &str) -> String {
    let cleaned: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' }).collect();
    if cleaned.is_empty() { "app".to_owned() } else { cleaned }
}

/// What was found, for people: `a Laravel application, shop, from
/// git@host:acme/shop.git (main)`.
pub fn describe(found: &Found, imported: &Imported) -> String {
    let framework = match imported.recipe.unwrap_or_else(|| found.framework.recipe()) {
        "laravel" => "a Laravel application",
        "symfony" => "a Symfony application",
        _ => "a PHP application",
    };
    let app = imported.application.as_deref().unwrap_or(&found.application);
    let from = match (&imported.repository, &found.git) {
        (Some(repository), _) => format!("from {repository}"),
        (None, Some((remote, branch))) => format!("from {remote} ({branch})"),
        (None, None) => "uploaded from this directory (no git remote `origin`)".to_owned(),
    };
    let hosts = match imported.hosts.len() {
        0 => String::new(),
        n => format!(", {n} host(s)"),
    };
    format!("{framework}, {app}, {from}{hosts}")
}

/// Writes the inventory for `found` to `path`, never over an existing file.
pub fn write(path: &Path, found: &Found, imported: &Imported) -> Result<(), InitError> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            InitError::Exists(path.to_owned())
        } else {
            InitError::Write(path.to_owned(), e)
        }
    })?;
    file.write_all(inventory(found, imported).as_bytes()).map_err(|e| InitError::Write(path.to_owned(), e))
}

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} exists: `cutover init` never overwrites a file (remove it, or pass --inventory another path)")]
    Exists(PathBuf),
    #[error("could not write {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("could not read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Parse(PathBuf, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_framework_by_its_entry_point() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(inspect(dir.path()).framework, Framework::Php);
        std::fs::create_dir_all(dir.path().join("bin")).expect("bin");
        std::fs::write(dir.path().join("bin/console"), "").expect("console");
        assert_eq!(inspect(dir.path()).framework, Framework::Symfony);
        std::fs::write(dir.path().join("artisan"), "").expect("artisan");
        assert_eq!(inspect(dir.path()).framework, Framework::Laravel);
    }
}
