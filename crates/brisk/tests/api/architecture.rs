//! The module structure stays a layered graph: `platform` is the ground
//! floor and never reaches up into `app` or the business `modules`; no two
//! parts of the crate depend on each other, directly or through others.
//! Read from the source's `crate::…` paths (in `use` lines and inline), so
//! a new cycle fails the suite before it can set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The unit a source file belongs to: `app`, `main`, `seed`, `modules` (its root
/// file), `modules::<name>` or `platform::<name>`.
fn unit_of(relative: &Path) -> Option<String> {
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    match parts.as_slice() {
        [single] if single == "lib" => None,
        [single] => Some(single.clone()),
        // `seed` is a tool above the modules, one unit like `app`.
        [root, ..] if root == "seed" => Some(root.clone()),
        [root, rest @ ..] if root == "modules" || root == "platform" => match rest {
            [name] if name == "mod" => Some(root.clone()),
            [name, ..] => Some(format!("{root}::{name}")),
            [] => None,
        },
        _ => None,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The units a piece of code names through `crate::…` paths, including
/// grouped imports such as `use crate::modules::{crm, inventory};`.
fn referenced_units(code: &str) -> BTreeSet<String> {
    let mut units = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| {
                c.is_alphanumeric()
                    || *c == '_'
                    || *c == ':'
                    || *c == '{'
                    || *c == '}'
                    || *c == ','
                    || *c == ' '
                    || *c == '\n'
                    || *c == '*'
            })
            .collect();
        let mut segments = path.splitn(2, "::");
        let head = segments.next().unwrap_or("").trim();
        let tail = segments.next().unwrap_or("");
        match head {
            "app" | "main" | "seed" => {
                units.insert(head.to_owned());
            }
            "modules" | "platform" => {
                let tail = tail.trim_start();
                if let Some(group) = tail.strip_prefix('{') {
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    for item in group.split(',') {
                        let name = item.trim().split("::").next().unwrap_or("").trim();
                        if name == "self" {
                            units.insert(head.to_owned());
                        } else if !name.is_empty() {
                            units.insert(format!("{head}::{name}"));
                        }
                    }
                } else {
                    let name: String = tail
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if name.is_empty() {
                        units.insert(head.to_owned());
                    } else {
                        units.insert(format!("{head}::{name}"));
                    }
                }
            }
            _ => {}
        }
    }
    units
}

/// Source without comments (a path in a doc comment is no dependency).
fn code_of(source: &str) -> String {
    source
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn dependency_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = crate::common::crate_dir().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        // Unit tests may reach anywhere; they are not part of the graph.
        if relative.to_string_lossy().ends_with("_tests.rs") {
            continue;
        }
        let Some(unit) = unit_of(relative) else {
            continue;
        };
        let source = std::fs::read_to_string(&file).expect("readable");
        let code = code_of(&source);
        let code = code.split("#[cfg(test)]").next().unwrap_or("");
        graph
            .entry(unit.clone())
            .or_default()
            .extend(referenced_units(code));
    }
    // `crate::modules::backfill(…)` names a function of the `modules` root,
    // not a unit: a path that is no unit belongs to its parent.
    let units: BTreeSet<String> = graph.keys().cloned().collect();
    for (unit, targets) in graph.iter_mut() {
        *targets = targets
            .iter()
            .map(|t| {
                if units.contains(t) {
                    t.clone()
                } else {
                    t.split("::").next().unwrap_or(t).to_owned()
                }
            })
            .filter(|t| t != unit)
            .collect();
    }
    graph
}

/// A cycle through the graph, if there is one, as the units along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        unit: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(unit) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = path.iter().position(|u| u == unit).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(unit.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(unit.to_owned(), Mark::Visiting);
        path.push(unit.to_owned());
        for next in graph.get(unit).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(unit.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for unit in graph.keys() {
        if let Some(cycle) = visit(unit, graph, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_crate_has_no_dependency_cycles() {
    let graph = dependency_graph();
    assert!(
        graph.contains_key("platform::db") && graph.contains_key("modules::orders"),
        "the source was read: {:?}",
        graph.keys().collect::<Vec<_>>()
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("dependency cycle: {}", cycle.join(" → "));
    }
}

#[test]
fn platform_never_depends_on_app_or_the_business_modules() {
    let graph = dependency_graph();
    let upward: Vec<String> = graph
        .iter()
        .filter(|(unit, _)| unit.starts_with("platform"))
        .flat_map(|(unit, targets)| {
            targets
                .iter()
                .filter(|t| *t == "app" || *t == "seed" || t.starts_with("modules"))
                .map(move |t| format!("{unit} → {t}"))
        })
        .collect();
    assert!(upward.is_empty(), "platform reaches up: {upward:?}");
}

#[test]
fn the_cycle_check_sees_grouped_imports_and_finds_a_planted_cycle() {
    assert_eq!(
        referenced_units(
            "use crate::modules::{crm, inventory::MAX, self};\nuse crate::platform::db::sql;"
        ),
        BTreeSet::from([
            "modules".to_owned(),
            "modules::crm".to_owned(),
            "modules::inventory".to_owned(),
            "platform::db".to_owned(),
        ])
    );
    let planted = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(
        find_cycle(&planted),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

/// Written to `target/` for ARCHITECTURE.md's map; not an assertion.
#[test]
fn prints_the_dependency_graph() {
    for (unit, targets) in dependency_graph() {
        println!(
            "{unit} -> {}",
            targets.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
}

#[test]
fn nothing_but_main_depends_on_the_seed_tool() {
    let graph = dependency_graph();
    let users: Vec<&String> = graph
        .iter()
        .filter(|(unit, targets)| *unit != "main" && *unit != "seed" && targets.contains("seed"))
        .map(|(unit, _)| unit)
        .collect();
    assert!(users.is_empty(), "these reach the seed tool: {users:?}");
    assert!(
        graph.contains_key("seed"),
        "the seed tool is a unit of the graph"
    );
}
