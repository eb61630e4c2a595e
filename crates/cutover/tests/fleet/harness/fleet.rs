//! `Fleet`: n hosts started concurrently from the local image, their SSH and
//! HTTP ports published on 127.0.0.1 only, their host keys in the fleet's
//! own known_hosts file, and an inventory that reaches them over SSH.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testcontainers::bollard::models::{HostConfig, PortBinding};
use testcontainers::core::{AccessMode, IntoContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::git::GitRepo;
use super::probe;
use super::setup::{image_tag, key_pair};

/// Where the deploy path is on every host (owned by `deploy` in the image).
pub const DEPLOY_PATH: &str = "/var/www/app";

/// One running host.
#[derive(Debug)]
pub struct Host {
    pub name: String,
    pub container: ContainerAsync<GenericImage>,
    pub ssh_port: u16,
    pub http_port: u16,
}

/// A fleet of hosts and a scratch directory: `project/` (the inventory and
/// anything uploaded), `known_hosts`, `git/app.git` (mounted at `/srv/git`)
/// and `work/` (the repository's work tree). Dropping it removes the
/// containers.
#[derive(Debug)]
pub struct Fleet {
    pub hosts: Vec<Host>,
    dir: tempfile::TempDir,
    git: GitRepo,
}

impl Fleet {
    /// Starts `n` hosts (web1..webN) at once and records their host keys.
    pub async fn start(n: usize) -> Self {
        let dir = tempfile::tempdir().expect("fleet dir");
        let git_dir = dir.path().join("git");
        std::fs::create_dir_all(&git_dir).expect("git dir");
        std::fs::create_dir_all(dir.path().join("project")).expect("project dir");
        set_mode(&git_dir, 0o755);
        let git = GitRepo::create(git_dir.join("app.git"), dir.path().join("work"));

        let started = Instant::now();
        let starts = (1..=n).map(|i| start_host(format!("web{i}"), &git_dir));
        let hosts = futures::future::join_all(starts).await;
        eprintln!("fleet: {n} hosts started in {:.1?}", started.elapsed());

        let fleet = Self { hosts, dir, git };
        let lines: Vec<String> = fleet.hosts.iter().map(|h| probe::host_key_line(h.ssh_port)).collect();
        std::fs::write(fleet.known_hosts(), lines.join("")).expect("write known_hosts");
        fleet
    }

    /// The project directory `cutover` runs in.
    pub fn project(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    /// The known_hosts file the inventory names.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The private key every host authorizes.
    pub fn identity_file(&self) -> &Path {
        &key_pair().private
    }

    /// The directory every host mounts read-only at `/srv/git`.
    #[allow(dead_code)] // the benchmark's (benches/fleet.rs)
    pub fn git_dir(&self) -> PathBuf {
        self.dir.path().join("git")
    }

    /// The git repository mounted at `/srv/git/app.git` on the hosts.
    pub fn git(&self) -> &GitRepo {
        &self.git
    }

    /// An inventory reaching every host over SSH with strict host key
    /// checking; `extra` (top-level keys: delivery, hooks, ...) is appended.
    pub fn inventory(&self, extra: &str) -> String {
        let hosts: String = self
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let roles = if i == 0 { "[primary, web]" } else { "[web]" };
                format!("  - name: {}\n    address: 127.0.0.1\n    port: {}\n    roles: {roles}\n", h.name, h.ssh_port)
            })
            .collect();
        format!(
            "application: app\ndeploy_path: {DEPLOY_PATH}\nrecipe: php\n\
             {HARNESS_PHP_FPM}defaults:\n  connection: ssh\n  user: deploy\n  identity_file: {}\n  \
             known_hosts: {}\n  host_key_checking: strict\n  connect_timeout: 10\n\
             hosts:\n{hosts}{extra}",
            self.identity_file().display(),
            self.known_hosts().display(),
        )
    }

    /// Writes [`Fleet::inventory`] without its `php_fpm` section (what
    /// cutover finds on a stock host) to `project/cutover.yaml`.
    pub fn write_stock_inventory(&self, extra: &str) -> PathBuf {
        self.write_inventory_edited(extra, &[(HARNESS_PHP_FPM, "")])
    }

    /// Writes [`Fleet::inventory`] to `project/cutover.yaml`; returns its path.
    pub fn write_inventory(&self, extra: &str) -> PathBuf {
        let path = self.project().join("cutover.yaml");
        std::fs::write(&path, self.inventory(extra)).expect("write inventory");
        path
    }

    /// Stops host `i` (the container stays until the fleet is dropped).
    pub async fn stop(&self, i: usize) {
        self.hosts[i].container.stop_with_timeout(Some(1)).await.expect("stop container");
    }

    /// Removes host `i`'s line from the known_hosts file.
    pub fn forget_host_key(&self, i: usize) {
        let prefix = format!("[127.0.0.1]:{} ", self.hosts[i].ssh_port);
        let text = std::fs::read_to_string(self.known_hosts()).expect("read known_hosts");
        let kept: String = text.lines().filter(|l| !l.starts_with(&prefix)).map(|l| format!("{l}\n")).collect();
        assert_ne!(kept, text, "host {i} had a known_hosts line");
        std::fs::write(self.known_hosts(), kept).expect("write known_hosts");
    }
}

