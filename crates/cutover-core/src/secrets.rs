//! Secrets: declared by name in the inventory, read once at the start of a
//! run on the machine running cutover (an environment variable, a command,
//! a file), sent to a host only on the stdin of the scripts that run steps,
//! and masked in everything cutover shows or keeps.
//!
//! A value never reaches a command line: a step's script starts with
//! [`PROLOGUE`], which reads `NAME base64` lines from stdin up to a `.` line
//! and exports each, before anything else reads stdin (an upload's tar
//! stream follows). Shell `read` takes a pipe one byte at a time, so the
//! rest of stdin is left as it was. The files rendered from templates into
//! each release (`shared.render`) travel the same way to the prepare
//! script alone, as `cutover_file_<n>`, which it writes and unsets before
//! any step runs.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use indexmap::IndexMap;

use crate::config::LoadedInventory;
use crate::config::inventory::SecretSource;
use crate::config::rollout::HookPlace;
use crate::event::CommandKind;
use crate::template;

/// What a masked value is shown as.
pub const MASK: &str = "********";

/// Values shorter than this are not masked (masking `a` would garble every
/// line); docs/inventory.md says so.
const SHORTEST_MASKED: usize = 4;

/// The lines that read the secrets from stdin and export them; first in
/// every script that runs steps.
pub const PROLOGUE: &str = r#"while IFS=' ' read -r cutover_n cutover_v; do [ "$cutover_n" = . ] && break; cutover_v=$(printf '%s' "$cutover_v" | base64 -d; printf x); export "$cutover_n=${cutover_v%x}"; done; unset cutover_n cutover_v"#;

/// A secret (or a rendered file's template) that could not be read: the
/// run stops before any host is touched. Never holds a value.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {why}")]
pub struct SecretError {
    /// "secret `NAME`", or "the template of shared file `.env`".
    pub what: String,
    pub why: String,
}

/// The secrets of a run, read, and the templates of the shared files
/// rendered from them. Debug output names the secrets only.
#[derive(Clone, Default)]
pub struct Secrets {
    values: Vec<(String, String)>,
    /// What [`Secrets::mask`] replaces, longest first.
    needles: Vec<String>,
    /// The templates of `shared.render`, in order.
    templates: Vec<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.values.iter().map(|(name, _)| name)).finish()
    }
}

impl Secrets {
    /// What a run of `command` needs: every secret and template for a
    /// deploy; for a rollback the secrets only when a step runs (its
    /// `after_rollback` steps, or batch hooks on the hosts), so that a
    /// rollback never waits on a secret store it does not use.
    pub fn read_for(loaded: &LoadedInventory, command: CommandKind) -> Result<Self, SecretError> {
        let inv = &loaded.inventory;
        match command {
            CommandKind::Deploy => Self::read(loaded),
            CommandKind::Rollback => {
                let steps = !loaded.recipe.hooks.after_rollback.is_empty() || !inv.hooks.after_rollback.is_empty();
                let on_hosts = [&inv.rolling.drain, &inv.rolling.undrain]
                    .into_iter()
                    .any(|h| h.as_ref().is_some_and(|h| h.on == HookPlace::Hosts));
                if steps || on_hosts {
                    Ok(Self { templates: Vec::new(), ..Self::read(loaded)? })
                } else {
                    Ok(Self::default())
                }
            }
            _ => Ok(Self::default()),
        }
    }

    /// Secrets shorter than masking covers: said once, at the start.
    pub fn unmasked(&self) -> Vec<&str> {
        self.values.iter().filter(|(_, v)| v.trim().len() < SHORTEST_MASKED).map(|(n, _)| n.as_str()).collect()
    }

    /// Reads every secret the inventory declares, in order; the first that
    /// cannot be read is the error.
    pub fn read(loaded: &LoadedInventory) -> Result<Self, SecretError> {
        let mut values = Vec::new();
        for (name, source) in &loaded.inventory.secrets {
            let value = read_one(&source.value, &loaded.dir)
                .and_then(checked)
                .map_err(|why| SecretError { what: format!("secret `{name}`"), why })?;
            values.push((name.clone(), value));
        }
        let mut templates = Vec::new();
        for (path, template) in &loaded.inventory.shared.render {
            let file = loaded.dir.join(&template.value);
            let what = || format!("the template of `{path}`");
            let text = std::fs::read_to_string(&file)
                .map_err(|e| SecretError { what: what(), why: format!("could not read {}: {e}", file.display()) })?;
            // Read again since the inventory was checked: checked again.
            let placeholders = template::placeholders(&text).map_err(|why| SecretError { what: what(), why })?;
            if let Some(unknown) = placeholders.iter().find(|p| !loaded.inventory.has_value_for(&p.name)) {
                let why =
                    format!("line {}: `{}` is neither a secret nor a var (of every host)", unknown.line, unknown.name);
                return Err(SecretError { what: what(), why });
            }
            templates.push(text);
        }
        Ok(Self { templates, ..Self::from_values(values) })
    }

