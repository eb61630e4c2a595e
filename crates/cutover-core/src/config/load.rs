//! Reading the inventory and its recipe from disk, turning every parse error
//! into a [`ConfigError`] that names the file, line, column and field.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::error::{ConfigError, Position};
use super::inventory::{Activation, Inventory};
use super::recipe::Recipe;
use super::suggest::closest;
use super::validate;

/// The built-in recipes, embedded in the binary: name and text.
pub const BUILT_IN_RECIPES: &[(&str, &str)] = &[
    ("php", include_str!("../../../../recipes/php.yaml")),
    ("laravel", include_str!("../../../../recipes/laravel.yaml")),
    ("symfony", include_str!("../../../../recipes/symfony.yaml")),
];

/// An inventory that parsed and passed every check, with its recipe.
#[derive(Debug)]
pub struct LoadedInventory {
    /// The inventory file.
    pub path: PathBuf,
    /// The directory relative paths in the inventory are resolved against.
    pub dir: PathBuf,
    pub inventory: Inventory,
    pub recipe: Recipe,
    /// The recipe's name (built-in) or path.
    pub recipe_origin: String,
}

/// Reads, parses and checks an inventory and its recipe; an inventory with
/// environments is refused (see [`load_inventory_in`]).
pub fn load_inventory(path: &Path) -> Result<LoadedInventory, ConfigError> {
    load_inventory_in(path, None)
}

/// Reads an inventory with `environment` laid over it (see
/// [`super::environment`]), then parses and checks it and its recipe.
pub fn load_inventory_in(path: &Path, environment: Option<&str>) -> Result<LoadedInventory, ConfigError> {
    let text = read(path)?;
    let mut inventory: Inventory = parse(path, &text)?;
    super::environment::choose(&mut inventory, environment).map_err(|unchosen| {
        let e = unchosen.into_error(path);
        let at = e.field.as_deref().and_then(|f| key_line(&text, f));
        ConfigError { position: at, ..e }.source_text(text.clone())
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
    validate::inventory(&inventory, &dir).map_err(|e| {
        let e = ConfigError { file: path.to_owned(), ..e };
        // A check of a whole top-level value (`hosts: []`) points at its key.
        let top = e.field.as_deref().filter(|f| !f.contains(['.', '['])).and_then(|f| key_line(&text, f));
        let e = ConfigError { position: e.position.or(top), ..e };
        e.source_text(text.clone())
    })?;
    let (recipe, recipe_origin) = load_named_recipe(path, &text, &inventory, &dir)?;
    validate::step_roles(&inventory, &inventory.hooks, None)
        .and_then(|()| validate::step_roles(&inventory, &recipe.hooks, Some(&recipe_origin)))
        .map_err(|e| ConfigError { file: path.to_owned(), ..e }.source_text(text.clone()))?;
    Ok(LoadedInventory { path: path.to_owned(), dir, inventory, recipe, recipe_origin })
}

impl LoadedInventory {
    /// `--activation`: the run uses `activation` instead of the file's,
    /// checked as if written there (blue-green needs its masters in the
    /// file).
    pub fn with_activation(&mut self, activation: Activation) -> Result<(), ConfigError> {
        self.inventory.php_fpm.activation_override = Some(activation);
        validate::activation(&self.inventory).map_err(|e| {
            // Set on the command line: no line of the file to point at.
            let message = format!("--activation {}: {}", activation.name(), e.message);
            ConfigError { file: self.path.clone(), message, position: None, ..e }
        })
    }
}

/// Reads, parses and checks one recipe file.
pub fn load_recipe(path: &Path) -> Result<Recipe, ConfigError> {
    let text = read(path)?;
    parse_recipe(path, &text)
}

fn parse_recipe(path: &Path, text: &Arc<str>) -> Result<Recipe, ConfigError> {
    let recipe: Recipe = parse(path, text)?;
    validate::recipe(&recipe).map_err(|e| ConfigError { file: path.to_owned(), ..e }.source_text(text.clone()))?;
    Ok(recipe)
}

fn load_named_recipe(
    inventory_path: &Path,
    inventory_text: &Arc<str>,
    inventory: &Inventory,
    dir: &Path,
) -> Result<(Recipe, String), ConfigError> {
    let name = inventory.recipe.value.as_str();
    if let Some((_, text)) = BUILT_IN_RECIPES.iter().find(|(n, _)| *n == name) {
        let label = PathBuf::from(format!("<built-in recipe {name}>"));
        return Ok((parse_recipe(&label, &Arc::from(*text))?, name.to_owned()));
    }
    let looks_like_path = name.contains('/') || name.ends_with(".yaml") || name.ends_with(".yml");
    if !looks_like_path {
        let names: Vec<&str> = BUILT_IN_RECIPES.iter().map(|(n, _)| *n).collect();
        let mut err = ConfigError::new(inventory_path, format!("unknown recipe `{name}`"))
            .at(&inventory.recipe.referenced)
            .field("recipe")
            .source_text(inventory_text.clone());
        err = match closest(name, &names) {
            Some(near) => err.hint(format!("did you mean `{near}`?")),
            None => err.hint(format!("use a built-in recipe ({}) or a path to a recipe file", names.join(", "))),
        };
        return Err(err);
    }
    let path = dir.join(name);
    if !path.is_file() {
        return Err(ConfigError::new(inventory_path, format!("recipe file `{}` not found", path.display()))
            .at(&inventory.recipe.referenced)
            .field("recipe")
            .source_text(inventory_text.clone()));
    }
    Ok((load_recipe(&path)?, path.display().to_string()))
}

fn read(path: &Path) -> Result<Arc<str>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| ConfigError::new(path, format!("could not read the file: {e}")))?;
    match String::from_utf8(bytes) {
        Ok(text) if text.trim().is_empty() => Err(ConfigError::new(path, "the file is empty")
            .hint("an inventory names the application, its deploy_path, a repository or source, and hosts: see the README's example")),
        Ok(text) => Ok(Arc::from(text)),
        Err(e) => {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            let line = bytes[..at].iter().filter(|b| **b == b'\n').count() as u64 + 1;
            let column = (at - bytes[..at].iter().rposition(|b| *b == b'\n').map_or(0, |n| n + 1)) as u64 + 1;
            let mut err = ConfigError::new(path, format!("not UTF-8 text: byte {at} cannot be read"));
            err.position = Some(Position { line, column, offset: at, len: 1 });
            Err(err.hint("save the file as UTF-8"))
        }
    }
}

