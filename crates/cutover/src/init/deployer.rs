//! `cutover init --from deployer`: Deployer's `deploy.php` (read as text:
//! its recipe, `set`/`add` of application, repository, branch,
//! deploy_path, keep_releases, shared_files and shared_dirs, and `host()`
//! chains) or `deploy.yaml` (its `import`, `config` and `hosts`). Anything
//! else is listed as left behind.

use std::path::Path;

use serde_json::Value;

use super::InitError;
use super::import::{Imported, number, string, strings};

/// Reads the Deployer settings under `dir`: deploy.php, else deploy.yaml.
pub fn read(dir: &Path) -> Result<Imported, InitError> {
    let php = dir.join("deploy.php");
    let (file, yaml) = if php.exists() { (php, false) } else { (dir.join("deploy.yaml"), true) };
    let text = std::fs::read_to_string(&file).map_err(|e| InitError::Read(file.clone(), e))?;
    let mut imported =
        Imported { files: vec![file.strip_prefix(dir).unwrap_or(&file).display().to_string()], ..Imported::default() };
    if yaml {
        let value: Value = serde_saphyr::from_str(&text).map_err(|e| InitError::Parse(file.clone(), e.to_string()))?;
        from_yaml(&mut imported, &value);
    } else {
        from_php(&mut imported, &text);
    }
    Ok(imported)
}

/// The recipe Deployer's recipe file maps to.
fn recipe(file: &str) -> Option<&'static str> {
    if file.contains("laravel") {
        Some("laravel")
    } else if file.contains("symfony") {
        Some("symfony")
    } else if file.contains("recipe/") {
        Some("php")
    } else {
        None
    }
}

fn from_php(im: &mut Imported, text: &str) {
    // The hosts of the `host(...)` chain being read.
    let mut chain: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(call) = line.strip_prefix("->")
            && !chain.is_empty()
        {
            for address in chain.clone() {
                host_method(im, &address, call);
            }
            continue;
        }
        chain.clear();
        if line.is_empty() || line.starts_with(['/', '*', '#']) || line.starts_with("<?php") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("host(") {
            let (args, calls) = rest.split_once(')').unwrap_or((rest, ""));
            chain = strings(args);
            for address in chain.clone() {
                im.host(&address);
                for call in calls.split("->").skip(1) {
                    host_method(im, &address, call);
                }
            }
        } else if !php_statement(im, line) && !line.starts_with("namespace ") && !line.starts_with(['}', ')']) {
            im.left.push(line.to_owned());
        }
    }
}

/// `require 'recipe/...'`, `set('key', value)`, `add('key', [...])`;
/// whether it was carried over.
fn php_statement(im: &mut Imported, line: &str) -> bool {
    if line.starts_with("require") {
        let mapped = string(line).as_deref().and_then(recipe);
        im.recipe = im.recipe.or(mapped);
        return mapped.is_some();
    }
    let Some(args) = line.strip_prefix("set(").or_else(|| line.strip_prefix("add(")) else { return false };
    let Some(key) = string(args) else { return false };
    let value = args.split_once(',').map_or("", |(_, v)| v);
    setting(im, &key, value)
}

/// One setting by Deployer's name, its value as PHP text.
fn setting(im: &mut Imported, key: &str, value: &str) -> bool {
    let list = |list: &mut Vec<String>| {
        let values = strings(value);
        let found = !values.is_empty();
        Imported::add(list, values);
        found
    };
    let slot = match key {
        "application" => &mut im.application,
        "repository" => &mut im.repository,
        "branch" => &mut im.branch,
        "deploy_path" => &mut im.deploy_path,
        "keep_releases" => return number(value).map(|n| im.keep_releases = Some(n)).is_some(),
        "shared_files" => return list(&mut im.shared_files),
        "shared_dirs" => return list(&mut im.shared_dirs),
        _ => return false,
    };
    *slot = string(value).filter(|v| !v.contains("{{"));
    slot.is_some()
}

/// One `->method(args)` of a host's chain.
fn host_method(im: &mut Imported, address: &str, call: &str) {
    let (name, args) = call.split_once('(').unwrap_or((call, ""));
    let (key, value) = match name.trim() {
        "set" => (string(args).unwrap_or_default(), args.split_once(',').map_or("", |(_, v)| v).to_owned()),
        other => (setter_key(other), args.to_owned()),
    };
    let host = im.host(address);
    match key.as_str() {
        "remote_user" | "user" => host.user = string(&value),
        "hostname" => {
            if let Some(real) = string(&value) {
                host.address = real;
            }
        }
        "port" => host.port = number(&value),
        "roles" => host.roles.extend(strings(&value)),
        "deploy_path" if im.deploy_path.is_none() => im.deploy_path = string(&value),
        _ => im.left.push(format!("host('{address}')->{}", call.trim_end_matches(';'))),
    }
}

/// `setRemoteUser` -> `remote_user`, `setDeployPath` -> `deploy_path`.
fn setter_key(method: &str) -> String {
    let name = method.strip_prefix("set").unwrap_or(method);
    let mut key = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            key.push('_');
        }
        key.push(c.to_ascii_lowercase());
    }
    key
}

fn from_yaml(im: &mut Imported, value: &Value) {
    let text = |v: &Value| match v {
        Value::String(s) => format!("'{s}'"),
        Value::Array(items) => items.iter().map(|i| format!("'{}'", i.as_str().unwrap_or_default())).collect(),
        other => other.to_string(),
    };
    if let Some(import) = value.get("import") {
        let files: Vec<&str> = match import {
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        im.recipe = files.into_iter().find_map(recipe);
    }
    for (key, v) in value.get("config").and_then(Value::as_object).into_iter().flatten() {
        if !setting(im, key, &text(v)) {
            im.left.push(format!("config.{key}: {v}"));
        }
    }
    for (name, settings) in value.get("hosts").and_then(Value::as_object).into_iter().flatten() {
        im.host(name);
        for (key, v) in settings.as_object().into_iter().flatten() {
            host_method(im, name, &format!("set('{key}', {})", text(v)));
        }
    }
    for key in value.as_object().into_iter().flatten().map(|(k, _)| k) {
        if !matches!(key.as_str(), "import" | "config" | "hosts") {
            im.left.push(format!("{key}: ..."));
        }
    }
}
