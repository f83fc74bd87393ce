//! The crate's modules form a one-way stack (see `src/lib.rs`): each layer imports only from
//! the layers below it, and the modules inside a layer import each other without a cycle.
//! This test reads the sources and fails on an upward import or a cycle, naming the files.
//!
//! Run it alone with `cargo test -p mosaic-gateway --test layers`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. `main` stands outside the stack.
const LAYERS: [&str; 9] = [
    "grpc",
    "telemetry",
    "resilience",
    "transcode",
    "access",
    "config",
    "client",
    "compose",
    "server",
];

/// A module of the crate, as `layer::module` (`client::retry`); a layer's own `mod.rs` is
/// `layer::mod`.
type Module = String;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The module a source file belongs to: its layer and the first module inside it.
fn module_of(relative: &Path) -> Module {
    let parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    match parts.as_slice() {
        [file] => format!("{file}::mod"),
        [layer, rest @ ..] => format!("{layer}::{}", rest[0]),
        [] => unreachable!("a file has a name"),
    }
}

/// The modules a file refers to through `crate::…` and `super::…` paths, outside comments.
fn references(module: &str, text: &str) -> BTreeSet<Module> {
    let (layer, _) = module.split_once("::").unwrap();
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        for (prefix, base) in [("crate::", None), ("super::", Some(layer))] {
            let mut rest = code;
            while let Some(at) = rest.find(prefix) {
                let after = &rest[at + prefix.len()..];
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                rest = after;
                if name.is_empty() {
                    continue;
                }
                let target = match base {
                    None => {
                        let inner: String = after[name.len()..]
                            .strip_prefix("::")
                            .unwrap_or_default()
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        let first = inner.chars().next();
                        if LAYERS.contains(&name.as_str()) && first.is_some_and(char::is_lowercase)
                        {
                            format!("{name}::{inner}")
                        } else {
                            format!("{name}::mod")
                        }
                    }
                    Some(layer) => format!("{layer}::{name}"),
                };
                found.insert(target);
            }
        }
    }
    found
}

fn rank(module: &str) -> Option<usize> {
    let layer = module.split("::").next()?;
    LAYERS.iter().position(|l| *l == layer)
}

#[test]
fn modules_import_only_downwards_and_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = module_of(relative);
        let text = std::fs::read_to_string(file).unwrap();
        for target in references(&module, &text) {
            if let (Some(from), Some(to)) = (rank(&module), rank(&target))
                && to > from
            {
                upward.push(format!("{} imports {target}", relative.display()));
            }
            if target != module && rank(&module) == rank(&target) && !target.ends_with("::tests") {
                graph.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports from a higher layer:\n{}",
        upward.join("\n")
    );
    // The layer's own `mod.rs` declares and re-exports its modules; edges into it from its
    // modules (`super::Name`) are the only ones that may close a loop through it.
    for (module, targets) in &graph {
        if module.ends_with("::mod") {
            continue;
        }
        for target in targets.iter().filter(|t| !t.ends_with("::mod")) {
            let mut seen = BTreeSet::new();
            let mut stack = vec![target.clone()];
            while let Some(next) = stack.pop() {
                assert!(
                    &next != module,
                    "import cycle: {module} → {target} → … → {module}"
                );
                if seen.insert(next.clone())
                    && let Some(more) = graph.get(&next)
                {
                    stack.extend(more.iter().filter(|t| !t.ends_with("::mod")).cloned());
                }
            }
        }
    }
    assert!(graph.len() >= 10, "the sources were read: {graph:?}");
}

#[test]
fn a_reference_is_attributed_to_its_module() {
    let refs = references(
        "client::retry",
        "use crate::grpc::headers::X; // crate::server::nope\nuse super::upstream::Upstream;",
    );
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        ["client::upstream", "grpc::headers"]
    );
    assert_eq!(
        module_of(Path::new("client/retry/tests.rs")),
        "client::retry"
    );
    assert_eq!(module_of(Path::new("config.rs")), "config::mod");
}
