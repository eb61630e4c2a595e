//! The probe's part about PHP-FPM: a few shell lines that print what a
//! host has (the FPM programs, which of them run, how services are managed,
//! what sudo allows) and [`FpmFound`], which reads them back.

use crate::config::inventory::BlueGreen;
use crate::shell::{Script, Sh};

/// The probe lines. For each FPM program (`/usr/sbin/php-fpm<version>`,
/// `/usr/sbin/php-fpm`): whether its service runs, by systemd or by the pid
/// file its config names (`kill -0`, where "not permitted" also means
/// alive, so that hidepid or a root-owned master hide nothing), and whether
/// sudo lets the deploy user run its reload and its config test
/// (`sudo -n -l`, which runs nothing). Masters seen in /proc count only in
/// this PID namespace (not a container's). A master's title is matched
/// through `[:]` so that grep, whose own command line holds the pattern,
/// never matches itself.
const DETECT: &str = r#"fpm_root=; if [ "$(id -u)" = 0 ]; then fpm_root=1; echo "fpm-root"; fi
echo "fpm-user $(id -un 2>/dev/null || id -u)"
fpm_systemctl=; if [ -d /run/systemd/system ]; then for c in /usr/bin/systemctl /bin/systemctl; do if [ -x "$c" ]; then fpm_systemctl=$c; echo "fpm-systemctl $c"; break; fi; done; fi
for i in /etc/init.d/php*-fpm; do if [ -x "$i" ]; then echo "fpm-init $i"; fi; done
for b in /usr/sbin/php-fpm*; do
  [ -e "$b" ] || continue
  if [ ! -x "$b" ]; then echo "fpm-not-executable $b"; continue; fi
  echo "fpm-binary $b"; v=${b#/usr/sbin/php-fpm}
  if [ -n "$v" ]; then s=php$v-fpm; c=/etc/php/$v/fpm/php-fpm.conf; else s=php-fpm; c=/etc/php-fpm.conf; fi
  if [ -n "$fpm_systemctl" ]; then r="$fpm_systemctl reload $s"; else r="/etc/init.d/$s reload"; fi
  if [ -n "$fpm_systemctl" ] && "$fpm_systemctl" is-active --quiet "$s" 2>/dev/null; then echo "fpm-running $b"
  else
    p=$(sed -n 's/^[[:space:]]*pid[[:space:]]*=[[:space:]]*//p' "$c" 2>/dev/null | tail -n 1)
    if [ -n "$p" ] && [ -r "$p" ] && read -r pid < "$p" && [ -n "$pid" ]; then
      if e=$(LC_ALL=C kill -0 "$pid" 2>&1); then echo "fpm-running $b"; else case $e in *ermit*) echo "fpm-running $b";; esac; fi
    fi
  fi
  if [ -z "$fpm_root" ]; then
    if sudo -n -l $r >/dev/null 2>&1; then echo "fpm-sudo $r"; fi
    if sudo -n -l "$b" -t >/dev/null 2>&1; then echo "fpm-sudo $b -t"; fi
  fi
done
for m in $(grep -a -l 'php-fpm[:] master process' /proc/[0-9]*/cmdline 2>/dev/null); do
  n=$(awk '/^NSpid:/ {print NF}' "${m%/cmdline}/status" 2>/dev/null) || continue
  if [ "$n" = 2 ]; then t=$(tr '\0' ' ' < "$m" 2>/dev/null) && echo "fpm-master $t"; fi
done
true"#;

/// Adds the detection to a probe script; it does not fail.
pub(crate) fn detect(script: &mut Script) {
    script.line(DETECT);
}

