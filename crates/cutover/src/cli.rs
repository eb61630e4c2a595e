//! The command line: commands, flags, and where the inventory is found.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use cutover_core::config::inventory::{Activation, Strategy};
use cutover_core::config::{BatchSpec, Multiplex};

/// Agentless, atomic, fleet-wide deploys of PHP applications over SSH.
#[derive(Debug, Parser)]
#[command(name = "cutover", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// The inventory file [default: cutover.yaml, then inventory.yaml]
    #[arg(short, long, global = true, value_name = "FILE")]
    pub inventory: Option<PathBuf>,

    /// The environment of the inventory's `environments:` to use (also the
    /// word after the command: `cutover deploy production`)
    #[arg(short, long, global = true, value_name = "NAME")]
    pub environment: Option<String>,

    /// Only these hosts (comma-separated names)
    #[arg(long, global = true, value_delimiter = ',', value_name = "NAMES")]
    pub hosts: Vec<String>,

    /// Only hosts with one of these roles (comma-separated)
    #[arg(long, global = true, value_delimiter = ',', value_name = "ROLES")]
    pub roles: Vec<String>,

    /// Print one JSON object per event on stdout, the last one a summary
    #[arg(long, global = true)]
    pub json: bool,

    /// How progress is drawn on stderr
    #[arg(long, global = true, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,

    /// Do not ask for confirmation
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,

    /// How the fleet switches, over the inventory's `strategy`
    #[arg(long, global = true, value_enum, value_name = "MODE")]
    pub mode: Option<Mode>,

    /// How PHP-FPM starts serving the new release, over the inventory's
    /// `php_fpm.activation`
    #[arg(long, global = true, value_enum, value_name = "MODE")]
    pub activation: Option<ActivationArg>,

    /// Rolling batch sizes, over the inventory's: `2`, `25%` or `1,25%,100%`
    #[arg(long, global = true, value_name = "SIZES", value_parser = parse_batch)]
    pub batch: Option<BatchSpec>,

    /// How commands reach each host's SSH master, over the inventory's
    /// `ssh.multiplex` (default: native on Linux, process on macOS)
    #[arg(long, global = true, value_enum, value_name = "MODE")]
    pub multiplex: Option<MultiplexArg>,
}

/// `--multiplex`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MultiplexArg {
    /// OpenSSH's multiplexing protocol spoken to the master's socket
    Native,
    /// One `ssh -S <socket>` process per command
    Process,
}

impl From<MultiplexArg> for Multiplex {
    fn from(arg: MultiplexArg) -> Self {
        match arg {
            MultiplexArg::Native => Multiplex::Native,
            MultiplexArg::Process => Multiplex::Process,
        }
    }
}

/// `--mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Every host switches at the same moment
    AllAtOnce,
    /// Batches, each drained, switched, checked and undrained
    Rolling,
}

impl From<Mode> for Strategy {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::AllAtOnce => Strategy::AllAtOnce,
            Mode::Rolling => Strategy::Rolling,
        }
    }
}

/// `--activation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ActivationArg {
    /// A graceful reload after the switch
    Reload,
    /// The new release compiled into the live pool's OPcache first; no reload
    Warm,
    /// The idle one of two FPM masters started and warmed, then switched to
    BlueGreen,
}

impl From<ActivationArg> for Activation {
    fn from(arg: ActivationArg) -> Self {
        match arg {
            ActivationArg::Reload => Activation::Reload,
            ActivationArg::Warm => Activation::Warm,
            ActivationArg::BlueGreen => Activation::BlueGreen,
        }
    }
}

