//! The fleet benchmark: cutover against the floor (the same work done by a
//! plain script, one ssh per host, all in parallel) on real hosts in
//! containers. Not a test: it asserts nothing and prints figures.
//!
//! Run with `cargo bench -p cutover --bench fleet`. Settings: `BENCH_APP`
//! (`php`, the default: a small page whose composer.json has no packages;
//! or `laravel`: the Laravel application of the fleet tests with a 33 MB
//! framework package, a MariaDB server and the `laravel` recipe),
//! `BENCH_HOSTS` (default `1,10,25` for php, `1,5` for laravel; up to 50),
//! `BENCH_ROUNDS` (default 3). Each round runs, interleaved: a fresh deploy
//! (`--full-build`), the floor script's deploy, a re-deploy with
//! composer.lock unchanged, the floor's re-deploy starting from a copy of
//! vendor/ as cutover's does, a rollback, the floor script's rollback, and
//! the SSH handshakes alone (`true` on every host). Every run is watched the
//! same way, lightly (see [`watch`]). Figures go to stdout and to
//! `target/bench/fleet-<app>.json`.

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

#[path = "../tests/fleet/harness/mod.rs"]
#[allow(dead_code, unused_imports)]
mod harness;

#[path = "fleet/watch.rs"]
mod watch;

use std::path::Path;
use std::process::{Command, Stdio};

use cutover_core::release::ReleaseId;
use harness::{Fleet, GIT_DELIVERY};
use serde_json::{Value, json};
use watch::{Sample, flip_skew_ms, session_count, stats, watch};

fn main() {
    if !harness::docker_available("fleet benchmark") {
        return;
    }
    let app = match std::env::var("BENCH_APP").as_deref() {
        Ok("laravel") => App::Laravel,
        Ok("php") | Err(_) => App::Php,
        Ok(other) => panic!("BENCH_APP={other}: php or laravel"),
    };
    let sizes: Vec<usize> = std::env::var("BENCH_HOSTS")
        .unwrap_or_else(|_| app.default_sizes().into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .map(|n: usize| n.clamp(1, 50))
        .collect();
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut all = Vec::new();
    for n in sizes {
        let result = runtime.block_on(bench(app, n, rounds));
        all.push(result);
    }
    let machine = json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "kernel": Command::new("uname").arg("-sr").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default(),
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let report = json!({ "machine": machine, "app": app.name(), "rounds": rounds, "sizes": all });
    let file = format!("fleet-{}.json", app.name());
    std::fs::write(out.join(&file), serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("figures written to target/bench/{file}");
}

/// The application the fleet deploys.
#[derive(Clone, Copy, Debug)]
enum App {
    Php,
    Laravel,
}

impl App {
    fn name(self) -> &'static str {
        match self {
            App::Php => "php",
            App::Laravel => "laravel",
        }
    }

    fn default_sizes(self) -> &'static str {
        match self {
            App::Php => "1,10,25",
            App::Laravel => "1,5",
        }
    }

    /// Commits a new version of the application, composer.lock unchanged.
    fn commit(self, fleet: &Fleet, name: &str) -> String {
        match self {
            App::Php => fleet.git().commit_version(name),
            App::Laravel => fleet.git().commit_change(name, |work| {
                let version = format!(
                    "<?php\n\nnamespace App;\n\nfinal class CodeVersion\n{{\n    public const NAME = '{name}';\n}}\n"
                );
                std::fs::write(work.join("app/CodeVersion.php"), version).unwrap();
            }),
        }
    }

    /// What the floor script does besides its own work: the recipe's steps.
    fn floor_env(self) -> Vec<(&'static str, &'static str)> {
        match self {
            App::Php => Vec::new(),
            App::Laravel => vec![
                (
                    "FLOOR_BUILD",
                    "composer install --no-dev --optimize-autoloader --no-interaction --prefer-dist --quiet\nphp artisan optimize --quiet",
                ),
                ("FLOOR_ONCE", "php artisan migrate --force --quiet"),
                ("FLOOR_AFTER", "php artisan queue:restart --quiet"),
            ],
        }
    }
}

