//! The end of a run on a host: after success, append to revisions.log, prune
//! old releases and unlock; after a failure before the switch, remove this
//! run's release and unlock.

use crate::release::ReleaseId;
use crate::shell::{Script, Sh};

use super::script_in;

/// Appends `log_line` to revisions.log, removes `prune` (never the release
/// `current` points to, checked again on the host), and releases the lock.
pub fn finalize(deploy_path: &str, log_line: &str, prune: &[ReleaseId]) -> Script {
    let mut s = script_in(deploy_path);
    s.push(Sh::assign("line", log_line));
    s.line(r#"printf '%s\n' "$line" >> "$d/revisions.log""#);
    for release in prune {
        s.push(Sh::assign("r", release.to_string()));
        s.line(r#"if [ "$(readlink "$d/current")" != "releases/$r" ]; then rm -rf "$d/releases/$r"; fi"#);
    }
    s.line(r#"rm -rf "$d/.cutover/lock""#);
    s
}

/// Removes this run's release and staged link, and releases the lock.
pub fn abort(deploy_path: &str, release: ReleaseId) -> Script {
    let mut s = script_in(deploy_path);
    s.push(Sh::assign("r", release.to_string()));
    s.line(r#"if [ "$(readlink "$d/current" 2>/dev/null)" != "releases/$r" ]; then rm -rf "$d/releases/$r" "$d/releases/$r.tar"; fi"#);
    s.line(r#"rm -f "$d/current-tmp""#);
    s.line(r#"rm -rf "$d/.cutover/lock""#);
    s
}
