//! Process-wide setup shared by every fleet: whether Docker answers, the
//! host image (built once by `tests/image/build.sh`) and the SSH key pair.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Whether a Docker engine answers. Without one, a test should return at
/// once: this prints a loud skip message, or panics when
/// `CUTOVER_REQUIRE_DOCKER=1` asks for the fleet tests to be mandatory.
pub fn docker_available(test: &str) -> bool {
    static ANSWERS: OnceLock<bool> = OnceLock::new();
    let answers = *ANSWERS.get_or_init(|| {
        Command::new("docker")
            .arg("info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if answers {
        return true;
    }
    assert!(
        std::env::var("CUTOVER_REQUIRE_DOCKER").as_deref() != Ok("1"),
        "fleet test {test}: no Docker engine answers `docker info`, and \
         CUTOVER_REQUIRE_DOCKER=1 makes that a failure"
    );
    // Straight to the stderr handle: libtest's capture only sees `eprintln!`,
    // and a skip must be visible in a normal `cargo test` run.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED fleet test {test}: no Docker engine \
         (set CUTOVER_REQUIRE_DOCKER=1 to make this a failure) ***\n"
    );
    false
}

/// The repository root (`crates/cutover/../..`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The host image tag (`cutover-test-host:<hash>`), built at most once per
/// test process; `build.sh` itself is cached and flock-guarded across
/// processes. Never pulls.
pub fn image_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let script = repo_root().join("tests/image/build.sh");
        let out = Command::new(&script).stderr(Stdio::inherit()).output().expect("run tests/image/build.sh");
        assert!(out.status.success(), "{} failed", script.display());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let tag = stdout.lines().last().unwrap_or_default().trim().to_owned();
        assert!(tag.starts_with("cutover-test-host:"), "build.sh printed no tag: {stdout}");
        tag
    })
}

/// The ed25519 key pair every host authorizes, made once per process.
#[derive(Debug)]
pub struct KeyPair {
    /// The private key file.
    pub private: PathBuf,
    /// The public key line.
    pub public: String,
}

pub fn key_pair() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fleet-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("key dir");
        let private = dir.join("id");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "cutover-fleet-test", "-f"])
            .arg(&private)
            .status()
            .expect("run ssh-keygen");
        assert!(status.success(), "ssh-keygen failed");
        let public = std::fs::read_to_string(dir.join("id.pub")).expect("read id.pub");
        KeyPair { private, public: public.trim().to_owned() }
    })
}
