//! Mosaic's build-time generator: protos annotated with `mosaic.v1` composition rules in,
//! typed Rust handlers out.
//!
//! Use it from `build.rs` the way `tonic-prost-build` is used:
//!
//! ```no_run
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     mosaic_codegen::configure()
//!         .compile_protos(&["demo/storefront/v1/storefront.proto"], &["../../proto"])?;
//!     Ok(())
//! }
//! ```
//!
//! and include the result once in the crate:
//!
//! ```ignore
//! include!(concat!(env!("OUT_DIR"), "/mosaic.rs"));
//! ```
//!
//! The pipeline has separate stages: [`load`] (protox: files to descriptors; knows nothing of
//! Rust) → [`resolve`] (every check, all errors at once, into the [`model`]) → [`emit`] (the
//! model to formatted Rust; knows nothing of descriptors' wire form). Prost message types and
//! tonic clients and servers come from `tonic-prost-build`, fed the same descriptors.

pub mod access;
pub mod diagnostic;
pub mod emit;
pub mod expr;
pub mod http;
pub mod load;
pub mod model;
pub mod names;
pub mod resolve;
pub mod schema;
pub mod source;
mod suggest;
mod tonic_code;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, render_all};

/// Why generation failed.
///
/// Its `Debug` form is its `Display` form, because a build script's `main` returning
/// `Result<(), Box<dyn Error>>` prints the error's `Debug`: a failing build shows each
/// diagnostic once, never a dump of the diagnostics' fields (which hold the proto file's text).
#[derive(thiserror::Error)]
pub enum Error {
    /// The protos have problems; each diagnostic says where and what.
    #[error("{}", diagnostics_message(diagnostics, *printed))]
    Diagnostics {
        /// The problems, in reading order.
        diagnostics: Vec<Diagnostic>,
        /// Whether they were already printed to stderr (by [`Builder::compile_protos`] in a
        /// build script, where cargo shows them); if so the error says so in one line instead of
        /// repeating them.
        printed: bool,
    },
    /// Writing the output failed.
    #[error("cannot write generated code: {0}")]
    Io(#[from] std::io::Error),
    /// `OUT_DIR` is not set and no output directory was given.
    #[error("no output directory: set one with `out_dir` or run from build.rs")]
    NoOutDir,
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The message of [`Error::Diagnostics`]: the rendered diagnostics, or one line if they were
/// printed already.
fn diagnostics_message(diagnostics: &[Diagnostic], printed: bool) -> String {
    let count = diagnostics.len();
    let noun = if count == 1 { "error" } else { "errors" };
    let headline = format!("mosaic-codegen found {count} {noun} in the protos");
    if printed {
        return format!("{headline} (shown above)");
    }
    let rendered: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    format!("{headline}:\n\n{}", rendered.join("\n").trim_end())
}

/// The generated Rust, before it is written anywhere.
#[derive(Debug)]
pub struct Generated {
    /// Composition code per proto package.
    pub packages: BTreeMap<String, String>,
    /// The encoded `FileDescriptorSet` of every file involved, imports included.
    pub descriptor_set: Vec<u8>,
}

/// Puts diagnostics in reading order: by file, then position.
fn sorted(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by(|a, b| {
        let key = |d: &Diagnostic| {
            d.span
                .as_ref()
                .map(|s| (s.file.name.clone(), s.range.start))
        };
        key(a).cmp(&key(b))
    });
    diagnostics
}

/// Every check: the composition rules, the HTTP bindings and the access rules, all diagnostics
/// in reading order.
fn checked(loaded: &load::Loaded) -> Result<(model::Model, schema::PoolSchema), Vec<Diagnostic>> {
    let mut http = http::check(loaded);
    http.extend(access::check(loaded));
    match resolve::resolve(loaded) {
        Ok(resolved) if http.is_empty() => Ok(resolved),
        Ok(_) => Err(sorted(http)),
        Err(mut diagnostics) => {
            diagnostics.extend(http);
            Err(sorted(diagnostics))
        }
    }
}

/// Starts configuring a generation run.
pub fn configure() -> Builder {
    Builder::default()
}

/// Configures and runs generation.
#[derive(Debug)]
pub struct Builder {
    out_dir: Option<PathBuf>,
    build_script: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            out_dir: None,
            build_script: true,
        }
    }
}

impl Builder {
    /// Where to write output; defaults to `OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Whether [`compile_protos`](Self::compile_protos) runs in a build script, as by default:
    /// it then prints `cargo:rerun-if-changed` lines to stdout for cargo, and the diagnostics
    /// to stderr, where cargo shows them when the build fails. With `false` (tools running it
    /// elsewhere, like `mosaic-codegen generate`) it prints nothing and the returned
    /// [`Error::Diagnostics`] displays them.
    pub fn build_script(mut self, build_script: bool) -> Self {
        self.build_script = build_script;
        self
    }

