//! The library's modules form layers along the data path: no module depends, through any chain of
//! `crate::` paths, on a module that depends on it. Each stage under `stages/` counts as a module
//! of its own (stages must stay usable alone); every other top-level module counts as one, its
//! children included. Unit tests (`tests.rs` files and what follows `#[cfg(test)]`) are left out:
//! they may use anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The module a file belongs to: `stages::NAME` for a stage, else the top-level module.
fn node_of(rel: &Path) -> Option<String> {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    match parts.as_slice() {
        [one] if one == "lib" => None,
        [first, ..] if first == "bin" => None,
        [first, second, ..] if first == "stages" && second != "mod" => {
            Some(format!("stages::{second}"))
        }
        [first, ..] => Some(first.clone()),
        [] => None,
    }
}

/// The module a `crate::` path names.
fn node_of_path(path: &str) -> String {
    let mut segs = path.split("::");
    let first = segs.next().unwrap_or_default();
    let second = segs.next().unwrap_or_default();
    match first {
        "Config" | "Fallback" | "Stages" => "config".into(),
        "Applied" | "Decoder" | "Regions" | "Replica" => "decoder".into(),
        "Encoder" => "encoder".into(),
        "Error" => "error".into(),
        "DecoderStats" | "EncoderStats" => "stats".into(),
        "stages"
            if !second.is_empty() && second.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
        {
            format!("stages::{second}")
        }
        other => other.into(),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The `crate::` paths a file's non-test code names (comments left out).
fn crate_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        if code.starts_with("//") {
            continue;
        }
        let code = code.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let tail = &rest[i + "crate::".len()..];
            let end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            paths.push(tail[..end].to_string());
            rest = &tail[end..];
        }
        // `use crate::{a, b::c}` names several modules
        if let Some(i) = code.find("crate::{") {
            let inner = &code[i + "crate::{".len()..];
            let inner = inner.split('}').next().unwrap_or_default();
            paths.extend(inner.split(',').map(|s| s.trim().to_string()));
        }
    }
    paths.retain(|p| !p.is_empty() && !p.starts_with('{'));
    paths
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        if rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let Some(from) = node_of(rel) else { continue };
        let text = std::fs::read_to_string(&f).unwrap();
        let deps = edges.entry(from.clone()).or_default();
        for p in crate_paths(&text) {
            let to = node_of_path(&p);
            if to != from && !to.is_empty() {
                deps.insert(to);
            }
        }
    }
    edges
}

/// A cycle through `start`, if there is one.
fn cycle_from(g: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        g: &BTreeMap<String, BTreeSet<String>>,
        at: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in g.get(at).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(g, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    walk(g, start, start, &mut path, &mut seen).then_some(path)
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let g = graph();
    // the graph is the real one: the stages and the path's main modules are in it
    for m in [
        "stages::delta",
        "stages::hash",
        "format",
        "entropy",
        "encoder",
        "decoder",
        "lz4",
    ] {
        assert!(g.contains_key(m), "module {m} not found in src/");
    }
    assert!(g["encoder"].contains("entropy") && g["decoder"].contains("format"));
    let cycles: Vec<String> = g
        .keys()
        .filter_map(|m| cycle_from(&g, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import circles:\n{}", cycles.join("\n"));
}

#[test]
fn the_wire_format_and_the_stages_are_leaves_of_the_path() {
    let g = graph();
    let path_modules = [
        "encoder", "decoder", "channels", "ffi", "entropy", "compress",
    ];
    for (m, deps) in &g {
        if m == "format" || m.starts_with("stages::") {
            let up: Vec<&String> = deps
                .iter()
                .filter(|d| path_modules.contains(&d.as_str()))
                .collect();
            assert!(up.is_empty(), "{m} depends on {up:?}");
        }
    }
}

#[test]
fn the_checker_finds_a_circle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(cycle_from(&g, "a").unwrap(), ["a", "b", "c"]);
    g.get_mut("c").unwrap().clear();
    assert!(cycle_from(&g, "a").is_none());
    assert_eq!(
        crate_paths("use crate::{a, b::c};\n// crate::d\nx(crate::e::f);\n#[cfg(test)]\ncrate::g"),
        ["a", "b::c", "e::f"]
    );
}
