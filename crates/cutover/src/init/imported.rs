//! What `init --from` carried over from another tool's files, and the
//! inventory written from it: every value quoted so that it loads as
//! written, each stage an environment, and a comment at the top listing
//! what was not carried over, with the file and line it was written on.

use indexmap::IndexMap;

use cutover_core::config::ssh_values;

use super::Framework;

/// The settings carried over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// The files read, for the header.
    pub read: Vec<String>,
    pub application: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub deploy_path: Option<String>,
    /// A deploy path as written that cutover cannot take (see [`Stage`]).
    pub unresolved_path: Option<String>,
    pub keep_releases: Option<u32>,
    /// What the tool keeps when its files do not say (Capistrano 5,
    /// Deployer 10).
    pub default_keep: u32,
    pub framework: Option<Framework>,
    pub shared_files: Vec<String>,
    pub shared_dirs: Vec<String>,
    /// Hosts of no stage.
    pub hosts: Vec<Host>,
    /// Each stage's own settings, in the order found.
    pub stages: IndexMap<String, Stage>,
    /// What was not carried over: `file:line: what, and why`.
    pub left: Vec<String>,
}

/// A stage (Capistrano's `config/deploy/<stage>.rb`, Deployer's `stage`
/// label): an environment of the inventory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stage {
    pub hosts: Vec<Host>,
    pub branch: Option<String>,
    pub deploy_path: Option<String>,
    /// A deploy path as written that cutover cannot take (`~/shop`): written
    /// as it is, so that loading the inventory refuses it until it is fixed.
    pub unresolved_path: Option<String>,
}

/// One server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Host {
    /// The name the other tool gave it (Deployer's alias), when it is not
    /// the address.
    pub name: Option<String>,
    pub address: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub roles: Vec<String>,
}

/// A server as the tools write it, `[user@]host[:port]` (an IPv6 address
/// in brackets when a port follows), checked as the inventory will check
/// it; the reason when it is no address cutover can hand to ssh.
pub fn server(spec: &str) -> Result<Host, String> {
    let spec = spec.trim();
    let why = |why: String| format!("`{spec}`: {why}");
    // A bare IPv6 address is a server too; else `[user@]host[:port]`.
    let destination = match ssh_values::check_address(spec) {
        Ok(()) => ssh_values::Destination { user: None, host: spec.to_owned(), port: None },
        Err(_) => ssh_values::destination(spec).map_err(why)?,
    };
    let address = destination.host.trim_end_matches('.').to_owned();
    Ok(Host { name: None, address, user: destination.user, port: destination.port, roles: Vec::new() })
}

/// Adds `host` to `hosts`, or its roles to the same server already there.
pub fn add_host(hosts: &mut Vec<Host>, host: Host) {
    match hosts.iter_mut().find(|h| h.address == host.address && h.port == host.port && h.user == host.user) {
        Some(same) => {
            for role in host.roles {
                if !same.roles.contains(&role) {
                    same.roles.push(role);
                }
            }
        }
        None => hosts.push(host),
    }
}

/// A deploy path as cutover takes it: absolute, without a trailing slash.
pub fn deploy_path(path: &str) -> Result<String, String> {
    let trimmed = path.trim();
    let trimmed = if trimmed.len() > 1 { trimmed.trim_end_matches('/') } else { trimmed };
    if !trimmed.starts_with('/') || trimmed == "/" {
        return Err(format!(
            "`{path}`: cutover needs an absolute path other than `/` (write the deploy user's home out in full)"
        ));
    }
    Ok(trimmed.to_owned())
}

/// YAML's double-quoted scalar for `s` (JSON's string is one): it reads
/// back as written, whatever it holds.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|i| quoted(i)).collect::<Vec<_>>().join(", "))
}

impl Imported {
    /// The repository, without credentials written into its URL (the
    /// inventory is shared; the hosts authenticate on their own); why, when
    /// some were left out.
    pub fn set_repository(&mut self, url: &str) -> Result<(), String> {
        let (url, removed) = super::without_credentials(url);
        self.repository = Some(url);
        if removed {
            return Err("the credentials in the URL were left out: the hosts authenticate on their own".into());
        }
        Ok(())
    }