    /// Secrets with these values (tests).
    pub fn from_values(values: Vec<(String, String)>) -> Self {
        let mut needles: Vec<String> = values
            .iter()
            .flat_map(|(_, v)| std::iter::once(v.as_str()).chain(v.lines()))
            .map(str::trim)
            .filter(|n| n.len() >= SHORTEST_MASKED)
            .map(str::to_owned)
            .collect();
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Self { values, needles, templates: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret value (and every line of a value of several
    /// lines) replaced by [`MASK`].
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = Cow::Owned(text.replace(needle.as_str(), MASK));
            }
        }
        text
    }

    /// What a step's script reads first from its stdin (see [`PROLOGUE`]):
    /// each secret, then, for the script that writes them (`files`), each
    /// rendered file as `cutover_file_<n>`, its placeholders filled from
    /// the secrets and this host's `vars`.
    pub fn stdin_block(&self, vars: &IndexMap<String, String>, files: bool) -> Vec<u8> {
        let mut block = String::new();
        let mut entry = |name: &str, value: &str| {
            block.push_str(name);
            block.push(' ');
            block.push_str(&STANDARD.encode(value));
            block.push('\n');
        };
        for (name, value) in &self.values {
            entry(name, value);
        }
        for (i, template) in self.templates.iter().enumerate().filter(|_| files) {
            let secret = |name: &str| self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
            let rendered =
                template::render(template, |name| secret(name).or_else(|| vars.get(name).map(String::as_str)));
            entry(&rendered_file_variable(i), &rendered);
        }
        block.push_str(".\n");
        block.into_bytes()
    }
}

/// The shell variable that holds the `n`th rendered shared file until the
/// prepare script writes it.
pub fn rendered_file_variable(n: usize) -> String {
    format!("cutover_file_{n}")
}

fn read_one(source: &SecretSource, dir: &Path) -> Result<String, String> {
    if let Some(value) = &source.value {
        return match (&source.env, &source.command, &source.file) {
            (None, None, None) => Ok(value.clone()),
            _ => Err("give exactly one of `value`, `env`, `command` or `file`".to_owned()),
        };
    }
    match (&source.env, &source.command, &source.file) {
        (Some(var), None, None) => match std::env::var(var) {
            Ok(value) => Ok(value),
            Err(std::env::VarError::NotPresent) => Err(format!("the environment variable `{var}` is not set")),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!("the environment variable `{var}` is not UTF-8")),
        },
        (None, Some(command), None) => {
            let out = Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(dir)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("`{command}` could not start: {e}"))?;
            if !out.status.success() {
                // What it said is not shown: it may hold a value.
                let code = out.status.code().map_or_else(|| "a signal".to_owned(), |c| format!("exit code {c}"));
                return Err(format!("`{command}` failed with {code} (run it yourself to see why)"));
            }
            String::from_utf8(out.stdout).map(without_newline).map_err(|_| format!("`{command}` printed no UTF-8"))
        }
        (None, None, Some(file)) => {
            let path = dir.join(file);
            std::fs::read_to_string(&path)
                .map(without_newline)
                .map_err(|e| format!("could not read {}: {e}", path.display()))
        }
        _ => Err("give exactly one of `env`, `command` or `file`".to_owned()),
    }
}

/// A command's or a file's text without the one newline that ends it.
fn without_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// The most a value may hold: it becomes an environment variable on the
/// host, and Linux refuses to start a program with one of 128 KiB or more.
const LARGEST: usize = 100 * 1024;

fn checked(value: String) -> Result<String, String> {
    if value.is_empty() {
        Err("is empty".to_owned())
    } else if value.len() > LARGEST {
        Err(format!(
            "is {} KiB, more than the {} KiB an environment variable can hold",
            value.len() / 1024,
            LARGEST / 1024
        ))
    } else if value.contains('\0') {
        Err("has a NUL byte, which no environment variable can hold".to_owned())
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests;
