//! The expression language: every operator, function, method and literal form, over the
//! request's fields, one case per group.

use crate::cases::{Case, fragment};
use crate::proto::{Build, Message, Step};

/// `(field type, field name, expression)`.
type Field = (&'static str, &'static str, &'static str);

/// `(case, fields)`.
const GROUPS: &[(&str, &[Field])] = &[
    (
        "expr_arith",
        &[
            ("int64", "ints", "$.i + 1 - 2 * 3 / 4 % 5"),
            ("int64", "neg", "-$.i + -(-1) - -$.i"),
            ("uint64", "uints", "$.u + 1u - 0u * 2u / 3u % 4u"),
            ("double", "doubles", "$.f * 2.0 / 3.5 + 1e3 - -0.5"),
            ("double", "fneg", "-$.f"),
            ("double", "inf", "1.0 / 0.0 - $.f / 0.0"),
            ("int64", "hex", "0x1F + 0x0 - 0XfF"),
            ("double", "exp", "1e-3 + 2.5E2 + 0.5"),
            ("int32", "narrow", "$.i * 2"),
            ("uint32", "unarrow", "$.u / 2u"),
            ("float", "fnarrow", "$.f * 0.5"),
            ("string", "concat", "$.s + 'x' + $.s"),
            ("bytes", "bconcat", "$.b + b'x'"),
            ("repeated int64", "lconcat", "$.is + [1] + $.is"),
            ("int64", "parens", "((((($.i)))))"),
        ],
    ),
    (
        "expr_compare",
        &[
            (
                "bool",
                "mixed",
                "$.i < $.f && $.u >= $.i || $.f != $.u && 1 == 1u && 2.0 > 1",
            ),
            (
                "bool",
                "strings",
                "$.s < 'b' && $.s <= $.s && 'a' != $.s && $.s > '' && $.s >= 'a'",
            ),
            ("bool", "bytes_cmp", "$.b > b'a' || $.b == b''"),
            ("bool", "bools", "$.t == true && $.t > false || $.t <= $.t"),
            ("bool", "lists", "$.is == [1, 2] || $.is != $.is"),
            ("bool", "maps", "$.m == $.m"),
            ("bool", "messages", "$.item == $.item"),
            ("bool", "same", "$.i == $.i && $.u >= 0u"),
        ],
    ),
    (
        "expr_logic",
        &[
            (
                "bool",
                "logic",
                "!($.t && !$.t) || $.t && ($.i > 0 || $.u > 0u)",
            ),
            ("bool", "not_not", "!!$.t"),
            (
                "string",
                "tern",
                "$.i > 0 ? 'pos' : $.i < 0 ? 'neg' : 'zero'",
            ),
            ("repeated int64", "tern_list", "$.t ? $.is : []"),
            ("repeated int64", "tern_list2", "$.t ? [] : [1]"),
            ("Item", "tern_msg", "$.t ? $.item : $.item"),
            ("int64", "tern_nested", "($.t ? 1 : 2) + ($.t ? $.i : -$.i)"),
            ("Item", "none", "null"),
            ("bool", "nulls", "$.item != null || null == $.item"),
            ("bool", "constant", "true || false && true"),
        ],
    ),
    (
        "expr_calls",
        &[
            (
                "int64",
                "sizes",
                "size($.s) + size($.b) + size($.is) + size($.m) + $.s.size() + $.is.size() + size('h\u{e9}llo') + $.m.size() + $.b.size()",
            ),
            (
                "bool",
                "has",
                "has($.item) && has($.item.name) && has($.m.k) && has($.o) && has($.is) && has($.s) && has($.m) && has($.f) && has($.t)",
            ),
            (
                "int64",
                "c_int",
                "int($.u) + int($.f) + int($.s) + int(2.5) + int('3') + int($.i)",
            ),
            (
                "uint64",
                "c_uint",
                "uint($.i) + uint($.f) + uint($.s) + uint(1) + uint($.u)",
            ),
            (
                "double",
                "c_double",
                "double($.i) + double($.u) + double($.s) + double(1) + double($.f)",
            ),
            (
                "string",
                "c_string",
                "string($.i) + string($.u) + string($.f) + string($.t) + string($.b) + string($.s) + string(1.5)",
            ),
            ("bytes", "c_bytes", "bytes($.s) + bytes($.b) + bytes('x')"),
            (
                "bool",
                "methods",
                "$.s.contains('a') || $.s.startsWith($.s) && 'abc'.endsWith('c') || ($.s + 'x').contains($.s)",
            ),
            ("int32", "opt", "$.o + 1"),
        ],
    ),
    (
        "expr_lists",
        &[
            (
                "bool",
                "ins",
                "$.i in $.is || 3 in [1, 2, 3] || 'k' in $.m || $.s in $.ss || $.s in ['a', 'b'] || $.item in [$.item]",
            ),
            ("repeated int64", "lists", "[1, 2, $.i] + $.is + []"),
            (
                "int64",
                "idx",
                "[10, 20, 30][1] + $.is[0] + $.m['k'] + $.m.k + [[1, 2], [3]][1][0]",
            ),
            ("int64", "uidx", "$.is[1u] + $.is[$.i]"),
            ("string", "sidx", "['a', 'b'][$.i] + $.ss[0]"),
            ("repeated string", "strings", "['a', $.s] + $.ss"),
            ("repeated Item", "items", "[$.item, $.item]"),
            ("repeated bytes", "bytes", "[$.b, b'']"),
            ("repeated double", "doubles", "[1.0, $.f]"),
            ("repeated bool", "bools", "[true, $.t]"),
            ("map<string, int64>", "map", "$.m"),
            ("int64", "empty", "size([$.is, []]) + size([[], $.is])"),
        ],
    ),
    (
        "expr_literals",
        &[
            ("string", "quotes", "'a' + \"b\" + '\"' + \"'\""),
            (
                "string",
                "escapes",
                "'\\n\\t\\r\\\\\\'\\\"' + '\\x41\\u00e9\\U0001F600' + '\\101\\a\\b\\f\\v\\?\\`'",
            ),
            ("string", "raw", "r'raw\\n' + R\"raw\\t\""),
            ("string", "triple", "'''tri'ple''' + \"\"\"tri\"ple\"\"\""),
            ("string", "unicode", "'\u{e9}\u{1F600}\u{4e2d}'"),
            (
                "bytes",
                "blits",
                "b'\\x00\\xff' + b\"x\" + b'''y''' + B'z' + br'\\n' + b'\u{e9}'",
            ),
            ("string", "empty", "''"),
            ("bytes", "bempty", "b''"),
        ],
    ),
    (
        "expr_float_literal",
        &[("float", "f", "0.5"), ("float", "fbig", "3.4e38")],
    ),
    (
        "expr_extremes",
        &[
            ("int64", "max", "9223372036854775807"),
            ("int64", "min", "-9223372036854775808"),
            ("uint64", "umax", "18446744073709551615u"),
            ("double", "big", "1.7976931348623157e308"),
            ("double", "tiny", "5e-324"),
            ("int32", "i32max", "2147483647"),
            ("uint32", "u32max", "4294967295u"),
        ],
    ),
];

pub(crate) fn all() -> Vec<Case> {
    GROUPS
        .iter()
        .map(|(name, fields)| {
            fragment("exprs", name, |file, c| {
                file.message(
                    Message::new(&c.n("Req"))
                        .field("int64", "i")
                        .field("uint64", "u")
                        .field("double", "f")
                        .field("string", "s")
                        .field("bytes", "b")
                        .field("bool", "t")
                        .field("repeated int64", "is")
                        .field("map<string, int64>", "m")
                        .field("repeated string", "ss")
                        .field("Item", "item")
                        .field("optional int32", "o"),
                );
                // Every expression as a field's `by`; the first few again as steps of a built
                // message (whose `$` is its arguments), read by its fields.
                let mut edge = Message::new(&c.n("EdgeResponse"));
                let mut steps = Message::new(&c.n("Steps"));
                for (ty, field, expr) in *fields {
                    edge = edge.by(ty, field, expr);
                }
                for (ty, field, expr) in fields.iter().take(3) {
                    steps = steps.step(Step::by(field, expr)).by(ty, field, field);
                }
                let mut build = Build::new(&c.n("Steps"));
                for arg in ["i", "u", "f", "s", "b", "t", "is", "m", "ss", "item", "o"] {
                    build = build.arg(arg, &format!("$.{arg}"));
                }
                edge = edge
                    .step(Step::build("steps", build))
                    .by(&c.n("Steps"), "steps", "steps");
                file.message(edge);
                file.message(steps);
                file.edge(&c.n("Run"), &c.n("Req"), &c.n("EdgeResponse"), "");
            })
        })
        .collect()
}

/// Where a string or bytes value is read from: `(slug, field declaration type, is bytes)`.
pub(crate) const TEXT_PLACES: &[(&str, &str, bool)] = &[
    ("plain_string", "string", false),
    ("optional_string", "optional string", false),
    ("wrapper_string", "google.protobuf.StringValue", false),
    ("oneof_string", "oneof string", false),
    ("plain_bytes", "bytes", true),
    ("optional_bytes", "optional bytes", true),
    ("wrapper_bytes", "google.protobuf.BytesValue", true),
    ("oneof_bytes", "oneof bytes", true),
];

/// `(op slug, result type, expression over the value `F` (and `$.s`, `$.b`, `$.m`))`.
pub(crate) const STRING_OPS: &[(&str, &str, &str)] = &[
    ("concat", "string", "F + '!'"),
    ("concat_rhs", "string", "'!' + F"),
    ("starts_with", "bool", "F.startsWith('a')"),
    ("contains", "bool", "F.contains($.s)"),
    ("contained", "bool", "$.s.contains(F)"),
    ("size", "int64", "size(F) + F.size()"),
    ("to_string", "string", "string(F)"),
    ("to_bytes", "bytes", "bytes(F)"),
    ("to_int", "int64", "int(F)"),
    ("compare", "bool", "F < 'a' || F == $.s"),
    ("in_list", "bool", "F in ['a', $.s]"),
    ("map_key", "bool", "F in $.m"),
    ("map_index", "int64", "$.m[F]"),
    ("list", "repeated string", "[F, $.s]"),
    ("conditional", "string", "$.t ? F : $.s"),
    ("store", "string", "F"),
];

pub(crate) const BYTES_OPS: &[(&str, &str, &str)] = &[
    ("concat", "bytes", "F + b'!'"),
    ("size", "int64", "size(F) + F.size()"),
    ("to_string", "string", "string(F)"),
    ("to_bytes", "bytes", "bytes(F)"),
    ("compare", "bool", "F < b'a' || F == $.b"),
    ("in_list", "bool", "F in [b'', $.b]"),
    ("list", "repeated bytes", "[F, $.b]"),
    ("conditional", "bytes", "$.t ? F : $.b"),
    ("store", "bytes", "F"),
];

/// `text_<place>`: string and bytes operations on values read from each kind of place (plain,
/// proto3 `optional`, wrapper type, oneof member); an operation named in `split` is a case of
/// its own, `text_<place>_<op>`.
pub(crate) fn text_cases(split: &[&str]) -> Vec<Case> {
    let mut cases = Vec::new();
    for &(place, decl, bytes) in TEXT_PLACES {
        let ops = if bytes { BYTES_OPS } else { STRING_OPS };
        let kept: Vec<_> = ops
            .iter()
            .filter(|(op, ..)| !split.contains(&format!("text_{place}_{op}").as_str()))
            .collect();
        cases.push(text_case(&format!("text_{place}"), decl, &kept));
        for op in ops
            .iter()
            .filter(|(op, ..)| split.contains(&format!("text_{place}_{op}").as_str()))
        {
            cases.push(text_case(&format!("text_{place}_{}", op.0), decl, &[op]));
        }
    }
    cases
}

fn text_case(name: &str, decl: &str, ops: &[&(&str, &str, &str)]) -> Case {
    fragment("texts", name, |file, c| {
        file.import("google/protobuf/wrappers.proto");
        let mut io = Message::new(&c.n("Io"))
            .field("string", "s")
            .field("bytes", "b")
            .field("bool", "t")
            .field("map<string, int64>", "m");
        io = match decl.strip_prefix("oneof ") {
            Some(ty) => io.oneof("choice", &[(ty, "f", None), ("int64", "other", None)]),
            None => io.field(decl, "f"),
        };
        file.message(io);
        let mut edge = Message::new(&c.n("EdgeResponse"));
        for (op, ty, expr) in ops {
            edge = edge.by(ty, op, &expr.replace('F', "$.f"));
        }
        file.message(edge);
        file.edge(&c.n("Run"), &c.n("Io"), &c.n("EdgeResponse"), "");
    })
}
