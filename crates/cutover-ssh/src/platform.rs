//! What differs between the machines cutover runs on (Linux and macOS
//! laptops, CI runners), kept in one place: where control sockets live, and
//! the open-files limit.

use std::path::PathBuf;

use cutover_core::config::Multiplex;

/// The multiplexing mode when the inventory and the command line leave it:
/// `openssh`'s native mux on Linux (the master's protocol spoken over its
/// socket, no `ssh` process per command), one `ssh -S` process per command
/// on macOS, where the system's OpenSSH is patched by Apple and the native
/// protocol is the less travelled road. Either falls back to the other when
/// its connection check fails (see [`crate::connector`]).
pub fn default_multiplex() -> Multiplex {
    if cfg!(target_os = "macos") { Multiplex::Process } else { Multiplex::Native }
}

/// Unix socket paths are limited to about 104 bytes on macOS and 108 on
/// Linux; `openssh` adds a 30-odd byte name under the directory.
const MAX_CONTROL_DIR_LEN: usize = 60;

/// The parent of cutover's control directory: `$TMPDIR` when short enough
/// (on macOS it is a long `/var/folders/...` path), else `/tmp`.
pub fn control_dir_parent() -> PathBuf {
    let tmp = std::env::temp_dir();
    if tmp.as_os_str().len() <= MAX_CONTROL_DIR_LEN - 20 { tmp } else { PathBuf::from("/tmp") }
}

/// Raises the soft limit of open files as far as the hard limit allows:
/// every host's master and each of its commands hold descriptors. Returns
/// the new soft limit when it could be read.
pub fn raise_open_files_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_dir_parent_is_short() {
        assert!(control_dir_parent().as_os_str().len() <= MAX_CONTROL_DIR_LEN);
    }

    #[test]
    fn open_files_limit_is_at_least_what_it_was() {
        let before = rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(0);
        let after = raise_open_files_limit().unwrap_or(before);
        assert!(after >= before, "{after} < {before}");
    }
}
