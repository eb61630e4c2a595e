//! The final summary for people: what happened, where every host is, and for
//! each failure its host, step, output and a hint.

use std::fmt::Write;

use cutover_core::engine::{HostFailure, Report};
use cutover_core::event::{CommandKind, Outcome};

/// The summary text.
pub fn text(report: &Report) -> String {
    let s = &report.summary;
    let mut out = String::new();
    // `cutover run`: what each host printed, grouped, before the verdict.
    for (name, host) in s.hosts.iter().filter(|(_, h)| h.output.is_some()) {
        let code = host.exit_code.map_or_else(|| "no exit code".to_owned(), |c| format!("exit {c}"));
        let _ = writeln!(out, "== {name} ({code})");
        let output = host.output.as_deref().unwrap_or_default();
        out.push_str(output);
        if !output.is_empty() && !output.ends_with('\n') {
            out.push('\n');
        }
    }
    let release = s.release.map(|r| r.to_string()).unwrap_or_else(|| "-".into());
    let headline = match (s.command, s.outcome) {
        (CommandKind::Deploy, Outcome::Done) => {
            format!("deployed release {release} to {} host(s)", s.hosts.len())
        }
        (CommandKind::Rollback, Outcome::Done) => {
            format!("rolled back {} host(s) to release {release}", s.hosts.len())
        }
        (CommandKind::Unlock, Outcome::Done) => match s.hosts.values().filter(|h| h.state == "unlocked").count() {
            0 => "no host was locked".to_owned(),
            n => format!("removed the lock on {n} host(s)"),
        },
        (CommandKind::Check, Outcome::Done) => format!("all {} host(s) are ready for a deploy", s.hosts.len()),
        (CommandKind::Check, _) => {
            let not = s.hosts.values().filter(|h| h.state != "ready").count();
            format!("{not} of {} host(s) not ready for a deploy: see below", s.hosts.len())
        }
        (CommandKind::Releases, Outcome::Done) => format!("releases on {} host(s)", s.hosts.len()),
        (CommandKind::Releases, _) => "could not read every host".to_owned(),
        (CommandKind::Run, Outcome::Done) => format!("ran on {} host(s)", s.hosts.len()),
        (CommandKind::Run, _) => {
            let failed = s.hosts.values().filter(|h| h.state == "failed").count();
            format!("failed on {failed} of {} host(s)", s.hosts.len())
        }
        (CommandKind::Status, Outcome::Done) => {
            format!("all {} host(s) on release {release}", s.hosts.len())
        }
        (CommandKind::Status, Outcome::Inconsistent) => "the hosts are on different releases".to_owned(),
        (CommandKind::Status, _) => "could not read every host".to_owned(),
        (CommandKind::Unlock, _) => "not every lock was removed: see below".to_owned(),
        (_, Outcome::Failed) => "failed before any host switched: the fleet is unchanged".to_owned(),
        (_, Outcome::RolledBack) => "failed after switching began: every switched host was switched back".to_owned(),
        (_, Outcome::Inconsistent) => "the fleet is left on different releases: see below".to_owned(),
        (_, Outcome::Locked) => "another run holds the lock: nothing was changed".to_owned(),
        (_, Outcome::Halted) => "halted where it failed (on_failure: halt): see where each host is below".to_owned(),
        (_, Outcome::Done) => "done".to_owned(),
    };
    let headline = match (&s.not_undone, s.outcome) {
        (Some(what), Outcome::Failed) => format!("failed before any host switched: {what}"),
        (Some(what), _) => format!("{headline}; {what}"),
        (None, _) => headline,
    };
    let headline = match &s.environment {
        Some(environment) => format!("{environment}: {headline}"),
        None => headline,
    };
    let _ = writeln!(out, "{headline}");
    if s.command == CommandKind::Releases {
        releases_table(&mut out, s);
        for failure in &report.failures {
            failure_text(&mut out, failure);
        }
        return out;
    }
    let width = s.hosts.keys().map(String::len).max().unwrap_or(4);
    for (name, host) in &s.hosts {
        let current = host.current.as_deref().unwrap_or("(none)");
        let _ = write!(out, "  {name:width$}  {current:14}  {}", host.state);
        if let Some(commit) = &host.commit {
            let _ = write!(out, "  {}", commit.chars().take(12).collect::<String>());
        }
        if let Some(batch) = host.batch {
            let _ = write!(out, "  batch {batch}");
        }
        if let Some(health) = &host.health {
            let _ = write!(out, "  health: {health}");
        }
        if let Some(releases) = &host.releases {
            let _ = write!(out, "  releases: {}", releases.len());
        }
        if let Some(lock) = host.lock.as_ref().filter(|l| !l.is_null()) {
            let _ = write!(out, "  LOCKED by {}", cutover_core::remote::lock::LockOwner::describe(lock));
        }
        out.push('\n');
    }
    let found = s.hosts.iter().filter_map(|(name, h)| Some((name.as_str(), h.php_fpm.as_ref()?)));
    for line in cutover_core::remote::fpm::found_lines(found.clone()) {
        let _ = writeln!(out, "{line}");
    }
    for line in cutover_core::remote::activation::plan_lines(found.map(|(name, f)| (name, &f.activation))) {
        let _ = writeln!(out, "{line}");
    }
    for failure in &report.failures {
        failure_text(&mut out, failure);
    }
    out
}

