//! Who runs cutover, and on which machine: what the lock's owner and
//! revisions.log say. `CUTOVER_USER` names the person or pipeline behind a
//! run (what CI sets, say `CUTOVER_USER=${{ github.actor }}`); otherwise
//! `$USER`, and where that is unset (many CI containers) the operating
//! system's user database.

/// The variable that names who deploys, over everything else.
pub const USER_VARIABLE: &str = "CUTOVER_USER";

/// Who runs this run.
pub fn user() -> String {
    user_from(|name| std::env::var(name).ok())
}

/// Who runs this run, with `var` reading the environment.
fn user_from(var: impl Fn(&str) -> Option<String>) -> String {
    // One line of revisions.log is tab-separated: no control characters.
    let clean = |v: String| v.trim().replace(|c: char| c.is_control(), " ");
    let named = |name: &str| var(name).map(clean).filter(|v| !v.is_empty());
    named(USER_VARIABLE)
        .or_else(|| named("USER"))
        .or_else(|| named("USERNAME"))
        .or_else(|| whoami::username().ok().filter(|u| !u.is_empty()))
        .or_else(|| uid().map(|uid| format!("uid {uid}")))
        .unwrap_or_else(|| "unknown".into())
}

/// The machine cutover runs on.
pub fn machine() -> String {
    let named = |h: String| Some(h.trim().to_owned()).filter(|h| !h.is_empty());
    std::env::var("HOSTNAME")
        .ok()
        .and_then(named)
        .or_else(|| whoami::hostname().ok().and_then(named))
        .unwrap_or_else(|| "unknown".into())
}

/// This process's user id (on Linux), for a user the database does not
/// know (a container run with an arbitrary uid).
fn uid() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn ci_names_who_deploys_over_everything() {
        assert_eq!(user_from(env(&[(USER_VARIABLE, "ci-bot"), ("USER", "root")])), "ci-bot");
        assert_eq!(user_from(env(&[(USER_VARIABLE, " "), ("USER", "ana")])), "ana");
    }

    #[test]
    fn without_user_the_user_database_says_who() {
        // A container run with an uid its database does not know: the uid.
        let expected = whoami::username().ok().filter(|u| !u.is_empty()).or_else(|| uid().map(|u| format!("uid {u}")));
        assert_eq!(Some(user_from(env(&[]))), expected);
    }

    #[test]
    fn a_name_cannot_break_a_line_of_revisions_log() {
        assert_eq!(user_from(env(&[(USER_VARIABLE, "ana\tbot\nx")])), "ana bot x");
    }
}
