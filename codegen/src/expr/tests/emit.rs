//! Emitter: snapshots of the Rust emitted for representative expressions, formatted with
//! prettyplease (which also proves them valid Rust syntax). `::mosaic_gateway::compose::cel::`
//! is shortened to `cel::` in the snapshots.
//!
//! When they were written, these snapshots (and about 90 more expressions) were compiled with
//! `clippy -D warnings` and the allow-list in `emit/mod.rs` against prost structs shaped like
//! the fixture and the real `cel` helpers, and run against sample values; that check needs a
//! crate with prost types, so it is not automated here. To update a snapshot after an intended
//! change, run the test and copy the "actual" text it prints.

use proc_macro2::TokenStream;
use quote::quote;

use super::fixture::{Storefront, env, scope};
use crate::expr::{Type, check, check_expecting, emit, emit_bool, emit_place, parse};

fn emitted(text: &str) -> String {
    let expr = parse(text).unwrap();
    let checked =
        check(&expr, &scope(), &Storefront).unwrap_or_else(|e| panic!("{text:?}: {e:#?}"));
    pretty(emit(&checked, &env(), &Storefront))
}

fn pretty(tokens: TokenStream) -> String {
    let file: syn::File = syn::parse2(quote!(fn emitted() { #tokens })).unwrap();
    let text = prettyplease::unparse(&file);
    let lines: Vec<&str> = text.lines().collect();
    lines[1..lines.len() - 1]
        .iter()
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("::mosaic_gateway::compose::cel::", "cel::")
}

fn assert_emits(text: &str, expected: &str) {
    let actual = emitted(text);
    assert_eq!(actual, expected.trim(), "for {text:?}; actual:\n{actual}\n");
}

fn place(text: &str) -> Option<String> {
    let expr = parse(text).unwrap();
    let checked = check(&expr, &scope(), &Storefront).unwrap();
    emit_place(&checked, &env(), &Storefront).map(pretty)
}

#[test]
fn places_borrow_without_cloning() {
    assert_eq!(place("rs.reviews").as_deref(), Some("&(&*rs).reviews"));
    assert_eq!(
        place("$.user").as_deref(),
        Some("cel::or_default(&input.user)")
    );
    assert_eq!(
        place("rs.reviews[n]").as_deref(),
        Some("cel::index(&(&*rs).reviews, *n, \"rs.reviews[n]\")?")
    );
    assert_eq!(place("names").as_deref(), Some("names"));
    // Stored narrower than the expression's type, or computed: no place.
    assert_eq!(place("$.scores"), None);
    assert_eq!(place("$.tags + names"), None);
    assert_eq!(place("[$.user][0]"), None);
}

#[test]
fn guards_are_bool_expressions() {
    let expr = parse("has($.user) && n > 0").unwrap();
    let checked = check(&expr, &scope(), &Storefront).unwrap();
    assert_eq!(
        pretty(emit_bool(&checked, &env(), &Storefront)),
        "input.user.is_some() && *n > 0i64"
    );
    let expr = parse("n").unwrap();
    let checked = check(&expr, &scope(), &Storefront).unwrap();
    assert!(pretty(emit_bool(&checked, &env(), &Storefront)).starts_with("::core::compile_error!"));
}

#[test]
fn an_expected_empty_list_is_typed() {
    let expr = parse("[]").unwrap();
    let expected = Type::List(Box::new(Type::Message("demo.User".into())));
    let checked = check_expecting(&expr, &scope(), &Storefront, Some(&expected)).unwrap();
    assert_eq!(
        pretty(emit(&checked, &env(), &Storefront)),
        "::std::vec::Vec::<crate::pb::User>::new()"
    );
}

#[test]
fn a_missing_name_is_a_compile_error_not_a_panic() {
    let expr = parse("n + 1").unwrap();
    let checked = check(&expr, &scope(), &Storefront).unwrap();
    let emitted = pretty(emit(&checked, &crate::expr::Env::new(), &Storefront));
    assert!(emitted.contains("::core::compile_error!(\"mosaic: `n` is not in scope\")"));
}

#[test]
fn selection_through_messages_without_cloning_them() {
    assert_emits(
        "rs.reviews[0].author_id",
        r#"
cel::index(&(&*rs).reviews, 0i64, "rs.reviews[0]")?
    .author_id
    .clone()
"#,
    );
}

#[test]
fn unset_messages_read_as_defaults() {
    assert_emits(
        "$.user.friend.display_name",
        r#"
cel::or_default_boxed(
        &cel::or_default(&input.user).friend,
    )
    .display_name
    .clone()
"#,
    );
}

#[test]
fn boxed_recursive_messages() {
    assert_emits(
        "$.user.friend.friend.age",
        r#"
i64::from(
    cel::or_default_boxed(
            &cel::or_default_boxed(
                    &cel::or_default(&input.user).friend,
                )
                .friend,
        )
        .age,
)
"#,
    );
}

#[test]
fn optional_string() {
    assert_emits(
        "$.nickname",
        r#"
cel::or_empty_string(&input.nickname).clone()
"#,
    );
}

#[test]
fn optional_narrow_int() {
    assert_emits(
        "$.limit",
        r#"
i64::from(input.limit.unwrap_or_default())
"#,
    );
}

#[test]
fn presence() {
    assert_emits(
        "has($.user) && has($.nickname) && has($.tags) && has($.count) && has($.ratio) && has($.text) && has($.verbose) && has($.product_id) && has($.labels.k)",
        r#"
input.user.is_some() && input.nickname.is_some() && !input.tags.is_empty()
    && input.count != 0 && input.ratio.to_bits() != 0
    && ::core::matches!(
        input.filter, ::core::option::Option::Some(crate
        ::pb::request::Filter::Text(_))
    ) && input.verbose && !input.product_id.is_empty()
    && cel::contains_key(&input.labels, "k")
"#,
    );
}

#[test]
fn null_comparisons() {
    assert_emits(
        "$.user == null || $.nickname != null || $.author == null",
        r#"
input.user.is_none() || input.nickname.is_some()
    || !::core::matches!(
        input.filter, ::core::option::Option::Some(crate
        ::pb::request::Filter::Author(_))
    )
"#,
    );
}

#[test]
fn sizes() {
    assert_emits(
        "size($.tags) + $.product_id.size() + size('abc') + size(b'ab') + size($.counts)",
        r#"
cel::add_int(
    cel::add_int(
        cel::add_int(
            cel::add_int(
                cel::size(&input.tags),
                cel::size(&input.product_id),
                "size($.tags) + $.product_id.size()",
            )?,
            cel::size("abc"),
            "size($.tags) + $.product_id.size() + size('abc')",
        )?,
        cel::size(b"ab".as_slice()),
        "size($.tags) + $.product_id.size() + size('abc') + size(b'ab')",
    )?,
    cel::size(&input.counts),
    "size($.tags) + $.product_id.size() + size('abc') + size(b'ab') + size($.counts)",
)?
"#,
    );
}

#[test]
fn narrow_list_index() {
    assert_emits(
        "$.scores[n]",
        r#"
i64::from(*cel::index(&input.scores, *n, "$.scores[n]")?)
"#,
    );
}

#[test]
fn map_index_with_a_narrow_key() {
    assert_emits(
        "$.counts[1]",
        r#"
cel::widen::<
    _,
    i64,
>(*cel::index_map_as(&input.counts, 1i64, "$.counts[1]")?)
"#,
    );
}

#[test]
fn string_map_index_and_select() {
    assert_emits(
        "$.labels['k'] + $.labels.k",
        r#"
cel::concat(
    cel::index_map(&input.labels, "k", "$.labels['k']")?,
    cel::index_map(&input.labels, "k", "$.labels.k")?,
)
"#,
    );
}

#[test]
fn checked_int_arithmetic() {
    assert_emits(
        "(n + 1) * 2",
        r#"
cel::mul_int(
    cel::add_int(*n, 1i64, "(n + 1)")?,
    2i64,
    "(n + 1) * 2",
)?
"#,
    );
}

#[test]
fn widened_int() {
    assert_emits(
        "$.review_limit + 1",
        r#"
cel::add_int(
    i64::from(input.review_limit),
    1i64,
    "$.review_limit + 1",
)?
"#,
    );
}

#[test]
fn double_arithmetic_keeps_needed_parentheses() {
    assert_emits(
        "$.weight - ($.weight - 1.0) / -2.0",
        r#"
input.weight - (input.weight - 1.0) / -2.0
"#,
    );
}

#[test]
fn no_double_negation() {
    assert_emits(
        "--$.weight",
        r#"
-(-input.weight)
"#,
    );
}

#[test]
fn ternary() {
    assert_emits(
        "$.verbose ? $.product_id : 'none'",
        r#"
if input.verbose {
    input.product_id.clone()
} else {
    ::std::string::String::from("none")
}
"#,
    );
}

#[test]
fn ternary_chain_stays_flat() {
    assert_emits(
        "n > 1 ? 'a' : n > 0 ? 'b' : 'c'",
        r#"
if *n > 1i64 {
    ::std::string::String::from("a")
} else if *n > 0i64 {
    ::std::string::String::from("b")
} else {
    ::std::string::String::from("c")
}
"#,
    );
}

#[test]
fn ternary_of_borrowable_branches_is_a_reference() {
    assert_emits(
        "($.verbose ? $.user : $.author).display_name",
        r#"
(if input.verbose {
    cel::or_default(&input.user)
} else {
    if let ::core::option::Option::Some(crate::pb::request::Filter::Author(value)) = &input
        .filter
    {
        value
    } else {
        cel::default_ref()
    }
})
    .display_name
    .clone()
"#,
    );
}

#[test]
fn string_concat() {
    assert_emits(
        "$.product_id + '-' + $.type",
        r#"
cel::concat(
    &cel::concat(&input.product_id, "-"),
    &input.r#type,
)
"#,
    );
}

#[test]
fn list_literal() {
    assert_emits(
        "[$.count, n, 3]",
        r#"
::std::vec![input.count, * n, 3i64]
"#,
    );
}

#[test]
fn empty_list_takes_its_type_from_the_other_branch() {
    assert_emits(
        "$.verbose ? $.tags : []",
        r#"
if input.verbose {
    input.tags.clone()
} else {
    ::std::vec::Vec::<::std::string::String>::new()
}
"#,
    );
}

#[test]
fn list_concat_widens_narrow_lists() {
    assert_emits(
        "$.scores + [1]",
        r#"
cel::concat_lists(
    &cel::widen_list::<_, i64>(&input.scores),
    &::std::vec![1i64],
)
"#,
    );
}

#[test]
fn comparisons_with_literals() {
    assert_emits(
        "$.product_id == 'p1' && $.count < 10 || !$.verbose",
        r#"
input.product_id == "p1" && input.count < 10i64 || !input.verbose
"#,
    );
}

#[test]
fn string_ordering() {
    assert_emits(
        "$.product_id < 'b'",
        r#"
input.product_id.as_str() < "b"
"#,
    );
}

#[test]
fn bytes() {
    assert_emits(
        "$.data == b'x'",
        r#"
input.data.as_slice() == b"x".as_slice()
"#,
    );
}

#[test]
fn message_equality() {
    assert_emits(
        "$.user == $.user.friend",
        r#"
*cel::or_default(&input.user)
    == *cel::or_default_boxed(
        &cel::or_default(&input.user).friend,
    )
"#,
    );
}

#[test]
fn enum_and_int() {
    assert_emits(
        "$.status == 2",
        r#"
i64::from(input.status) == 2i64
"#,
    );
}

#[test]
fn numbers_across_types() {
    assert_emits(
        "1 == 1u",
        r#"
cel::num_eq(1i64, 1u64)
"#,
    );
}

#[test]
fn membership() {
    assert_emits(
        "'a' in $.tags",
        r#"
cel::contains(&input.tags, "a")
"#,
    );
}

#[test]
fn membership_in_a_narrow_list() {
    assert_emits(
        "n in $.scores",
        r#"
cel::contains_as(&input.scores, *n)
"#,
    );
}

#[test]
fn empty_list_comparison() {
    assert_emits(
        "$.tags == []",
        r#"
cel::size(&input.tags) == 0
"#,
    );
}

#[test]
fn oneof_member() {
    assert_emits(
        "$.text",
        r#"
(if let ::core::option::Option::Some(crate::pb::request::Filter::Text(value)) = &input
    .filter
{
    value
} else {
    cel::empty_string()
})
    .clone()
"#,
    );
}

#[test]
fn conversions() {
    assert_emits(
        "int($.ratio)",
        r#"
cel::int_from_double(
    f64::from(input.ratio),
    "int($.ratio)",
)?
"#,
    );
}

#[test]
fn string_conversions() {
    assert_emits(
        "string($.page) + string($.ratio) + string($.data)",
        r#"
cel::concat(
    &cel::concat(
        &cel::string_from(input.page),
        &cel::string_from_double(f64::from(input.ratio)),
    ),
    &cel::string_from_bytes(
        &input.data,
        "string($.data)",
    )?,
)
"#,
    );
}

#[test]
fn string_methods() {
    assert_emits(
        "$.product_id.startsWith('p') && $.type.contains($.text)",
        r#"
input.product_id.starts_with("p")
    && input
        .r#type
        .contains(
            if let ::core::option::Option::Some(
                crate::pb::request::Filter::Text(value),
            ) = &input.filter
            {
                value
            } else {
                cel::empty_string()
            },
        )
"#,
    );
}

#[test]
fn smallest_int() {
    assert_emits(
        "[1, 2][n] + -9223372036854775808",
        r#"
cel::add_int(
    *cel::index(
        &::std::vec![1i64, 2i64],
        *n,
        "[1, 2][n]",
    )?,
    i64::MIN,
    "[1, 2][n] + -9223372036854775808",
)?
"#,
    );
}

#[test]
fn map_widening() {
    assert_emits(
        "$.counts",
        r#"
cel::widen_map::<_, _, i64, i64>(&input.counts)
"#,
    );
}

#[test]
fn narrow_uint_from_a_step() {
    assert_emits(
        "rs.total + 1u",
        r#"
cel::add_uint(
    u64::from((&*rs).total),
    1u64,
    "rs.total + 1u",
)?
"#,
    );
}

/// A schema whose only field has whatever name the test gives it.
struct OddName(&'static str);

impl crate::expr::Schema for OddName {
    fn field(&self, _: &str, _: &str) -> Option<crate::expr::FieldInfo> {
        Some(crate::expr::FieldInfo {
            name: self.0.to_owned(),
            ty: Type::String,
            scalar: Some(crate::expr::Scalar::String),
            cardinality: crate::expr::Cardinality::Singular,
        })
    }

    fn field_names(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
}

impl crate::expr::RustSchema for OddName {
    fn message_path(&self, _: &str) -> Option<TokenStream> {
        None
    }

    fn oneof_variant(&self, _: &str, _: &crate::expr::FieldInfo) -> Option<TokenStream> {
        None
    }
}

#[test]
fn field_names_from_the_schema_never_panic() {
    let scope = crate::expr::Scope::new().with("$", Type::Message("m".into()));
    let env = crate::expr::Env::new().with("$", quote!(input));
    let expr = parse("$.f").unwrap();
    for (name, valid) in [
        ("type", true),
        ("self", true),
        ("Self", true),
        ("fooBar", true),
        ("", false),
        ("1a", true),
        ("a-b", true),
        ("r#", true),
        ("é", true),
        ("🙂", false),
        ("a\"", true),
        ("(", false),
    ] {
        let schema = OddName(name);
        let checked = check(&expr, &scope, &schema).unwrap();
        let emitted = emit(&checked, &env, &schema).to_string();
        assert_eq!(
            !emitted.contains("compile_error"),
            valid,
            "{name:?}: {emitted}"
        );
    }
}
