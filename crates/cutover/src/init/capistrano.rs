//! `init --from capistrano`: reads `config/deploy.rb` and each stage's
//! `config/deploy/<stage>.rb` without running Ruby. Literal values carry
//! over (`set :deploy_to, "/var/www/shop"`, `append :linked_files, ".env"`,
//! `server "web1", user: "deploy", roles: %w{app web}, primary: true`,
//! `role :app, %w{deploy@web1}`); a value that is an expression
//! (`ENV.fetch(...)`, `ask`, interpolation), a task, a hook or a setting
//! cutover has no use for is listed as not carried over, with its line.
//! Each stage becomes an environment.

use std::path::Path;

use super::imported::{self, Host, Imported, Stage};
use super::words::{Language, Statement, Value, Word, statements};

/// Reads the Capistrano files under `dir`; an error when there is no
/// `config/deploy.rb`.
pub fn read(dir: &Path) -> Result<Imported, String> {
    let main = dir.join("config/deploy.rb");
    let text = std::fs::read_to_string(&main)
        .map_err(|e| format!("{}: {e} (run `cutover init --from capistrano` where Capfile is)", main.display()))?;
    let mut imported = Imported { read: vec!["config/deploy.rb".into()], ..Imported::default() };
    let mut base = Stage::default();
    for statement in statements(&text, Language::Ruby) {
        if let Err(why) = apply(&mut imported, &mut base, &statement) {
            imported.left.push(format!("config/deploy.rb:{}: `{}`: {why}", statement.line, statement.shown(&text)));
        }
    }
    imported.branch = base.branch.take().or(imported.branch);
    imported.deploy_path = base.deploy_path.take().or(imported.deploy_path);
    imported.unresolved_path = base.unresolved_path.take();
    imported.hosts = base.hosts;
    let mut stage_files: Vec<_> = std::fs::read_dir(dir.join("config/deploy"))
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    stage_files.retain(|p| p.extension().is_some_and(|x| x == "rb"));
    stage_files.sort();
    for path in stage_files {
        let Some(name) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else { continue };
        let file = format!("config/deploy/{name}.rb");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{file}: {e}"))?;
        let mut stage = Stage::default();
        for statement in statements(&text, Language::Ruby) {
            if let Err(why) = apply(&mut imported, &mut stage, &statement) {
                imported.left.push(format!("{file}:{}: `{}`: {why}", statement.line, statement.shown(&text)));
            }
        }
        imported.read.push(file);
        imported.stages.insert(name, stage);
    }
    if !imported.hosts.is_empty() && !imported.stages.is_empty() {
        // Servers of config/deploy.rb are every stage's.
        let shared = imported.hosts.clone();
        for stage in imported.stages.values_mut() {
            for host in shared.iter().cloned() {
                imported::add_host(&mut stage.hosts, host);
            }
        }
    }
    Ok(imported)
}

/// What one statement says, into the settings of all stages (`imported`)
/// or of its file's `stage`; why it was not carried over.
fn apply(imported: &mut Imported, stage: &mut Stage, statement: &Statement) -> Result<(), String> {
    let words = &statement.words;
    let Some(Word::Name(head)) = words.first() else { return Err("not understood".into()) };
    match head.as_str() {
        "lock" | "require" | "require_relative" => Ok(()),
        "set" | "append" | "remove" => {
            let Some(Word::Sym(key)) = words.get(1) else { return Err("not understood".into()) };
            setting(imported, stage, head, key, words.get(3..).unwrap_or_default())
        }
        "server" => server(&words[1..]).map(|host| imported::add_host(&mut stage.hosts, host)),
        "role" => {
            role(&words[1..]).map(|hosts| hosts.into_iter().for_each(|h| imported::add_host(&mut stage.hosts, h)))
        }
        "ask" => Err("asks at deploy time: set the value in the inventory (or pass --revision)".into()),
        "namespace" | "task" | "before" | "after" | "desc" | "invoke" | "on" | "run_locally" => {
            Err("tasks and hooks are not carried over: write them as the inventory's hooks (docs/recipes.md)".into())
        }
        _ => Err("not carried over".into()),
    }
}

/// `set`, `append` or `remove` of `key` to the words `rest`.
fn setting(imported: &mut Imported, stage: &mut Stage, verb: &str, key: &str, rest: &[Word]) -> Result<(), String> {
    // Capistrano 3's older form: `set :linked_dirs, fetch(:linked_dirs, []).push('a', 'b')`.
    let pushed = push_arguments(rest);
    let value = Value::of(rest);
    let text = value.as_ref().and_then(Value::text);
    let expression = || "an expression, not a value written out: set it in the inventory by hand".to_owned();
    match (verb, key) {
        ("set", "application") => imported.application = Some(text.ok_or_else(expression)?),
        ("set", "repo_url") => imported.repository = Some(text.ok_or_else(expression)?),
        ("set", "branch") => stage.branch = Some(text.ok_or_else(expression)?),
        ("set", "deploy_to") => {
            let written = text.ok_or_else(expression)?;
            match imported::deploy_path(&written) {
                Ok(path) => stage.deploy_path = Some(path),
                Err(why) => {
                    stage.unresolved_path = Some(written);
                    return Err(why);
                }
            }
        }
        ("set", "keep_releases") => match value {
            Some(Value::Int(n)) if n >= 2 => imported.keep_releases = u32::try_from(n).ok(),
            Some(Value::Int(n)) => {
                return Err(format!("cutover keeps at least 2 releases, not {n}: keep_releases is 5"));
            }
            _ => return Err(expression()),
        },
        (_, "linked_files" | "linked_dirs") => {
            let items = pushed.or_else(|| value.as_ref().and_then(Value::strings)).or_else(|| {
                // `append :linked_files, ".env", "auth.json"`: each argument.
                let args: Option<Vec<String>> =
                    rest.split(|w| *w == Word::Punct(',')).map(|a| Value::of(a).and_then(|v| v.text())).collect();
                args.filter(|_| verb != "set")
            });
            let items = items.ok_or_else(expression)?;
            let list = if key == "linked_files" { &mut imported.shared_files } else { &mut imported.shared_dirs };
            match verb {
                "set" => *list = items,
                "remove" => list.retain(|i| !items.contains(i)),
                _ => {
                    for item in items {
                        if !list.contains(&item) {
                            list.push(item);
                        }
                    }
                }
            }
        }
        ("set", "stage" | "format" | "log_level" | "pty" | "local_user" | "default_env") => {}
        _ => return Err("cutover has no such setting".into()),
    }
    Ok(())
}

