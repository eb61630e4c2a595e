//! `cutover init`: a commented `cutover.yaml` for the application in the
//! current directory. It finds the framework (Laravel's `artisan`,
//! Symfony's `bin/console`, plain PHP otherwise), the git remote and branch
//! the hosts would fetch (an upload of the directory when there is none),
//! and writes the recipe, the shared files and directories that framework
//! keeps between releases, and one placeholder host. With `--from
//! capistrano` or `--from deployer` it carries over what that tool's files
//! say instead (see [`capistrano`], [`deployer`]). It never overwrites a
//! file.

pub mod capistrano;
pub mod command;
pub mod deployer;
pub mod imported;
mod value;
mod words;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What was found in the application's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The directory's name, as the application's name.
    pub application: String,
    pub framework: Framework,
    /// The `origin` remote (without credentials), when there is one.
    pub repository: Option<String>,
    /// The branch checked out (none on a detached HEAD, as in CI).
    pub branch: Option<String>,
    /// Whether credentials were removed from the remote's URL.
    pub credentials_removed: bool,
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
    let remote = git(dir, &["remote", "get-url", "origin"]);
    let (repository, credentials_removed) = match remote.as_deref().map(without_credentials) {
        Some((url, removed)) => (Some(url), removed),
        None => (None, false),
    };
    let branch = git(dir, &["symbolic-ref", "--short", "-q", "HEAD"]);
    Found { application, framework, repository, branch, credentials_removed }
}

/// `url` without a `user:password@` (a token) in it, and whether there was
/// one: the inventory is shared, and the hosts authenticate on their own.
pub(crate) fn without_credentials(url: &str) -> (String, bool) {
    let Some((scheme, rest)) = url.split_once("://") else { return (url.to_owned(), false) };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rsplit_once('@') {
        // `ssh://git@host/...` names the user ssh logs in as: no secret.
        Some((user, host)) if is_secret(scheme, user) => (format!("{scheme}://{host}{}", &rest[host_end..]), true),
        _ => (url.to_owned(), false),
    }
}

/// Whether the `user` part of a URL of `scheme` is a credential: any user
/// of an HTTP URL (a token), a `user:password` of any other.
pub(crate) fn is_secret(scheme: &str, user: &str) -> bool {
    matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") || user.contains(':')
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty() && text != "HEAD").then_some(text)
}

/// The inventory for what was found; `source` is this directory as seen
/// from the inventory's own (`.` when it is written here).
pub fn inventory(found: &Found, source: &str) -> String {
    let app = &found.application;
    // JSON strings are YAML's double-quoted scalars: any URL or branch name
    // reads back as written.
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let delivery = match (&found.repository, &found.branch) {
        (Some(repository), branch) => format!(
            "# Every host fetches the repository (give the hosts a deploy key); the\n\
             # branch is resolved to one commit, once, for every host.\n\
             repository: {}\n\
             {}",
            quoted(repository),
            branch.as_ref().map_or_else(|| "# branch: main\n".to_owned(), |b| format!("branch: {}\n", quoted(b)))
        ),
        (None, _) => format!(
            "# No git remote found: this directory is uploaded to every host.\n\
             source: {}\n\
             exclude: [vendor, node_modules, .cutover]\n",
            quoted(source)
        ),
    };
    let recipe = found.framework.recipe();
    let shared = found.framework.shared();
    let quoted_app = quoted(app);
    format!(
        "# cutover.yaml for {app}, written by `cutover init`: see docs/inventory.md.\n\
         # Check the hosts with `cutover check`; see every command with `cutover plan`.\n\
         application: {quoted_app}\n\
         deploy_path: \"/var/www/{app}\"      # absolute; the same on every host\n\
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
    let from = match (&found.repository, &found.branch) {
        (Some(repository), Some(branch)) => format!("from {repository} ({branch})"),
        (Some(repository), None) => format!("from {repository} (no branch checked out: set `branch`)"),
        (None, _) => "uploaded from this directory (no git remote `origin`)".to_owned(),
    };
    format!("{framework}, {}, {from}", found.application)
}

/// Writes the inventory for `found` to `path`, never over an existing file.
pub fn write(path: &Path, found: &Found, source: &str) -> Result<(), InitError> {
    write_text(path, &inventory(found, source))
}

/// Writes `text` to `path`, never over an existing file.
pub fn write_text(path: &Path, text: &str) -> Result<(), InitError> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            InitError::Exists(path.to_owned())
        } else {
            InitError::Write(path.to_owned(), e)
        }
    })?;
    file.write_all(text.as_bytes()).map_err(|e| InitError::Write(path.to_owned(), e))
}

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} exists: `cutover init` never overwrites a file (remove it, or pass --inventory another path)")]
    Exists(PathBuf),
    #[error("could not write {0}: {1}")]
    Write(PathBuf, std::io::Error),
}

/// This directory as seen from the directory of the inventory at `path`
/// (relative, made only of normal components, or absolute).
pub fn source_from(path: &Path) -> String {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    match parent {
        None => ".".to_owned(),
        Some(p) if p.is_relative() && p.components().all(|c| matches!(c, std::path::Component::Normal(_))) => {
            vec![".."; p.components().count()].join("/")
        }
        Some(_) => std::path::absolute(".").map_or_else(|_| ".".to_owned(), |d| d.display().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_credentials_out_of_a_remote_and_finds_this_directory_from_the_inventory() {
        let token = "https://me:ghp_secret@github.com/acme/shop.git";
        assert_eq!(without_credentials(token), ("https://github.com/acme/shop.git".to_owned(), true));
        let ssh = "git@github.com:acme/shop.git";
        assert_eq!(without_credentials(ssh), (ssh.to_owned(), false));
        let port = "ssh://git@gitlab.example.com:2222/grp/app.git";
        assert_eq!(without_credentials(port), (port.to_owned(), false), "the user ssh logs in as");
        assert_eq!(value::hide_credentials(port), port);
        assert_eq!(value::hide_credentials("'https://ghp_x@github.com/a.git'"), "'https://***@github.com/a.git'");
        assert_eq!(source_from(Path::new("cutover.yaml")), ".");
        assert_eq!(source_from(Path::new("deploy/prod/cutover.yaml")), "../..");
    }

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
