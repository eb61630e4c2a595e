//! The plan built from each built-in recipe: phases in order, gates before
//! any switch, `once` steps on the primary host only.

use std::sync::Arc;

use indexmap::IndexMap;

use super::{DeployInputs, Node, Plan, RollbackInputs, Rollout, Scope, deploy, rollback};
use crate::config::{LoadedInventory, load_inventory};
use crate::event::Phase;
use crate::fleet::{Fleet, Selection};
use crate::release::ReleaseId;
use crate::remote::fpm::FpmCommands;
use crate::remote::lock::LockOwner;
use crate::remote::prepare::Delivery;
use crate::remote::probe::Snapshot;

fn loaded(recipe: &str) -> (tempfile::TempDir, LoadedInventory) {
    loaded_with(recipe, "")
}

fn loaded_with(recipe: &str, extra: &str) -> (tempfile::TempDir, LoadedInventory) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("app")).expect("app");
    let text = format!(
        "application: shop\ndeploy_path: /srv/shop\nsource: app\nrecipe: {recipe}\n\
         defaults:\n  connection: local\nhosts:\n  - name: web1\n    address: h/web1\n\
         \x20 - name: web2\n    address: h/web2\n    roles: [primary]\n\
         \x20 - name: web3\n    address: h/web3\n{extra}"
    );
    std::fs::write(dir.path().join("cutover.yaml"), text).expect("write");
    let loaded = load_inventory(&dir.path().join("cutover.yaml")).expect("loads");
    (dir, loaded)
}

/// Every host's PHP-FPM as preflight would find it on a Debian host.
fn found_fpm(fleet: &Fleet) -> IndexMap<String, FpmCommands> {
    let commands = FpmCommands {
        service: Some("php8.2-fpm".into()),
        reload: Some("sudo -n /usr/bin/systemctl reload php8.2-fpm".into()),
        config_test: Some("sudo -n /usr/sbin/php-fpm8.2 -t".into()),
        sudo_rule: Some(
            "deploy ALL=(root) NOPASSWD: /usr/bin/systemctl reload php8.2-fpm, /usr/sbin/php-fpm8.2 -t".into(),
        ),
        activation: crate::remote::activation::Activating::default(),
    };
    fleet.hosts.iter().map(|t| (t.name.clone(), commands.clone())).collect()
}

fn phases(plan: &Plan) -> Vec<String> {
    plan.nodes
        .iter()
        .map(|n| match n {
            Node::Phase(p) => match p.batch {
                Some(b) => format!("{}@{b}", p.phase),
                None => p.phase.to_string(),
            },
            Node::Local(hook) => format!("local {}@{}", hook.phase, hook.batch),
            Node::Pause(d) => format!("pause {}s", d.as_secs()),
            Node::Gate(_) => "GATE".to_owned(),
        })
        .collect()
}

fn plan_for(recipe: &str) -> Plan {
    plan_with(recipe, "")
}

fn plan_with(recipe: &str, extra: &str) -> Plan {
    plan_with_fpm(recipe, extra, found_fpm)
}

/// The plan of a deploy, with each host's PHP-FPM commands as `fpm` says.
fn plan_with_fpm(recipe: &str, extra: &str, fpm: fn(&Fleet) -> IndexMap<String, FpmCommands>) -> Plan {
    let (_dir, loaded) = loaded_with(recipe, extra);
    let fleet = Fleet::select(&loaded, &Selection::default()).expect("fleet");
    let snapshots: IndexMap<String, Snapshot> = IndexMap::new();
    deploy(DeployInputs {
        loaded: &loaded,
        fleet: &fleet,
        snapshots: &snapshots,
        fpm: &fpm(&fleet),
        release: "20261123143012".parse().expect("id"),
        commit: "abc".into(),
        delivery: Delivery::Upload,
        payload: Some(Arc::from(Vec::new())),
        owner: LockOwner::current("shop", "deploy", None),
        rollout: Rollout::new(&loaded, None, None),
        full_build: false,
    })
}

