//! Checker: result types, and every error family with its exact message, span and hint.

use super::fixture::{Storefront, scope};
use crate::expr::{ExprError, Type, check, check_condition, check_expecting, parse};

fn type_of(text: &str) -> Type {
    let expr = parse(text).unwrap();
    match check(&expr, &scope(), &Storefront) {
        Ok(checked) => checked.ty,
        Err(errors) => panic!("{text:?}: {errors:#?}"),
    }
}

fn errors(text: &str) -> Vec<ExprError> {
    let expr = parse(text).unwrap();
    match check(&expr, &scope(), &Storefront) {
        Ok(checked) => panic!("{text:?} checked as {}", checked.ty),
        Err(errors) => errors,
    }
}

/// The one error of `text`: its message, the text under its span, and its hint.
fn single(text: &str) -> (String, String, Option<String>) {
    let mut errors = errors(text);
    assert_eq!(errors.len(), 1, "{text:?}: {errors:#?}");
    let error = errors.remove(0);
    (error.message, text[error.span].to_owned(), error.hint)
}

fn assert_single(text: &str, message: &str, at: &str) {
    let (actual, span, _) = single(text);
    assert_eq!(actual, message, "message for {text:?}");
    assert_eq!(span, at, "span for {text:?}");
}

fn hint(text: &str) -> String {
    single(text).2.unwrap_or_default()
}

fn list(t: Type) -> Type {
    Type::List(Box::new(t))
}

#[test]
fn result_types() {
    assert_eq!(type_of("$.review_limit + 1"), Type::Int);
    assert_eq!(type_of("$.page * 2u"), Type::Uint);
    assert_eq!(type_of("$.ratio * 2.0"), Type::Double);
    assert_eq!(type_of("$.user.friend.display_name"), Type::String);
    assert_eq!(
        type_of("rs.reviews"),
        list(Type::Message("demo.Review".into()))
    );
    assert_eq!(type_of("rs.reviews[0].rating"), Type::Int);
    assert_eq!(type_of("$.counts[1]"), Type::Int);
    assert_eq!(type_of("$.labels.k + $.labels['j']"), Type::String);
    assert_eq!(type_of("$.status"), Type::Enum("demo.Status".into()));
    assert_eq!(type_of("has($.user) && has($.labels.k)"), Type::Bool);
    assert_eq!(type_of("size($.tags) + $.product_id.size()"), Type::Int);
    assert_eq!(type_of("$.tags + []"), list(Type::String));
    assert_eq!(type_of("$.verbose ? [] : $.tags"), list(Type::String));
    assert_eq!(type_of("[[], [1]]"), list(list(Type::Int)));
    assert_eq!(type_of("[1, 2][0]"), Type::Int);
    assert_eq!(type_of("1 == 1u && 2.0 < 3 && -1 < 1u"), Type::Bool);
    assert_eq!(type_of("$.status == 1 && $.status != $.status"), Type::Bool);
    assert_eq!(
        type_of("$.user == null || null != $.nickname || $.author != null"),
        Type::Bool
    );
    assert_eq!(
        type_of("int($.ratio) + int('3') + int($.status)"),
        Type::Int
    );
    assert_eq!(
        type_of("string($.page) + string(1.5) + string(true) + string($.data)"),
        Type::String
    );
    assert_eq!(type_of("bytes('x') + $.data"), Type::Bytes);
    assert_eq!(
        type_of("'a' in $.tags && 1 in $.counts && 'k' in $.labels"),
        Type::Bool
    );
    assert_eq!(
        type_of("$.product_id.startsWith('p') || $.type.contains($.text)"),
        Type::Bool
    );
    assert_eq!(type_of("null"), Type::Null);
    assert_eq!(type_of("n"), Type::Int);
    assert_eq!(type_of("names[0]"), Type::String);
}

#[test]
fn an_expected_type_types_an_empty_list() {
    let expr = parse("[]").unwrap();
    let checked = check_expecting(&expr, &scope(), &Storefront, Some(&list(Type::String))).unwrap();
    assert_eq!(checked.ty, list(Type::String));
    assert_single(
        "[]",
        "cannot tell the element type of this empty list",
        "[]",
    );
}

#[test]
fn unknown_names_list_the_names_in_scope() {
    assert_single("rz.total", "unknown name `rz`", "rz");
    assert_eq!(
        hint("rz.total"),
        "did you mean `rs`? names in scope: `$`, `rs`, `n`, `names`"
    );
    assert_eq!(hint("input"), "names in scope: `$`, `rs`, `n`, `names`");
}

