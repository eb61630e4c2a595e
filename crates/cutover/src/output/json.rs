//! `--json`: one JSON object per event on stdout.

use std::io::Write;

use cutover_core::event::{Event, EventSink};

/// Writes each event as one line of JSON on stdout, but for the scripts'
/// output, whole or line by line (the whole goes to the run's log, whose
/// path the summary names as `log`).
#[derive(Debug, Default)]
pub struct JsonLines {
    pub log: Option<std::path::PathBuf>,
}

impl EventSink for JsonLines {
    fn emit(&self, event: Event) {
        if matches!(event, Event::Output { .. } | Event::StepStarted { .. } | Event::Line { .. }) {
            return;
        }
        let mut value = serde_json::to_value(&event).unwrap_or_default();
        if let (Event::Summary(_), Some(log), Some(object)) = (&event, &self.log, value.as_object_mut()) {
            object.insert("log".to_owned(), serde_json::Value::from(log.display().to_string()));
        }
        if let Ok(line) = serde_json::to_string(&value) {
            let mut out = std::io::stdout().lock();
            // A closed stdout (a pipe to `head`) must not stop a deploy.
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}
