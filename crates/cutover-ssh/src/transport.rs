//! One host over SSH: each script is one `sh -c` on the master connection,
//! quoted once by cutover's quoting function, its output collected, never
//! the terminal's stdio.

use openssh::Stdio;

use cutover_core::held::HeldScript;
use cutover_core::shell::quote;
use cutover_core::transport::{Output, RemoteCommand, Transport, TransportError};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::classify;

/// An open master connection to one host.
#[derive(Debug)]
pub struct SshTransport {
    session: openssh::Session,
    commands: Semaphore,
}

impl SshTransport {
    pub fn new(session: openssh::Session, commands_per_host: usize) -> Self {
        Self { session, commands: Semaphore::new(commands_per_host.max(1)) }
    }

    async fn run_inner(&self, command: RemoteCommand) -> Result<Output, TransportError> {
        let _permit = self.commands.acquire().await.map_err(|e| TransportError::Spawn { detail: e.to_string() })?;
        // The script is one word for the remote login shell, quoted once here;
        // `raw_command` adds no quoting of its own.
        let line = format!("sh -c {}", quote(&command.script));
        let mut remote = self.session.raw_command(line);
        remote
            .stdin(if command.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = remote.spawn().await.map_err(classify::run_error)?;
        let feeder = match (command.stdin, child.stdin().take()) {
            (Some(bytes), Some(mut stdin)) => Some(tokio::spawn(async move {
                // A script that exits early closes its stdin; that is its answer.
                let _ = stdin.write_all(&bytes).await;
                let _ = stdin.shutdown().await;
            })),
            _ => None,
        };
        let output = tokio::time::timeout(command.timeout, child.wait_with_output())
            .await
            .map_err(|_| TransportError::TimedOut { after: command.timeout })?
            .map_err(classify::run_error)?;
        if let Some(feeder) = feeder {
            feeder.abort();
        }
        Ok(Output {
            exit_code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
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
            let exit = async move { child.wait().await.map(|status| status.code()).map_err(classify::run_error) };
            let held =
                HeldScript::new(Box::pin(stdin), Box::pin(stdout), Box::pin(stderr), exit.boxed(), command.timeout);
            Ok(Some(held))
        }
        .boxed()
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        async move {
            // Dropping a session blocks; close it explicitly.
            let _ = self.session.close().await;
        }
        .boxed()
    }
}
