//! Looking at the hosts from outside `cutover`: HTTP through nginx and
//! PHP-FPM, commands through `docker exec`, plain `ssh`, `ssh-keyscan`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::fleet::{DEPLOY_PATH, Fleet};

impl Fleet {
    /// `GET path` on host `i`'s nginx (HTTP/1.0): status and body.
    pub fn http_get(&self, i: usize, path: &str) -> (u16, String) {
        let port = self.hosts[i].http_port;
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to nginx");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").expect("send request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {response:?}"));
        (status, body.to_owned())
    }

    /// What host `i` serves at `/` (the body, trimmed); panics unless 200.
    pub fn served(&self, i: usize) -> String {
        let (status, body) = self.http_get(i, "/");
        assert_eq!(status, 200, "{}: GET / -> {status}: {body}", self.hosts[i].name);
        body.trim().to_owned()
    }

    /// `sh -c cmd` on host `i` as `deploy` via `docker exec`: exit code and
    /// stdout.
    pub fn exec(&self, i: usize, cmd: &str) -> (i32, String) {
        let out = Command::new("docker")
            .args(["exec", "-u", "deploy", "-e", "HOME=/home/deploy", "-w", "/"])
            .arg(self.hosts[i].container.id())
            .args(["sh", "-c", cmd])
            .stdin(Stdio::null())
            .output()
            .expect("run docker exec");
        let code = out.status.code().expect("docker exec exit code");
        (code, String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `sh -c cmd` on host `i` as root via `docker exec`; panics (with its
    /// output) unless it succeeds. Returns stdout and stderr.
    pub fn exec_root(&self, i: usize, cmd: &str) -> String {
        let out = Command::new("docker")
            .args(["exec", "-u", "root", "-w", "/"])
            .arg(self.hosts[i].container.id())
            .args(["sh", "-c", &format!("{{ {cmd}\n}} 2>&1")])
            .stdin(Stdio::null())
            .output()
            .expect("run docker exec");
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{}: `{cmd}` as root failed: {said}", self.hosts[i].name);
        said
    }

    /// `docker <verb> <container>` for host `i` (`pause`, `unpause`, ...).
    pub fn docker(&self, i: usize, verb: &str) {
        let out = Command::new("docker").arg(verb).arg(self.hosts[i].container.id()).output().expect("run docker");
        assert!(out.status.success(), "docker {verb} {}: {}", self.hosts[i].name, String::from_utf8_lossy(&out.stderr));
    }

    /// Host `i`'s hostname inside its container (the container id's first
    /// twelve characters, in `/etc/hostname`).
    pub fn hostname(&self, i: usize) -> String {
        self.exec_ok(i, "cat /etc/hostname").trim().to_owned()
    }

    /// Like [`Fleet::exec`], panicking (with stderr) unless it succeeds.
    pub fn exec_ok(&self, i: usize, cmd: &str) -> String {
        let (code, stdout) = self.exec(i, &format!("{{ {cmd}\n}} 2>&1"));
        assert_eq!(code, 0, "{}: `{cmd}` failed: {stdout}", self.hosts[i].name);
        stdout
    }

    /// The release `current` points to on host `i`, if any.
    pub fn current(&self, i: usize) -> Option<String> {
        let (code, out) = self.exec(i, &format!("readlink {DEPLOY_PATH}/current"));
        (code == 0).then(|| out.trim().rsplit('/').next().unwrap_or_default().to_owned())
    }

    /// Whether `current` on host `i` is a symbolic link.
    pub fn current_is_symlink(&self, i: usize) -> bool {
        self.exec(i, &format!("test -L {DEPLOY_PATH}/current")).0 == 0
    }

    /// The release directories on host `i`, sorted.
    pub fn releases(&self, i: usize) -> Vec<String> {
        let (_, out) = self.exec(i, &format!("ls -1 {DEPLOY_PATH}/releases 2>/dev/null"));
        let mut names: Vec<String> = out.lines().map(str::to_owned).collect();
        names.sort();
        names
    }

    /// The commit in host `i`'s live release (`current/REVISION`).
    pub fn revision(&self, i: usize) -> String {
        self.exec_ok(i, &format!("cat {DEPLOY_PATH}/current/REVISION")).trim().to_owned()
    }

    /// Whether a run holds the lock on host `i`.
    pub fn locked(&self, i: usize) -> bool {
        self.exec(i, &format!("test -e {DEPLOY_PATH}/.cutover/lock")).0 == 0
    }

    /// Whether a staged switch (`current-tmp`) is left on host `i`.
    pub fn staged(&self, i: usize) -> bool {
        let path = format!("{DEPLOY_PATH}/current-tmp");
        self.exec(i, &format!("test -e {path} || test -L {path}")).0 == 0
    }

    /// How many graceful PHP-FPM reloads host `i` has had.
    pub fn reload_count(&self, i: usize) -> usize {
        self.exec_ok(i, "cat /var/log/php-fpm-reloads.log").lines().count()
    }

    /// Polls (every 100 ms, at most `limit`) until `cmd` succeeds on host `i`.
    pub fn wait_until(&self, i: usize, cmd: &str, limit: Duration) {
        let start = Instant::now();
        while self.exec(i, cmd).0 != 0 {
            assert!(start.elapsed() < limit, "{}: `{cmd}` did not succeed within {limit:?}", self.hosts[i].name);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Plain `ssh deploy@127.0.0.1 -p <port> <cmd>` with strict host key
    /// checking against the fleet's known_hosts file (and no other).
    pub fn ssh(&self, i: usize, cmd: &str) -> Output {
        Command::new("ssh")
            .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "GlobalKnownHostsFile=/dev/null"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts().display()))
            .arg("-i")
            .arg(self.identity_file())
            .args(["-p", &self.hosts[i].ssh_port.to_string(), "deploy@127.0.0.1", cmd])
            .stdin(Stdio::null())
            .output()
            .expect("run ssh")
    }

    /// `docker port <id>`: the published ports as docker reports them.
    pub fn docker_port(&self, i: usize) -> String {
        let out =
            Command::new("docker").arg("port").arg(self.hosts[i].container.id()).output().expect("run docker port");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The known_hosts line of the ed25519 key of the sshd on 127.0.0.1:`port`
/// (`[127.0.0.1]:<port> ssh-ed25519 AAAA...`), retried while sshd starts.
pub fn host_key_line(port: u16) -> String {
    let start = Instant::now();
    loop {
        let out = Command::new("ssh-keyscan")
            .args(["-T", "5", "-t", "ed25519", "-p", &port.to_string(), "127.0.0.1"])
            .stderr(Stdio::null())
            .output()
            .expect("run ssh-keyscan");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: String = text
            .lines()
            .filter(|l| l.starts_with(&format!("[127.0.0.1]:{port} ssh-ed25519 ")))
            .map(|l| format!("{l}\n"))
            .collect();
        if !lines.is_empty() {
            return lines;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "ssh-keyscan of 127.0.0.1:{port} found no ed25519 key: {text}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
