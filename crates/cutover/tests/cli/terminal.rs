//! A person at a terminal: cutover runs under a pseudo-terminal, as in
//! tmux or an ssh session, with `--progress auto`. While a slow build step
//! runs, every host has a line on the screen with its phase, its step and
//! the last line the step printed; a failed host's line says so; the lines
//! give way to the summary.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

use crate::harness::{HOSTS, Project};

/// The terminal's width.
const COLUMNS: usize = 120;

/// A build step that says what it installs, then waits for the test's go
/// (a file), so the run cannot end before the screen was read.
fn slow_build(go: &std::path::Path, fails_on: &str) -> String {
    format!(
        "hooks:\n  build:\n    - name: slow composer\n      timeout: 60\n      run: |\n        \
         echo \"  - Installing laravel/framework (v8.83.27) on $CUTOVER_HOST\"\n        \
         while [ ! -e '{}' ]; do sleep 0.1; done\n        \
         if [ \"$CUTOVER_HOST\" = '{fails_on}' ]; then echo 'Your lock file does not contain a compatible set'; exit 2; fi\n",
        go.display()
    )
}

/// `cutover <args>` in `project`, its stdin, stdout and stderr a new
/// pseudo-terminal of [`COLUMNS`] columns; what it draws, as it draws it.
fn under_a_terminal(project: &Project, args: &[&str]) -> (Child, Arc<Mutex<Vec<u8>>>) {
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&controller).expect("grantpt");
    unlockpt(&controller).expect("unlockpt");
    let name = ptsname(&controller, Vec::new()).expect("ptsname");
    let terminal: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().expect("a path"))
        .expect("open the terminal")
        .into();
    let size = rustix::termios::Winsize { ws_row: 40, ws_col: COLUMNS as u16, ws_xpixel: 0, ws_ypixel: 0 };
    rustix::termios::tcsetwinsize(&terminal, size).expect("window size");
    let stdio = || Stdio::from(terminal.try_clone().expect("dup"));
    let child = Command::cargo_bin("cutover")
        .expect("binary")
        .current_dir(project.path())
        .args(args)
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .stdin(stdio())
        .stdout(stdio())
        .stderr(stdio())
        .spawn()
        .expect("starts");
    // Only the child holds the terminal now: its end is the screen's end.
    drop(terminal);
    let screen = Arc::new(Mutex::new(Vec::new()));
    let mut reader = std::fs::File::from(controller);
    let drawn = Arc::clone(&screen);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        // EIO once the terminal's last holder exited.
        while let Ok(read) = reader.read(&mut chunk).map_err(|_| ()).and_then(|n| if n == 0 { Err(()) } else { Ok(n) })
        {
            drawn.lock().expect("screen").extend_from_slice(&chunk[..read]);
        }
    });
    (child, screen)
}

/// What was drawn, without the terminal's escape sequences.
fn text(screen: &Mutex<Vec<u8>>) -> String {
    let raw = String::from_utf8_lossy(&screen.lock().expect("screen")).into_owned();
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            // Up to and with the final byte of a control sequence; a
            // colour is dropped, a move of the cursor ends a line.
            let end = chars.by_ref().find(char::is_ascii_alphabetic);
            if end != Some('m') {
                out.push('\n');
            }
        } else if c == '\r' {
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits until `seen` holds for what was drawn (or panics after 60 s).
fn wait_for(screen: &Mutex<Vec<u8>>, what: &str, seen: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let drawn = text(screen);
        if seen(&drawn) {
            return drawn;
        }
        assert!(Instant::now() < deadline, "never drawn: {what}\n{drawn}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The rows of the screen that start with `head`: what follows each time
/// it was drawn, as far as a row of the terminal reaches (the lines are
/// padded to the terminal's width rather than ended).
fn rows<'a>(drawn: &'a str, head: &'a str) -> impl Iterator<Item = String> + 'a {
    drawn.match_indices(head).map(|(at, _)| drawn[at..].chars().take(COLUMNS).collect())
}

/// Whether some row of the screen shows `host` in its build's step with
/// the step's last line.
fn host_line(drawn: &str, host: &str) -> bool {
    rows(drawn, &format!("{host} ")).any(|row| {
        row.contains("build › slow composer")
            && row.contains(&format!("Installing laravel/framework (v8.83.27) on {host}"))
    })
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "cutover did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn each_host_has_a_line_with_its_phase_step_and_output_while_it_builds() {
    let project = Project::new("");
    let go = project.path().join("go");
    project.write_inventory(&slow_build(&go, "none"));
    let (mut child, screen) = under_a_terminal(&project, &["deploy", "--progress", "auto"]);
    wait_for(&screen, "every host's build line", |d| HOSTS.iter().all(|h| host_line(d, h)));
    assert!(child.try_wait().expect("wait").is_none(), "the run is still waiting for its build");
    std::fs::write(&go, "").expect("go");
    let status = wait_exit(&mut child);
    let after = wait_for(&screen, "the summary", |d| d.contains("deployed release"));
    assert!(status.success(), "{after}");
    let summary = after.rfind("deployed release").expect("summary");
    assert!(after[summary..].lines().any(|l| l.trim_start().starts_with("web1 ")), "the summary's table: {after}");
    assert!(!after[summary..].contains("slow composer"), "the lines gave way to the summary: {after}");
}

#[test]
fn a_failed_host_stands_out_on_its_line() {
    let project = Project::new("");
    let go = project.path().join("go");
    project.write_inventory(&slow_build(&go, "web2"));
    let (mut child, screen) = under_a_terminal(&project, &["deploy"]);
    wait_for(&screen, "every host's build line", |d| HOSTS.iter().all(|h| host_line(d, h)));
    std::fs::write(&go, "").expect("go");
    let drawn = wait_for(&screen, "web2 failed", |d| {
        rows(d, "✗ web2").any(|row| {
            row.contains("build › slow composer") && row.contains("FAILED") && row.contains("Your lock file")
        })
    });
    let status = wait_exit(&mut child);
    assert!(!status.success(), "{drawn}");
    let raw = String::from_utf8_lossy(&screen.lock().expect("screen")).into_owned();
    // Red: the failed line's colour (SGR 31).
    assert!(raw.contains("\x1b[31m"), "the failed line is not red: {raw:?}");
}
