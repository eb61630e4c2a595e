//! Bad input: each mistake gets a message naming the file, line, column and
//! field, exit code 2, and no host is touched.

use crate::harness::{Project, stderr, stdout};

const GOOD: &str = "application: shop\ndeploy_path: /srv/shop\nsource: app\nrecipe: php\n\
                    php_fpm: {reload: none, config_test: none}\ndefaults:\n  connection: local\nhosts:\n  - name: web1\n    address: hosts/web1\n";

/// Runs `cutover deploy` on `inventory` and checks the refusal.
fn refused(inventory: &str, expected: &[&str]) {
    let project = Project::new("");
    project.write("cutover.yaml", inventory);
    let out = project.cutover(&["deploy"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for text in expected {
        assert!(err.contains(text), "expected `{text}` in:\n{err}");
    }
    assert!(!project.path().join("hosts").exists(), "no host was touched");
}

#[test]
fn the_good_inventory_is_accepted() {
    let project = Project::new("");
    project.write("cutover.yaml", GOOD);
    assert_eq!(project.cutover(&["deploy"]).status.code(), Some(0));
}

#[test]
fn a_yaml_syntax_error_names_line_and_column() {
    refused(&GOOD.replace("recipe: php", "recipe: [php"), &["cutover.yaml:4:"]);
}

#[test]
fn an_unknown_key_suggests_the_closest_one() {
    refused(
        &GOOD.replace("deploy_path:", "deploy_pth:"),
        &["cutover.yaml:2:1", "unknown key `deploy_pth`", "did you mean `deploy_path`?"],
    );
    refused(&GOOD.replace("    address:", "    adress:"), &["cutover.yaml:10:5", "did you mean `address`?"]);
}

#[test]
fn a_wrong_type_is_refused() {
    refused(&format!("{GOOD}keep_releases: many\n"), &["cutover.yaml:11:16"]);
}

#[test]
fn an_unknown_multiplexing_mode_is_refused_where_it_is_written() {
    refused(
        &format!("{GOOD}ssh:\n  multiplex: mosh\n"),
        &["cutover.yaml:12:14", "`mosh` is not one of: native, process"],
    );
    let project = Project::new("");
    let out = project.cutover(&["deploy", "--multiplex", "mosh"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid value 'mosh' for '--multiplex <MODE>'"), "{}", stderr(&out));
}

#[test]
fn duplicate_host_names_are_refused() {
    let twice = format!("{GOOD}  - name: web1\n    address: hosts/other\n");
    refused(&twice, &["cutover.yaml:11:11", "hosts[1].name", "duplicate host name `web1` (first defined on line 9)"]);
}

#[test]
fn a_relative_or_root_deploy_path_is_refused() {
    refused(&GOOD.replace("/srv/shop", "srv/shop"), &["cutover.yaml:2:14", "deploy_path: must be an absolute path"]);
    refused(&GOOD.replace("/srv/shop", "/"), &["deploy_path: must not be the root directory"]);
}

#[test]
fn keep_releases_below_two_is_refused() {
    refused(&format!("{GOOD}keep_releases: 1\n"), &["cutover.yaml:11:16", "keep_releases: must be at least 2"]);
}

#[test]
fn a_missing_source_directory_is_refused() {
    refused(
        &GOOD.replace("source: app", "source: nowhere"),
        &["cutover.yaml:3:9", "source: source directory", "does not exist"],
    );
}

#[test]
fn an_unknown_recipe_is_refused_with_a_suggestion() {
    refused(
        &GOOD.replace("recipe: php", "recipe: laravle"),
        &["cutover.yaml:4:9", "unknown recipe `laravle`", "did you mean `laravel`?"],
    );
}

#[test]
fn a_bad_batch_size_is_refused_where_it_is_written() {
    refused(
        &format!("{GOOD}strategy: rolling\nrolling:\n  batch: [1, 0%]\n"),
        &["cutover.yaml:13:", "not a percentage"],
    );
}

#[test]
fn a_bad_batch_flag_is_refused() {
    let project = Project::new("");
    let out = project.cutover(&["deploy", "--mode", "rolling", "--batch", "two"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not a batch size"), "{}", stderr(&out));
    assert!(!project.path().join("hosts").exists());
}

#[test]
fn a_broken_recipe_file_names_the_recipe_file() {
    let project = Project::new("");
    project.write("cutover.yaml", &GOOD.replace("recipe: php", "recipe: deploy/recipe.yaml"));
    project.write("deploy/recipe.yaml", "hooks:\n  build:\n    - name: x\n      rn: true\n");
    let out = project.cutover(&["deploy"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("recipe.yaml:4:7") && err.contains("did you mean `run`?"), "{err}");
}

#[test]
fn json_mode_reports_bad_input_as_an_event() {
    let project = Project::new("");
    project.write("cutover.yaml", &GOOD.replace("deploy_path:", "deploy_pth:"));
    let (code, events) = project.cutover_json(&["deploy"]);
    assert_eq!(code, Some(2));
    assert_eq!(events[0]["event"], "error");
    assert!(events[0]["message"].as_str().unwrap_or("").contains("cutover.yaml:2:1"));
}

#[test]
fn a_shared_path_leaving_the_release_is_refused() {
    let text = GOOD.replace("recipe: php", "recipe: php\nshared:\n  dirs: [storage, ../20260101000000]");
    refused(&text, &["cutover.yaml:6:19", "shared.dirs[1]", "must not contain `.`, `..` or `//`"]);
    let text = GOOD.replace("recipe: php", "recipe: php\nshared:\n  files: [/etc/passwd]");
    refused(&text, &["shared.files[0]", "must be relative"]);
}

#[test]
fn a_var_that_would_clobber_cutover_s_own_is_refused() {
    refused(&format!("{GOOD}vars:\n  rel: /tmp\n"), &["vars.rel", "is reserved for cutover"]);
    refused(&format!("{GOOD}vars:\n  MY-VAR: x\n"), &["vars.MY-VAR", "is not a shell variable name"]);
}

#[test]
fn a_zero_step_timeout_is_refused() {
    refused(&format!("{GOOD}step_timeout: 0\n"), &["cutover.yaml:11:15", "step_timeout: must be at least 1 second"]);
}

/// An SSH fleet of one host: nothing is reached, the values are refused
/// before any ssh runs.
const SSH: &str = "application: shop\ndeploy_path: /srv/shop\nsource: app\nrecipe: php\n\
                   php_fpm: {reload: none, config_test: none}\ndefaults:\n  user: deploy\nhosts:\n  - name: web1\n    address: 10.0.1.11\n";

#[test]
fn ssh_values_that_would_run_a_command_here_are_refused_before_any_ssh_runs() {
    let cases = [
        (
            "    address: 10.0.1.11\n",
            "    address: 10.0.1.11\n    proxy_jump: 'bastion$(touch${IFS}pwned)'\n",
            "cutover.yaml:11:17",
            "hosts[0].proxy_jump",
        ),
        (
            "    address: 10.0.1.11\n",
            "    address: '-oProxyCommand=touch pwned'\n",
            "cutover.yaml:10:14",
            "hosts[0].address",
        ),
        ("  user: deploy\n", "  user: '-oProxyCommand=touch pwned'\n", "cutover.yaml:7:9", "defaults.user"),
        ("    address: 10.0.1.11\n", "", "cutover.yaml:9:11", "hosts[0].name"),
        ("  user: deploy\n", "  user: deploy\n  port: 0\n", "cutover.yaml:8:9", "defaults.port"),
    ];
    for (from, to, position, field) in cases {
        let inventory = SSH.replace(from, to);
        let inventory = if field == "hosts[0].name" {
            inventory.replace("name: web1", "name: 'web1;touch${IFS}pwned'")
        } else {
            inventory
        };
        for command in [&["deploy"][..], &["plan"], &["status"]] {
            let project = Project::new("");
            project.write("cutover.yaml", &inventory);
            let out = project.cutover(command);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{command:?} {field}: {err}");
            assert!(
                err.contains(position) && err.contains(field),
                "{command:?}: expected {position} {field} in:\n{err}"
            );
            assert!(!project.path().join("pwned").exists(), "nothing ran here");
        }
    }
}

#[test]
fn with_json_a_bad_command_line_or_inventory_is_one_json_error_on_stdout() {
    let project = Project::new("");
    project.write("cutover.yaml", GOOD);
    for args in
        [&["deploy", "--bogus", "--json"][..], &["--json", "frobnicate"], &["deploy", "--json", "--mode", "sideways"]]
    {
        let out = project.cutover(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let error: serde_json::Value =
            serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"));
        assert_eq!((error["event"].as_str(), error["kind"].as_str()), (Some("error"), Some("usage")), "{error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty() && !m.starts_with("error:")), "{error}");
    }
    project.write("cutover.yaml", &format!("{GOOD}keep_releases: 1\n"));
    let out = project.cutover(&["deploy", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(error["kind"], "config");
    assert_eq!((error["line"].as_u64(), error["column"].as_u64()), (Some(11), Some(16)), "{error}");
    assert_eq!(error["field"], "keep_releases");
    assert!(error["file"].as_str().is_some_and(|f| f.ends_with("cutover.yaml")), "{error}");
    assert!(project.cutover(&["--help"]).status.success(), "help is not an error");
}

/// Every file under `dir`: its path, kind, mode and bytes (or link target).
fn tree(dir: &std::path::Path) -> Vec<(String, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("meta");
        let name = path.strip_prefix(dir).expect("inside").display().to_string();
        let bytes = if meta.file_type().is_symlink() {
            std::fs::read_link(&path).expect("link").display().to_string().into_bytes()
        } else if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).expect("dir").map(|e| e.expect("entry").path()));
            Vec::new()
        } else {
            std::fs::read(&path).expect("file")
        };
        out.push((name, meta.permissions().mode(), bytes));
    }
    out.sort();
    out
}

/// Each rule of docs/inventory.md broken once, on a fleet already deployed:
/// exit 2, the file, line and column, the field, and every host's
/// directory byte-identical afterwards. `(from, to)` edits the good
/// inventory; an empty `from` appends `to`.
#[test]
fn every_rule_broken_is_refused_where_it_is_written_and_no_host_changes() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("", "keep_releases: 1", "11:16", "keep_releases"),
        ("", "keep_releases: many", "11:16", "keep_releases"),
        ("", "keep_releases: -1", "11:16", "keep_releases"),
        ("", "step_timeout: 0", "11:15", "step_timeout"),
        ("", "step_timeout: soon", "11:15", "step_timeout"),
        ("", "concurrency: 0", "11:14", "concurrency"),
        ("", "concurrency: lots", "11:14", "concurrency"),
        ("", "strategy: sideways", "11:11", "strategy"),
        ("", "on_failure: retry", "11:13", "on_failure"),
        ("", "resolve: remote", "11:10", "resolve"),
        ("", "exclude: [\"[bad\"]", "11:11", "exclude[0]"),
        ("", "shared: {files: [/etc/passwd]}", "11:18", "shared.files[0]"),
        ("", "shared: {dirs: [../up]}", "11:17", "shared.dirs[0]"),
        ("", "shared: {files: [\"a//b\"]}", "11:18", "shared.files[0]"),
        ("", "shared: {files: [\".env\\tx\"]}", "11:18", "shared.files[0]"),
        ("", "shared: {render: {.env: missing.tpl}}", "11:25", "shared.render..env"),
        ("", "shared: {create_missing: maybe}", "11:26", "create_missing"),
        ("", "hooks: {build: [{name: a, run: \"  \"}]}", "11:32", "hooks.build[0].run"),
        ("", "hooks: {build: [{name: a, run: x, timeout: 0}]}", "11:44", "hooks.build[0].timeout"),
        ("", "hooks: {build: [{name: a, run: x, when: {exists: /abs}}]}", "11:41", "hooks.build[0].when.exists"),
        ("", "hooks: {build: [{name: a, rn: x}]}", "11:27", "rn"),
        ("", "hooks: {build: [{name: a, run: x, reuse: vendr}]}", "11:42", "reuse"),
        ("", "hooks: {after_flip: [{name: a, run: x, reuse: vendor}]}", "11:37", "hooks.after_flip[0].reuse"),
        ("", "local_hooks: {before: [{name: a, run: \"  \"}]}", "11:39", "local_hooks.before[0].run"),
        ("", "local_hooks: {after: [{name: a, run: x, timeout: 0}]}", "11:50", "local_hooks.after[0].timeout"),
        ("", "local_hooks: {during: []}", "11:15", "during"),
        ("", "hooks: {build: [{name: a, run: x, roles: [db]}]}", "11:32", "hooks.build[0].roles"),
        ("", "hooks: {deploy: []}", "11:9", "deploy"),
        ("", "hooks: {build: [{name: a, run: x, once: sometimes}]}", "11:41", "once"),
        ("", "vars: {bad-name: x}", "11:18", "vars.bad-name"),
        ("", "vars: {PATH: x}", "11:14", "vars.PATH"),
        ("", "vars: {CUTOVER_X: x}", "11:19", "vars.CUTOVER_X"),
        ("", "vars: {A: \"a\\0b\"}", "11:11", "vars.A"),
        ("", "vars: {A: [1, 2]}", "11:11", "A"),
        ("", "secrets: {TOKEN: {env: X, file: y}}", "11:18", "secrets.TOKEN"),
        ("", "secrets: {bad-name: {env: X}}", "11:21", "secrets.bad-name"),
        ("", "secrets: {TOKEN: {vault: x}}", "11:19", "vault"),
        ("", "secrets: {TOKEN: {}}", "11:18", "secrets.TOKEN"),
        ("", "health_check: {retries: 2}", "11:15", "health_check"),
        ("", "health_check: {url: x, command: y}", "11:15", "health_check"),
        ("", "health_check: {url: x, retries: many}", "11:33", "retries"),
        ("", "rolling: {pause: soon}", "11:18", "pause"),
        ("", "rolling: {drain: {run: x, on: moon}}", "11:31", "on"),
        ("", "rolling: {batch: [1, lots]}", "11:22", "batch"),
        ("", "rolling: {undrain: {run: x, timeout: -5}}", "11:38", "timeout"),
        ("", "repository: git@example.com:a/b.git", "3:9", "source"),
        ("", "branch: main", "3:9", "source"),
        ("", "unknown_key: 1", "11:1", "unknown_key"),
        ("deploy_path: /srv/shop", "deploy_path: srv/shop", "2:14", "deploy_path"),
        ("deploy_path: /srv/shop", "deploy_path: /", "2:14", "deploy_path"),
        ("deploy_path: /srv/shop", "deploy_path: /srv/../etc", "2:14", "deploy_path"),
        ("deploy_path: /srv/shop", "deploy_path: \"/srv/sh\\nop\"", "2:14", "deploy_path"),
        ("recipe: php", "recipe: laravle", "4:9", "recipe"),
        ("recipe: php", "recipe: ./nowhere.yaml", "4:9", "recipe"),
        ("source: app", "source: nowhere", "3:9", "source"),
        ("config_test: none}", "config_test: none, bogus: 1}", "5:44", "bogus"),
        ("  connection: local", "  connection: telnet", "7:15", "connection"),
        ("  connection: local", "  connection: local\n  port: 0", "8:9", "defaults.port"),
        ("  connection: local", "  connection: local\n  user: '-x'", "8:9", "defaults.user"),
        ("  connection: local", "  connection: local\n  proxy_jump: 'b$(id)'", "8:15", "defaults.proxy_jump"),
        (
            "    address: hosts/web1\n",
            "    address: hosts/web1\n  - name: web1\n    address: hosts/b\n",
            "11:11",
            "hosts[1].name",
        ),
        (
            "    address: hosts/web1\n",
            "    address: hosts/web1\n    roles: [primary]\n  - name: b\n    address: hosts/b\n    roles: [primary]\n",
            "14:12",
            "hosts[1].roles",
        ),
        ("  - name: web1", "  - name: web one", "9:11", "hosts[0].name"),
        ("hosts:\n  - name: web1\n    address: hosts/web1\n", "hosts: []\n", "8:1", "hosts"),
        ("", "secrets: {TOKEN: {value: x, env: Y}}", "11:18", "secrets.TOKEN"),
        ("    address: hosts/web1\n", "", "9:11", "hosts[0].address"),
        ("    address: hosts/web1", "    adress: hosts/web1", "10:5", "adress"),
        ("recipe: php", "recipe: [php", "4:9", "recipe"),
        ("hosts:", "vars: {A: b\nhosts:", "8:7", "vars"),
        ("  connection: local", "\tconnection: local", "7:2", ""),
        ("    address: hosts/web1", "    address: hosts/web1\n    connection: ssh", "10:14", "hosts[0].address"),
    ];
    assert!(cases.len() >= 50);
    let project = Project::new("");
    project.write("cutover.yaml", GOOD);
    assert_eq!(project.cutover(&["deploy"]).status.code(), Some(0));
    let before = tree(&project.path().join("hosts"));
    let mut wrong = Vec::new();
    for (from, to, position, field) in cases {
        let inventory = if from.is_empty() { format!("{GOOD}{to}\n") } else { GOOD.replace(from, to) };
        assert_ne!(inventory, GOOD, "{to}");
        project.write("cutover.yaml", &inventory);
        let out = project.cutover(&["deploy", "--json"]);
        let said: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let at = format!("{}:{}", said["line"], said["column"]);
        let field_said = said["field"].as_str().unwrap_or_default();
        if out.status.code() != Some(2) || at != *position || field_said != *field {
            wrong.push(format!("{to:?}: exit {:?}, {at} {} ({})", out.status.code(), said["field"], said["message"]));
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
    assert_eq!(tree(&project.path().join("hosts")), before, "no host changed");
}

#[test]
fn a_selection_that_names_no_host_says_which_flag_and_value() {
    let project = Project::new("");
    project.write("cutover.yaml", GOOD);
    for (args, said) in [
        (&["plan", "--roles", "db"][..], "no host has the role `db` named in --roles (the inventory's roles: none)"),
        (&["plan", "--hosts", "web9"], "unknown host `web9` in --hosts"),
    ] {
        let out = project.cutover(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
    }
    assert!(!project.path().join("hosts").exists());
}

/// Values with shell metacharacters and option-looking text where the
/// inventory allows them: deployed exactly, and nothing they spell runs.
#[test]
fn hostile_values_are_deployed_exactly_and_nothing_they_spell_runs() {
    let hostile = r#"'$(touch pwned-1)' `touch pwned-2`; touch pwned-3 && "q" -rf --x"#;
    let project = Project::new("");
    let inventory = GOOD
        .replace("/srv/shop", "\"/srv/it's $(touch pwned-4) `x` -rf\"")
        .replace("recipe: php\n", "recipe: php\nshared:\n  dirs: [\"st orage;touch pwned-5\"]\n  files: [\"-e $(touch pwned-6)\"]\n  create_missing: true\n");
    let inventory = format!(
        "{inventory}vars:\n  HOSTILE: {}\nhooks:\n  build:\n    - name: echo it\n      run: printf '%s' \"$HOSTILE\" > seen.txt\n",
        serde_json::to_string(hostile).expect("json string")
    );
    project.write("cutover.yaml", &inventory);
    let out = project.cutover(&["deploy"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let root = project.path().join("hosts/web1/srv/it's $(touch pwned-4) `x` -rf");
    let current = std::fs::read_link(root.join("current")).expect("deployed into the hostile path");
    let release = root.join(current);
    assert_eq!(std::fs::read_to_string(release.join("seen.txt")).expect("seen"), hostile);
    assert!(release.join("st orage;touch pwned-5").is_symlink() && release.join("-e $(touch pwned-6)").is_symlink());
    let mut stack = vec![project.path().to_path_buf(), std::env::current_dir().expect("cwd")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with("pwned-"), "an injected command ran: {}", entry.path().display());
            if entry.file_type().is_ok_and(|t| t.is_dir()) && dir.starts_with(project.path()) {
                stack.push(entry.path());
            }
        }
    }
}

#[test]
fn an_activation_without_what_it_needs_is_refused_where_it_is_written() {
    let bg = |extra: &str| {
        GOOD.replace("config_test: none}", &format!("config_test: none, activation: blue-green{extra}}}"))
    };
    refused(&bg(""), &["cutover.yaml:5:", "php_fpm.blue_green", "the link nginx connects through"]);
    let masters = ", blue_green: {link: /run/app.sock, blue: {socket: /run/b.sock, start: b, stop: b}, \
                   green: {socket: run/g.sock, start: g, stop: g}}";
    refused(&bg(masters), &["php_fpm.blue_green.green.socket", "must be an absolute path, got `run/g.sock`"]);
    let same = masters.replace("run/g.sock", "/run/app.sock");
    refused(&bg(&same), &["php_fpm.blue_green", "three different paths"]);
    refused(&GOOD.replace("config_test: none}", "config_test: none, activation: hot}"), &["cutover.yaml:5:", "hot"]);

    // `--activation blue-green` over a file without the masters: refused
    // the same way, naming the flag.
    let project = Project::new("");
    project.write("cutover.yaml", GOOD);
    let out = project.cutover(&["deploy", "--activation", "blue-green"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--activation blue-green") && err.contains("php_fpm.blue_green"), "{err}");
    assert!(!project.path().join("hosts").exists(), "no host was touched");
}