/// The probe lines of activation (see [`crate::remote::activation`]):
/// whether `cgi-fcgi` is there, every pool's `listen`, and for each socket
/// path whether the deploy user may connect to it (write permission on the
/// socket file, as connect(2) needs).
const LOOK_FOR_FASTCGI: &str = r#"if command -v cgi-fcgi >/dev/null 2>&1; then echo "fpm-fastcgi"; fi
fpm_socket_state() { case $1 in /*) if [ -S "$1" ] && [ -w "$1" ]; then echo "fpm-socket-ok $1"; elif [ -S "$1" ]; then echo "fpm-socket-denied $1"; else echo "fpm-socket-missing $1"; fi ;; esac; }
for c in /etc/php/*/fpm/pool.d/*.conf /etc/php-fpm.d/*.conf; do [ -r "$c" ] && sed -n 's/^[[:space:]]*listen[[:space:]]*=[[:space:]]*//p' "$c"; done | tr -d "\"'" | while IFS= read -r l; do echo "fpm-listen $l"; fpm_socket_state "$l"; done
if [ -n "$fpm_sock" ]; then fpm_socket_state "$fpm_sock"; fi
true"#;

/// Where blue-green's link points: as written, and which master's socket
/// it resolves to (`-ef`: the same file, whatever path names it); and each
/// master config's `process_control_timeout`.
const LOOK_AT_THE_LINK: &str = r#"if [ -L "$l" ]; then echo "fpm-link $(readlink "$l")"; elif [ -e "$l" ]; then echo "fpm-link-not-link"; fi
if [ "$l" -ef "$fpm_blue" ]; then echo "fpm-link-is blue"; elif [ "$l" -ef "$fpm_green" ]; then echo "fpm-link-is green"; fi
if [ -S "$l" ] && [ ! -w "$l" ]; then echo "fpm-link-denied"; fi
for fpm_c in $fpm_configs; do if [ -r "$fpm_c" ]; then v=$(sed -n 's/^[[:space:]]*process_control_timeout[[:space:]]*=[[:space:]]*//p' "$fpm_c" | tail -n 1); echo "fpm-master-pct $fpm_c ${v:-0}"; else echo "fpm-master-pct-unread $fpm_c"; fi; done
true"#;

/// Adds the activation's lines to a probe script; they do not fail.
pub(crate) fn look_for_fastcgi(script: &mut Script, socket: Option<&str>, blue_green: Option<&BlueGreen>) {
    script.push(Sh::assign("fpm_sock", socket.unwrap_or_default()));
    script.line(LOOK_FOR_FASTCGI);
    if let Some(bg) = blue_green {
        script.push(Sh::assign("l", &bg.link));
        script.push(Sh::assign("fpm_blue", &bg.blue.socket));
        script.push(Sh::assign("fpm_green", &bg.green.socket));
        let configs: Vec<&str> = [&bg.blue, &bg.green].iter().filter_map(|m| m.config.as_deref()).collect();
        // Paths without blanks or glob characters (checked when loaded).
        script.push(Sh::assign("fpm_configs", configs.join(" ")));
        script.line(LOOK_AT_THE_LINK);
        for (name, command) in sudo_commands(bg) {
            // `sudo -n -l COMMAND` runs nothing: it says whether sudo would
            // run it without a password.
            let mut check = Sh::new("if ! sudo -n -l");
            for word in command.split_whitespace() {
                check = check.arg(word);
            }
            let said = format!("fpm-master-sudo-denied {name}");
            script.push(check.lit(">/dev/null 2>&1; then echo").arg(said).lit("; fi"));
        }
    }
}

/// The masters' commands that run through `sudo` as plain words (no shell
/// syntax), by name (`blue.start`), without `sudo` and its `-n`.
fn sudo_commands(bg: &BlueGreen) -> Vec<(String, &str)> {
    let plain = |c: &str| !c.contains(|ch: char| "|&;<>()$`\\\"'*?[]#~={}\n".contains(ch));
    let mut out = Vec::new();
    for (color, master) in [("blue", &bg.blue), ("green", &bg.green)] {
        for (what, command) in [("start", &master.start), ("stop", &master.stop)] {
            let rest = command.trim().strip_prefix("sudo -n ").or_else(|| command.trim().strip_prefix("sudo "));
            if let Some(rest) = rest.map(str::trim).filter(|r| !r.starts_with('-') && plain(r)) {
                out.push((format!("{color}.{what}"), rest));
            }
        }
    }
    out
}

/// What the probe found of PHP-FPM on a host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FpmFound {
    /// The deploy user is root: no sudo.
    pub root: bool,
    /// The deploy user's name, for the sudo rule.
    pub user: Option<String>,
    /// FPM programs installed (`/usr/sbin/php-fpm8.2`).
    pub binaries: Vec<String>,
    /// FPM programs there but not executable.
    pub not_executable: Vec<String>,
    /// The programs whose service runs (systemd, or a live pid file).
    pub running: Vec<String>,
    /// The config file of each master running in the host's own PID
    /// namespace (`/etc/php/8.2/fpm/php-fpm.conf`).
    pub masters: Vec<String>,
    /// `systemctl`, when systemd manages the host's services.
    pub systemctl: Option<String>,
    /// Init scripts of FPM services (`/etc/init.d/php8.2-fpm`).
    pub init_scripts: Vec<String>,
    /// The FPM commands sudo lets the deploy user run without a password.
    pub sudo_allowed: Vec<String>,
    /// `cgi-fcgi` is installed.
    pub fastcgi: bool,
    /// Every pool's `listen`, as written.
    pub listens: Vec<String>,
    /// Where blue-green's link points, as written (`None`: no link).
    pub link: Option<String>,
    /// Blue-green's link path is taken by something else than a link.
    pub link_not_link: bool,
    /// The master whose socket the link resolves to (`blue`, `green`).
    pub link_is: Option<String>,
    /// The deploy user may not connect to the socket the link resolves to.
    pub link_denied: bool,
    /// The masters' commands (`blue.start`) sudo would not run without a
    /// password.
    pub master_sudo_denied: Vec<String>,
    /// Socket paths the deploy user may connect to, may not, and that do
    /// not exist.
    pub sockets_ok: Vec<String>,
    pub sockets_denied: Vec<String>,
    pub sockets_missing: Vec<String>,
    /// Each blue-green master config read: its path and its
    /// `process_control_timeout`; and those that could not be read.
    pub master_timeouts: Vec<(String, String)>,
    pub master_configs_unread: Vec<String>,
}

