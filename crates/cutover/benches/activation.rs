//! The activation benchmark: a steady stream of requests (each on a new
//! connection) to the Laravel application of the fleet tests, its framework
//! a real-sized package in vendor/ (about 4,750 PHP files, so every release
//! has its own paths to compile), through deploys in each activation mode:
//! `reload`, `warm` and `blue-green`. Per mode it prints the latency while
//! idle (p50, p99) and in the window around each switch (from 2 s before to
//! 3 s after: p50, p99, max) and the failed requests, beside the goal: for
//! warm and blue-green, the window's max within 3x the idle p99 and its p99
//! within 3x the idle p50. `reload` is the control: the stall it shows is
//! what the other two remove. Not a test: it asserts nothing.
//!
//! Run with `cargo bench -p cutover --bench activation`. `BENCH_ROUNDS`
//! (default 3): deploys per mode. Figures go to stdout and to
//! `target/bench/activation.json`.

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

#[path = "../tests/fleet/harness/mod.rs"]
#[allow(dead_code, unused_imports)]
mod harness;

use std::time::Duration;

use harness::{Fleet, GIT_DELIVERY, HARNESS_PHP_FPM, LARAVEL};
use jiff::Timestamp;
use serde_json::{Value, json};

/// Requests before the first deploy of a mode: the idle figures.
const IDLE: Duration = Duration::from_secs(8);

/// After each deploy, before the next one.
const AFTER: Duration = Duration::from_secs(5);

/// The window around a switch.
const BEFORE_SWITCH_MS: i64 = 2_000;
const AFTER_SWITCH_MS: i64 = 3_000;

fn main() {
    if !harness::docker_available("activation benchmark") {
        return;
    }
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let modes = runtime.block_on(bench(rounds));
    println!();
    println!(
        "{:<11} {:>9} {:>9}   {:>10} {:>10} {:>10}   {:>6}   goal",
        "mode", "idle p50", "idle p99", "switch p50", "switch p99", "switch max", "failed"
    );
    for m in &modes {
        let f = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
        let goal = if m["mode"] == "reload" {
            "(control)".to_owned()
        } else {
            let max_ok = f("window_max_ms") <= 3.0 * f("idle_p99_ms");
            let p99_ok = f("window_p99_ms") <= 3.0 * f("idle_p50_ms");
            format!(
                "max <= 3x idle p99 ({:.0}): {}; p99 <= 3x idle p50 ({:.0}): {}",
                3.0 * f("idle_p99_ms"),
                if max_ok { "met" } else { "missed" },
                3.0 * f("idle_p50_ms"),
                if p99_ok { "met" } else { "missed" },
            )
        };
        println!(
            "{:<11} {:>7.1}ms {:>7.1}ms   {:>8.1}ms {:>8.1}ms {:>8.1}ms   {:>6}   {goal}",
            m["mode"].as_str().unwrap_or_default(),
            f("idle_p50_ms"),
            f("idle_p99_ms"),
            f("window_p50_ms"),
            f("window_p99_ms"),
            f("window_max_ms"),
            m["failed"],
        );
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let report = json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "rounds": rounds,
        "window_ms": [-BEFORE_SWITCH_MS, AFTER_SWITCH_MS],
        "modes": modes,
    });
    std::fs::write(out.join("activation.json"), serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("figures written to target/bench/activation.json");
}

