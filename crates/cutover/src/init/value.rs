//! The value a run of words stands for, when it is a literal a person
//! wrote out (`"main"`, `5`, `%w{a b}`, `['stage' => 'prod']`), the
//! arguments of a call, and URLs with their credentials hidden for notes.

use super::words::Word;

/// A value as written, when it is a literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<String>),
    /// `['stage' => 'prod']`: keys and literal string values.
    Map(Vec<(String, String)>),
}

impl Value {
    /// The value of `words` (an argument, the rest of a `set`), or `None`
    /// when it is not a literal: an expression, a call, a variable.
    pub fn of(words: &[Word]) -> Option<Self> {
        let scalar = |w: &Word| match w {
            Word::Str(s) | Word::Sym(s) => Some(s.clone()),
            Word::Int(n) => Some(n.to_string()),
            _ => None,
        };
        match words {
            [Word::Str(s)] | [Word::Sym(s)] => return Some(Self::Str(s.clone())),
            [Word::Int(n)] => return Some(Self::Int(*n)),
            [Word::Name(n)] if n == "true" => return Some(Self::Bool(true)),
            [Word::Name(n)] if n == "false" => return Some(Self::Bool(false)),
            [Word::List(items)] => return Some(Self::List(items.clone())),
            _ => {}
        }
        // `[...]`, or PHP's `array(...)`.
        let inner = match words {
            [Word::Punct('['), inner @ .., Word::Punct(']')] => inner,
            [Word::Name(n), Word::Punct('('), inner @ .., Word::Punct(')')] if n == "array" => inner,
            _ => return None,
        };
        let items: Vec<&[Word]> = inner.split(|w| *w == Word::Punct(',')).filter(|i| !i.is_empty()).collect();
        if !items.is_empty() && items.iter().all(|i| i.len() == 3 && i[1] == Word::Arrow) {
            let pairs: Option<Vec<(String, String)>> =
                items.iter().map(|i| Some((scalar(&i[0])?, scalar(&i[2])?))).collect();
            return pairs.map(Self::Map);
        }
        let strings: Option<Vec<String>> =
            items.iter().map(|i| if i.len() == 1 { scalar(&i[0]) } else { None }).collect();
        strings.map(Self::List)
    }

    /// The value as one string, when it is one (a number reads as its
    /// digits).
    pub fn text(&self) -> Option<String> {
        match self {
            Self::Str(s) => Some(s.clone()),
            Self::Int(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The value as a list of strings (a single string is a list of one).
    pub fn strings(&self) -> Option<Vec<String>> {
        match self {
            Self::List(items) => Some(items.clone()),
            Self::Str(s) => Some(vec![s.clone()]),
            _ => None,
        }
    }
}

/// The arguments of a call whose words start at `(`: each argument's words
/// (split at top-level commas), and the index after the closing `)`.
pub fn arguments(words: &[Word], open: usize) -> Option<(Vec<&[Word]>, usize)> {
    if words.get(open) != Some(&Word::Punct('(')) {
        return None;
    }
    let (mut depth, mut start, mut args) = (0, open + 1, Vec::new());
    for (i, word) in words.iter().enumerate().skip(open) {
        match word {
            Word::Punct('(' | '[' | '{') => depth += 1,
            Word::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    if i > start {
                        args.push(&words[start..i]);
                    }
                    return Some((args, i + 1));
                }
            }
            Word::Punct(',') if depth == 1 => {
                args.push(&words[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    None
}

/// `text` with the `user:password@` of every URL in it hidden.
pub fn hide_credentials(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'').unwrap_or(tail.len());
        let scheme =
            head[..head.len() - 3].rsplit(|c: char| !c.is_ascii_alphanumeric() && c != '+').next().unwrap_or("");
        match tail[..end].rfind('@').filter(|at| super::is_secret(scheme, &tail[..*at])) {
            Some(userinfo) => {
                out.push_str("***");
                out.push_str(&tail[userinfo..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}