#[test]
fn unknown_fields_suggest_the_closest_name() {
    assert_single(
        "$.review_limt",
        "no field `review_limt` on `demo.Request`",
        "review_limt",
    );
    assert_eq!(hint("$.review_limt"), "did you mean `review_limit`?");
    assert_single(
        "rs.reviews[0].autor_id",
        "no field `autor_id` on `demo.Review`",
        "autor_id",
    );
    assert_eq!(hint("rs.reviews[0].autor_id"), "did you mean `author_id`?");
    assert_eq!(hint("rs.reviews[0].authorId"), "did you mean `author_id`?");
    assert_eq!(single("$.zzz").2, None);
    assert_single(
        "n.x",
        "cannot select field `x` from a value of type int",
        "x",
    );
    assert_single(
        "$.tags.x",
        "cannot select field `x` from a value of type list(string)",
        "x",
    );
}

#[test]
fn indexing_errors() {
    assert_single(
        "$.tags['a']",
        "a list index must be int, found string",
        "'a'",
    );
    assert_single("n[0]", "cannot index a value of type int", "n");
    assert_single("$.labels[1]", "this map's keys are string, found int", "1");
}

#[test]
fn arithmetic_errors() {
    assert_single(
        "$.count + 1.5",
        "`+` cannot be applied to int and double",
        "$.count + 1.5",
    );
    assert_eq!(
        hint("$.count + 1.5"),
        "numbers of different types do not mix; convert one side, as in `double($.count)`"
    );
    assert_eq!(
        hint("$.page - n"),
        "numbers of different types do not mix; convert one side, as in `int($.page)`"
    );
    assert_single(
        "$.product_id - 1",
        "`-` is not defined for string",
        "$.product_id",
    );
    assert_single("$.weight % 2", "`%` is not defined for double", "$.weight");
    assert_single(
        "$.status + 1",
        "`+` is not defined for `demo.Status`",
        "$.status",
    );
    assert_eq!(
        hint("$.status + 1"),
        "convert the enum to its number with `int(x)`"
    );
    assert_single(
        "'a' + 1",
        "`+` cannot be applied to string and int",
        "'a' + 1",
    );
    assert_single("-1u", "unary `-` is not defined for uint", "1u");
    assert_single("-'a'", "unary `-` is not defined for string", "'a'");
    assert_single(
        "[1] + ['a']",
        "`+` cannot be applied to list(int) and list(string)",
        "[1] + ['a']",
    );
}

#[test]
fn bool_errors() {
    assert_single("n ? 1 : 2", "condition must be bool, found int", "n");
    assert_single(
        "n && true",
        "an operand of `&&` must be bool, found int",
        "n",
    );
    assert_single(
        "true || $.product_id",
        "an operand of `||` must be bool, found string",
        "$.product_id",
    );
    assert_single("!n", "the operand of `!` must be bool, found int", "n");
    let expr = parse("n + 1").unwrap();
    let errors = check_condition(&expr, &scope(), &Storefront).unwrap_err();
    assert_eq!(errors[0].message, "condition must be bool, found int");
    assert_eq!(errors[0].span, 0..5);
}

#[test]
fn type_agreement_errors() {
    assert_single(
        "$.verbose ? 1 : 'a'",
        "the branches of `?:` have different types: int and string",
        "'a'",
    );
    assert_single(
        "[1, 'a']",
        "the elements of a list must have one type: expected int, found string",
        "'a'",
    );
}

#[test]
fn comparison_errors() {
    assert_single(
        "$.product_id == 1",
        "cannot compare string with int using `==`",
        "$.product_id == 1",
    );
    assert_single(
        "$.status == $.other_status",
        "cannot compare `demo.Status` with `demo.Other` using `==`",
        "$.status == $.other_status",
    );
    assert_single(
        "$.status < 1.5",
        "cannot compare `demo.Status` with double using `<`",
        "$.status < 1.5",
    );
    let errors = errors("$.user < $.user");
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].message, "`<` is not defined for `demo.User`");
    assert_eq!(errors[0].span, 0..6);
    assert_eq!(errors[1].span, 9..15);
}

#[test]
fn null_is_only_for_presence() {
    assert_single(
        "$.count == null",
        "field `count` is never null: it is int without presence",
        "$.count",
    );
    assert_single(
        "n != null",
        "only a field can be compared with `null`; this is a value of type int",
        "n",
    );
    assert_single("null == $.zzz", "no field `zzz` on `demo.Request`", "zzz");
}

#[test]
fn membership_errors() {
    assert_single(
        "1 in n",
        "`in` needs a list or a map on its right, found int",
        "n",
    );
    assert_single(
        "1 in $.tags",
        "this list holds string, so `in` cannot find int in it",
        "1",
    );
    assert_single(
        "'k' in $.counts",
        "this map's keys are int, so `in` cannot find string in it",
        "'k'",
    );
}

