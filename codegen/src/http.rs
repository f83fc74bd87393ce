//! The `google.api.http` bindings of the edge protos, checked at build time with the same rule
//! code the gateway routes by (`mosaic-http-rule`), so that a binding the generator accepts is
//! one the gateway serves: bad templates, fields a variable, `body` or `response_body` names
//! that do not exist or cannot be bound, nested additional bindings, and two methods binding
//! the same method and path are reported with file:line:col like every other mistake.
//!
//! **Boundary:** a check stage like `resolve`; it knows nothing of Rust.

use std::ops::Range;

use mosaic_http_rule::{Matcher, Rule, RulePart};
use prost_reflect::MethodDescriptor;

use crate::diagnostic::{Diagnostic, Span};
use crate::load::Loaded;
use crate::resolve::{OptionSite, option_site};
use crate::source::PathSegment;

/// The field number of the `google.api.http` method option.
const HTTP_EXTENSION: i32 = 72_295_728;

/// Source-info path numbers: `FileDescriptorProto.service`, `.method`, `.options`.
const SERVICE: i32 = 6;
const METHOD: i32 = 2;
const OPTIONS: i32 = 4;

/// Every binding of the root files' methods, with its method, in declaration order.
pub fn operations(loaded: &Loaded) -> Vec<(MethodDescriptor, mosaic_http_rule::Binding)> {
    let mut out = Vec::new();
    for file_name in &loaded.roots {
        let Some(file) = loaded.pool.get_file_by_name(file_name) else {
            continue;
        };
        for method in file
            .services()
            .flat_map(|service| service.methods().collect::<Vec<_>>())
        {
            if let Some(rule) = Rule::of_method(&method) {
                let (bindings, _) = rule.bindings(&method);
                out.extend(
                    bindings
                        .into_iter()
                        .map(|binding| (method.clone(), binding)),
                );
            }
        }
    }
    out
}

/// Checks every binding of every method of the root files' services.
pub fn check(loaded: &Loaded) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut matcher: Matcher<(MethodDescriptor, Option<Span>)> = Matcher::default();
    for file_name in &loaded.roots {
        let Some(file) = loaded.pool.get_file_by_name(file_name) else {
            continue;
        };
        for (service_index, service) in file.services().enumerate() {
            for (method_index, method) in service.methods().enumerate() {
                let Some(rule) = Rule::of_method(&method) else {
                    continue;
                };
                let path = [
                    SERVICE,
                    service_index as i32,
                    METHOD,
                    method_index as i32,
                    OPTIONS,
                    HTTP_EXTENSION,
                ];
                let site = option_site(loaded, file_name, &path, true);
                let (bindings, errors) = rule.bindings(&method);
                for error in errors {
                    let all = std::iter::once(&rule).chain(&rule.additional_bindings);
                    let written = all.clone().nth(error.binding.map_or(0, |i| i + 1));
                    let span = span_of(&site, error.binding, error.part, written, error.at);
                    diagnostics.push(
                        Diagnostic::error(
                            format!("HTTP binding of `{}`: {}", method.name(), error.message),
                            span,
                        )
                        .with_hint(hint(error.part)),
                    );
                }
                for binding in bindings {
                    let which = binding.index.checked_sub(1);
                    let written = std::iter::once(&rule)
                        .chain(&rule.additional_bindings)
                        .nth(binding.index);
                    let span = span_of(&site, which, RulePart::Pattern, written, None);
                    let value = (method.clone(), span.clone());
                    if let Err(conflict) =
                        matcher.insert(binding.method.clone(), binding.template.clone(), value)
                    {
                        let (first, first_span) = conflict.existing;
                        let at = first_span
                            .as_ref()
                            .map(|span| {
                                let (line, col) = span.start();
                                format!(" (at {}:{line}:{col})", span.file.name)
                            })
                            .unwrap_or_default();
                        diagnostics.push(
                            Diagnostic::error(
                                format!(
                                    "`{}` and `{}` both bind {}",
                                    first.full_name(),
                                    method.full_name(),
                                    conflict.shape
                                ),
                                span,
                            )
                            .with_hint(format!(
                                "the first binding is `{}`'s{at}; give one of them another path or method",
                                first.name()
                            )),
                        );
                    }
                }
            }
        }
    }
    diagnostics
}

fn hint(part: RulePart) -> &'static str {
    match part {
        RulePart::Pattern => {
            "a template is `/segment/{field}/...`, with `*`, `**`, `{field=pattern}` and an optional `:verb`"
        }
        RulePart::Body => "`body` is omitted, `\"*\"`, or the name of a top-level request field",
        RulePart::ResponseBody => "`response_body` is omitted or names a top-level response field",
        RulePart::AdditionalBindings => "list every binding in the top rule's additional_bindings",
    }
}

/// The span of `part` of one binding (`which`: `None` for the rule itself), narrowed to
/// `at` inside the template text when given.
fn span_of(
    site: &Option<OptionSite>,
    which: Option<usize>,
    part: RulePart,
    written: Option<&Rule>,
    at: Option<Range<usize>>,
) -> Option<Span> {
    let site = site.as_ref()?;
    let mut base: Vec<PathSegment> = Vec::new();
    if let Some(index) = which {
        base.push(("additional_bindings".into(), index));
    }
    let pattern = written
        .and_then(|rule| rule.method.as_ref())
        .map(|method| match method {
            mosaic_http_rule::HttpMethod::Custom(_) | mosaic_http_rule::HttpMethod::Any => {
                vec![("custom".to_owned(), 0), ("path".to_owned(), 0)]
            }
            other => vec![(other.as_str().to_ascii_lowercase(), 0)],
        });
    let field: Vec<PathSegment> = match part {
        RulePart::Pattern => pattern.unwrap_or_default(),
        RulePart::Body => vec![("body".into(), 0)],
        RulePart::ResponseBody => vec![("response_body".into(), 0)],
        RulePart::AdditionalBindings => Vec::new(),
    };
    let path: Vec<PathSegment> = base.into_iter().chain(field).collect();
    let tree = site.tree.as_ref();
    let range = match tree.and_then(|tree| tree.value(&path)) {
        Some(value) => match at {
            Some(at) => value.sub_range(at),
            None => value.range.clone(),
        },
        None => tree
            .and_then(|tree| tree.name(&path))
            .unwrap_or_else(|| site.whole.clone()),
    };
    Some(Span::new(&site.file, range))
}
