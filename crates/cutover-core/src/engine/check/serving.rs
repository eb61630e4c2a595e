//! What `cutover check` says about how the hosts serve, besides whether
//! they are ready: an nginx site serving `current` without
//! `$realpath_root`, a clock off this machine's, OPcache off or too small
//! for the live release (or for two of them, when warm activation keeps
//! both cached), settings that differ from host to host, and PHP versions
//! that differ (a host on another minor version is not ready: composer
//! would build it another `vendor/`).

use indexmap::IndexMap;

use crate::config::inventory::Activation;
use crate::event::Phase;
use crate::remote::fpm::FpmCommands;
use crate::remote::probe::Snapshot;
use crate::remote::serving::{FpmSettings, Serving, is_on};

use super::super::Context;
use super::super::failure::{FailureKind, HostFailure};

/// How far a host's clock may be from this machine's before check says so.
const CLOCK_SLACK_S: f64 = 2.0;

const MIB: u64 = 1024 * 1024;

/// What check says about one host. The host read its clock between
/// `asked` and `answered` (this machine's).
pub(super) fn warnings(
    ctx: &Context<'_>,
    host: &str,
    s: &Snapshot,
    fpm: Option<&FpmCommands>,
    (asked, answered): (jiff::Timestamp, jiff::Timestamp),
) -> Vec<String> {
    let mut out = Vec::new();
    let serving = &s.serving;
    let settings = serving.serving_fpm(fpm.and_then(|f| f.service.as_deref()));
    let current = ctx.fleet.hosts.iter().find(|t| t.name == host).map(|t| format!("{}/current", t.deploy_path));
    let frozen = settings.and_then(|f| f.opcache("validate_timestamps")).is_some_and(|v| !is_on(v));
    for file in &serving.nginx_document_root {
        let then = if frozen {
            "; with opcache.validate_timestamps Off here, nothing but a restart of PHP-FPM makes it see a new release"
        } else {
            ""
        };
        out.push(format!(
            "{file} serves {} without `$realpath_root`: PHP-FPM then runs every release by the same path and \
             OPcache can go on serving the old code{then}; pass `fastcgi_param SCRIPT_FILENAME \
             $realpath_root$fastcgi_script_name;` and `fastcgi_param DOCUMENT_ROOT $realpath_root;` (see \
             docs/nginx-php-fpm.md)",
            current.as_deref().unwrap_or("current")
        ));
    }
    out.extend(clock(serving, (asked, answered)));
    if let Some(settings) = settings {
        let warm = fpm.is_some_and(|f| f.activation.activation == Activation::Warm);
        out.extend(opcache(settings, serving.php_files, warm));
    }
    out
}

fn clock(serving: &Serving, (asked, answered): (jiff::Timestamp, jiff::Timestamp)) -> Option<String> {
    let clock = serving.clock_ms? as f64 / 1000.0;
    let seconds = |t: jiff::Timestamp| t.as_millisecond() as f64 / 1000.0;
    let offset = if clock > seconds(answered) { clock - seconds(answered) } else { (clock - seconds(asked)).min(0.0) };
    let way = if offset > 0.0 { "ahead of" } else { "behind" };
    (offset.abs() > CLOCK_SLACK_S).then(|| {
        format!(
            "its clock is {:.1} s {way} this machine's: times in its logs will not match revisions.log (run NTP or \
             chrony on both)",
            offset.abs()
        )
    })
}

/// OPcache off, or too small for the live release's PHP `files` (count,
/// bytes): twice over under warm activation, which compiles the new
/// release beside the live one.
fn opcache(fpm: &FpmSettings, files: Option<(u64, u64)>, warm: bool) -> Vec<String> {
    let program = fpm.binary.rsplit('/').next().unwrap_or(&fpm.binary);
    if fpm.opcache_on() == Some(false) {
        return vec![format!(
            "OPcache is off in {program} (opcache.enable): every request compiles every PHP file it runs; turn it on"
        )];
    }
    let Some((count, bytes)) = files else { return Vec::new() };
    let (copies, why) =
        if warm { (2, " (twice: warm activation caches the new release beside the live one)") } else { (1, "") };
    let mut out = Vec::new();
    let number = |name: &str| fpm.opcache(name).and_then(|v| v.parse::<u64>().ok());
    if let Some(most) = number("max_accelerated_files").filter(|&most| most < count * copies) {
        out.push(format!(
            "the live release has {count} PHP files and OPcache in {program} holds at most {most} scripts \
             (opcache.max_accelerated_files){why}: the rest are compiled on every request; raise it to at least {}",
            count * copies
        ));
    }
    if let Some(mib) = number("memory_consumption").filter(|&mib| mib * MIB < bytes * copies) {
        out.push(format!(
            "the live release's PHP files take {} MiB and OPcache in {program} has {mib} MiB \
             (opcache.memory_consumption){why}: it will fill up and restart, a stall for every request; raise it",
            (bytes * copies).div_ceil(MIB)
        ));
    }
    out
}

