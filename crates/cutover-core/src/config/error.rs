//! The error for a file a user wrote: which file, where in it, which field,
//! what is wrong, and, where a fix is known, a hint.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Location;

/// Where in a file: 1-based line and column, and the byte span for snippets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
    pub offset: usize,
    pub len: usize,
}

impl Position {
    /// The position of a parsed node, or `None` for a value that came from a
    /// default rather than from the file.
    pub fn of(location: &Location) -> Option<Self> {
        if *location == Location::UNKNOWN {
            return None;
        }
        let span = location.span();
        Some(Self {
            line: location.line(),
            column: location.column(),
            offset: span.byte_offset().unwrap_or(span.offset()) as usize,
            len: span.byte_len().unwrap_or(span.len()) as usize,
        })
    }
}

/// A problem in an inventory or recipe file. Nothing on any host is touched
/// when one is found.
#[derive(Clone, Debug, thiserror::Error)]
pub struct ConfigError {
    /// The file, as the user named it.
    pub file: PathBuf,
    /// Where in the file, when known.
    pub position: Option<Position>,
    /// The field, as a path (`hosts[1].name`), when known.
    pub field: Option<String>,
    /// What is wrong, a lowercase fragment.
    pub message: String,
    /// How to fix it, when known.
    pub hint: Option<String>,
    /// The file's text, for snippets.
    pub source_text: Option<Arc<str>>,
}

impl ConfigError {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            position: None,
            field: None,
            message: message.into(),
            hint: None,
            source_text: None,
        }
    }

    pub fn at(mut self, location: &Location) -> Self {
        self.position = Position::of(location);
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn source_text(mut self, text: Arc<str>) -> Self {
        self.source_text = Some(text);
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(pos) = self.position {
            write!(f, ":{}:{}", pos.line, pos.column)?;
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}
