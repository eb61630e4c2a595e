//! Which transport reaches which host: `connection: local` hosts are
//! directories on this machine; `ssh` hosts go through OpenSSH.

use cutover_core::config::Connection;
use cutover_core::fleet::Target;
use cutover_core::local::LocalConnector;
use cutover_core::transport::{Connector, Transport, TransportError};
use futures::future::BoxFuture;

/// Picks the transport by each host's `connection`.
#[derive(Debug, Default)]
pub struct Fleet {
    local: LocalConnector,
}

impl Connector for Fleet {
    fn connect<'a>(
        &'a self,
        target: &'a Target,
    ) -> BoxFuture<'a, Result<Box<dyn Transport>, TransportError>> {
        match target.connection {
            Connection::Local => self.local.connect(target),
            Connection::Ssh => Box::pin(async {
                Err(TransportError::Unsupported {
                    connection: "ssh".into(),
                })
            }),
        }
    }
}