#[test]
fn call_errors() {
    assert_single(
        "has(n)",
        "step `n` has no `if`: it always runs, so this is always true",
        "n",
    );
    assert_single(
        "has(1)",
        "`has()` needs a field selection, such as `has(x.field)`, or a step's name",
        "1",
    );
    assert_single("has($.zzz)", "no field `zzz` on `demo.Request`", "zzz");
    assert_single(
        "has(n.x)",
        "`has()` needs a field of a message; this selects from int",
        "x",
    );
    assert_single("size(n)", "`size()` is not defined for int", "n");
    assert_single(
        "size(1, 2)",
        "`size()` takes 1 argument, found 2",
        "size(1, 2)",
    );
    assert_single(
        "$.tags.size(1)",
        "`size()` takes 0 arguments, found 1",
        "$.tags.size(1)",
    );
    assert_single("szie($.tags)", "unknown function `szie`", "szie");
    assert_eq!(hint("szie($.tags)"), "did you mean `size`?");
    assert_single("$.product_id.lenght()", "unknown method `lenght`", "lenght");
    assert_eq!(
        hint("$.product_id.lenght()"),
        "the methods are `size`, `contains`, `startsWith`, `endsWith`, `lowerAscii`, `upperAscii`, `trim`, `split`, `join`, `matches`, `reverse`, `sort`, `orValue`, `hasValue`, `format`, `getFullYear`, `getMonth`, `getDate`, `getDayOfMonth`, `getDayOfWeek`, `getDayOfYear`, `getHours`, `getMinutes`, `getSeconds`, `getMilliseconds`"
    );
    assert_single(
        "$.verbose.map(t, t)",
        "`map` iterates a list, found bool",
        "$.verbose",
    );
    assert_single(
        "$.tags.filter(t, size(t))",
        "the condition of `filter` must be bool, found int",
        "size(t)",
    );
    assert_single(
        "$.tags.map('t', t)",
        "the first argument of `map` names each element: write a name such as `x`",
        "'t'",
    );
    assert_single("int(true)", "cannot convert bool to int", "true");
    assert_single("bytes(1)", "cannot convert int to bytes", "1");
    assert_single(
        "$.product_id.contains(1)",
        "`contains()` needs a string argument, found int",
        "1",
    );
    assert_single(
        "n.startsWith('a')",
        "`startsWith()` is a method of strings, found int",
        "n",
    );
}

#[test]
fn every_independent_error_is_reported_once() {
    let errors = errors("$.zzz + rz + size(n)");
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "no field `zzz` on `demo.Request`",
            "unknown name `rz`",
            "`size()` is not defined for int",
        ]
    );
    // Everything built on an error stays quiet.
    assert_single(
        "size($.zzz.x.y[0] + 1) > 2 ? 1 : 2",
        "no field `zzz` on `demo.Request`",
        "zzz",
    );
}

#[test]
fn enum_values_by_name() {
    assert_eq!(
        type_of("Status.STATUS_ACTIVE"),
        Type::Enum("demo.Status".into())
    );
    assert_eq!(
        type_of("demo.Status.STATUS_BANNED"),
        Type::Enum("demo.Status".into())
    );
    assert_eq!(type_of("$.status == Status.STATUS_ACTIVE"), Type::Bool);
    assert_eq!(
        type_of("$.verbose ? Status.STATUS_ACTIVE : $.status"),
        Type::Enum("demo.Status".into())
    );
    let (message, at, hint) = single("Status.STATUS_ACTIV");
    assert_eq!(message, "no value `STATUS_ACTIV` in enum `demo.Status`");
    assert_eq!(at, "STATUS_ACTIV");
    assert_eq!(hint.as_deref(), Some("did you mean `STATUS_ACTIVE`?"));
    // Not an enum: an unknown name, as before.
    let (message, at, _) = single("Statu.STATUS_ACTIVE");
    assert_eq!(
        (message.as_str(), at.as_str()),
        ("unknown name `Statu`", "Statu")
    );
    // A name in scope wins over an enum of the same name.
    assert_eq!(type_of("rs.total"), Type::Uint);
}

#[test]
fn list_macros() {
    assert_eq!(type_of("$.tags.map(t, size(t))"), list(Type::Int));
    assert_eq!(
        type_of("$.tags.filter(t, t.startsWith('a'))"),
        list(Type::String)
    );
    assert_eq!(type_of("rs.reviews.exists(r, r.rating > 3)"), Type::Bool);
    assert_eq!(type_of("rs.reviews.all(r, r.rating > 3)"), Type::Bool);
    assert_eq!(type_of("$.scores.exists_one(s, s == 1)"), Type::Bool);
    // Nested, with the outer variable visible inside.
    assert_eq!(
        type_of("$.tags.map(t, $.tags.filter(u, u == t))"),
        list(list(Type::String))
    );
    // The variable shadows a name in scope, inside the macro only.
    assert_eq!(
        type_of("names.map(rs, size(rs)) == [] && rs.total > 0u"),
        Type::Bool
    );
}
