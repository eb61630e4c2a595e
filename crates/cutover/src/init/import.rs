//! What `cutover init --from` carries over from another tool's settings:
//! the values that map onto cutover's inventory, and a line for each that
//! does not. The readers ([`super::capistrano`], [`super::deployer`]) fill
//! an [`Imported`]; they read the files as text, line by line, and never run
//! them.

/// Settings read from another tool.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// The files read, for the inventory's heading.
    pub files: Vec<String>,
    pub application: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub deploy_path: Option<String>,
    pub keep_releases: Option<u32>,
    /// The recipe the other tool's recipe maps to.
    pub recipe: Option<&'static str>,
    pub shared_files: Vec<String>,
    pub shared_dirs: Vec<String>,
    pub hosts: Vec<ImportedHost>,
    /// What was not carried over, one line each, as it was written.
    pub left: Vec<String>,
}

/// A server of the other tool's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportedHost {
    /// Its name there (Deployer's alias; Capistrano's address).
    pub name: String,
    pub address: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub roles: Vec<String>,
    pub primary: bool,
}

impl Imported {
    /// The host named `name` (its address too, until told otherwise),
    /// added when it is new.
    pub fn host(&mut self, name: &str) -> &mut ImportedHost {
        let i = match self.hosts.iter().position(|h| h.name == name) {
            Some(i) => i,
            None => {
                let host = ImportedHost { name: name.to_owned(), address: name.to_owned(), ..ImportedHost::default() };
                self.hosts.push(host);
                self.hosts.len() - 1
            }
        };
        &mut self.hosts[i]
    }

    /// Adds to a list without repeating an entry.
    pub fn add(list: &mut Vec<String>, values: impl IntoIterator<Item = String>) {
        for value in values {
            if !list.contains(&value) {
                list.push(value);
            }
        }
    }
}

/// The string literals of `text`, in order: `'a'`, `"b"`, and the words of
/// Ruby's `%w{c d}` / `%w[c d]`.
pub fn strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(['\'', '"', '%']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        let after = &rest[start + 1..];
        if quote == '%' {
            let Some(open) = after.strip_prefix('w').and_then(|a| a.chars().next()) else {
                rest = after;
                continue;
            };
            let close = match open {
                '{' => '}',
                '[' => ']',
                '(' => ')',
                other => other,
            };
            let body = &after[1 + open.len_utf8()..];
            let end = body.find(close).unwrap_or(body.len());
            out.extend(body[..end].split_whitespace().map(str::to_owned));
            rest = body.get(end + 1..).unwrap_or("");
        } else {
            let end = after.find(quote).unwrap_or(after.len());
            out.push(after[..end].to_owned());
            rest = after.get(end + 1..).unwrap_or("");
        }
    }
    out
}

/// The first string literal of `text`.
pub fn string(text: &str) -> Option<String> {
    strings(text).into_iter().next()
}

/// The first whole number in `text`.
pub fn number<T: std::str::FromStr>(text: &str) -> Option<T> {
    let digits: String = text.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_string_literals_and_word_lists() {
        assert_eq!(strings(r#""a", 'b c', %w{d e}, %w[f]"#), ["a", "b c", "d", "e", "f"]);
        assert_eq!(string("set :x, 'y'"), Some("y".to_owned()));
        assert_eq!(number::<u32>("set :keep_releases, 7"), Some(7));
        assert_eq!(number::<u32>("none"), None);
    }
}
