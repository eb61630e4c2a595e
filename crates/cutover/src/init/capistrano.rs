//! `cutover init --from capistrano`: `config/deploy.rb` and the stage files
//! in `config/deploy/`, read as text. `set`/`append` of application,
//! repo_url, branch, deploy_to, keep_releases, linked_files and linked_dirs
//! carry over, and so do `server` and `role` lines; every other top-level
//! statement is listed as left behind.

use std::path::Path;

use super::InitError;
use super::import::{Imported, number, string, strings};

/// Reads the Capistrano settings under `dir`.
pub fn read(dir: &Path) -> Result<Imported, InitError> {
    let mut files = vec![dir.join("config/deploy.rb")];
    let mut stages: Vec<_> = std::fs::read_dir(dir.join("config/deploy"))
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    stages.retain(|p| p.extension().is_some_and(|e| e == "rb"));
    stages.sort();
    files.extend(stages);
    let mut imported = Imported::default();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| InitError::Read(file.clone(), e))?;
        imported.files.push(file.strip_prefix(dir).unwrap_or(&file).display().to_string());
        for line in text.lines().filter(|l| !l.starts_with([' ', '\t'])) {
            statement(&mut imported, line.trim_end());
        }
    }
    Ok(imported)
}

fn statement(im: &mut Imported, line: &str) {
    if line.is_empty() || line.starts_with('#') || line == "end" || line.starts_with("lock ") {
        return;
    }
    let carried = if let Some(rest) = line.strip_prefix("set :").or_else(|| line.strip_prefix("append :")) {
        setting(im, rest)
    } else if let Some(rest) = line.strip_prefix("server ") {
        server(im, rest)
    } else if let Some(rest) = line.strip_prefix("role :") {
        role(im, rest)
    } else {
        false
    };
    if !carried {
        im.left.push(line.to_owned());
    }
}

/// `set :key, value` or `append :key, values`; whether it was carried over.
fn setting(im: &mut Imported, rest: &str) -> bool {
    let (key, value) = rest.split_once(',').unwrap_or((rest, ""));
    let slot = match key.trim() {
        "application" => &mut im.application,
        "repo_url" => &mut im.repository,
        "branch" => &mut im.branch,
        "deploy_to" => &mut im.deploy_path,
        "keep_releases" => return number(value).map(|n| im.keep_releases = Some(n)).is_some(),
        "linked_files" => return add(&mut im.shared_files, value),
        "linked_dirs" => return add(&mut im.shared_dirs, value),
        _ => return false,
    };
    // A Ruby expression (`ask`, backticks, `fetch`) is not a value.
    let literal = value.trim().starts_with(['"', '\'']) && !value.contains("#{");
    *slot = string(value).filter(|_| literal);
    slot.is_some()
}

fn add(list: &mut Vec<String>, value: &str) -> bool {
    let values = strings(value);
    let found = !values.is_empty();
    Imported::add(list, values);
    found
}

/// `server "host", user: "deploy", roles: %w{app web}, port: 22, primary: true`.
fn server(im: &mut Imported, rest: &str) -> bool {
    let Some(address) = string(rest) else { return false };
    let option = |name: &str| rest.find(name).map(|i| &rest[i + name.len()..]);
    let host = im.host(&address);
    host.user = option("user:").and_then(string);
    host.port = option("port:").and_then(number);
    host.primary = option("primary:").is_some_and(|v| v.trim_start().starts_with("true"));
    if let Some(roles) = option("roles:") {
        host.roles.extend(role_names(roles));
    }
    true
}

/// `role :app, %w{deploy@example.com}`: each host gets the role.
fn role(im: &mut Imported, rest: &str) -> bool {
    let Some((name, hosts)) = rest.split_once(',') else { return false };
    for entry in strings(hosts) {
        let (user, address) = entry.split_once('@').map_or((None, entry.as_str()), |(u, a)| (Some(u), a));
        let host = im.host(address);
        if let Some(user) = user {
            host.user = Some(user.to_owned());
        }
        let role = name.trim().to_owned();
        if !host.roles.contains(&role) {
            host.roles.push(role);
        }
    }
    true
}

/// The roles of `%w{app web}`, `[:app, :web]` or `:app`, up to the end of
/// that value.
fn role_names(value: &str) -> Vec<String> {
    let value = value.trim_start();
    if value.starts_with("%w") {
        return words_of(value);
    }
    let end = if value.starts_with('[') {
        value.find(']').unwrap_or(value.len())
    } else {
        value.find(',').unwrap_or(value.len())
    };
    value[..end]
        .split([',', '[', ' '])
        .map(|w| w.trim().trim_start_matches(':').trim_matches(['"', '\'']))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The words of a `%w{...}` at the start of `value`.
fn words_of(value: &str) -> Vec<String> {
    let end = value.find(['}', ']', ')']).map_or(value.len(), |i| i + 1);
    strings(&value[..end])
}
