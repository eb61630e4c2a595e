//! Turning OpenSSH's failures into cutover's [`TransportError`] kinds.
//!
//! `ssh` exits 255 for every connection failure, so the kind can only be read
//! from what it logged. This module is the one place that reads ssh's
//! messages; the `openssh` crate has already mapped the common ones to an
//! [`std::io::ErrorKind`], which is used first.

use std::io::ErrorKind;
use std::time::Duration;

use cutover_core::transport::TransportError;

/// Why a master connection could not be opened.
pub fn connect_error(error: openssh::Error, timeout: Duration) -> TransportError {
    let (kind, text) = match &error {
        openssh::Error::Connect(io) | openssh::Error::Master(io) => (Some(io.kind()), io.to_string()),
        other => (None, other.to_string()),
    };
    let detail = last_line(&text);
    if mentions_host_key(&text) {
        return if text.contains("IDENTIFICATION HAS CHANGED")
            || text.contains("key for") && text.contains("has changed")
        {
            TransportError::HostKeyChanged { detail }
        } else {
            TransportError::HostKeyUnknown { detail }
        };
    }
    match kind {
        Some(ErrorKind::PermissionDenied) => TransportError::AuthenticationRefused { detail },
        Some(ErrorKind::TimedOut) => {
            TransportError::Unreachable { detail: format!("no answer within {}s: {detail}", timeout.as_secs()) }
        }
        _ => TransportError::Unreachable { detail },
    }
}

/// Why a command on an open connection could not be started or followed.
pub fn run_error(error: openssh::Error) -> TransportError {
    TransportError::ConnectionLost { detail: last_line(&error.to_string()) }
}

/// How a remote command ended, as the mux reported it.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// It exited with this code: whatever the code, the command ran and
    /// the connection held.
    Exited(i32),
    /// It ended without an exit code: killed by a signal, or its connection
    /// was lost (the mux protocol cannot tell which). A check of the
    /// master decides.
    Unsure,
    /// `openssh` said the remote process terminated: killed by a signal
    /// (native mode), or an `ssh -S` that exited 255 (process mode), which
    /// the command itself may have done. The master's check decides.
    Terminated,
    /// The connection failed under it.
    Lost(TransportError),
}

/// Reads the end of a remote command. The `openssh` crate reports an exit
/// code of 127 (command not found) as an error of its own; here it is an
/// exit code like any other, never a lost connection.
pub fn end(status: Result<std::process::ExitStatus, openssh::Error>) -> End {
    match status {
        Ok(status) => status.code().map_or(End::Unsure, End::Exited),
        Err(openssh::Error::Remote(io)) if io.kind() == ErrorKind::NotFound => End::Exited(127),
        Err(openssh::Error::RemoteProcessTerminated) => End::Terminated,
        Err(other) => End::Lost(run_error(other)),
    }
}

fn mentions_host_key(text: &str) -> bool {
    text.contains("Host key verification failed")
        || text.contains("host key is known")
        || text.contains("IDENTIFICATION HAS CHANGED")
}

/// The last non-empty line: ssh puts the verdict last.
pub(crate) fn last_line(text: &str) -> String {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").trim_start_matches("ssh: ").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(kind: ErrorKind, text: &str) -> TransportError {
        connect_error(openssh::Error::Connect(std::io::Error::new(kind, text)), Duration::from_secs(10))
    }

    #[test]
    fn auth_refused() {
        let e = connect(ErrorKind::PermissionDenied, "deploy@127.0.0.1: Permission denied (publickey).");
        assert!(matches!(e, TransportError::AuthenticationRefused { .. }), "{e:?}");
    }

    #[test]
    fn unknown_and_changed_host_keys() {
        let unknown = "No ED25519 host key is known for [127.0.0.1]:32768 and you have requested strict checking.\r\nHost key verification failed.";
        assert!(matches!(connect(ErrorKind::ConnectionAborted, unknown), TransportError::HostKeyUnknown { .. }));
        let changed =
            "@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\nHost key verification failed.";
        assert!(matches!(connect(ErrorKind::ConnectionAborted, changed), TransportError::HostKeyChanged { .. }));
    }

    #[test]
    fn an_exit_status_is_never_a_lost_connection() {
        use std::os::unix::process::ExitStatusExt;
        for code in [0, 1, 2, 75, 124, 126, 127, 255] {
            assert_eq!(end(Ok(std::process::ExitStatus::from_raw(code << 8))), End::Exited(code), "{code}");
        }
        // What openssh 0.11 makes of an exit status of 127.
        let not_found = openssh::Error::Remote(std::io::Error::new(ErrorKind::NotFound, "remote command not found"));
        assert_eq!(end(Err(not_found)), End::Exited(127));
    }

    #[test]
    fn an_end_without_an_exit_code_is_decided_by_the_master() {
        assert_eq!(end(Err(openssh::Error::RemoteProcessTerminated)), End::Terminated);
        let lost = end(Err(openssh::Error::Disconnected));
        assert!(matches!(lost, End::Lost(TransportError::ConnectionLost { .. })), "{lost:?}");
        let other = openssh::Error::Remote(std::io::Error::new(ErrorKind::BrokenPipe, "broken pipe"));
        assert!(matches!(end(Err(other)), End::Lost(_)));
    }

    #[test]
    fn refused_and_timed_out_are_unreachable() {
        let e = connect(ErrorKind::ConnectionRefused, "connect to host 127.0.0.1 port 1: Connection refused");
        assert_eq!(
            e,
            TransportError::Unreachable { detail: "connect to host 127.0.0.1 port 1: Connection refused".into() }
        );
        let e = connect(ErrorKind::TimedOut, "connect to host 10.0.0.1 port 22: Connection timed out");
        assert!(matches!(e, TransportError::Unreachable { detail } if detail.starts_with("no answer within 10s")));
    }
}
