//! The values the inventory hands to `ssh`: host names and addresses, user
//! names, ports, jump hosts and the two files. Each is checked here, before
//! any ssh runs, whatever OpenSSH version is installed: ssh reads a
//! destination that starts with `-` as an option, and OpenSSH before 10.3
//! builds a jump host into a shell command run on this machine. So only
//! the usual character sets pass: no leading `-`, no whitespace, quotes,
//! `$`, backticks, `;|&<>()`, `%`, NUL or newline.

use std::borrow::Borrow;
use std::path::Path;

use serde_saphyr::Spanned;

use super::error::ConfigError;
use super::inventory::{Connection, Inventory};

/// Checks every SSH value of `defaults:` and of each SSH host.
pub(super) fn check(inv: &Inventory) -> Result<(), ConfigError> {
    let d = &inv.defaults;
    each(&d.user, "defaults.user", user)?;
    each(&d.port, "defaults.port", port)?;
    each(&d.proxy_jump, "defaults.proxy_jump", jump_hosts)?;
    each(&d.identity_file, "defaults.identity_file", file)?;
    each(&d.known_hosts, "defaults.known_hosts", file)?;
    for (i, host) in inv.hosts.iter().enumerate() {
        let field = |key: &str| format!("hosts[{i}].{key}");
        if host.settings(d).connection.unwrap_or_default() == Connection::Ssh {
            match &host.address {
                Some(_) => each(&host.address, &field("address"), address)?,
                // The name is the address.
                None => each(&Some(host.name.clone()), &field("name"), address)?,
            }
        }
        each(&host.user, &field("user"), user)?;
        each(&host.port, &field("port"), port)?;
        each(&host.proxy_jump, &field("proxy_jump"), jump_hosts)?;
        each(&host.identity_file, &field("identity_file"), file)?;
        each(&host.known_hosts, &field("known_hosts"), file)?;
    }
    Ok(())
}

fn each<T: Borrow<U>, U: ?Sized>(
    value: &Option<Spanned<T>>,
    field: &str,
    rule: fn(&U) -> Result<(), String>,
) -> Result<(), ConfigError> {
    let Some(value) = value else { return Ok(()) };
    rule(value.value.borrow()).map_err(|message| {
        ConfigError::new(Path::new(""), message).at(&value.referenced).field(field).hint(hint(field))
    })
}

fn hint(field: &str) -> &'static str {
    match field.rsplit('.').next().unwrap_or_default() {
        "user" => "a user name such as `deploy`",
        "port" => "a port from 1 to 65535",
        "proxy_jump" => {
            "one bastion or a comma-separated chain: `bastion.example.com`, `ops@10.0.0.5:2222`, `[2001:db8::1]:22`"
        }
        "identity_file" | "known_hosts" => {
            "a path without quotes, whitespace or control characters, such as `~/.ssh/deploy_ed25519`"
        }
        _ => {
            "a host name (`web1.example.com`, an alias of ~/.ssh/config), an IPv4 address or an IPv6 address without brackets"
        }
    }
}

/// Characters of a host name or alias besides ASCII letters and digits.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

/// A host name, alias, IPv4 or IPv6 address (no brackets), as a host's
/// `address` (or name, without one).
fn address(value: &str) -> Result<(), String> {
    if value.contains(':') {
        return value
            .parse::<std::net::Ipv6Addr>()
            .map(drop)
            .map_err(|_| format!("`{}` is not an IPv6 address (and a host name has no `:`)", shown(value)));
    }
    host_name(value)
}

fn host_name(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is empty".to_owned());
    }
    if value.starts_with(['-', '.']) {
        return Err(format!("`{}` starts with `{}`: ssh would read it as an option", shown(value), &value[..1]));
    }
    match value.chars().find(|c| !is_name_char(*c)) {
        Some(c) => Err(format!("`{}` has {}, which no host name has", shown(value), what(c))),
        None if value.len() > 253 => Err("is longer than 253 characters, which no host name is".to_owned()),
        None => Ok(()),
    }
}

