//! The `cutover` command: reads the inventory, runs a command on the fleet,
//! draws progress, prints the summary, and exits with a documented code.

// The binary is the one place that prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod connector;
mod diagnostic;
mod exit;
mod init;
mod output;
mod signals;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cutover_core::config::load_inventory_in;
use cutover_core::engine::{self, Context, DeployRequest, Interrupt, Report, RollbackRequest, RunRequest};
use cutover_core::event::{CommandKind, Outcome};
use cutover_core::fleet::{Fleet, Selection};
use cutover_core::release::ReleaseId;
use cutover_core::secrets::Secrets;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    // Long messages stay on one line, so logs can be searched.
    let _ = miette::set_hook(Box::new(|_| Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())));
    let indicatif = tracing_indicatif::IndicatifLayer::new()
        .with_max_progress_bars(output::PROGRESS_LINES, Some(output::more_hosts()));
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUTOVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // The log's filter is the fmt layer's alone: the hosts' progress spans
    // are drawn whatever `CUTOVER_LOG` says, and nothing else is.
    let lines = tracing_subscriber::filter::filter_fn(|meta| meta.target() == output::PROGRESS_TARGET)
        .with_max_level_hint(tracing_subscriber::filter::LevelFilter::INFO);
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(indicatif.get_stderr_writer()).with_filter(filter))
        .with(indicatif.with_filter(lines))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            report_error(&cli, &format!("failed to start the runtime: {e}"));
            return ExitCode::from(exit::FAILED);
        }
    };
    ExitCode::from(runtime.block_on(run(cli)))
}

async fn run(cli: Cli) -> u8 {
    // Made from the command line's definition; no inventory needed.
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "cutover", &mut std::io::stdout());
            return 0;
        }
        Command::Init { from } => return init::command::init(&cli, *from),
        Command::Man => {
            return match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => 0,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
                Err(e) => {
                    eprintln!("error: could not write the man page: {e}");
                    exit::FAILED
                }
            };
        }
        _ => {}
    }
    let path = cli.inventory_path();
    let environment = match cli.environment() {
        Ok(environment) => environment,
        Err(message) => {
            report_error(&cli, &message);
            return exit::BAD_INPUT;
        }
    };
    let loaded = match load_inventory_in(&path, environment).and_then(|mut loaded| {
        if let Some(activation) = cli.activation {
            loaded.with_activation(activation.into())?;
        }
        Ok(loaded)
    }) {
        Ok(loaded) => loaded,
        Err(error) => {
            if cli.json {
                print_json_config_error(&error);
            } else {
                eprintln!("{:?}", miette::Report::new(diagnostic::ConfigDiagnostic::new(error)));
            }
            return exit::BAD_INPUT;
        }
    };
    let selection = Selection { hosts: cli.hosts.clone(), roles: cli.roles.clone() };
    let fleet = match Fleet::select(&loaded, &selection) {
        Ok(fleet) => fleet,
        Err(error) => {
            report_error(&cli, &error.to_string());
            return exit::BAD_INPUT;
        }
    };
    let rollback_to = match &cli.command {
        Command::Rollback { to: Some(to), .. } | Command::Plan { to: Some(to), .. } => match to.parse::<ReleaseId>() {
            Ok(id) => Some(id),
            Err(error) => {
                report_error(&cli, &error.to_string());
                return exit::BAD_INPUT;
            }
        },
        _ => None,
    };
    if !confirmed(&cli, fleet.hosts.len()) {
        report_error(&cli, "not confirmed; pass --yes to run without asking");
        return exit::FAILED;
    }
    // Read before any host is touched, by the runs that run steps; `plan`
    // names them without running anything.
    let kind = match &cli.command {
        Command::Deploy { .. } => CommandKind::Deploy,
        Command::Rollback { .. } => CommandKind::Rollback,
        _ => CommandKind::Status,
    };
    let secrets = match Secrets::read_for(&loaded, kind) {
        Ok(secrets) => secrets,
        Err(error) => {
            if cli.json {
                print_json_error("secret", &error.to_string());
            } else {
                eprintln!("error: {error}");
            }
            return exit::BAD_INPUT;
        }
    };
    for name in secrets.unmasked() {
        let message = format!("secret `{name}` is shorter than 4 characters: what a step prints of it is not masked");
        if cli.json {
            println!("{}", serde_json::json!({"event": "warning", "message": message}));
        } else {
            eprintln!("warning: {message}");
        }
    }
    let log = run_log(&cli, &path);
    let log_path = log.as_ref().map(|l| l.path().to_owned());
    let events = output::sink(cli.json, cli.progress, &fleet.names(), log);
    let (raise, interrupt) = Interrupt::new();
    tokio::spawn(async move {
        // The first SIGINT or SIGTERM stops gracefully; the second stops
        // waiting for remote work at once, and the run still compensates
        // and releases its locks; a third exits at once (a lock may stay).
        loop {
            signals::interrupted().await;
            match raise.raise() {
                1 => output::say("interrupted: stopping (finishing or undoing as the phase requires)"),
                2 => output::say("interrupted again: stopping remote work now, then putting the fleet back"),
                _ => {
                    output::say("interrupted a third time: exiting now; `cutover status` shows any lock left");
                    std::process::exit(i32::from(exit::INTERRUPTED_THRICE));
                }
            }
        }
    });
    let multiplex = cli.multiplex.map(Into::into).or(loaded.inventory.ssh.multiplex.as_ref().map(|m| m.value));
    let connector = match connector::Fleet::new(&fleet.hosts, multiplex) {
        Ok(connector) => connector,
        Err(e) => {
            report_error(&cli, &format!("failed to create the SSH control directory: {e}"));
            return exit::FAILED;
        }
    };
    let ctx = Context {
        loaded: &loaded,
        fleet: &fleet,
        connector: &connector,
        events: events.as_ref(),
        interrupt: &interrupt,
        secrets: &secrets,
    };
    let report = match &cli.command {
        Command::Deploy { revision, full_build, .. } => {
            engine::deploy(&ctx, &DeployRequest { full_build: *full_build, ..deploy_request(&cli, revision) }).await
        }
        Command::Rollback { .. } => engine::rollback(&ctx, &rollback_request(&cli, rollback_to)).await,
        Command::Status { .. } => engine::status(&ctx).await,
        Command::Releases { .. } => engine::releases(&ctx).await,
        Command::Check { .. } => engine::check(&ctx).await,
        Command::Unlock { .. } => engine::unlock(&ctx, &|held| confirm_unlock(&cli, held)).await,
        Command::Completions { .. } | Command::Man | Command::Init { .. } => {
            unreachable!("done before the inventory is read")
        }
        Command::Run { once, command } => engine::run_command(&ctx, &RunRequest::from_words(command, *once)).await,
        Command::Plan { rollback, revision, .. } => {
            let plan = if *rollback {
                engine::plan_rollback(&ctx, &rollback_request(&cli, rollback_to)).await
            } else {
                engine::plan_deploy(&ctx, &deploy_request(&cli, revision)).await
            };
            match plan {
                Ok(plan) => {
                    drop(events);
                    if cli.json {
                        print_json_plan(&plan);
                    } else {
                        print!("{}", plan.render());
                    }
                    return exit::DONE;
                }
                Err(report) => report,
            }
        }
    };
    // The hosts' lines give way to what is printed last.
    drop(events);
    finish(&cli, &report, log_path.as_deref())
}

