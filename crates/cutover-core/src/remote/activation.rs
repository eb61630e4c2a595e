//! Activation: how PHP-FPM starts serving the new release, as shell for the
//! scripts of a run. cutover speaks FastCGI to a pool's socket with
//! `cgi-fcgi` (Debian's `libfcgi-bin`) on the host, asking the pool to run
//! [`PROGRAM`], which cutover writes to `<deploy_path>/.cutover/fpm.php`
//! (outside every document root) while it holds the lock.
//!
//! - `reload`: after the switch, the graceful reload, then a wait until a
//!   worker that did not exist before the reload answers.
//! - `warm`: while the run takes its lock, a check that OPcache has room for
//!   a second release; while staging, the new release compiled into the live
//!   pool's OPcache; no reload.
//! - `blue-green`: while staging, the idle master started, warmed through its
//!   own socket and asked once more, and the socket link staged beside
//!   nginx's; the flip renames `current` and the link; the old master is
//!   drained (SIGQUIT) only once the fleet decided, and an undo moves the
//!   link back and stops the idle one.

use serde::Serialize;

use crate::config::inventory::{Activation, Master};
use crate::shell::{Script, Sh};

use super::steps;

/// The script a pool runs for cutover.
pub const PROGRAM: &str = include_str!("activation/fpm.php");

/// Where [`PROGRAM`] goes on a host, under the deploy path.
pub const PROGRAM_PATH: &str = ".cutover/fpm.php";

/// The tool cutover speaks FastCGI with on a host.
pub const FASTCGI_TOOL: &str = "cgi-fcgi";

/// A host's activation, as preflight resolved it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Activating {
    pub activation: Activation,
    /// The live pool's socket (warm; the wait after a reload).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// Whether the reload is followed by the wait for readiness.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub wait_ready: bool,
    /// Blue-green: the link and the masters, as the probe found them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub colors: Option<Colors>,
}

impl Activating {
    /// Whether the run speaks to a pool on this host (and so writes
    /// [`PROGRAM`] there).
    pub fn speaks_fastcgi(&self) -> bool {
        match self.activation {
            Activation::Reload => self.wait_ready,
            Activation::Warm | Activation::BlueGreen => true,
        }
    }
}

/// Blue-green on one host: which master takes over, and which one it
/// replaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Colors {
    /// The link nginx connects through.
    pub link: String,
    /// Where the link pointed when the probe read it (`None`: no link yet).
    pub live: Option<String>,
    /// `blue` or `green`: the master started on the new release.
    pub idle_name: &'static str,
    pub idle: Master,
    /// The master the link pointed at, when it is one of the two: drained
    /// once the fleet decided. A link to another socket (the stock pool,
    /// before the first blue-green run) leaves that pool alone.
    pub old: Option<Master>,
}

/// The shell functions the pieces below call, defined once at the top of
/// a script: the program itself, its installation, one FastCGI request
/// (`cutover_fcgi SOCKET MODE [NAME=VALUE]...`), and reading an answer.
fn functions(s: &mut Script) {
    s.assign("cutover_fpm_php", PROGRAM);
    s.assign("cutover_fpm_at", PROGRAM_PATH);
    s.line(FUNCTIONS);
}

