//! Opening one master connection per host: the inventory's settings over
//! `~/.ssh/config`, strict host-key checking unless the inventory says
//! `accept-new`, a server-alive interval, a bounded persist time, and a
//! semaphore on concurrent connection starts. Each master is checked, with
//! a time limit, in the run's multiplexing mode; when the check fails the
//! host is connected once more in the other mode, which the rest of the
//! run then uses, and the transport says so.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cutover_core::config::{Connection, HostKeyChecking, Multiplex};
use cutover_core::fleet::Target;
use cutover_core::transport::{Connector, Transport, TransportError};
use futures::FutureExt;
use futures::future::BoxFuture;
use openssh::{ControlPersist, KnownHosts, SessionBuilder};
use tokio::sync::Semaphore;

use crate::classify;
use crate::platform;
use crate::transport::SshTransport;

/// Limits that protect the hosts and the network.
#[derive(Clone, Debug)]
pub struct SshOptions {
    /// Connections being set up at once across the fleet: bounds the burst
    /// of handshakes a firewall, a NAT or this machine sees.
    pub concurrent_starts: usize,
    /// Connections being set up at once through one bastion (`proxy_jump`):
    /// below its sshd's `MaxStartups` (10 by default).
    pub concurrent_starts_per_jump: usize,
    /// Commands at once on one host: below sshd's `MaxSessions` (10).
    pub commands_per_host: usize,
    /// Seconds to wait for a connection when the inventory does not say.
    pub connect_timeout: Duration,
    /// How often ssh checks the server is alive; three missed answers end
    /// the connection, so a host that stops answering fails in seconds.
    pub server_alive_interval: Duration,
    /// How long a master left behind by a crash lives on, idle.
    pub master_idle_persist: NonZeroUsize,
    /// How commands reach the master (see [`platform::default_multiplex`]).
    pub multiplex: Multiplex,
    /// How long a new master may take to answer its check.
    pub check_limit: Duration,
}

impl Default for SshOptions {
    fn default() -> Self {
        Self {
            concurrent_starts: 256,
            concurrent_starts_per_jump: 8,
            commands_per_host: 8,
            connect_timeout: Duration::from_secs(10),
            server_alive_interval: Duration::from_secs(5),
            master_idle_persist: NonZeroUsize::new(60).unwrap_or(NonZeroUsize::MIN),
            multiplex: platform::default_multiplex(),
            check_limit: Duration::from_secs(5),
        }
    }
}

/// Connects `connection: ssh` hosts.
#[derive(Debug)]
pub struct SshConnector {
    options: SshOptions,
    starts: Arc<Semaphore>,
    /// One bound per bastion.
    jump_starts: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// cutover's own short control directory, removed when dropped.
    control_dir: tempfile::TempDir,
    /// The mode new connections use: the options', or the other once a
    /// connection fell back to it.
    multiplex: Mutex<Multiplex>,
}

impl SshConnector {
    /// A connector with its own control directory; raises the open-files
    /// limit once.
    pub fn new(options: SshOptions) -> std::io::Result<Self> {
        platform::raise_open_files_limit();
        // The sockets open the user's connections: the user's alone.
        let control_dir = tempfile::Builder::new()
            .prefix("cutover-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(platform::control_dir_parent())?;
        Ok(Self {
            starts: Arc::new(Semaphore::new(options.concurrent_starts.max(1))),
            jump_starts: Mutex::default(),
            multiplex: Mutex::new(options.multiplex),
            options,
            control_dir,
        })
    }

    /// Where the control sockets live.
    pub fn control_dir(&self) -> &Path {
        self.control_dir.path()
    }

    /// The bound on connection starts through bastion `jump`.
    fn jump_bound(&self, jump: &str) -> Arc<Semaphore> {
        let mut bounds = self.jump_starts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let per_jump = self.options.concurrent_starts_per_jump.max(1);
        bounds.entry(jump.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(per_jump))).clone()
    }

