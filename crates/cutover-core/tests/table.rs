//! Table tests of the engine: for each phase of a deploy and of a rollback,
//! each fault (a failure, a connection lost before or after the script, a
//! hang) on one host, and each strategy, the exact final state of every
//! host, the outcome and the events. Hosts are directories; the scripts run
//! for real through the scripted transport.

use std::path::{Path, PathBuf};

use cutover_core::config::{LoadedInventory, load_inventory};
use cutover_core::engine::{self, Context, DeployRequest, Interrupt, Report, RollbackRequest};
use cutover_core::event::{Event, Outcome, Phase, Recorder};
use cutover_core::fleet::{Fleet, Selection};
use cutover_core::scripted::{Fault, ScriptedConnector};
use cutover_core::transport::Connector;

const HOSTS: [&str; 3] = ["web1", "web2", "web3"];
/// The host every fault strikes: in the middle, in batch 2 when rolling.
const FAULTY: &str = "web2";
const FAULTS: [Fault; 5] = [Fault::Fail(1), Fault::FailAfter(1), Fault::LoseBefore, Fault::LoseAfter, Fault::Hang];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    AllAtOnce,
    Rolling,
}

/// What runs around the switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// A health check and steps after the switch: finalize is a phase of
    /// its own.
    Full,
    /// Nothing after the switch: finalize rides in the flip's script, held
    /// until every host switched.
    Lean,
}

/// A project: an app, three local hosts, every kind of step on every host.
struct Project {
    dir: tempfile::TempDir,
    /// Whether finalize rides in the flip (all at once, nothing after it).
    finalizes_in_the_flip: bool,
}

impl Project {
    fn new(strategy: Strategy) -> Self {
        Self::shaped(strategy, Shape::Full)
    }

    fn shaped(strategy: Strategy, shape: Shape) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("app/public")).expect("app");
        let finalizes_in_the_flip = strategy == Strategy::AllAtOnce && shape == Shape::Lean;
        let project = Self { dir, finalizes_in_the_flip };
        project.version("v1");
        let hosts: String = HOSTS.iter().map(|h| format!("  - name: {h}\n    address: hosts/{h}\n")).collect();
        let rolling = match strategy {
            Strategy::AllAtOnce => "",
            Strategy::Rolling => "strategy: rolling\nrolling:\n  batch: 1\n",
        };
        let step = |name: &str| format!("    - name: {name}\n      run: 'true'\n");
        let after_the_switch = match shape {
            Shape::Full => format!(
                "health_check: {{ command: 'true', retries: 1, interval: 0 }}\n\
                 hooks:\n  after_flip:\n{}  after_rollback:\n{}",
                step("queue restart"),
                step("queue restart")
            ),
            Shape::Lean => "hooks:\n".to_owned(),
        };
        let text = format!(
            "application: shop\ndeploy_path: /srv/shop\nsource: app\nrecipe: php\n\
             php_fpm:\n  reload: 'true'\n  config_test: none\n\
             {after_the_switch}  build:\n{}  before_flip:\n{}\
             {rolling}defaults:\n  connection: local\nhosts:\n{hosts}",
            step("compile"),
            step("migrate"),
        );
        std::fs::write(project.dir.path().join("cutover.yaml"), text).expect("inventory");
        project
    }

    /// A copy of this project, hosts and all, for one case.
    fn copy(&self) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let from = format!("{}/.", self.dir.path().display());
        let out = std::process::Command::new("cp").arg("-a").arg(from).arg(dir.path()).output().expect("cp");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // The inventory names hosts by relative paths: it moves with them.
        Self { dir, finalizes_in_the_flip: self.finalizes_in_the_flip }
    }

    fn version(&self, version: &str) {
        std::fs::write(self.dir.path().join("app/public/index.php"), version).expect("index.php");
    }

    fn loaded(&self) -> LoadedInventory {
        load_inventory(&self.dir.path().join("cutover.yaml")).expect("inventory loads")
    }

    fn deploy_path(&self, host: &str) -> PathBuf {
        self.dir.path().join("hosts").join(host).join("srv/shop")
    }

    /// What `host` has: the release `current` names, whether it is locked,
    /// and its releases.
    fn host(&self, host: &str) -> HostOnDisk {
        let d = self.deploy_path(host);
        let current = std::fs::read_link(d.join("current")).ok().map(|l| name_of(&l));
        let mut releases: Vec<String> = std::fs::read_dir(d.join("releases"))
            .map(|entries| entries.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        releases.sort();
        HostOnDisk { current, locked: d.join(".cutover/lock").exists(), releases }
    }
}

