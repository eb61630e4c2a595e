//! Everything the CLI shows: progress on stderr (bars or plain lines), NDJSON
//! on stdout with `--json`, and the final summary. The engine only emits
//! events; these sinks decide how they look.

mod bars;
mod json;
mod plain;
pub mod summary;

use std::io::IsTerminal;

use cutover_core::event::EventSink;

use crate::cli::Progress;

pub use bars::Bars;
pub use json::JsonLines;
pub use plain::PlainLines;

/// The event sink for this invocation.
pub fn sink(json: bool, progress: Progress, hosts: &[String]) -> Box<dyn EventSink> {
    if json {
        return Box::new(JsonLines);
    }
    let fancy = match progress {
        Progress::Fancy => true,
        Progress::Plain => false,
        Progress::Auto => std::io::stderr().is_terminal(),
    };
    if fancy { Box::new(Bars::new(hosts)) } else { Box::new(PlainLines) }
}