/// A user name: letters, digits, `_`, `.` and `-`, not starting with `-`.
fn user(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is empty".to_owned());
    }
    if value.starts_with('-') {
        return Err(format!("`{}` starts with `-`: ssh would read it as an option", shown(value)));
    }
    match value.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        Some(c) => Err(format!("`{}` has {}, which no user name has", shown(value), what(c))),
        None if value.len() > 64 => Err("is longer than 64 characters".to_owned()),
        None => Ok(()),
    }
}

fn port(value: &u16) -> Result<(), String> {
    if *value == 0 { Err("port 0 cannot be connected to".to_owned()) } else { Ok(()) }
}

/// Jump hosts, `[user@]host[:port]` each, separated by commas; an IPv6
/// host in brackets.
fn jump_hosts(value: &str) -> Result<(), String> {
    for hop in value.split(',') {
        let hop = hop.trim();
        if hop.is_empty() {
            return Err(format!("`{}` has an empty jump host", shown(value)));
        }
        jump_host(hop).map_err(|why| format!("jump host `{}`: {why}", shown(hop)))?;
    }
    Ok(())
}

fn jump_host(hop: &str) -> Result<(), String> {
    destination(hop).map(drop)
}

/// `[user@]host[:port]` as ssh takes it (an IPv6 host in brackets), each
/// part checked as the inventory's own values are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Reads and checks a destination (see [`Destination`]); why not.
pub fn destination(spec: &str) -> Result<Destination, String> {
    let (user_part, rest) = match spec.rsplit_once('@') {
        Some((u, rest)) => (Some(u), rest),
        None => (None, spec),
    };
    if let Some(u) = user_part {
        user(u).map_err(|why| format!("the user {why}"))?;
    }
    let (host, port_part) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (ip, after) = bracketed.split_once(']').ok_or("an IPv6 address opened with `[` is not closed")?;
        ip.parse::<std::net::Ipv6Addr>().map_err(|_| format!("`{}` is not an IPv6 address", shown(ip)))?;
        match after {
            "" => (ip, None),
            _ => (ip, Some(after.strip_prefix(':').ok_or("only `:port` may follow `]`")?)),
        }
    } else if rest.matches(':').count() > 1 {
        return Err("an IPv6 address is written in brackets: `[2001:db8::1]:22`".to_owned());
    } else {
        let (host, port_part) = match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        host_name(host)?;
        (host, port_part)
    };
    let port = match port_part {
        Some(p) => {
            let number: u16 = p.parse().map_err(|_| format!("`{}` is not a port", shown(p)))?;
            port(&number)?;
            Some(number)
        }
        None => None,
    };
    Ok(Destination { user: user_part.map(str::to_owned), host: host.to_owned(), port })
}

/// Checks a host's `address` as the inventory does: a host name, alias,
/// IPv4 or IPv6 address (no brackets).
pub fn check_address(value: &str) -> Result<(), String> {
    address(value)
}

/// Checks a user name as the inventory does.
pub fn check_user(value: &str) -> Result<(), String> {
    user(value)
}

/// A file handed to ssh: ssh splits `-o` values at whitespace and reads
/// quotes in them.
fn file(value: &Path) -> Result<(), String> {
    let text = value.to_string_lossy();
    if text.is_empty() {
        return Err("is empty".to_owned());
    }
    match text.chars().find(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'')) {
        Some(c) => Err(format!("`{}` has {}, which ssh cannot take in a path", shown(&text), what(c))),
        None => Ok(()),
    }
}

/// A value for an error message, control characters escaped.
fn shown(value: &str) -> String {
    value.escape_debug().to_string()
}

/// A character, in words when it cannot be shown.
fn what(c: char) -> String {
    match c {
        '\0' => "a NUL byte".to_owned(),
        '\n' => "a newline".to_owned(),
        '`' => "a backtick".to_owned(),
        c if c.is_whitespace() => "whitespace".to_owned(),
        c if c.is_control() => format!("a control character ({})", c.escape_debug()),
        c => format!("`{c}`"),
    }
}

#[cfg(test)]
mod tests;
