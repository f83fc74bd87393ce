//! Parsing: protos to descriptors, with custom options and source text kept.
//!
//! `protox` parses and links the files (no `protoc` needed). Its `prost_types` output drops
//! extension values, so the descriptors are taken as a `prost_reflect::DescriptorPool`, which
//! keeps the `mosaic.v1` options readable. The language's own protos (`mosaic/v1/options.proto`,
//! `google/rpc/code.proto`, `google/api/*`) are built in, so users import them without copying
//! them into their include path. The source text of every file is kept for diagnostics.
//!
//! **Boundary:** this stage knows nothing of Rust.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use prost_reflect::DescriptorPool;
use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

use crate::diagnostic::{Diagnostic, SourceFile, Span};

/// The protos built into the generator, by import name.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "mosaic/v1/options.proto",
        include_str!("../../proto/mosaic/v1/options.proto"),
    ),
    (
        "google/rpc/code.proto",
        include_str!("../../proto/google/rpc/code.proto"),
    ),
    (
        "google/rpc/status.proto",
        include_str!("../../proto/google/rpc/status.proto"),
    ),
    (
        "google/rpc/error_details.proto",
        include_str!("../../proto/google/rpc/error_details.proto"),
    ),
    (
        "google/api/http.proto",
        include_str!("../../proto/google/api/http.proto"),
    ),
    (
        "google/api/annotations.proto",
        include_str!("../../proto/google/api/annotations.proto"),
    ),
    (
        "google/api/httpbody.proto",
        include_str!("../../proto/google/api/httpbody.proto"),
    ),
];

/// Parsed and linked protos.
#[derive(Debug)]
pub struct Loaded {
    /// Every file, imports included, with options readable.
    pub pool: DescriptorPool,
    /// Source text by file name, for diagnostics.
    pub sources: HashMap<String, Arc<SourceFile>>,
    /// The files asked for (not their imports), by name.
    pub roots: Vec<String>,
}

/// Parses `protos` found under `includes`.
pub fn load(protos: &[PathBuf], includes: &[PathBuf]) -> Result<Loaded, Vec<Diagnostic>> {
    let mut chain = ChainFileResolver::new();
    for include in includes {
        chain.add(IncludeFileResolver::new(include.clone()));
    }
    chain.add(BuiltInResolver);
    chain.add(GoogleFileResolver::new());
    let sources = Arc::new(Mutex::new(HashMap::new()));
    let resolver = RecordingResolver {
        inner: chain,
        sources: Arc::clone(&sources),
    };

    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_source_info(true).include_imports(true);
    let mut roots = Vec::new();
    for proto in protos {
        if let Err(err) = compiler.open_file(proto) {
            let mut recorded = match sources.lock() {
                Ok(map) => map.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            };
            // A file that failed to parse never reached the recorder; read it again.
            if let Some(name) = err.file()
                && !recorded.contains_key(name)
                && let Some(text) = includes
                    .iter()
                    .find_map(|dir| std::fs::read_to_string(dir.join(name)).ok())
            {
                recorded.insert(name.to_owned(), text);
            }
            return Err(vec![protox_diagnostic(&err, &recorded)]);
        }
    }
    for file in compiler.files() {
        if !file.is_import() {
            roots.push(file.name().to_owned());
        }
    }
    let pool = compiler.descriptor_pool();
    let sources = match sources.lock() {
        Ok(mut map) => std::mem::take(&mut *map),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    let sources = sources
        .into_iter()
        .map(|(name, text)| {
            let file = SourceFile::new(name.clone(), text);
            (name, file)
        })
        .collect();
    Ok(Loaded {
        pool,
        sources,
        roots,
    })
}

/// A protox error (syntax, linking, a missing import) as a diagnostic pointing at its place:
/// protox exposes the place as a `miette` label on the file it names.
fn protox_diagnostic(err: &protox::Error, sources: &HashMap<String, String>) -> Diagnostic {
    use miette::Diagnostic as _;
    let span = err.file().and_then(|name| {
        let text = sources.get(name)?;
        // Parse errors carry their place on the first related error.
        let label = err
            .labels()
            .and_then(|mut labels| labels.next())
            .or_else(|| {
                err.related()?
                    .find_map(|related| related.labels().and_then(|mut labels| labels.next()))
            })?;
        let file = SourceFile::new(name, text.clone());
        let start = label.offset().min(text.len());
        let end = (start + label.len()).min(text.len());
        Some(Span::new(&file, start..end))
    });
    // protox puts the precise cause of some errors (a misspelled option field) in a nested
    // error or a related diagnostic; keep it, since the caller sees only the message.
    let mut message = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        cause = inner.source();
    }
    if let Some(related) = err.related() {
        for inner in related {
            let text = inner.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
        }
    }
    // Without a position, keep the file name in the message.
    if let (None, Some(file)) = (&span, err.file()) {
        message = format!("{file}: {message}");
    }
    if let Some(span) = &span
        && let Some(explained) = explain_option(&message, span)
    {
        return explained;
    }
    if message.contains("name 'mosaic.v1.") && message.contains("is not defined") {
        return Diagnostic::error(message, span)
            .with_hint("the `mosaic.v1` options need `import \"mosaic/v1/options.proto\";`");
    }
    Diagnostic::error(message, span)
}

