//! Switching `current`: stage `current-tmp`, rename it over `current` in one
//! `rename(2)`, reload PHP-FPM; and the undo that puts a host back.
//!
//! `current` is never the target of `ln -sfn`: that unlinks and recreates it,
//! leaving a moment with no `current` at all.

use crate::release::ReleaseId;
use crate::shell::{Script, Sh};

use super::script_in;

/// Which `mv` renames a link over another without following it: GNU
/// `mv -T` on Linux hosts, BSD `mv -h` for a local host on macOS. Decided
/// before the flip is let go, so the rename itself is one process start.
const PICK_MV: &str = r#"if mv --version >/dev/null 2>&1; then over="-T"; else over="-fh"; fi"#;

/// The atomic rename of `current-tmp` over `current`.
const RENAME: &str = r#"mv "$over" "$d/current-tmp" "$d/current""#;

/// Points `current-tmp` at the release and runs the PHP-FPM config test, so
/// a host whose FPM config is broken fails before any host switches. For a
/// new release, first writes REVISION: the mark of a release that built.
pub fn stage(deploy_path: &str, release: ReleaseId, config_test: Option<&str>, revision: Option<&str>) -> Script {
    let mut s = script_in(deploy_path);
    s.push(Sh::assign("r", release.to_string()));
    s.line(r#"if [ ! -d "$d/releases/$r" ]; then echo "release $r is not on this host" >&2; exit 1; fi"#);
    if let Some(revision) = revision {
        s.push(Sh::assign("commit", revision));
        s.line(r#"printf '%s\n' "$commit" > "$d/releases/$r/REVISION""#);
    }
    s.line(r#"ln -sfn "releases/$r" "$d/current-tmp""#);
    if let Some(test) = config_test {
        s.push(Sh::user_shell(test));
    }
    s
}

/// Renames the staged `current-tmp` over `current`, once released: the
/// script says it is ready and waits for `go` on its stdin, so every host's
/// rename can be let go at the same moment (see [`crate::held`]).
pub fn flip(deploy_path: &str) -> Script {
    let mut s = script_in(deploy_path);
    s.line(r#"if [ ! -L "$d/current-tmp" ]; then echo "nothing staged: $d/current-tmp is missing" >&2; exit 1; fi"#);
    s.line(PICK_MV);
    s.line(READY_LINE);
    s.line("read -r go || go=''");
    s.line(r#"if [ "$go" != go ]; then echo "not released: the flip was called off" >&2; exit 1; fi"#);
    s.line(RENAME);
    s
}

/// Prints [`crate::held::READY`].
const READY_LINE: &str = "echo '@@cutover-ready'";

/// The graceful reload (never a restart).
pub fn reload(reload: &str) -> Script {
    let mut s = Script::new();
    s.push(Sh::user_shell(reload));
    s
}

/// Puts a host back where `current` pointed before the run, exactly as the
/// probe read it (a Capistrano or Deployer host may use other names), or
/// removes `current` when the host had none. The reload after it is the
/// plan's reload phase.
pub fn undo(deploy_path: &str, previous_target: Option<&str>) -> Script {
    let mut s = script_in(deploy_path);
    match previous_target {
        Some(target) => {
            s.push(Sh::assign("t", target));
            s.line(r#"ln -sfn "$t" "$d/current-tmp""#);
            s.line(PICK_MV);
            s.line(RENAME);
        }
        None => {
            s.line(r#"rm -f "$d/current" "$d/current-tmp""#);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_and_flip_never_link_onto_current() {
        let id = "20261123143012".parse().expect("id");
        let stage = stage("/srv/app", id, Some("php-fpm8.3 -t"), Some("abc123")).render();
        let flip = flip("/srv/app").render();
        insta::assert_snapshot!(format!("{stage}---\n{flip}"));
        assert!(stage.contains(r#"ln -sfn "releases/$r" "$d/current-tmp""#));
        assert!(!stage.contains(
            r#""$d/current"
"#
        ));
        assert!(!flip.contains("ln "));
    }
}
