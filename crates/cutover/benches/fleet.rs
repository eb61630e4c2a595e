//! The fleet benchmark: cutover against the floor (the same work done by a
//! plain script, one ssh per host, all in parallel) on 1, 10 and 25 real
//! hosts in containers. Not a test: it asserts nothing and prints figures.
//!
//! Run with `cargo bench -p cutover --bench fleet`. Settings: `BENCH_HOSTS`
//! (default `1,10,25`, up to 50), `BENCH_ROUNDS` (default 3). Each round
//! runs, interleaved: a fresh deploy (`--full-build`), the floor script, a
//! re-deploy with composer.lock unchanged, and a rollback. Figures go to
//! stdout and to `target/bench/fleet.json`.

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

#[path = "../tests/fleet/harness/mod.rs"]
#[allow(dead_code, unused_imports)]
mod harness;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutover_core::release::ReleaseId;
use harness::{Fleet, GIT_DELIVERY};
use serde_json::{Value, json};

/// One measured run.
#[derive(Clone, Debug, Default)]
struct Sample {
    wall: f64,
    round_trips_per_host: f64,
    skew_ms: Option<f64>,
    cpu_s: Option<f64>,
    peak_rss_mib: Option<f64>,
    peak_ssh_rss_mib: Option<f64>,
}

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
    cutover(&fleet, &["deploy", "--full-build"]);
    let (mut fresh, mut floor, mut redeploy, mut rollback) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        fleet.git().commit_version(&format!("fresh{round}"));
        fresh.push(measure(&fleet, || cutover(&fleet, &["deploy", "--full-build"])));
        let commit = fleet.git().commit_version(&format!("floor{round}"));
        floor.push(measure(&fleet, || floor_script(&fleet, &commit)));
        fleet.git().commit_version(&format!("again{round}"));
        redeploy.push(measure(&fleet, || cutover(&fleet, &["deploy"])));
        rollback.push(measure(&fleet, || cutover(&fleet, &["rollback", "--yes"])));
    }
    let phases = PHASES.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let mut value = report(n, &fresh, &floor, &redeploy, &rollback);
    // After the warm-up, each round runs cutover three times: fresh, re-deploy, rollback.
    if let Some(last_fresh) = phases.iter().skip(1).step_by(3).next_back() {
        let text: Vec<String> = last_fresh.iter().map(|(p, s)| format!("{p} {s:.2}s")).collect();
        println!("phases of the last fresh deploy: {}", text.join(", "));
        value["deploy_fresh"]["phases_s"] = json!(last_fresh);
    }
    value
}

