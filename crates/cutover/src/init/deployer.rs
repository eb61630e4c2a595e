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

use super::Framework;
use super::imported::{self, Imported, Stage};
use super::words::{Language, Statement, Value, Word, arguments, statements};

/// Reads `deploy.php`, or else `deploy.yaml`, in `dir`.
pub fn read(dir: &Path) -> Result<Imported, String> {
    if let Ok(text) = std::fs::read_to_string(dir.join("deploy.php")) {
        return Ok(from_php(&text));
    }
    match std::fs::read_to_string(dir.join("deploy.yaml")) {
        Ok(text) => from_yaml(&text),
        Err(_) => Err("no deploy.php or deploy.yaml here (run `cutover init --from deployer` where they are)".into()),
    }
}

/// A host as Deployer has it, before it is placed in a stage.
#[derive(Debug, Default)]
struct DeployerHost {
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
}

fn from_php(text: &str) -> Imported {
    let mut reading =
        Reading { imported: Imported { read: vec!["deploy.php".into()], ..Imported::default() }, ..Reading::default() };
    for statement in statements(text, Language::Php) {
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
            // Deployer 6: `->user('deploy')`, `->stage('prod')`, `->roles('app')`.
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
        let mut host = DeployerHost { alias, ..DeployerHost::default() };
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
        "labels" => match value {
            Some(Value::Map(pairs)) => {
                host.stage = pairs.into_iter().find(|(k, _)| k == "stage").map(|(_, v)| v).or(host.stage.take())
            }
            _ => return Err(expression()),
        },
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
        let text = value.as_ref().and_then(Value::text);
        let expression = || "an expression, not a value written out: set it in the inventory by hand".to_owned();
        let imported = &mut self.imported;
        match key {
            "application" => imported.application = Some(text.ok_or_else(expression)?),
            "repository" => imported.repository = Some(text.ok_or_else(expression)?),
            "branch" => imported.branch = Some(text.ok_or_else(expression)?),
            "deploy_path" => self.deploy_path = Some(text.ok_or_else(expression)?),
            "remote_user" => self.user = Some(text.ok_or_else(expression)?),
            "keep_releases" => match value {
                Some(Value::Int(n)) if n >= 2 => imported.keep_releases = u32::try_from(n).ok(),
                Some(Value::Int(-1)) => {
                    return Err("keeps every release (-1): cutover prunes to keep_releases (5 here); set it".into());
                }
                Some(Value::Int(n)) => {
                    return Err(format!("cutover keeps at least 2 releases, not {n}: keep_releases is 5"));
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

    /// The hosts into stages, `{{application}}` and `~` settled.
    fn finish(mut self, file: &str) -> Imported {
        let application = self.imported.application.clone();
        let expand = |value: &str| match &application {
            Some(app) => value.replace("{{application}}", app),
            None => value.to_owned(),
        };
        let mut left = Vec::new();
        let mut stages: IndexMap<String, Stage> = IndexMap::new();
        // The hosts of no stage, with their deploy path.
        let mut unstaged = Stage::default();
        for dh in &self.hosts {
            let spec = expand(dh.hostname.as_deref().unwrap_or(&dh.alias));
            let mut host = match imported::server(&spec) {
                Ok(host) => host,
                Err(why) => {
                    left.push(format!("{file}: host `{}`: {why}", dh.alias));
                    continue;
                }
            };
            host.user = dh.user.clone().or_else(|| self.user.clone()).or(host.user).map(|u| expand(&u));
            host.port = dh.port.or(host.port);
            host.roles = dh.roles.clone();
            let path = dh.deploy_path.clone().or_else(|| self.deploy_path.clone()).map(|p| expand(&p));
            let mut unresolved = None;
            let path = match path.map(|p| (imported::deploy_path(&p), p)) {
                Some((Ok(p), _)) => Some(p),
                Some((Err(why), written)) => {
                    left.push(format!("{file}: host `{}`: deploy_path {why}", dh.alias));
                    unresolved = Some(written);
                    None
                }
                None => None,
            };
            // The alias the team knows the host by, when it can be a name.
            if dh.alias != host.address && imported::server(&dh.alias).is_ok() {
                host.name = Some(dh.alias.clone());
            }
            let stage = match &dh.stage {
                Some(name) => stages.entry(name.clone()).or_default(),
                None => {
                    if let Some(branch) = &dh.branch {
                        left.push(format!(
                            "{file}: host `{}`: its own branch `{branch}` (give it a `stage` label)",
                            dh.alias
                        ));
                    }
                    &mut unstaged
                }
            };
            place(stage, &mut left, file, dh, path, dh.stage.as_ref().and(dh.branch.clone()));
            if stage.deploy_path.is_none() {
                stage.unresolved_path = stage.unresolved_path.take().or(unresolved);
            }
            imported::add_host(&mut stage.hosts, host);
        }
        if !stages.is_empty() {
            for host in &unstaged.hosts {
                left.push(format!("{file}: host `{}` has no `stage` label: it is in no environment", host.address));
            }
        }
        self.imported.deploy_path = unstaged.deploy_path.or_else(|| {
            let global = self.deploy_path.as_deref().map(expand)?;
            imported::deploy_path(&global).ok()
        });
        self.imported.hosts = unstaged.hosts;
        self.imported.stages = stages;
        self.imported.left.extend(left);
        self.imported
    }
}

/// The deploy path of `dh` into its stage: the first host's path is the
/// stage's; another host's different one is said.
fn place(
    stage: &mut Stage,
    left: &mut Vec<String>,
    file: &str,
    dh: &DeployerHost,
    path: Option<String>,
    branch: Option<String>,
) {
    if let Some(path) = path {
        match &stage.deploy_path {
            None => stage.deploy_path = Some(path),
            Some(first) if *first != path => left.push(format!(
                "{file}: host `{}` deploys to {path}, the others of its environment to {first}: cutover deploys one path per environment",
                dh.alias
            )),
            Some(_) => {}
        }
    }
    if let Some(branch) = branch {
        stage.branch.get_or_insert(branch);
    }
}

/// `deploy.yaml`: `import`, `config`, `hosts` (in order), and the rest said.
fn from_yaml(text: &str) -> Result<Imported, String> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        import: serde_json::Value,
        #[serde(default)]
        config: IndexMap<String, serde_json::Value>,
        #[serde(default)]
        hosts: IndexMap<String, IndexMap<String, serde_json::Value>>,
    }
    let file: File = serde_saphyr::from_str(text).map_err(|e| format!("deploy.yaml: {e}"))?;
    let keys: IndexMap<String, serde_json::Value> =
        serde_saphyr::from_str(text).map_err(|e| format!("deploy.yaml: {e}"))?;
    let mut reading = Reading {
        imported: Imported { read: vec!["deploy.yaml".into()], ..Imported::default() },
        ..Reading::default()
    };
    let json = |v: &serde_json::Value| -> Option<Value> {
        match v {
            serde_json::Value::String(s) => Some(Value::Str(s.clone())),
            serde_json::Value::Number(n) => n.as_i64().map(Value::Int),
            serde_json::Value::Bool(b) => Some(Value::Bool(*b)),
            serde_json::Value::Array(items) => {
                items.iter().map(|i| i.as_str().map(str::to_owned)).collect::<Option<_>>().map(Value::List)
            }
            serde_json::Value::Object(map) => map
                .iter()
                .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect::<Option<_>>()
                .map(Value::Map),
            serde_json::Value::Null => None,
        }
    };
    let imports: Vec<String> = match &file.import {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    for import in imports {
        if let Err(why) = reading.recipe(&import) {
            reading.imported.left.push(format!("deploy.yaml: import `{import}`: {why}"));
        }
    }
    for (key, value) in &file.config {
        if let Err(why) = reading.setting(false, key, json(value)) {
            reading.imported.left.push(format!("deploy.yaml: config.{key}: {why}"));
        }
    }
    for (alias, settings) in &file.hosts {
        let mut host = DeployerHost { alias: alias.clone(), ..DeployerHost::default() };
        for (key, value) in settings {
            if let Err(why) = host_setting(&mut host, key, json(value)) {
                reading.imported.left.push(format!("deploy.yaml: hosts.{alias}.{key}: {why}"));
            }
        }
        reading.hosts.push(host);
    }
    for key in keys.keys().filter(|k| !matches!(k.as_str(), "import" | "config" | "hosts")) {
        reading.imported.left.push(format!("deploy.yaml: `{key}`: tasks and hooks are not carried over: write them as the inventory's hooks (docs/recipes.md)"));
    }
    Ok(reading.finish("deploy.yaml"))
}
