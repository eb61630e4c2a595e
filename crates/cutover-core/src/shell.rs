//! Shell commands as data, and the one function that quotes values for a remote shell.
//!
//! A [`Sh`] is a list of tokens. A literal token is a `&'static str` written in
//! this crate's source; every runtime value goes through [`Sh::arg`] and is
//! always quoted by [`quote`]. Secrets render as `***` in anything meant for
//! people. The one way to pass shell text that is not quoted is
//! [`Sh::user_shell`], used only for commands a user wrote in a recipe.

use std::borrow::Cow;
use std::fmt;

/// Quotes `value` so that a POSIX shell reads it back as exactly one word,
/// byte for byte.
///
/// This is the only quoting function in cutover: every value that reaches a
/// remote shell passes through it. A shell cannot carry a NUL byte in a word;
/// configuration loading refuses such values, and here a NUL is dropped.
pub fn quote(value: &str) -> Cow<'_, str> {
    match shlex::try_quote(value) {
        Ok(quoted) => quoted,
        Err(_) => Cow::Owned(quote(&value.replace('\0', "")).into_owned()),
    }
}

#[derive(Clone, PartialEq, Eq)]
enum Token {
    /// Written in cutover's source: flags, operators, program names.
    Literal(&'static str),
    /// A runtime value: always quoted.
    Value(String),
    /// A runtime value that must not appear in logs or plans.
    Secret(String),
    /// Shell text written by the user in a recipe; rendered as is.
    UserShell(String),
    /// `NAME=value`, the value quoted; a name that is not an identifier is
    /// quoted too, so it can only fail, never inject.
    Assign(String, String),
}

/// One shell command line, built from tokens.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Sh {
    tokens: Vec<Token>,
}

impl Sh {
    /// Starts a command with a program name written in cutover's source.
    pub fn new(program: &'static str) -> Self {
        Self { tokens: vec![Token::Literal(program)] }
    }

    /// Wraps shell text that a user wrote (a recipe step's `run`); it is not
    /// quoted, by design: it is the user's own command.
    pub fn user_shell(text: impl Into<String>) -> Self {
        Self { tokens: vec![Token::UserShell(text.into())] }
    }

    /// A variable assignment, `name='value'`: how runtime values enter a
    /// script whose body is literal text using `"$name"`.
    pub fn assign(name: impl Into<String>, value: impl AsRef<str>) -> Self {
        Self { tokens: vec![Token::Assign(name.into(), value.as_ref().to_owned())] }
    }

    /// Appends a literal token: a flag, an operator (`&&`, `|`, `>`), a keyword.
    pub fn lit(mut self, literal: &'static str) -> Self {
        self.tokens.push(Token::Literal(literal));
        self
    }

    /// Appends a runtime value, always quoted.
    pub fn arg(mut self, value: impl AsRef<str>) -> Self {
        self.tokens.push(Token::Value(value.as_ref().to_owned()));
        self
    }

    /// Appends a secret value: quoted in the script, masked when displayed.
    pub fn secret(mut self, value: impl AsRef<str>) -> Self {
        self.tokens.push(Token::Secret(value.as_ref().to_owned()));
        self
    }

    /// Appends every token of `other`.
    pub fn then(mut self, other: Sh) -> Self {
        self.tokens.extend(other.tokens);
        self
    }

    /// The command as the shell will run it.
    pub fn render(&self) -> String {
        self.render_with(false)
    }

    /// The command as people may see it, secrets masked.
    pub fn render_masked(&self) -> String {
        self.render_with(true)
    }

    fn render_with(&self, mask: bool) -> String {
        let words: Vec<Cow<'_, str>> = self
            .tokens
            .iter()
            .map(|token| match token {
                Token::Literal(text) => Cow::Borrowed(*text),
                Token::Value(value) => quote(value),
                Token::Secret(_) if mask => Cow::Borrowed("***"),
                Token::Secret(value) => quote(value),
                Token::UserShell(text) => Cow::Borrowed(text.as_str()),
                Token::Assign(name, value) if is_identifier(name) => Cow::Owned(format!("{name}={}", quote(value))),
                Token::Assign(name, value) => Cow::Owned(format!("{}={}", quote(name), quote(value))),
            })
            .collect();
        words.join(" ")
    }
}

