//! A simulated fleet: the real engine, driven through the `Transport` trait
//! by a transport that only waits (a round trip's latency, with jitter) and
//! sometimes fails. Prints, for 100 and 1000 hosts, the run's wall time
//! against the critical path (the slowest host's sum of round trips), and
//! the peak RSS. Run with `cargo bench -p cutover-core --bench simulate`.
//!
//! Settings: `SIM_HOSTS` (comma-separated, default `100,1000`),
//! `SIM_LATENCY_MS` (50), `SIM_JITTER_MS` (10), `SIM_FAILURE` (a probability
//! per command, default 0), `SIM_CONNECT_STARTS` (connections set up at once,
//! default 256, as the SSH transport's bound for direct connections).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cutover_core::config::load_inventory;
use cutover_core::engine::{self, Context, DeployRequest, Interrupt};
use cutover_core::event::{Event, EventSink, Outcome};
use cutover_core::fleet::{Fleet, Selection, Target};
use cutover_core::transport::{Connector, Output, RemoteCommand, Transport, TransportError};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::Semaphore;

/// What the simulated network does.
#[derive(Clone, Copy, Debug)]
struct Network {
    latency: Duration,
    jitter: Duration,
    failure: f64,
}

/// A deterministic pseudo-random source (no dependency needed).
#[derive(Debug)]
struct Dice(AtomicU64);

impl Dice {
    fn roll(&self) -> f64 {
        let mut x = self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Connects simulated hosts; records each host's time spent in round trips.
struct SimConnector {
    network: Network,
    dice: Arc<Dice>,
    starts: Semaphore,
    spent: Arc<Mutex<HashMap<String, Duration>>>,
}

impl SimConnector {
    fn delay(&self) -> Duration {
        let jitter = self.network.jitter.as_secs_f64() * (self.dice.roll() * 2.0 - 1.0);
        Duration::from_secs_f64((self.network.latency.as_secs_f64() + jitter).max(0.0))
    }
}

impl Connector for SimConnector {
    fn connect<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Box<dyn Transport>, TransportError>> {
        async move {
            let _permit = self.starts.acquire().await.map_err(|e| TransportError::Spawn { detail: e.to_string() })?;
            // TCP, key exchange, authentication: about three round trips.
            let wait = self.delay() * 3;
            tokio::time::sleep(wait).await;
            *self.spent.lock().unwrap().entry(target.name.clone()).or_default() += wait;
            Ok(Box::new(SimTransport {
                name: target.name.clone(),
                network: self.network,
                dice: self.dice.clone(),
                spent: self.spent.clone(),
            }) as Box<dyn Transport>)
        }
        .boxed()
    }
}

#[derive(Debug)]
struct SimTransport {
    name: String,
    network: Network,
    dice: Arc<Dice>,
    spent: Arc<Mutex<HashMap<String, Duration>>>,
}

impl Transport for SimTransport {
    fn run(&self, command: RemoteCommand) -> BoxFuture<'_, Result<Output, TransportError>> {
        async move {
            let jitter = self.network.jitter.as_secs_f64() * (self.dice.roll() * 2.0 - 1.0);
            let wait = Duration::from_secs_f64((self.network.latency.as_secs_f64() + jitter).max(0.0));
            tokio::time::sleep(wait).await;
            *self.spent.lock().unwrap().entry(self.name.clone()).or_default() += wait;
            if self.dice.roll() < self.network.failure {
                return Ok(Output { exit_code: Some(1), stdout: String::new(), stderr: "simulated failure".into() });
            }
            // Preflight reads the host; every other phase only needs success.
            let stdout = if command.script.contains("free-kb") {
                "exists 1\nwritable 1\nfree-kb 100000000\n".to_owned()
            } else {
                String::new()
            };
            Ok(Output { exit_code: Some(0), stdout, stderr: String::new() })
        }
        .boxed()
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }
}

/// Counts events; prints nothing.
#[derive(Default)]
struct Count(AtomicU64);

impl EventSink for Count {
    fn emit(&self, _: Event) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The inventory of `n` simulated hosts, in a temporary directory.
fn inventory(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("app/public")).unwrap();
    std::fs::write(dir.join("app/public/index.php"), "<?php echo 1;").unwrap();
    let hosts: String =
        (0..n).map(|i| format!("  - name: h{i}\n    address: 10.0.{}.{}\n", i / 250, i % 250 + 1)).collect();
    let text = format!(
        "application: sim\ndeploy_path: /srv/sim\nsource: app\nconcurrency: {n}\n\
         php_fpm: {{ reload: sudo systemctl reload php8.3-fpm, config_test: none }}\nhosts:\n{hosts}"
    );
    let path = dir.join("cutover.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Peak resident memory of this process, in MiB (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn run(n: usize, network: Network, starts: usize) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_inventory(&inventory(dir.path(), n)).unwrap();
    let fleet = Fleet::select(&loaded, &Selection::default()).unwrap();
    let connector = SimConnector {
        network,
        dice: Arc::new(Dice(AtomicU64::new(42))),
        starts: Semaphore::new(starts),
        spent: Arc::default(),
    };
    let events = Count::default();
    let interrupt = Interrupt::never();
    let ctx = Context {
        loaded: &loaded,
        fleet: &fleet,
        connector: &connector,
        events: &events,
        interrupt: &interrupt,
        secrets: &Default::default(),
    };
    let started = Instant::now();
    let report = engine::deploy(&ctx, &DeployRequest::default()).await;
    let wall = started.elapsed();
    let critical = connector.spent.lock().unwrap().values().copied().max().unwrap_or_default();
    let overhead = wall.saturating_sub(critical);
    let rss = peak_rss_mib();
    println!(
        "{n:>5} hosts  outcome {:<12} wall {:>7.3}s  critical path {:>7.3}s  overhead {:>6.3}s  events {:>6}  peak RSS {}",
        format!("{:?}", report.summary.outcome),
        wall.as_secs_f64(),
        critical.as_secs_f64(),
        overhead.as_secs_f64(),
        events.0.load(Ordering::Relaxed),
        rss.map_or("n/a".into(), |r| format!("{r:.1} MiB")),
    );
    serde_json::json!({
        "hosts": n,
        "outcome": report.summary.outcome,
        "done": report.summary.outcome == Outcome::Done,
        "wall_s": wall.as_secs_f64(),
        "critical_path_s": critical.as_secs_f64(),
        "overhead_s": overhead.as_secs_f64(),
        "peak_rss_mib": rss,
        "connect_starts": starts,
    })
}

fn main() {
    let hosts: Vec<usize> = std::env::var("SIM_HOSTS")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let network = Network {
        latency: Duration::from_millis(env("SIM_LATENCY_MS", 50)),
        jitter: Duration::from_millis(env("SIM_JITTER_MS", 10)),
        failure: env("SIM_FAILURE", 0.0),
    };
    let starts = env("SIM_CONNECT_STARTS", 256usize);
    println!(
        "simulated deploy: latency {:?} ± {:?}, failure {} per command, {starts} connection starts at once",
        network.latency, network.jitter, network.failure
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let results: Vec<serde_json::Value> = hosts.iter().map(|n| runtime.block_on(run(*n, network, starts))).collect();
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let json = serde_json::json!({ "latency_ms": network.latency.as_millis() as u64, "jitter_ms": network.jitter.as_millis() as u64, "failure": network.failure, "runs": results });
    std::fs::write(out.join("simulate.json"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
    println!("figures written to target/bench/simulate.json");
}
