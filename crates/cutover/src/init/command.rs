//! `cutover init`, for people and scripts: asks at a terminal (unless
//! `--yes`), writes the inventory (never over a file), and says what it
//! wrote and, with `--from`, what it could not carry over.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use super::Found;
use crate::cli::{Cli, FromTool};

/// `cutover init`: writes the inventory for the application in this
/// directory (`--inventory` names another file), after asking a person at a
/// terminal unless `--yes`. Exit 2 when the file exists.
pub fn init(cli: &Cli, from: Option<FromTool>) -> u8 {
    let path = cli.inventory.clone().unwrap_or_else(|| "cutover.yaml".into());
    let other = Path::new("inventory.yaml");
    if cli.inventory.is_none() && other.exists() {
        crate::report_error(cli, &super::InitError::Exists(other.to_owned()).to_string());
        return crate::exit::BAD_INPUT;
    }
    if path.exists() {
        crate::report_error(cli, &super::InitError::Exists(path.clone()).to_string());
        return crate::exit::BAD_INPUT;
    }
    let found = super::inspect(Path::new("."));
    let asking = !cli.yes && !cli.json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if let Some(tool) = from {
        return init_from(cli, &path, tool, &found, asking);
    }
    if asking && !confirmed(&format!("{}: write {} for it?", super::describe(&found), path.display())) {
        eprintln!("nothing written");
        return crate::exit::DONE;
    }
    if let Err(e) = super::write(&path, &found, &super::source_from(&path)) {
        crate::report_error(cli, &e.to_string());
        return match e {
            super::InitError::Exists(_) => crate::exit::BAD_INPUT,
            super::InitError::Write(..) => crate::exit::FAILED,
        };
    }
    if cli.json {
        let event = serde_json::json!({
            "event": "init", "file": path, "application": found.application, "recipe": found.framework.recipe(),
            "repository": found.repository, "branch": found.branch,
        });
        println!("{event}");
    } else {
        println!("wrote {}: {}", path.display(), super::describe(&found));
        if found.credentials_removed {
            println!("the remote's URL held credentials: they were left out (the hosts authenticate on their own)");
        }
        println!("next: set the hosts' addresses in it, then `cutover check` and `cutover plan`");
    }
    crate::exit::DONE
}

/// `cutover init --from <tool>`: the inventory carried over from that
/// tool's files, and the list of what was not, on stdout.
fn init_from(cli: &Cli, path: &Path, tool: FromTool, found: &Found, asking: bool) -> u8 {
    let here = Path::new(".");
    let (name, read) = match tool {
        FromTool::Capistrano => ("capistrano", super::capistrano::read(here)),
        FromTool::Deployer => ("deployer", super::deployer::read(here)),
    };
    let imported = match read {
        Ok(imported) => imported,
        Err(message) => {
            crate::report_error(cli, &message);
            return crate::exit::BAD_INPUT;
        }
    };
    let question = format!("carry over {} into {}?", imported.read.join(", "), path.display());
    if asking && !confirmed(&question) {
        eprintln!("nothing written");
        return crate::exit::DONE;
    }
    if let Err(e) = super::write_text(path, &imported.inventory(name, found)) {
        crate::report_error(cli, &e.to_string());
        return match e {
            super::InitError::Exists(_) => crate::exit::BAD_INPUT,
            super::InitError::Write(..) => crate::exit::FAILED,
        };
    }
    let environments: Vec<&String> = imported.stages.keys().collect();
    if cli.json {
        let event = serde_json::json!({
            "event": "init", "file": path, "from": name, "read": imported.read,
            "environments": environments, "not_carried_over": imported.left,
        });
        println!("{event}");
        return crate::exit::DONE;
    }
    println!("wrote {} from {}", path.display(), imported.read.join(", "));
    if !environments.is_empty() {
        let names: Vec<&str> = environments.iter().map(|s| s.as_str()).collect();
        println!("environments: {} (`cutover deploy {}`)", names.join(", "), names[0]);
    }
    if !imported.left.is_empty() {
        println!("not carried over (listed at the top of {} too):", path.display());
        for left in &imported.left {
            println!("  {left}");
        }
    }
    println!("next: `cutover check`, then `cutover plan`");
    crate::exit::DONE
}

/// Asks `question` at the terminal; yes unless the answer says no.
fn confirmed(question: &str) -> bool {
    eprint!("{question} [Y/n] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "" | "y" | "Y" | "yes")
}
