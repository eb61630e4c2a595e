//! `--json`: one JSON object per event on stdout.

use std::io::Write;

use cutover_core::event::{Event, EventSink};

/// Writes each event as one line of JSON on stdout.
#[derive(Debug, Default)]
pub struct JsonLines;

impl EventSink for JsonLines {
    fn emit(&self, event: Event) {
        if let Ok(line) = serde_json::to_string(&event) {
            let mut out = std::io::stdout().lock();
            // A closed stdout (a pipe to `head`) must not stop a deploy.
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}
