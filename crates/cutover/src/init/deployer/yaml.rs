//! Deployer's `deploy.yaml`: `import` (the recipe), `config` (as `set`),
//! `hosts` in the file's order, and every other key (tasks, hooks) said.

use indexmap::IndexMap;

use super::super::imported::Imported;
use super::super::value::Value;
use super::{DeployerHost, Reading, host_setting};

/// `deploy.yaml`: `import`, `config`, `hosts` (in order), and the rest said.
pub(super) fn read(text: &str) -> Result<Imported, String> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        import: serde_json::Value,
        #[serde(default)]
        config: IndexMap<String, serde_json::Value>,
        #[serde(default)]
        hosts: IndexMap<String, IndexMap<String, serde_json::Value>>,
    }
    let file: File = serde_saphyr::from_str(text).map_err(|e| format!("deploy.yaml: {e}"))?;
    let keys: IndexMap<String, serde_json::Value> =
        serde_saphyr::from_str(text).map_err(|e| format!("deploy.yaml: {e}"))?;
    let mut reading = Reading {
        imported: Imported { read: vec!["deploy.yaml".into()], default_keep: 10, ..Imported::default() },
        ..Reading::default()
    };
    let json = |v: &serde_json::Value| -> Option<Value> {
        match v {
            serde_json::Value::String(s) => Some(Value::Str(s.clone())),
            serde_json::Value::Number(n) => n.as_i64().map(Value::Int),
            serde_json::Value::Bool(b) => Some(Value::Bool(*b)),
            serde_json::Value::Array(items) => {
                items.iter().map(|i| i.as_str().map(str::to_owned)).collect::<Option<_>>().map(Value::List)
            }
            serde_json::Value::Object(map) => map
                .iter()
                .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect::<Option<_>>()
                .map(Value::Map),
            serde_json::Value::Null => None,
        }
    };
    let imports: Vec<String> = match &file.import {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    for import in imports {
        if let Err(why) = reading.recipe(&import) {
            reading.imported.left.push(format!("deploy.yaml: import `{import}`: {why}"));
        }
    }
    for (key, value) in &file.config {
        if let Err(why) = reading.setting(false, key, json(value)) {
            reading.imported.left.push(format!("deploy.yaml: config.{key}: {why}"));
        }
    }
    for (alias, settings) in &file.hosts {
        let at = format!("deploy.yaml: hosts.{alias}");
        let mut host = DeployerHost { alias: alias.clone(), at, ..DeployerHost::default() };
        for (key, value) in settings {
            if let Err(why) = host_setting(&mut host, key, json(value)) {
                reading.imported.left.push(format!("deploy.yaml: hosts.{alias}.{key}: {why}"));
            }
        }
        reading.hosts.push(host);
    }
    for key in keys.keys().filter(|k| !matches!(k.as_str(), "import" | "config" | "hosts")) {
        reading.imported.left.push(format!("deploy.yaml: `{key}`: tasks and hooks are not carried over: write them as the inventory's hooks (docs/recipes.md)"));
    }
    Ok(reading.finish("deploy.yaml"))
}
