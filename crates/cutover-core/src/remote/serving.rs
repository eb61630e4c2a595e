//! The probe's part that reads how a host serves the live release, for
//! `cutover check` alone (a deploy does not pay for it): the host's clock,
//! whether the nginx sites serving `current` pass `$realpath_root`, the PHP
//! versions, each PHP-FPM program's OPcache settings (from `php-fpm -i`, the
//! settings of its own php.ini and conf.d, not a pool's `php_admin_value`),
//! and how many PHP files the live release has and their size. It reads and
//! changes nothing.

/// The probe lines; `$d` is the deploy path.
pub(crate) const SERVING: &str = r#"echo "clock $(date +%s.%N 2>/dev/null || date +%s)"
for f in /etc/nginx/sites-enabled/* /etc/nginx/conf.d/*.conf; do [ -r "$f" ] || continue; grep -qF "$d/current" "$f" 2>/dev/null || continue; if grep -Eq 'SCRIPT_FILENAME[[:space:]]+"?\$realpath_root' "$f"; then echo "nginx-realpath $f"; else echo "nginx-document-root $f"; fi; done
if command -v php >/dev/null 2>&1; then echo "php-version $(php -r 'echo PHP_VERSION;' 2>/dev/null)"; fi
for b in /usr/sbin/php-fpm*; do
  [ -x "$b" ] || continue
  echo "fpm-version $b $("$b" -v 2>/dev/null | sed -n '1s/^PHP \([^ ]*\).*/\1/p')"
  "$b" -i 2>/dev/null | sed -n -E -e 's/^opcache\.(enable|validate_timestamps|revalidate_freq|memory_consumption|max_accelerated_files) => ([^ ]+) => .*/\1 \2/p' -e 's/.*<td class="e">opcache\.(enable|validate_timestamps|revalidate_freq|memory_consumption|max_accelerated_files) *<\/td><td class="v">([^ <]+) *<\/td>.*/\1 \2/p' | while read -r k v; do echo "opcache $b $k $v"; done
done
if [ -d "$d/current/" ]; then find "$d/current/" -type f -name '*.php' -printf '%s\n' 2>/dev/null | awk '{n++; s+=$1} END {if (n) print "php-files", n, s}'; fi"#;

/// What the probe read of how a host serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Serving {
    /// The host's clock when it answered, in milliseconds since the epoch.
    pub clock_ms: Option<i64>,
    /// nginx sites serving `current` with `$realpath_root`, and without.
    pub nginx_realpath: Vec<String>,
    pub nginx_document_root: Vec<String>,
    /// The version of the `php` the steps run (`8.2.26`).
    pub php_version: Option<String>,
    /// Each PHP-FPM program's version and OPcache settings.
    pub fpm: Vec<FpmSettings>,
    /// The live release's PHP files: how many, and their bytes.
    pub php_files: Option<(u64, u64)>,
}

/// One PHP-FPM program's version and OPcache settings, as `php-fpm -i`
/// gives them (`On`, `Off`, `128`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FpmSettings {
    /// `/usr/sbin/php-fpm8.2`.
    pub binary: String,
    pub version: Option<String>,
    pub opcache: Vec<(String, String)>,
}

impl FpmSettings {
    /// An OPcache setting (`validate_timestamps`), when the program said.
    pub fn opcache(&self, name: &str) -> Option<&str> {
        self.opcache.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether OPcache is on (`None`: the program did not say, or has no
    /// OPcache).
    pub fn opcache_on(&self) -> Option<bool> {
        self.opcache("enable").map(is_on)
    }
}

/// Whether an ini flag as phpinfo shows it is on.
pub fn is_on(value: &str) -> bool {
    matches!(value.to_ascii_lowercase().as_str(), "on" | "1" | "yes" | "true")
}

impl Serving {
    /// Reads one probe line; false when it is not about serving.
    pub(crate) fn read(&mut self, key: &str, value: &str) -> bool {
        let value = value.trim();
        match key {
            "clock" => self.clock_ms = value.parse::<f64>().ok().map(|s| (s * 1000.0) as i64),
            "nginx-realpath" => self.nginx_realpath.push(value.to_owned()),
            "nginx-document-root" => self.nginx_document_root.push(value.to_owned()),
            "php-version" => self.php_version = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "fpm-version" => {
                let (binary, version) = value.split_once(' ').unwrap_or((value, ""));
                let version = Some(version.trim().to_owned()).filter(|v| !v.is_empty());
                self.fpm.push(FpmSettings { binary: binary.to_owned(), version, opcache: Vec::new() });
            }
            "opcache" => {
                let mut words = value.split_whitespace();
                let (Some(binary), Some(name), Some(setting)) = (words.next(), words.next(), words.next()) else {
                    return true;
                };
                if let Some(fpm) = self.fpm.iter_mut().find(|f| f.binary == binary) {
                    fpm.opcache.push((name.to_owned(), setting.to_owned()));
                }
            }
            "php-files" => {
                let mut words = value.split_whitespace().map(str::parse::<u64>);
                if let (Some(Ok(count)), Some(Ok(bytes))) = (words.next(), words.next()) {
                    self.php_files = Some((count, bytes));
                }
            }
            _ => return false,
        }
        true
    }

    /// The settings of the PHP-FPM that serves: the program of `service`
    /// (`php8.2-fpm` is `/usr/sbin/php-fpm8.2`), or the only program.
    pub fn serving_fpm(&self, service: Option<&str>) -> Option<&FpmSettings> {
        let version = service.and_then(|s| s.strip_prefix("php")).and_then(|s| s.strip_suffix("-fpm"));
        let named = version.and_then(|v| self.fpm.iter().find(|f| f.binary.ends_with(&format!("php-fpm{v}"))));
        named.or_else(|| (self.fpm.len() == 1).then(|| &self.fpm[0]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(lines: &str) -> Serving {
        let mut serving = Serving::default();
        for line in lines.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            assert!(serving.read(key, value), "{line}");
        }
        serving
    }

    #[test]
    fn reads_each_fpm_programs_opcache_and_the_release_files() {
        let serving = read(
            "php-version 8.2.29\nfpm-version /usr/sbin/php-fpm8.2 8.2.29\n\
             opcache /usr/sbin/php-fpm8.2 enable On\nopcache /usr/sbin/php-fpm8.2 validate_timestamps Off\n\
             fpm-version /usr/sbin/php-fpm7.4 7.4.33\nopcache /usr/sbin/php-fpm7.4 enable Off\n\
             php-files 8123 61234567",
        );
        assert_eq!(serving.php_version.as_deref(), Some("8.2.29"));
        assert_eq!(serving.php_files, Some((8123, 61234567)));
        let fpm = serving.serving_fpm(Some("php8.2-fpm")).expect("8.2");
        assert_eq!(fpm.version.as_deref(), Some("8.2.29"));
        assert_eq!((fpm.opcache_on(), fpm.opcache("validate_timestamps")), (Some(true), Some("Off")));
        let old = serving.serving_fpm(Some("php7.4-fpm")).expect("7.4");
        assert_eq!(old.opcache_on(), Some(false));
        assert_eq!(serving.serving_fpm(None), None, "two programs and no service: none is the one");
    }
}
