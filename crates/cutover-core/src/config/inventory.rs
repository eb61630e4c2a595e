//! The inventory file: the application, where its code comes from, and the
//! hosts it is deployed to. Types only; loading and checks live beside.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};

use super::environment::Environment;
use super::local_hooks::LocalHooks;
use super::recipe::Hooks;
use super::rollout::{HealthCheck, OnFailure, Rolling};
use super::ssh_client::SshClient;

/// The whole inventory file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// The application's name, used in the lock owner and logs.
    pub application: String,
    /// Absolute path of the application on every host.
    pub deploy_path: Spanned<String>,
    /// How many releases to keep on each host (at least 2).
    #[serde(default = "default_keep_releases")]
    pub keep_releases: Spanned<u32>,
    /// A git repository the hosts fetch from (`git` delivery).
    #[serde(default)]
    pub repository: Option<Spanned<String>>,
    /// The branch to deploy, when `repository` is set.
    #[serde(default)]
    pub branch: Option<String>,
    /// A fixed commit, tag or ref to deploy instead of the branch head.
    #[serde(default)]
    pub revision: Option<String>,
    /// Where the commit is resolved: `local` (git ls-remote from here, falling
    /// back to the primary host) or `host` (only on the primary host).
    #[serde(default)]
    pub resolve: Resolve,
    /// A local directory to upload instead of a repository (`upload` delivery).
    #[serde(default)]
    pub source: Option<Spanned<PathBuf>>,
    /// Glob patterns left out of the upload, matched against each path
    /// relative to `source` and against each file or directory name.
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    /// Files and directories kept in `shared/` and linked into every release.
    #[serde(default)]
    pub shared: Shared,
    /// A built-in recipe name (`php`, `laravel`, `symfony`) or a path to one.
    #[serde(default = "default_recipe")]
    pub recipe: Spanned<String>,
    /// Extra steps, run after the recipe's steps of the same hook.
    #[serde(default)]
    pub hooks: Hooks,
    /// Commands run here, before and after a deploy or rollback.
    #[serde(default)]
    pub local_hooks: LocalHooks,
    /// How the fleet switches: `all-at-once` or `rolling`.
    #[serde(default = "default_strategy")]
    pub strategy: Spanned<Strategy>,
    /// Batches, pause and load-balancer hooks of the rolling strategy.
    #[serde(default)]
    pub rolling: Rolling,
    /// Checked on every host after it switched (and after a rollback).
    #[serde(default)]
    pub health_check: Option<Spanned<HealthCheck>>,
    /// After a failure once switching began: `rollback` (default) or `halt`.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// The PHP-FPM reload after every switch.
    #[serde(default)]
    pub php_fpm: PhpFpm,
    /// How many hosts are worked on at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: Spanned<usize>,
    /// Default time limit of one step, in seconds.
    #[serde(default = "default_step_timeout")]
    pub step_timeout: Spanned<u64>,
    /// How this machine's OpenSSH client is driven (`ssh.multiplex`).
    #[serde(default)]
    pub ssh: SshClient,
    /// Settings every host inherits unless it sets its own.
    #[serde(default)]
    pub defaults: Defaults,
    /// The hosts (an environment may give them instead).
    #[serde(default)]
    pub hosts: Vec<HostEntry>,
    /// Variables exported to every step on every host.
    #[serde(default)]
    pub vars: IndexMap<String, Spanned<String>>,
    /// Secrets: read at the start of a run on this machine, exported to
    /// every step like vars, never shown (see [`crate::secrets`]).
    #[serde(default)]
    pub secrets: IndexMap<String, Spanned<SecretSource>>,
    /// Staging, production, ...: each overrides the base for a run that
    /// names it (see [`super::environment`]).
    #[serde(default)]
    pub environments: IndexMap<String, Environment>,
    /// The environment this run uses, once chosen.
    #[serde(skip)]
    pub environment: Option<String>,
}

/// Where a secret is read from, on the machine running cutover: exactly one
/// of an environment variable, a command's stdout, a file, or the value
/// written here (a var that must never be shown).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSource")
            .field("value", &self.value.as_ref().map(|_| crate::secrets::MASK))
            .field("env", &self.env)
            .field("command", &self.command)
            .field("file", &self.file)
            .finish()
    }
}

fn default_keep_releases() -> Spanned<u32> {
    unspanned(5)
}

impl Inventory {
    /// Whether a template's `{{ name }}` has a value on every host: a
    /// secret, a var, or a var every host sets.
    pub fn has_value_for(&self, name: &str) -> bool {
        self.secrets.contains_key(name)
            || self.vars.contains_key(name)
            || (!self.hosts.is_empty() && self.hosts.iter().all(|h| h.vars.contains_key(name)))
    }
}

