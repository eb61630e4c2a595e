//! Running the `cutover` binary in a project directory, with plain progress,
//! a time limit, and its `--json` events parsed.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// How long one `cutover` run may take before the test kills it.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// `cutover --progress=plain <args>` in `dir`, started with piped output
/// (the flag first: `run -- ...` takes every word after `--`). The
/// project's `bin/` comes first in its PATH (see [`super::Fleet::trace_ssh`]).
pub fn spawn_cutover(dir: &Path, args: &[&str]) -> Child {
    let path = format!("{}:{}", dir.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(dir)
        .env("PATH", path)
        .arg("--progress=plain")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cutover")
}

/// `cutover <args> --progress=plain` in `dir`; killed after five minutes.
pub fn cutover(dir: &Path, args: &[&str]) -> Output {
    wait_limited(spawn_cutover(dir, args), args)
}

/// Waits for a child started by [`spawn_cutover`], killing it (by its pid)
/// if it outlives [`RUN_LIMIT`].
pub fn wait_limited(child: Child, args: &[&str]) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(RUN_LIMIT) {
        Ok(out) => out.expect("wait for cutover"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("cutover {args:?} (pid {pid}) ran longer than {RUN_LIMIT:?}; killed");
        }
    }
}

/// `cutover <args> --json` in `dir`: exit code, events, and all the text
/// (stderr then stdout) for messages.
pub fn cutover_json(dir: &Path, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = cutover(dir, &all);
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (out.status.code(), events, text(&out))
}

/// The summary event (the last line of `--json`).
pub fn summary(events: &[Value]) -> &Value {
    let last = events.last().expect("at least one event");
    assert_eq!(last["event"], "summary", "last event is the summary: {last}");
    last
}

/// Everything a run printed: stderr, then stdout.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout))
}

/// `cutover <args> --json --progress=plain` running in the background, its
/// events read as they come, so a test can act at a given point of the run.
#[derive(Debug)]
pub struct LiveRun {
    child: Child,
    args: Vec<String>,
    events: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl LiveRun {
    /// Starts `cutover <args> --json` in `dir`.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        use std::io::{BufRead, BufReader, Read};
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        let mut child = spawn_cutover(dir, &all);
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("piped stdout");
        let seen = std::sync::Arc::clone(&events);
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                text.push_str(&line);
                text.push('\n');
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    seen.lock().expect("events").push(value);
                }
            }
            text
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        let args = all.iter().map(|a| (*a).to_owned()).collect();
        Self { child, args, events, stdout: Some(stdout), stderr: Some(stderr) }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The events so far.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().expect("events").clone()
    }

    /// Waits (at most `limit`) for an event matching `pred`; returns it.
    pub fn wait_for(&mut self, what: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let start = std::time::Instant::now();
        loop {
            if let Some(found) = self.events().into_iter().find(|e| pred(e)) {
                return found;
            }
            let exited = self.child.try_wait().expect("poll cutover").is_some();
            assert!(!exited, "cutover {:?} exited before {what}: {:#?}", self.args, self.events());
            assert!(start.elapsed() < limit, "no {what} within {limit:?}: {:#?}", self.events());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` (e.g. `INT`) to the process, by its pid.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().expect("kill");
        assert!(status.success(), "kill -{signal} {}", self.pid());
    }

    /// Waits for the end (killing it after [`RUN_LIMIT`]): exit code, every
    /// event, and all the text printed (stderr, then stdout).
    pub fn finish(mut self) -> (Option<i32>, Vec<Value>, String) {
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll cutover") {
                break status;
            }
            if start.elapsed() > RUN_LIMIT {
                let _ = self.child.kill();
                panic!("cutover {:?} (pid {}) ran longer than {RUN_LIMIT:?}; killed", self.args, self.pid());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = self.stdout.take().map(|t| t.join().expect("stdout reader")).unwrap_or_default();
        let stderr = self.stderr.take().map(|t| t.join().expect("stderr reader")).unwrap_or_default();
        (status.code(), self.events(), format!("{stderr}{stdout}"))
    }
}

/// The failure event of `host`: its error and its output tail.
pub fn failure_of<'a>(events: &'a [Value], host: &str) -> (&'a str, &'a str) {
    let event = events
        .iter()
        .find(|e| e["event"] == "host" && e["host"] == host && e["state"] == "failed")
        .unwrap_or_else(|| panic!("no failure event for {host}: {events:#?}"));
    (event["error"].as_str().unwrap_or_default(), event["output_tail"].as_str().unwrap_or_default())
}
