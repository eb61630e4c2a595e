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
            "starts from a copy of the live release's vendor/ when composer.lock, composer.json's config and the PHP \
             version are unchanged and nothing wrote into it after its composer step"
        }
    }
}

/// The key of `vendor/`: composer.lock's hash, composer.json's `config`
/// (vendor-dir, preferred-install, plugins: not in the lock's content-hash)
/// and the PHP version. Not the rest of composer.json: its requirements are
/// in the lock's content-hash, and its autoload and scripts are read by the
/// composer install that runs in every release.
///
/// The copy is made only when the live `vendor/` is still what its composer
/// step left (the manifest of every file's path, size and mtime, recorded
/// after that step): a later build step or the application writing into it
/// turns the reuse off. It is best effort: a copy that fails is removed and
/// composer builds `vendor/` afresh. Path-repository packages are removed
/// from the copy: their lock entry does not change when their files do.
///
/// One PHP program (no single quote in it), `key` printing the key and then
/// the path packages' names (each a checked `vendor/name`), `manifest DIR`
/// the manifest's hash.
const VENDOR_FUNCTIONS: &str = r#"cutover_vendor_php='if (($argv[1] ?? "") === "manifest") { $d = $argv[2]; $rows = []; foreach (new RecursiveIteratorIterator(new RecursiveDirectoryIterator($d, FilesystemIterator::SKIP_DOTS)) as $f) { $n = substr($f->getPathname(), strlen($d) + 1); if ($n !== ".cutover-reuse") { $rows[] = $n . " " . $f->getSize() . " " . $f->getMTime(); } } sort($rows); echo hash("sha256", implode("\n", $rows)), "\n"; exit(0); } $lock = file_get_contents("composer.lock"); if ($lock === false) { exit(1); } $json = json_decode((string) @file_get_contents("composer.json"), true); echo "composer.lock ", hash("sha256", $lock), " config ", hash("sha256", json_encode($json["config"] ?? null)), " php ", PHP_VERSION, "\n"; $l = json_decode($lock, true); foreach (array_merge($l["packages"] ?? [], $l["packages-dev"] ?? []) as $p) { if (($p["dist"]["type"] ?? "") === "path" && preg_match("{^[a-z0-9_.-]+/[a-z0-9_.-]+$}", $p["name"] ?? "") && strpos($p["name"], "..") === false) { echo $p["name"], "\n"; } }'
cutover_vendor() { php -d display_errors=stderr -d display_startup_errors=0 -r "$cutover_vendor_php" "$@" 2> /dev/null; }
cutover_seed_vendor() {
cutover_key=
[ -f composer.lock ] || return 0
cutover_found=$(cutover_vendor key) || return 0
cutover_key=$(printf '%s\n' "$cutover_found" | head -n 1)
cutover_live="$d/current/vendor"
[ -z "${CUTOVER_FULL_BUILD:-}" ] && [ ! -e vendor ] && [ ! -L vendor ] && [ -d "$cutover_live" ] || return 0
[ "$(head -n 1 "$cutover_live/.cutover-reuse" 2> /dev/null)" = "$cutover_key" ] || return 0
cutover_was=$(sed -n 2p "$cutover_live/.cutover-reuse")
cutover_now=$(cutover_vendor manifest "$cutover_live") || cutover_now=
if [ -z "$cutover_now" ] || [ "$cutover_now" != "$cutover_was" ]; then
echo "reuse: the live release's vendor/ changed after its composer step: building it afresh"
return 0
fi
if cp -a --reflink=auto "$cutover_live" vendor 2> /dev/null || { rm -rf vendor; cp -a "$cutover_live" vendor 2> /dev/null; }; then
echo "reuse: vendor/ copied from the live release (composer.lock, composer.json's config and PHP ${cutover_key##* } unchanged)"
for cutover_p in $(printf '%s\n' "$cutover_found" | tail -n +2); do rm -rf "vendor/$cutover_p"; done
else
rm -rf vendor
echo "reuse: the live release's vendor/ could not be copied: building it afresh"
fi
}
cutover_record_vendor() {
[ -n "$cutover_key" ] && [ -d vendor ] || return 0
cutover_manifest=$(cutover_vendor manifest vendor) || return 0
printf '%s\n%s\n' "$cutover_key" "$cutover_manifest" > vendor/.cutover-reuse
}"#;
