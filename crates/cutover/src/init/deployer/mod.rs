//! `init --from deployer`: reads Deployer's `deploy.php` (without running
//! PHP) or `deploy.yaml`. The recipe's own shared paths come first, as
//! Deployer has them (`require 'recipe/laravel.php'` shares `.env` and
//! `storage`), then `add(...)` extends them and `set(...)` replaces them.
//! Hosts keep their order; a host's `stage` label makes it part of that
//! environment; `{{application}}` in a value is the application's name. A
//! value that is an expression, a task, a hook or a setting cutover has no
//! use for is listed as not carried over, with its line.

use std::path::Path;

use indexmap::IndexMap;

mod yaml;

use cutover_core::config::environment::is_plain_name;
use cutover_core::config::ssh_values;

use super::Framework;
use super::imported::{self, Imported, Stage};
use super::value::{Value, arguments};
use super::words::{Language, Statement, Word, statements};

/// Reads `deploy.php`, or else `deploy.yaml`, in `dir`.
pub fn read(dir: &Path) -> Result<Imported, String> {
    if let Ok(text) = std::fs::read_to_string(dir.join("deploy.php")) {
        return Ok(from_php(&text));
    }
    match std::fs::read_to_string(dir.join("deploy.yaml")) {
        Ok(text) => yaml::read(&text),
        Err(_) => Err("no deploy.php or deploy.yaml here (run `cutover init --from deployer` where they are)".into()),
    }
}

/// A host as Deployer has it, before it is placed in a stage.
#[derive(Debug, Default)]
struct DeployerHost {
    /// Where it is written (`deploy.php:14`, `deploy.yaml: hosts.prod`).
    at: String,
    alias: String,
    hostname: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    deploy_path: Option<String>,
    branch: Option<String>,
    stage: Option<String>,
    roles: Vec<String>,
}

/// What is read, in order.
#[derive(Debug, Default)]
struct Reading {
    imported: Imported,
    /// `set('deploy_path', ...)` and `set('remote_user', ...)` of every host.
    deploy_path: Option<String>,
    user: Option<String>,
    hosts: Vec<DeployerHost>,
    /// Why parts of the statement read last were not carried over.
    partly: Vec<String>,
    /// Where the statement read last is (`deploy.php:14`).
    at: String,
}

fn from_php(text: &str) -> Imported {
    let mut reading = Reading {
        imported: Imported { read: vec!["deploy.php".into()], default_keep: 10, ..Imported::default() },
        ..Reading::default()
    };
    for statement in statements(text, Language::Php) {
        reading.at = format!("deploy.php:{}", statement.line);
        let whole = php_statement(&mut reading, &statement).err();
        for why in whole.into_iter().chain(std::mem::take(&mut reading.partly)) {
            reading.imported.left.push(format!("deploy.php:{}: `{}`: {why}", statement.line, statement.shown(text)));
        }
    }
    reading.finish("deploy.php")
}

fn php_statement(reading: &mut Reading, statement: &Statement) -> Result<(), String> {
    let words = &statement.words;
    let Some(Word::Name(head)) = words.first() else { return Err("not understood".into()) };
    match head.as_str() {
        "namespace" | "use" => Ok(()),
        "require" | "require_once" | "import" => match words.get(1) {
            Some(Word::Str(file)) => reading.recipe(file),
            Some(Word::Punct('(')) => match arguments(words, 1).and_then(|(a, _)| Value::of(a.first()?)) {
                Some(Value::Str(file)) => reading.recipe(&file),
                _ => Err("not understood".into()),
            },
            _ => Err("not understood".into()),
        },
        "set" | "add" => {
            let (args, _) = arguments(words, 1).ok_or("not understood")?;
            let [key, value @ ..] = args.as_slice() else { return Err("not understood".into()) };
            let Some(Value::Str(key)) = Value::of(key) else { return Err("a setting named by an expression".into()) };
            let value = value.first().and_then(|v| Value::of(v));
            reading.setting(head == "add", &key, value)
        }
        "host" => host_chain(reading, words),
        "localhost" => Err("a localhost host is not carried over: cutover deploys over SSH".into()),
        "task" | "after" | "before" | "desc" | "fail" | "option" | "on" | "run" | "runLocally" => {
            Err("tasks and hooks are not carried over: write them as the inventory's hooks (docs/recipes.md)".into())
        }
        _ => Err("not carried over".into()),
    }
}

