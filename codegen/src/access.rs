//! The `access` rules of edge services and methods (`(mosaic.v1.service).access`,
//! `(mosaic.v1.method).access`), checked at build time so that a rule the generator accepts is
//! one the gateway enforces as written: schemes it knows, no requirement a public method could
//! not enforce, claims with values, and rules only where the gateway reads them (edge methods).
//!
//! **Boundary:** a check stage like `resolve`; it knows nothing of Rust.

use prost_reflect::{DynamicMessage, ReflectMessage, Value};

use crate::diagnostic::{Diagnostic, Span};
use crate::load::Loaded;
use crate::resolve::{OptionSite, option_site};
use crate::source::PathSegment;

/// The number every `mosaic.v1` extension uses.
const EXTENSION: i32 = 52_731;
/// Source-info path numbers: `FileDescriptorProto.service`, `.method`, `.options`.
const SERVICE: i32 = 6;
const METHOD: i32 = 2;
const OPTIONS: i32 = 3;
const METHOD_OPTIONS: i32 = 4;

/// The schemes a rule may name.
const SCHEMES: [&str; 3] = ["api_key", "jwt", "mtls"];

/// Checks the access rules of the root files' services and methods.
pub fn check(loaded: &Loaded) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let pool = &loaded.pool;
    let (Some(service_ext), Some(method_ext)) = (
        pool.get_extension_by_name("mosaic.v1.service"),
        pool.get_extension_by_name("mosaic.v1.method"),
    ) else {
        return diagnostics;
    };
    for file_name in &loaded.roots {
        let Some(file) = pool.get_file_by_name(file_name) else {
            continue;
        };
        for (service_index, service) in file.services().enumerate() {
            let options = service.options();
            let edge = options.has_extension(&service_ext);
            if edge {
                let rule = options.get_extension(&service_ext);
                if let Some(access) = access_of(&rule) {
                    let path = [SERVICE, service_index as i32, OPTIONS, EXTENSION];
                    let site = option_site(loaded, file_name, &path, true);
                    check_rule(&access, &site, service.name(), &mut diagnostics);
                }
            }
            for (method_index, method) in service.methods().enumerate() {
                let options = method.options();
                if !options.has_extension(&method_ext) {
                    continue;
                }
                let rule = options.get_extension(&method_ext);
                let Some(access) = access_of(&rule) else {
                    continue;
                };
                let path = [
                    SERVICE,
                    service_index as i32,
                    METHOD,
                    method_index as i32,
                    METHOD_OPTIONS,
                    EXTENSION,
                ];
                let site = option_site(loaded, file_name, &path, true);
                if !edge {
                    diagnostics.push(
                        Diagnostic::error(
                            format!(
                                "`access` on `{}`, which is not an edge method",
                                method.full_name()
                            ),
                            span(&site, &[("access".into(), 0)]),
                        )
                        .with_hint(format!(
                            "access rules apply to methods of services marked `(mosaic.v1.service)`; for `{}`, write the policy in gateway.toml's `[auth.policies]`",
                            service.full_name()
                        )),
                    );
                    continue;
                }
                check_rule(&access, &site, method.name(), &mut diagnostics);
            }
        }
    }
    diagnostics
}

/// The `access` field of a service or method rule, when it is set.
fn access_of(rule: &Value) -> Option<DynamicMessage> {
    let rule = rule.as_message()?;
    let field = rule.descriptor().get_field_by_name("access")?;
    rule.has_field(&field)
        .then(|| rule.get_field(&field).as_message().cloned())
        .flatten()
}

fn strings(message: &DynamicMessage, name: &str) -> Vec<String> {
    message
        .get_field_by_name(name)
        .and_then(|value| {
            value.as_list().map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn check_rule(
    access: &DynamicMessage,
    site: &Option<OptionSite>,
    owner: &str,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let at = |segments: &[(&str, usize)]| {
        let path: Vec<PathSegment> = std::iter::once(("access".to_owned(), 0))
            .chain(
                segments
                    .iter()
                    .map(|(name, index)| ((*name).to_owned(), *index)),
            )
            .collect();
        span(site, &path)
    };
    for (i, scheme) in strings(access, "schemes").iter().enumerate() {
        if !SCHEMES.contains(&scheme.as_str()) {
            diagnostics.push(
                Diagnostic::error(
                    format!("`{owner}`'s access names the unknown scheme `{scheme}`"),
                    at(&[("schemes", i)]),
                )
                .with_hint("the schemes are \"api_key\", \"jwt\" and \"mtls\""),
            );
        }
    }
    for (i, scope) in strings(access, "scopes").iter().enumerate() {
        if scope.is_empty() || scope.contains(char::is_whitespace) {
            diagnostics.push(
                Diagnostic::error(
                    format!(
                        "`{owner}`'s access requires the scope `{scope}`, which no token can grant"
                    ),
                    at(&[("scopes", i)]),
                )
                .with_hint("a scope is one word without spaces, such as \"orders:read\""),
            );
        }
    }
    let claims = access
        .get_field_by_name("claims")
        .and_then(|value| value.as_list().map(<[Value]>::to_vec))
        .unwrap_or_default();
    for (i, claim) in claims.iter().enumerate() {
        let Some(claim) = claim.as_message() else {
            continue;
        };
        let name = claim
            .get_field_by_name("name")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        if name.is_empty() {
            diagnostics.push(
                Diagnostic::error(
                    format!("`{owner}`'s access requires a claim with no name"),
                    at(&[("claims", i)]),
                )
                .with_hint("write `claims: { name: \"tenant\" values: [\"acme\"] }`"),
            );
        } else if strings(claim, "values").is_empty() {
            diagnostics.push(
                Diagnostic::error(
                    format!(
                        "`{owner}`'s access requires the claim `{name}` but lists no value for it"
                    ),
                    at(&[("claims", i)]),
                )
                .with_hint("list the values accepted: `values: [\"acme\", \"globex\"]`"),
            );
        }
    }
    let public = access
        .get_field_by_name("public")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if public {
        let required: Vec<&str> = ["scopes", "claims", "plans", "consumers"]
            .into_iter()
            .filter(|name| {
                access
                    .get_field_by_name(name)
                    .and_then(|v| v.as_list().map(|items| !items.is_empty()))
                    .unwrap_or(false)
            })
            .collect();
        if let Some(first) = required.first() {
            diagnostics.push(
                Diagnostic::error(
                    format!(
                        "`{owner}` is public but its access also requires {}",
                        required
                            .iter()
                            .map(|r| format!("`{r}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    at(&[(first, 0)]),
                )
                .with_hint("a public method is called without credentials, so nothing else can be required; drop `public` or the requirements"),
            );
        }
    }
}

/// The span of a value inside the option, falling back to the whole option.
fn span(site: &Option<OptionSite>, path: &[PathSegment]) -> Option<Span> {
    let site = site.as_ref()?;
    let tree = site.tree.as_ref();
    let range = tree
        .and_then(|t| t.value(path).map(|v| v.range.clone()))
        .or_else(|| tree.and_then(|t| t.name(path)))
        .unwrap_or_else(|| site.whole.clone());
    Some(Span::new(&site.file, range))
}
