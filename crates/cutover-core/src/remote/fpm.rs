//! PHP-FPM on a host: what the probe finds (the FPM programs, the masters
//! running, how services are managed) and the reload and config test that
//! follow from it when the inventory leaves them to cutover.
//!
//! Debian and Ubuntu install `/usr/sbin/php-fpm<version>` as the service
//! `php<version>-fpm`; RHEL-family hosts `/usr/sbin/php-fpm` as `php-fpm`.
//! The service that runs says which one serves the host (`php_fpm.version`
//! chooses among several); systemd reloads it when systemd runs, the
//! service's init script otherwise. Both commands run through `sudo -n`
//! unless the deploy user is root; preflight refuses a host where sudo
//! would not let them run, naming the one rule to add.

mod detect;

use serde::Serialize;

pub use detect::FpmFound;
pub(crate) use detect::{detect, look_for_fastcgi};

use crate::config::inventory::{Activation, FpmSetting, PhpFpm};

use super::activation::Activating;

/// The PHP-FPM commands a host runs, as the inventory set them or as
/// cutover found them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FpmCommands {
    /// The service cutover found (`php8.2-fpm`), when it looked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The graceful reload after a switch; `None` for none.
    pub reload: Option<String>,
    /// The config test while staging; `None` for none.
    pub config_test: Option<String>,
    /// The sudoers line that lets the deploy user run what cutover found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sudo_rule: Option<String>,
    /// How the new release goes live (see [`super::activation`]).
    pub activation: Activating,
}

impl FpmCommands {
    /// Whether a summary names them: cutover found the service, or the
    /// activation is not a plain reload.
    pub fn worth_saying(&self) -> bool {
        self.service.is_some() || self.activation.activation != Activation::Reload
    }

    /// The commands for a host that was not probed for them (the
    /// inventory's explicit commands only).
    pub fn as_set(php_fpm: &PhpFpm) -> Self {
        let explicit = |s: FpmSetting<'_>| match s {
            FpmSetting::Command(c) => Some(c.to_owned()),
            FpmSetting::Detect | FpmSetting::None => None,
        };
        let reloads = php_fpm.activation() == Activation::Reload;
        Self {
            reload: explicit(php_fpm.reload()).filter(|_| reloads),
            config_test: explicit(php_fpm.config_test()),
            activation: Activating { activation: php_fpm.activation(), ..Activating::default() },
            ..Self::default()
        }
    }
}

/// Lines for people naming what cutover found, hosts with the same
/// commands together: `PHP-FPM found: php8.2-fpm on web1, web2: reload
/// `...`, config test `...``, then the sudo rule. Hosts whose commands the inventory set are
/// left out.
pub fn found_lines<'a>(hosts: impl IntoIterator<Item = (&'a str, &'a FpmCommands)>) -> Vec<String> {
    let mut groups: Vec<(&FpmCommands, Vec<&str>)> = Vec::new();
    for (host, commands) in hosts.into_iter().filter(|(_, c)| c.service.is_some()) {
        match groups.iter_mut().find(|(c, _)| *c == commands) {
            Some((_, names)) => names.push(host),
            None => groups.push((commands, vec![host])),
        }
    }
    let shown = |c: &Option<String>| c.as_deref().map_or_else(|| "none".to_owned(), |c| format!("`{c}`"));
    let mut lines = Vec::new();
    for (c, names) in groups {
        let service = c.service.as_deref().unwrap_or_default();
        let (reload, config_test) = (shown(&c.reload), shown(&c.config_test));
        let hosts = names.join(", ");
        lines.push(format!("PHP-FPM found: {service} on {hosts}: reload {reload}, config test {config_test}"));
        if let Some(rule) = &c.sudo_rule {
            lines.push(format!("  sudo rule: {rule}"));
        }
    }
    lines
}

/// Whether the probe has to look for PHP-FPM: the inventory leaves the
/// reload, or a config test guarding a reload, to cutover.
pub fn needs_detection(php_fpm: &PhpFpm) -> bool {
    if php_fpm.activation() != Activation::Reload {
        return false;
    }
    match php_fpm.reload() {
        FpmSetting::None => false,
        FpmSetting::Detect => true,
        FpmSetting::Command(_) => php_fpm.config_test() == FpmSetting::Detect,
    }
}

