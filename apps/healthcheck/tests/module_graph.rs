//! The crate's modules import each other without a cycle, and the renderers
//! (`metrics`, `page`) read a snapshot, never the agent's shared state.
//!
//! Read from the source: every `crate::module` path (and every module named
//! in a `crate::{…}` group) in `src/<module>.rs` or `src/<module>/…` is an
//! edge. Comments are skipped; `#[cfg(test)]` code counts too (a test
//! module's imports are imports).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// The modules `text` names through `crate::`.
fn imports(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: after `{` or a `,` at depth 1.
            let mut depth = 1;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => start = true,
                    c if start && (c.is_alphanumeric() || c == '_') => {
                        out.insert(ident(&group[i..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).expect("under src");
            let top = relative
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .expect("a name")
                .trim_end_matches(".rs")
                .to_owned();
            if top == "lib" || top == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable");
            let deps = graph.entry(top.clone()).or_default();
            deps.extend(imports(&text).into_iter().filter(|d| *d != top));
        }
    }
    graph
}

/// A cycle through `from`, if any (depth-first).
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut c = path[at..].to_vec();
            c.push(node.to_owned());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(graph, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(graph, node, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_imports_are_read_as_written() {
    let text = "use crate::{a::X, b, c::{d, e}};\n// crate::commented\nfn f() { crate::f::g(); }";
    let got: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(got, ["a", "b", "c", "f"]);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("x".into()).or_default().insert("y".into());
    g.entry("y".into()).or_default().insert("x".into());
    assert_eq!(
        cycle(&g),
        Some(vec!["x".into(), "y".into(), "x".into()]),
        "a cycle is found"
    );
}

#[test]
fn the_modules_import_each_other_without_a_cycle() {
    let graph = graph();
    assert!(graph.contains_key("agent") && graph.contains_key("api"));
    assert_eq!(cycle(&graph), None, "import cycle: {graph:#?}");
}

#[test]
fn metrics_and_the_page_render_from_a_snapshot_only() {
    let graph = graph();
    for renderer in ["metrics", "page"] {
        let deps = &graph[renderer];
        for forbidden in ["agent", "shared", "api"] {
            assert!(
                !deps.contains(forbidden),
                "{renderer} imports {forbidden}: {deps:?}"
            );
        }
        assert!(deps.contains("snapshot"), "{renderer}: {deps:?}");
    }
}
