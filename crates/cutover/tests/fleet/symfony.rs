//! A Symfony 5.4 application (tests/fixtures/symfony-app: framework-bundle
//! from Debian's packages, no Doctrine) deployed with the `symfony` recipe:
//! the prod cache warmed in the release's own directory, composer's scripts
//! (`assets:install`) run, on a fresh build and with vendor/ reused.

use std::path::Path;

use crate::harness::{DEPLOY_PATH, Fleet, GIT_DELIVERY, docker_available, repo_root};

/// Commits the application with its page saying `version`.
fn commit_symfony(fleet: &Fleet, version: &str) {
    let fixture = repo_root().join("tests/fixtures/symfony-app");
    fleet.git().commit_tree(&format!("symfony {version}"), |work: &Path| {
        crate::harness::copy_into(&fixture, work);
        let page = work.join("src/Controller/PageController.php");
        let text = std::fs::read_to_string(&page).expect("read the page");
        std::fs::write(&page, text.replace("VERSION = 'v1'", &format!("VERSION = '{version}'"))).expect("write");
    });
}

/// Every host serves `version` from `release`, with the container compiled
/// for the release's real directory, and the bundle's asset installed.
fn assert_serving(fleet: &Fleet, version: &str, release: &str) {
    for (i, host) in fleet.hosts.iter().enumerate() {
        let page = format!("symfony {version} {release} {DEPLOY_PATH}/releases/{release}/var/cache/prod");
        assert_eq!(fleet.served(i), page, "{}", host.name);
        assert_eq!(fleet.http_get(i, "/bundles/acme/acme.txt"), (200, "acme asset\n".to_owned()), "{}", host.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn symfony_deploys_with_a_warm_cache_and_installed_assets() {
    let name = "symfony_deploys_with_a_warm_cache_and_installed_assets";
    if !docker_available(name) {
        return;
    }
    let fleet = Fleet::start(2).await;
    for i in 0..fleet.hosts.len() {
        fleet.exec_ok(
            i,
            &format!("mkdir -p {DEPLOY_PATH}/shared && printf 'APP_ENV=prod\\nAPP_DEBUG=0\\nAPP_SECRET=s3cr3t\\n' > {DEPLOY_PATH}/shared/.env"),
        );
    }
    commit_symfony(&fleet, "v1");
    // A local `before` hook records what it is told: with git delivery,
    // the commit too.
    let hook = "local_hooks:\n  before:\n    - name: record\n      run: env | grep '^CUTOVER_' | sort > before.env\n";
    let extra = format!("{GIT_DELIVERY}shared:\n  files: [.env]\n{hook}");
    fleet.write_inventory_edited(&extra, &[("recipe: php", "recipe: symfony")]);

    let v1 = fleet.deploy_ok();
    assert_serving(&fleet, "v1", &v1);
    let told = std::fs::read_to_string(fleet.project().join("before.env")).expect("before.env");
    for line in [format!("CUTOVER_REVISION={}", fleet.git().head()), format!("CUTOVER_RELEASE={v1}")] {
        assert!(told.lines().any(|l| l == line), "{line} in:\n{told}");
    }
    assert_eq!(fleet.vendor_copies(), 0, "nothing to copy from");

    // composer.lock unchanged: vendor/ starts from a copy, and composer's
    // scripts still install the assets into the new release.
    commit_symfony(&fleet, "v2");
    let v2 = fleet.deploy_ok();
    assert_serving(&fleet, "v2", &v2);
    assert_eq!(fleet.vendor_copies(), 2, "{}", fleet.newest_log());
    fleet.assert_clean();
}