/// `host('a', 'b')->set('remote_user', 'deploy')->setLabels([...])...`.
fn host_chain(reading: &mut Reading, words: &[Word]) -> Result<(), String> {
    let (args, mut i) = arguments(words, 1).ok_or("not understood")?;
    let aliases: Option<Vec<String>> = args.iter().map(|a| Value::of(a).and_then(|v| v.text())).collect();
    let aliases = aliases.ok_or("a host named by an expression")?;
    let mut settings: Vec<(String, Option<Value>)> = Vec::new();
    while let [Word::Call, Word::Name(method), ..] = &words[i..] {
        let (args, end) = arguments(words, i + 2).ok_or("not understood")?;
        let values: Vec<Option<Value>> = args.iter().map(|a| Value::of(a)).collect();
        let (key, value) = match (method.as_str(), values.as_slice()) {
            ("set" | "add", [Some(Value::Str(key)), value]) => (key.clone(), value.clone()),
            ("set" | "add", _) => return Err("a host setting named by an expression".into()),
            // `setRemoteUser('deploy')` is `set('remote_user', 'deploy')`.
            (setter, [value]) if setter.starts_with("set") => (snake(&setter[3..]), value.clone()),
            // Deployer 6: `->roles('app', 'worker')`, every one of them.
            ("roles", values) => {
                let roles: Option<Vec<String>> = values.iter().map(|v| v.as_ref().and_then(Value::text)).collect();
                ("roles".to_owned(), roles.map(Value::List))
            }
            // Deployer 6: `->user('deploy')`, `->stage('prod')`.
            (old, [value, ..]) => (if old == "user" { "remote_user".into() } else { old.to_owned() }, value.clone()),
            (other, []) => return Err(format!("`->{other}()` is not carried over")),
        };
        settings.push((key, value));
        i = end;
    }
    if i != words.len() {
        return Err("not understood".into());
    }
    for alias in aliases {
        let mut host = DeployerHost { alias, at: reading.at.clone(), ..DeployerHost::default() };
        for (key, value) in &settings {
            if let Err(why) = host_setting(&mut host, key, value.clone()) {
                reading.partly.push(why);
            }
        }
        reading.hosts.push(host);
    }
    Ok(())
}

/// `RemoteUser` to `remote_user`.
fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

fn host_setting(host: &mut DeployerHost, key: &str, value: Option<Value>) -> Result<(), String> {
    let text = value.as_ref().and_then(Value::text);
    let expression = || format!("the host's `{key}` is an expression: set it in the inventory by hand");
    match key {
        "hostname" => host.hostname = Some(text.ok_or_else(expression)?),
        "remote_user" | "user" => host.user = Some(text.ok_or_else(expression)?),
        "port" => {
            let port = text.ok_or_else(expression)?;
            host.port = Some(port.parse().ok().filter(|p| *p > 0).ok_or_else(|| format!("port `{port}`"))?);
        }
        "deploy_path" => host.deploy_path = Some(text.ok_or_else(expression)?),
        "branch" => host.branch = Some(text.ok_or_else(expression)?),
        "stage" => host.stage = Some(text.ok_or_else(expression)?),
        "labels" => {
            let Some(Value::Map(pairs)) = value else { return Err(expression()) };
            let others: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).filter(|k| *k != "stage").collect();
            host.stage = pairs.iter().find(|(k, _)| k == "stage").map(|(_, v)| v.clone()).or(host.stage.take());
            if !others.is_empty() {
                return Err(format!(
                    "labels other than `stage` ({}) are not carried over: use roles",
                    others.join(", ")
                ));
            }
        }
        "roles" => host.roles.extend(value.and_then(|v| v.strings()).ok_or_else(expression)?),
        "identity_file" | "forward_agent" | "ssh_multiplexing" | "ssh_arguments" | "config_file" => {
            return Err(format!(
                "the host's `{key}` is not carried over: see docs/ssh.md for the inventory's SSH settings"
            ));
        }
        _ => return Err(format!("the host's `{key}` is not carried over")),
    }
    Ok(())
}