fn no_roles() -> Spanned<Vec<String>> {
    unspanned(Vec::new())
}

fn default_recipe() -> Spanned<String> {
    unspanned("php".to_owned())
}

fn default_strategy() -> Spanned<Strategy> {
    unspanned(Strategy::AllAtOnce)
}

/// A value that came from a default, not from the file.
fn unspanned<T>(value: T) -> Spanned<T> {
    Spanned::new(value, Location::UNKNOWN, Location::UNKNOWN)
}

fn default_concurrency() -> Spanned<usize> {
    unspanned(50)
}

fn default_step_timeout() -> Spanned<u64> {
    unspanned(600)
}

/// Where the commit of a branch is resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resolve {
    /// `git ls-remote` from where cutover runs; the primary host if that fails.
    #[default]
    Local,
    /// `git ls-remote` on the primary host only.
    Host,
}

/// Shared files and directories, relative to `shared/` and to each release.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shared {
    #[serde(default)]
    pub files: Vec<Spanned<String>>,
    #[serde(default)]
    pub dirs: Vec<Spanned<String>>,
    /// Create a shared file that does not exist yet (empty), instead of
    /// refusing the deploy: for a first deploy whose `.env` is filled in
    /// afterwards.
    #[serde(default)]
    pub create_missing: bool,
    /// Files written into every release from a local template, its
    /// `{{ NAME }}` replaced by vars and secrets (see [`crate::template`]):
    /// the path in the release, then the template's, relative to the
    /// inventory. Each release has its own: it switches, and rolls back,
    /// with the code.
    #[serde(default)]
    pub render: IndexMap<String, Spanned<PathBuf>>,
}

impl Shared {
    /// The shared files, as written.
    pub fn files(&self) -> Vec<String> {
        self.files.iter().map(|f| f.value.clone()).collect()
    }

    /// The files rendered into each release, in order.
    pub fn rendered(&self) -> Vec<String> {
        self.render.keys().cloned().collect()
    }

    /// The shared directories, as written.
    pub fn dirs(&self) -> Vec<String> {
        self.dirs.iter().map(|d| d.value.clone()).collect()
    }
}

/// How the fleet switches to the new release.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Every host renames `current` at the same moment.
    #[default]
    AllAtOnce,
    /// Batches behind a load balancer.
    Rolling,
}

/// The PHP-FPM reload: a config test, then a graceful reload. Each is left
/// to cutover (unset, or `auto`: found on each host in preflight), a
/// command, or `none`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhpFpm {
    #[serde(default)]
    pub reload: Option<String>,
    #[serde(default)]
    pub config_test: Option<String>,
    /// Which PHP-FPM to find when several are installed (`8.3`: the
    /// service `php8.3-fpm`).
    #[serde(default)]
    pub version: Option<String>,
    /// The FPM main config, checked in preflight for a non-zero
    /// `process_control_timeout`; by default `/etc/php/*/fpm/php-fpm.conf`.
    #[serde(default)]
    pub config_file: Option<String>,
    /// How PHP-FPM starts serving the new release.
    #[serde(default)]
    pub activation: Option<Spanned<Activation>>,
    /// The pool's FastCGI socket (a path, or `host:port`) cutover speaks
    /// to: warm's compile, the wait for readiness after a reload. By
    /// default the one `listen` of `/etc/php/*/fpm/pool.d/*.conf`.
    #[serde(default)]
    pub socket: Option<String>,
    /// Reload even where `process_control_timeout` is 0, which kills the
    /// requests in flight (refused otherwise).
    #[serde(default)]
    pub allow_killing_requests: bool,
    /// The two masters of `activation: blue-green`.
    #[serde(default)]
    pub blue_green: Option<Spanned<BlueGreen>>,
    /// `--activation`, over `activation`.
    #[serde(skip)]
    pub activation_override: Option<Activation>,
}

/// How PHP-FPM starts serving the new release once `current` is switched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// A graceful reload after the switch (OPcache starts cold).
    #[default]
    Reload,
    /// No reload: the new release is compiled into the live pool's OPcache
    /// before the switch (nginx's `$realpath_root` gives every release its
    /// own paths).
    Warm,
    /// Two FPM masters: the idle one is started on the new release and
    /// warmed, then nginx's socket link moves to it with `current`.
    BlueGreen,
}

impl Activation {
    /// As written in the inventory.
    pub fn name(self) -> &'static str {
        match self {
            Self::Reload => "reload",
            Self::Warm => "warm",
            Self::BlueGreen => "blue-green",
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reload" => Ok(Self::Reload),
            "warm" => Ok(Self::Warm),
            "blue-green" => Ok(Self::BlueGreen),
            other => Err(format!("`{other}` is not an activation: reload, warm or blue-green")),
        }
    }
}

