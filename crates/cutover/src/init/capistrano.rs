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
use super::value::Value;
use super::words::{Language, Statement, Word, statements};

/// Reads the Capistrano files under `dir`; an error when there is no
/// `config/deploy.rb`.
pub fn read(dir: &Path) -> Result<Imported, String> {
    let main = dir.join("config/deploy.rb");
    let text = std::fs::read_to_string(&main)
        .map_err(|e| format!("{}: {e} (run `cutover init --from capistrano` where Capfile is)", main.display()))?;
    let mut imported = Imported { read: vec!["config/deploy.rb".into()], default_keep: 5, ..Imported::default() };
    let mut base = Stage::default();
    for statement in statements(&text, Language::Ruby) {
        for why in apply(&mut imported, &mut base, &statement, false) {
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
            for why in apply(&mut imported, &mut stage, &statement, true) {
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
    let mut notes = Vec::new();
    settle_primary(&mut imported.hosts, &mut notes);
    for (name, stage) in imported.stages.iter_mut() {
        let mut said = Vec::new();
        settle_primary(&mut stage.hosts, &mut said);
        notes.extend(said.into_iter().map(|n| format!("config/deploy/{name}.rb: {n}")));
    }
    imported.left.extend(notes);
    Ok(imported)
}

/// What one statement says, into the settings of all stages (`imported`)
/// or of its file's `stage` (`in_stage`: the file is a stage's); why what
/// was not carried over was not.
fn apply(imported: &mut Imported, stage: &mut Stage, statement: &Statement, in_stage: bool) -> Vec<String> {
    let words = &statement.words;
    let Some(Word::Name(head)) = words.first() else { return vec!["not understood".into()] };
    // `server(...)` as well as `server ...`.
    let args = match &words[1..] {
        [Word::Punct('('), inner @ .., Word::Punct(')')] => inner,
        args => args,
    };
    match head.as_str() {
        "lock" | "require" | "require_relative" => Vec::new(),
        "set" | "append" | "remove" => {
            let Some(Word::Sym(key)) = args.first() else { return vec!["not understood".into()] };
            let per_stage = matches!(key.as_str(), "branch" | "deploy_to" | "stage");
            if in_stage && !per_stage {
                return vec![format!(
                    "`:{key}` set for one stage: an environment sets only its hosts, branch and deploy path, so it is \
                     not carried over (set it for every environment in the inventory, or by hand)"
                )];
            }
            setting(imported, stage, head, key, args.get(2..).unwrap_or_default()).err().into_iter().collect()
        }
        "server" => match server(args) {
            Ok((host, notes)) => with_host(stage, host, notes),
            Err(why) => vec![why],
        },
        "role" => match role(args) {
            Ok((hosts, notes)) => hosts.into_iter().fold(notes, |notes, host| with_host(stage, host, notes)),
            Err(why) => vec![why],
        },
        "ask" => vec!["asks at deploy time: set the value in the inventory (or pass --revision)".into()],
        "namespace" | "task" | "before" | "after" | "desc" | "invoke" | "on" | "run_locally" => {
            vec!["tasks and hooks are not carried over: write them as the inventory's hooks (docs/recipes.md)".into()]
        }
        _ => vec!["not carried over".into()],
    }
}

/// Adds `host` to the stage, unless it takes no release.
fn with_host(stage: &mut Stage, host: Option<Host>, mut notes: Vec<String>) -> Vec<String> {
    match host {
        Some(host) => imported::add_host(&mut stage.hosts, host),
        None => notes.push("`no_release: true`: a server cutover deploys nothing to is left out".into()),
    }
    notes
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
        ("set", "repo_url") => return imported.set_repository(&text.ok_or_else(expression)?),
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
        ("set", "stage" | "format" | "log_level" | "pty" | "local_user") => {}
        ("set", "ssh_options") => {
            return Err("cutover's ssh reads ~/.ssh/config: set `identity_file`, `user` or `port` in the \
                        inventory's `defaults` (docs/ssh.md)"
                .into());
        }
        ("set", "default_env") => {
            return Err("the environment of every command is not carried over: put what it sets in the \
                        inventory's `vars` (a PATH for php or composer: the deploy user's profile)"
                .into());
        }
        _ => return Err("cutover has no such setting".into()),
    }
    Ok(())
}

/// The arguments of `fetch(:x, []).push('a', 'b')`, when `rest` is that.
fn push_arguments(rest: &[Word]) -> Option<Vec<String>> {
    let at = rest.iter().position(|w| *w == Word::Name("push".into()))?;
    let (args, end) = super::value::arguments(rest, at + 1)?;
    if end != rest.len() || rest.first() != Some(&Word::Name("fetch".into())) {
        return None;
    }
    args.iter().map(|a| Value::of(a).and_then(|v| v.text())).collect()
}

/// What a server's or a role's options say.
#[derive(Debug, Default)]
struct Options {
    user: Option<String>,
    port: Option<u16>,
    roles: Vec<String>,
    primary: bool,
    no_release: bool,
    /// Why the options not carried over were not.
    notes: Vec<String>,
}

/// The hash options after a server or role: `user: "deploy"`,
/// `roles: %w{app web}`, `primary: true`, `port: 22`.
fn options(words: &[Word]) -> Options {
    let mut found = Options::default();
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
            _ => {
                found.notes.push("an option not understood".into());
                return found;
            }
        };
        let end = value_end(words, i + 1);
        let value = Value::of(&words[i + 1..end]);
        match (key.as_str(), value) {
            ("user", Some(Value::Str(user))) => found.user = Some(user),
            ("port", Some(Value::Int(port))) if (1..=65535).contains(&port) => found.port = u16::try_from(port).ok(),
            ("roles" | "role", Some(v)) if v.strings().is_some() => found.roles.extend(v.strings().unwrap_or_default()),
            ("primary", Some(Value::Bool(primary))) => found.primary = primary,
            ("no_release", Some(Value::Bool(no_release))) => found.no_release = no_release,
            (key, _) => found.notes.push(format!("option `{key}` is not carried over")),
        }
        i = end;
    }
    found
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

/// `server "spec", :app, :web, user: ..., roles: ...`: the host (none when
/// it takes no release), and what of it was not carried over.
fn server(words: &[Word]) -> Result<(Option<Host>, Vec<String>), String> {
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
    let options = options(rest);
    host.user = options.user.or(host.user);
    host.port = options.port.or(host.port);
    host.roles.extend(options.roles);
    if options.primary {
        host.roles.insert(0, "primary".into());
    }
    host.roles.dedup();
    Ok(((!options.no_release).then_some(host), options.notes))
}

/// `role :app, %w{a b}` or `role :app, "a", "b", primary: true`: each
/// server with the role (`primary` for the first, as Capistrano has it).
fn role(words: &[Word]) -> Result<(Vec<Option<Host>>, Vec<String>), String> {
    let Some(Word::Sym(name)) = words.first() else { return Err("a role named by an expression".into()) };
    let mut specs = Vec::new();
    let mut i = 1;
    while let Some(word) = words.get(i) {
        match word {
            Word::Punct(',') => {}
            Word::Str(s) => specs.push(s.clone()),
            Word::List(items) => specs.extend(items.iter().cloned()),
            Word::Punct('[') => {
                let end = value_end(words, i);
                let list = Value::of(&words[i..end]).and_then(|v| v.strings());
                specs.extend(list.ok_or("servers given by an expression")?);
                i = end;
                continue;
            }
            _ => break,
        }
        i += 1;
    }
    let options = options(&words[i.min(words.len())..]);
    let mut notes = options.notes.clone();
    let mut hosts = Vec::new();
    for (k, spec) in specs.iter().enumerate() {
        let mut host = match imported::server(spec) {
            Ok(host) => host,
            Err(why) => {
                notes.push(why);
                continue;
            }
        };
        host.user = host.user.or(options.user.clone());
        host.port = host.port.or(options.port);
        host.roles = std::iter::once(name.clone()).chain(options.roles.iter().cloned()).collect();
        if options.primary && k == 0 {
            host.roles.insert(0, "primary".into());
        }
        hosts.push((!options.no_release).then_some(host));
    }
    Ok((hosts, notes))
}

/// One primary per stage: the first server marked so (the others are
/// said), or else the first of the `db` role, where Capistrano migrates.
fn settle_primary(hosts: &mut [Host], notes: &mut Vec<String>) {
    let marked: Vec<usize> = (0..hosts.len()).filter(|i| hosts[*i].roles.iter().any(|r| r == "primary")).collect();
    if let [first, rest @ ..] = marked.as_slice() {
        for &i in rest {
            hosts[i].roles.retain(|r| r != "primary");
        }
        if !rest.is_empty() {
            let others: Vec<&str> = rest.iter().map(|i| hosts[*i].address.as_str()).collect();
            notes.push(format!(
                "`primary` on more than one server: {} is the primary, not {}",
                hosts[*first].address,
                others.join(", ")
            ));
        }
    } else if let Some(db) = hosts.iter_mut().find(|h| h.roles.iter().any(|r| r == "db")) {
        db.roles.insert(0, "primary".into());
    }
}
