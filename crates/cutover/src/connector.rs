//! Which transport reaches which host: `connection: local` hosts are
//! directories on this machine; `ssh` hosts go through OpenSSH.

use cutover_core::config::{Connection, Multiplex};
use cutover_core::fleet::Target;
use cutover_core::local::LocalConnector;
use cutover_core::transport::{Connector, Transport, TransportError};
use cutover_ssh::{SshConnector, SshOptions};
use futures::future::BoxFuture;

/// Picks the transport by each host's `connection`.
#[derive(Debug)]
pub struct Fleet {
    local: LocalConnector,
    /// Made only when some host uses SSH; its control directory is removed
    /// when it is dropped at the end of the run.
    ssh: Option<SshConnector>,
}

impl Fleet {
    /// The connectors `hosts` need; `multiplex` over the platform's default.
    pub fn new(hosts: &[Target], multiplex: Option<Multiplex>) -> std::io::Result<Self> {
        let ssh = if hosts.iter().any(|h| h.connection == Connection::Ssh) {
            let defaults = SshOptions::default();
            Some(SshConnector::new(SshOptions { multiplex: multiplex.unwrap_or(defaults.multiplex), ..defaults })?)
        } else {
            None
        };
        Ok(Self { local: LocalConnector, ssh })
    }
}

impl Connector for Fleet {
    fn connect<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Box<dyn Transport>, TransportError>> {
        match (target.connection, &self.ssh) {
            (Connection::Local, _) => self.local.connect(target),
            (Connection::Ssh, Some(ssh)) => ssh.connect(target),
            (Connection::Ssh, None) => {
                Box::pin(async { Err(TransportError::Unsupported { connection: "ssh".into() }) })
            }
        }
    }
}
