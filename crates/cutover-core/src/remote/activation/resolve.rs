//! Which activation a host gets, from the inventory and what the probe
//! found there: the pool's socket and whether the deploy user may connect
//! to it, `cgi-fcgi`, and for blue-green which master nginx's link
//! resolves to and the masters' `process_control_timeout`.

use crate::config::inventory::{Activation, BlueGreen, PhpFpm};
use crate::remote::fpm::FpmFound;

use super::{Activating, Colors};

/// A host's activation and the warnings it calls for, or why the run
/// cannot go on there (a sentence for the preflight failure). `reloads`:
/// a reload follows the switch.
pub fn resolve(php_fpm: &PhpFpm, found: &FpmFound, reloads: bool) -> Result<(Activating, Vec<String>), String> {
    let activation = php_fpm.activation();
    let mut warnings = Vec::new();
    if let (Some(bg), Some(color)) = (php_fpm.blue_green.as_ref(), live_color(php_fpm, found))
        && activation != Activation::BlueGreen
    {
        return Err(format!(
            "nginx is served by the {color} master (through {}): activation {} would act on another pool; deploy \
             with activation blue-green",
            bg.value.link,
            activation.name()
        ));
    }
    let needs_tool = || {
        format!(
            "activation {} asks PHP-FPM through its socket with `cgi-fcgi`, which is not installed: install it \
             (Debian and Ubuntu: libfcgi-bin; RHEL: fcgi)",
            activation.name()
        )
    };
    match activation {
        Activation::Reload => {
            let socket = socket_of(php_fpm, found).filter(|s| s != "none");
            let why_not = if !reloads {
                None
            } else if !found.fastcgi {
                Some("`cgi-fcgi` is not installed (Debian and Ubuntu: libfcgi-bin)".to_owned())
            } else if php_fpm.socket.as_deref() == Some("none") {
                None
            } else {
                match &socket {
                    None => Some(format!("the pool's socket is not known ({}): set `php_fpm.socket`", listens(found))),
                    Some(s) => reachable(found, s).err(),
                }
            };
            if let Some(why) = &why_not {
                warnings.push(format!("cutover cannot wait for PHP-FPM to be ready after the reload: {why}"));
            }
            let wait_ready = reloads && why_not.is_none() && socket.is_some();
            Ok((Activating { activation, socket, wait_ready, colors: None }, warnings))
        }
        Activation::Warm => {
            if !found.fastcgi {
                return Err(needs_tool());
            }
            let Some(socket) = socket_of(php_fpm, found).filter(|s| s != "none") else {
                return Err(format!(
                    "activation warm needs the pool's socket, and the pool configs listen on {}: set \
                     `php_fpm.socket`",
                    listens(found)
                ));
            };
            reachable(found, &socket).map_err(|why| format!("activation warm: {why}"))?;
            Ok((Activating { activation, socket: Some(socket), wait_ready: false, colors: None }, warnings))
        }
        Activation::BlueGreen => {
            let Some(bg) = php_fpm.blue_green.as_ref().map(|b| &b.value) else {
                return Err("activation blue-green needs `php_fpm.blue_green`".to_owned());
            };
            if !found.fastcgi {
                return Err(needs_tool());
            }
            if found.link_not_link {
                return Err(format!(
                    "{} is not a symbolic link: cutover moves it between the two masters' sockets; make it a link \
                     to the socket that serves now (`ln -sfn /run/php/php8.2-fpm.sock {}`), then point nginx's \
                     `fastcgi_pass` at it",
                    bg.link, bg.link
                ));
            }
            if let Some(name) = found.master_sudo_denied.first() {
                let command = match name.as_str() {
                    "blue.start" => &bg.blue.start,
                    "blue.stop" => &bg.blue.stop,
                    "green.start" => &bg.green.start,
                    _ => &bg.green.stop,
                };
                return Err(format!(
                    "sudo does not let the deploy user run `{command}` (php_fpm.blue_green.{name}) without a \
                     password: add a rule for it with `visudo -f /etc/sudoers.d/<user>`"
                ));
            }
            warnings.extend(drain_safety(php_fpm, bg, found)?);
            if found.link_denied {
                warnings.push(format!(
                    "the deploy user may not connect to the live master's socket (through {}): the idle master is \
                     warmed with every .php file of the release instead of what the live one has cached; {}",
                    bg.link, OPEN_TO_THE_DEPLOY_USER
                ));
            }
            let live = found.link.clone();
            let (idle_name, idle, old) = match live_color(php_fpm, found) {
                Some("blue") => ("green", bg.green.clone(), Some(bg.blue.clone())),
                Some(_) => ("blue", bg.blue.clone(), Some(bg.green.clone())),
                None => ("blue", bg.blue.clone(), None),
            };
            let colors = Colors { link: bg.link.clone(), live, idle_name, idle, old };
            Ok((Activating { activation, socket: None, wait_ready: false, colors: Some(colors) }, warnings))
        }
    }
}