/// protox rejects a malformed `mosaic.v1` option value as a whole ("invalid value of type
/// 'mosaic.v1.MessageRule'"); this finds what is wrong in it: the first field name the option
/// message does not have (with the closest name and the fields it has), or a list written
/// without the colon protox needs.
fn explain_option(message: &str, span: &Span) -> Option<Diagnostic> {
    let type_name = message
        .split_once("invalid value of type '")?
        .1
        .split_once('\'')?
        .0;
    let pool = built_in_pool()?;
    let root = pool.get_message_by_name(type_name)?;
    let text = &span.file.text;
    let tree = crate::source::OptionTree::scan(text, span.range.start);
    let mut names: Vec<(&[crate::source::PathSegment], std::ops::Range<usize>)> =
        tree.names().collect();
    names.sort_by_key(|(_, range)| range.start);
    for (path, range) in names {
        let mut message = root.clone();
        for (depth, (name, _)) in path.iter().enumerate() {
            let Some(field) = message.get_field_by_name(name) else {
                let fields: Vec<String> = message.fields().map(|f| f.name().to_owned()).collect();
                let hint = match crate::suggest::suggest(name, &fields) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("its fields are: {}", fields.join(", ")),
                };
                // Only the last segment is this name; earlier ones are checked at their own.
                if depth + 1 == path.len() {
                    return Some(
                        Diagnostic::error(
                            format!("no field `{name}` in `{}`", message.full_name()),
                            Some(Span::new(&span.file, range)),
                        )
                        .with_hint(hint),
                    );
                }
                break;
            };
            match field.kind() {
                prost_reflect::Kind::Message(inner) => message = inner,
                _ => break,
            }
        }
    }
    let missing = tree.lists_without_colon().first()?.clone();
    let name = text.get(missing.clone()).unwrap_or("field").to_owned();
    Some(
        Diagnostic::error(
            format!("a list needs a colon after the field name here: `{name}: [...]`"),
            Some(Span::new(&span.file, missing)),
        )
        .with_hint(format!(
            "write `{name}: [{{...}}, {{...}}]`, or repeat the field: `{name} {{...}} {name} {{...}}`"
        )),
    )
}

/// The built-in protos alone, compiled once, to explain malformed options against.
fn built_in_pool() -> Option<&'static prost_reflect::DescriptorPool> {
    static POOL: std::sync::OnceLock<Option<prost_reflect::DescriptorPool>> =
        std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let mut chain = ChainFileResolver::new();
        chain.add(BuiltInResolver);
        chain.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(chain);
        compiler.include_imports(true);
        compiler.open_file("mosaic/v1/options.proto").ok()?;
        Some(compiler.descriptor_pool())
    })
    .as_ref()
}

/// Serves the built-in protos.
struct BuiltInResolver;

impl FileResolver for BuiltInResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match BUILT_IN.iter().find(|(built_in, _)| *built_in == name) {
            Some((_, source)) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Remembers the text of every file opened, for diagnostics.
struct RecordingResolver<R> {
    inner: R,
    sources: Arc<Mutex<HashMap<String, String>>>,
}

impl<R: FileResolver> FileResolver for RecordingResolver<R> {
    fn resolve_path(&self, path: &Path) -> Option<String> {
        self.inner.resolve_path(path)
    }

    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        let file = self.inner.open_file(name)?;
        if let Some(source) = file.source()
            && let Ok(mut sources) = self.sources.lock()
        {
            sources.insert(name.to_owned(), source.to_owned());
        }
        Ok(file)
    }
}
