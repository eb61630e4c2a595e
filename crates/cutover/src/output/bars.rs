//! Fancy progress, for a person at a terminal: one line per host while a
//! run is in progress, with its phase, its current step, how long the phase
//! has run and the last line the step printed (composer's current package,
//! say). A failed host's line turns red and stays; every line gives way to
//! the summary at the end. Drawn through tracing-indicatif (one span per
//! host), so log lines and warnings never tear the lines.

use std::collections::HashMap;
use std::sync::Mutex;

use cutover_core::engine::printable;
use cutover_core::event::{Event, EventSink, HostState, Phase};
use indicatif::{ProgressState, ProgressStyle};
use tracing::Span;
use tracing_indicatif::span_ext::IndicatifSpanExt;

/// The tracing target of the hosts' spans: the only spans drawn as lines.
pub const TARGET: &str = "cutover::progress";

/// How many hosts have a line; the rest are counted below them, and a
/// failure of one of them is printed above the lines.
pub const LINES: u64 = 24;

/// The line under the hosts' lines when there are more hosts than lines.
pub fn more_hosts() -> ProgressStyle {
    ProgressStyle::with_template("  ...and {pending_progress_bars} more host(s)")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// The styles of one host's line, by what the host is doing; `{host}` is
/// its name, padded to the longest.
struct Styles {
    running: ProgressStyle,
    idle: ProgressStyle,
    failed: ProgressStyle,
}

impl Styles {
    fn of(host: &str, width: usize) -> Self {
        let name = format!("{host:width$}");
        let style = |template: &str| {
            let name = name.clone();
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner()).with_key(
                "host",
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&name);
                },
            )
        };
        Self {
            running: style("{spinner:.cyan} {host:.bold} {elapsed:>4} {wide_msg}"),
            idle: style("  {host:.bold}      {wide_msg}"),
            failed: style("✗ {host:.red.bold}      {wide_msg:.red}"),
        }
    }
}

impl std::fmt::Debug for Styles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Styles").finish_non_exhaustive()
    }
}

/// What one host's line shows.
#[derive(Debug)]
struct HostLine {
    span: Span,
    styles: Styles,
    phase: Option<Phase>,
    step: Option<String>,
    failed: bool,
    /// Whether it has a line on the screen (the first [`LINES`] hosts).
    drawn: bool,
}

impl HostLine {
    fn new(host: &str, width: usize, drawn: bool) -> Self {
        let styles = Styles::of(host, width);
        let span = tracing::info_span!(target: TARGET, "host");
        span.pb_set_style(&styles.idle);
        let line = Self { span, styles, phase: None, step: None, failed: false, drawn };
        line.show("");
        line.span.pb_start();
        line
    }

    /// Its phase, its step, then `text`.
    fn show(&self, text: &str) {
        let phase = self.phase.map(|p| p.to_string()).unwrap_or_else(|| "waiting".into());
        let step = self.step.as_deref().map(|s| format!(" › {s}")).unwrap_or_default();
        let text = if text.is_empty() { String::new() } else { format!("  {text}") };
        self.span.pb_set_message(&format!("{phase}{step}{text}"));
    }

    /// The host's state in a phase changed.
    fn change(&mut self, phase: Phase, state: HostState, error: Option<&str>, tail: Option<&str>) {
        if self.failed {
            return;
        }
        self.phase = Some(phase);
        match state {
            HostState::Started => {
                self.step = None;
                self.span.pb_set_style(&self.styles.running);
                self.span.pb_reset_elapsed();
                self.show("");
            }
            HostState::Done | HostState::Skipped => {
                self.step = None;
                self.span.pb_set_style(&self.styles.idle);
                self.show(if state == HostState::Done { "done" } else { "skipped" });
            }
            HostState::Failed => {
                self.failed = true;
                self.span.pb_set_style(&self.styles.failed);
                let error = printable(error.unwrap_or("unknown error"));
                // What the failing step said last, when it said anything.
                let last = tail.and_then(|t| t.lines().rev().map(printable).find(|l| !l.trim().is_empty()));
                match last {
                    Some(last) => self.show(&format!("FAILED: {error}: {}", last.trim())),
                    None => self.show(&format!("FAILED: {error}")),
                }
            }
        }
    }
}

/// One line per host.
#[derive(Debug)]
pub struct Bars {
    hosts: Mutex<HashMap<String, HostLine>>,
}

impl Bars {
    pub fn new(hosts: &[String]) -> Self {
        let width = hosts.iter().map(|h| h.chars().count()).max().unwrap_or(0);
        let lines = hosts
            .iter()
            .enumerate()
            .map(|(i, host)| (host.clone(), HostLine::new(host, width, (i as u64) < LINES)))
            .collect();
        Self { hosts: Mutex::new(lines) }
    }
}

impl EventSink for Bars {
    fn emit(&self, event: Event) {
        let Ok(mut hosts) = self.hosts.lock() else { return };
        match &event {
            Event::Host { host, phase, state, error, output_tail, .. } => {
                if let Some(line) = hosts.get_mut(host) {
                    line.change(*phase, *state, error.as_deref(), output_tail.as_deref());
                    if *state == HostState::Failed && !line.drawn {
                        print_above(&event);
                    }
                }
            }
            Event::StepStarted { host, step, .. } => {
                if let Some(line) = hosts.get_mut(host).filter(|l| !l.failed) {
                    line.step = Some(step.clone());
                    line.show("");
                }
            }
            Event::Line { host, line: text, .. } => {
                if let Some(line) = hosts.get(host).filter(|l| !l.failed) {
                    line.show(text.trim());
                }
            }
            Event::Switched { host, to, .. } => {
                if let Some(line) = hosts.get(host).filter(|l| !l.failed) {
                    line.show(&format!("current -> {to}"));
                }
            }
            Event::Summary(_) => {
                // The lines give way to the summary.
                hosts.clear();
            }
            Event::PhaseStarted { .. } => {}
            other => print_above(other),
        }
    }
}

/// The plain line of `event`, printed above the hosts' lines.
fn print_above(event: &Event) {
    if let Some(text) = super::plain::line(event) {
        super::say(&text);
    }
}
