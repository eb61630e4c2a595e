//! What differs between the machines cutover runs on (Linux and macOS
//! laptops, CI runners), kept in one place: where control sockets live, and
//! the open-files limit.

use std::path::PathBuf;

/// The multiplexing mode: `openssh`'s native mux (a Unix socket to the
/// master per command, no extra `ssh` process per command). Works on Linux
/// and macOS alike with OpenSSH 6.7 or later.
pub const MULTIPLEXING: &str = "native-mux";

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
