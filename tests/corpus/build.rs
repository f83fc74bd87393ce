//! Generates the soundness corpus (see `src/lib.rs`): writes every case's protos into
//! `OUT_DIR/protos`, then generates Rust for all the selected cases at once, so that this crate's
//! build and `clippy -D warnings` check the code generated for each of them.
//!
//! Cases in [`KNOWN_UNSOUND`] are accepted by the checker but generate Rust that does not
//! compile (or does not pass clippy, or panics the generator); they are left out unless
//! `MOSAIC_CORPUS_ALL=1`. `MOSAIC_CORPUS_ONLY=a,b` builds just the named cases, excluded or not.

#[path = "build/cases.rs"]
mod cases;
#[path = "build/constructs.rs"]
mod constructs;
#[path = "build/exprs.rs"]
mod exprs;
#[path = "build/features.rs"]
mod features;
#[path = "build/proto.rs"]
mod proto;
#[path = "build/shapes.rs"]
mod shapes;
#[path = "build/v2.rs"]
mod v2;
#[path = "build/wkt.rs"]
mod wkt;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Cases the checker accepts whose generated code is broken today, each with why. A name ending
/// in `*` stands for every case starting with what comes before it. Remove an entry when the
/// generator is fixed: the build then checks the case.
const KNOWN_UNSOUND: &[(&str, &str)] = &[];

const PROTOS: &str = "../../proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build");
    println!("cargo:rerun-if-changed={PROTOS}");
    println!("cargo:rerun-if-env-changed=MOSAIC_CORPUS_ALL");
    println!("cargo:rerun-if-env-changed=MOSAIC_CORPUS_ONLY");

    let cases = cases::all();
    let mut names = BTreeSet::new();
    for case in &cases {
        if !names.insert(case.name.as_str()) {
            return Err(format!("two corpus cases are named `{}`", case.name).into());
        }
    }
    for (pattern, _) in KNOWN_UNSOUND {
        if !cases.iter().any(|case| matches(pattern, &case.name)) {
            return Err(format!("KNOWN_UNSOUND names `{pattern}`, which is no case").into());
        }
    }

    let all = std::env::var("MOSAIC_CORPUS_ALL").is_ok_and(|v| !v.is_empty() && v != "0");
    let only: Option<Vec<String>> = std::env::var("MOSAIC_CORPUS_ONLY")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    if let Some(only) = &only {
        for name in only {
            if !names.contains(name.as_str()) {
                return Err(format!("MOSAIC_CORPUS_ONLY names `{name}`, which is no case").into());
            }
        }
    }

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let root = out_dir.join("protos");
    // Written afresh, so that no file of an earlier selection stays behind.
    match std::fs::remove_dir_all(&root) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let mut selected = Vec::new();
    let mut included = Vec::new();
    let mut excluded = Vec::new();
    for case in &cases {
        let reason = unsound(&case.name);
        let chosen = match &only {
            Some(only) => only.contains(&case.name),
            None => all || reason.is_none(),
        };
        if chosen {
            selected.push(case);
            included.push(case.name.clone());
        } else {
            if let Some(reason) = reason {
                excluded.push((case.name.clone(), reason));
            }
            // Written anyway, to read or to check by hand: alone in its group's file, or its
            // own files.
            match &case.unit {
                cases::Unit::Fragment { group, file } => {
                    let text = cases::group_file(group, &[(&case.name, file)]);
                    write_if_changed(&root.join(format!("excluded/{}.proto", case.name)), &text)?;
                }
                cases::Unit::Files(own) => {
                    for (path, text) in own {
                        write_if_changed(&root.join(path), text)?;
                    }
                }
            }
        }
    }
    let mut files = Vec::new();
    for (path, text) in cases::assemble(&selected) {
        write_if_changed(&root.join(&path), &text)?;
        files.push(PathBuf::from(path));
    }
    if files.is_empty() {
        return Err("no corpus case is selected".into());
    }
    write_if_changed(
        &out_dir.join("corpus_index.rs"),
        &index(&included, &excluded),
    )?;
    // Not as a build script: the rerun lines above are this crate's own (the protos are
    // rewritten on each run), and the error, if any, carries the diagnostics.
    mosaic_codegen::configure()
        .build_script(false)
        .compile_protos(&files, &[root.as_path(), Path::new(PROTOS)])?;
    Ok(())
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Why a case is excluded, if it is.
fn unsound(name: &str) -> Option<&'static str> {
    KNOWN_UNSOUND
        .iter()
        .find(|(pattern, _)| matches(pattern, name))
        .map(|(_, reason)| *reason)
}

/// Writes `text` unless the file holds it already, so that an unchanged corpus leaves
/// modification times (and so the build) alone.
fn write_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}

/// `CASES` and `EXCLUDED`, for `src/lib.rs`.
fn index(included: &[String], excluded: &[(String, &str)]) -> String {
    let mut out = String::from("/// The corpus cases compiled into this build.\n");
    out.push_str("pub const CASES: &[&str] = &[\n");
    for name in included {
        out.push_str(&format!("    {name:?},\n"));
    }
    out.push_str("];\n\n/// The cases left out of this build as known unsound, with why.\n");
    out.push_str("pub const EXCLUDED: &[(&str, &str)] = &[\n");
    for (name, reason) in excluded {
        out.push_str(&format!("    ({name:?}, {reason:?}),\n"));
    }
    out.push_str("];\n");
    out
}
