//! Hooks that run where cutover runs: a batch's (a load balancer's CLI, an
//! API call) and the run's own (`local_hooks`), each `sh -c` in the
//! inventory's directory with what it needs to know in the environment.

use std::process::Stdio;
use std::time::Instant;

use tokio::process::Command;

use crate::event::{Event, HostState, Phase};
use crate::plan::LocalHook;

use super::Context;
use super::failure::{FailureKind, HostFailure, LOCAL};
use super::session::tail;
use crate::transport::{Output, TransportError};

/// Runs a hook here. Its failure is reported under the host `(local)`.
pub(crate) async fn run(ctx: &Context<'_>, hook: &LocalHook) -> Result<(), HostFailure> {
    ctx.emit(Event::PhaseStarted { phase: hook.phase, hosts: vec![LOCAL.to_owned()] });
    let host_event = |state, duration_ms, failure: Option<&HostFailure>| Event::Host {
        host: LOCAL.to_owned(),
        phase: hook.phase,
        state,
        step: hook.step.clone(),
        duration_ms,
        error: failure.map(|f| f.kind.to_string()),
        output_tail: failure.and_then(|f| f.output_tail().map(str::to_owned)),
    };
    ctx.emit(host_event(HostState::Started, None, None));
    let started = Instant::now();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&hook.command)
        .current_dir(&ctx.loaded.dir)
        .envs(hook.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A terminal's Ctrl-C goes to cutover alone.
        .process_group(0)
        .kill_on_drop(true);
    let kind = match command.spawn() {
        Err(e) => FailureKind::Transport(TransportError::Spawn { detail: e.to_string() }),
        Ok(child) => {
            let group = child.id();
            let ended = tokio::select! {
                waited = tokio::time::timeout(hook.timeout, child.wait_with_output()) => waited.ok(),
                () = stop(ctx, hook.phase) => None,
            };
            match ended {
                Some(Ok(output)) if output.status.success() => {
                    ctx.emit(host_event(HostState::Done, Some(started.elapsed().as_millis() as u64), None));
                    return Ok(());
                }
                Some(Ok(output)) => {
                    // It runs here, where the secrets' sources are (an
                    // environment variable): what it prints is masked too.
                    let output = Output {
                        exit_code: output.status.code(),
                        stdout: ctx.secrets.mask(&String::from_utf8_lossy(&output.stdout)).into_owned(),
                        stderr: ctx.secrets.mask(&String::from_utf8_lossy(&output.stderr)).into_owned(),
                    };
                    FailureKind::CommandFailed { exit_code: output.exit_code, output_tail: tail(&output) }
                }
                Some(Err(e)) => FailureKind::Transport(TransportError::Spawn { detail: e.to_string() }),
                None => {
                    // Over its time limit, or the run was stopped: the whole
                    // group (`npm` under `sh`), not `sh` alone.
                    kill_group(group);
                    if ctx.interrupt.is_raised() {
                        FailureKind::Interrupted
                    } else {
                        FailureKind::Transport(TransportError::TimedOut { after: hook.timeout })
                    }
                }
            }
        }
    };
    let elapsed = Some(started.elapsed().as_millis() as u64);
    let failure = HostFailure::new(LOCAL, hook.phase, kind);
    ctx.emit(host_event(HostState::Failed, elapsed, Some(&failure)));
    Err(failure)
}

/// Resolves when the run asks a hook of `phase` to stop: a `before` hook at
/// the first interrupt (nothing is touched yet), an `after` hook at the
/// second; a batch hook (drain, undrain) runs to its end or its time limit.
async fn stop(ctx: &Context<'_>, phase: Phase) {
    match phase {
        Phase::BeforeRun => ctx.interrupt.raised().await,
        Phase::AfterRun => ctx.interrupt.hurried().await,
        _ => std::future::pending().await,
    }
}

/// SIGKILL to the process group the hook leads.
fn kill_group(group: Option<u32>) {
    let Some(pid) = group.and_then(|g| rustix::process::Pid::from_raw(g as i32)) else { return };
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}
