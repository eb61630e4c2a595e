//! The plan as text: phases in order, gates, and each host's exact script
//! (hosts with the same script are shown once).

use std::fmt::Write;

use indexmap::IndexMap;

use super::{HostScript, Node, Plan, Scope};

pub(super) fn text(plan: &Plan) -> String {
    let mut out = String::new();
    // A rollback goes to a release already built: it names no commit.
    let commit = if plan.commit.is_empty() { String::new() } else { format!(", commit {}", plan.commit) };
    let _ = writeln!(out, "{:?} of {}: release {}{commit}", plan.command, plan.application, plan.release);
    if !plan.secrets.is_empty() {
        let names = plan.secrets.join(", ");
        let _ = writeln!(out, "secrets, read here at the start of the run and sent to the steps on stdin: {names}");
    }
    for line in crate::remote::fpm::found_lines(plan.fpm.iter().map(|(h, c)| (h.as_str(), c))) {
        let _ = writeln!(out, "{line}");
    }
    for line in crate::remote::activation::plan_lines(plan.fpm.iter().map(|(h, c)| (h.as_str(), &c.activation))) {
        let _ = writeln!(out, "{line}");
    }
    local_hooks(&mut out, plan);
    let mut n = 0;
    for node in &plan.nodes {
        match node {
            Node::Gate(name) => {
                let _ = writeln!(out, "\n== gate: {name} ==");
            }
            Node::Pause(duration) => {
                let _ = writeln!(out, "\n== pause {}s ==", duration.as_secs());
            }
            Node::Local(hook) => {
                n += 1;
                let _ =
                    writeln!(out, "\n[{n}] {} batch {} (here, for {})", hook.phase, hook.batch, hook.hosts.join(", "));
                for (name, value) in &hook.env {
                    let _ = writeln!(out, "    {name}={}", crate::shell::quote(value));
                }
                let _ = writeln!(out, "    {}", hook.command);
            }
            Node::Phase(p) => {
                n += 1;
                let batch = p.batch.map(|b| format!(" batch {b}")).unwrap_or_default();
                let _ = writeln!(out, "\n[{n}] {}{batch}", p.phase);
                for step in &p.steps {
                    let scope = match &step.scope {
                        Scope::Every => "every host".to_owned(),
                        Scope::Once(host) => format!("once, on {host}"),
                        Scope::Roles(roles) => format!("roles {}", roles.join(", ")),
                    };
                    let _ = writeln!(out, "  step `{}` ({scope})", step.name);
                    if let Some(reuse) = step.reuse {
                        let _ =
                            writeln!(out, "    {}; --full-build copies nothing", crate::remote::reuse::describe(reuse));
                    }
                }
                scripts(&mut out, &p.hosts);
            }
        }
    }
    let _ = writeln!(out, "\n[on failure before the switch]");
    scripts(&mut out, &plan.abort);
    let _ = writeln!(out, "\n[on failure after switching began: {:?}]", plan.rollout.on_failure);
    scripts(&mut out, &plan.undo);
    if out.contains(PROGRAM_SHOWN) {
        let at = crate::remote::activation::PROGRAM_PATH;
        let _ = writeln!(out, "\n[cutover's FastCGI script, written to <deploy_path>/{at} and run by PHP-FPM]");
        for line in crate::remote::activation::PROGRAM.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// What the plan shows instead of the FastCGI script in each script that
/// carries it: the script once, at the end.
const PROGRAM_SHOWN: &str = "cutover_fpm_php=\"$(the FastCGI script at the end of this plan)\"";

/// The inventory's `local_hooks`, which the plan runs none of.
fn local_hooks(out: &mut String, plan: &Plan) {
    let (before, after) = &plan.local_hooks;
    for step in before {
        let _ = writeln!(out, "before the run, here (a failure stops it): `{}`: {}", step.name, step.run.value.trim());
    }
    for step in after {
        let _ = writeln!(out, "after the run, here, whatever its outcome: `{}`: {}", step.name, step.run.value.trim());
    }
}

/// Each distinct script once, under the hosts that run it.
fn scripts(out: &mut String, hosts: &IndexMap<String, HostScript>) {
    let mut groups: Vec<(Vec<&str>, String, u64)> = Vec::new();
    let program = format!("cutover_fpm_php={}", crate::shell::quote(crate::remote::activation::PROGRAM));
    for (host, script) in hosts {
        let text = script.script.render_masked().replace(&program, PROGRAM_SHOWN);
        let limit = script.timeout.as_secs();
        match groups.iter_mut().find(|(_, t, l)| *t == text && *l == limit) {
            Some((names, _, _)) => names.push(host),
            None => groups.push((vec![host], text, limit)),
        }
    }
    for (names, text, limit) in groups {
        let _ = writeln!(out, "  on {} (time limit {limit}s):", names.join(", "));
        for line in text.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
}
