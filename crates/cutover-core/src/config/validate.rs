//! Checks a parsed inventory or recipe for what YAML types cannot say:
//! absolute paths, one code source, unique host names, known strategies.
//!
//! Errors here carry no file name; the loader fills it in.

use std::collections::HashMap;
use std::path::Path;

use super::error::ConfigError;
use super::inventory::{Activation, Connection, Inventory};
use super::recipe::{Hooks, Recipe, Step};
use crate::shell::is_identifier;

pub(super) fn error(message: impl Into<String>) -> ConfigError {
    ConfigError::new(Path::new(""), message)
}

pub(super) fn inventory(inv: &Inventory, dir: &Path) -> Result<(), ConfigError> {
    deploy_path(inv)?;
    if inv.keep_releases.value < 2 {
        return Err(error("must be at least 2 (the current release and the one before it)")
            .at(&inv.keep_releases.referenced)
            .field("keep_releases"));
    }
    code_source(inv, dir)?;
    shared(inv)?;
    rendered(inv, dir)?;
    vars(inv)?;
    secrets(inv)?;
    if inv.step_timeout.value == 0 {
        return Err(error("must be at least 1 second").at(&inv.step_timeout.referenced).field("step_timeout"));
    }
    if let Some(check) = &inv.health_check
        && check.value.url.is_some() == check.value.command.is_some()
    {
        return Err(error("give either `url` or `command`").at(&check.referenced).field("health_check"));
    }
    if inv.concurrency.value == 0 {
        return Err(error("must be at least 1").at(&inv.concurrency.referenced).field("concurrency"));
    }
    hosts(inv)?;
    activation(inv)?;
    super::ssh_values::check(inv)?;
    super::local_hooks::check(&inv.local_hooks)?;
    hooks(&inv.hooks)
}

fn deploy_path(inv: &Inventory) -> Result<(), ConfigError> {
    let path = inv.deploy_path.value.trim_end_matches('/');
    let problem = if !inv.deploy_path.value.starts_with('/') {
        Some("must be an absolute path")
    } else if path.is_empty() {
        Some("must not be the root directory")
    } else if path.split('/').any(|part| part == ".." || part == ".") {
        Some("must not contain `.` or `..`")
    } else if path.contains(char::is_control) {
        Some("must not contain a control character (a newline, a tab, NUL)")
    } else if path.contains("{{") {
        // Another tool's placeholder (`{{release_name}}`): never a
        // directory to create as written.
        Some("must be written out in full, without a `{{...}}` placeholder")
    } else {
        None
    };
    match problem {
        Some(message) => Err(error(format!("{message}, got `{}`", inv.deploy_path.value))
            .at(&inv.deploy_path.referenced)
            .field("deploy_path")
            .hint("for example `deploy_path: /var/www/app`")),
        None => Ok(()),
    }
}

fn code_source(inv: &Inventory, dir: &Path) -> Result<(), ConfigError> {
    match (&inv.repository, &inv.source) {
        (Some(_), Some(source)) => {
            Err(error("give either `repository` or `source`, not both").at(&source.referenced).field("source"))
        }
        (None, None) => {
            Err(error("no code source: set `repository` (git) or `source` (a local directory)").field("repository"))
        }
        (None, Some(source)) => {
            if inv.branch.is_some() || inv.revision.is_some() {
                return Err(error("`branch` and `revision` need `repository`, not `source`")
                    .at(&source.referenced)
                    .field("source"));
            }
            let full = dir.join(&source.value);
            if !full.is_dir() {
                return Err(error(format!("source directory `{}` does not exist", full.display()))
                    .at(&source.referenced)
                    .field("source"));
            }
            Ok(())
        }
        (Some(_), None) => Ok(()),
    }
}

