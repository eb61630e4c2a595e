//! The plan built from each built-in recipe: phases in order, gates before
//! any switch, `once` steps on the primary host only.

use std::sync::Arc;

use indexmap::IndexMap;

use super::{DeployInputs, Node, Plan, RollbackInputs, Scope, deploy, rollback};
use crate::config::{LoadedInventory, load_inventory};
use crate::event::Phase;
use crate::fleet::{Fleet, Selection};
use crate::release::ReleaseId;
use crate::remote::lock::LockOwner;
use crate::remote::prepare::Delivery;
use crate::remote::probe::Snapshot;

fn loaded(recipe: &str) -> (tempfile::TempDir, LoadedInventory) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("app")).expect("app");
    let text = format!(
        "application: shop\ndeploy_path: /srv/shop\nsource: app\nrecipe: {recipe}\n\
         defaults:\n  connection: local\nhosts:\n  - name: web1\n    address: h/web1\n\
         \x20 - name: web2\n    address: h/web2\n    roles: [primary]\n"
    );
    std::fs::write(dir.path().join("cutover.yaml"), text).expect("write");
    let loaded = load_inventory(&dir.path().join("cutover.yaml")).expect("loads");
    (dir, loaded)
}

fn phases(plan: &Plan) -> Vec<String> {
    plan.nodes
        .iter()
        .map(|n| match n {
            Node::Phase(p) => p.phase.to_string(),
            Node::Gate(_) => "GATE".to_owned(),
        })
        .collect()
}

fn plan_for(recipe: &str) -> Plan {
    let (_dir, loaded) = loaded(recipe);
    let fleet = Fleet::select(&loaded, &Selection::default()).expect("fleet");
    let snapshots: IndexMap<String, Snapshot> = IndexMap::new();
    deploy(DeployInputs {
        loaded: &loaded,
        fleet: &fleet,
        snapshots: &snapshots,
        release: "20261123143012".parse().expect("id"),
        commit: "abc".into(),
        delivery: Delivery::Upload,
        payload: Some(Arc::from(Vec::new())),
        owner: LockOwner::current("shop", "deploy", None),
    })
}

#[test]
fn laravel_plan_has_every_phase_with_gates_before_the_switch() {
    let plan = plan_for("laravel");
    assert_eq!(
        phases(&plan),
        [
            "lock",
            "prepare",
            "build",
            "GATE",
            "before-flip",
            "stage",
            "GATE",
            "flip",
            "reload",
            "after-flip",
            "finalize"
        ]
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
    let fleet = Fleet::select(&loaded, &Selection::default()).expect("fleet");
    let target: ReleaseId = "20261123120000".parse().expect("id");
    let plan = rollback(RollbackInputs {
        loaded: &loaded,
        fleet: &fleet,
        snapshots: &IndexMap::new(),
        target,
        owner: LockOwner::current("shop", "rollback", None),
    });
    assert_eq!(phases(&plan), ["lock", "stage", "GATE", "flip", "reload", "after-rollback", "finalize"]);
    for script in plan.abort.values() {
        assert!(!script.script.render().contains("rm -rf \"$d/releases/$r\""), "abort must not remove the target");
    }
}
