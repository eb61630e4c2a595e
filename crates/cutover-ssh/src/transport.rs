//! One host over SSH: each script is one `sh -c` on the master connection,
//! quoted once by cutover's quoting function, its output collected, never
//! the terminal's stdio.

use openssh::Stdio;

use cutover_core::config::Multiplex;
use cutover_core::held::HeldScript;
use cutover_core::shell::quote;
use cutover_core::transport::{Output, RemoteCommand, Transport, TransportError, read_watched};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::classify::{self, End};

/// An open master connection to one host.
#[derive(Debug)]
pub struct SshTransport {
    session: openssh::Session,
    commands: Semaphore,
    /// What opening it is worth saying (a fallback of the mode).
    notice: Option<String>,
    /// How commands reach the master: in process mode an exit code of 255
    /// comes back as "terminated" (see [`Self::exit_code`]).
    multiplex: Multiplex,
}

impl SshTransport {
    pub fn new(session: openssh::Session, commands_per_host: usize) -> Self {
        let multiplex = Multiplex::Native;
        Self { session, commands: Semaphore::new(commands_per_host.max(1)), notice: None, multiplex }
    }

    /// The same, its commands reaching the master in `multiplex` mode.
    pub fn in_mode(self, multiplex: Multiplex) -> Self {
        Self { multiplex, ..self }
    }

    /// The same, saying `notice` once opened.
    pub fn with_notice(self, notice: Option<String>) -> Self {
        Self { notice, ..self }
    }

    async fn run_inner(&self, command: RemoteCommand) -> Result<Output, TransportError> {
        let _permit = self.commands.acquire().await.map_err(|e| TransportError::Spawn { detail: e.to_string() })?;
        // The script is one word for the remote login shell, quoted once here;
        // `raw_command` adds no quoting of its own.
        let line = format!("sh -c {}", quote(&command.script));
        let mut remote = self.session.raw_command(line);
        remote
            .stdin(if command.stdin.is_empty() { Stdio::null() } else { Stdio::piped() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = remote.spawn().await.map_err(classify::run_error)?;
        let chunks = command.stdin;
        let feeder = child.stdin().take().map(|mut stdin| {
            tokio::spawn(async move {
                // A script that exits early closes its stdin; that is its answer.
                for chunk in &chunks {
                    if stdin.write_all(chunk).await.is_err() {
                        break;
                    }
                }
                let _ = stdin.shutdown().await;
            })
        });
        let (mut stdout, mut stderr) = (child.stdout().take(), child.stderr().take());
        // The output is read here, not by `wait_with_output`, so that it is
        // kept whatever the exit code.
        let finish = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let watch = command.watch.as_ref();
            let (read_out, read_err) =
                tokio::join!(read_watched(&mut stdout, &mut out, watch), read_watched(&mut stderr, &mut err, None));
            read_out.and(read_err).map_err(|e| TransportError::ConnectionLost { detail: e.to_string() })?;
            Ok::<_, TransportError>((out, err, child.wait().await))
        };
        let (stdout, stderr, status) = tokio::time::timeout(command.timeout, finish)
            .await
            .map_err(|_| TransportError::TimedOut { after: command.timeout })??;
        if let Some(feeder) = feeder {
            feeder.abort();
        }
        Ok(Output {
            exit_code: self.exit_code(status).await?,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// The exit code of a command that ended (`None`: killed by a signal),
    /// or a lost connection: decided by the master's state, never by a code.
    async fn exit_code(
        &self,
        status: Result<std::process::ExitStatus, openssh::Error>,
    ) -> Result<Option<i32>, TransportError> {
        let end = classify::end(status);
        let terminated = end == End::Terminated;
        match end {
            End::Exited(code) => Ok(Some(code)),
            End::Unsure | End::Terminated => match self.session.check().await {
                // An `ssh -S` process exits 255 both when its command did
                // (a PHP fatal error) and when ssh failed: with the master
                // alive, the exit code is the likelier.
                Ok(()) if terminated && self.multiplex == Multiplex::Process => Ok(Some(255)),
                Ok(()) => Ok(None),
                Err(error) => {
                    Err(TransportError::ConnectionLost { detail: format!("the master connection is gone ({error})") })
                }
            },
            End::Lost(error) => Err(error),
        }
    }
}

impl Transport for SshTransport {
    fn run(&self, command: RemoteCommand) -> BoxFuture<'_, Result<Output, TransportError>> {
        self.run_inner(command).boxed()
    }

    fn hold(&self, command: RemoteCommand) -> BoxFuture<'_, Result<Option<HeldScript<'_>>, TransportError>> {
        async move {
            let line = format!("sh -c {}", quote(&command.script));
            let mut remote = self.session.raw_command(line);
            remote.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = remote.spawn().await.map_err(classify::run_error)?;
            let missing = || TransportError::Spawn { detail: "no standard streams".into() };
            let stdin = child.stdin().take().ok_or_else(missing)?;
            let stdout = child.stdout().take().ok_or_else(missing)?;
            let stderr = child.stderr().take().ok_or_else(missing)?;
            let exit = async move { self.exit_code(child.wait().await).await };
            let held =
                HeldScript::new(Box::pin(stdin), Box::pin(stdout), Box::pin(stderr), exit.boxed(), command.timeout);
            Ok(Some(held))
        }
        .boxed()
    }

    fn notice(&self) -> Option<String> {
        self.notice.clone()
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        async move {
            // Dropping a session blocks; close it explicitly.
            let _ = self.session.close().await;
        }
        .boxed()
    }
}
