//! The fleet benchmark: cutover against the floor (the same work done by a
//! plain script, one ssh per host, all in parallel) on 1, 10 and 25 real
//! hosts in containers. Not a test: it asserts nothing and prints figures.
//!
//! Run with `cargo bench -p cutover --bench fleet`. Settings: `BENCH_HOSTS`
//! (default `1,10,25`, up to 50), `BENCH_ROUNDS` (default 3). Each round
//! runs, interleaved: a fresh deploy (`--full-build`), the floor script's
//! deploy, a re-deploy with composer.lock unchanged, a rollback, the floor
//! script's rollback, and the SSH handshakes alone (`true` on every host). Every run is watched the same way, lightly (see
//! [`watch`]). Figures go to stdout and to `target/bench/fleet.json`.

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

#[path = "../tests/fleet/harness/mod.rs"]
#[allow(dead_code, unused_imports)]
mod harness;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cutover_core::release::ReleaseId;
use harness::{Fleet, GIT_DELIVERY};
use rustix::process::{Pid, WaitId, WaitIdOptions};
use serde_json::{Value, json};

fn main() {
    if !harness::docker_available("fleet benchmark") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("BENCH_HOSTS")
        .unwrap_or_else(|_| "1,10,25".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .map(|n: usize| n.clamp(1, 50))
        .collect();
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut all = Vec::new();
    for n in sizes {
        let result = runtime.block_on(bench(n, rounds));
        all.push(result);
    }
    let machine = json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "kernel": Command::new("uname").arg("-sr").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default(),
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let report = json!({ "machine": machine, "rounds": rounds, "sizes": all });
    std::fs::write(out.join("fleet.json"), serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("figures written to target/bench/fleet.json");
}

async fn bench(n: usize, rounds: usize) -> Value {
    let fleet = Fleet::start(n).await;
    fleet.write_inventory(&format!("{GIT_DELIVERY}keep_releases: 5\n"));
    measure(&fleet, &Run::Cutover(&["deploy", "--full-build"]));
    let mut runs: [Vec<Sample>; 6] = Default::default();
    let [fresh, floor, redeploy, rollback, floor_rollback, handshakes] = &mut runs;
    for round in 0..rounds {
        fleet.git().commit_version(&format!("fresh{round}"));
        fresh.push(measure(&fleet, &Run::Cutover(&["deploy", "--full-build"])));
        let commit = fleet.git().commit_version(&format!("floor{round}"));
        floor.push(measure(&fleet, &Run::FloorDeploy { commit }));
        fleet.git().commit_version(&format!("again{round}"));
        redeploy.push(measure(&fleet, &Run::Cutover(&["deploy"])));
        let live = fleet.current(0).expect("a live release");
        rollback.push(measure(&fleet, &Run::Cutover(&["rollback", "--yes"])));
        floor_rollback.push(measure(&fleet, &Run::FloorRollback { release: live }));
        handshakes.push(measure(&fleet, &Run::FloorConnect));
    }
    let mut value = report(n, &runs);
    if let Some(last_fresh) = runs[0].last().map(|s| &s.phases) {
        let text: Vec<String> = last_fresh.iter().map(|(p, s)| format!("{p} {s:.2}s")).collect();
        println!("phases of the last fresh deploy: {}", text.join(", "));
        value["deploy_fresh"]["phases_s"] = json!(last_fresh);
    }
    value
}

/// One measured run: cutover with these arguments, or the floor script.
enum Run<'a> {
    Cutover(&'a [&'a str]),
    FloorDeploy {
        commit: String,
    },
    /// Back to `release`, already on every host.
    FloorRollback {
        release: String,
    },
    /// Only the SSH handshakes: `true` on every host.
    FloorConnect,
}

impl Run<'_> {
    fn command(&self, fleet: &Fleet) -> Command {
        let floor = |mode: &str, release: &str| {
            let mut command = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/floor.sh"));
            command.arg(mode).arg(fleet.identity_file()).arg(fleet.known_hosts()).arg(release);
            command
        };
        let mut command = match self {
            Run::Cutover(args) => {
                let mut command = Command::new(env!("CARGO_BIN_EXE_cutover"));
                command.current_dir(fleet.project()).args(*args).args(["-i", "cutover.yaml", "--json"]);
                command
            }
            Run::FloorDeploy { commit } => {
                // A release id past every id on the hosts.
                let existing: Vec<ReleaseId> = fleet.releases(0).iter().filter_map(|r| r.parse().ok()).collect();
                let mut command = floor("deploy", &ReleaseId::choose(jiff::Timestamp::now(), &existing).to_string());
                command.arg(commit);
                command
            }
            Run::FloorRollback { release } => floor("rollback", release),
            Run::FloorConnect => floor("connect", "-"),
        };
        if !matches!(self, Run::Cutover(_)) {
            command.args(fleet.hosts.iter().map(|h| h.ssh_port.to_string()));
        }
        command.stderr(Stdio::null());
        command
    }

    /// What the command lines of the ssh processes a run starts contain:
    /// cutover's control directory, or the floor script's.
    fn ssh_marker(&self) -> &'static str {
        match self {
            Run::Cutover(_) => "/cutover-",
            Run::FloorDeploy { .. } | Run::FloorRollback { .. } | Run::FloorConnect => "/floor.",
        }
    }
}

