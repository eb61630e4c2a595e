//! A build step's `reuse`: the shell functions, run in the new release
//! directory around the step (under the phase's time limit), that seed a
//! directory from the live release's copy when what decides its content is
//! unchanged, and once the step passed record what the new copy was built
//! from.
//!
//! The seed is a copy, never hard links: nothing the step (or any later
//! step) writes can reach a file of the live release. The step itself always
//! runs; with `vendor/` seeded, `composer install` finds the locked packages
//! installed, and still writes the autoloader for the new release's code and
//! runs composer's scripts, exactly as on a fresh build.

use crate::config::Reuse;

/// The shell functions of `reuse`, defined once at the top of a script.
pub fn functions(reuse: Reuse) -> &'static str {
    match reuse {
        Reuse::Vendor => VENDOR_FUNCTIONS,
    }
}

/// The calls around a step, in its release directory: before it, the seed
/// (which sets `cutover_key`); after it passed, the record.
pub fn calls(reuse: Reuse) -> (&'static str, &'static str) {
    match reuse {
        Reuse::Vendor => ("cutover_seed_vendor", "cutover_record_vendor"),
    }
}

/// What `reuse` does, for the plan.
pub fn describe(reuse: Reuse) -> &'static str {
    match reuse {
        Reuse::Vendor => {
            "starts from a copy of the live release's vendor/ when composer.lock and the PHP version are unchanged"
        }
    }
}

/// The key of `vendor/`: composer.lock's hash and the PHP version. Not
/// composer.json: its requirements are in composer.lock's content-hash, and
/// its autoload and scripts are read by the composer install that runs in
/// every release. Path-repository packages are removed from the copy: their
/// lock entry does not change when their files do, so composer installs them
/// afresh from the new release. One `php` process reads the lock once and
/// prints the key, then those packages' names (each a checked
/// `vendor/name`), one per line.
const VENDOR_FUNCTIONS: &str = r#"cutover_seed_vendor() {
cutover_key=
[ -f composer.lock ] || return 0
found=$(php -r '$lock = file_get_contents("composer.lock"); if ($lock === false) { exit(1); } echo "composer.lock ", hash("sha256", $lock), " php ", PHP_VERSION, "\n"; $l = json_decode($lock, true); foreach (array_merge($l["packages"] ?? [], $l["packages-dev"] ?? []) as $p) { if (($p["dist"]["type"] ?? "") === "path" && preg_match("{^[a-z0-9_.-]+/[a-z0-9_.-]+$}", $p["name"] ?? "") && strpos($p["name"], "..") === false) { echo $p["name"], "\n"; } }' 2> /dev/null) || return 0
cutover_key=$(printf '%s\n' "$found" | head -n 1)
live="$d/current/vendor"
if [ -z "${CUTOVER_FULL_BUILD:-}" ] && [ ! -e vendor ] && [ -d "$live" ] && [ "$(cat "$live/.cutover-reuse" 2> /dev/null)" = "$cutover_key" ]; then
echo "reuse: vendor/ copied from the live release (composer.lock and PHP ${cutover_key##* } unchanged)"
cp -a --reflink=auto "$live" vendor 2> /dev/null || { rm -rf vendor; cp -a "$live" vendor; }
for p in ${found#"$cutover_key"}; do rm -rf "vendor/$p"; done
fi
}
cutover_record_vendor() { if [ -n "$cutover_key" ] && [ -d vendor ]; then printf '%s\n' "$cutover_key" > vendor/.cutover-reuse; fi; }"#;