/// The commands for a host from the inventory and what the probe found, or
/// why none can be chosen (a sentence for the preflight failure). Without
/// a reload, a config test left to cutover guards nothing and is skipped.
pub fn resolve(php_fpm: &PhpFpm, found: &FpmFound) -> Result<FpmCommands, String> {
    let mut commands = FpmCommands::as_set(php_fpm);
    if !needs_detection(php_fpm) {
        return Ok(commands);
    }
    let detect_reload = php_fpm.reload() == FpmSetting::Detect;
    let (service, running) = Service::choose(found, php_fpm.version.as_deref())?;
    if detect_reload && !running {
        return Err(format!(
            "{} is installed but not running: start it, or set `php_fpm.reload: none` when nothing is \
             reloaded after a switch",
            service.name
        ));
    }
    let sudo = if found.root { "" } else { "sudo -n " };
    let mut found_commands = Vec::new();
    if detect_reload {
        found_commands.push(service.reload(found)?);
    }
    if php_fpm.config_test() == FpmSetting::Detect {
        found_commands.push(format!("{} -t", service.binary));
    }
    if !found.root {
        let user = found.user.as_deref().unwrap_or("deploy");
        let rule = format!("{user} ALL=(root) NOPASSWD: {}", found_commands.join(", "));
        let refused: Vec<&str> =
            found_commands.iter().filter(|c| !found.sudo_allowed.contains(c)).map(String::as_str).collect();
        if !refused.is_empty() {
            return Err(format!(
                "sudo does not let {user} run `{}` without a password: add this line with `visudo -f \
                 /etc/sudoers.d/{user}`: {rule}",
                refused.join("` or `")
            ));
        }
        commands.sudo_rule = Some(rule);
    }
    let mut found_commands = found_commands.into_iter().map(|c| format!("{sudo}{c}"));
    if detect_reload {
        commands.reload = found_commands.next();
    }
    if php_fpm.config_test() == FpmSetting::Detect {
        commands.config_test = found_commands.next();
    }
    commands.service = Some(service.name);
    Ok(commands)
}

/// The FPM service that serves a host.
#[derive(Clone, Debug)]
struct Service {
    /// `php8.2-fpm` or `php-fpm`.
    name: String,
    /// `/usr/sbin/php-fpm8.2` or `/usr/sbin/php-fpm`.
    binary: String,
}

impl Service {
    fn of_binary(binary: &str) -> Option<Self> {
        let version = binary.strip_prefix("/usr/sbin/php-fpm")?;
        let valid = version.is_empty() || version.chars().all(|c| c.is_ascii_digit() || c == '.');
        valid.then(|| Self { name: format!("php{version}-fpm"), binary: binary.to_owned() })
    }

    /// Whether the service runs: said by systemd or its pid file, or a
    /// master of this host reads its config (Debian's
    /// `/etc/php/<version>/fpm/...`, or the one unversioned `php-fpm`'s).
    fn runs(&self, found: &FpmFound) -> bool {
        let config_of_master = |config: &String| {
            let version = config.strip_prefix("/etc/php/").and_then(|rest| rest.split_once("/fpm/")).map(|(v, _)| v);
            format!("/usr/sbin/php-fpm{}", version.unwrap_or_default()) == self.binary
        };
        found.running.contains(&self.binary) || found.masters.iter().any(config_of_master)
    }

    /// The service serving the host, and whether it runs.
    fn choose(found: &FpmFound, version: Option<&str>) -> Result<(Self, bool), String> {
        let mut installed: Vec<Self> = found.binaries.iter().filter_map(|b| Self::of_binary(b)).collect();
        if installed.is_empty() {
            return Err(match found.not_executable.first() {
                Some(path) => format!(
                    "{path} is there but not executable: reinstall PHP-FPM, or set `php_fpm.reload` and `php_fpm.config_test`"
                ),
                None => "no PHP-FPM found (looked for /usr/sbin/php-fpm<version> and /usr/sbin/php-fpm): \
                         install it, set `php_fpm.reload` and `php_fpm.config_test` to this host's commands, \
                         or `php_fpm.reload: none` when nothing is reloaded after a switch"
                    .to_owned(),
            });
        }
        let names = |services: &[&Self]| services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
        if let Some(version) = version {
            let wanted = format!("php{version}-fpm");
            let all: Vec<&Self> = installed.iter().collect();
            let listed = names(&all);
            installed.retain(|s| s.name == wanted);
            if installed.is_empty() {
                return Err(format!("`php_fpm.version` is {version}, but this host has {listed}"));
            }
        }
        let running: Vec<&Self> = installed.iter().filter(|s| s.runs(found)).collect();
        match (running.as_slice(), installed.as_slice()) {
            ([one], _) => Ok(((*one).clone(), true)),
            ([], [one]) => Ok((one.clone(), false)),
            (many, _) => {
                let (what, listed) = if many.is_empty() {
                    ("are installed and none runs", names(&installed.iter().collect::<Vec<_>>()))
                } else {
                    ("run", names(many))
                };
                Err(format!(
                    "several PHP-FPM services {what} ({listed}): set `php_fpm.version` to the one that serves \
                     this application"
                ))
            }
        }
    }

    /// The reload, without sudo: systemd's, or the init script's.
    fn reload(&self, found: &FpmFound) -> Result<String, String> {
        if let Some(systemctl) = &found.systemctl {
            return Ok(format!("{systemctl} reload {}", self.name));
        }
        let init = format!("/etc/init.d/{}", self.name);
        if found.init_scripts.contains(&init) {
            return Ok(format!("{init} reload"));
        }
        Err(format!("found {}, but neither systemd nor {init} to reload it with: set `php_fpm.reload`", self.name))
    }
}

#[cfg(test)]
mod tests;
