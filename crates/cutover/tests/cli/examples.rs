//! The files users copy from: `inventory.example.yaml` and every recipe in
//! `recipes/` must load, so examples can never rot.

use std::path::Path;

use cutover_core::config::{Hook, load_inventory, load_recipe};

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(Path::parent).expect("repository root")
}

#[test]
fn the_example_inventory_loads() {
    let loaded = load_inventory(&repo_root().join("inventory.example.yaml")).expect("example inventory loads");
    assert_eq!(loaded.inventory.hosts.len(), 3);
    assert_eq!(loaded.recipe_origin, "php");
}

#[test]
fn every_recipe_file_loads_and_has_build_steps() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo_root().join("recipes")).expect("recipes dir") {
        let path = entry.expect("entry").path();
        let recipe = load_recipe(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!recipe.hooks.steps(Hook::Build).is_empty(), "{}", path.display());
        seen += 1;
    }
    assert_eq!(seen, 3, "php, laravel, symfony");
}

#[test]
fn laravel_migrates_once_before_the_flip_and_restarts_queues_once_after() {
    let recipe = load_recipe(&repo_root().join("recipes/laravel.yaml")).expect("laravel");
    let before = recipe.hooks.steps(Hook::BeforeFlip);
    assert!(before.iter().any(|s| s.once && s.run.value.contains("artisan migrate --force")));
    let after = recipe.hooks.steps(Hook::AfterFlip);
    assert!(after.iter().any(|s| s.once && s.run.value.contains("artisan queue:restart")));
    let build: Vec<&str> = recipe.hooks.steps(Hook::Build).iter().map(|s| s.run.value.as_str()).collect();
    assert!(
        build
            .iter()
            .any(|r| r.contains("composer install --no-dev --optimize-autoloader --no-interaction --prefer-dist"))
    );
}