const FUNCTIONS: &str = r#"cutover_fpm_install() {
mkdir -p "$d/.cutover"
chmod a+rx "$d/.cutover"
printf '%s' "$cutover_fpm_php" > "$d/$cutover_fpm_at.tmp"
chmod 0644 "$d/$cutover_fpm_at.tmp"
mv -f "$d/$cutover_fpm_at.tmp" "$d/$cutover_fpm_at"
}
cutover_fcgi() {
cutover_sock=$1; cutover_mode=$2; shift 2
case $cutover_mode in warm) cutover_limit=600 ;; *) cutover_limit=20 ;; esac
env -i PATH="$PATH" SCRIPT_FILENAME="$d/$cutover_fpm_at" SCRIPT_NAME=/cutover-fpm.php REQUEST_METHOD=GET CUTOVER_FPM="$cutover_mode" "$@" timeout "$cutover_limit" cgi-fcgi -bind -connect "$cutover_sock" < /dev/null 2>&1 | tr -d '\r'
}
cutover_said() { printf '%s\n' "$1" | sed -n "s/^@@fpm $2 //p" | head -n 1; }
cutover_unanswered() {
echo "PHP-FPM at $1 did not run $d/$cutover_fpm_at: $(printf '%s\n' "$2" | grep -v '^@@fpm ' | grep -v '^[A-Za-z-]*: ' | grep -v '^$' | head -n 3 | tr '\n' ' ')(is the pool's user allowed to read it, and the deploy user to connect to the socket?)" >&2
}
cutover_warm() {
cutover_to=$(cd "$d/releases/$r" && pwd -P)
cutover_from=$(cd "$d/current" 2> /dev/null && pwd -P) || cutover_from=
cutover_rels=$(cd "$d/releases" && pwd -P)
cutover_try=0
while :; do
cutover_out=$(cutover_fcgi "$1" warm CUTOVER_FROM="$cutover_from" CUTOVER_TO="$cutover_to" CUTOVER_RELEASES="$cutover_rels" CUTOVER_LIST="$2")
cutover_wait=$(cutover_said "$cutover_out" wait)
if [ -z "$cutover_wait" ]; then break; fi
if [ "$cutover_try" -ge 3 ]; then echo "OPcache at $1: files of the release are still younger than opcache.file_update_protection (a clock ahead?): not warmed, they compile on first use"; return 0; fi
echo "OPcache at $1: the newest file is younger than opcache.file_update_protection: warming in $cutover_wait s"
sleep "$cutover_wait"; cutover_try=$((cutover_try + 1))
done
cutover_stopped=$(cutover_said "$cutover_out" stopped)
if [ -n "$cutover_stopped" ]; then echo "OPcache at $1: warming stopped at $cutover_stopped (the rest compiles on first use)"; return 0; fi
cutover_n=$(cutover_said "$cutover_out" warmed)
if [ -z "$cutover_n" ]; then cutover_unanswered "$1" "$cutover_out"; return 1; fi
cutover_free=$(cutover_said "$cutover_out" free)
set -- "$1" $cutover_n
echo "OPcache at $1: $2 files compiled, $3 already cached, $4 failed, in $5 ms; $(( ${cutover_free:-0} / 1048576 )) MiB free"
if [ "$(cutover_said "$cutover_out" full)" = 1 ]; then echo "OPcache at $1 is full: files not cached compile on every request until PHP-FPM restarts"; fi
}
cutover_fpm_workers() { ps -eo pid=,args= 2> /dev/null | awk '/php-fpm[:] pool/ {print $1}' | tr '\n' ' '; }
cutover_fpm_ready() {
cutover_try=0
while [ "$cutover_try" -lt 300 ]; do
cutover_pid=$(cutover_said "$(cutover_fcgi "$1" status)" pid)
if [ -n "$cutover_pid" ]; then case " $2 " in *" $cutover_pid "*) ;; *) return 0 ;; esac; fi
sleep 0.1; cutover_try=$((cutover_try + 1))
done
echo "PHP-FPM at $1: no new worker answered within 30 s of the reload" >&2
return 1
}"#;

/// While the run takes its lock: writes [`PROGRAM`]; for `warm`, refuses
/// when OPcache cannot hold a second release beside the live one (of
/// `target`, a rollback's, only what is not cached yet), or when the pool
/// preloads, or has no OPcache.
pub fn install(s: &mut Script, host: &Activating, target: Option<&str>) {
    if !host.speaks_fastcgi() {
        return;
    }
    functions(s);
    s.line("cutover_fpm_install");
    if let (Activation::Warm, Some(socket)) = (host.activation, &host.socket) {
        steps::mark(s, "opcache room");
        s.push(Sh::assign("cutover_live", socket));
        s.push(Sh::assign("cutover_target", target.unwrap_or_default()));
        s.line(ROOM);
    }
}

const ROOM: &str = r#"cutover_from=$(cd "$d/current" 2> /dev/null && pwd -P) || cutover_from=
cutover_to=; if [ -n "$cutover_target" ]; then cutover_to=$(cd "$d/releases/$cutover_target" && pwd -P); fi
cutover_out=$(cutover_fcgi "$cutover_live" room CUTOVER_FROM="$cutover_from" CUTOVER_TO="$cutover_to" CUTOVER_CURRENT="$d/current")
if [ -z "$(cutover_said "$cutover_out" opcache)" ]; then cutover_unanswered "$cutover_live" "$cutover_out"; exit 1; fi
cutover_refused=$(cutover_said "$cutover_out" refuse)
if [ -n "$cutover_refused" ]; then echo "activation warm: $cutover_refused" >&2; exit 1; fi"#;