fn name_of(link: &Path) -> String {
    link.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[derive(Debug, PartialEq, Eq)]
struct HostOnDisk {
    current: Option<String>,
    locked: bool,
    releases: Vec<String>,
}

async fn run(project: &Project, connector: &dyn Connector, rollback: bool) -> (Report, Vec<Event>) {
    let loaded = project.loaded();
    let fleet = Fleet::select(&loaded, &Selection::default()).expect("fleet");
    let events = Recorder::default();
    let interrupt = Interrupt::never();
    let ctx = Context {
        loaded: &loaded,
        fleet: &fleet,
        connector,
        events: &events,
        interrupt: &interrupt,
        secrets: &Default::default(),
    };
    let report = if rollback {
        engine::rollback(&ctx, &RollbackRequest::default()).await
    } else {
        engine::deploy(&ctx, &DeployRequest::default()).await
    };
    (report, events.events())
}

/// Deploys with no fault; the release.
async fn deployed(project: &Project) -> String {
    let connector = ScriptedConnector::default();
    let (report, events) = run(project, &connector, false).await;
    assert_eq!(report.summary.outcome, Outcome::Done, "{:?}", report.failures);
    for host in HOSTS {
        assert!(!project.host(host).locked, "{host} finalized");
    }
    // Finalize is reported as a phase whether or not it has a round trip
    // of its own.
    let finalized = |e: &&Event| matches!(e, Event::PhaseStarted { phase: Phase::Finalize, hosts } if hosts.len() == 3);
    assert_eq!(events.iter().filter(finalized).count(), 1, "{events:#?}");
    // Every host is said to have switched before the decision is.
    let last_switch = events.iter().rposition(|e| matches!(e, Event::Switched { .. })).expect("switched");
    let decided =
        events.iter().position(|e| matches!(e, Event::Gate { name, .. } if name.starts_with("every host switched")));
    assert!(decided.is_some_and(|d| last_switch < d), "{events:#?}");
    let alone = connector.round_trips().iter().filter(|(_, phase)| *phase == Phase::Finalize).count();
    let expected = if project.finalizes_in_the_flip { 0 } else { 3 };
    assert_eq!(alone, expected, "finalize rides in the flip when nothing follows it, all at once");
    report.summary.release.expect("release").to_string()
}

/// What a case must end with: the outcome, and per host where `current`
/// points, whether it is locked, and its releases.
struct Expected {
    outcome: Outcome,
    current: [String; 3],
    locked: [bool; 3],
    releases: Vec<String>,
}

fn check(project: &Project, case: &str, report: &Report, events: &[Event], expected: &Expected) {
    assert_eq!(report.summary.outcome, expected.outcome, "{case}: {:#?}", report.failures);
    for (i, host) in HOSTS.iter().enumerate() {
        let on_disk = project.host(host);
        let want = HostOnDisk {
            current: Some(expected.current[i].clone()),
            locked: expected.locked[i],
            releases: expected.releases.clone(),
        };
        assert_eq!(on_disk, want, "{case}: {host}");
        let summary = &report.summary.hosts[*host];
        assert_eq!(summary.current.as_ref(), Some(&expected.current[i]), "{case}: {host} in the summary");
    }
    let failed = report.failures.iter().map(|f| f.host.as_str()).collect::<Vec<_>>();
    if expected.outcome != Outcome::Done || !failed.is_empty() {
        assert!(failed.contains(&FAULTY), "{case}: the failure names {FAULTY}: {failed:?}");
    }
    // Every host switched to the new release in this run and not kept there
    // was switched back, event for event.
    let release = report.summary.release.expect("release").to_string();
    for host in HOSTS {
        let to = |to: &str| {
            events
                .iter()
                .filter(|e| matches!(e, Event::Switched { host: h, to: t, .. } if h == host && t == to))
                .count()
        };
        let away = to(&release);
        let kept = expected.current[HOSTS.iter().position(|h| *h == host).unwrap_or(0)] == release;
        if !kept && away > 0 {
            let back = events
                .iter()
                .filter(|e| matches!(e, Event::Switched { host: h, from: Some(f), .. } if h == host && *f == release))
                .count();
            assert_eq!(back, 1, "{case}: {host} switched to {release} and back");
        }
    }
    if matches!(expected.outcome, Outcome::Failed) {
        assert!(
            events.iter().any(|e| matches!(e, Event::Gate { passed: false, .. })),
            "{case}: a failed gate is reported"
        );
    }
    let Some(Event::Summary(last)) = events.last() else { panic!("{case}: the last event is the summary") };
    assert_eq!(last, &report.summary, "{case}");
}

fn every(value: &str) -> [String; 3] {
    [value.to_owned(), value.to_owned(), value.to_owned()]
}

/// Where a fault in `phase` leaves a deploy from `v1` to the new release.
fn deploy_expected(phase: Phase, fault: Fault, v1: &str, v2: &str) -> Expected {
    let unchanged =
        Expected { outcome: Outcome::Failed, current: every(v1), locked: [false; 3], releases: vec![v1.to_owned()] };
    match phase {
        Phase::Lock | Phase::Build | Phase::BeforeFlip | Phase::Stage => unchanged,
        Phase::Flip | Phase::Health | Phase::AfterFlip => Expected { outcome: Outcome::RolledBack, ..unchanged },
        Phase::Finalize => {
            // After the decision: the run stands; a finalize that did not
            // run leaves its host locked (a warning says so), and that
            // host keeps this run's release too (nothing pruned there).
            let ran = matches!(fault, Fault::FailAfter(_) | Fault::LoseAfter);
            Expected {
                outcome: Outcome::Done,
                current: every(v2),
                locked: [false, !ran, false],
                releases: vec![v1.to_owned(), v2.to_owned()],
            }
        }
        other => panic!("no expectation for {other:?}"),
    }
}

/// The phases of a deploy where a host can fail, in order. The reload
/// rides in the flip's script: `FailAfter` in the flip is a failed reload.
const DEPLOY_PHASES: [Phase; 8] = [
    Phase::Lock,
    Phase::Build,
    Phase::BeforeFlip,
    Phase::Stage,
    Phase::Flip,
    Phase::Health,
    Phase::AfterFlip,
    Phase::Finalize,
];

async fn deploy_table(strategy: Strategy, shape: Shape) {
    let template = Project::shaped(strategy, shape);
    let v1 = deployed(&template).await;
    template.version("v2");
    let after_the_switch = [Phase::Health, Phase::AfterFlip];
    let phases = DEPLOY_PHASES.into_iter().filter(|p| shape == Shape::Full || !after_the_switch.contains(p));
    for phase in phases {
        for fault in FAULTS {
            let case = format!("deploy {strategy:?} {shape:?}, {fault:?} on {FAULTY} in {phase}");
            let project = template.copy();
            let connector = ScriptedConnector::with(FAULTY, phase, fault);
            let (report, events) = run(&project, &connector, false).await;
            assert!(connector.all_struck(), "{case}: the fault struck");
            let v2 = report.summary.release.expect("release").to_string();
            let expected = deploy_expected(phase, fault, &v1, &v2);
            check(&project, &case, &report, &events, &expected);
            // From before-flip on, a failed run says the migrations ran and
            // are not undone; a run that stands says nothing.
            let before_flip_ran = phase >= Phase::BeforeFlip && expected.outcome != Outcome::Done;
            assert_eq!(
                report.summary.not_undone.is_some(),
                before_flip_ran,
                "{case}: whether the summary says migrations ran: {:?}",
                report.summary.not_undone
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_in_any_phase_of_an_all_at_once_deploy() {
    deploy_table(Strategy::AllAtOnce, Shape::Full).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_in_any_phase_of_a_rolling_deploy() {
    deploy_table(Strategy::Rolling, Shape::Full).await;
}

/// Finalize held in the flip: the hosts that switched wait for the
/// decision while one fails, and are undone; a finalize that fails after
/// the decision leaves the run standing.
#[tokio::test(flavor = "multi_thread")]
async fn a_fault_in_any_phase_of_a_deploy_that_finalizes_in_the_flip() {
    deploy_table(Strategy::AllAtOnce, Shape::Lean).await;
}

/// The phases of a rollback where a host can fail, in order (its lock
/// carries the staging).
const ROLLBACK_PHASES: [Phase; 4] = [Phase::Lock, Phase::Flip, Phase::Health, Phase::AfterRollback];

async fn rollback_table(strategy: Strategy, shape: Shape) {
    let template = Project::shaped(strategy, shape);
    let v1 = deployed(&template).await;
    template.version("v2");
    let v2 = deployed(&template).await;
    let after_the_switch = [Phase::Health, Phase::AfterRollback];
    let phases = ROLLBACK_PHASES.into_iter().filter(|p| shape == Shape::Full || !after_the_switch.contains(p));
    // Lean, all at once, finalize rides in a flip that also locks: a host
    // there cannot run unheld, so the scripted transport has no way to
    // strike inside it. The same decision and finalize code is struck in
    // the lean deploy (a finalize on its own) and the full rollback.
    let finalize = (shape == Shape::Full).then_some(Phase::Finalize);
    for phase in phases.chain(finalize) {
        for fault in FAULTS {
            let case = format!("rollback {strategy:?} {shape:?}, {fault:?} on {FAULTY} in {phase}");
            let project = template.copy();
            let connector = ScriptedConnector::with(FAULTY, phase, fault);
            let (report, events) = run(&project, &connector, true).await;
            assert!(connector.all_struck(), "{case}: the fault struck");
            let both = vec![v1.clone(), v2.clone()];
            let expected = match phase {
                Phase::Lock => {
                    Expected { outcome: Outcome::Failed, current: every(&v2), locked: [false; 3], releases: both }
                }
                // All at once, the lock rides in the flip's script: a fault
                // there strikes before the go, and no host switches.
                Phase::Flip if strategy == Strategy::AllAtOnce => {
                    Expected { outcome: Outcome::Failed, current: every(&v2), locked: [false; 3], releases: both }
                }
                Phase::Flip | Phase::Health => {
                    Expected { outcome: Outcome::RolledBack, current: every(&v2), locked: [false; 3], releases: both }
                }
                // The rollback stands.
                Phase::AfterRollback => {
                    Expected { outcome: Outcome::Done, current: every(&v1), locked: [false; 3], releases: both }
                }
                _ => {
                    let ran = matches!(fault, Fault::FailAfter(_) | Fault::LoseAfter);
                    Expected {
                        outcome: Outcome::Done,
                        current: every(&v1),
                        locked: [false, !ran, false],
                        releases: both,
                    }
                }
            };
            check(&project, &case, &report, &events, &expected);
        }
    }
}

/// Another run holds one host's lock: nothing switches, this run's locks
/// are given back, and the outcome says "locked" (exit 5), whether the lock
/// is its own phase or rides in a rollback's flip.
#[tokio::test(flavor = "multi_thread")]
async fn a_lock_held_by_another_run_stops_every_kind_of_run_as_locked() {
    for strategy in [Strategy::AllAtOnce, Strategy::Rolling] {
        for shape in [Shape::Full, Shape::Lean] {
            let template = Project::shaped(strategy, shape);
            let v1 = deployed(&template).await;
            template.version("v2");
            for rollback in [false, true] {
                let case = format!("{} {strategy:?} {shape:?}", if rollback { "rollback" } else { "deploy" });
                let project = template.copy();
                let v2 = if rollback { deployed(&project).await } else { v1.clone() };
                let connector = ScriptedConnector::with(FAULTY, Phase::Lock, Fault::HeldByAnother);
                let (report, events) = run(&project, &connector, rollback).await;
                assert!(connector.all_struck(), "{case}: the fault struck");
                let releases = if rollback { vec![v1.clone(), v2.clone()] } else { vec![v1.clone()] };
                let expected = Expected { outcome: Outcome::Locked, current: every(&v2), locked: [false; 3], releases };
                check(&project, &case, &report, &events, &expected);
                let failure = report.failures.iter().find(|f| f.host == FAULTY).expect("web2's failure");
                assert!(
                    failure.to_string().contains("locked by") && failure.to_string().contains("someone"),
                    "{case}: {failure}"
                );
                assert!(!events.iter().any(|e| matches!(e, Event::Switched { .. })), "{case}: nothing switched");
            }
        }
    }
}

/// A first interrupt while a rollback all at once is still locking and
/// staging (in its flip's script, before the go) stops it: no host
/// switches, every lock is given back.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_interrupt_while_a_rollback_locks_stops_it_before_any_switch() {
    let project = Project::shaped(Strategy::AllAtOnce, Shape::Lean);
    let v1 = deployed(&project).await;
    project.version("v2");
    let v2 = deployed(&project).await;
    // Staging takes a while: its config test sleeps.
    let inventory = project.dir.path().join("cutover.yaml");
    let text = std::fs::read_to_string(&inventory).expect("inventory");
    std::fs::write(&inventory, text.replace("config_test: none", "config_test: sleep 3")).expect("inventory");
    let loaded = project.loaded();
    let fleet = Fleet::select(&loaded, &Selection::default()).expect("fleet");
    let events = Recorder::default();
    let (sender, interrupt) = Interrupt::new();
    let connector = ScriptedConnector::default();
    let ctx = Context {
        loaded: &loaded,
        fleet: &fleet,
        connector: &connector,
        events: &events,
        interrupt: &interrupt,
        secrets: &Default::default(),
    };
    let raise = async {
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        sender.raise();
    };
    let request = RollbackRequest::default();
    let (report, ()) = tokio::join!(engine::rollback(&ctx, &request), raise);
    let expected = Expected {
        outcome: Outcome::Failed,
        current: every(&v2),
        locked: [false; 3],
        releases: vec![v1.clone(), v2.clone()],
    };
    let events = events.events();
    assert_eq!(report.summary.outcome, expected.outcome, "{:#?}", report.failures);
    for (i, host) in HOSTS.iter().enumerate() {
        let on_disk = project.host(host);
        assert_eq!(on_disk.current.as_ref(), Some(&expected.current[i]), "{host}");
        assert!(!on_disk.locked, "{host}: unlocked");
    }
    assert!(!events.iter().any(|e| matches!(e, Event::Switched { .. })), "nothing switched");
    let interrupted = report.failures.iter().any(|f| f.kind.to_string() == "interrupted");
    assert!(interrupted, "{:#?}", report.failures);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_in_any_phase_of_an_all_at_once_rollback() {
    rollback_table(Strategy::AllAtOnce, Shape::Full).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_in_any_phase_of_a_rolling_rollback() {
    rollback_table(Strategy::Rolling, Shape::Full).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_in_any_phase_of_a_rollback_that_finalizes_in_the_flip() {
    rollback_table(Strategy::AllAtOnce, Shape::Lean).await;
}

/// With `on_failure: halt`, a failed health check after the switch leaves
/// every switched host on the new release, unlocked, and says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_health_check_with_on_failure_halt_stops_where_it_is() {
    for strategy in [Strategy::AllAtOnce, Strategy::Rolling] {
        let template = Project::new(strategy);
        let inventory = template.dir.path().join("cutover.yaml");
        let text = std::fs::read_to_string(&inventory).expect("inventory");
        std::fs::write(&inventory, format!("{text}on_failure: halt\n")).expect("inventory");
        let v1 = deployed(&template).await;
        template.version("v2");
        for fault in FAULTS {
            let case = format!("halt {strategy:?}, {fault:?} on {FAULTY} in health");
            let project = template.copy();
            let connector = ScriptedConnector::with(FAULTY, Phase::Health, fault);
            let (report, events) = run(&project, &connector, false).await;
            let v2 = report.summary.release.expect("release").to_string();
            // Rolling: web1 (batch 1) and web2 (batch 2) switched; web3 never.
            let current = match strategy {
                Strategy::AllAtOnce => every(&v2),
                Strategy::Rolling => [v2.clone(), v2.clone(), v1.clone()],
            };
            let releases = vec![v1.clone(), v2.clone()];
            let expected = Expected { outcome: Outcome::Halted, current, locked: [false; 3], releases };
            // Every host built v2; the halt removes it where it is not live.
            if strategy == Strategy::Rolling {
                let web3 = project.host("web3");
                assert_eq!(web3.releases, vec![v1.clone()], "{case}: web3's unused release is removed");
                assert!(!web3.locked && web3.current.as_ref() == Some(&v1), "{case}: web3");
                for (i, host) in HOSTS.iter().enumerate().take(2) {
                    let on_disk = project.host(host);
                    assert_eq!(on_disk.current.as_ref(), Some(&expected.current[i]), "{case}: {host}");
                    assert!(!on_disk.locked, "{case}: {host}");
                }
                assert_eq!(report.summary.outcome, Outcome::Halted, "{case}");
            } else {
                check(&project, &case, &report, &events, &expected);
            }
            let warned =
                events.iter().any(|e| matches!(e, Event::Warning { message, .. } if message.starts_with("halted")));
            assert!(warned, "{case}: the summary says it halted");
        }
    }
}