/// serde's words for a number type, in a person's words.
fn number_words(message: &str) -> Option<String> {
    let kind = message.strip_prefix("invalid ")?;
    let max = match kind {
        "u8" => u64::from(u8::MAX),
        "u16" => u64::from(u16::MAX),
        "u32" => u64::from(u32::MAX),
        "u64" | "usize" => u64::MAX,
        _ => return None,
    };
    Some(format!("expected a whole number from 0 to {max}"))
}

/// The key written last before `position` on its line (`keep_releases`
/// of `keep_releases: many`, `retries` of `{url: x, retries: many}`), for
/// an error serde gave without its field.
fn key_before(text: &str, position: Position) -> Option<String> {
    let written = text.lines().nth(usize::try_from(position.line).ok()?.checked_sub(1)?)?;
    let upto: String = written.chars().take(usize::try_from(position.column).ok()?.saturating_sub(1)).collect();
    let colon = upto.trim_end().strip_suffix(':').map(str::len).or_else(|| upto.rfind(": "))?;
    let before = &upto[..colon];
    let start = before.rfind(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))).map_or(0, |i| i + 1);
    let key = &before[start..];
    (!key.is_empty()).then(|| key.to_owned())
}

/// A `[` or `{` opened on a line before `line` and still open when that
/// line starts: the likely cause of a parse error there (a missing `]`
/// makes the next line's `:` illegal). Quotes and comments are skipped.
fn unclosed_bracket(text: &str, line: u64) -> Option<(u64, u64, char)> {
    let mut open: Vec<(u64, u64, char)> = Vec::new();
    for (i, written) in text.lines().enumerate().take(usize::try_from(line).ok()?.saturating_sub(1)) {
        let mut quote: Option<char> = None;
        for (column, (at, c)) in written.char_indices().enumerate() {
            let before = &written[..at];
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') if before.is_empty() || before.ends_with(' ') => break,
                // Only where a flow collection can start: after `:`, `-`,
                // `,`, another opener, or at the start of the line.
                (None, '[' | '{')
                    if matches!(before.trim_end().chars().last(), None | Some(':' | '-' | ',' | '[' | '{')) =>
                {
                    open.push((i as u64 + 1, column as u64 + 1, c));
                }
                (None, ']' | '}') => {
                    open.pop();
                }
                _ => {}
            }
        }
    }
    open.pop()
}