/// The plan of a rollback to an older release, from nothing seen on the hosts.
fn rollback_plan(loaded: &LoadedInventory) -> Plan {
    let fleet = Fleet::select(loaded, &Selection::default()).expect("fleet");
    let target: ReleaseId = "20261123120000".parse().expect("id");
    rollback(RollbackInputs {
        loaded,
        fleet: &fleet,
        snapshots: &IndexMap::new(),
        fpm: &found_fpm(&fleet),
        target,
        owner: LockOwner::current("shop", "rollback", None),
        rollout: Rollout::new(loaded, None, None),
    })
}

#[test]
fn laravel_plan_has_every_phase_with_gates_before_the_switch() {
    let plan = plan_for("laravel");
    assert_eq!(
        phases(&plan),
        ["lock", "build", "GATE", "before-flip", "stage", "GATE", "flip", "after-flip", "GATE", "finalize"]
    );
}

#[test]
fn once_steps_run_on_the_primary_only() {
    let plan = plan_for("laravel");
    let before_flip = plan.nodes.iter().find_map(|n| match n {
        Node::Phase(p) if p.phase == Phase::BeforeFlip => Some(p),
        _ => None,
    });
    let before_flip = before_flip.expect("before-flip phase");
    assert_eq!(before_flip.hosts.keys().collect::<Vec<_>>(), ["web2"], "web2 has the primary role");
    assert_eq!(before_flip.steps[0].scope, Scope::Once("web2".into()));
}

#[test]
fn php_and_symfony_plans_build_and_switch() {
    for recipe in ["php", "symfony"] {
        let plan = plan_for(recipe);
        let names = phases(&plan);
        let build = names.iter().position(|p| p == "build").expect("build");
        let flip = names.iter().position(|p| p == "flip").expect("flip");
        assert!(build < flip, "{recipe}: {names:?}");
        assert!(names[build..flip].contains(&"GATE".to_owned()), "{recipe}: a gate between build and flip");
    }
}