/// The two PHP-FPM masters of `activation: blue-green` and the link nginx
/// connects through.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BlueGreen {
    /// The symbolic link nginx's `fastcgi_pass` names; cutover points it at
    /// the live master's socket.
    pub link: String,
    pub blue: Master,
    pub green: Master,
}

/// One of the two masters: its socket, and the commands that start it and
/// drain it (SIGQUIT: its children finish their requests).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Master {
    pub socket: String,
    pub start: String,
    pub stop: String,
    /// Its FPM config, read in preflight for `process_control_timeout`
    /// (the drain's wait for requests in flight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// One of the PHP-FPM commands as the inventory sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpmSetting<'a> {
    /// Unset or `auto`: cutover finds the command on each host.
    Detect,
    /// `none`: nothing runs.
    None,
    /// This command.
    Command(&'a str),
}

impl FpmSetting<'_> {
    fn of(value: Option<&str>) -> FpmSetting<'_> {
        match value.map(str::trim) {
            None | Some("auto") => FpmSetting::Detect,
            Some("" | "none") => FpmSetting::None,
            Some(command) => FpmSetting::Command(command),
        }
    }
}

impl PhpFpm {
    /// The reload after a switch.
    pub fn reload(&self) -> FpmSetting<'_> {
        FpmSetting::of(self.reload.as_deref())
    }

    /// The config test while staging.
    pub fn config_test(&self) -> FpmSetting<'_> {
        FpmSetting::of(self.config_test.as_deref())
    }

    /// The activation as written (`reload` when unset).
    pub fn activation(&self) -> Activation {
        self.activation_override.or(self.activation.as_ref().map(|a| a.value)).unwrap_or_default()
    }
}

/// How cutover reaches a host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Connection {
    /// OpenSSH, honouring `~/.ssh/config`.
    #[default]
    Ssh,
    /// A directory on this machine (the demo, tests).
    Local,
}

/// Whether an unknown host key is accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyChecking {
    /// Unknown or changed keys are refused.
    #[default]
    Strict,
    /// Unknown keys are added to known_hosts; changed keys are refused.
    AcceptNew,
}

/// Connection settings as written in `defaults:`, with their positions (a
/// host's own are on [`HostEntry`]). Every value handed to ssh is checked
/// before any ssh runs (see [`super::ssh_values`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub connection: Option<Connection>,
    pub identity_file: Option<Spanned<PathBuf>>,
    pub proxy_jump: Option<Spanned<String>>,
    pub host_key_checking: Option<HostKeyChecking>,
    pub known_hosts: Option<Spanned<PathBuf>>,
    /// Seconds to wait for a connection.
    pub connect_timeout: Option<u64>,
}

/// A host's connection settings: its own over `defaults:`, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostSettings {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub connection: Option<Connection>,
    pub identity_file: Option<PathBuf>,
    pub proxy_jump: Option<String>,
    pub host_key_checking: Option<HostKeyChecking>,
    pub known_hosts: Option<PathBuf>,
    /// Seconds to wait for a connection.
    pub connect_timeout: Option<u64>,
}

/// One host, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    pub name: Spanned<String>,
    /// A hostname or IP for `ssh`; a directory for `local`.
    pub address: Option<Spanned<String>>,
    #[serde(default = "no_roles")]
    pub roles: Spanned<Vec<String>>,
    #[serde(default)]
    pub vars: IndexMap<String, Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub connection: Option<Connection>,
    pub identity_file: Option<Spanned<PathBuf>>,
    pub proxy_jump: Option<Spanned<String>>,
    pub host_key_checking: Option<HostKeyChecking>,
    pub known_hosts: Option<Spanned<PathBuf>>,
    pub connect_timeout: Option<u64>,
}

impl HostEntry {
    /// This host's own settings, with `defaults` under them.
    pub fn settings(&self, defaults: &Defaults) -> HostSettings {
        fn value<T: Clone>(own: &Option<Spanned<T>>, default: &Option<Spanned<T>>) -> Option<T> {
            own.as_ref().or(default.as_ref()).map(|s| s.value.clone())
        }
        HostSettings {
            user: value(&self.user, &defaults.user),
            port: value(&self.port, &defaults.port),
            connection: self.connection.or(defaults.connection),
            identity_file: value(&self.identity_file, &defaults.identity_file),
            proxy_jump: value(&self.proxy_jump, &defaults.proxy_jump),
            host_key_checking: self.host_key_checking.or(defaults.host_key_checking),
            known_hosts: value(&self.known_hosts, &defaults.known_hosts),
            connect_timeout: self.connect_timeout.or(defaults.connect_timeout),
        }
    }

    /// The address as written, if any.
    pub fn address(&self) -> Option<&str> {
        self.address.as_ref().map(|a| a.value.as_str())
    }
}
