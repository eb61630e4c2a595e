//! The inventory's `ssh:` section: how this machine's OpenSSH client is
//! driven for the whole run (per-host connection settings are the hosts'
//! own, in [`super::inventory::HostSettings`]).

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// `ssh:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshClient {
    /// How commands reach a host's master connection; unset: the platform's
    /// default (native on Linux, process on macOS).
    #[serde(default)]
    pub multiplex: Option<Spanned<Multiplex>>,
}

/// How commands reach a host's master connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Multiplex {
    /// Speak OpenSSH's multiplexing protocol to the master's socket
    /// directly: no `ssh` process per command.
    Native,
    /// Start `ssh -S <socket>` for each command, as `ssh` itself would.
    Process,
}

impl Multiplex {
    /// The other mode, to fall back to.
    pub fn other(self) -> Self {
        match self {
            Self::Native => Self::Process,
            Self::Process => Self::Native,
        }
    }
}

impl std::fmt::Display for Multiplex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Process => "process",
        })
    }
}
