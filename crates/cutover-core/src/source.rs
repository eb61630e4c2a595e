//! Where the code comes from, resolved once per run: the commit of a branch
//! (`git ls-remote`) for git delivery, or a tar stream of a local directory
//! for upload delivery.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};

/// Why the code could not be found or packed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid exclude pattern `{pattern}`: {detail}")]
    Exclude { pattern: String, detail: String },
    #[error("failed to pack {dir}: {detail}")]
    Pack { dir: String, detail: String },
    #[error("failed to resolve `{reference}` in {repository}: {detail}")]
    Resolve { repository: String, reference: String, detail: String },
}

/// Whether `reference` is already a full commit id.
pub fn is_commit_id(reference: &str) -> bool {
    reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit())
}

/// How long `git ls-remote` from this machine may take.
const LOOKUP_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Resolves `reference` with `git ls-remote` from this machine.
pub async fn resolve_here(repository: &str, reference: &str) -> Result<String, SourceError> {
    let err = |detail: String| SourceError::Resolve {
        repository: repository.to_owned(),
        reference: reference.to_owned(),
        detail,
    };
    let lookup = tokio::process::Command::new("git")
        .args(["ls-remote", "--", repository, reference, &format!("{reference}^{{}}")])
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(LOOKUP_LIMIT, lookup)
        .await
        .map_err(|_| err(format!("no answer within {}s", LOOKUP_LIMIT.as_secs())))?
        .map_err(|e| err(e.to_string()))?;
    if !output.status.success() {
        return Err(err(String::from_utf8_lossy(&output.stderr).trim().to_owned()));
    }
    commit_from_ls_remote(&String::from_utf8_lossy(&output.stdout), reference)
        .ok_or_else(|| err("no such branch or tag".to_owned()))
}

/// Picks the commit from `git ls-remote` output: a peeled tag (`^{}`) wins
/// over the tag object; a branch head otherwise.
pub fn commit_from_ls_remote(stdout: &str, reference: &str) -> Option<String> {
    let lines: Vec<(&str, &str)> = stdout.lines().filter_map(|l| l.split_once('\t')).collect();
    let matches = |name: &str| {
        name == reference || name == format!("refs/heads/{reference}") || name == format!("refs/tags/{reference}")
    };
    lines
        .iter()
        .find(|(_, name)| name.strip_suffix("^{}").is_some_and(matches))
        .or_else(|| lines.iter().find(|(_, name)| matches(name)))
        .map(|(sha, _)| sha.to_string())
}

/// A local directory packed as a tar stream, with an id for REVISION.
#[derive(Debug)]
pub struct Package {
    pub bytes: Vec<u8>,
    /// `upload-<hash of the tar>`: the same bytes give the same revision.
    pub revision: String,
}

/// Packs `dir`, leaving out `.git` and what matches `exclude`: a pattern is
/// matched against each path relative to `dir` and against each file or
/// directory name, so `node_modules` leaves out every `node_modules`.
pub fn pack(dir: &Path, exclude: &[String]) -> Result<Package, SourceError> {
    let set = exclusions(exclude)?;
    let pack_err = |e: std::io::Error| SourceError::Pack { dir: dir.display().to_string(), detail: e.to_string() };
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut paths = Vec::new();
    collect(dir, dir, &set, &mut paths).map_err(pack_err)?;
    paths.sort();
    for rel in &paths {
        builder.append_path_with_name(dir.join(rel), rel).map_err(pack_err)?;
    }
    let bytes = builder.into_inner().map_err(pack_err)?;
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    Ok(Package { bytes, revision: format!("upload-{:016x}", hasher.finish()) })
}

fn exclusions(patterns: &[String]) -> Result<GlobSet, SourceError> {
    let mut builder = GlobSetBuilder::new();
    // cutover's own directory (the run logs) never leaves this machine.
    for pattern in patterns.iter().map(String::as_str).chain([".git", ".cutover"]) {
        let glob = Glob::new(pattern.trim_end_matches('/'))
            .map_err(|e| SourceError::Exclude { pattern: pattern.to_owned(), detail: e.to_string() })?;
        builder.add(glob);
    }
    builder.build().map_err(|e| SourceError::Exclude { pattern: patterns.join(", "), detail: e.to_string() })
}

fn collect(root: &Path, dir: &Path, set: &GlobSet, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let rel = path.strip_prefix(root).map(Path::to_path_buf).unwrap_or_else(|_| path.clone());
        if set.is_match(&rel) || set.is_match(entry.file_name()) {
            continue;
        }
        out.push(rel);
        if entry.file_type()?.is_dir() {
            collect(root, &path, set, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_branch_heads_and_peeled_tags() {
        let out = "aaaa\trefs/heads/main\nbbbb\trefs/tags/v1\ncccc\trefs/tags/v1^{}\n";
        assert_eq!(commit_from_ls_remote(out, "main").as_deref(), Some("aaaa"));
        assert_eq!(commit_from_ls_remote(out, "v1").as_deref(), Some("cccc"));
        assert_eq!(commit_from_ls_remote(out, "nope"), None);
    }

    #[test]
    fn pack_honours_excludes() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("public")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("node_modules/x")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("vendor/pkg/.git")).expect("mkdir");
        std::fs::write(dir.path().join("vendor/pkg/.git/HEAD"), "ref").expect("write");
        std::fs::write(dir.path().join("vendor/pkg/a.php"), "<?php").expect("write");
        std::fs::write(dir.path().join("public/index.php"), "<?php echo 1;").expect("write");
        std::fs::write(dir.path().join("node_modules/x/a.js"), "x").expect("write");
        std::fs::create_dir_all(dir.path().join(".cutover/logs")).expect("mkdir");
        std::fs::write(dir.path().join(".cutover/logs/run.log"), "token").expect("write");
        let package = pack(dir.path(), &["node_modules".into()]).expect("pack");
        let mut archive = tar::Archive::new(package.bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| e.expect("entry").path().expect("path").display().to_string())
            .collect();
        assert!(names.iter().any(|n| n == "public/index.php"), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("node_modules")), "{names:?}");
        assert!(names.iter().any(|n| n == "vendor/pkg/a.php"), "{names:?}");
        assert!(!names.iter().any(|n| n.contains(".git")), "nested .git left out: {names:?}");
        assert!(!names.iter().any(|n| n.starts_with(".cutover")), "run logs never leave: {names:?}");
        assert!(package.revision.starts_with("upload-"));
    }
}