/// The log of a run that changes hosts (deploy, rollback); `None` for the
/// others, or when it cannot be written (said once, the run goes on).
fn run_log(cli: &Cli, inventory: &std::path::Path) -> Option<output::log::RunLog> {
    let command = match &cli.command {
        Command::Deploy { .. } => "deploy",
        Command::Rollback { .. } => "rollback",
        _ => return None,
    };
    match output::log::RunLog::create(inventory, command) {
        Ok(log) => Some(log),
        Err(error) => {
            eprintln!("warning: no log file for this run ({error})");
            None
        }
    }
}

fn deploy_request(cli: &Cli, revision: &Option<String>) -> DeployRequest {
    DeployRequest {
        revision: revision.clone(),
        mode: cli.mode.map(Into::into),
        batch: cli.batch.clone(),
        full_build: false,
    }
}

fn rollback_request(cli: &Cli, to: Option<ReleaseId>) -> RollbackRequest {
    RollbackRequest { to, mode: cli.mode.map(Into::into), batch: cli.batch.clone() }
}

/// Asks before commands that change a live fleet without building anything
/// (rollback, unlock), when a person is at the terminal and `--yes` is not set.
fn confirmed(cli: &Cli, hosts: usize) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    let question = match &cli.command {
        Command::Rollback { to, .. } => {
            format!("roll back {hosts} host(s) to {}?", to.as_deref().unwrap_or("the previous release"))
        }
        _ => return true,
    };
    if cli.yes || cli.json || !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return true;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// Shows each lock `unlock` found and asks before removing them, unless
/// `--yes`. Without a terminal to ask at, only `--yes` removes them.
fn confirm_unlock(cli: &Cli, held: &engine::HeldLocks) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if cli.yes {
        return true;
    }
    if cli.json || !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return false;
    }
    for (host, owner) in held {
        eprintln!("{host}: locked by {owner}");
    }
    eprint!("remove {} lock(s) held by another run? [y/N] ", held.len());
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

fn finish(cli: &Cli, report: &Report, log: Option<&std::path::Path>) -> u8 {
    if !cli.json {
        print!("{}", output::summary::text(report));
        if let Some(log) = log.filter(|_| report.summary.outcome != Outcome::Done) {
            println!("the whole output of every host: {}", log.display());
        }
    }
    exit::code(report.summary.outcome)
}

fn report_error(cli: &Cli, message: &str) {
    if cli.json {
        print_json_error("input", message);
    } else {
        eprintln!("error: {message}");
    }
}

/// A command line clap refused: its own text, or with `--json` anywhere on
/// the line a JSON error on stdout. Exit 2 either way; help and version
/// print as usual.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let shows = matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if shows || !std::env::args_os().skip(1).any(|a| a == "--json") {
        let _ = error.print();
        return ExitCode::from(if shows { 0 } else { exit::BAD_INPUT });
    }
    let text = error.render().to_string();
    let message = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().trim_start_matches("error: ");
    print_json_error("usage", message);
    ExitCode::from(exit::BAD_INPUT)
}

/// A refused inventory or recipe for scripts: where, which field, why.
fn print_json_config_error(error: &cutover_core::config::ConfigError) {
    let position = error.position.as_ref();
    let line = serde_json::json!({
        "event": "error",
        "kind": "config",
        "message": error.to_string(),
        "file": error.file.display().to_string(),
        "line": position.map(|p| p.line),
        "column": position.map(|p| p.column),
        "field": error.field,
        "hint": error.hint,
    });
    println!("{line}");
}

fn print_json_error(kind: &str, message: &str) {
    let line = serde_json::json!({"event": "error", "kind": kind, "message": message});
    println!("{line}");
}

fn print_json_plan(plan: &cutover_core::plan::Plan) {
    let line =
        serde_json::json!({"event": "plan", "release": plan.release, "commit": plan.commit, "text": plan.render()});
    println!("{line}");
}
