//! The words of a Capistrano (Ruby) or Deployer (PHP) deploy file, as far
//! as `init --from` reads them: literal strings, numbers, symbols, lists,
//! names and punctuation, each with its line, grouped into top-level
//! statements. A string with interpolation (`"#{x}"`, `"$x"`) is not a
//! literal: it reads as an expression, never as the text it spells.
//! What the words mean as values is in [`super::value`].

/// One word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Word {
    /// A string without interpolation.
    Str(String),
    /// A string with interpolation: its value is not known here.
    Interpolated(String),
    Int(i64),
    /// Ruby's `:name`.
    Sym(String),
    /// Ruby's `name:` (a hash key).
    Key(String),
    /// Ruby's `%w{a b}`, `%i[a b]`.
    List(Vec<String>),
    Name(String),
    /// `=>`.
    Arrow,
    /// PHP's `->`.
    Call,
    Punct(char),
}

/// A top-level statement: its words and the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub line: usize,
    pub words: Vec<Word>,
}

impl Statement {
    /// The statement as written, for a note: its first line up to the
    /// first comma, so that what it sets (a password, a webhook) stays out
    /// of the note, which goes into a shared file; credentials in a URL
    /// hidden too.
    pub fn shown(&self, text: &str) -> String {
        let line = text.lines().nth(self.line.saturating_sub(1)).unwrap_or_default().trim();
        let line = match line.split_once(',') {
            Some((head, _)) => format!("{head}, ..."),
            None => line.to_owned(),
        };
        let line = &super::value::hide_credentials(&line);
        if line.chars().count() > 70 {
            format!("{}...", line.chars().take(67).collect::<String>())
        } else {
            line.to_owned()
        }
    }
}

/// The language of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    Ruby,
    Php,
}

/// The top-level statements of `text`. Ruby's blocks (`do ... end`, `def
/// ... end`) are one statement each; a Ruby statement goes on over lines
/// while a bracket is open, after a trailing comma or operator, or when the
/// next line starts a method call (`.push(...)`). PHP's end at `;`.
pub fn statements(text: &str, language: Language) -> Vec<Statement> {
    let words = lex(text, language);
    let mut out = Vec::new();
    let mut current: Vec<Word> = Vec::new();
    let mut start = 0;
    let (mut brackets, mut blocks) = (0i32, 0i32);
    // `while x do`: that `do` opens no second block; `def x = 1` none at all.
    let (mut loop_do, mut def_line) = (false, false);
    for (i, (line, word)) in words.iter().enumerate() {
        if current.is_empty() {
            start = *line;
        }
        let ends = match (language, word) {
            (Language::Php, Word::Punct(';')) => brackets <= 0,
            (Language::Ruby, Word::Punct('\n')) => {
                let open = brackets > 0 || blocks > 0;
                let continued =
                    matches!(current.last(), Some(Word::Punct(',' | '\\' | '+' | '|' | '&')) | Some(Word::Arrow));
                let chained = matches!(words.get(i + 1), Some((_, Word::Punct('.'))));
                !open && !continued && !chained
            }
            _ => false,
        };
        let ruby = language == Language::Ruby;
        match word {
            Word::Punct('(' | '[' | '{') => brackets += 1,
            Word::Punct(')' | ']' | '}') => brackets -= 1,
            Word::Punct('\n' | ';') => (loop_do, def_line) = (false, false),
            // `def x = 1` (an endless method), not `def x=(v)` or `def ==(o)`.
            Word::Punct('=') if ruby && def_line && brackets == 0 && endless(&words, i) => {
                blocks -= 1;
                def_line = false;
            }
            Word::Name(n) if ruby && n == "do" && loop_do => loop_do = false,
            Word::Name(n) if ruby && n == "do" => blocks += 1,
            Word::Name(n) if ruby && opens_block(n) && current.is_empty() => {
                blocks += 1;
                loop_do = matches!(n.as_str(), "while" | "until" | "for");
                def_line = n == "def";
            }
            Word::Name(n) if ruby && n == "end" => blocks -= 1,
            _ => {}
        }
        if ends {
            if !current.is_empty() {
                out.push(Statement { line: start, words: std::mem::take(&mut current) });
            }
        } else if word != &Word::Punct('\n') {
            current.push(word.clone());
        }
    }
    if !current.is_empty() {
        out.push(Statement { line: start, words: current });
    }
    out
}

/// Whether the `=` at `i` of a `def` line makes it an endless method: not
/// part of `==`, nor a setter's name (`x=(`).
fn endless(words: &[(usize, Word)], i: usize) -> bool {
    let near = |k: usize| words.get(k).map(|(_, w)| w);
    let before = i.checked_sub(1).and_then(near);
    !matches!(near(i + 1), Some(Word::Punct('=' | '(' | '~'))) && before != Some(&Word::Punct('='))
}

/// Ruby words that open a block closed by `end` when they start a statement.
fn opens_block(name: &str) -> bool {
    matches!(name, "def" | "class" | "module" | "if" | "unless" | "case" | "begin" | "while" | "until" | "for")
}

