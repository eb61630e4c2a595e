//! What a host's script is doing while it runs, for the person watching:
//! each step it enters and each line it prints become events as they
//! happen, while the script's whole output still arrives at its end.

use std::future::Future;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::event::{Event, Phase};
use crate::remote::steps::STEP_MARKER;

use super::Context;

/// The start of every line cutover's own scripts print for cutover to read.
pub(super) const PROTOCOL: &str = "@@cutover-";

/// Awaits `run` while relaying the `lines` its script prints as
/// [`Event::StepStarted`] and [`Event::Line`]. A script that had the
/// secrets has each line masked before anything sees it.
pub(super) async fn relayed<T>(
    ctx: &Context<'_>,
    host: &str,
    phase: Phase,
    secrets: bool,
    run: impl Future<Output = T>,
    mut lines: UnboundedReceiver<String>,
) -> T {
    let mut run = std::pin::pin!(run);
    loop {
        tokio::select! {
            result = &mut run => return result,
            Some(line) = lines.recv() => {
                let mask = |l: &str| if secrets { ctx.secrets.mask(l).into_owned() } else { l.to_owned() };
                if let Some(event) = event_of(host, phase, &line, mask) {
                    ctx.emit(event);
                }
            }
        }
    }
}

/// The event for one line of a script's stdout, if it is worth one.
fn event_of(host: &str, phase: Phase, line: &str, mask: impl Fn(&str) -> String) -> Option<Event> {
    let host = host.to_owned();
    if let Some(step) = line.strip_prefix(STEP_MARKER) {
        return Some(Event::StepStarted { host, phase, step: step.to_owned() });
    }
    if line.starts_with(PROTOCOL) || line.trim().is_empty() {
        return None;
    }
    Some(Event::Line { host, phase, line: mask(line.trim_end()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(line: &str) -> Option<Event> {
        event_of("web1", Phase::Build, line, |l| l.replace("s3cret", "***"))
    }

    #[test]
    fn a_marker_starts_a_step_and_other_lines_are_shown_masked() {
        let step = seen("@@cutover-step composer");
        assert_eq!(
            step,
            Some(Event::StepStarted { host: "web1".into(), phase: Phase::Build, step: "composer".into() })
        );
        let line = seen("  - Installing laravel/framework (v8.83.27) with token s3cret");
        let expected = "  - Installing laravel/framework (v8.83.27) with token ***";
        assert_eq!(line, Some(Event::Line { host: "web1".into(), phase: Phase::Build, line: expected.into() }));
    }

    #[test]
    fn protocol_lines_and_blank_lines_are_not_shown() {
        assert_eq!(seen("@@cutover-release 20261204T101010Z"), None);
        assert_eq!(seen("   "), None);
    }
}
