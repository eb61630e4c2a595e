//! The fleet of one run: the selected hosts with every setting resolved, and
//! which of them is the primary (the one that runs `once` steps).

use std::path::Path;

use indexmap::IndexMap;

use crate::config::inventory::HostSettings;
use crate::config::{Connection, LoadedInventory};

/// One host, ready to connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub connection: Connection,
    /// Hostname or IP for SSH; an absolute directory for a local host.
    pub address: String,
    pub settings: HostSettings,
    pub roles: Vec<String>,
    /// The inventory's vars with the host's own over them.
    pub vars: IndexMap<String, String>,
    /// The application's directory as the host's shell sees it.
    pub deploy_path: String,
}

/// Which hosts a command works on.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Host names; empty means every host.
    pub hosts: Vec<String>,
    /// Roles; empty means every role.
    pub roles: Vec<String>,
}

/// A selection that matches nothing, or names an unknown host or role.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectionError {
    #[error("unknown host `{0}` in --hosts")]
    UnknownHost(String),
    #[error("no host has the role `{role}` named in --roles (the inventory's roles: {known})")]
    UnknownRole { role: String, known: String },
    #[error("no host is both in --hosts {hosts} and has one of --roles {roles}")]
    Empty { hosts: String, roles: String },
}

/// The selected hosts, in inventory order.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub hosts: Vec<Target>,
    primary: usize,
}

impl Fleet {
    /// Resolves the inventory's hosts that `selection` picks.
    pub fn select(loaded: &LoadedInventory, selection: &Selection) -> Result<Self, SelectionError> {
        let inv = &loaded.inventory;
        for role in &selection.roles {
            if !inv.hosts.iter().any(|h| h.roles.value.contains(role)) {
                let mut known: Vec<&str> =
                    inv.hosts.iter().flat_map(|h| h.roles.value.iter().map(String::as_str)).collect();
                known.sort_unstable();
                known.dedup();
                let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
                return Err(SelectionError::UnknownRole { role: role.clone(), known });
            }
        }
        for name in &selection.hosts {
            if !inv.hosts.iter().any(|h| &h.name.value == name) {
                return Err(SelectionError::UnknownHost(name.clone()));
            }
        }
        let hosts: Vec<Target> = inv
            .hosts
            .iter()
            .filter(|h| selection.hosts.is_empty() || selection.hosts.contains(&h.name.value))
            .filter(|h| selection.roles.is_empty() || h.roles.value.iter().any(|r| selection.roles.contains(r)))
            .map(|h| {
                let settings = h.settings(&inv.defaults);
                let connection = settings.connection.unwrap_or_default();
                let (address, deploy_path) = match connection {
                    Connection::Ssh => (h.address().unwrap_or(&h.name.value).to_owned(), inv.deploy_path.value.clone()),
                    Connection::Local => local_paths(&loaded.dir, h.address(), &inv.deploy_path.value),
                };
                let mut vars: IndexMap<String, String> =
                    inv.vars.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect();
                vars.extend(h.vars.iter().map(|(k, v)| (k.clone(), v.value.clone())));
                Target {
                    name: h.name.value.clone(),
                    connection,
                    address,
                    settings,
                    roles: h.roles.value.clone(),
                    vars,
                    deploy_path,
                }
            })
            .collect();
        if hosts.is_empty() {
            return Err(SelectionError::Empty { hosts: selection.hosts.join(","), roles: selection.roles.join(",") });
        }
        let primary = hosts.iter().position(|h| h.roles.iter().any(|r| r == "primary")).unwrap_or(0);
        Ok(Self { hosts, primary })
    }

    /// The host that runs `once` steps.
    pub fn primary(&self) -> &Target {
        &self.hosts[self.primary]
    }

    pub fn is_primary(&self, target: &Target) -> bool {
        self.primary().name == target.name
    }

    pub fn names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }
}

/// A local host's root directory (absolute) and the deploy path inside it.
fn local_paths(dir: &Path, address: Option<&str>, deploy_path: &str) -> (String, String) {
    let root = dir.join(address.unwrap_or("."));
    let root = std::path::absolute(&root).unwrap_or(root);
    let deploy = root.join(deploy_path.trim_start_matches('/'));
    (root.display().to_string(), deploy.display().to_string())
}
