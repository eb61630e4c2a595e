//! Running the `cutover` binary in a project directory, with plain progress,
//! a time limit, and its `--json` events parsed.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// How long one `cutover` run may take before the test kills it.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// `cutover <args> --progress=plain` in `dir`, started with piped output.
pub fn spawn_cutover(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(dir)
        .args(args)
        .arg("--progress=plain")
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
    let mut all = args.to_vec();
    all.push("--json");
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