    /// The mode new connections use.
    fn mode(&self) -> Multiplex {
        *self.multiplex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A connection in `failed` mode fell back: the rest use the other.
    fn fall_back_from(&self, failed: Multiplex) {
        *self.multiplex.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = failed.other();
    }

    /// Opens `target`'s master, for commands in `mode`.
    async fn open(
        &self,
        target: &Target,
        builder: &SessionBuilder,
        mode: Multiplex,
        timeout: Duration,
    ) -> Result<openssh::Session, TransportError> {
        let opened = match mode {
            Multiplex::Native => builder.connect_mux(&target.address).await,
            Multiplex::Process => builder.connect(&target.address).await,
        };
        match opened {
            Ok(session) => Ok(session),
            Err(openssh::Error::Connect(io)) if io.kind() == std::io::ErrorKind::NotFound => {
                let detail = why_ssh_refused(target).await.unwrap_or_else(|| io.to_string());
                Err(TransportError::Unreachable { detail })
            }
            Err(e) => Err(classify::connect_error(e, timeout)),
        }
    }

    fn builder(&self, target: &Target) -> SessionBuilder {
        let s = &target.settings;
        let mut b = SessionBuilder::default();
        b.control_directory(self.control_dir.path())
            .control_persist(ControlPersist::IdleFor(self.options.master_idle_persist))
            .server_alive_interval(self.options.server_alive_interval)
            .connect_timeout(s.connect_timeout.map(Duration::from_secs).unwrap_or(self.options.connect_timeout))
            // openssh's default accepts new keys; cutover is strict unless told.
            .known_hosts_check(match s.host_key_checking.unwrap_or_default() {
                HostKeyChecking::Strict => KnownHosts::Strict,
                HostKeyChecking::AcceptNew => KnownHosts::Add,
            });
        if let Some(user) = &s.user {
            b.user(user.clone());
        }
        if let Some(port) = s.port {
            b.port(port);
        }
        if let Some(key) = &s.identity_file {
            b.keyfile(expand_home(key));
        }
        if let Some(file) = &s.known_hosts {
            b.user_known_hosts_file(expand_home(file));
        }
        if let Some(jump) = &s.proxy_jump {
            b.jump_hosts(jump.split(',').map(str::trim));
        }
        b
    }
}

impl Connector for SshConnector {
    fn connect<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Box<dyn Transport>, TransportError>> {
        async move {
            if target.connection != Connection::Ssh {
                return Err(TransportError::Unsupported { connection: "local".into() });
            }
            let builder = self.builder(target);
            let timeout =
                target.settings.connect_timeout.map(Duration::from_secs).unwrap_or(self.options.connect_timeout);
            let refused = |e: tokio::sync::AcquireError| TransportError::Spawn { detail: e.to_string() };
            let _permits = {
                let jump = target.settings.proxy_jump.as_deref().map(|j| self.jump_bound(j));
                let through_jump = match jump {
                    Some(bound) => Some(bound.acquire_owned().await.map_err(refused)?),
                    None => None,
                };
                (through_jump, self.starts.acquire().await.map_err(refused)?)
            };
            let first = self.mode();
            let open = |mode| self.open(target, &builder, mode, timeout);
            let (session, notice) = open_checked(first, open, |s| check(s, self.options.check_limit)).await?;
            if notice.is_some() {
                self.fall_back_from(first);
            }
            let mode = if notice.is_some() { first.other() } else { first };
            let transport =
                SshTransport::new(session, self.options.commands_per_host).with_notice(notice).in_mode(mode);
            Ok(Box::new(transport) as Box<dyn Transport>)
        }
        .boxed()
    }
}

/// A master opened in `first` mode and checked; when its check fails (or
/// does not answer in time), opened once more in the other mode, with what
/// to tell the user. A master that cannot be opened at all is the host's
/// problem (unreachable, refused, an unknown key), the same in either
/// mode: not tried again.
async fn open_checked<S, Opened, Checked>(
    first: Multiplex,
    open: impl Fn(Multiplex) -> Opened,
    check: impl Fn(S) -> Checked,
) -> Result<(S, Option<String>), TransportError>
where
    Opened: Future<Output = Result<S, TransportError>>,
    Checked: Future<Output = Result<S, String>>,
{
    let why = match check(open(first).await?).await {
        Ok(session) => return Ok((session, None)),
        Err(why) => why,
    };
    let other = first.other();
    let session = check(open(other).await?).await.map_err(|again| TransportError::ConnectionLost {
        detail: format!("the connection check failed with {first} multiplexing ({why}) and with {other} ({again})"),
    })?;
    let notice = format!(
        "{first} multiplexing failed its connection check ({why}); {other} multiplexing works and is used for the \
         rest of this run (set `ssh.multiplex: {other}` to start with it)"
    );
    Ok((session, Some(notice)))
}

/// Whether the master answers within `limit`; a master that does not is
/// closed (within the same limit).
async fn check(session: openssh::Session, limit: Duration) -> Result<openssh::Session, String> {
    let why = match tokio::time::timeout(limit, session.check()).await {
        Ok(Ok(())) => return Ok(session),
        Ok(Err(error)) => classify::last_line(&error.to_string()),
        Err(_) => format!("no answer within {}s", limit.as_secs()),
    };
    let _ = tokio::time::timeout(limit, session.close()).await;
    Err(why)
}

/// Why ssh refused to start, when it exited before it wrote its log (the
/// `openssh` crate, which sends ssh's stderr nowhere, then only has "No such
/// file or directory"): the same settings given to `ssh -G`, which parses
/// them as a connection would, connects nowhere, and says on stderr what
/// it refused.
async fn why_ssh_refused(target: &Target) -> Option<String> {
    let s = &target.settings;
    let mut ssh = tokio::process::Command::new("ssh");
    ssh.arg("-G").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(user) = &s.user {
        ssh.arg("-l").arg(user);
    }
    if let Some(port) = s.port {
        ssh.arg("-p").arg(port.to_string());
    }
    if let Some(key) = &s.identity_file {
        ssh.arg("-i").arg(expand_home(key));
    }
    if let Some(jump) = &s.proxy_jump {
        ssh.arg("-J").arg(jump);
    }
    let out = ssh.arg("--").arg(&target.address).output().await.ok()?;
    let said = String::from_utf8_lossy(&out.stderr);
    let reason: Vec<&str> =
        said.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("Pseudo-terminal")).collect();
    (!out.status.success() && !reason.is_empty()).then(|| format!("ssh refused to start: {}", reason.join("; ")))
}

