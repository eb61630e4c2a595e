//! Turning a configuration error into a report for people: file, line,
//! column, the offending snippet, and a hint.

use cutover_core::config::ConfigError;
use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};

/// A [`ConfigError`] as a miette diagnostic.
#[derive(Debug, thiserror::Error)]
#[error("{inner}")]
pub struct ConfigDiagnostic {
    inner: ConfigError,
    text: Option<NamedSource<String>>,
}

impl ConfigDiagnostic {
    pub fn new(inner: ConfigError) -> Self {
        let source =
            inner.source_text.as_ref().map(|text| NamedSource::new(inner.file.display().to_string(), text.to_string()));
        Self { inner, text: source }
    }
}

impl Diagnostic for ConfigDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new("cutover::config"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.inner.hint.as_ref().map(|h| Box::new(h.clone()) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.text.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let pos = self.inner.position?;
        self.text.as_ref()?;
        let span = SourceSpan::new(pos.offset.into(), pos.len.max(1));
        let label = self.inner.field.clone().unwrap_or_else(|| "here".to_owned());
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(Some(label), span))))
    }
}
