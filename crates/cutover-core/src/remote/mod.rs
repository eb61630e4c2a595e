//! What runs on a host: one script per phase, built from data and rendered
//! through [`crate::shell`]. Every script starts by assigning its runtime
//! values to shell variables (quoted once); the rest is literal text.

pub mod activation;
pub mod adopt;
pub mod end;
pub mod fpm;
pub mod health;
pub mod lock;
pub mod prepare;
pub mod probe;
pub mod reuse;
pub mod serving;
pub mod steps;
pub mod supervise;
pub mod switch;

use crate::shell::Script;

/// A script that begins with `d=<deploy path>`: the host layout,
/// `$d/current`, `$d/releases/<id>`, `$d/shared`, `$d/repo`,
/// `$d/revisions.log`, `$d/.cutover/lock`.
pub(crate) fn script_in(deploy_path: &str) -> Script {
    let mut script = Script::new();
    script.assign("d", deploy_path);
    script
}
