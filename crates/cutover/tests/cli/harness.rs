//! A throwaway project with an inventory of local hosts, and ways to run
//! `cutover` in it and look at what each host has on disk.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

/// The hosts every project starts with.
pub const HOSTS: [&str; 3] = ["web1", "web2", "web3"];

/// A temporary project: an app, an inventory, three local hosts.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// A project whose inventory has `extra` appended (hooks, php_fpm, ...).
    pub fn new(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = dir.path().join("app/public");
        std::fs::create_dir_all(&app).expect("app dir");
        std::fs::write(app.join("index.php"), "<?php echo 'v1';\n").expect("index.php");
        let project = Self { dir };
        project.write_inventory(extra);
        project
    }

    pub fn write_inventory(&self, extra: &str) {
        let hosts: String = HOSTS.iter().map(|h| format!("  - name: {h}\n    address: hosts/{h}\n")).collect();
        let text = format!(
            "application: shop\ndeploy_path: /srv/shop\nkeep_releases: 3\nsource: app\n\
             shared:\n  dirs: [storage]\nrecipe: php\nphp_fpm:\n  reload: none\n  config_test: none\n\
             defaults:\n  connection: local\nhosts:\n{hosts}{extra}"
        );
        self.write("cutover.yaml", &text);
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent dir");
        }
        std::fs::write(path, text).expect("write");
    }

    /// Writes an executable script (a fake tool put first on PATH).
    pub fn write_executable(&self, name: &str, text: &str) {
        self.write(name, text);
        let path = self.path().join(name);
        let mut perms = std::fs::metadata(&path).expect("script").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).expect("chmod");
    }

    /// PATH with the project's `bin/` first.
    pub fn path_with_bin(&self) -> String {
        format!("{}:{}", self.path().join("bin").display(), std::env::var("PATH").unwrap_or_default())
    }

    /// `cutover <args>` in the project, plain progress.
    pub fn cutover(&self, args: &[&str]) -> Output {
        self.cutover_with_env(args, &[])
    }

    /// The same with these environment variables set.
    pub fn cutover_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::cargo_bin("cutover")
            .expect("binary")
            .current_dir(self.path())
            // Before the command's own words: `run -- ...` takes all after `--`.
            .arg("--progress=plain")
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("cutover runs")
    }

    /// `cutover <args> --progress=plain --json` started in the background,
    /// as the leader of its own process group (as a terminal starts it).
    pub fn spawn_json(&self, args: &[&str]) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        std::process::Command::new(assert_cmd::cargo::cargo_bin("cutover"))
            .current_dir(self.path())
            .args(args)
            .args(["--progress=plain", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn cutover")
    }

    /// Waits (at most 30 s) until every one of `paths` exists in the project.
    pub fn wait_for(&self, paths: &[String]) {
        let started = std::time::Instant::now();
        while !paths.iter().all(|p| self.path().join(p).exists()) {
            assert!(started.elapsed() < std::time::Duration::from_secs(30), "never saw {paths:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// `cutover <args> --json`, its events parsed.
    pub fn cutover_json(&self, args: &[&str]) -> (Option<i32>, Vec<Value>) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cutover(&all);
        (out.status.code(), events_of(&out))
    }

    /// A host's deploy path.
    pub fn deploy_path(&self, host: &str) -> PathBuf {
        self.path().join("hosts").join(host).join("srv/shop")
    }

    /// The release `current` points to on a host.
    pub fn current(&self, host: &str) -> Option<String> {
        let link = std::fs::read_link(self.deploy_path(host).join("current")).ok()?;
        Some(link.file_name()?.to_string_lossy().into_owned())
    }

    /// The release directories on a host, sorted.
    pub fn releases(&self, host: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.deploy_path(host).join("releases")) else {
            return Vec::new();
        };
        let mut names: Vec<String> =
            entries.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    pub fn locked(&self, host: &str) -> bool {
        self.deploy_path(host).join(".cutover/lock").exists()
    }

    /// What the host would serve: its current release's index.php.
    pub fn served(&self, host: &str) -> String {
        std::fs::read_to_string(self.deploy_path(host).join("current/public/index.php")).unwrap_or_default()
    }
}

/// The events a `--json` run printed.
pub fn events_of(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The summary event (the last line of `--json`).
pub fn summary(events: &[Value]) -> &Value {
    let last = events.last().expect("at least one event");
    assert_eq!(last["event"], "summary", "last event is the summary: {last}");
    last
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
