//! How the generated Rust names things: the identifiers prost gives fields, messages and
//! modules, and the ones Mosaic derives from them. Plain strings, so that the checker can
//! reject two proto names that would become one Rust name without knowing any Rust syntax.

use heck::{ToSnakeCase, ToUpperCamelCase};

/// The Rust identifier prost gives a field: snake case, keywords made raw (or suffixed with
/// `_` where a raw identifier is not allowed).
pub fn rust_field_ident(name: &str) -> String {
    let snake = name.to_snake_case();
    escape_keyword(snake)
}

/// The Rust type name prost gives a message or enum: upper camel case.
pub fn rust_type_ident(name: &str) -> String {
    let camel = name.to_upper_camel_case();
    match camel.as_str() {
        "Self" => "Self_".to_owned(),
        _ => camel,
    }
}

fn escape_keyword(ident: String) -> String {
    match ident.as_str() {
        "self" | "super" | "crate" | "extern" => format!("{ident}_"),
        "as" | "break" | "const" | "continue" | "else" | "enum" | "false" | "fn" | "for" | "if"
        | "impl" | "in" | "let" | "loop" | "match" | "mod" | "move" | "mut" | "pub" | "ref"
        | "return" | "static" | "struct" | "trait" | "true" | "type" | "unsafe" | "use"
        | "where" | "while" | "abstract" | "become" | "box" | "do" | "final" | "macro"
        | "override" | "priv" | "typeof" | "unsized" | "virtual" | "yield" | "async" | "await"
        | "dyn" | "try" | "gen" => format!("r#{ident}"),
        _ => ident,
    }
}
