//! Everything the CLI shows: progress on stderr (bars or plain lines), NDJSON
//! on stdout with `--json`, and the final summary. The engine only emits
//! events; these sinks decide how they look.

mod bars;
mod json;
pub mod log;
mod plain;
pub mod summary;

use std::io::IsTerminal;

use cutover_core::event::EventSink;

use crate::cli::Progress;

pub use bars::{Bars, LINES as PROGRESS_LINES, TARGET as PROGRESS_TARGET, more_hosts};
pub use json::JsonLines;
pub use plain::PlainLines;

/// The event sink for this invocation; with a run's log, every event also
/// goes there.
pub fn sink(json: bool, progress: Progress, hosts: &[String], log: Option<log::RunLog>) -> Box<dyn EventSink> {
    let screen = screen(json, progress, hosts, log.as_ref().map(|l| l.path().to_owned()));
    match log {
        Some(log) => Box::new(log::Tee { screen, log }),
        None => screen,
    }
}

fn screen(json: bool, progress: Progress, hosts: &[String], log: Option<std::path::PathBuf>) -> Box<dyn EventSink> {
    if json {
        return Box::new(JsonLines { log });
    }
    let fancy = match progress {
        Progress::Fancy => true,
        Progress::Plain => false,
        Progress::Auto => std::io::stderr().is_terminal(),
    };
    if fancy { Box::new(Bars::new(hosts)) } else { Box::new(PlainLines) }
}

/// Prints `text` on stderr for a person, above the hosts' lines when they
/// are drawn (they are redrawn below it).
pub fn say(text: &str) {
    tracing_indicatif::suspend_tracing_indicatif(|| {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{text}");
    });
}
