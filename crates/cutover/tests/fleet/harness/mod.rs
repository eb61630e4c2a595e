//! The fleet fixture: the host image, a key pair, containers with their
//! ports on 127.0.0.1, a known_hosts file, a git repository the hosts can
//! fetch, and ways to run `cutover` and look at what each host serves.

mod fleet;
mod git;
mod laravel;
mod load;
mod probe;
mod run;
mod setup;
mod story;

pub use story::HostState;

pub use fleet::{BLUE_GREEN_PHP_FPM, DEPLOY_PATH, Fleet, GIT_DELIVERY, HARNESS_PHP_FPM, activation_php_fpm};
pub use git::{copy_into, write_app};
pub use laravel::{Database, Version};
#[allow(unused_imports)] // the benchmark's (benches/fleet.rs)
pub use laravel::{LARAVEL, make_framework_heavy};
#[allow(unused_imports)] // the activation benchmark's (benches/activation.rs)
pub use load::Sample;
pub use load::{Verdict, switches};
pub use run::{failure_of, spawn_cutover, summary, text, wait_limited};
pub use setup::{docker_available, repo_root};
