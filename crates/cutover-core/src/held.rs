//! A script held at its decisive line: started on a host, it prints a ready
//! line and waits for `go` on its stdin. The engine starts the flip on every
//! host this way, waits until all are ready, then lets them all go at once,
//! so the fleet's renames happen within a write of each other instead of
//! within a process start of each other. A script that keeps time says so
//! on its ready line (`@@cutover-ready clock`): asked `clock`, it answers
//! with its clock, and its go can carry the moment to act at on that clock
//! (`go 1764581234.250000`, see [`crate::moment`]). A script whose stdin
//! closes without `go` (cutover died) does nothing. A script can hold again
//! further on (a flip that waits for the fleet's decision before it
//! finalizes): [`HeldScript::let_go`] keeps its stdin open, and
//! [`HeldScript::ready`] waits for the next ready line.

use std::pin::Pin;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::moment::{self, ClockReading};
use crate::transport::{Output, TransportError};

/// The line a held script prints when it waits for `go`; followed by
/// ` clock` when the script can tell its clock and wait for a moment.
pub const READY: &str = "@@cutover-ready";

/// The start of a held script's answer to `clock`: its clock follows, in
/// seconds since the Unix epoch.
pub const CLOCK: &str = "@@cutover-clock";

/// What a held script is told once the fleet is ready.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    /// Go now.
    Go,
    /// Go at this moment on the host's clock (seconds since the Unix epoch).
    GoAt(f64),
    /// Stop without acting: stdin is closed with no go.
    CallOff,
}

/// What a held script needs from its transport: its standard streams and
/// a way to wait for its exit code.
pub struct HeldScript<'a> {
    stdin: Pin<Box<dyn AsyncWrite + Send + 'a>>,
    stdout: BufReader<Pin<Box<dyn AsyncRead + Send + 'a>>>,
    stderr: Pin<Box<dyn AsyncRead + Send + 'a>>,
    exit: BoxFuture<'a, Result<Option<i32>, TransportError>>,
    /// The script's time limit, from its start to its exit.
    timeout: Duration,
    deadline: tokio::time::Instant,
    seen: String,
    keeps_time: bool,
}

impl std::fmt::Debug for HeldScript<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldScript")
            .field("seen", &self.seen)
            .field("keeps_time", &self.keeps_time)
            .finish_non_exhaustive()
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
        let deadline = tokio::time::Instant::now() + timeout;
        let stdout = BufReader::new(stdout);
        Self { stdin, stdout, stderr, exit, timeout, deadline, seen: String::new(), keeps_time: false }
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
                    Err(e) => return Err(TransportError::ConnectionLost { detail: e.to_string() }),
                    Ok(_) => match line.trim_end().strip_prefix(READY) {
                        Some("") => return Ok(true),
                        Some(" clock") => {
                            self.keeps_time = true;
                            return Ok(true);
                        }
                        _ => self.seen.push_str(&line),
                    },
                }
            }
        };
        tokio::time::timeout_at(self.deadline, wait).await.map_err(|_| TransportError::TimedOut { after: limit })?
    }

    /// Gives the script `limit` from now to end, whatever it used so far
    /// (the part after a second ready line has a time of its own).
    pub fn renew(&mut self, limit: Duration) {
        self.timeout = limit;
        self.deadline = tokio::time::Instant::now() + limit;
    }

    /// What the script printed before its last ready line.
    pub fn seen(&self) -> &str {
        &self.seen
    }

    /// Whether the script said, on its ready line, that it keeps time.
    pub fn keeps_time(&self) -> bool {
        self.keeps_time
    }

    /// Asks a ready script that keeps time for its clock; `None` for one
    /// that does not.
    pub async fn read_clock(&mut self) -> Result<Option<ClockReading>, TransportError> {
        if !self.keeps_time {
            return Ok(None);
        }
        let lost = |e: std::io::Error| TransportError::ConnectionLost { detail: e.to_string() };
        let limit = self.timeout;
        let exchange = async {
            // The wall clock for when, a monotonic one for how long: a step
            // of the wall clock meanwhile cannot skew the round trip.
            let (asked, started) = (moment::now(), std::time::Instant::now());
            self.stdin.write_all(b"clock\n").await.map_err(lost)?;
            self.stdin.flush().await.map_err(lost)?;
            let mut line = String::new();
            self.stdout.read_line(&mut line).await.map_err(lost)?;
            let answered = asked + started.elapsed().as_secs_f64();
            let host = line.trim_end().strip_prefix(CLOCK).and_then(|t| t.trim().parse::<f64>().ok());
            let host = host.filter(|t| t.is_finite());
            match host {
                Some(host) => Ok(Some(ClockReading { asked, host, answered })),
                None => Err(TransportError::ConnectionLost {
                    detail: format!("the held script answered {:?} when asked its clock", line.trim_end()),
                }),
            }
        };
        tokio::time::timeout_at(self.deadline, exchange).await.map_err(|_| TransportError::TimedOut { after: limit })?
    }

    /// Sends a go and keeps stdin open, for a script that holds again
    /// further on (at the fleet's decision): [`Self::ready`] waits for that
    /// next ready line. A call-off sends nothing.
    pub async fn let_go(&mut self, signal: Signal) {
        let go = match signal {
            Signal::Go => "go\n".to_owned(),
            Signal::GoAt(at) => format!("go {at:.6}\n"),
            Signal::CallOff => return,
        };
        // A script that already ended has closed its stdin: its exit code says.
        let _ = self.stdin.write_all(go.as_bytes()).await;
        let _ = self.stdin.flush().await;
    }

    /// Sends the signal (a call-off closes stdin with no go, so the script
    /// stops) and collects the script's output.
    pub async fn release(mut self, signal: Signal) -> Result<Output, TransportError> {
        self.let_go(signal).await;
        let _ = self.stdin.shutdown().await;
        drop(self.stdin);
        let (limit, deadline) = (self.timeout, self.deadline);
        let mut stdout = String::new();
        let mut stderr = String::new();
        let collect = async {
            let (out, err) =
                tokio::join!(self.stdout.read_to_string(&mut stdout), self.stderr.read_to_string(&mut stderr));
            out.and(err).map_err(|e| TransportError::ConnectionLost { detail: e.to_string() })?;
            self.exit.await
        };
        let exit_code = tokio::time::timeout_at(deadline, collect)
            .await
            .map_err(|_| TransportError::TimedOut { after: limit })??;
        Ok(Output { exit_code, stdout: self.seen + &stdout, stderr })
    }
}