    /// The inventory. `fallback` fills what the files did not say (the
    /// application's name, its git remote) as plain `init` would.
    pub fn inventory(&self, tool: &str, fallback: &super::Found) -> String {
        let mut out = String::new();
        let push = |out: &mut String, line: String| {
            out.push_str(&line);
            out.push('\n');
        };
        push(
            &mut out,
            format!("# cutover.yaml written by `cutover init --from {tool}` from {}.", self.read.join(", ")),
        );
        push(
            &mut out,
            "# See docs/inventory.md; check the hosts with `cutover check`, every command with `cutover plan`.".into(),
        );
        if !self.left.is_empty() {
            push(&mut out, "#".into());
            push(&mut out, "# Not carried over (do these by hand):".into());
            for left in &self.left {
                push(&mut out, format!("#   {}", left.replace('\n', " ")));
            }
        }
        let application = self.application.clone().unwrap_or_else(|| fallback.application.clone());
        push(&mut out, format!("application: {}", quoted(&application)));
        // Never a guess (another stage's path, say): a path not found is
        // written so that loading refuses it until it is.
        let base_path = self.deploy_path.clone();
        match (&base_path, &self.unresolved_path) {
            (None, Some(written)) => {
                push(&mut out, format!("deploy_path: {}   # not absolute: write it out in full", quoted(written)));
            }
            (Some(path), _) => push(&mut out, format!("deploy_path: {}", quoted(path))),
            (None, None) if !self.stages.is_empty() => {
                push(&mut out, "deploy_path: \"\"   # each environment below sets its own, or write one here".into());
            }
            (None, None) => push(&mut out, "deploy_path: \"\"   # none was found: write the absolute path".into()),
        }
        push(&mut out, format!("keep_releases: {}", self.keep_releases.unwrap_or(self.default_keep)));
        match self.repository.as_ref().or(fallback.repository.as_ref()) {
            Some(repository) => {
                push(&mut out, format!("repository: {}", quoted(repository)));
                if let Some(branch) = self.branch.as_ref().or(fallback.branch.as_ref()) {
                    push(&mut out, format!("branch: {}", quoted(branch)));
                }
            }
            None => {
                push(&mut out, "# No repository found: this directory is uploaded to every host.".into());
                push(&mut out, "source: \".\"".into());
                push(&mut out, "exclude: [vendor, node_modules, .cutover]".into());
            }
        }
        let framework = self.framework.unwrap_or(fallback.framework);
        push(&mut out, format!("recipe: {}", framework.recipe()));
        if !self.shared_files.is_empty() || !self.shared_dirs.is_empty() {
            push(&mut out, "shared:".into());
            if !self.shared_files.is_empty() {
                push(
                    &mut out,
                    format!(
                        "  files: {}   # each must exist on every host before the first deploy",
                        list(&self.shared_files)
                    ),
                );
            }
            if !self.shared_dirs.is_empty() {
                push(&mut out, format!("  dirs: {}", list(&self.shared_dirs)));
            }
        }
        push(
            &mut out,
            "defaults:\n  connection: ssh\n  host_key_checking: strict   # the host's key must be in known_hosts"
                .into(),
        );
        if self.stages.is_empty() {
            push(&mut out, "hosts:".into());
            hosts_yaml(&mut out, &self.hosts, "  ");
            return out;
        }
        push(&mut out, "environments:   # `cutover deploy <name>` picks one".into());
        for (name, stage) in &self.stages {
            push(&mut out, format!("  {}:", quoted(name)));
            if let Some(path) = &stage.unresolved_path {
                push(&mut out, format!("    deploy_path: {}   # not absolute: write it out in full", quoted(path)));
            } else if let Some(path) = stage.deploy_path.as_ref().filter(|p| Some(*p) != base_path.as_ref()) {
                push(&mut out, format!("    deploy_path: {}", quoted(path)));
            }
            if let Some(branch) = stage.branch.as_ref().filter(|b| Some(*b) != self.branch.as_ref()) {
                push(&mut out, format!("    branch: {}", quoted(branch)));
            }
            push(&mut out, "    hosts:".into());
            hosts_yaml(&mut out, &stage.hosts, "      ");
        }
        out
    }
}

/// `hosts` as a YAML list at `indent`; a placeholder when there are none.
fn hosts_yaml(out: &mut String, hosts: &[Host], indent: &str) {
    if hosts.is_empty() {
        out.push_str(&format!(
            "{indent}- name: web1\n{indent}  address: 203.0.113.10   # a placeholder: no server was found\n{indent}  roles: [primary]\n"
        ));
        return;
    }
    for host in hosts {
        let name = host.name.as_ref().unwrap_or(&host.address);
        out.push_str(&format!("{indent}- name: {}\n{indent}  address: {}\n", quoted(name), quoted(&host.address)));
        if let Some(user) = &host.user {
            out.push_str(&format!("{indent}  user: {}\n", quoted(user)));
        }
        if let Some(port) = host.port {
            out.push_str(&format!("{indent}  port: {port}\n"));
        }
        if !host.roles.is_empty() {
            out.push_str(&format!("{indent}  roles: {}\n", list(&host.roles)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_read_as_ssh_takes_them_or_refused_with_the_reason() {
        let host = server("deploy@web1.example.com:2222").expect("a server");
        assert_eq!(
            (host.user.as_deref(), host.address.as_str(), host.port),
            (Some("deploy"), "web1.example.com", Some(2222))
        );
        let v6 = server("ops@[2001:db8::1]:22").expect("an IPv6 server");
        assert_eq!((v6.address.as_str(), v6.port), ("2001:db8::1", Some(22)));
        assert_eq!(server("2001:db8::2").expect("bare IPv6").address, "2001:db8::2");
        assert_eq!(server("web2.example.com.").expect("a trailing dot").address, "web2.example.com");
        for bad in ["web 1", "-oProxyCommand=x", "web1:99999", "$(id)@web1", "[::1"] {
            assert!(server(bad).is_err(), "{bad}");
        }
        assert_eq!(deploy_path("/var/www/shop/").as_deref(), Ok("/var/www/shop"));
        assert!(deploy_path("~/shop").is_err());
    }

    #[test]
    fn the_same_server_twice_is_one_host_with_both_roles() {
        let mut hosts = Vec::new();
        for role in ["app", "web", "app"] {
            let mut host = server("deploy@a.example.com").expect("server");
            host.roles = vec![role.to_owned()];
            add_host(&mut hosts, host);
        }
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].roles, ["app", "web"]);
    }
}
