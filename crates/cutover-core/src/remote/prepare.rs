//! The prepare phase: create the release directory, put the code in it
//! (git archive from the host's mirror, or a tar stream from here), and link
//! the shared files and directories into it. REVISION is written when the
//! release is staged, so a release without it never finished building.
//!
//! One command per line: under `set -e` a failure inside `a && b` does not
//! stop the script, so chains are avoided.

use crate::release::ReleaseId;
use crate::shell::{Script, Sh};

use super::lock::{self, LockOwner};
use super::{script_in, steps};

/// How the code reaches the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The host fetches `repository` into its bare mirror `$d/repo`.
    Git { repository: String },
    /// The code arrives as a tar stream on the script's stdin.
    Upload,
}

impl Delivery {
    /// The inventory's: git when it names a repository, else upload.
    pub fn of(inv: &crate::config::Inventory) -> Self {
        match &inv.repository {
            Some(repository) => Self::Git { repository: repository.value.clone() },
            None => Self::Upload,
        }
    }
}

/// What to prepare.
#[derive(Clone, Copy, Debug)]
pub struct Prepare<'a> {
    pub release: ReleaseId,
    pub commit: &'a str,
    pub delivery: &'a Delivery,
    pub shared_dirs: &'a [String],
    pub shared_files: &'a [String],
    /// Create a missing shared file empty (`shared.create_missing`).
    pub create_missing: bool,
    /// The files rendered into the release from templates, in order: the
    /// `n`th arrives in `cutover_file_<n>` (see [`crate::secrets`]).
    pub rendered: &'a [String],
    /// Whose lock the work is done under.
    pub owner: &'a LockOwner,
}

/// Writes the rendered file `$p` into the release from `cutover_file_$n`
/// (read from stdin by the secrets' prologue; `printenv` and `printf` keep
/// it off any command line), readable by the deploy user alone, in place of
/// whatever the code had there; then forgets it, before any step runs.
const WRITE_RENDERED: &str = r#"f=$(printenv "cutover_file_$n" && printf x) || { echo "the rendered $p did not arrive on stdin" >&2; exit 1; }
f=${f%x}; f=${f%?}
rm -rf "$rel/$p"; mkdir -p "$(dirname "$rel/$p")"
(umask 077; printf '%s' "$f" > "$rel/$p")
unset "cutover_file_$n" f"#;

/// The prepare script.
pub fn script(deploy_path: &str, p: &Prepare<'_>) -> Script {
    let mut s = script_in(deploy_path);
    lock::guard(&mut s, p.owner);
    s.line(steps::ONE_STREAM);
    steps::mark(&mut s, "release directory");
    s.push(Sh::assign("r", p.release.to_string()));
    s.push(Sh::assign("commit", p.commit));
    s.line(r#"rel="$d/releases/$r""#);
    s.line(r#"mkdir -p "$d/releases" "$d/shared""#);
    s.line(r#"if [ -e "$rel" ]; then echo "release $r already exists on this host" >&2; exit 1; fi"#);
    s.line(r#"mkdir "$rel""#);
    steps::mark(&mut s, "code");
    match p.delivery {
        Delivery::Git { repository } => {
            s.push(Sh::assign("url", repository));
            s.line(r#"if [ -d "$d/repo" ]; then"#);
            s.line(r#"git -C "$d/repo" remote set-url origin "$url""#);
            s.line(r#"git -C "$d/repo" remote update --prune >/dev/null"#);
            s.line("else");
            s.line(r#"git clone --mirror --quiet -- "$url" "$d/repo""#);
            s.line("fi");
            s.line(r#"git -C "$d/repo" archive --format=tar -o "$rel.tar" "$commit""#);
            s.line(r#"tar -x -f "$rel.tar" -C "$rel""#);
            s.line(r#"rm -f "$rel.tar""#);
        }
        Delivery::Upload => {
            s.line(r#"tar -x -f - -C "$rel""#);
        }
    }
    if !p.shared_dirs.is_empty() || !p.shared_files.is_empty() {
        steps::mark(&mut s, "shared links");
    }
    for dir in p.shared_dirs {
        s.push(Sh::assign("p", dir));
        s.line(r#"mkdir -p "$d/shared/$p" "$(dirname "$rel/$p")""#);
        s.line(r#"rm -rf "$rel/$p""#);
        s.line(r#"ln -s "$d/shared/$p" "$rel/$p""#);
    }
    for file in p.shared_files {
        s.push(Sh::assign("p", file));
        if p.create_missing {
            s.line(r#"if [ -L "$d/shared/$p" ] && [ ! -e "$d/shared/$p" ]; then echo "$d/shared/$p is a dangling symbolic link: not created through it" >&2; exit 1; fi"#);
            // Readable by the deploy user alone: a `.env` holds secrets.
            s.line(r#"if [ ! -e "$d/shared/$p" ]; then mkdir -p "$(dirname "$d/shared/$p")"; (umask 077; : > "$d/shared/$p"); fi"#);
        }
        s.line(r#"mkdir -p "$(dirname "$rel/$p")""#);
        s.line(r#"rm -rf "$rel/$p""#);
        s.line(r#"ln -s "$d/shared/$p" "$rel/$p""#);
    }
    if !p.rendered.is_empty() {
        steps::mark(&mut s, "rendered files");
    }
    for (n, file) in p.rendered.iter().enumerate() {
        s.push(Sh::assign("p", file));
        s.push(Sh::assign("n", n.to_string()));
        s.line(WRITE_RENDERED);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_delivery_script_is_exact() {
        let delivery = Delivery::Git { repository: "git@example.com:shop/app.git".into() };
        let p = Prepare {
            release: "20261123143012".parse().expect("id"),
            commit: "0123456789abcdef0123456789abcdef01234567",
            delivery: &delivery,
            shared_dirs: &["storage".into()],
            shared_files: &[".env".into()],
            create_missing: false,
            rendered: &[],
            owner: &crate::remote::lock::LockOwner::example(),
        };
        insta::assert_snapshot!(script("/var/www/shop", &p).render());
    }
}
