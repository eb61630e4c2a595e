//! Steps and checks the stories share: run `cutover` in the fleet's
//! project, deploy and expect success, and compare what every host has.

use std::process::Output;

use serde_json::Value;

use super::fleet::Fleet;
use super::fleet::GIT_DELIVERY;
use super::run::{LiveRun, cutover, cutover_json, summary};

/// What one host has on disk: where `current` points and its releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostState {
    pub current: Option<String>,
    pub releases: Vec<String>,
}

impl Fleet {
    /// Starts `n` hosts, deploys v1 from git to them and commits v2 (not yet
    /// deployed); returns the fleet and v1's release id.
    pub async fn start_on_v1(n: usize) -> (Self, String) {
        let fleet = Self::start(n).await;
        fleet.write_inventory(GIT_DELIVERY);
        let v1 = fleet.deploy_ok();
        fleet.assert_serving("v1", &v1);
        fleet.git().commit_version("v2");
        (fleet, v1)
    }

    /// Writes [`Fleet::inventory`] with each `(from, to)` of `edits` replaced
    /// (e.g. the `php_fpm` settings); returns its path.
    pub fn write_inventory_edited(&self, extra: &str, edits: &[(&str, &str)]) -> std::path::PathBuf {
        let mut text = self.inventory(extra);
        for (from, to) in edits {
            assert!(text.contains(from), "the inventory has {from:?}:\n{text}");
            text = text.replace(from, to);
        }
        let path = self.project().join("cutover.yaml");
        std::fs::write(&path, text).expect("write inventory");
        path
    }

    /// Puts an `ssh` first in cutover's PATH that writes each invocation's
    /// arguments to a file of its own under the project's `ssh.log.d/`
    /// (concurrent invocations never mix) before it runs the system's
    /// `ssh`: what [`Self::ssh_invocations`] reads.
    pub fn trace_ssh(&self) {
        let real = std::process::Command::new("sh").args(["-c", "command -v ssh"]).output().expect("find ssh");
        let real = String::from_utf8_lossy(&real.stdout).trim().to_owned();
        assert!(!real.is_empty(), "no ssh on this machine");
        let log = self.project().join("ssh.log.d");
        let bin = self.project().join("bin");
        std::fs::create_dir_all(&bin).expect("bin");
        std::fs::create_dir_all(&log).expect("log dir");
        let wrapper =
            format!("#!/bin/sh\nprintf '%s ' \"$@\" > \"$(mktemp -p '{}')\"\nexec '{real}' \"$@\"\n", log.display());
        std::fs::write(bin.join("ssh"), wrapper).expect("write the wrapper");
        let mut perms = std::fs::metadata(bin.join("ssh")).expect("wrapper").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(bin.join("ssh"), perms).expect("chmod");
    }

    /// Every `ssh` cutover started since [`Self::trace_ssh`]: its arguments,
    /// oldest first.
    pub fn ssh_invocations(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.project().join("ssh.log.d")) else { return Vec::new() };
        let mut files: Vec<(std::time::SystemTime, String)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let modified = e.metadata().and_then(|m| m.modified()).ok()?;
                Some((modified, std::fs::read_to_string(e.path()).ok()?))
            })
            .collect();
        files.sort();
        files.into_iter().map(|(_, text)| text.replace('\n', " ")).collect()
    }

    /// `cutover <command> -i cutover.yaml <args> --json` in the background.
    pub fn live(&self, command: &str, args: &[&str]) -> LiveRun {
        let mut all = vec![command, "-i", "cutover.yaml"];
        all.extend_from_slice(args);
        LiveRun::start(&self.project(), &all)
    }

    /// `cutover <command> -i cutover.yaml <args>` in the project, plain.
    pub fn run(&self, command: &str, args: &[&str]) -> Output {
        let mut all = vec![command, "-i", "cutover.yaml"];
        all.extend_from_slice(args);
        cutover(&self.project(), &all)
    }

    /// The same with `--json`: exit code, events, all the text printed.
    pub fn run_json(&self, command: &str, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
        let mut all = vec![command, "-i", "cutover.yaml"];
        all.extend_from_slice(args);
        cutover_json(&self.project(), &all)
    }

    /// `cutover deploy`, which must succeed on every host; the release id.
    pub fn deploy_ok(&self) -> String {
        self.deploy_ok_with(&[])
    }

    /// `cutover deploy <args>`, which must succeed on every host.
    pub fn deploy_ok_with(&self, args: &[&str]) -> String {
        let (code, events, text) = self.run_json("deploy", args);
        assert_eq!(code, Some(0), "deploy failed:\n{text}");
        let summary = summary(&events);
        assert_eq!(summary["outcome"], "done", "{summary}");
        let release = summary["release"].as_str().expect("release id").to_owned();
        for host in &self.hosts {
            assert_eq!(summary["hosts"][&host.name]["current"], release, "{}: {summary}", host.name);
        }
        release
    }

    /// The newest run log in the project's `.cutover/logs/`: everything
    /// the hosts' scripts printed.
    pub fn newest_log(&self) -> String {
        let logs = std::fs::read_dir(self.project().join(".cutover/logs")).expect("logs");
        let paths = logs.map(|e| e.expect("log").path());
        let newest = paths.max_by_key(|p| p.metadata().and_then(|m| m.modified()).expect("mtime")).expect("a log");
        std::fs::read_to_string(newest).expect("read the log")
    }

    /// How many hosts' composer step started from the live release's vendor/
    /// in the newest run.
    pub fn vendor_copies(&self) -> usize {
        self.newest_log().matches("reuse: vendor/ copied from the live release").count()
    }

    /// Every host's state, in host order.
    pub fn states(&self) -> Vec<HostState> {
        (0..self.hosts.len()).map(|i| HostState { current: self.current(i), releases: self.releases(i) }).collect()
    }

    /// Every host serves `version` from `release`, through PHP-FPM with
    /// OPcache, and `current` is a symbolic link to that release.
    pub fn assert_serving(&self, version: &str, release: &str) {
        for (i, host) in self.hosts.iter().enumerate() {
            assert_eq!(self.served(i), format!("{version} {release} opcache"), "{}", host.name);
            assert!(self.current_is_symlink(i), "{}: current is a link", host.name);
            assert_eq!(self.current(i).as_deref(), Some(release), "{}", host.name);
        }
    }

    /// No host holds a lock or has a staged switch left.
    pub fn assert_clean(&self) {
        for (i, host) in self.hosts.iter().enumerate() {
            assert!(!self.locked(i), "{}: lock released", host.name);
            assert!(!self.staged(i), "{}: no current-tmp left", host.name);
        }
    }
}