/// Settings that differ from host to host (a fleet that behaves the same
/// must be configured the same).
pub(super) fn fleet_warnings(
    snapshots: &IndexMap<String, Snapshot>,
    fpm: &IndexMap<String, FpmCommands>,
) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["validate_timestamps", "memory_consumption", "max_accelerated_files"] {
        let each: Vec<(&str, &str)> = snapshots
            .iter()
            .filter_map(|(host, s)| {
                let settings = s.serving.serving_fpm(fpm.get(host).and_then(|f| f.service.as_deref()))?;
                Some((host.as_str(), settings.opcache(name)?))
            })
            .collect();
        if each.windows(2).any(|w| w[0].1 != w[1].1) {
            let listed: Vec<String> = each.iter().map(|(h, v)| format!("{h} {v}")).collect();
            out.push(format!("opcache.{name} differs between the hosts: {}", listed.join(", ")));
        }
    }
    let versions = versions(snapshots, fpm);
    if versions.windows(2).any(|w| w[0].1 != w[1].1) {
        let listed: Vec<String> = versions.iter().map(|(h, v)| format!("{h} {v}")).collect();
        out.push(format!("the hosts run different PHP versions: {}", listed.join(", ")));
    }
    out
}

/// Each host's PHP version: its PHP-FPM's, or its `php`'s.
fn versions<'a>(
    snapshots: &'a IndexMap<String, Snapshot>,
    fpm: &IndexMap<String, FpmCommands>,
) -> Vec<(&'a str, &'a str)> {
    snapshots
        .iter()
        .filter_map(|(host, s)| {
            let serving = s.serving.serving_fpm(fpm.get(host).and_then(|f| f.service.as_deref()));
            let version = serving.and_then(|f| f.version.as_deref()).or(s.serving.php_version.as_deref())?;
            Some((host.as_str(), version))
        })
        .collect()
}

/// The hosts whose PHP minor version (`8.2`) is not the fleet's (the one
/// most hosts run; on a tie, the first host's): not ready.
pub(super) fn php_versions_apart(
    snapshots: &IndexMap<String, Snapshot>,
    fpm: &IndexMap<String, FpmCommands>,
) -> Vec<HostFailure> {
    let minor = |v: &str| v.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
    let versions = versions(snapshots, fpm);
    let count = |m: &str| versions.iter().filter(|(_, v)| minor(v) == m).count();
    let most = versions.iter().map(|(_, v)| count(&minor(v))).max().unwrap_or(0);
    let Some(fleet) = versions.iter().map(|(_, v)| minor(v)).find(|m| count(m) == most) else {
        return Vec::new();
    };
    versions
        .iter()
        .filter(|(_, v)| minor(v) != fleet)
        .map(|(host, version)| {
            let problem = format!(
                "PHP {version} here, PHP {fleet} on the rest of the fleet: composer would build this host another \
                 vendor/ and the hosts would serve different code; install PHP {fleet}"
            );
            HostFailure::new(host, Phase::Preflight, FailureKind::Precondition(problem))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fpm(settings: &[(&str, &str)]) -> FpmSettings {
        FpmSettings {
            binary: "/usr/sbin/php-fpm8.2".into(),
            version: Some("8.2.29".into()),
            opcache: settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    #[test]
    fn opcache_off_or_too_small_for_the_release_is_said_and_warm_needs_twice() {
        let off = fpm(&[("enable", "Off")]);
        assert!(opcache(&off, Some((10, 10)), false)[0].contains("OPcache is off in php-fpm8.2"));
        let stock = fpm(&[("enable", "On"), ("memory_consumption", "128"), ("max_accelerated_files", "10000")]);
        assert!(opcache(&stock, Some((6000, 60 * MIB)), false).is_empty(), "a Laravel app fits once");
        let warm = opcache(&stock, Some((6000, 70 * MIB)), true);
        assert_eq!(warm.len(), 2, "{warm:?}");
        assert!(warm[0].contains("6000 PHP files") && warm[0].contains("at least 12000"), "{warm:?}");
        assert!(warm[1].contains("take 140 MiB") && warm[1].contains("has 128 MiB"), "{warm:?}");
    }

    #[test]
    fn a_host_on_another_minor_version_is_not_ready() {
        let host = |version: &str| {
            let mut s = Snapshot::default();
            s.serving.php_version = Some(version.to_owned());
            s
        };
        let snapshots: IndexMap<String, Snapshot> = [("web1", "8.2.29"), ("web2", "8.1.31"), ("web3", "8.2.30")]
            .into_iter()
            .map(|(h, v)| (h.to_owned(), host(v)))
            .collect();
        let apart = php_versions_apart(&snapshots, &IndexMap::new());
        assert_eq!(apart.len(), 1);
        assert_eq!(apart[0].host, "web2");
        assert!(apart[0].to_string().contains("PHP 8.1.31 here, PHP 8.2 on the rest"), "{}", apart[0]);
        let warned = fleet_warnings(&snapshots, &IndexMap::new());
        assert!(warned[0].contains("web1 8.2.29, web2 8.1.31, web3 8.2.30"), "{warned:?}");
    }
}
