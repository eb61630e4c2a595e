//! Templates of rendered shared files (`shared.render`): text with
//! `{{ NAME }}` placeholders, each replaced by a var or a secret of the
//! same name. Nothing else is special, so a `.env`'s own `${VAR}` stays.

/// A placeholder, or why the text around `line` is not one.
#[derive(Debug, PartialEq, Eq)]
pub struct Placeholder {
    /// 1-based line of the template.
    pub line: usize,
    pub name: String,
}

/// Every placeholder of `text`, in order; an opened `{{` that is not a
/// placeholder is an error naming its line.
pub fn placeholders(text: &str) -> Result<Vec<Placeholder>, String> {
    let mut found = Vec::new();
    for (i, mut rest) in text.lines().enumerate() {
        let line = i + 1;
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| format!("line {line}: `{{{{` is not closed with `}}}}`"))?;
            let name = after[..end].trim();
            if !crate::shell::is_identifier(name) {
                return Err(format!("line {line}: `{{{{{}}}}}` is not a name", &after[..end]));
            }
            found.push(Placeholder { line, name: name.to_owned() });
            rest = &after[end + 2..];
        }
    }
    Ok(found)
}

/// `text` with each placeholder replaced by `value(name)`; a name without
/// a value is left as written (the inventory's checks refuse it first).
pub fn render<'a>(text: &str, value: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        match value(after[..end].trim()) {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_names_in_double_braces_and_the_rest_is_kept() {
        let text =
            "APP_NAME=shop\nAPP_URL=\"${APP_HOST}/x\"\nDB_PASSWORD={{ DB_PASSWORD }}\nKEY={{APP_KEY}}:{{ APP_KEY }}\n";
        let found = placeholders(text).expect("valid");
        let names: Vec<(usize, &str)> = found.iter().map(|p| (p.line, p.name.as_str())).collect();
        assert_eq!(names, [(3, "DB_PASSWORD"), (4, "APP_KEY"), (4, "APP_KEY")]);
        let rendered = render(text, |name| match name {
            "DB_PASSWORD" => Some("p w'd"),
            "APP_KEY" => Some("k"),
            _ => None,
        });
        assert_eq!(rendered, "APP_NAME=shop\nAPP_URL=\"${APP_HOST}/x\"\nDB_PASSWORD=p w'd\nKEY=k:k\n");
    }

    #[test]
    fn a_broken_placeholder_names_its_line() {
        assert_eq!(placeholders("A=1\nB={{ B\n"), Err("line 2: `{{` is not closed with `}}`".to_owned()));
        assert_eq!(placeholders("A={{ not a name }}\n"), Err("line 1: `{{ not a name }}` is not a name".to_owned()));
    }
}
