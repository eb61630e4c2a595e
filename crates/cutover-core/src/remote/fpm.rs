//! PHP-FPM on a host: what the probe finds (the FPM programs, the masters
//! running, how services are managed) and the reload and config test that
//! follow from it when the inventory leaves them to cutover.
//!
//! Debian and Ubuntu install `/usr/sbin/php-fpm<version>` as the service
//! `php<version>-fpm`; RHEL-family hosts `/usr/sbin/php-fpm` as `php-fpm`.
//! The master that runs says which one serves the host; systemd reloads it
//! when systemd runs, the service's init script otherwise. Both commands run
//! through `sudo -n` unless the deploy user is root, so the one sudo rule of
//! docs/ssh.md covers them.

use serde::Serialize;

use crate::config::inventory::{FpmSetting, PhpFpm};
use crate::shell::Script;

/// The probe's lines about PHP-FPM: `fpm-root`, `fpm-binary <path>`,
/// `fpm-master <command line>`, `fpm-systemctl <path>`, `fpm-init <path>`.
/// The master's title is matched through `[:]` so that grep, whose own
/// command line holds the pattern, never matches itself.
const DETECT: &[&str] = &[
    r#"if [ "$(id -u)" = 0 ]; then echo "fpm-root"; fi"#,
    r#"for b in /usr/sbin/php-fpm*; do if [ -x "$b" ]; then echo "fpm-binary $b"; fi; done"#,
    r#"for m in $(grep -a -l 'php-fpm[:] master process' /proc/[0-9]*/cmdline 2>/dev/null); do t=$(tr '\0' ' ' < "$m" 2>/dev/null) && echo "fpm-master $t"; done"#,
    r#"if [ -d /run/systemd/system ]; then for c in /usr/bin/systemctl /bin/systemctl; do if [ -x "$c" ]; then echo "fpm-systemctl $c"; break; fi; done; fi"#,
    r#"for i in /etc/init.d/php*-fpm; do if [ -x "$i" ]; then echo "fpm-init $i"; fi; done"#,
];

/// Adds the detection lines to a probe script; none of them fails.
pub(crate) fn detect(script: &mut Script) {
    for line in DETECT {
        script.line(line);
    }
}

/// What the probe found of PHP-FPM on a host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FpmFound {
    /// The deploy user is root: no sudo.
    pub root: bool,
    /// FPM programs installed (`/usr/sbin/php-fpm8.2`).
    pub binaries: Vec<String>,
    /// The config file of each master running
    /// (`/etc/php/8.2/fpm/php-fpm.conf`).
    pub masters: Vec<String>,
    /// `systemctl`, when systemd manages the host's services.
    pub systemctl: Option<String>,
    /// Init scripts of FPM services (`/etc/init.d/php8.2-fpm`).
    pub init_scripts: Vec<String>,
}

impl FpmFound {
    /// Reads one probe line; false when the line is not about PHP-FPM.
    pub(crate) fn read(&mut self, key: &str, value: &str) -> bool {
        match key {
            "fpm-root" => self.root = true,
            "fpm-binary" => self.binaries.push(value.to_owned()),
            "fpm-master" => self.masters.extend(master_config(value)),
            "fpm-systemctl" => self.systemctl = Some(value.to_owned()),
            "fpm-init" => self.init_scripts.push(value.to_owned()),
            _ => return false,
        }
        true
    }
}

/// The config file in a master's title,
/// `php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)`.
fn master_config(title: &str) -> Option<String> {
    let (_, rest) = title.split_once('(')?;
    let (config, _) = rest.rsplit_once(')')?;
    Some(config.to_owned())
}

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
}

impl FpmCommands {
    /// The commands for a host that was not probed for them (the
    /// inventory's explicit commands only).
    pub fn as_set(php_fpm: &PhpFpm) -> Self {
        let explicit = |s: FpmSetting<'_>| match s {
            FpmSetting::Command(c) => Some(c.to_owned()),
            FpmSetting::Detect | FpmSetting::None => None,
        };
        Self { service: None, reload: explicit(php_fpm.reload()), config_test: explicit(php_fpm.config_test()) }
    }
}