/// While staging, after `current-tmp` (with `$r` the release): `warm`
/// compiles the release into the live pool; `blue-green` starts the idle
/// master, warms it with what the live one has cached, asks it once more,
/// and stages the link beside nginx's.
pub fn stage(s: &mut Script, host: &Activating) {
    match (host.activation, &host.socket, &host.colors) {
        (Activation::Warm, Some(socket), _) => {
            functions(s);
            steps::mark(s, "warm");
            s.push(Sh::assign("cutover_live", socket));
            s.line(r#"cutover_warm "$cutover_live" """#);
        }
        (Activation::BlueGreen, _, Some(colors)) => {
            functions(s);
            steps::mark(s, &format!("start {}", colors.idle_name));
            assign_colors(s, colors);
            s.line(EXPECT_LINK);
            // A rollback's lock gives itself back if staging fails: this
            // stops the master started here first (see lock::RELEASE_ON_FAILURE).
            s.line("cutover_undo_stage() {");
            s.extend(stop_idle(host));
            s.line("}");
            s.line("{");
            s.push(Sh::user_shell(colors.idle.stop.clone()));
            s.push(Sh::user_shell(colors.idle.start.clone()));
            s.line("} < /dev/null");
            steps::mark(s, &format!("warm {}", colors.idle_name));
            s.line(WARM_IDLE);
            s.line(r#"ln -sfn "$cutover_idle" "$cutover_link.cutover-tmp""#);
        }
        _ => {}
    }
}

fn assign_colors(s: &mut Script, colors: &Colors) {
    s.push(Sh::assign("cutover_link", &colors.link));
    s.push(Sh::assign("cutover_was", colors.live.as_deref().unwrap_or_default()));
    s.push(Sh::assign("cutover_idle", &colors.idle.socket));
}

/// Refuses when the link moved since preflight read it.
const EXPECT_LINK: &str = r#"cutover_now=$(readlink "$cutover_link" 2> /dev/null) || cutover_now=
if [ "$cutover_now" != "$cutover_was" ]; then echo "$cutover_link points at ${cutover_now:-nothing}, not ${cutover_was:-nothing} as when the run began: another run or a person moved it" >&2; exit 1; fi
if [ "$cutover_now" = "$cutover_idle" ] || [ "$cutover_link" -ef "$cutover_idle" ]; then echo "$cutover_link points at $cutover_idle, the master about to be restarted" >&2; exit 1; fi"#;

/// Waits for the idle master's socket to answer, lists what the live pool
/// has cached (none when it does not answer: the release's files are
/// walked instead), warms the idle master with it, and asks it once more.
const WARM_IDLE: &str = r#"cutover_try=0
until [ -n "$(cutover_said "$(cutover_fcgi "$cutover_idle" status)" pid)" ]; do
cutover_try=$((cutover_try + 1))
if [ "$cutover_try" -gt 100 ]; then cutover_unanswered "$cutover_idle" "$(cutover_fcgi "$cutover_idle" status)"; exit 1; fi
sleep 0.1
done
cutover_list="$d/.cutover/warm-list"
: > "$cutover_list"
chmod 0644 "$cutover_list"
if [ -n "$cutover_was" ] && [ -S "$cutover_link" ]; then cutover_fcgi "$cutover_link" list | sed -n 's/^@@fpm file //p' > "$cutover_list" || : > "$cutover_list"; fi
if [ ! -s "$cutover_list" ]; then echo "OPcache at $cutover_idle: nothing listed by the live pool (${cutover_was:-no link yet}): warming every .php file of the release"; fi
cutover_warm "$cutover_idle" "$cutover_list"
rm -f "$cutover_list"
cutover_out=$(cutover_fcgi "$cutover_idle" status)
if [ -z "$(cutover_said "$cutover_out" pid)" ]; then echo "PHP-FPM at $cutover_idle stopped answering after the warm-up" >&2; exit 1; fi
if [ -n "$(cutover_said "$cutover_out" preload)" ]; then echo "the master at $cutover_idle preloads $(cutover_said "$cutover_out" preload) (opcache.preload): started before the switch, it preloads the release current still names; blue-green does not support preloading: use activation reload" >&2; exit 1; fi"#;

/// The extra `rename(2)` of the flip (the staged link over nginx's), as
/// the paths the perl flip renames after `current`.
pub fn flip_link(host: &Activating) -> Option<String> {
    host.colors.as_ref().map(|c| c.link.clone())
}

/// The name a reload that never became ready is reported under.
pub const READY_STEP: &str = "ready";

/// After the reload in the flip: the wait until a new worker answers. The
/// workers alive before the reload are read right before it.
pub fn before_reload(s: &mut Script, host: &Activating) {
    if host.activation == Activation::Reload && host.wait_ready {
        functions(s);
        s.line("cutover_old=$(cutover_fpm_workers)");
    }
}

/// See [`before_reload`].
pub fn after_reload(s: &mut Script, host: &Activating) {
    if let (Activation::Reload, true, Some(socket)) = (host.activation, host.wait_ready, &host.socket) {
        steps::mark(s, READY_STEP);
        s.push(Sh::assign("cutover_live", socket));
        s.line(r#"cutover_fpm_ready "$cutover_live" "$cutover_old""#);
    }
}

/// Once the fleet decided: drains the master the link left (SIGQUIT, its
/// children finish their requests). A stop that fails is said, not fatal:
/// the fleet is switched and healthy.
pub fn drain_old(host: &Activating) -> Script {
    let mut s = Script::new();
    let (Some(colors), Some(old)) = (&host.colors, host.colors.as_ref().and_then(|c| c.old.as_ref())) else {
        return s;
    };
    s.line("# drain the master the link left, never the one it points at:");
    s.push(Sh::assign("cutover_link", &colors.link));
    s.push(Sh::assign("cutover_old", &old.socket));
    s.line(r#"if [ ! "$cutover_link" -ef "$cutover_old" ] && [ "$(readlink "$cutover_link" 2> /dev/null || true)" != "$cutover_old" ]; then"#);
    s.line("if {");
    s.push(Sh::user_shell(old.stop.clone()));
    s.line(r#"} < /dev/null; then echo "drained the PHP-FPM master at $cutover_old (the link left it)"; else echo 'warning the PHP-FPM master the link left could not be stopped: stop it by hand'; fi"#);
    s.line("fi");
    s
}

/// In an undo, after `current` is back: the link back where the probe
/// read it (removed when there was none).
pub fn undo_link(s: &mut Script, host: &Activating) {
    let Some(colors) = &host.colors else { return };
    assign_colors(s, colors);
    s.line(
        r#"if [ -n "$cutover_was" ]; then ln -sfn "$cutover_was" "$cutover_link.cutover-tmp"; if mv --version > /dev/null 2>&1; then mv -T "$cutover_link.cutover-tmp" "$cutover_link"; else mv -fh "$cutover_link.cutover-tmp" "$cutover_link"; fi; else rm -f "$cutover_link"; fi"#,
    );
}

/// After an undo or an abort: stops the master started for the run, unless
/// the link points at it (then it is the live one), and removes the staged
/// link.
pub fn stop_idle(host: &Activating) -> Script {
    let mut s = Script::new();
    let Some(colors) = &host.colors else { return s };
    assign_colors(&mut s, colors);
    s.line(r#"rm -f "$cutover_link.cutover-tmp""#);
    s.line(r#"if [ ! "$cutover_link" -ef "$cutover_idle" ] && [ "$(readlink "$cutover_link" 2> /dev/null || true)" != "$cutover_idle" ]; then"#);
    s.line("if ! {");
    s.push(Sh::user_shell(colors.idle.stop.clone()));
    s.line("} < /dev/null; then echo 'warning the PHP-FPM master started for this run could not be stopped: stop it by hand'; fi");
    s.line("fi");
    s
}

/// Lines for people saying how each host activates the release, hosts
/// alike together: `PHP-FPM activation on web1, web2: warm, through
/// /run/php/php8.2-fpm.sock`. Nothing for a reload that does not wait.
pub fn plan_lines<'a>(hosts: impl IntoIterator<Item = (&'a str, &'a Activating)>) -> Vec<String> {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for (host, a) in hosts {
        let said = match (a.activation, &a.socket, &a.colors) {
            (Activation::Reload, Some(socket), _) if a.wait_ready => {
                format!("reload, then wait until a new worker answers at {socket}")
            }
            (Activation::Warm, Some(socket), _) => format!("warm, through {socket}; no reload"),
            (Activation::BlueGreen, _, Some(c)) => {
                let from = match (&c.old, &c.live) {
                    (Some(old), _) => format!("the master at {} (drained once the fleet decided)", old.socket),
                    (None, Some(live)) => format!("{live} (left running: not one of the two)"),
                    (None, None) => "nothing (no link yet)".to_owned(),
                };
                format!("blue-green: {} at {} takes {} over from {from}", c.idle_name, c.idle.socket, c.link)
            }
            _ => continue,
        };
        match groups.iter_mut().find(|(s, _)| *s == said) {
            Some((_, names)) => names.push(host),
            None => groups.push((said, vec![host])),
        }
    }
    groups.into_iter().map(|(said, names)| format!("PHP-FPM activation on {}: {said}", names.join(", "))).collect()
}

mod resolve;

pub use resolve::resolve;

#[cfg(test)]
mod tests;