/// One measured run.
#[derive(Clone, Debug, Default)]
struct Sample {
    wall: f64,
    round_trips_per_host: f64,
    skew_ms: Option<f64>,
    /// cutover's own CPU seconds (not the floor script's: its work is ssh's).
    cpu_s: Option<f64>,
    peak_rss_mib: Option<f64>,
    peak_ssh_rss_mib: Option<f64>,
    /// The seconds spent in each phase, in order (cutover only).
    phases: Vec<(String, f64)>,
}

/// Runs `run` to its end and reads what the hosts saw.
fn measure(fleet: &Fleet, run: &Run<'_>) -> Sample {
    let sessions = session_count(fleet);
    let mut sample = watch(run.command(fleet), run.ssh_marker());
    if !matches!(run, Run::Cutover(_)) {
        sample.cpu_s = None;
        sample.peak_rss_mib = None;
        sample.phases.clear();
    }
    sample.round_trips_per_host = (session_count(fleet) - sessions) as f64 / fleet.hosts.len() as f64;
    // A connect-only run switches nothing: the ctimes would be the last run's.
    sample.skew_ms = if matches!(run, Run::FloorConnect) { None } else { flip_skew_ms(fleet) };
    sample
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
fn watch(mut command: Command, ssh_marker: &'static str) -> Sample {
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
fn session_count(fleet: &Fleet) -> usize {
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
fn flip_skew_ms(fleet: &Fleet) -> Option<f64> {
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

fn stats(samples: &[Sample], pick: impl Fn(&Sample) -> Option<f64>) -> Value {
    let mut values: Vec<f64> = samples.iter().filter_map(pick).collect();
    if values.is_empty() {
        return Value::Null;
    }
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    json!({ "median": median, "min": values[0], "max": values[values.len() - 1] })
}

fn report(n: usize, runs: &[Vec<Sample>; 6]) -> Value {
    let [fresh, floor, redeploy, rollback, floor_rollback, handshakes] = runs;
    let wall = |s: &[Sample]| stats(s, |x| Some(x.wall));
    let trips = |s: &[Sample]| stats(s, |x| Some(x.round_trips_per_host));
    let median = |v: &Value| v["median"].as_f64().unwrap_or(f64::NAN);
    let ratio = |a: &[Sample], b: &[Sample]| median(&wall(a)) / median(&wall(b));
    let value = json!({
        "hosts": n,
        "deploy_fresh": { "wall_s": wall(fresh), "round_trips_per_host": trips(fresh),
                          "flip_skew_ms": stats(fresh, |x| x.skew_ms),
                          "cpu_s_per_host": stats(fresh, |x| x.cpu_s.map(|c| c / n as f64)),
                          "peak_rss_mib": stats(fresh, |x| x.peak_rss_mib),
                          "peak_ssh_rss_mib": stats(fresh, |x| x.peak_ssh_rss_mib) },
        "floor": { "wall_s": wall(floor), "round_trips_per_host": trips(floor),
                   "flip_skew_ms": stats(floor, |x| x.skew_ms), "peak_ssh_rss_mib": stats(floor, |x| x.peak_ssh_rss_mib) },
        "redeploy_same_lock": { "wall_s": wall(redeploy), "round_trips_per_host": trips(redeploy) },
        "rollback": { "wall_s": wall(rollback), "round_trips_per_host": trips(rollback),
                      "cpu_s_per_host": stats(rollback, |x| x.cpu_s.map(|c| c / n as f64)) },
        "floor_rollback": { "wall_s": wall(floor_rollback), "round_trips_per_host": trips(floor_rollback) },
        "ssh_handshakes": { "wall_s": wall(handshakes) },
        "ratio_fresh_to_floor": ratio(fresh, floor),
        "ratio_redeploy_to_floor": ratio(redeploy, floor),
        "ratio_rollback_to_floor_rollback": ratio(rollback, floor_rollback),
    });
    print_size(&value);
    value
}

fn print_size(v: &Value) {
    let f = |x: &Value| x["median"].as_f64().map_or("-".to_owned(), |m| format!("{m:.3}"));
    let spread = |x: &Value| match (x["min"].as_f64(), x["max"].as_f64()) {
        (Some(a), Some(b)) => format!("{a:.3}..{b:.3}"),
        _ => "-".into(),
    };
    println!("\n== {} host(s) ==", v["hosts"]);
    for (name, key) in [
        ("deploy (fresh)", "deploy_fresh"),
        ("floor script", "floor"),
        ("re-deploy", "redeploy_same_lock"),
        ("rollback", "rollback"),
        ("floor rollback", "floor_rollback"),
        ("ssh handshakes", "ssh_handshakes"),
    ] {
        let r = &v[key];
        println!(
            "{name:15} wall median {:>7}s  spread {:>15}s  round trips/host {:>5}",
            f(&r["wall_s"]),
            spread(&r["wall_s"]),
            f(&r["round_trips_per_host"]),
        );
    }
    let d = &v["deploy_fresh"];
    let ratio = |key: &str| v[key].as_f64().unwrap_or(f64::NAN);
    println!(
        "ratio cutover/floor: fresh {:.3}, re-deploy {:.3}, rollback {:.3}",
        ratio("ratio_fresh_to_floor"),
        ratio("ratio_redeploy_to_floor"),
        ratio("ratio_rollback_to_floor_rollback"),
    );
    println!(
        "flip skew ms: cutover {}, floor {}; cutover CPU s/host {}; peak RSS cutover {} MiB, its ssh masters {} MiB",
        f(&d["flip_skew_ms"]),
        f(&v["floor"]["flip_skew_ms"]),
        f(&d["cpu_s_per_host"]),
        f(&d["peak_rss_mib"]),
        f(&d["peak_ssh_rss_mib"]),
    );
}
