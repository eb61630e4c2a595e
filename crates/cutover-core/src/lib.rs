//! cutover-core: the model and the engine of cutover, with no SSH in it.
//!
//! # Layout
//!
//! - [`config`]: the inventory and recipe files, parsed and checked.
//! - [`fleet`]: the selected hosts with their settings resolved.
//! - [`release`]: release ids.
//! - [`deployer`]: who runs cutover and where, for locks and revisions.log.
//! - [`secrets`]: read at the start of a run, sent on stdin, masked;
//!   [`template`]: the shared files rendered from them.
//! - [`shell`]: commands as data, and the one quoting function.
//! - [`remote`]: the script each phase runs on a host.
//! - [`plan`]: the whole run as data (phases, gates, compensations).
//! - [`cleanup`]: which old releases to prune.
//! - [`source`]: resolving the commit, packing an upload.
//! - [`engine`]: runs a plan through a [`transport::Transport`], emitting
//!   [`event::Event`]s.
//! - [`transport`]: the seam to hosts; [`local`] is a host as a directory;
//!   [`scripted`] the same with faults per host and phase, for table tests;
//!   [`held`] is a script that waits for the fleet-wide go of the flip, and
//!   [`moment`] the one moment that go names.

pub mod cleanup;
pub mod config;
pub mod deployer;
pub mod engine;
pub mod event;
pub mod fleet;
pub mod held;
pub mod local;
pub mod moment;
pub mod plan;
pub mod release;
pub mod remote;
pub mod scripted;
pub mod secrets;
pub mod shell;
pub mod source;
pub mod template;
pub mod transport;