/// One line per release across the fleet, newest first: its commit, when
/// and by whom it was deployed, where it is live, and the hosts that lack it.
fn releases_table(out: &mut String, s: &cutover_core::event::Summary) {
    let read: Vec<(&String, &Vec<cutover_core::event::ReleaseRecord>)> =
        s.hosts.iter().filter_map(|(name, h)| Some((name, h.history.as_ref()?))).collect();
    let mut ids: Vec<&str> = read.iter().flat_map(|(_, records)| records.iter().map(|r| r.release.as_str())).collect();
    // Newest first: Deployer's numbered releases sort before cutover's ids.
    let order = |id: &str| id.parse::<cutover_core::release::ReleaseId>().ok();
    ids.sort_unstable_by(|a, b| order(b).cmp(&order(a)).then_with(|| b.cmp(a)));
    ids.dedup();
    for id in ids {
        let on: Vec<(&String, &cutover_core::event::ReleaseRecord)> = read
            .iter()
            .filter_map(|(name, records)| Some((*name, records.iter().find(|r| r.release == id)?)))
            .collect();
        let Some((_, first)) = on.first() else { continue };
        let commit: String = first.commit.chars().take(12).collect();
        let at = on.iter().find_map(|(_, r)| r.deployed_at.as_deref()).unwrap_or("-");
        let by = on.iter().find_map(|(_, r)| r.deployed_by.as_deref()).unwrap_or("-");
        let live: Vec<&str> = on.iter().filter(|(_, r)| r.current).map(|(name, _)| name.as_str()).collect();
        let live = match live.len() {
            0 => String::new(),
            n if n == read.len() => "  live".to_owned(),
            _ => format!("  live on {}", live.join(", ")),
        };
        let missing: Vec<&str> = read
            .iter()
            .filter(|(_, records)| !records.iter().any(|r| r.release == id))
            .map(|(n, _)| n.as_str())
            .collect();
        let missing = if missing.is_empty() { String::new() } else { format!("  not on {}", missing.join(", ")) };
        let left = if on.iter().any(|(_, r)| r.rolled_back) { "  not a rollback target" } else { "" };
        let _ = writeln!(out, "  {id:14}  {commit:12}  {at:24}  {by}{live}{left}{missing}");
    }
}

fn failure_text(out: &mut String, failure: &HostFailure) {
    let _ = writeln!(out, "\nerror: {failure}");
    if let Some(tail) = failure.output_tail() {
        for line in tail.lines() {
            let _ = writeln!(out, "  | {line}");
        }
    }
    if let Some(hint) = failure.hint() {
        let _ = writeln!(out, "hint: {hint}");
    }
}
