//! Plain progress: one timestamped line per notable event on stderr, for CI
//! logs and pipes.

use std::io::Write;

use cutover_core::event::{Event, EventSink, HostState};

/// Writes timestamped lines on stderr.
#[derive(Debug, Default)]
pub struct PlainLines;

impl EventSink for PlainLines {
    fn emit(&self, event: Event) {
        let Some(text) = line(&event) else { return };
        let now = jiff::Zoned::now().strftime("%H:%M:%S");
        let _ = writeln!(std::io::stderr().lock(), "{now} {text}");
    }
}

/// The line for an event, or `None` for events not worth a line.
pub(crate) fn line(event: &Event) -> Option<String> {
    Some(match event {
        Event::RunStarted { command, application, hosts } => {
            let command = format!("{command:?}").to_lowercase();
            format!("{command} of {application} on {} host(s): {}", hosts.len(), hosts.join(", "))
        }
        Event::ReleaseChosen { release, commit } => format!("release {release}, commit {commit}"),
        Event::PhaseStarted { phase, hosts } => format!("{phase} on {} host(s)", hosts.len()),
        Event::Host { host, phase, state: HostState::Failed, step, error, output_tail, .. } => {
            let step = step.as_ref().map(|s| format!(" (step `{s}`)")).unwrap_or_default();
            let mut text = format!("{host}: {phase}{step} failed: {}", error.as_deref().unwrap_or("unknown error"));
            if let Some(tail) = output_tail {
                for l in tail.lines() {
                    text.push_str(&format!("\n    | {l}"));
                }
            }
            text
        }
        Event::Host { host, phase, state: HostState::Done, duration_ms, .. } => {
            format!("{host}: {phase} done in {} ms", duration_ms.unwrap_or(0))
        }
        Event::Host { .. } => return None,
        Event::Gate { name, passed: true, .. } => format!("gate passed: {name}"),
        Event::Gate { name, failed, .. } => {
            format!("gate failed: {name} (failed: {})", failed.join(", "))
        }
        Event::Switched { host, from, to, .. } => {
            format!("{host}: current {} -> {to}", from.as_deref().unwrap_or("(none)"))
        }
        Event::BatchStarted { batch, hosts } => format!("batch {batch}: {}", hosts.join(", ")),
        Event::Health { host, passed: true, detail } => format!("{host}: healthy ({detail})"),
        Event::Health { host, detail, .. } => format!("{host}: UNHEALTHY: {detail}"),
        Event::Warning { host, message } => match host {
            Some(host) => format!("warning: {host}: {message}"),
            None => format!("warning: {message}"),
        },
        Event::Summary(_) | Event::Output { .. } | Event::StepStarted { .. } | Event::Line { .. } => return None,
    })
}