/// The `php_fpm` section of the fleet's inventory: the image's reload
/// script, which returns once the new FPM master is up.
pub const HARNESS_PHP_FPM: &str = "php_fpm:\n  reload: sudo /usr/local/sbin/reload-php-fpm\n  config_test: none\n";

/// The test image's two masters (`/usr/local/sbin/php-fpm-color`) and the
/// link its nginx connects through.
pub const BLUE_GREEN_PHP_FPM: &str = "php_fpm:\n  reload: sudo /usr/local/sbin/reload-php-fpm\n  activation: blue-green\n  blue_green:\n    link: /run/php-app/live.sock\n    \
    blue:\n      socket: /run/php/app-blue.sock\n      start: sudo -n /usr/local/sbin/php-fpm-color start blue\n      \
    stop: sudo -n /usr/local/sbin/php-fpm-color stop blue\n      config: /etc/php/8.2/fpm/colors/blue.conf\n    green:\n      socket: /run/php/app-green.sock\n      \
    start: sudo -n /usr/local/sbin/php-fpm-color start green\n      \
    stop: sudo -n /usr/local/sbin/php-fpm-color stop green\n      config: /etc/php/8.2/fpm/colors/green.conf\n";

/// The `php_fpm` section of each mode (the reload stays for `--activation
/// reload`).
pub fn activation_php_fpm(mode: &str) -> &'static str {
    match mode {
        "reload" => HARNESS_PHP_FPM,
        "warm" => "php_fpm:\n  reload: sudo /usr/local/sbin/reload-php-fpm\n  config_test: none\n  activation: warm\n",
        _ => BLUE_GREEN_PHP_FPM,
    }
}

/// Git delivery from the mounted repository, the commit resolved on the
/// primary host (the path does not exist where the tests run).
pub const GIT_DELIVERY: &str = "repository: /srv/git/app.git\nbranch: main\nresolve: host\n";

async fn start_host(name: String, git_dir: &Path) -> Host {
    let (image, version) = image_tag().split_once(':').expect("tag is name:version");
    let mount = Mount::bind_mount(git_dir.to_string_lossy(), "/srv/git").with_access_mode(AccessMode::ReadOnly);
    let container = GenericImage::new(image, version)
        .with_exposed_port(22.tcp())
        .with_exposed_port(80.tcp())
        .with_wait_for(WaitFor::message_on_stderr("Server listening"))
        .with_env_var("AUTHORIZED_KEY", key_pair().public.clone())
        .with_label("cutover.fleet-test", "1")
        .with_mount(mount)
        .with_host_config_modifier(host_config)
        .with_startup_timeout(Duration::from_secs(60))
        .start()
        .await
        .expect("start a fleet host container");
    let ssh_port = container.get_host_port_ipv4(22).await.expect("ssh port");
    let http_port = container.get_host_port_ipv4(80).await.expect("http port");
    Host { name, container, ssh_port, http_port }
}

/// Publishes 22 and 80 on 127.0.0.1 with ephemeral host ports, instead of
/// testcontainers' default of every exposed port on 0.0.0.0; and puts the
/// deploy path on a tmpfs owned by `deploy`.
///
/// The deploy path must be on a kernel filesystem, as on a real host: the
/// container's own root may be fuse-overlayfs (Docker's storage driver on
/// some machines, this project's CI among them), where a lookup racing a
/// `rename(2)` of `current` can miss it. Seen as a rare 404 in the
/// zero-downtime story (nginx: `realpath() ".../current/public" failed`);
/// a loop of renames against a loop of lookups missed 1782 times in 86 000
/// on fuse-overlayfs, and never in 1.6 million on tmpfs.
fn host_config(hc: &mut HostConfig) {
    let loopback = || Some(vec![PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(String::new()) }]);
    hc.port_bindings = Some(HashMap::from([("22/tcp".to_owned(), loopback()), ("80/tcp".to_owned(), loopback())]));
    hc.publish_all_ports = Some(false);
    hc.tmpfs = Some(HashMap::from([(DEPLOY_PATH.to_owned(), "uid=1000,gid=1000,mode=0755,exec".to_owned())]));
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