/// Shared paths are linked into every release with `rm -rf` first: each
/// must stay inside the release.
fn shared(inv: &Inventory) -> Result<(), ConfigError> {
    let all = inv.shared.dirs.iter().enumerate().map(|(i, p)| (format!("shared.dirs[{i}]"), p));
    let all = all.chain(inv.shared.files.iter().enumerate().map(|(i, p)| (format!("shared.files[{i}]"), p)));
    for (field, path) in all {
        if let Some(problem) = relative_problem(&path.value) {
            return Err(error(format!("`{}` {problem}", path.value))
                .at(&path.referenced)
                .field(field)
                .hint("a path inside the release, like `storage` or `config/app.ini`"));
        }
    }
    for (i, pattern) in inv.exclude.iter().enumerate() {
        if let Err(e) = globset::Glob::new(pattern.value.trim_end_matches('/')) {
            return Err(error(format!("not a glob pattern: {e}"))
                .at(&pattern.referenced)
                .field(format!("exclude[{i}]")));
        }
    }
    Ok(())
}

/// Rendered shared files: a path like any shared file's, a template that
/// can be read, and each `{{ NAME }}` in it a var (of every host) or a
/// secret.
fn rendered(inv: &Inventory, dir: &Path) -> Result<(), ConfigError> {
    for (path, template) in &inv.shared.render {
        let field = format!("shared.render.{path}");
        let fail = |message: String| Err(error(message).at(&template.referenced).field(field.clone()));
        if let Some(problem) = relative_problem(path) {
            return fail(format!("`{path}` {problem}"));
        }
        if inv.shared.files.iter().chain(&inv.shared.dirs).any(|s| &s.value == path) {
            return fail(format!(
                "`{path}` is also shared: a rendered file is written into each release, a shared one lives in shared/"
            ));
        }
        let file = dir.join(&template.value);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => return fail(format!("could not read the template {}: {e}", file.display())),
        };
        let placeholders = match crate::template::placeholders(&text) {
            Ok(found) => found,
            Err(why) => return fail(format!("template {}: {why}", file.display())),
        };
        if let Some(unknown) = placeholders.iter().find(|p| !inv.has_value_for(&p.name)) {
            return fail(format!(
                "template {} line {}: `{}` is neither a secret nor a var (of every host)",
                file.display(),
                unknown.line,
                unknown.name
            ));
        }
    }
    Ok(())
}

/// Why `path` is not a plain relative path inside a directory, if it is not.
fn relative_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        Some("is empty")
    } else if path.starts_with('/') {
        Some("must be relative")
    } else if path.ends_with('/') {
        Some("must not end with `/`")
    } else if path.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        Some("must not contain `.`, `..` or `//`")
    } else if path.contains(char::is_control) {
        Some("must not contain a control character (a newline, a tab, NUL)")
    } else if path.contains("{{") {
        // Another tool's placeholder (`{{release_name}}`): never a
        // directory to create as written.
        Some("must be written out in full, without a `{{...}}` placeholder")
    } else {
        None
    }
}

/// Names the step scripts use for themselves.
const RESERVED_VARS: &[&str] = &["d", "r", "rel", "w", "s", "t", "PATH", "HOME", "IFS"];

/// Variables become shell variables on the hosts: identifiers only, and not
/// cutover's own.
fn vars(inv: &Inventory) -> Result<(), ConfigError> {
    let host_vars =
        inv.hosts.iter().enumerate().flat_map(|(i, h)| h.vars.iter().map(move |v| (format!("hosts[{i}].vars"), v)));
    for (field, (name, value)) in inv.vars.iter().map(|v| ("vars".to_owned(), v)).chain(host_vars) {
        let problem = if !is_identifier(name) {
            Some("is not a shell variable name (letters, digits and `_`, not starting with a digit)")
        } else if RESERVED_VARS.contains(&name.as_str()) || name.starts_with("CUTOVER_") || name.starts_with("cutover_")
        {
            Some("is reserved for cutover")
        } else if value.value.contains('\0') {
            Some("has a NUL byte in its value, which no environment variable can hold")
        } else {
            None
        };
        if let Some(problem) = problem {
            // The value's position: the key's own is not kept, and the two
            // share a line in the usual `NAME: value`.
            return Err(error(format!("`{name}` {problem}")).at(&value.referenced).field(format!("{field}.{name}")));
        }
    }
    Ok(())
}