impl Reading {
    /// A recipe file `require`d: the framework, and its shared paths.
    fn recipe(&mut self, file: &str) -> Result<(), String> {
        let name = file.trim_start_matches("./").trim_end_matches(".php");
        let (framework, files, dirs): (Framework, &[&str], &[&str]) = match name.rsplit('/').next().unwrap_or(name) {
            "laravel" => (Framework::Laravel, &[".env"], &["storage"]),
            "symfony" => (Framework::Symfony, &[".env.local"], &["var/log"]),
            "common" | "composer" => (Framework::Php, &[], &[]),
            _ => return Err("a recipe cutover does not know: its tasks are not carried over".into()),
        };
        self.imported.framework = Some(framework);
        self.imported.shared_files = files.iter().map(|s| (*s).to_owned()).collect();
        self.imported.shared_dirs = dirs.iter().map(|s| (*s).to_owned()).collect();
        Ok(())
    }

    /// `set` (or `add`, when `adds`) of `key`.
    fn setting(&mut self, adds: bool, key: &str, value: Option<Value>) -> Result<(), String> {
        // Another setting's placeholder is Deployer's to fill, not cutover's
        // (`{{application}}` in the deploy path is filled at the end).
        let placeholder = |v: &Value| {
            let texts = v.strings().unwrap_or_default();
            texts.iter().any(|t| t.contains("{{")) && key != "deploy_path"
        };
        if value.as_ref().is_some_and(placeholder) {
            return Err("holds a `{{...}}` placeholder: set it in the inventory by hand".into());
        }
        let text = value.as_ref().and_then(Value::text);
        let expression = || "an expression, not a value written out: set it in the inventory by hand".to_owned();
        let imported = &mut self.imported;
        match key {
            "application" => imported.application = Some(text.ok_or_else(expression)?),
            "repository" => return imported.set_repository(&text.ok_or_else(expression)?),
            "branch" => imported.branch = Some(text.ok_or_else(expression)?),
            "deploy_path" => self.deploy_path = Some(text.ok_or_else(expression)?),
            "remote_user" => self.user = Some(text.ok_or_else(expression)?),
            "keep_releases" => match value {
                Some(Value::Int(n)) if n >= 2 => imported.keep_releases = u32::try_from(n).ok(),
                Some(Value::Int(-1)) => {
                    return Err(
                        "keeps every release (-1): cutover prunes to keep_releases (10 here, Deployer's default); \
                                set it"
                            .into(),
                    );
                }
                Some(Value::Int(n)) => {
                    return Err(format!("cutover keeps at least 2 releases, not {n}: keep_releases is 10"));
                }
                _ => return Err(expression()),
            },
            "shared_files" | "shared_dirs" => {
                let items = value.as_ref().and_then(Value::strings).ok_or_else(expression)?;
                let list = if key == "shared_files" { &mut imported.shared_files } else { &mut imported.shared_dirs };
                if !adds {
                    list.clear();
                }
                for item in items {
                    if !list.contains(&item) {
                        list.push(item);
                    }
                }
            }
            "writable_dirs" | "writable_mode" | "writable_use_sudo" | "http_user" | "writable_recursive" => {
                return Err("not managed by cutover: set the owner and mode of shared/ once on each host".into());
            }
            "allow_anonymous_stats" | "git_tty" | "ssh_multiplexing" | "default_timeout" => {}
            _ => return Err("cutover has no such setting".into()),
        }
        Ok(())
    }

