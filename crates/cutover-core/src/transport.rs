//! The seam between the engine and a host: run one script, get its output.
//!
//! The engine knows hosts only through [`Transport`]. This crate ships the
//! local transport (a host is a directory); `cutover-ssh` implements the same
//! trait over OpenSSH.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::event::Phase;
use crate::fleet::Target;
use crate::held::HeldScript;

/// One round trip: a script for `sh`, optional bytes for its stdin, a limit.
#[derive(Clone)]
pub struct RemoteCommand {
    /// The phase it belongs to (for logs, and for scripted faults in tests).
    pub phase: Phase,
    pub script: String,
    /// Fed to the script's stdin, one chunk after the other (the
    /// secrets, then an upload's tar stream); empty: no stdin.
    pub stdin: Vec<Arc<[u8]>>,
    pub timeout: Duration,
    /// Where each line the script prints on stdout goes as it is printed,
    /// for the progress a person watches; `None`: nobody watches.
    pub watch: Option<LineWatch>,
}

impl fmt::Debug for RemoteCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteCommand")
            .field("phase", &self.phase)
            .field("script", &self.script)
            .field("stdin_bytes", &self.stdin.iter().map(|s| s.len()).sum::<usize>())
            .field("timeout", &self.timeout)
            .field("watched", &self.watch.is_some())
            .finish()
    }
}

/// The receiving end of a script's lines while it runs: each complete line
/// of its stdout, sent as it arrives (the whole output is still returned at
/// the end in [`Output`]). Dropped with the command, which ends the stream.
#[derive(Clone, Debug)]
pub struct LineWatch(mpsc::UnboundedSender<String>);

impl LineWatch {
    /// A watch, and the lines it will see.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<String>) {
        let (lines, seen) = mpsc::unbounded_channel();
        (Self(lines), seen)
    }

    fn see(&self, line: &[u8]) {
        // Nobody listening any more is not the script's problem.
        let _ = self.0.send(String::from_utf8_lossy(line).trim_end_matches(['\n', '\r']).to_owned());
    }
}

/// Reads `stream` to its end into `into`, handing each complete line to
/// `watch` as it arrives. A transport's way of reading a script's stdout.
pub async fn read_watched(
    stream: &mut Option<impl AsyncRead + Unpin>,
    into: &mut Vec<u8>,
    watch: Option<&LineWatch>,
) -> std::io::Result<()> {
    let Some(stream) = stream else { return Ok(()) };
    let Some(watch) = watch else { return stream.read_to_end(into).await.map(|_| ()) };
    // The start of the line not yet seen whole; what came before the
    // newest chunk holds no line end past it.
    let mut seen = into.len();
    let mut chunk = [0u8; 8192];
    loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(());
        }
        let scanned = into.len();
        into.extend_from_slice(&chunk[..read]);
        let mut from = scanned;
        while let Some(end) = into[from..].iter().position(|&b| b == b'\n') {
            watch.see(&into[seen..from + end + 1]);
            seen = from + end + 1;
            from = seen;
        }
    }
}

/// What a script did. `exit_code` is `None` when it was killed by a signal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Why a host could not run a script at all (as opposed to a script that ran
/// and failed, which is an [`Output`] with a non-zero exit code).
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransportError {
    #[error("host unreachable: {detail}")]
    Unreachable { detail: String },
    #[error("authentication refused: {detail}")]
    AuthenticationRefused { detail: String },
    #[error("host key unknown: {detail}")]
    HostKeyUnknown { detail: String },
    #[error("host key changed: {detail}")]
    HostKeyChanged { detail: String },
    #[error("connection lost: {detail}")]
    ConnectionLost { detail: String },
    #[error("timed out after {}s", after.as_secs())]
    TimedOut { after: Duration },
    #[error("could not start the command: {detail}")]
    Spawn { detail: String },
    #[error("no transport for `{connection}` connections in this build")]
    Unsupported { connection: String },
}

impl TransportError {
    /// What the user can do about it, when known.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Unreachable { .. } => Some("check the address and port, and that sshd runs on the host"),
            Self::AuthenticationRefused { .. } => {
                Some("check the user and that your key is loaded (ssh-add -l) or set `identity_file`")
            }
            Self::HostKeyUnknown { .. } => Some(
                "connect once with `ssh` and verify the key, add it to known_hosts (ssh-keyscan), \
                 or set `host_key_checking: accept-new` for this host",
            ),
            Self::HostKeyChanged { .. } => Some(
                "the host's key differs from known_hosts: if the host was rebuilt, remove the old \
                 key with `ssh-keygen -R <host>`; otherwise treat it as an attack",
            ),
            Self::TimedOut { .. } => Some("raise the step's `timeout` or `step_timeout` if the work is slow"),
            _ => None,
        }
    }
}

/// An open connection to one host.
pub trait Transport: Send + Sync + fmt::Debug {
    /// Runs one script in one round trip.
    fn run(&self, command: RemoteCommand) -> BoxFuture<'_, Result<Output, TransportError>>;

    /// Closes the connection; called once at the end of a run.
    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;

    /// What opening this connection is worth telling the user (it fell back
    /// to another way of connecting, say): said once, as a warning.
    fn notice(&self) -> Option<String> {
        None
    }

    /// Starts a script that holds at its ready line until released (see
    /// [`crate::held`]). `None` when this transport cannot: the engine then
    /// runs the script with `go` already on its stdin.
    fn hold(&self, command: RemoteCommand) -> BoxFuture<'_, Result<Option<HeldScript<'_>>, TransportError>> {
        let _ = command;
        Box::pin(async { Ok(None) })
    }
}

/// Opens connections to hosts.
pub trait Connector: Send + Sync {
    fn connect<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Box<dyn Transport>, TransportError>>;
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn each_line_is_seen_whole_however_the_output_is_cut() {
        let (mut writer, reader) = tokio::io::duplex(4);
        let feed = tokio::spawn(async move {
            for piece in ["Inst", "alling a\nInstalling b", "\n\ndone", " without a newline"] {
                writer.write_all(piece.as_bytes()).await.expect("write");
            }
        });
        let (watch, mut lines) = LineWatch::new();
        let mut all = Vec::new();
        read_watched(&mut Some(reader), &mut all, Some(&watch)).await.expect("read");
        feed.await.expect("fed");
        drop(watch);
        let mut seen = Vec::new();
        while let Some(line) = lines.recv().await {
            seen.push(line);
        }
        assert_eq!(seen, ["Installing a", "Installing b", ""]);
        assert_eq!(String::from_utf8_lossy(&all), "Installing a\nInstalling b\n\ndone without a newline");
    }
}
