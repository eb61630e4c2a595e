//! Fancy progress: one bar per host, showing its phase, drawn through
//! tracing-indicatif so log lines never tear the bars.

use std::collections::HashMap;
use std::sync::Mutex;

use cutover_core::event::{Event, EventSink, HostState};
use indicatif::ProgressStyle;
use tracing::Span;
use tracing_indicatif::span_ext::IndicatifSpanExt;

/// How many phases a host goes through in a deploy, for the bar's length.
const PHASES: u64 = 9;

/// One bar per host.
#[derive(Debug)]
pub struct Bars {
    spans: Mutex<HashMap<String, Span>>,
}

impl Bars {
    pub fn new(hosts: &[String]) -> Self {
        let style = ProgressStyle::with_template("{span_name:.bold} {prefix:12} [{bar:20}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let spans = hosts
            .iter()
            .map(|host| {
                let span = tracing::info_span!("host");
                span.pb_set_style(&style);
                span.pb_set_length(PHASES);
                span.pb_set_message(&format!("{host}: waiting"));
                span.pb_start();
                (host.clone(), span)
            })
            .collect();
        Self { spans: Mutex::new(spans) }
    }
}

impl EventSink for Bars {
    fn emit(&self, event: Event) {
        let Ok(spans) = self.spans.lock() else { return };
        match &event {
            Event::Host { host, phase, state, step, .. } => {
                if let Some(span) = spans.get(host) {
                    let word = match state {
                        HostState::Started => "running",
                        HostState::Done => "done",
                        HostState::Failed => "FAILED",
                        HostState::Skipped => "skipped",
                    };
                    let step = step.as_ref().map(|s| format!(" ({s})")).unwrap_or_default();
                    span.pb_set_message(&format!("{host}: {phase}{step} {word}"));
                    if *state == HostState::Done {
                        span.pb_inc(1);
                    }
                }
            }
            Event::Switched { host, to, .. } => {
                if let Some(span) = spans.get(host) {
                    span.pb_set_message(&format!("{host}: current -> {to}"));
                }
            }
            other => {
                if let Some(text) = super::plain::line(other).filter(|_| !matches!(other, Event::PhaseStarted { .. })) {
                    tracing_indicatif::suspend_tracing_indicatif(|| {
                        use std::io::Write;
                        let _ = writeln!(std::io::stderr(), "{text}");
                    });
                }
            }
        }
    }
}
