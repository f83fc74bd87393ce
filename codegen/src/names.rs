//! How the generated Rust names things: the identifiers prost gives fields, messages, enum
//! variants and modules (the same rules as prost-build's, so paths to its items are right),
//! and the ones Mosaic derives from them. Plain strings, so that the checker can reject two
//! proto names that would become one Rust name without knowing any Rust syntax.

use heck::{ToSnakeCase, ToUpperCamelCase};

/// The Rust identifier prost gives a field or a module: snake case, sanitized.
pub fn rust_field_ident(name: &str) -> String {
    sanitize(name.to_snake_case())
}

/// The stem of the file prost-build writes for `package` (and of Mosaic's file beside it):
/// the package's modules joined by `.` (`corpus.r#type.v1`), or `_` for no package.
pub fn package_file_stem(package: &str) -> String {
    let modules: Vec<String> = package
        .split('.')
        .filter(|segment| !segment.is_empty())
        .map(rust_field_ident)
        .collect();
    if modules.is_empty() {
        "_".to_owned()
    } else {
        modules.join(".")
    }
}

/// The Rust name of the composer Mosaic generates for edge service `service`, re-exported
/// beside prost's types.
pub fn composer_name(service: &str) -> String {
    format!("{}Composer", rust_type_ident(service))
}

/// The Rust name of the trait whose implementation computes the custom items of edge service
/// `service`'s compositions.
pub fn resolvers_trait_name(service: &str) -> String {
    format!("{}Resolvers", rust_type_ident(service))
}

/// The struct holding an edge service's deployment values (`$env`): `<Service>Env`.
pub fn deployment_struct_name(service: &str) -> String {
    format!("{}Env", rust_type_ident(service))
}

/// The Rust type name prost gives a message or enum: upper camel case, sanitized.
pub fn rust_type_ident(name: &str) -> String {
    sanitize(name.to_upper_camel_case())
}

/// The variant prost gives value `value` of enum `enumeration` (both proto names): upper
/// camel case, with the enum's name stripped when it is a true prefix (`STATUS_ACTIVE` of
/// `Status` is `Active`; `STATUSES` stays `Statuses`).
pub fn enum_variant_ident(enumeration: &str, value: &str) -> String {
    let prefix = rust_type_ident(enumeration);
    let name = rust_type_ident(value);
    let stripped = name.strip_prefix(prefix.as_str()).unwrap_or(&name);
    if stripped.starts_with(char::is_uppercase) {
        sanitize(stripped.to_owned())
    } else {
        sanitize(name)
    }
}

/// Keywords made raw, or suffixed with `_` where a raw identifier is not allowed; a leading
/// digit prefixed with `_`.
fn sanitize(ident: String) -> String {
    match ident.as_str() {
        "as" | "break" | "const" | "continue" | "else" | "enum" | "false" | "fn" | "for" | "if"
        | "impl" | "in" | "let" | "loop" | "match" | "mod" | "move" | "mut" | "pub" | "ref"
        | "return" | "static" | "struct" | "trait" | "true" | "type" | "unsafe" | "use"
        | "where" | "while" | "dyn" | "abstract" | "become" | "box" | "do" | "final" | "macro"
        | "override" | "priv" | "typeof" | "unsized" | "virtual" | "yield" | "async" | "await"
        | "try" | "gen" => format!("r#{ident}"),
        "_" | "super" | "self" | "Self" | "extern" | "crate" => format!("{ident}_"),
        s if s.starts_with(|c: char| c.is_numeric()) => format!("_{ident}"),
        _ => ident,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_prost() {
        assert_eq!(rust_field_ident("displayName"), "display_name");
        assert_eq!(rust_field_ident("type"), "r#type");
        assert_eq!(rust_field_ident("self"), "self_");
        assert_eq!(rust_type_ident("self"), "Self_");
        assert_eq!(rust_type_ident("user_status"), "UserStatus");
    }

    #[test]
    fn enum_prefixes_are_stripped_like_prost() {
        assert_eq!(enum_variant_ident("Status", "STATUS_ACTIVE"), "Active");
        assert_eq!(enum_variant_ident("Status", "ACTIVE"), "Active");
        assert_eq!(enum_variant_ident("Status", "STATUSES"), "Statuses");
        assert_eq!(enum_variant_ident("Status", "STATUS"), "Status");
        assert_eq!(enum_variant_ident("Status", "STATUS_1"), "Status1");
        assert_eq!(enum_variant_ident("Kind", "KIND_SELF"), "Self_");
    }
}
