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
/// [`Event::StepStarted`] and [`Event::Line`]: only once a step began (what
/// comes before is cutover's own), each line as a terminal would leave it
/// (after its last carriage return, without escape sequences or control
/// characters), masked when the script had the secrets.
pub(super) async fn relayed<T>(
    ctx: &Context<'_>,
    host: &str,
    phase: Phase,
    secrets: bool,
    run: impl Future<Output = T>,
    mut lines: UnboundedReceiver<String>,
) -> T {
    let mut run = std::pin::pin!(run);
    let mut stepping = false;
    loop {
        tokio::select! {
            result = &mut run => return result,
            Some(line) = lines.recv() => {
                let mask = |l: &str| if secrets { ctx.secrets.mask(l).into_owned() } else { l.to_owned() };
                if let Some(event) = event_of(host, phase, &line, stepping, mask) {
                    stepping = true;
                    ctx.emit(event);
                }
            }
        }
    }
}

/// The event for one line of a script's stdout, if it is worth one:
/// a step's start, or (once `stepping`) what a step printed.
fn event_of(host: &str, phase: Phase, line: &str, stepping: bool, mask: impl Fn(&str) -> String) -> Option<Event> {
    let host = host.to_owned();
    if let Some(step) = line.strip_prefix(STEP_MARKER) {
        return Some(Event::StepStarted { host, phase, step: printable(step) });
    }
    if !stepping || line.starts_with(PROTOCOL) {
        return None;
    }
    // Masked as printed and as shown: escape codes must not split a secret.
    let line = mask(&printable(&mask(line)));
    (!line.trim().is_empty()).then(|| Event::Line { host, phase, line })
}

/// `text` as a terminal would leave it on one line: what follows its last
/// carriage return, without escape sequences or other control characters.
pub fn printable(text: &str) -> String {
    /// Longer is cut: a line on a screen, not a file.
    const MOST: usize = 2000;
    // Each line as a terminal leaves it: what follows its last carriage
    // return (a progress bar's last state); the lines then joined.
    let normalized = text.replace("\r\n", "\n");
    let lines: Vec<&str> = normalized
        .split('\n')
        .map(|line| line.rsplit('\r').find(|part| !part.trim().is_empty()).unwrap_or_default())
        .filter(|line| !line.trim().is_empty())
        .collect();
    let text = lines.join(" ");
    let mut out = String::with_capacity(text.len().min(MOST));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if out.len() >= MOST {
            break;
        }
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters, then a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC (a window title): up to BEL or ESC \.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                // A character set (`ESC ( B`, what `tput sgr0` prints): its letter.
                Some('(' | ')') => {
                    chars.next();
                }
                _ => {}
            },
            '\t' | '\n' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(line: &str, stepping: bool) -> Option<Event> {
        event_of("web1", Phase::Build, line, stepping, |l| l.replace("s3cret", "***"))
    }

    #[test]
    fn a_marker_starts_a_step_and_its_lines_are_shown_masked() {
        let step = seen("@@cutover-step composer", false);
        assert_eq!(
            step,
            Some(Event::StepStarted { host: "web1".into(), phase: Phase::Build, step: "composer".into() })
        );
        let line = seen("  - Installing laravel/framework (v8.83.27) with token s3cret", true);
        let expected = "  - Installing laravel/framework (v8.83.27) with token ***";
        assert_eq!(line, Some(Event::Line { host: "web1".into(), phase: Phase::Build, line: expected.into() }));
    }

    #[test]
    fn cutover_s_own_lines_and_what_comes_before_a_step_are_not_shown() {
        assert_eq!(seen("@@cutover-release 20261204T101010Z", true), None);
        assert_eq!(seen("exists 1", false), None, "a probe's line, before any step");
        assert_eq!(seen("   ", true), None);
    }

    #[test]
    fn a_line_is_shown_as_a_terminal_would_leave_it() {
        let line = |text: &str| match seen(text, true) {
            Some(Event::Line { line, .. }) => line,
            other => panic!("{other:?}"),
        };
        assert_eq!(line("\u{1b}[32mDownloading\u{1b}[0m 10%\rDownloading 100%"), "Downloading 100%");
        assert_eq!(line("\u{1b}]0;a title\u{7}\u{1b}[2Jcleared\u{7}"), "cleared");
        assert_eq!(line("tab\there"), "tab here");
        assert_eq!(printable("first\r\nsecond\n"), "first second");
        assert_eq!(line("\u{1b}(B\u{1b}[mplain"), "plain");
        assert_eq!(line(&"x".repeat(5000)).len(), 2000);
    }
}
