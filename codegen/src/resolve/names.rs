//! Names users give steps, iterators and arguments, and the names the generated code keeps
//! for itself.

/// The Rust identifier of a step or iterator name.
pub fn step_ident(name: &str) -> String {
    crate::names::rust_field_ident(name)
}

/// Names the generated code gives its own values, in scope wherever steps and iterators are.
pub(super) const RESERVED_NAMES: &[&str] = &["input", "call", "downstreams", CALLER];

/// The name expressions read the caller's identity by: a map of text (`caller.sub`,
/// `caller.consumer`), from the claims of its token and what the gateway knows of it.
pub const CALLER: &str = "caller";

/// Why `name` cannot name a step, an iterator or (with `reserved` empty) an argument: it must
/// be an identifier whose Rust form is one too, and not one the generated code uses itself.
pub(super) fn check_name(
    name: &str,
    what: &str,
    reserved: &[&str],
) -> Result<(), (String, String)> {
    let ident = step_ident(name);
    let bare = ident.strip_prefix("r#").unwrap_or(&ident);
    if !is_identifier(name) || !is_identifier(bare) {
        return Err((
            format!("`{name}` is not a valid {what} name"),
            "use letters, digits and `_`, starting with a letter".to_owned(),
        ));
    }
    if reserved.contains(&bare) || bare.starts_with("mosaic_") {
        let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        return Err((
            format!(
                "`{name}` cannot name {article} {what}: the generated code uses `{bare}` itself"
            ),
            format!("rename the {what}"),
        ));
    }
    Ok(())
}

pub(super) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The name generated code gives a step without one: `mosaic_` names are reserved, so it
/// cannot clash with a user's.
pub fn unnamed_step(index: usize) -> String {
    format!("mosaic_step_{index}")
}