fn parse_batch(value: &str) -> Result<BatchSpec, String> {
    value.parse()
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a new release on every host, then switch them all at once
    Deploy {
        /// The environment to use (the inventory's `environments:`)
        #[arg(id = "environment_word", value_name = "ENVIRONMENT")]
        environment: Option<String>,
        /// A branch, tag or commit to deploy instead of the inventory's
        #[arg(long)]
        revision: Option<String>,
        /// Reuse nothing from the live release (vendor/): build everything
        #[arg(long)]
        full_build: bool,
    },
    /// Switch every host back to the previous release (or --to a release)
    Rollback {
        /// The environment to use (the inventory's `environments:`)
        #[arg(id = "environment_word", value_name = "ENVIRONMENT")]
        environment: Option<String>,
        /// The release id to go back to
        #[arg(long, value_name = "RELEASE")]
        to: Option<String>,
    },
    /// Show each host's current release, releases on disk and lock
    Status {
        /// The environment to use (the inventory's `environments:`)
        #[arg(id = "environment_word", value_name = "ENVIRONMENT")]
        environment: Option<String>,
    },
    /// Check, changing nothing, that every host is ready for a deploy
    Check {
        /// The environment to use (the inventory's `environments:`)
        #[arg(id = "environment_word", value_name = "ENVIRONMENT")]
        environment: Option<String>,
    },
    /// List the releases on the hosts: commit, when and by whom deployed, which is live
    Releases {
        /// The environment to use (the inventory's `environments:`)
        #[arg(id = "environment_word", value_name = "ENVIRONMENT")]
        environment: Option<String>,
    },
    /// Print every command a deploy (or rollback) would run, touching nothing
    Plan {
        /// The environment to use (the inventory's `environments:`)
        #[arg(id = "environment_word", value_name = "ENVIRONMENT")]
        environment: Option<String>,
        /// Plan a rollback instead of a deploy
        #[arg(long)]
        rollback: bool,
        /// A branch, tag or commit to plan for
        #[arg(long, conflicts_with = "rollback")]
        revision: Option<String>,
        /// With --rollback: the release to plan going back to
        #[arg(long, requires = "rollback")]
        to: Option<String>,
    },
    /// Remove a deploy lock left by a run that died
    Unlock {
        /// The environment to use (the inventory's `environments:`)
        #[arg(id = "environment_word", value_name = "ENVIRONMENT")]
        environment: Option<String>,
    },
    /// Run a command in the live release of the selected hosts, in parallel
    Run {
        /// On the primary host alone
        #[arg(long)]
        once: bool,
        /// The command, after `--`: one word is shell text (`'ls | wc -l'`),
        /// several are a command and its arguments (`php artisan cache:clear`)
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Write a commented cutover.yaml for the application in this directory
    Init {
        /// Carry over what another tool's files in this directory say
        #[arg(long, value_enum, value_name = "TOOL")]
        from: Option<FromTool>,
    },
    /// Print shell completions: `cutover completions bash > /etc/bash_completion.d/cutover`
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `cutover man > /usr/local/share/man/man1/cutover.1`
    Man,
}

/// `init --from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FromTool {
    /// config/deploy.rb and config/deploy/<stage>.rb
    Capistrano,
    /// deploy.php or deploy.yaml
    Deployer,
}

/// Progress drawing on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    /// Bars when stderr is a terminal, plain lines otherwise
    Auto,
    /// Timestamped lines
    Plain,
    /// One bar per host
    Fancy,
}

impl Cli {
    /// The environment named by `-e` or by the word after the command;
    /// both must agree.
    pub fn environment(&self) -> Result<Option<&str>, String> {
        let word = match &self.command {
            Command::Deploy { environment, .. }
            | Command::Rollback { environment, .. }
            | Command::Status { environment }
            | Command::Check { environment }
            | Command::Releases { environment }
            | Command::Unlock { environment }
            | Command::Plan { environment, .. } => environment.as_deref(),
            Command::Run { .. } | Command::Init { .. } | Command::Completions { .. } | Command::Man => None,
        };
        match (word, self.environment.as_deref()) {
            (Some(word), Some(flag)) if word != flag => {
                Err(format!("two environments named: `{word}` and `-e {flag}`; name one"))
            }
            (word, flag) => Ok(word.or(flag)),
        }
    }

    /// The inventory to read: `--inventory`, or the first of the defaults
    /// that exists.
    pub fn inventory_path(&self) -> PathBuf {
        if let Some(path) = &self.inventory {
            return path.clone();
        }
        ["cutover.yaml", "inventory.yaml"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("cutover.yaml"))
    }
}
