//! A script held at its decisive line: started on a host, it prints a ready
//! line and waits for `go` on its stdin. The engine starts the flip on every
//! host this way, waits until all are ready, then lets them all go at once,
//! so the fleet's renames happen within a write of each other instead of
//! within a process start of each other. A script whose stdin closes without
//! `go` (cutover died) does nothing.

use std::pin::Pin;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::transport::{Output, TransportError};

/// The line a held script prints when it waits for `go`.
pub const READY: &str = "@@cutover-ready";

/// What a held script needs from its transport: its standard streams and
/// a way to wait for its exit code.
pub struct HeldScript<'a> {
    stdin: Pin<Box<dyn AsyncWrite + Send + 'a>>,
    stdout: BufReader<Pin<Box<dyn AsyncRead + Send + 'a>>>,
    stderr: Pin<Box<dyn AsyncRead + Send + 'a>>,
    exit: BoxFuture<'a, Result<Option<i32>, TransportError>>,
    timeout: Duration,
    seen: String,
}

impl std::fmt::Debug for HeldScript<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldScript").field("seen", &self.seen).finish_non_exhaustive()
    }
}

impl<'a> HeldScript<'a> {
    pub fn new(
        stdin: Pin<Box<dyn AsyncWrite + Send + 'a>>,
        stdout: Pin<Box<dyn AsyncRead + Send + 'a>>,
        stderr: Pin<Box<dyn AsyncRead + Send + 'a>>,
        exit: BoxFuture<'a, Result<Option<i32>, TransportError>>,
        timeout: Duration,
    ) -> Self {
        Self { stdin, stdout: BufReader::new(stdout), stderr, exit, timeout, seen: String::new() }
    }

    /// Waits for the ready line. `Ok(false)` when the script ended (or
    /// printed everything) without it: it failed before its decisive line.
    pub async fn ready(&mut self) -> Result<bool, TransportError> {
        let limit = self.timeout;
        let wait = async {
            let mut line = String::new();
            loop {
                line.clear();
                let read = self.stdout.read_line(&mut line).await;
                match read {
                    Ok(0) => return Ok(false),
                    Ok(_) if line.trim_end() == READY => return Ok(true),
                    Ok(_) => self.seen.push_str(&line),
                    Err(e) => return Err(TransportError::ConnectionLost { detail: e.to_string() }),
                }
            }
        };
        tokio::time::timeout(limit, wait).await.map_err(|_| TransportError::TimedOut { after: limit })?
    }

    /// Sends `go` (when `go` is true; otherwise closes stdin so the script
    /// stops) and collects the script's output.
    pub async fn release(mut self, go: bool) -> Result<Output, TransportError> {
        if go {
            // A script that already ended has closed its stdin: its exit code says.
            let _ = self.stdin.write_all(b"go\n").await;
            let _ = self.stdin.flush().await;
        }
        let _ = self.stdin.shutdown().await;
        drop(self.stdin);
        let limit = self.timeout;
        let mut stdout = String::new();
        let mut stderr = String::new();
        let collect = async {
            let (out, err) =
                tokio::join!(self.stdout.read_to_string(&mut stdout), self.stderr.read_to_string(&mut stderr));
            out.and(err).map_err(|e| TransportError::ConnectionLost { detail: e.to_string() })?;
            self.exit.await
        };
        let exit_code =
            tokio::time::timeout(limit, collect).await.map_err(|_| TransportError::TimedOut { after: limit })??;
        Ok(Output { exit_code, stdout: self.seen + &stdout, stderr })
    }
}