    /// Checks and generates code for `protos` (found under `includes`), writing prost types,
    /// tonic clients and servers, the composition handlers, `mosaic.rs` (the module tree to
    /// `include!`) and the descriptor set. On problems, prints every diagnostic to stderr (for
    /// cargo to show; not outside a [build script](Self::build_script)) and fails with an error
    /// that does not repeat them.
    pub fn compile_protos(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(), Error> {
        let out_dir = match self.out_dir {
            Some(dir) => dir,
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(Error::NoOutDir)?,
        };
        if self.build_script {
            for include in includes {
                println!("cargo:rerun-if-changed={}", include.as_ref().display());
            }
        }
        let protos: Vec<PathBuf> = protos.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let includes: Vec<PathBuf> = includes.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let build_script = self.build_script;
        let failed = |diagnostics: Vec<Diagnostic>| {
            // Printed here, not only in the error, so that cargo shows them however the build
            // script handles the error.
            if build_script {
                eprint!("{}", render_all(&diagnostics));
            }
            Error::Diagnostics {
                diagnostics,
                printed: build_script,
            }
        };
        let loaded = load::load(&protos, &includes).map_err(failed)?;
        let (model, schema) = checked(&loaded).map_err(failed)?;
        let packages = emit::emit(&model, &schema);

        let descriptor_set = prost_types::FileDescriptorSet {
            file: loaded.pool.file_descriptor_protos().cloned().collect(),
        };
        tonic_code::compile(&loaded.pool, descriptor_set.clone(), &out_dir)?;

        let mut tree = ModuleTree::default();
        for file in &descriptor_set.file {
            // Well-known types map to `prost_types` and get no file of their own.
            let stem = names::package_file_stem(file.package());
            if out_dir.join(format!("{stem}.rs")).exists() {
                tree.insert(file.package(), false);
            }
        }
        for (package, code) in &packages {
            let stem = names::package_file_stem(package);
            std::fs::write(out_dir.join(format!("{stem}.mosaic.rs")), code)?;
            tree.insert(package, true);
        }
        // The pool's encoding keeps extension options (`google.api.http` routes), which
        // `prost_types` would drop.
        std::fs::write(
            out_dir.join("mosaic_descriptor.bin"),
            loaded.pool.encode_to_vec(),
        )?;
        std::fs::write(out_dir.join("mosaic.rs"), tree.render())?;
        Ok(())
    }

    /// Runs every check, then returns the OpenAPI 3.1 document of the protos' HTTP bindings.
    pub fn openapi(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
        options: &mosaic_http_rule::openapi::Options,
    ) -> Result<serde_json::Value, Vec<Diagnostic>> {
        let protos: Vec<PathBuf> = protos.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let includes: Vec<PathBuf> = includes.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let loaded = load::load(&protos, &includes)?;
        checked(&loaded)?;
        Ok(mosaic_http_rule::openapi::document(
            &http::operations(&loaded),
            options,
        ))
    }

    /// Runs every check without writing anything; returns the generated composition code.
    pub fn check(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<Generated, Vec<Diagnostic>> {
        let protos: Vec<PathBuf> = protos.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let includes: Vec<PathBuf> = includes.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let loaded = load::load(&protos, &includes)?;
        let (model, schema) = checked(&loaded)?;
        let packages = emit::emit(&model, &schema);
        let descriptor_set = loaded.pool.encode_to_vec();
        Ok(Generated {
            packages,
            descriptor_set,
        })
    }
}

/// The nested `pub mod` tree mirroring proto packages, including prost's file and ours.
#[derive(Default)]
struct ModuleTree {
    children: BTreeMap<String, ModuleTree>,
    package: Option<(String, bool)>,
}

impl ModuleTree {
    fn insert(&mut self, package: &str, composition: bool) {
        let mut node = self;
        for segment in package.split('.').filter(|s| !s.is_empty()) {
            node = node.children.entry(segment.to_owned()).or_default();
        }
        let entry = node.package.get_or_insert((package.to_owned(), false));
        entry.1 |= composition;
    }

    fn render(&self) -> String {
        let mut out = String::from(emit::HEADER);
        out.push_str(
            "/// The encoded descriptor set of every proto compiled, for reflection.\n\
             pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/mosaic_descriptor.bin\"));\n",
        );
        self.render_into(&mut out, 0);
        out
    }

    fn render_into(&self, out: &mut String, depth: usize) {
        let indent = "    ".repeat(depth);
        if let Some((package, composition)) = &self.package {
            let file = names::package_file_stem(package);
            out.push_str(&format!(
                "{indent}include!(concat!(env!(\"OUT_DIR\"), \"/{file}.rs\"));\n"
            ));
            if *composition {
                out.push_str(&format!(
                    "{indent}include!(concat!(env!(\"OUT_DIR\"), \"/{file}.mosaic.rs\"));\n"
                ));
            }
        }
        for (name, child) in &self.children {
            let ident = names::rust_field_ident(name);
            out.push_str(&format!("{indent}pub mod {ident} {{\n"));
            child.render_into(out, depth + 1);
            out.push_str(&format!("{indent}}}\n"));
        }
    }
}