/// Secrets become environment variables of the steps, like vars: the same
/// names, none also a var, each read from exactly one place.
fn secrets(inv: &Inventory) -> Result<(), ConfigError> {
    for (name, source) in &inv.secrets {
        let field = format!("secrets.{name}");
        let problem = if !is_identifier(name) {
            Some("is not a shell variable name (letters, digits and `_`, not starting with a digit)".to_owned())
        } else if RESERVED_VARS.contains(&name.as_str()) || name.starts_with("CUTOVER_") || name.starts_with("cutover_")
        {
            Some("is reserved for cutover".to_owned())
        } else if inv.vars.contains_key(name) || inv.hosts.iter().any(|h| h.vars.contains_key(name)) {
            Some("is also a var: a name is either".to_owned())
        } else {
            let s = &source.value;
            let given = [s.value.is_some(), s.env.is_some(), s.command.is_some(), s.file.is_some()];
            (given.iter().filter(|g| **g).count() != 1)
                .then(|| "needs exactly one of `value`, `env`, `command` or `file`".to_owned())
        };
        if let Some(problem) = problem {
            return Err(error(format!("`{name}` {problem}")).at(&source.referenced).field(field).hint(
                "for example `APP_KEY: {env: APP_KEY}` or `DB_PASSWORD: {command: op read op://prod/db/password}`",
            ));
        }
    }
    Ok(())
}

fn hosts(inv: &Inventory) -> Result<(), ConfigError> {
    if inv.hosts.is_empty() {
        return Err(error("at least one host is needed").field("hosts"));
    }
    let mut seen: HashMap<&str, u64> = HashMap::new();
    let mut primaries = 0;
    for (i, host) in inv.hosts.iter().enumerate() {
        let name = host.name.value.as_str();
        let field = format!("hosts[{i}].name");
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('/') {
            return Err(error(format!("`{name}` is not a valid host name (no spaces or slashes)"))
                .at(&host.name.referenced)
                .field(field));
        }
        if let Some(first) = seen.insert(name, host.name.referenced.line()) {
            return Err(error(format!("duplicate host name `{name}` (first defined on line {first})"))
                .at(&host.name.referenced)
                .field(field));
        }
        let connection = host.settings(&inv.defaults).connection.unwrap_or_default();
        if connection == Connection::Local && host.address.is_none() {
            return Err(error("a local host needs `address`: the directory that stands for the host")
                .at(&host.name.referenced)
                .field(format!("hosts[{i}].address")));
        }
        if host.roles.value.iter().any(|r| r == "primary") {
            primaries += 1;
            if primaries > 1 {
                return Err(error("more than one host has the role `primary`")
                    .at(&host.roles.referenced)
                    .field(format!("hosts[{i}].roles")));
            }
        }
    }
    Ok(())
}

/// A step limited to roles must have a host to run on: a step that would
/// never run is a mistake, not a no-op. `recipe` is `None` for the
/// inventory's own hooks.
pub(super) fn step_roles(inv: &Inventory, hooks: &Hooks, recipe: Option<&str>) -> Result<(), ConfigError> {
    for (hook, steps) in hooks.all() {
        for (i, step) in steps.iter().enumerate() {
            let Some(role) = step.roles.iter().find(|r| !inv.hosts.iter().any(|h| h.roles.value.contains(r))) else {
                continue;
            };
            let whose = recipe.map(|r| format!(" (recipe {r})")).unwrap_or_default();
            let field = format!("hooks.{hook}[{i}].roles");
            let message =
                format!("step `{}`{whose} runs on role `{role}`, which no host has: it would never run", step.name);
            let err = error(message).field(field).hint("give a host that role, or remove it from the step's `roles`");
            return Err(if recipe.is_none() { err.at(&step.run.referenced) } else { err });
        }
    }
    Ok(())
}

pub(super) fn recipe(recipe: &Recipe) -> Result<(), ConfigError> {
    hooks(&recipe.hooks)
}