/// Every word of `text`, with its line; Ruby's line ends are words too.
fn lex(text: &str, language: Language) -> Vec<(usize, Word)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    // The line that ends a heredoc opened on the current line.
    let mut heredoc: Option<String> = None;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\n' => {
                if language == Language::Ruby {
                    out.push((line, Word::Punct('\n')));
                }
                line += 1;
                i += 1;
                // A heredoc's body, after the line that opened it.
                if let Some(end) = heredoc.take() {
                    while i < chars.len() {
                        let line_end = chars[i..].iter().position(|c| *c == '\n').map_or(chars.len(), |p| p + i);
                        let done = chars[i..line_end].iter().collect::<String>().trim() == end;
                        line += 1;
                        i = line_end + 1;
                        if done {
                            break;
                        }
                    }
                }
            }
            '=' if language == Language::Ruby && (i == 0 || chars[i - 1] == '\n') && text_at(&chars, i, "=begin") => {
                // A block comment, to the line `=end`.
                while i < chars.len() && !((i == 0 || chars[i - 1] == '\n') && text_at(&chars, i, "=end")) {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '<' if language == Language::Ruby && next == Some('<') && heredoc_start(&chars, i + 2).is_some() => {
                let (end, after) = heredoc_start(&chars, i + 2).unwrap_or_default();
                out.push((line, Word::Interpolated(format!("<<{end}"))));
                heredoc = Some(end);
                i = after;
            }
            c if c.is_whitespace() => i += 1,
            '#' if language == Language::Ruby || next != Some('[') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if language == Language::Php && next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if language == Language::Php && next == Some('*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
                i += 2;
            }
            '<' if language == Language::Php && text_at(&chars, i, "<?php") => i += 5,
            '\'' | '"' => {
                let (word, end, lines) = string(&chars, i, language);
                out.push((line, word));
                line += lines;
                i = end;
            }
            '%' if language == Language::Ruby && matches!(next, Some('w' | 'i' | 'W' | 'I')) => {
                let (list, end) = percent_list(&chars, i + 2);
                // `%W`/`%I` interpolate.
                let interpolated = matches!(next, Some('W' | 'I')) && list.iter().any(|w| w.contains("#{"));
                out.push((line, if interpolated { Word::Interpolated(list.join(" ")) } else { Word::List(list) }));
                i = end;
            }
            ':' if language == Language::Ruby && next.is_some_and(|n| n.is_alphabetic() || n == '_') => {
                let end = ident_end(&chars, i + 1);
                out.push((line, Word::Sym(chars[i + 1..end].iter().collect())));
                i = end;
            }
            '=' if next == Some('>') => {
                out.push((line, Word::Arrow));
                i += 2;
            }
            '-' if next == Some('>') => {
                out.push((line, Word::Call));
                i += 2;
            }
            c if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let mut end = i + 1;
                while end < chars.len() && (chars[end].is_ascii_digit() || chars[end] == '_') {
                    end += 1;
                }
                let digits: String = chars[i..end].iter().filter(|c| **c != '_').collect();
                out.push((line, digits.parse().map(Word::Int).unwrap_or(Word::Interpolated(digits))));
                i = end;
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let end = ident_end(&chars, i + 1);
                let name: String = chars[i..end].iter().collect();
                let key =
                    language == Language::Ruby && chars.get(end) == Some(&':') && chars.get(end + 1) != Some(&':');
                if key {
                    out.push((line, Word::Key(name)));
                    i = end + 1;
                } else {
                    out.push((line, Word::Name(name)));
                    i = end;
                }
            }
            c => {
                out.push((line, Word::Punct(c)));
                i += 1;
            }
        }
    }
    out
}

fn text_at(chars: &[char], i: usize, word: &str) -> bool {
    word.chars().enumerate().all(|(k, c)| chars.get(i + k) == Some(&c))
}

fn ident_end(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '?' | '!')) {
        i += 1;
    }
    i
}

/// The string starting at `i` (its quote): the word, the index after it,
/// and the line ends inside it.
fn string(chars: &[char], i: usize, language: Language) -> (Word, usize, usize) {
    let quote = chars[i];
    let (mut text, mut j, mut lines, mut interpolated) = (String::new(), i + 1, 0, false);
    while j < chars.len() && chars[j] != quote {
        let c = chars[j];
        lines += usize::from(c == '\n');
        if c == '\\' && j + 1 < chars.len() {
            let escaped = chars[j + 1];
            // In single quotes only `\'` and `\\` escape; in double quotes
            // anything but `\"` and `\\` (`\t`, `\d`) means what the
            // language says, which is not read here.
            match (quote, escaped) {
                (_, '\\') | ('\'', '\'') | ('"', '"') => text.push(escaped),
                ('\'', _) => {
                    text.push('\\');
                    text.push(escaped);
                }
                _ => {
                    interpolated = true;
                    text.push('\\');
                    text.push(escaped);
                }
            }
            j += 2;
            continue;
        }
        if quote == '"' {
            interpolated |= match language {
                Language::Ruby => c == '#' && chars.get(j + 1) == Some(&'{'),
                Language::Php => c == '$' || (c == '{' && chars.get(j + 1) == Some(&'$')),
            };
        }
        text.push(c);
        j += 1;
    }
    let word = if interpolated { Word::Interpolated(text) } else { Word::Str(text) };
    (word, j + 1, lines)
}