/// `~/x` to `$HOME/x`; other paths unchanged.
fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_home_only_at_the_start() {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        assert_eq!(expand_home(Path::new("~/.ssh/id")), home.join(".ssh/id"));
        assert_eq!(expand_home(Path::new("/etc/ssh/id")), PathBuf::from("/etc/ssh/id"));
    }

    #[test]
    fn the_control_directory_is_private_and_short_enough_for_a_socket_on_macos() {
        use std::os::unix::fs::PermissionsExt;
        let connector = SshConnector::new(SshOptions::default()).expect("connector");
        let mode = std::fs::metadata(connector.control_dir()).expect("dir").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // openssh names a socket with about 30 bytes; macOS allows 104.
        assert!(connector.control_dir().as_os_str().len() + 40 <= 104, "{}", connector.control_dir().display());
    }

    /// Opens "sessions" that are the mode they were opened in, checked by
    /// `works`; counts the openings.
    async fn opened(
        first: Multiplex,
        opens: &Mutex<Vec<Multiplex>>,
        works: impl Fn(Multiplex) -> Result<(), String>,
    ) -> Result<(Multiplex, Option<String>), TransportError> {
        let open = |mode| {
            opens.lock().expect("opens").push(mode);
            async move { Ok::<_, TransportError>(mode) }
        };
        let works = &works;
        open_checked(first, open, |mode| async move { works(mode).map(|()| mode) }).await
    }

    #[tokio::test]
    async fn a_master_that_fails_its_check_is_opened_once_more_in_the_other_mode() {
        let opens = Mutex::new(Vec::new());
        let fine = opened(Multiplex::Native, &opens, |_| Ok(())).await.expect("opens");
        assert_eq!(fine, (Multiplex::Native, None));
        let opens = Mutex::new(Vec::new());
        let native_broken = |mode| if mode == Multiplex::Native { Err("no answer within 5s".into()) } else { Ok(()) };
        let (mode, notice) = opened(Multiplex::Native, &opens, native_broken).await.expect("falls back");
        assert_eq!(mode, Multiplex::Process);
        assert_eq!(*opens.lock().expect("opens"), [Multiplex::Native, Multiplex::Process], "once, not more");
        let notice = notice.expect("said");
        assert!(
            notice.starts_with("native multiplexing failed its connection check (no answer within 5s)"),
            "{notice}"
        );
        assert!(notice.contains("`ssh.multiplex: process`"), "{notice}");
        let opens = Mutex::new(Vec::new());
        let Err(error) = opened(Multiplex::Process, &opens, |m| Err(format!("{m} broken"))).await else {
            panic!("neither works")
        };
        assert!(
            error.to_string().contains("with process multiplexing (process broken) and with native (native broken)")
        );
    }

    #[tokio::test]
    async fn a_host_that_cannot_be_opened_is_not_tried_again() {
        let opens = Mutex::new(0);
        let open = |_| {
            *opens.lock().expect("opens") += 1;
            async { Err::<Multiplex, _>(TransportError::AuthenticationRefused { detail: "Permission denied".into() }) }
        };
        let result = open_checked(Multiplex::Native, open, |m| async move { Ok(m) }).await;
        assert!(matches!(result, Err(TransportError::AuthenticationRefused { .. })));
        assert_eq!(*opens.lock().expect("opens"), 1);
    }

    /// A value the inventory's checks would refuse, handed to ssh anyway:
    /// ssh's own reason reaches the error, not "No such file or directory".
    #[tokio::test]
    async fn when_ssh_refuses_to_start_its_own_reason_is_kept() {
        let target = Target {
            name: "web1".into(),
            connection: Connection::Ssh,
            address: "127.0.0.1".into(),
            settings: cutover_core::config::inventory::HostSettings {
                proxy_jump: Some("bastion:99999".into()),
                ..Default::default()
            },
            roles: Vec::new(),
            vars: Default::default(),
            deploy_path: "/srv/app".into(),
        };
        let connector = SshConnector::new(SshOptions::default()).expect("connector");
        let Err(error) = connector.connect(&target).await else { panic!("ssh started") };
        let TransportError::Unreachable { detail } = &error else { panic!("{error:?}") };
        assert!(detail.contains("Invalid -J argument"), "{detail}");
    }
}