/// The position of a line and column, with its byte offset for snippets.
fn position_in(text: &str, line: u64, column: u64) -> Option<Position> {
    let start: usize = text.lines().take(usize::try_from(line).ok()?.checked_sub(1)?).map(|l| l.len() + 1).sum();
    Some(Position { line, column, offset: start + usize::try_from(column).ok()?.saturating_sub(1), len: 1 })
}

/// Where the top-level `key:` is written.
fn key_line(text: &str, key: &str) -> Option<Position> {
    let mut offset = 0;
    for (i, line) in text.lines().enumerate() {
        if line.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with(':')) {
            return Some(Position { line: i as u64 + 1, column: 1, offset, len: key.len() });
        }
        offset += line.len() + 1;
    }
    None
}

/// serde's words for a value of the wrong kind, in a person's words.
fn kind_words(message: &str) -> Option<String> {
    if let Some(words) = number_words(message) {
        return Some(words);
    }
    match message {
        "invalid boolean" => Some("expected true or false".to_owned()),
        "expected string scalar" => Some("expected a single value (text), not a list or a mapping".to_owned()),
        _ => message
            .strip_prefix("unknown variant ")
            .and_then(|rest| rest.split_once(", expected one of "))
            .map(|(value, allowed)| format!("{value} is not one of: {allowed}")),
    }
}

/// Parses YAML into `T`, mapping serde-saphyr's error to a [`ConfigError`]
/// with the position and, for a misspelled key, the closest valid one.
fn parse<T: DeserializeOwned>(path: &Path, text: &Arc<str>) -> Result<T, ConfigError> {
    serde_saphyr::from_str(text).map_err(|error| {
        let bare = error.without_snippet();
        let mut message = bare.to_string();
        let mut err = ConfigError::new(path, "").source_text(text.clone());
        if let Some(location) = error.location() {
            err = err.at(&location);
            let suffix = format!(" at line {}, column {}", location.line(), location.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_owned();
            }
        }
        if let Some(stripped) = message.strip_suffix(", set DuplicateKeyPolicy in Options if acceptable") {
            message = stripped.to_owned();
        }
        if let Some((line, column, bracket)) = err.position.and_then(|p| unclosed_bracket(text, p.line)) {
            message = format!("the `{bracket}` opened on line {line}, column {column} is not closed");
            err.position = position_in(text, line, column);
        }
        if let Some(words) = kind_words(&message) {
            message = words;
        }
        if err.field.is_none()
            && let Some(key) = err.position.and_then(|p| key_before(text, p))
        {
            err = err.field(key);
        }
        if message.starts_with("tabs disallowed") {
            message = "a tab indents this line: YAML indents with spaces".to_owned();
        }
        if message.contains("budget breached") {
            let nodes: String = message.chars().filter(char::is_ascii_digit).collect();
            message = format!("the file is larger than cutover reads ({nodes} YAML nodes and more)");
        }
        if let serde_saphyr::Error::SerdeUnknownField { field, expected, .. } = bare {
            err = err.field(field.clone());
            message = format!("unknown key `{field}`");
            err = match closest(field, expected) {
                Some(near) => err.hint(format!("did you mean `{near}`? valid keys here: {}", expected.join(", "))),
                None => err.hint(format!("valid keys here: {}", expected.join(", "))),
            };
        }
        ConfigError { message, ..err }
    })
}
