//! Adopting a server Deployer 7 deployed to: its releases are numbered
//! (`releases/1`, `releases/2`, ...), listed in `.dep/releases_log` (one
//! JSON object per line, oldest first: `created_at`, `release_name`,
//! `user`, `target`), and a release Deployer rolled back from carries
//! `BAD_RELEASE`. cutover deploys over such a layout (its `current` and
//! `shared/` are the same), lists those releases, rolls back into them,
//! prunes them under `keep_releases`, and never chooses one marked bad.
//!
//! A numbered directory is a release only when the log names it, as it is
//! to Deployer; one the log does not name is left alone. Releases are
//! ordered by the log, never by name or date: cutover orders them by their
//! number (below every id of its own, so its releases sort after them) and
//! refuses the host when the log's order is not that order.

use serde::Deserialize;

use crate::release::ReleaseId;

/// The probe's lines: Deployer's log, the last 1000 lines.
pub(crate) const PROBE: &str = r#"if [ -f "$d/.dep/releases_log" ]; then tail -n 1000 "$d/.dep/releases_log" | while IFS= read -r l; do printf 'dep-log %s\n' "$l"; done; fi"#;

/// One line of `.dep/releases_log`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Logged {
    #[serde(deserialize_with = "name")]
    pub release_name: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
}

/// `release_name` as written: a string, or a number.
fn name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Name {
        Text(String),
        Number(u64),
    }
    Ok(match Name::deserialize(d)? {
        Name::Text(t) => t,
        Name::Number(n) => n.to_string(),
    })
}

/// Reads one `dep-log` line; lines that are not a log entry are skipped,
/// as Deployer skips them.
pub(crate) fn read(line: &str) -> Option<Logged> {
    serde_json::from_str(line.trim()).ok().filter(|l: &Logged| !l.release_name.is_empty())
}

/// What adoption makes of a host's releases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    /// The numbered releases the log names and the host has, in log order.
    pub releases: Vec<ReleaseId>,
    /// Numbered directories the log does not name: left alone.
    pub unlogged: Vec<ReleaseId>,
    /// Why the host cannot be adopted, when it cannot.
    pub problem: Option<String>,
}

/// Sorts a host's numbered directories (`on_disk`, finished or not) by the
/// `log`; `others` are the names under `releases/` that are no release id.
/// Without a log, no numbered directory is a release.
pub(crate) fn settle(log: &[Logged], on_disk: &[ReleaseId], others: &[String]) -> Adopted {
    let numbered: Vec<ReleaseId> = on_disk.iter().copied().filter(|r| r.is_adopted()).collect();
    let mut releases: Vec<ReleaseId> = Vec::new();
    for entry in log {
        let Ok(id) = entry.release_name.parse::<ReleaseId>() else { continue };
        // A name logged twice counts where it was logged last.
        releases.retain(|r| *r != id);
        if numbered.contains(&id) {
            releases.push(id);
        }
    }
    let unlogged = numbered.iter().copied().filter(|r| !releases.contains(r)).collect();
    let problem = releases.windows(2).any(|w| w[0] > w[1]).then(|| {
        let order: Vec<String> = releases.iter().map(ToString::to_string).collect();
        format!(
            ".dep/releases_log lists Deployer's releases in another order than their numbers ({}): cutover \
             orders them by number and will not guess which is older; remove the releases you do not need or \
             reorder the log",
            order.join(", ")
        )
    });
    // Deployer's `release_name` set to something else than its numbers,
    // for a release still on disk.
    let custom: Vec<&str> = log
        .iter()
        .map(|l| l.release_name.as_str())
        .filter(|n| n.parse::<ReleaseId>().is_err() && others.iter().any(|o| o == n))
        .collect();
    let problem = problem.or_else(|| {
        (!custom.is_empty()).then(|| {
            format!(
                ".dep/releases_log names releases cutover cannot order ({}): it adopts Deployer's numbered \
                 releases only; remove those releases or deploy with Deployer's default release_name",
                custom.join(", ")
            )
        })
    });
    Adopted { releases, unlogged, problem }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<ReleaseId> {
        names.iter().map(|n| n.parse().expect("id")).collect()
    }

    fn log(names: &[&str]) -> Vec<Logged> {
        names.iter().map(|n| Logged { release_name: (*n).to_owned(), ..Logged::default() }).collect()
    }

    #[test]
    fn reads_deployers_log_lines_with_names_as_text_or_numbers() {
        let line = r#"{"created_at":"2026-11-06T20:51:45+0000","release_name":"3","user":"anton","target":"main"}"#;
        let logged = read(line).expect("an entry");
        assert_eq!((logged.release_name.as_str(), logged.user.as_deref()), ("3", Some("anton")));
        assert_eq!(read(r#"{"release_name":4}"#).expect("a number").release_name, "4");
        assert_eq!(read("not json"), None);
    }

    #[test]
    fn only_logged_numbered_directories_are_releases_in_log_order() {
        let on_disk = ids(&["1", "2", "3", "7", "20261204101010"]);
        let adopted = settle(&log(&["1", "2", "3", "4"]), &on_disk, &[]);
        assert_eq!(adopted.releases, ids(&["1", "2", "3"]), "4 is gone from disk");
        assert_eq!(adopted.unlogged, ids(&["7"]), "7 is not Deployer's release: left alone");
        assert_eq!(adopted.problem, None);
        assert_eq!(settle(&[], &on_disk, &[]).releases, Vec::new(), "no log: nothing adopted");
    }

    #[test]
    fn a_release_deployer_named_in_its_time_format_is_never_a_partial_one_to_remove() {
        let out = "partial 20240101000000\npartial 20240102000000\nrelease 1\n\
                   dep-log {\"release_name\":\"1\"}\ndep-log {\"release_name\":\"20240101000000\"}\n";
        let snap = crate::remote::probe::Snapshot::parse(out);
        assert_eq!(snap.releases, ids(&["1", "20240101000000"]), "Deployer's, finished or not");
        assert_eq!(snap.partial, ids(&["20240102000000"]), "cutover's own run that died");
        let marked = crate::remote::probe::Snapshot::parse("release 20240101000000\nrolled-back 20240101000000\n");
        assert_eq!(marked.rolled_back, ids(&["20240101000000"]));
    }

    #[test]
    fn a_log_whose_order_is_not_the_numbers_is_refused() {
        let adopted = settle(&log(&["1", "3", "2"]), &ids(&["1", "2", "3"]), &[]);
        assert!(adopted.problem.expect("refused").contains("(1, 3, 2)"));
        let custom = settle(&log(&["1", "v1.0", "v2.0"]), &ids(&["1"]), &["v2.0".into()]);
        assert!(custom.problem.expect("refused").contains("(v2.0)"), "v1.0 is gone: no matter");
    }
}
