//! cutover-ssh: the [`cutover_core::transport::Transport`] over the system's
//! OpenSSH, through the `openssh` crate's multiplexing (native or process,
//! see [`platform`]): one master connection per host, every command of
//! every phase a channel on it.
//!
//! # Layout
//!
//! - [`connector`]: opens a master per host with the inventory's settings
//!   over `~/.ssh/config`, strict host keys by default, bounded concurrent
//!   connection starts.
//! - [`transport`]: runs one script per round trip, with a timeout, a bounded
//!   number of concurrent commands per host, stdin for uploads.
//! - [`classify`]: turns OpenSSH's failures into cutover's kinds.
//! - [`platform`]: what differs between Linux and macOS: the default
//!   multiplexing mode, the control directory, the open-files limit.

pub mod classify;
pub mod connector;
pub mod platform;
pub mod transport;

pub use connector::{SshConnector, SshOptions};
pub use transport::SshTransport;
