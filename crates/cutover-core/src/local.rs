//! The local transport: a host is a directory on this machine and a script
//! runs with `sh -c` in it. For unit tests and the demo, not for fleets.
//!
//! A script that is dropped is not killed here: like on an SSH host, its
//! supervisor (see [`crate::remote::supervise`]) sees its output's reader
//! gone and ends it with all its children.

use std::path::PathBuf;
use std::process::Stdio;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::config::Connection;
use crate::fleet::Target;
use crate::held::HeldScript;
use crate::transport::{Connector, Output, RemoteCommand, Transport, TransportError, read_watched};

/// Connects `connection: local` hosts; refuses every other kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalConnector;

impl Connector for LocalConnector {
    fn connect<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Box<dyn Transport>, TransportError>> {
        async move {
            if target.connection != Connection::Local {
                return Err(TransportError::Unsupported { connection: "ssh".to_owned() });
            }
            // Nothing is created here: `plan` and `status` only read. The
            // first script that writes makes the deploy path, inside it.
            let root = PathBuf::from(&target.address);
            Ok(Box::new(LocalTransport { root }) as Box<dyn Transport>)
        }
        .boxed()
    }
}

/// A host that is a directory.
#[derive(Debug)]
pub struct LocalTransport {
    root: PathBuf,
}

impl LocalTransport {
    /// The host at `root`, for tests of what runs over a transport.
    #[cfg(test)]
    pub(crate) fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

impl Transport for LocalTransport {
    fn run(&self, command: RemoteCommand) -> BoxFuture<'_, Result<Output, TransportError>> {
        async move {
            // A host directory not made yet (before the first deploy): its
            // nearest existing parent, as a fresh host's home would be.
            let cwd = self.root.ancestors().find(|p| p.is_dir()).unwrap_or(&self.root);
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(&command.script)
                // Out of cutover's process group: a terminal's Ctrl-C goes
                // to cutover alone, which decides what stops, as over SSH.
                .process_group(0)
                .current_dir(cwd)
                .stdin(if command.stdin.is_empty() { Stdio::null() } else { Stdio::piped() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| TransportError::Spawn { detail: e.to_string() })?;
            if let Some(mut stdin) = child.stdin.take() {
                tokio::spawn(async move {
                    // A script that exits early closes its stdin; that is its answer.
                    for chunk in &command.stdin {
                        if stdin.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                });
            }
            let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
            let finish = async {
                let (mut out, mut err) = (Vec::new(), Vec::new());
                let watch = command.watch.as_ref();
                let (read_out, read_err) =
                    tokio::join!(read_watched(&mut stdout, &mut out, watch), read_watched(&mut stderr, &mut err, None));
                read_out.and(read_err)?;
                Ok::<_, std::io::Error>((out, err, child.wait().await?))
            };
            let (stdout, stderr, status) = tokio::time::timeout(command.timeout, finish)
                .await
                .map_err(|_| TransportError::TimedOut { after: command.timeout })?
                .map_err(|e| TransportError::ConnectionLost { detail: e.to_string() })?;
            Ok(Output {
                exit_code: status.code(),
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
            })
        }
        .boxed()
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }

    fn hold(&self, command: RemoteCommand) -> BoxFuture<'_, Result<Option<HeldScript<'_>>, TransportError>> {
        async move {
            // A host directory not made yet (before the first deploy): its
            // nearest existing parent, as a fresh host's home would be.
            let cwd = self.root.ancestors().find(|p| p.is_dir()).unwrap_or(&self.root);
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(&command.script)
                // Out of cutover's process group: a terminal's Ctrl-C goes
                // to cutover alone, which decides what stops, as over SSH.
                .process_group(0)
                .current_dir(cwd)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| TransportError::Spawn { detail: e.to_string() })?;
            let missing = || TransportError::Spawn { detail: "no standard streams".into() };
            let stdin = child.stdin.take().ok_or_else(missing)?;
            let stdout = child.stdout.take().ok_or_else(missing)?;
            let stderr = child.stderr.take().ok_or_else(missing)?;
            let exit = async move {
                let status =
                    child.wait().await.map_err(|e| TransportError::ConnectionLost { detail: e.to_string() })?;
                Ok(status.code())
            };
            let held =
                HeldScript::new(Box::pin(stdin), Box::pin(stdout), Box::pin(stderr), exit.boxed(), command.timeout);
            Ok(Some(held))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn host(dir: &std::path::Path) -> LocalTransport {
        LocalTransport { root: dir.to_path_buf() }
    }

    fn command(script: &str, timeout: Duration) -> RemoteCommand {
        let script = script.to_owned();
        RemoteCommand { phase: crate::event::Phase::Build, script, stdin: Vec::new(), timeout, watch: None }
    }

    #[tokio::test]
    async fn runs_in_the_host_directory_and_feeds_stdin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = command("pwd; cat", Duration::from_secs(5));
        cmd.stdin = vec![std::sync::Arc::from(b"pay".to_vec()), std::sync::Arc::from(b"load".to_vec())];
        let out = host(dir.path()).run(cmd).await.expect("runs");
        assert!(out.success());
        let root = dir.path().canonicalize().expect("canonical");
        assert_eq!(out.stdout, format!("{}\npayload", root.display()));
    }

    /// A staged host: `current` on one release, `current-tmp` on another.
    fn staged() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for r in ["releases/1", "releases/2"] {
            std::fs::create_dir_all(dir.path().join(r)).expect("release");
        }
        std::os::unix::fs::symlink("releases/1", dir.path().join("current")).expect("current");
        std::os::unix::fs::symlink("releases/2", dir.path().join("current-tmp")).expect("staged");
        std::fs::create_dir_all(dir.path().join(".cutover/lock")).expect("lock");
        let token = crate::remote::lock::LockOwner::example().token;
        std::fs::write(dir.path().join(".cutover/lock/token"), token).expect("token");
        dir
    }

