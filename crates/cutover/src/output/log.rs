//! The run's log file, kept where cutover runs: every event as a
//! timestamped line, and everything each host's scripts printed, whole.
//! The screen shows the tail of a failure; the log has the rest, and a
//! failed run names it. Logs live in `.cutover/logs/` next to the
//! inventory; the newest [`KEEP`] are kept.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cutover_core::event::{Event, EventSink};

/// How many logs are kept.
const KEEP: usize = 50;

/// One run's log file.
#[derive(Debug)]
pub struct RunLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl RunLog {
    /// Creates the log of a `command` run with the inventory at `inventory`.
    pub fn create(inventory: &Path, command: &str) -> std::io::Result<Self> {
        let project = inventory.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let dir = std::path::absolute(project)?.join(".cutover/logs");
        // The whole output of every script: the user's alone.
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        prune(&dir);
        let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
        let path = dir.join(format!("{stamp}-{command}-{}.log", std::process::id()));
        let file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
        Ok(Self { path, file: Mutex::new(file) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, text: &str) {
        if let Ok(mut file) = self.file.lock() {
            // A full disk must not stop a deploy.
            let _ = file.write_all(text.as_bytes());
        }
    }
}

impl EventSink for RunLog {
    fn emit(&self, event: Event) {
        let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ");
        let text = match &event {
            Event::Output { host, phase, exit_code, stdout, stderr } => {
                let code = exit_code.map_or("no exit code".to_owned(), |c| format!("exit code {c}"));
                let mut text = format!("{now} {host}: {phase} script ended ({code})\n");
                for (stream, content) in [("stdout", stdout), ("stderr", stderr)] {
                    for line in content.lines() {
                        text.push_str(&format!("    {host} {stream} | {line}\n"));
                    }
                }
                text
            }
            Event::Summary(summary) => {
                format!("{now} summary: {}\n", serde_json::to_string(summary).unwrap_or_default())
            }
            other => match super::plain::line(other) {
                Some(line) => format!("{now} {line}\n"),
                None => return,
            },
        };
        self.write(&text);
    }
}

/// Removes all but the newest logs (their names sort by time).
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut logs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    let excess = logs.len().saturating_sub(KEEP - 1);
    for old in &logs[..excess] {
        let _ = std::fs::remove_file(old);
    }
}

/// Sends each event to the screen's sink and to the run's log.
pub struct Tee {
    pub screen: Box<dyn EventSink>,
    pub log: RunLog,
}

impl EventSink for Tee {
    fn emit(&self, event: Event) {
        self.log.emit(event.clone());
        self.screen.emit(event);
    }
}
