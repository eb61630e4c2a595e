//! The Laravel application of `tests/fixtures/laravel-app` on a fleet: a
//! MariaDB server in its own container on the same Docker network, each
//! host's `shared/.env` (with its own queue, so each host's worker takes the
//! jobs dispatched there), and the application's versions committed to the
//! fleet's repository.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use testcontainers::bollard::models::HostConfig;
use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::fleet::{DEPLOY_PATH, Fleet, GIT_DELIVERY};
use super::git::{GitRepo, copy_into};
use super::setup::{image_tag, repo_root};

/// A MariaDB server (the host image's `database` role): database, user and
/// password `app`. No port is published: only the hosts reach it.
#[derive(Debug)]
pub struct Database {
    container: ContainerAsync<GenericImage>,
    address: String,
}

impl Database {
    pub async fn start() -> Self {
        let (image, version) = image_tag().split_once(':').expect("tag is name:version");
        let container = GenericImage::new(image, version)
            .with_wait_for(WaitFor::message_on_stderr("database ready"))
            .with_cmd(["database"])
            .with_label("cutover.fleet-test", "1")
            .with_host_config_modifier(|hc: &mut HostConfig| hc.publish_all_ports = Some(false))
            .with_startup_timeout(Duration::from_secs(90))
            .start()
            .await
            .expect("start the database container");
        // Its address on the network the hosts share (Docker's default bridge).
        let format = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}";
        let out =
            Command::new("docker").args(["inspect", "-f", format, container.id()]).output().expect("docker inspect");
        let address = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(!address.is_empty(), "the database container has an address");
        Self { container, address }
    }

    /// The result of one SQL statement on database `app`, tab-separated,
    /// without the column names.
    pub fn query(&self, sql: &str) -> String {
        let out = Command::new("docker")
            .args(["exec", self.container.id(), "mariadb", "-N", "-B", "app", "-e", sql])
            .output()
            .expect("run docker exec");
        assert!(out.status.success(), "`{sql}`: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// The versions of the application the stories deploy.
#[derive(Clone, Copy, Debug)]
pub enum Version {
    /// `base/`.
    V1,
    /// `base/` with `v2/` over it, less the class it deletes and the file
    /// of the class it moves, and `v2` in `app/CodeVersion.php`.
    V2,
}

impl GitRepo {
    /// Commits the Laravel application at `version` (the work tree emptied
    /// first), with `edit` applied to it; returns the commit.
    pub fn commit_laravel(&self, version: Version, edit: impl FnOnce(&Path)) -> String {
        let fixture = repo_root().join("tests/fixtures/laravel-app");
        self.commit_tree(&format!("laravel {version:?}"), |work| {
            copy_into(&fixture.join("base"), work);
            // acme/greeting, from a `package` repository's tar in the
            // application (composer.lock holds no checksum for it).
            std::fs::create_dir_all(work.join("dists")).expect("dists");
            let status = Command::new("tar")
                .arg("-C")
                .arg(fixture.join("greeting"))
                .arg("-cf")
                .arg(work.join("dists/acme-greeting-1.0.0.tar"))
                .args(["composer.json", "src"])
                .status()
                .expect("run tar");
            assert!(status.success(), "tar of acme/greeting");
            if let Version::V2 = version {
                copy_into(&fixture.join("v2"), work);
                for gone in ["app/Support/Legacy.php", "lib/Clock.php"] {
                    std::fs::remove_file(work.join(gone)).expect("remove a v1 file");
                }
                let version = work.join("app/CodeVersion.php");
                let text = std::fs::read_to_string(&version).expect("read CodeVersion.php");
                std::fs::write(&version, text.replace("NAME = 'v1'", "NAME = 'v2'")).expect("write CodeVersion.php");
            }
            edit(work);
        })
    }
}

/// The inventory of the Laravel stories: the `laravel` recipe, git
/// delivery, `.env` and `storage/` shared.
pub const LARAVEL: &str = "shared:\n  files: [.env]\n  dirs: [storage]\n";

impl Fleet {
    /// Prepares every host for the application as a team would before its
    /// first deploy (`shared/.env` naming `db`, each host its own queue;
    /// `shared/storage`), commits v1 and writes the inventory.
    pub fn prepare_laravel(&self, db: &Database) {
        for (i, host) in self.hosts.iter().enumerate() {
            let env = format!(
                "APP_ENV=production\nAPP_KEY=base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\
                 DB_HOST={}\nDB_DATABASE=app\nDB_USERNAME=app\nDB_PASSWORD=app\nQUEUE_NAME={}\n",
                db.address, host.name
            );
            self.exec_ok(
                i,
                &format!(
                    "mkdir -p {DEPLOY_PATH}/shared/storage/logs {DEPLOY_PATH}/shared/storage/framework/views && \
                     printf '%s' '{env}' > {DEPLOY_PATH}/shared/.env"
                ),
            );
        }
        self.git().commit_laravel(Version::V1, |_| {});
        self.write_inventory_edited(&format!("{GIT_DELIVERY}{LARAVEL}"), &[("recipe: php", "recipe: laravel")]);
    }

    /// What host `i` serves at `/jobs/<token>` once every host recorded
    /// the job dispatched there (at most 60 s): one line per host,
    /// `<host> <version> <release>`.
    pub fn jobs_processed(&self, token: &str) -> Vec<String> {
        let started = Instant::now();
        loop {
            let (status, body) = self.http_get(0, &format!("/jobs/{token}"));
            assert_eq!(status, 200, "/jobs/{token}: {body}");
            let lines: Vec<String> = body.lines().map(str::to_owned).collect();
            if lines.len() >= self.hosts.len() {
                return lines;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "jobs {token} processed: {lines:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Makes the application's `laravel/framework` a real-sized package, as a
/// registry would serve it: a tar of a copy of Debian's libraries (about 33
/// MB, 4,750 PHP files, all in the class map), in `<git dir>/dist` (so
/// `/srv/git/dist` on the hosts), from a `package` repository. Rewrites
/// composer.json and composer.lock in the work tree (in a container of the
/// host image, where the libraries and composer are); the application's
/// other `package` repositories stay. For the benchmarks: composer, the
/// autoloader and OPcache get real work.
#[allow(dead_code)] // the benchmark's (benches/fleet.rs)
pub fn make_framework_heavy(git_dir: &Path, work: &Path) {
    const SCRIPT: &str = r#"set -e
p=$(mktemp -d); mkdir -p "$p/lib" /srv/git/dist
(cd /usr/share/php && tar -c --exclude=./Composer --exclude=./8.2 --exclude=./data .) | tar -x -C "$p/lib"
printf '{"name": "laravel/framework", "version": "8.83.26", "autoload": {"classmap": ["lib/"], "files": ["debian.php"]}}\n' > "$p/composer.json"
printf '<?php\nset_include_path(__DIR__ . "/lib" . PATH_SEPARATOR . get_include_path());\nrequire_once __DIR__ . "/lib/Illuminate/autoload.php";\n' > "$p/debian.php"
tar -C "$p" -cf /srv/git/dist/laravel-framework-8.83.26.tar composer.json debian.php lib
cd /app && rm -rf packages composer.lock vendor
php -r '$c = json_decode(file_get_contents("composer.json"), true); $kept = array_values(array_filter($c["repositories"], fn ($r) => ($r["type"] ?? "") === "package")); $c["repositories"] = array_merge([["packagist.org" => false], ["type" => "package", "package" => ["name" => "laravel/framework", "version" => "8.83.26", "dist" => ["type" => "tar", "url" => "/srv/git/dist/laravel-framework-8.83.26.tar"], "autoload" => ["classmap" => ["lib/"], "files" => ["debian.php"]]]]], $kept); file_put_contents("composer.json", json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES) . "\n");'
COMPOSER_DISABLE_NETWORK=1 COMPOSER_ALLOW_SUPERUSER=1 composer update --no-install --no-interaction --quiet
chmod -R a+rwX /app /srv/git/dist
"#;
    let mounts = [format!("{}:/srv/git", git_dir.display()), format!("{}:/app", work.display())];
    let out = Command::new("docker")
        .args(["run", "--rm", "-v", &mounts[0], "-v", &mounts[1], "--entrypoint", "/bin/sh", image_tag(), "-c", SCRIPT])
        .output()
        .expect("run docker");
    assert!(out.status.success(), "making the heavy framework package: {}", String::from_utf8_lossy(&out.stderr));
}