    fn flip_command(dir: &std::path::Path) -> RemoteCommand {
        let owner = crate::remote::lock::LockOwner::example();
        let script = crate::remote::switch::flip(&dir.display().to_string(), &owner, None).render();
        command(&script, Duration::from_secs(5))
    }

    #[tokio::test]
    async fn a_held_flip_switches_only_when_let_go() {
        let dir = staged();
        let host = host(dir.path());
        let mut held = host.hold(flip_command(dir.path())).await.expect("starts").expect("holds");
        assert!(held.ready().await.expect("ready"));
        assert_eq!(std::fs::read_link(dir.path().join("current")).expect("link").to_string_lossy(), "releases/1");
        let out = held.release(crate::held::Signal::Go).await.expect("finishes");
        assert!(out.success(), "{out:?}");
        assert_eq!(std::fs::read_link(dir.path().join("current")).expect("link").to_string_lossy(), "releases/2");
    }

    #[tokio::test]
    async fn a_held_flip_called_off_leaves_current_alone() {
        let dir = staged();
        let host = host(dir.path());
        let mut held = host.hold(flip_command(dir.path())).await.expect("starts").expect("holds");
        assert!(held.ready().await.expect("ready"));
        let out = held.release(crate::held::Signal::CallOff).await.expect("finishes");
        assert_eq!(out.exit_code, Some(1));
        assert!(out.stderr.contains("called off"), "{out:?}");
        assert_eq!(std::fs::read_link(dir.path().join("current")).expect("link").to_string_lossy(), "releases/1");
    }

    #[tokio::test]
    async fn a_held_flip_that_keeps_time_renames_at_the_moment_it_is_given() {
        use std::os::unix::fs::MetadataExt;
        let dir = staged();
        let host = host(dir.path());
        let mut held = host.hold(flip_command(dir.path())).await.expect("starts").expect("holds");
        assert!(held.ready().await.expect("ready"));
        let reading = held.read_clock().await.expect("answers").expect("perl here has Time::HiRes");
        assert!(reading.asked <= reading.answered, "{reading:?}");
        assert_eq!(reading.offset(), 0.0, "one machine, one clock: {reading:?}");
        let moment = reading.host + 0.3;
        let out = held.release(crate::held::Signal::GoAt(moment)).await.expect("finishes");
        assert!(out.success(), "{out:?}");
        let current = std::fs::symlink_metadata(dir.path().join("current")).expect("current");
        assert_eq!(std::fs::read_link(dir.path().join("current")).expect("link").to_string_lossy(), "releases/2");
        let renamed = current.ctime() as f64 + current.ctime_nsec() as f64 / 1e9;
        // Change times are stamped to the kernel's tick: allow one.
        assert!(renamed >= moment - 0.011, "renamed at {renamed:.3}, before its moment {moment:.3}");
    }

    #[tokio::test]
    async fn a_held_script_has_one_time_limit_from_start_to_exit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = host(dir.path());
        // Each wait fits in the limit on its own (1.5 s to answer its clock,
        // 1 s more to exit, of 2 s); together they do not.
        let script = "echo '@@cutover-ready clock'; read -r q; sleep 1.5; echo '@@cutover-clock 1.0'; sleep 1";
        let mut held = host.hold(command(script, Duration::from_secs(2))).await.expect("starts").expect("holds");
        assert!(held.ready().await.expect("ready"));
        held.read_clock().await.expect("answers in time");
        let result = held.release(crate::held::Signal::Go).await;
        assert_eq!(result, Err(TransportError::TimedOut { after: Duration::from_secs(2) }));
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let started = Instant::now();
        let result = host(dir.path()).run(command("sleep 5", Duration::from_millis(200))).await;
        assert_eq!(result, Err(TransportError::TimedOut { after: Duration::from_millis(200) }));
        assert!(started.elapsed() < Duration::from_secs(4), "it did not wait for the command");
    }
}