/// A heredoc's terminator after `<<` at `i` (`<<~EOS`, `<<-EOS`, `<<EOS`,
/// quoted or not) and the index after it.
fn heredoc_start(chars: &[char], mut i: usize) -> Option<(String, usize)> {
    let marked = matches!(chars.get(i), Some('~' | '-'));
    if marked {
        i += 1;
    }
    let quote = chars.get(i).copied().filter(|c| matches!(c, '\'' | '"'));
    i += usize::from(quote.is_some());
    let end = ident_end(chars, i);
    let name: String = chars[i..end].iter().collect();
    // `<<ID` only in capitals (`a << b` shifts); `<<~id`, `<<-id` any name.
    let named = !name.is_empty() && (marked || name.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
    named.then(|| (name, end + usize::from(quote.is_some())))
}

/// Ruby's `%w{a b c}` from just after `%w`: its words and the index after.
fn percent_list(chars: &[char], i: usize) -> (Vec<String>, usize) {
    let close = match chars.get(i) {
        Some('{') => '}',
        Some('[') => ']',
        Some('(') => ')',
        Some('<') => '>',
        Some(c) => *c,
        None => return (Vec::new(), i),
    };
    let mut j = i + 1;
    let mut body = String::new();
    while j < chars.len() && chars[j] != close {
        body.push(chars[j]);
        j += 1;
    }
    (body.split_whitespace().map(str::to_owned).collect(), j + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruby(text: &str) -> Vec<Statement> {
        statements(text, Language::Ruby)
    }

    #[test]
    fn a_ruby_statement_goes_on_over_open_brackets_trailing_commas_and_chained_calls() {
        let text = "set :linked_dirs, fetch(:linked_dirs, [])\n  .push('storage',\n        'public/uploads')\n\
                    server 'a', roles: %w{app web},\n  primary: true\nset :x, 1 # a comment\n";
        let all = ruby(text);
        assert_eq!(all.len(), 3, "{all:#?}");
        assert_eq!((all[0].line, all[1].line, all[2].line), (1, 4, 6));
        assert!(all[1].words.contains(&Word::List(vec!["app".into(), "web".into()])));
        assert!(all[1].words.contains(&Word::Key("primary".into())));
        assert_eq!(all[2].words, [Word::Name("set".into()), Word::Sym("x".into()), Word::Punct(','), Word::Int(1)]);
    }

    #[test]
    fn a_block_is_one_statement_and_interpolation_is_no_literal() {
        let text = "namespace :deploy do\n  task :x do\n    on roles(:app) do\n    end\n  end\nend\nset :branch, \"#{ENV['B']}\"\n";
        let all = ruby(text);
        assert_eq!(all.len(), 2, "{all:#?}");
        assert_eq!(all[1].words[3], Word::Interpolated("#{ENV['B']}".into()));
    }

    #[test]
    fn comments_heredocs_loops_and_escapes_are_never_read_as_values() {
        let text = "=begin\nset :branch, 'old'\n=end\nset :x, <<~EOS\n  set :branch, 'in a heredoc'\nEOS\n\
                    while true do\n  x\nend\ndef y = 1\nset :t, \"a\\tb\"\nset :w, %W[#{a} b]\nset :branch, 'main'\n";
        let all = ruby(text);
        let heads: Vec<(usize, &Word)> = all.iter().map(|s| (s.line, &s.words[0])).collect();
        assert_eq!(heads.len(), 6, "{all:#?}");
        assert_eq!(all[0].line, 4);
        assert!(matches!(all[0].words[3], Word::Interpolated(_)), "a heredoc is no literal");
        assert_eq!(all[1].line, 7, "the loop is one statement");
        assert_eq!(all[2].line, 10, "an endless def opens no block");
        assert!(matches!(all[3].words[3], Word::Interpolated(_)), "an escape other than \\\\ or \\\"");
        assert!(matches!(all[4].words[3], Word::Interpolated(_)), "%W interpolates");
        assert_eq!(all[5].words[3], Word::Str("main".into()));
    }

    #[test]
    fn php_statements_end_at_semicolons_with_chains_and_arrays() {
        let text =
            "<?php\nnamespace Deployer;\n// c\nhost('a')\n  ->set('labels', ['stage' => 'prod']);\nset('x', \"$y\");\n";
        let all = statements(text, Language::Php);
        assert_eq!(all.len(), 3, "{all:#?}");
        assert_eq!(all[1].line, 4);
        assert!(all[1].words.contains(&Word::Call) && all[1].words.contains(&Word::Arrow));
        assert_eq!(all[2].words[4], Word::Interpolated("$y".into()));
    }
}