/// Runs `cutover` in the fleet's project; returns (wall, cpu, peak rss, peak ssh rss).
fn cutover(fleet: &Fleet, args: &[&str]) -> (Option<f64>, Option<f64>, Option<f64>) {
    let before = children_cpu();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(fleet.project())
        .args(args)
        .args(["-i", "cutover.yaml", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let phases = std::thread::spawn(move || phase_times(stdout, started));
    let (mut peak, mut peak_ssh, mut own_cpu) = (0.0f64, 0.0f64, None);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        peak = peak.max(rss_mib(child.id(), "VmHWM").unwrap_or(0.0));
        peak_ssh = peak_ssh.max(ssh_rss_mib());
        own_cpu = process_cpu(child.id()).or(own_cpu);
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "cutover {args:?} failed");
    let phases = phases.join().unwrap_or_default();
    PHASES.with(|p| p.borrow_mut().push(phases));
    // cutover's own CPU, read until just before it exited (the children
    // figure would add the ssh handshakes of the masters it started).
    let _with_ssh = children_cpu().zip(before).map(|(after, before)| after - before);
    (own_cpu, Some(peak), Some(peak_ssh))
}

thread_local! {
    /// Per cutover run, the seconds spent in each phase, in order.
    static PHASES: std::cell::RefCell<Vec<Vec<(String, f64)>>> = const { std::cell::RefCell::new(Vec::new()) };
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

/// The floor script, with a release id past every id on the hosts.
fn floor_script(fleet: &Fleet, commit: &str) -> (Option<f64>, Option<f64>, Option<f64>) {
    let existing: Vec<ReleaseId> = fleet.releases(0).iter().filter_map(|r| r.parse().ok()).collect();
    let release = ReleaseId::choose(jiff::Timestamp::now(), &existing).to_string();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/floor.sh");
    let ports: Vec<String> = fleet.hosts.iter().map(|h| h.ssh_port.to_string()).collect();
    let status = Command::new(script)
        .arg(fleet.identity_file())
        .arg(fleet.known_hosts())
        .args([release.as_str(), commit])
        .args(&ports)
        .status()
        .unwrap();
    assert!(status.success(), "the floor script failed");
    (None, None, None)
}

/// Times `run`, and counts what the hosts saw.
fn measure(fleet: &Fleet, run: impl FnOnce() -> (Option<f64>, Option<f64>, Option<f64>)) -> Sample {
    let sessions = session_count(fleet);
    let started = Instant::now();
    let (cpu, peak, peak_ssh) = run();
    let wall = started.elapsed().as_secs_f64();
    let trips = (session_count(fleet) - sessions) as f64 / fleet.hosts.len() as f64;
    Sample {
        wall,
        round_trips_per_host: trips,
        skew_ms: flip_skew_ms(fleet),
        cpu_s: cpu,
        peak_rss_mib: peak,
        peak_ssh_rss_mib: peak_ssh,
    }
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

/// CPU seconds of this process's waited-for children (Linux).
fn children_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command name: state is field 3; cutime and cstime are 16, 17.
    let ticks: f64 = fields.get(13)?.parse::<f64>().ok()? + fields.get(14)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
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

/// The resident memory of the ssh masters cutover started (their control
/// directory is cutover's own).
fn ssh_rss_mib() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.starts_with("ssh\0") && cmdline.contains("/cutover-")
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

fn report(n: usize, fresh: &[Sample], floor: &[Sample], redeploy: &[Sample], rollback: &[Sample]) -> Value {
    let wall = |s: &[Sample]| stats(s, |x| Some(x.wall));
    let median = |v: &Value| v["median"].as_f64().unwrap_or(f64::NAN);
    let (fresh_wall, floor_wall, redeploy_wall, rollback_wall) =
        (wall(fresh), wall(floor), wall(redeploy), wall(rollback));
    let cpu_per_host = stats(fresh, |x| x.cpu_s.map(|c| c / n as f64));
    let value = json!({
        "hosts": n,
        "deploy_fresh": { "wall_s": fresh_wall, "round_trips_per_host": stats(fresh, |x| Some(x.round_trips_per_host)),
                          "flip_skew_ms": stats(fresh, |x| x.skew_ms), "cpu_s_per_host": cpu_per_host,
                          "peak_rss_mib": stats(fresh, |x| x.peak_rss_mib), "peak_ssh_rss_mib": stats(fresh, |x| x.peak_ssh_rss_mib) },
        "floor": { "wall_s": floor_wall, "round_trips_per_host": stats(floor, |x| Some(x.round_trips_per_host)), "flip_skew_ms": stats(floor, |x| x.skew_ms) },
        "redeploy_same_lock": { "wall_s": redeploy_wall, "round_trips_per_host": stats(redeploy, |x| Some(x.round_trips_per_host)) },
        "rollback": { "wall_s": rollback_wall, "round_trips_per_host": stats(rollback, |x| Some(x.round_trips_per_host)) },
        "ratio_fresh_to_floor": median(&fresh_wall) / median(&floor_wall),
        "ratio_redeploy_to_floor": median(&redeploy_wall) / median(&floor_wall),
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
    println!(
        "ratio cutover/floor: fresh {:.3}, re-deploy {:.3}",
        v["ratio_fresh_to_floor"].as_f64().unwrap_or(f64::NAN),
        v["ratio_redeploy_to_floor"].as_f64().unwrap_or(f64::NAN)
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
