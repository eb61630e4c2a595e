//! How the fleet benchmark watches a run from outside, the same way for
//! cutover and for the floor: wall time, its CPU and peak memory and that of
//! its ssh processes, its phases (from `--json`), SSH sessions the hosts'
//! sshd started, and the skew of the flips.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, WaitId, WaitIdOptions};
use serde_json::{Value, json};

use crate::harness::Fleet;

/// One measured run.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub wall: f64,
    pub round_trips_per_host: f64,
    pub skew_ms: Option<f64>,
    /// cutover's own CPU seconds (not the floor script's: its work is ssh's).
    pub cpu_s: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    pub peak_ssh_rss_mib: Option<f64>,
    /// The seconds spent in each phase, in order (cutover only).
    pub phases: Vec<(String, f64)>,
}

/// How often the watcher reads the process's memory, and every how many
/// reads it also looks for its ssh processes (a walk of all of `/proc`).
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
const SSH_SCAN_EVERY: u32 = 5;

/// Runs `command`, watching it from outside as lightly as it can and the
/// same way for cutover and for the floor, so that neither pays more for
/// being measured: its peak memory and that of its ssh processes, sampled;
/// its own CPU, read exactly once it has exited but before it is reaped;
/// and, from its `--json` events, the time of each phase.
pub fn watch(mut command: Command, ssh_marker: &'static str) -> Sample {
    let started = Instant::now();
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let phases = std::thread::spawn(move || phase_times(stdout, started));
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut peak, mut peak_ssh) = (0.0f64, 0.0f64);
            for tick in 0u32.. {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                peak = peak.max(rss_mib(pid, "VmHWM").unwrap_or(0.0));
                if tick % SSH_SCAN_EVERY == 0 {
                    peak_ssh = peak_ssh.max(ssh_rss_mib(ssh_marker));
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
            (peak, peak_ssh)
        })
    };
    // Exited, not yet reaped: /proc still has its CPU times.
    let exited = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
    rustix::process::waitid(WaitId::Pid(Pid::from_child(&child)), exited).unwrap();
    let wall = started.elapsed().as_secs_f64();
    let cpu_s = process_cpu(pid);
    let status = child.wait().unwrap();
    done.store(true, Ordering::Relaxed);
    let (peak, peak_ssh) = sampler.join().unwrap();
    assert!(status.success(), "{command:?} failed");
    let phases = phases.join().unwrap_or_default();
    Sample { wall, cpu_s, peak_rss_mib: Some(peak), peak_ssh_rss_mib: Some(peak_ssh), phases, ..Sample::default() }
}

/// Reads cutover's events as they come; a phase lasts until the next starts.
fn phase_times(stdout: std::process::ChildStdout, started: Instant) -> Vec<(String, f64)> {
    use std::io::BufRead;
    let mut marks: Vec<(String, f64)> = Vec::new();
    for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
        let at = started.elapsed().as_secs_f64();
        let Ok(event) = serde_json::from_str::<Value>(&line) else { continue };
        match event["event"].as_str() {
            Some("phase_started") => marks.push((event["phase"].as_str().unwrap_or("?").to_owned(), at)),
            Some("summary") => marks.push(("end".to_owned(), at)),
            _ => {}
        }
    }
    marks.windows(2).map(|w| (w[0].0.clone(), w[1].1 - w[0].1)).collect()
}

/// SSH sessions each host's sshd has started (its log, at LogLevel VERBOSE).
pub fn session_count(fleet: &Fleet) -> usize {
    fleet
        .hosts
        .iter()
        .map(|h| {
            let out = Command::new("docker").args(["logs", h.container.id()]).output().unwrap();
            let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
            text.lines().filter(|l| l.contains("Starting session:")).count()
        })
        .sum()
}

/// Last rename of `current` minus the first, across the fleet, from each
/// host's ctime of `current` (the containers share this machine's clock).
pub fn flip_skew_ms(fleet: &Fleet) -> Option<f64> {
    let times: Vec<f64> = (0..fleet.hosts.len())
        .filter_map(|i| {
            let (_, out) = fleet.exec(i, "stat -c %.9Z /var/www/app/current");
            out.trim().parse::<f64>().ok()
        })
        .collect();
    let max = times.iter().copied().fold(f64::MIN, f64::max);
    let min = times.iter().copied().fold(f64::MAX, f64::min);
    (times.len() == fleet.hosts.len()).then_some((max - min) * 1000.0)
}

/// CPU seconds a running process has used itself (Linux: utime + stime).
fn process_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn rss_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

/// The resident memory of the ssh processes whose command line names
/// `marker` (the run's own control directory).
fn ssh_rss_mib(marker: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.starts_with("ssh\0") && cmdline.contains(marker)
        })
        .filter_map(|pid| rss_mib(pid, "VmRSS"))
        .sum()
}

pub fn stats(samples: &[Sample], pick: impl Fn(&Sample) -> Option<f64>) -> Value {
    let mut values: Vec<f64> = samples.iter().filter_map(pick).collect();
    if values.is_empty() {
        return Value::Null;
    }
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    json!({ "median": median, "min": values[0], "max": values[values.len() - 1] })
}