/// Whether `name` can be a shell variable name.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

impl fmt::Debug for Sh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sh({})", self.render_masked())
    }
}

impl fmt::Display for Sh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render_masked())
    }
}

/// A script: command lines run in order by one `sh` on a host, in one round
/// trip. Every line must succeed (`set -e`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    lines: Vec<Sh>,
}

impl Script {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a command line.
    pub fn push(&mut self, line: Sh) -> &mut Self {
        self.lines.push(line);
        self
    }

    /// Appends a line of literal shell text written in cutover's source.
    pub fn line(&mut self, text: &'static str) -> &mut Self {
        self.push(Sh::new(text))
    }

    /// Appends `name='value'`.
    pub fn assign(&mut self, name: &'static str, value: impl AsRef<str>) -> &mut Self {
        self.push(Sh::assign(name, value))
    }

    /// Appends every line of `other`.
    pub fn extend(&mut self, other: Script) -> &mut Self {
        self.lines.extend(other.lines);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The script as sent to the host.
    pub fn render(&self) -> String {
        self.render_lines(Sh::render)
    }

    /// The script as shown to people (`cutover plan`), secrets masked.
    pub fn render_masked(&self) -> String {
        self.render_lines(Sh::render_masked)
    }

    fn render_lines(&self, line: fn(&Sh) -> String) -> String {
        let mut out = String::from("set -eu\n");
        for sh in &self.lines {
            out.push_str(&line(sh));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever the value, `sh -c` reads the quoted word back byte for byte.
        #[test]
        fn quoted_values_round_trip_through_sh(value in "[^\\x00]{0,40}") {
            let script = Sh::new("printf").lit("%s").arg(&value).render();
            let out = std::process::Command::new("sh").arg("-c").arg(&script).output().expect("sh runs");
            prop_assert!(out.status.success(), "{script}");
            prop_assert_eq!(String::from_utf8_lossy(&out.stdout), value);
        }
    }

    #[test]
    fn plain_words_stay_bare() {
        assert_eq!(Sh::new("mkdir").lit("-p").arg("/var/www/app").render(), "mkdir -p /var/www/app");
    }

    #[test]
    fn values_with_spaces_quotes_and_dollars_are_quoted() {
        let sh = Sh::new("mkdir").lit("-p").arg("/srv/my app").arg("it's").arg("$HOME").arg("a\nb");
        assert_eq!(sh.render(), "mkdir -p '/srv/my app' \"it's\" '$HOME' 'a\nb'");
    }

    #[test]
    fn empty_value_is_an_empty_word() {
        assert_eq!(Sh::new("printf").arg("").render(), "printf ''");
    }

    #[test]
    fn secrets_are_masked_only_for_people() {
        let sh = Sh::new("curl").lit("-H").secret("Authorization: s3cr3t");
        assert_eq!(sh.render_masked(), "curl -H ***");
        assert_eq!(sh.render(), "curl -H 'Authorization: s3cr3t'");
    }

    #[test]
    fn assignments_quote_values_and_bad_names() {
        assert_eq!(Sh::assign("d", "/srv/a b").render(), "d='/srv/a b'");
        assert_eq!(Sh::assign("A;rm -rf /", "x").render(), "'A;rm -rf /'=x");
    }

    #[test]
    fn user_shell_is_passed_through() {
        let sh = Sh::user_shell("npm ci && npm run build");
        assert_eq!(sh.render(), "npm ci && npm run build");
    }

    #[test]
    fn script_starts_strict_and_ends_lines() {
        let mut script = Script::new();
        script.push(Sh::new("true")).push(Sh::new("echo").arg("a b"));
        assert_eq!(script.render(), "set -eu\ntrue\necho 'a b'\n");
    }
}