/// The master nginx's link resolves to: the same file as its socket, or
/// (a master that is not running has no socket file) its path as written.
fn live_color<'a>(php_fpm: &PhpFpm, found: &'a FpmFound) -> Option<&'a str> {
    let bg = &php_fpm.blue_green.as_ref()?.value;
    match found.link_is.as_deref() {
        Some(color @ ("blue" | "green")) => Some(color),
        _ => match found.link.as_deref() {
            Some(s) if s == bg.blue.socket => Some("blue"),
            Some(s) if s == bg.green.socket => Some("green"),
            _ => None,
        },
    }
}

/// The drain of the old master (SIGQUIT) waits for requests in flight only
/// up to its `process_control_timeout`: refused at 0 as a reload is, and a
/// warning where cutover cannot read it.
fn drain_safety(php_fpm: &PhpFpm, bg: &BlueGreen, found: &FpmFound) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    for (file, timeout) in &found.master_timeouts {
        if timeout.trim().trim_end_matches(['s', 'm', 'h', 'd']).trim() == "0" {
            if !php_fpm.allow_killing_requests {
                return Err(format!(
                    "{file} has process_control_timeout 0: draining that master kills the requests in flight. \
                     Set `process_control_timeout = 10s` in its [global] section, or \
                     `php_fpm.allow_killing_requests: true` to drain anyway"
                ));
            }
            warnings.push(format!("{file}: process_control_timeout is 0: its drain kills the requests in flight"));
        }
    }
    for file in &found.master_configs_unread {
        warnings.push(format!("cannot read {file}: its process_control_timeout is not checked"));
    }
    for (color, master) in [("blue", &bg.blue), ("green", &bg.green)] {
        if master.config.is_none() {
            warnings.push(format!(
                "set `php_fpm.blue_green.{color}.config` so that cutover checks its process_control_timeout (the \
                 drain waits for requests in flight only that long)"
            ));
        }
    }
    Ok(warnings)
}

/// The socket cutover speaks to: the inventory's, or the one the pool
/// configs listen on.
fn socket_of(php_fpm: &PhpFpm, found: &FpmFound) -> Option<String> {
    php_fpm.socket.clone().or_else(|| single_listen(&found.listens))
}

/// Whether the deploy user may connect to `socket`, as the probe saw it (a
/// `host:port` is not checked).
fn reachable(found: &FpmFound, socket: &str) -> Result<(), String> {
    if found.sockets_denied.iter().any(|s| s == socket) {
        return Err(format!("the deploy user may not connect to {socket}: {OPEN_TO_THE_DEPLOY_USER}"));
    }
    if found.sockets_missing.iter().any(|s| s == socket) {
        return Err(format!("{socket} does not exist: is the pool running, and is `php_fpm.socket` right?"));
    }
    Ok(())
}

/// How to let the deploy user connect to a pool's socket.
const OPEN_TO_THE_DEPLOY_USER: &str = "connecting needs write permission on the socket: set the pool's \
    `listen.group` to a group of the deploy user (often www-data) with `listen.mode = 0660`, or add the deploy \
    user to the socket's group";

fn listens(found: &FpmFound) -> String {
    if found.listens.is_empty() { "none found".to_owned() } else { found.listens.join(", ") }
}

/// The one socket the pool configs listen on (a bare port is on
/// 127.0.0.1), if there is exactly one.
fn single_listen(listens: &[String]) -> Option<String> {
    let mut all: Vec<String> = listens
        .iter()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty() && !l.contains('$'))
        .map(|l| if l.chars().all(|c| c.is_ascii_digit()) { format!("127.0.0.1:{l}") } else { l })
        .collect();
    all.sort();
    all.dedup();
    match all.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}