/// Lines for people naming what cutover found, hosts with the same
/// commands together: `php8.2-fpm on web1, web2: reload `...`, config test `...``.
/// Hosts whose commands the inventory set are left out.
pub fn found_lines<'a>(hosts: impl IntoIterator<Item = (&'a str, &'a FpmCommands)>) -> Vec<String> {
    let mut groups: Vec<(&FpmCommands, Vec<&str>)> = Vec::new();
    for (host, commands) in hosts.into_iter().filter(|(_, c)| c.service.is_some()) {
        match groups.iter_mut().find(|(c, _)| *c == commands) {
            Some((_, names)) => names.push(host),
            None => groups.push((commands, vec![host])),
        }
    }
    let shown = |c: &Option<String>| c.as_deref().map_or_else(|| "none".to_owned(), |c| format!("`{c}`"));
    groups
        .into_iter()
        .map(|(c, names)| {
            let service = c.service.as_deref().unwrap_or_default();
            let (reload, config_test) = (shown(&c.reload), shown(&c.config_test));
            format!("{service} on {}: reload {reload}, config test {config_test}", names.join(", "))
        })
        .collect()
}

/// Whether the probe has to look for PHP-FPM: the inventory leaves the
/// reload, or a config test guarding a reload, to cutover.
pub fn needs_detection(php_fpm: &PhpFpm) -> bool {
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
    let (reload, config_test) = (php_fpm.reload(), php_fpm.config_test());
    if reload == FpmSetting::None {
        return Ok(FpmCommands::as_set(php_fpm));
    }
    let mut commands = FpmCommands::as_set(php_fpm);
    if reload != FpmSetting::Detect && config_test != FpmSetting::Detect {
        return Ok(commands);
    }
    let service = Service::choose(found)?;
    let sudo = if found.root { "" } else { "sudo -n " };
    if reload == FpmSetting::Detect {
        commands.reload = Some(service.reload(found, sudo)?);
    }
    if config_test == FpmSetting::Detect {
        commands.config_test = Some(format!("{sudo}{} -t", service.binary));
    }
    commands.service = Some(service.name);
    Ok(commands)
}

/// The FPM service that serves a host.
#[derive(Debug)]
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

    /// The program of the master reading `config`: Debian's
    /// `/etc/php/<version>/fpm/...`, or the one unversioned `php-fpm`.
    fn of_master<'a>(config: &str, binaries: &'a [Self]) -> Option<&'a Self> {
        let version = config.strip_prefix("/etc/php/").and_then(|rest| rest.split_once("/fpm/")).map(|(v, _)| v);
        let wanted = format!("/usr/sbin/php-fpm{}", version.unwrap_or_default());
        binaries.iter().find(|s| s.binary == wanted)
    }

    fn choose(found: &FpmFound) -> Result<Self, String> {
        let installed: Vec<Self> = found.binaries.iter().filter_map(|b| Self::of_binary(b)).collect();
        if installed.is_empty() {
            return Err("no PHP-FPM found (looked for /usr/sbin/php-fpm<version> and /usr/sbin/php-fpm): \
                        install it, set `php_fpm.reload` and `php_fpm.config_test` to this host's commands, \
                        or `php_fpm.reload: none` when nothing is reloaded after a switch"
                .to_owned());
        }
        // A master of no installed service (one in a container, seen
        // through /proc) says nothing about this host's service.
        let mut running: Vec<&Self> = Vec::new();
        for service in found.masters.iter().filter_map(|config| Self::of_master(config, &installed)) {
            if !running.iter().any(|r| r.name == service.name) {
                running.push(service);
            }
        }
        let none_runs = running.is_empty();
        let candidates: Vec<&Self> = if none_runs { installed.iter().collect() } else { running };
        match candidates.as_slice() {
            [one] => Ok(Self { name: one.name.clone(), binary: one.binary.clone() }),
            many => {
                let names: Vec<&str> = many.iter().map(|s| s.name.as_str()).collect();
                let what = if none_runs { "are installed and none runs" } else { "run" };
                Err(format!(
                    "several PHP-FPM services {what} ({}): set `php_fpm.reload` and `php_fpm.config_test` \
                     for the one that serves this application",
                    names.join(", ")
                ))
            }
        }
    }

    fn reload(&self, found: &FpmFound, sudo: &str) -> Result<String, String> {
        if let Some(systemctl) = &found.systemctl {
            return Ok(format!("{sudo}{systemctl} reload {}", self.name));
        }
        let init = format!("/etc/init.d/{}", self.name);
        if found.init_scripts.contains(&init) {
            return Ok(format!("{sudo}{init} reload"));
        }
        Err(format!("found {}, but neither systemd nor {init} to reload it with: set `php_fpm.reload`", self.name))
    }
}

#[cfg(test)]
mod tests;