#[test]
fn rollback_plan_never_builds_and_never_removes_its_target() {
    let (_dir, loaded) = loaded("laravel");
    let plan = rollback_plan(&loaded);
    // The lock and staging ride in the flip's script, before it holds;
    // finalize waits for the after_rollback steps and the decision.
    assert_eq!(phases(&plan), ["flip", "after-rollback", "GATE", "finalize"]);
    let Some(Node::Phase(flip)) = plan.nodes.first() else { panic!("flip first") };
    let script = flip.hosts["web1"].script.render();
    let (lock, staged, held) = (
        script.find(r#"mkdir "$d/.cutover/lock""#).expect("locks"),
        script.find("current-tmp\"\n").expect("stages"),
        script.find("@@cutover-ready").expect("holds"),
    );
    assert!(lock < staged && staged < held, "locked and staged before it holds: {script}");
    assert!(flip.hosts.values().all(|h| h.locks && h.held));
    for script in plan.abort.values() {
        assert!(!script.script.render().contains("rm -rf \"$d/releases/$r\""), "abort must not remove the target");
    }
}

#[test]
fn a_rolling_plan_drains_switches_checks_and_undrains_each_batch() {
    let extra = "strategy: rolling\nrolling:\n  batch: [1, 100%]\n  pause: 2\n  drain: { run: lb out }\n  \
                 undrain: { run: lb in, on: hosts }\nhealth_check: { url: 'http://127.0.0.1/' }\n";
    let plan = plan_with("php", extra);
    let names = phases(&plan);
    let switch: Vec<&str> = names.iter().map(String::as_str).skip_while(|p| *p != "GATE").collect();
    assert_eq!(
        switch,
        [
            "GATE",
            "local drain@1",
            "flip@1",
            "health@1",
            "undrain@1",
            "pause 2s",
            "local drain@2",
            "flip@2",
            "health@2",
            "undrain@2",
            "GATE",
            "finalize"
        ]
    );
    assert_eq!(plan.batches.values().copied().collect::<Vec<_>>(), [1, 2, 2]);
    let local = plan.nodes.iter().find_map(|n| match n {
        Node::Local(hook) => Some(hook),
        _ => None,
    });
    let env = &local.expect("a local drain").env;
    assert!(env.contains(&("CUTOVER_BATCH_HOSTS".to_owned(), "web1".to_owned())), "{env:?}");
}

#[test]
fn all_at_once_checks_health_after_the_reload_on_every_host() {
    let plan = plan_with("php", "health_check: { command: 'true' }\n");
    let names = phases(&plan);
    let flip = names.iter().position(|p| p == "flip").expect("flip");
    assert_eq!(&names[flip..flip + 2], ["flip", "health"]);
}

#[test]
fn phases_with_no_gate_between_them_share_a_round_trip() {
    // php: no before_flip steps, no health check, no after_flip steps.
    let plan = plan_with("php", "");
    // Prepare and stage ride with the build; finalize rides with the flip,
    // held until every host switched.
    assert_eq!(phases(&plan), ["lock", "build", "GATE", "flip"]);
    let flip = plan.nodes.iter().find_map(|n| match n {
        Node::Phase(p) if p.phase == Phase::Flip => Some(p),
        _ => None,
    });
    let flip = &flip.expect("flip").hosts["web1"];
    let script = flip.script.render();
    let finalize = flip.then_finalize.as_ref().expect("finalize rides with the flip").render();
    assert!(finalize.contains("revisions.log"), "{finalize}");
    assert!(finalize.ends_with(&format!("{}\n", crate::remote::lock::RELEASE_OURS)), "released last: {finalize}");
    let (switched, held, logged) = (
        script.find("@@cutover-switched").expect("switch"),
        script.rfind("@@cutover-ready").expect("held again"),
        script.find("revisions.log").expect("log"),
    );
    assert!(switched < held && held < logged, "finalize waits for the decision after the switch: {script}");
    assert!(script.ends_with(&format!("{}\n", crate::remote::lock::RELEASE_OURS)), "released last: {script}");
    let build = plan.nodes.iter().find_map(|n| match n {
        Node::Phase(p) if p.phase == Phase::Build => Some(p),
        _ => None,
    });
    let web3 = build.expect("build").hosts["web3"].script.render();
    assert!(web3.contains("current-tmp"), "staged with the build");
    let first_step = &build.expect("build").steps[0].name;
    let step_at = web3.find(&format!("@@cutover-step {first_step}")).expect("steps");
    let code_at = web3.find("tar -x -f -").expect("code");
    assert!(code_at < step_at, "the code arrives before the build steps run");
    assert!(build.expect("build").hosts["web3"].upload, "the upload goes to the fused script");
}

#[test]
fn a_rollback_that_fails_staging_gives_its_lock_back() {
    let (_dir, loaded) = loaded_with("php", "");
    let plan = rollback_plan(&loaded);
    let Some(Node::Phase(lock)) = plan.nodes.first() else { panic!("the flip, which locks, first") };
    let dir = tempfile::tempdir().expect("tempdir");
    // The target is not on this "host": staging fails after the lock is taken.
    let script = lock.hosts["web1"]
        .script
        .render()
        .replace(&format!("d={}/h/web1/srv/shop", _dir.path().display()), &format!("d={}", dir.path().display()));
    assert!(script.contains(&format!("d={}\n", dir.path().display())), "{script}");
    let out = std::process::Command::new("sh").arg("-c").arg(&script).output().expect("sh");
    assert_eq!(out.status.code(), Some(1), "{script}");
    assert!(dir.path().join(".cutover").is_dir(), "the lock was taken first");
    assert!(!dir.path().join(".cutover/lock").exists(), "the lock was given back");
}

#[test]
fn the_plan_names_the_php_fpm_found_and_runs_its_commands() {
    let plan = plan_for("laravel");
    let text = plan.render();
    assert!(
        text.contains(
            "PHP-FPM found: php8.2-fpm on web1, web2, web3: reload `sudo -n /usr/bin/systemctl reload php8.2-fpm`, \
             config test `sudo -n /usr/sbin/php-fpm8.2 -t`\n  sudo rule: deploy ALL=(root) NOPASSWD: \
             /usr/bin/systemctl reload php8.2-fpm, /usr/sbin/php-fpm8.2 -t\n"
        ),
        "{text}"
    );
    let flip = plan.nodes.iter().find_map(|n| match n {
        Node::Phase(p) if p.phase == Phase::Flip => Some(p),
        _ => None,
    });
    let flip = flip.expect("a flip").hosts["web1"].script.render();
    assert!(flip.contains("sudo -n /usr/bin/systemctl reload php8.2-fpm"), "{flip}");
}

/// Every host's commands as found, with blue-green taking over from blue.
fn blue_green_fpm(fleet: &Fleet) -> IndexMap<String, FpmCommands> {
    use crate::config::inventory::{Activation, Master};
    use crate::remote::activation::{Activating, Colors};
    let master = |c: &str| Master {
        socket: format!("/run/php/app-{c}.sock"),
        start: format!("sudo -n systemctl start app-{c}"),
        stop: format!("sudo -n systemctl stop app-{c}"),
        config: None,
    };
    let colors = Colors {
        link: "/run/php-app/live.sock".into(),
        live: Some("/run/php/app-blue.sock".into()),
        idle_name: "green",
        idle: master("green"),
        old: Some(master("blue")),
    };
    let activation = Activating { activation: Activation::BlueGreen, colors: Some(colors), ..Activating::default() };
    let commands = FpmCommands { activation, ..FpmCommands::default() };
    fleet.hosts.iter().map(|t| (t.name.clone(), commands.clone())).collect()
}

#[test]
fn a_blue_green_plan_starts_the_idle_master_moves_both_links_and_drains_only_after_the_decision() {
    let plan = plan_with_fpm("php", "", blue_green_fpm);
    let script_of = |phase: Phase| -> String {
        plan.nodes
            .iter()
            .find_map(|n| match n {
                Node::Phase(p) if p.phase == phase => p.hosts.get("web1").map(|h| {
                    let finalize = h.then_finalize.as_ref().map(|f| f.render()).unwrap_or_default();
                    format!("{}{finalize}", h.script.render())
                }),
                _ => None,
            })
            .unwrap_or_default()
    };
    // Staged with the build (no before-flip step): the idle master.
    let built = script_of(Phase::Build);
    let start = built.find("sudo -n systemctl start app-green").expect("green started while staging");
    assert!(built[..start].contains("sudo -n systemctl stop app-green"), "a leftover green is stopped first");
    assert!(built.contains(r#"ln -sfn "$cutover_idle" "$cutover_link.cutover-tmp""#));
    assert!(!built.contains("systemctl stop app-blue"), "the live master is never touched while staging");
    // The flip renames both; the drain of blue rides after the decision.
    let flip = script_of(Phase::Flip);
    assert!(flip.contains(r#""$d/current-tmp" "$d/current" "$l.cutover-tmp" "$l""#), "{flip}");
    let decision = flip.find("read -r verdict").expect("held until the decision");
    let drain = flip.find("sudo -n systemctl stop app-blue").expect("blue drained");
    assert!(decision < drain, "blue is drained only once the fleet decided");
    assert!(!flip.contains("reload"), "nothing reloads");
    // A failure: the abort stops green unless the link points at it; the
    // undo puts the link back on blue.
    let abort = plan.abort["web1"].script.render();
    assert!(abort.contains(r#"!= "$cutover_idle" ]; then"#) && abort.contains("systemctl stop app-green"), "{abort}");
    assert!(!abort.contains("systemctl stop app-blue"), "{abort}");
    let undo = plan.undo["web1"].script.render();
    assert!(undo.contains(r#"ln -sfn "$cutover_was" "$cutover_link.cutover-tmp""#), "{undo}");
    assert!(plan.reload.is_empty(), "nothing to reload after an undo");

    // For people: what takes over from what, and the FastCGI script once.
    let text = plan.render();
    assert!(
        text.contains("PHP-FPM activation on web1, web2, web3: blue-green: green at /run/php/app-green.sock takes"),
        "{text}"
    );
    assert_eq!(text.matches("opcache_compile_file").count(), 1, "the script is shown once:\n{text}");
    assert!(text.contains("cutover_fpm_php=\"$(the FastCGI script at the end of this plan)\""), "{text}");
}