async fn bench(rounds: usize) -> Vec<Value> {
    let (fleet, database) = tokio::join!(Fleet::start(1), harness::Database::start());
    fleet.prepare_laravel(&database);
    fleet.git().commit_change("a real-sized framework", |work| {
        harness::make_framework_heavy(&fleet.git_dir(), work);
    });
    let mut modes = Vec::new();
    for mode in ["reload", "warm", "blue-green"] {
        let extra = format!("{GIT_DELIVERY}{LARAVEL}keep_releases: 5\n");
        let php_fpm = harness::activation_php_fpm(mode);
        fleet.write_inventory_edited(&extra, &[("recipe: php", "recipe: laravel"), (HARNESS_PHP_FPM, php_fpm)]);
        deploy(&fleet);
        for _ in 0..20 {
            fleet.http_get(0, "/");
        }
        let load = fleet.start_load(&["/", "/"]);
        std::thread::sleep(IDLE);
        let idle_until = Timestamp::now();
        let mut switched = Vec::new();
        for _ in 0..rounds {
            switched.extend(deploy(&fleet));
            std::thread::sleep(AFTER);
        }
        let samples = load.stop();
        let ms = |s: &harness::Sample| (s.end - s.start).total(jiff::Unit::Millisecond).unwrap_or(f64::NAN);
        let idle: Vec<f64> = samples.iter().filter(|s| s.start < idle_until).map(ms).collect();
        let in_window = |s: &&harness::Sample| {
            switched.iter().any(|at: &Timestamp| {
                let from = *at - jiff::SignedDuration::from_millis(BEFORE_SWITCH_MS);
                let to = *at + jiff::SignedDuration::from_millis(AFTER_SWITCH_MS);
                s.start >= from && s.start <= to
            })
        };
        let window: Vec<&harness::Sample> = samples.iter().filter(in_window).collect();
        let failed = window.iter().filter(|s| !matches!(&s.result, Ok((200, _)))).count();
        let window_ms: Vec<f64> = window.iter().map(|s| ms(s)).collect();
        // Where the slowest request of the window started, from its switch.
        let slowest = window.iter().max_by(|a, b| ms(a).total_cmp(&ms(b)));
        let slowest_at = slowest.and_then(|s| {
            let nearest = switched
                .iter()
                .min_by_key(|at| (s.start - **at).total(jiff::Unit::Millisecond).unwrap_or(0.0).abs() as i64)?;
            (s.start - *nearest).total(jiff::Unit::Millisecond).ok()
        });
        // Before the switch (staging: warming, starting a master) and after.
        let part = |after: bool| -> Vec<f64> {
            window
                .iter()
                .filter(|s| {
                    switched.iter().any(|at| {
                        (s.start >= *at) == after
                            && (s.start - *at).total(jiff::Unit::Millisecond).unwrap_or(0.0).abs()
                                <= if after { AFTER_SWITCH_MS } else { BEFORE_SWITCH_MS } as f64
                    })
                })
                .map(|s| ms(s))
                .collect()
        };
        let (before, after) = (part(false), part(true));
        let (idle_p50, idle_p99) = (percentile(&idle, 50.0), percentile(&idle, 99.0));
        let (p50, p99, max) =
            (percentile(&window_ms, 50.0), percentile(&window_ms, 99.0), percentile(&window_ms, 100.0));
        eprintln!(
            "{mode}: idle {} requests p50 {idle_p50:.1} p99 {idle_p99:.1}; window {} requests p50 {p50:.1} p99 {p99:.1} \
             max {max:.1} (at {:+.0} ms from its switch); before the switch p99 {:.1} max {:.1}, after it p99 {:.1} \
             max {:.1}; failed {failed}",
            idle.len(),
            window_ms.len(),
            slowest_at.unwrap_or(f64::NAN),
            percentile(&before, 99.0),
            percentile(&before, 100.0),
            percentile(&after, 99.0),
            percentile(&after, 100.0),
        );
        modes.push(json!({
            "mode": mode,
            "idle_requests": idle.len(),
            "idle_p50_ms": idle_p50,
            "idle_p99_ms": idle_p99,
            "window_requests": window_ms.len(),
            "window_p50_ms": p50,
            "window_p99_ms": p99,
            "window_max_ms": max,
            "window_max_at_ms": slowest_at,
            "before_switch_p99_ms": percentile(&before, 99.0),
            "before_switch_max_ms": percentile(&before, 100.0),
            "after_switch_p99_ms": percentile(&after, 99.0),
            "after_switch_max_ms": percentile(&after, 100.0),
            "failed": failed,
        }));
    }
    modes
}

/// Deploys; the moments the hosts switched.
fn deploy(fleet: &Fleet) -> Vec<Timestamp> {
    let (code, events, text) = fleet.run_json("deploy", &[]);
    assert_eq!(code, Some(0), "deploy:\n{text}");
    events.iter().filter(|e| e["event"] == "switched").filter_map(|e| e["at"].as_str()?.parse().ok()).collect()
}

/// The `p`th percentile (nearest rank) of `values`.
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
