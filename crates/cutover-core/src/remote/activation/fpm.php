<?php
// cutover's FastCGI script: cutover writes it to <deploy_path>/.cutover/fpm.php
// and asks a PHP-FPM pool to run it through the pool's own socket (never
// through nginx), to read the pool's OPcache and to compile a release into it.
// What to do comes in FastCGI parameters; it answers with `@@fpm <key> <value>`
// lines. See crates/cutover-core/src/remote/activation.rs.
//
//   CUTOVER_FPM=status  the worker's pid; OPcache on or off, and its start
//   CUTOVER_FPM=room    whether the release CUTOVER_TO (or a second copy of
//                       CUTOVER_FROM, the live release, when CUTOVER_TO is
//                       empty) fits beside what is cached: `refuse <why>` if not
//   CUTOVER_FPM=list    every cached script's path
//   CUTOVER_FPM=warm    compiles CUTOVER_TO's scripts: the paths of the list
//                       file CUTOVER_LIST (or this pool's own cache) under
//                       CUTOVER_FROM mapped to CUTOVER_TO, and those outside
//                       CUTOVER_RELEASES as they are; every .php file of
//                       CUTOVER_TO when none maps. `wait <s>` when a file is
//                       newer than opcache.file_update_protection allows.
header('Content-Type: text/plain');
set_time_limit(600);
ini_set('memory_limit', '1G');
function say(string $key, $value): void
{
    echo '@@fpm ', $key, ' ', $value, "\n";
}
function under(string $path, string $dir): bool
{
    return $dir !== '' && strncmp($path, $dir . '/', strlen($dir) + 1) === 0;
}
function mib(float $bytes): string
{
    return sprintf('%.0f MiB', $bytes / 1048576);
}
$mode = $_SERVER['CUTOVER_FPM'] ?? '';
$from = $_SERVER['CUTOVER_FROM'] ?? '';
$to = $_SERVER['CUTOVER_TO'] ?? '';
$releases = $_SERVER['CUTOVER_RELEASES'] ?? '';
$on = function_exists('opcache_get_status') && (bool) ini_get('opcache.enable');
$listed = $_SERVER['CUTOVER_LIST'] ?? '';
$with_scripts = $mode === 'list' || $mode === 'room' || ($mode === 'warm' && $listed === '');
$status = $on ? opcache_get_status($with_scripts) : false;
$on = is_array($status) && !empty($status['opcache_enabled']);
say('pid', getmypid());
say('opcache', $on ? 1 : 0);
if ($mode === 'status') {
    say('start', $on ? $status['opcache_statistics']['start_time'] : 0);
    if ((string) ini_get('opcache.preload') !== '') {
        say('preload', ini_get('opcache.preload'));
    }
    exit(0);
}
if ($mode === 'list') {
    foreach ($on ? array_keys($status['scripts'] ?? []) : [] as $path) {
        say('file', $path);
    }
    exit(0);
}
if ($mode === 'room') {
    if (!$on) {
        say('refuse', 'OPcache is off in this pool, or opcache.restrict_api keeps cutover\'s script from it: there is nothing to warm. Use activation reload, or turn opcache.enable on');
        exit(0);
    }
    $preload = (string) ini_get('opcache.preload');
    if ($preload !== '') {
        say('refuse', "opcache.preload is set ($preload): preloaded classes live as long as the master and would outlive the switch. Use activation reload");
        exit(0);
    }
    // With nginx's $document_root the pool runs every release by the same
    // path through `current`, and with validate_timestamps=0 goes on
    // serving the old code: warming cannot work there.
    $current = $_SERVER['CUTOVER_CURRENT'] ?? '';
    foreach (array_keys($status['scripts'] ?? []) as $path) {
        if (under($path, $current)) {
            say('refuse', "the pool runs scripts by their path through $current ($path): nginx passes \$document_root. Pass \$realpath_root (fastcgi_param SCRIPT_FILENAME \$realpath_root\$fastcgi_script_name), see docs/nginx-php-fpm.md");
            exit(0);
        }
    }
    $need = 0;
    $scripts = 0;
    foreach ($status['scripts'] ?? [] as $path => $script) {
        if (under($path, $from)) {
            $need += $script['memory_consumption'];
            $scripts++;
        } elseif (under($path, $to)) {
            $need -= $script['memory_consumption'];
            $scripts--;
        }
    }
    $memory = $status['memory_usage'];
    $free = $memory['free_memory'];
    $keys = $status['opcache_statistics']['max_cached_keys'] - $status['opcache_statistics']['num_cached_keys'];
    $total = (float) $memory['used_memory'] + $free + $memory['wasted_memory'];
    say('need', max(0, $need));
    say('free', $free);
    if ($need > 0 && ($free < $need * 1.1 || $keys < $scripts)) {
        $why = $free < $need * 1.1
            ? 'OPcache has ' . mib($free) . ' free and the live release takes ' . mib($need)
            : "OPcache has room for $keys more scripts and the live release has $scripts";
        say('refuse', "$why: two releases do not fit (older releases stay cached until PHP-FPM restarts). "
            . 'Deploy once with `--activation reload` (a reload empties OPcache), or raise opcache.memory_consumption '
            . '(now ' . mib($total) . ') and opcache.max_accelerated_files, or use activation blue-green');
    }
    exit(0);
}
if ($mode !== 'warm') {
    say('error', "unknown mode $mode");
    exit(0);
}
if (!$on) {
    say('warmed', '0 0 0 0');
    exit(0);
}
$list = [];
if ($listed !== '') {
    $list = is_readable($listed) ? file($listed, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) : [];
} else {
    $list = array_keys($status['scripts'] ?? []);
}
$paths = [];
$mapped = 0;
foreach ($list as $path) {
    if (under($path, $from)) {
        $path = $to . substr($path, strlen($from));
    }
    if (under($path, $to)) {
        $mapped++;
    } elseif (under($path, $releases) || $path === __FILE__) {
        continue;
    }
    $paths[$path] = true;
}
if ($mapped === 0 && $to !== '' && is_dir($to)) {
    $skip = ['node_modules', '.git', 'storage', 'tests', 'Tests'];
    $walk = new RecursiveIteratorIterator(new RecursiveCallbackFilterIterator(
        new RecursiveDirectoryIterator($to, FilesystemIterator::SKIP_DOTS),
        function ($file) use ($skip) {
            return $file->isDir() ? !in_array($file->getFilename(), $skip, true) : substr($file->getFilename(), -4) === '.php';
        }
    ));
    foreach ($walk as $file) {
        $paths[$file->getPathname()] = true;
    }
}
// Files written less than file_update_protection seconds before the request
// began are compiled but not cached: ask to be called again after that.
$protection = (int) ini_get('opcache.file_update_protection');
$began = (int) ($_SERVER['REQUEST_TIME'] ?? time());
$newest = 0;
foreach (array_keys($paths) as $path) {
    if (under($path, $to)) {
        $newest = max($newest, (int) @filemtime($path));
    }
}
if ($protection > 0 && $newest > $began - $protection) {
    // A file dated ahead of this clock asks no longer than the protection.
    say('wait', min($newest + $protection - $began + 1, $protection + 1));
    exit(0);
}
$started = microtime(true);
$compiled = 0;
$cached = 0;
$failed = 0;
$current = null;
register_shutdown_function(function () use (&$current) {
    $error = error_get_last();
    if ($current !== null && $error !== null) {
        say('stopped', $current . ': ' . str_replace("\n", ' ', $error['message']));
    }
});
foreach (array_keys($paths) as $path) {
    if (!is_file($path)) {
        continue;
    }
    if (opcache_is_script_cached($path)) {
        $cached++;
        continue;
    }
    $current = $path;
    try {
        @opcache_compile_file($path) ? $compiled++ : $failed++;
    } catch (Throwable $e) {
        $failed++;
    }
}
$current = null;
$after = opcache_get_status(false);
say('warmed', sprintf('%d %d %d %d', $compiled, $cached, $failed, (microtime(true) - $started) * 1000));
say('free', $after['memory_usage']['free_memory'] ?? 0);
say('full', empty($after['cache_full']) ? 0 : 1);