impl FpmFound {
    /// Reads one probe line; false when the line is not about PHP-FPM.
    pub(crate) fn read(&mut self, key: &str, value: &str) -> bool {
        let value = value.trim();
        match key {
            "fpm-root" => self.root = true,
            "fpm-user" => self.user = Some(value.to_owned()),
            "fpm-binary" => self.binaries.push(value.to_owned()),
            "fpm-not-executable" => self.not_executable.push(value.to_owned()),
            "fpm-running" => self.running.push(value.to_owned()),
            "fpm-master" => self.masters.extend(master_config(value)),
            "fpm-systemctl" => self.systemctl = Some(value.to_owned()),
            "fpm-init" => self.init_scripts.push(value.to_owned()),
            "fpm-sudo" => self.sudo_allowed.push(value.to_owned()),
            "fpm-fastcgi" => self.fastcgi = true,
            "fpm-listen" => self.listens.push(value.to_owned()),
            "fpm-link" => self.link = Some(value.to_owned()),
            "fpm-link-not-link" => self.link_not_link = true,
            "fpm-link-is" => self.link_is = Some(value.to_owned()),
            "fpm-link-denied" => self.link_denied = true,
            "fpm-master-sudo-denied" => self.master_sudo_denied.push(value.to_owned()),
            "fpm-socket-ok" => self.sockets_ok.push(value.to_owned()),
            "fpm-socket-denied" => self.sockets_denied.push(value.to_owned()),
            "fpm-socket-missing" => self.sockets_missing.push(value.to_owned()),
            "fpm-master-pct" => {
                let (file, timeout) = value.rsplit_once(' ').unwrap_or((value, "0"));
                self.master_timeouts.push((file.to_owned(), timeout.to_owned()));
            }
            "fpm-master-pct-unread" => self.master_configs_unread.push(value.to_owned()),
            _ => return false,
        }
        true
    }
}

/// The config file in a master's title,
/// `php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)`.
fn master_config(title: &str) -> Option<String> {
    let (_, rest) = title.split_once('(')?;
    let (config, _) = rest.rsplit_once(')')?;
    Some(config.to_owned())
}