fn hooks(hooks: &Hooks) -> Result<(), ConfigError> {
    for (hook, steps) in hooks.all() {
        for (i, step) in steps.iter().enumerate() {
            check_step(step).map_err(|e| {
                let field = format!("hooks.{hook}[{i}].{}", e.field.as_deref().unwrap_or("run"));
                e.field(field)
            })?;
            if step.reuse.is_some() && hook != "build" {
                let message = format!(
                    "step `{}`: `reuse` seeds a directory of a release being built: build steps only",
                    step.name
                );
                return Err(error(message).at(&step.run.referenced).field(format!("hooks.{hook}[{i}].reuse")));
            }
        }
    }
    Ok(())
}

fn check_step(step: &Step) -> Result<(), ConfigError> {
    if step.run.value.trim().is_empty() {
        return Err(error(format!("step `{}` has an empty command", step.name)).at(&step.run.referenced));
    }
    if let Some(timeout) = step.timeout.as_ref().filter(|t| t.value == 0) {
        return Err(error("must be at least 1 second").at(&timeout.referenced).field("timeout"));
    }
    if let Some(when) = &step.when
        && (when.value.exists.starts_with('/') || when.value.exists.split('/').any(|p| p == ".."))
    {
        return Err(error("must be a path inside the release").at(&when.referenced).field("when.exists"));
    }
    Ok(())
}

/// `php_fpm.activation` and what it needs: the two masters for
/// blue-green. (`php_fpm.reload` may stay set with warm or blue-green:
/// `--activation reload` uses it.) Also run when `--activation` chose
/// another mode than the file's.
pub fn activation(inv: &Inventory) -> Result<(), ConfigError> {
    let fpm = &inv.php_fpm;
    let activation = fpm.activation();
    let at = |e: ConfigError| match &fpm.activation {
        Some(a) => e.at(&a.referenced),
        None => e,
    };
    if fpm.socket.as_deref().is_some_and(|s| s.trim().is_empty() || s.contains(char::is_control)) {
        return Err(at(error("must be a socket path or host:port")).field("php_fpm.socket"));
    }
    match (&fpm.blue_green, activation) {
        (None, Activation::BlueGreen) => Err(at(error(
            "activation blue-green needs `php_fpm.blue_green`: the link nginx connects through and the two masters",
        ))
        .field("php_fpm.blue_green")
        .hint("see docs/nginx-php-fpm.md, \"blue-green\"")),
        (Some(bg), Activation::BlueGreen) => {
            let b = &bg.value;
            let paths = [("link", &b.link), ("blue.socket", &b.blue.socket), ("green.socket", &b.green.socket)];
            for (name, path) in paths {
                if !path.starts_with('/') || path.contains(char::is_control) || path.split('/').any(|p| p == "..") {
                    return Err(error(format!("must be an absolute path, got `{path}`"))
                        .at(&bg.referenced)
                        .field(format!("php_fpm.blue_green.{name}")));
                }
            }
            for (name, config) in [("blue.config", &b.blue.config), ("green.config", &b.green.config)] {
                let Some(path) = config else { continue };
                let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+@".contains(c);
                if !path.starts_with('/') || !path.chars().all(plain) {
                    return Err(error(format!(
                        "must be an absolute path of letters, digits and `/._-+@`, got `{path}`"
                    ))
                    .at(&bg.referenced)
                    .field(format!("php_fpm.blue_green.{name}")));
                }
            }
            if b.link == b.blue.socket || b.link == b.green.socket || b.blue.socket == b.green.socket {
                return Err(error("the link and the two sockets must be three different paths")
                    .at(&bg.referenced)
                    .field("php_fpm.blue_green"));
            }
            for (name, command) in [
                ("blue.start", &b.blue.start),
                ("blue.stop", &b.blue.stop),
                ("green.start", &b.green.start),
                ("green.stop", &b.green.stop),
            ] {
                if command.trim().is_empty() {
                    return Err(error("must be a command")
                        .at(&bg.referenced)
                        .field(format!("php_fpm.blue_green.{name}")));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