/// The arguments of `fetch(:x, []).push('a', 'b')`, when `rest` is that.
fn push_arguments(rest: &[Word]) -> Option<Vec<String>> {
    let at = rest.iter().position(|w| *w == Word::Name("push".into()))?;
    let (args, end) = super::words::arguments(rest, at + 1)?;
    if end != rest.len() || rest.first() != Some(&Word::Name("fetch".into())) {
        return None;
    }
    args.iter().map(|a| Value::of(a).and_then(|v| v.text())).collect()
}

/// The hash options after a server or role: `user: "deploy"`,
/// `roles: %w{app web}`, `primary: true`, `port: 22`.
fn options(words: &[Word], host: &mut Host) -> Result<(), String> {
    let mut i = 0;
    while i < words.len() {
        let key = match &words[i] {
            Word::Key(k) => k.clone(),
            Word::Sym(k) if words.get(i + 1) == Some(&Word::Arrow) => {
                i += 1;
                k.clone()
            }
            Word::Punct(',') => {
                i += 1;
                continue;
            }
            other => return Err(format!("an option not understood ({other:?})")),
        };
        let end = value_end(words, i + 1);
        let value = Value::of(&words[i + 1..end]);
        match (key.as_str(), value) {
            ("user", Some(Value::Str(user))) => host.user = Some(user),
            ("port", Some(Value::Int(port))) => host.port = u16::try_from(port).ok().filter(|p| *p > 0),
            ("roles" | "role", Some(v)) => host.roles.extend(v.strings().unwrap_or_default()),
            ("primary", Some(Value::Bool(true))) => host.roles.insert(0, "primary".into()),
            ("primary", Some(Value::Bool(false))) | ("no_release", _) => {}
            (key, _) => return Err(format!("option `{key}` is not carried over")),
        }
        i = end;
    }
    host.roles.dedup();
    Ok(())
}

/// Where the value starting at `from` ends: the next comma outside brackets.
fn value_end(words: &[Word], from: usize) -> usize {
    let mut depth = 0;
    for (i, word) in words.iter().enumerate().skip(from) {
        match word {
            Word::Punct('(' | '[' | '{') => depth += 1,
            Word::Punct(')' | ']' | '}') => depth -= 1,
            Word::Punct(',') if depth == 0 => return i,
            _ => {}
        }
    }
    words.len()
}

/// `server "spec", :app, :web, user: ..., roles: ...`.
fn server(words: &[Word]) -> Result<Host, String> {
    let Some(Word::Str(spec)) = words.first() else { return Err("a server named by an expression".into()) };
    let mut host = imported::server(spec)?;
    let mut rest = &words[1..];
    // Capistrano 2's roles as symbols after the name.
    while let [Word::Punct(','), Word::Sym(role), tail @ ..] = rest {
        if tail.first() == Some(&Word::Arrow) {
            break;
        }
        host.roles.push(role.clone());
        rest = tail;
    }
    options(rest, &mut host).map(|()| host)
}

/// `role :app, %w{a b}` or `role :app, "a", "b", primary: true`: each
/// server with the role.
fn role(words: &[Word]) -> Result<Vec<Host>, String> {
    let Some(Word::Sym(name)) = words.first() else { return Err("a role named by an expression".into()) };
    let mut specs = Vec::new();
    let mut i = 1;
    while let Some(word) = words.get(i) {
        match word {
            Word::Punct(',') => {}
            Word::Str(s) => specs.push(s.clone()),
            Word::List(items) => specs.extend(items.iter().cloned()),
            Word::Punct('[') => {
                let end = words[i..].iter().position(|w| *w == Word::Punct(']')).map_or(words.len(), |p| p + i);
                let list = Value::of(&words[i..=end.min(words.len() - 1)]).and_then(|v| v.strings());
                specs.extend(list.ok_or("servers given by an expression")?);
                i = end;
            }
            _ => break,
        }
        i += 1;
    }
    let mut template = Host { roles: vec![name.clone()], ..Host::default() };
    options(&words[i.min(words.len())..], &mut template)?;
    specs
        .iter()
        .map(|spec| {
            let host = imported::server(spec)?;
            Ok(Host { roles: template.roles.clone(), user: host.user.or(template.user.clone()), ..host })
        })
        .collect()
}
