//! The CLI against a fleet of local hosts (directories), through the real
//! `cutover` binary. One test binary; each module is a set of stories.

mod bad_input;
mod check;
mod completions;
mod environments;
mod examples;
mod failures;
mod harness;
mod init;
mod init_from;
mod lifecycle;
mod local_hooks;
mod locks;
mod plan;
mod recovery;
mod releases;
mod rolling;
mod run;
mod secrets;
mod signals;
mod terminal;
mod vendor_reuse;