    /// The hosts into stages, `{{application}}` replaced; a value with
    /// another placeholder, a path that is not absolute, hosts of one stage
    /// that disagree: said, never guessed.
    fn finish(mut self, file: &str) -> Imported {
        let application = self.imported.application.clone();
        // `{{application}}` replaced; `None` when another `{{...}}` is left.
        let expand = |value: &str| {
            let value = match &application {
                Some(app) => value.replace("{{application}}", app),
                None => value.to_owned(),
            };
            (!value.contains("{{")).then_some(value)
        };
        let mut left = Vec::new();
        let mut stages: IndexMap<String, Stage> = IndexMap::new();
        let mut branches: IndexMap<String, Vec<(String, Option<String>)>> = IndexMap::new();
        // The hosts of no stage.
        let mut unstaged = Stage::default();
        for dh in &self.hosts {
            let at = if dh.at.is_empty() { file.to_owned() } else { dh.at.clone() };
            let mut say = |why: String| left.push(format!("{at}: host `{}`: {why}", dh.alias));
            let written = dh.hostname.as_deref().unwrap_or(&dh.alias);
            let Some(spec) = expand(written) else {
                say(format!("`{written}`: a placeholder cutover cannot fill"));
                continue;
            };
            let mut host = match imported::server(&spec) {
                Ok(host) => host,
                Err(why) => {
                    say(why);
                    continue;
                }
            };
            let user = dh.user.clone().or_else(|| self.user.clone());
            match user.as_deref().map(|u| (u, expand(u).filter(|u| ssh_values::check_user(u).is_ok()))) {
                Some((_, Some(user))) => host.user = Some(user),
                Some((written, None)) => say(format!("user `{written}` is not carried over")),
                None => {}
            }
            host.port = dh.port.or(host.port);
            host.roles = dh.roles.clone();
            // The alias the team knows the host by, when it can be a name.
            if dh.alias != host.address && imported::server(&dh.alias).is_ok() {
                host.name = Some(dh.alias.clone());
            }
            let written_path = dh.deploy_path.clone().or_else(|| self.deploy_path.clone());
            if let Some(name) = dh.stage.as_ref().filter(|n| !is_plain_name(n)) {
                say(format!("stage `{name}` cannot name an environment (letters, digits, `-`, `_`, `.`): left out"));
                continue;
            }
            let stage = match &dh.stage {
                Some(name) => {
                    branches.entry(name.clone()).or_default().push((dh.alias.clone(), dh.branch.clone()));
                    stages.entry(name.clone()).or_default()
                }
                None => {
                    if let Some(branch) = &dh.branch {
                        say(format!("its own branch `{branch}` is not carried over (give it a `stage` label)"));
                    }
                    &mut unstaged
                }
            };
            if let Some(written) = written_path {
                match expand(&written).map(|p| (imported::deploy_path(&p), p)) {
                    Some((Ok(path), _)) => match &stage.deploy_path {
                        None => stage.deploy_path = Some(path),
                        Some(first) if *first != path => say(format!(
                            "deploys to {path}, the others of its environment to {first}: cutover deploys one path \
                             per environment"
                        )),
                        Some(_) => {}
                    },
                    Some((Err(why), expanded)) => {
                        say(format!("deploy_path {why}"));
                        stage.unresolved_path.get_or_insert(expanded);
                    }
                    None => {
                        say(format!("deploy_path `{written}`: a placeholder cutover cannot fill"));
                        stage.unresolved_path.get_or_insert(written);
                    }
                }
            }
            imported::add_host(&mut stage.hosts, host);
        }
        // One branch per environment: only when every host of it agrees (a
        // host without its own deploys the file's).
        let global = self.imported.branch.clone();
        for (name, hosts) in branches {
            let hosts: Vec<(String, Option<String>)> =
                hosts.into_iter().map(|(h, b)| (h, b.or_else(|| global.clone()))).collect();
            let mut set: Vec<&Option<String>> = hosts.iter().map(|(_, b)| b).collect();
            set.dedup();
            match set.as_slice() {
                [Some(branch)] if Some(branch) == global.as_ref() => {}
                [Some(branch)] => stages[&name].branch = Some(branch.clone()),
                [None] => {}
                _ => {
                    let each: Vec<String> =
                        hosts.iter().map(|(h, b)| format!("{h} {}", b.as_deref().unwrap_or("(the default)"))).collect();
                    left.push(format!(
                        "{file}: the hosts of `{name}` deploy different branches ({}): cutover deploys one branch per \
                         environment; none is written",
                        each.join(", ")
                    ));
                }
            }
        }
        if !stages.is_empty() {
            for host in &unstaged.hosts {
                left.push(format!("{file}: host `{}` has no `stage` label: it is in no environment", host.address));
            }
        }
        self.imported.unresolved_path = unstaged.unresolved_path;
        self.imported.deploy_path = unstaged.deploy_path.or_else(|| {
            let global = expand(self.deploy_path.as_deref()?)?;
            imported::deploy_path(&global).ok()
        });
        self.imported.hosts = unstaged.hosts;
        self.imported.stages = stages;
        self.imported.left.extend(left);
        self.imported
    }
}
