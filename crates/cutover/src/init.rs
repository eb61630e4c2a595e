//! `cutover init`: a commented `cutover.yaml` for the application in the
//! current directory. It finds the framework (Laravel's `artisan`,
//! Symfony's `bin/console`, plain PHP otherwise), the git remote and branch
//! the hosts would fetch (an upload of the directory when there is none),
//! and writes the recipe, the shared files and directories that framework
//! keeps between releases, and one placeholder host. It never overwrites a
//! file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

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
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .map(|n| n.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect())
        .filter(|n: &String| !n.is_empty())
        .unwrap_or_else(|| "app".to_owned());
    let git = git(dir, &["remote", "get-url", "origin"]).zip(git(dir, &["rev-parse", "--abbrev-ref", "HEAD"]));
    Found { application, framework, git }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty() && text != "HEAD").then_some(text)
}

/// The inventory for what was found.
pub fn inventory(found: &Found) -> String {
    let app = &found.application;
    // JSON strings are YAML's double-quoted scalars: any URL or branch name
    // reads back as written.
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let delivery = match &found.git {
        Some((remote, branch)) => format!(
            "# Every host fetches the repository (give the hosts a deploy key); the\n\
             # branch is resolved to one commit, once, for every host.\n\
             repository: {}\n\
             branch: {}\n",
            quoted(remote),
            quoted(branch)
        ),
        None => "# No git remote found: this directory is uploaded to every host.\n\
                 source: .\n\
                 exclude: [vendor, node_modules, .cutover]\n"
            .to_owned(),
    };
    let recipe = found.framework.recipe();
    let shared = found.framework.shared();
    format!(
        "# cutover.yaml for {app}, written by `cutover init`: see docs/inventory.md.\n\
         # Check the hosts with `cutover check`; see every command with `cutover plan`.\n\
         application: {app}\n\
         deploy_path: /var/www/{app}        # absolute; the same on every host\n\
         keep_releases: 5\n\
         {delivery}\
         recipe: {recipe}                    # php, laravel, symfony, or a path to your own\n\
         {shared}\
         # php_fpm: unset, cutover finds the PHP-FPM service on each host and reloads it\n\
         # through `sudo -n`; `cutover plan` prints the commands and the sudo rule.\n\
         defaults:\n\
         \x20 connection: ssh\n\
         \x20 user: deploy\n\
         \x20 # identity_file: ~/.ssh/id_ed25519\n\
         \x20 host_key_checking: strict      # the host's key must be in known_hosts\n\
         hosts:\n\
         \x20 - name: web1\n\
         \x20   address: 203.0.113.10         # a placeholder: your server's address\n\
         \x20   roles: [primary, web]         # the primary runs `once` steps (migrations)\n"
    )
}

/// What was found, for people: `a Laravel application, shop, from
/// git@host:acme/shop.git (main)`.
pub fn describe(found: &Found) -> String {
    let framework = match found.framework {
        Framework::Laravel => "a Laravel application",
        Framework::Symfony => "a Symfony application",
        Framework::Php => "a PHP application",
    };
    let from = match &found.git {
        Some((remote, branch)) => format!("from {remote} ({branch})"),
        None => "uploaded from this directory (no git remote `origin`)".to_owned(),
    };
    format!("{framework}, {}, {from}", found.application)
}

/// Writes the inventory for `found` to `path`, never over an existing file.
pub fn write(path: &Path, found: &Found) -> Result<(), InitError> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            InitError::Exists(path.to_owned())
        } else {
            InitError::Write(path.to_owned(), e)
        }
    })?;
    file.write_all(inventory(found).as_bytes()).map_err(|e| InitError::Write(path.to_owned(), e))
}

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} exists: `cutover init` never overwrites a file (remove it, or pass --inventory another path)")]
    Exists(PathBuf),
    #[error("could not write {0}: {1}")]
    Write(PathBuf, std::io::Error),
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