async fn bench(app: App, n: usize, rounds: usize) -> Value {
    let (fleet, _database) = match app {
        App::Php => {
            let fleet = Fleet::start(n).await;
            fleet.write_inventory(&format!("{GIT_DELIVERY}keep_releases: 5\n"));
            (fleet, None)
        }
        App::Laravel => {
            let (fleet, database) = tokio::join!(Fleet::start(n), harness::Database::start());
            fleet.prepare_laravel(&database);
            fleet.git().commit_change("a real-sized framework", |work| {
                harness::make_framework_heavy(&fleet.git_dir(), work);
            });
            let extra = format!("{GIT_DELIVERY}{}keep_releases: 5\n", harness::LARAVEL);
            fleet.write_inventory_edited(&extra, &[("recipe: php", "recipe: laravel")]);
            (fleet, Some(database))
        }
    };
    let floor_env = app.floor_env();
    let run = |run: &Run<'_>| measure(&fleet, run, &floor_env);
    run(&Run::Cutover(&["deploy", "--full-build"]));
    let mut runs: [Vec<Sample>; 7] = Default::default();
    let [fresh, floor, redeploy, floor_redeploy, rollback, floor_rollback, handshakes] = &mut runs;
    for round in 0..rounds {
        app.commit(&fleet, &format!("fresh{round}"));
        fresh.push(run(&Run::Cutover(&["deploy", "--full-build"])));
        let commit = app.commit(&fleet, &format!("floor{round}"));
        floor.push(run(&Run::FloorDeploy { commit, seed: false }));
        app.commit(&fleet, &format!("again{round}"));
        redeploy.push(run(&Run::Cutover(&["deploy"])));
        let commit = app.commit(&fleet, &format!("floor-again{round}"));
        floor_redeploy.push(run(&Run::FloorDeploy { commit, seed: true }));
        let live = fleet.current(0).expect("a live release");
        rollback.push(run(&Run::Cutover(&["rollback", "--yes"])));
        floor_rollback.push(run(&Run::FloorRollback { release: live }));
        handshakes.push(run(&Run::FloorConnect));
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
    /// `seed`: vendor/ starts from a copy of the live release's.
    FloorDeploy {
        commit: String,
        seed: bool,
    },
    /// Back to `release`, already on every host.
    FloorRollback {
        release: String,
    },
    /// Only the SSH handshakes: `true` on every host.
    FloorConnect,
}

impl Run<'_> {
    fn command(&self, fleet: &Fleet, floor_env: &[(&str, &str)]) -> Command {
        let floor = |mode: &str, release: &str| {
            let mut command = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/floor.sh"));
            command.arg(mode).arg(fleet.identity_file()).arg(fleet.known_hosts()).arg(release);
            command.envs(floor_env.iter().copied());
            command
        };
        let mut command = match self {
            Run::Cutover(args) => {
                let mut command = Command::new(env!("CARGO_BIN_EXE_cutover"));
                command.current_dir(fleet.project()).args(*args).args(["-i", "cutover.yaml", "--json"]);
                command
            }
            Run::FloorDeploy { commit, seed } => {
                // A release id past every id on the hosts.
                let existing: Vec<ReleaseId> = fleet.releases(0).iter().filter_map(|r| r.parse().ok()).collect();
                let mut command = floor("deploy", &ReleaseId::choose(jiff::Timestamp::now(), &existing).to_string());
                command.arg(commit).env("FLOOR_SEED", if *seed { "1" } else { "" });
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

/// Runs `run` to its end and reads what the hosts saw.
fn measure(fleet: &Fleet, run: &Run<'_>, floor_env: &[(&str, &str)]) -> Sample {
    let sessions = session_count(fleet);
    let mut sample = watch(run.command(fleet, floor_env), run.ssh_marker());
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

fn report(n: usize, runs: &[Vec<Sample>; 7]) -> Value {
    let [fresh, floor, redeploy, floor_redeploy, rollback, floor_rollback, handshakes] = runs;
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
        "floor_redeploy_same_lock": { "wall_s": wall(floor_redeploy), "round_trips_per_host": trips(floor_redeploy) },
        "rollback": { "wall_s": wall(rollback), "round_trips_per_host": trips(rollback),
                      "cpu_s_per_host": stats(rollback, |x| x.cpu_s.map(|c| c / n as f64)) },
        "floor_rollback": { "wall_s": wall(floor_rollback), "round_trips_per_host": trips(floor_rollback) },
        "ssh_handshakes": { "wall_s": wall(handshakes) },
        "ratio_fresh_to_floor": ratio(fresh, floor),
        "ratio_redeploy_to_floor": ratio(redeploy, floor),
        "ratio_redeploy_to_floor_redeploy": ratio(redeploy, floor_redeploy),
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
        ("floor re-deploy", "floor_redeploy_same_lock"),
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
        "ratio cutover/floor: fresh {:.3}, re-deploy {:.3} (to the seeded floor {:.3}), rollback {:.3}",
        ratio("ratio_fresh_to_floor"),
        ratio("ratio_redeploy_to_floor"),
        ratio("ratio_redeploy_to_floor_redeploy"),
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
