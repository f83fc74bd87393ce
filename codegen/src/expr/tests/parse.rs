//! Parser: precedence, associativity, exact spans, every literal form, and syntax errors.

use crate::expr::{Expr, ExprError, Literal, Node, NodeKind, parse};

/// The tree as an s-expression: `(+ a (* b c))`.
fn shape(text: &str) -> String {
    let expr = parse(text).unwrap_or_else(|e| panic!("{text:?} did not parse: {e:?}"));
    sexpr(expr.root())
}

fn sexpr(node: &Node) -> String {
    match &node.kind {
        NodeKind::Literal(literal) => literal_text(literal),
        NodeKind::Name(ident) => ident.name.clone(),
        NodeKind::Select { operand, field } => format!("(. {} {})", sexpr(operand), field.name),
        NodeKind::Index { operand, index } => format!("([] {} {})", sexpr(operand), sexpr(index)),
        NodeKind::Call {
            target,
            function,
            args,
        } => {
            let mut parts = vec![match target {
                Some(target) => format!(".{} {}", function.name, sexpr(target)),
                None => function.name.clone(),
            }];
            parts.extend(args.iter().map(sexpr));
            format!("({})", parts.join(" "))
        }
        NodeKind::Unary { op, operand } => format!("({op} {})", sexpr(operand)),
        NodeKind::Binary { op, lhs, rhs, .. } => {
            format!("({op} {} {})", sexpr(lhs), sexpr(rhs))
        }
        NodeKind::Conditional {
            cond,
            then,
            otherwise,
        } => format!("(? {} {} {})", sexpr(cond), sexpr(then), sexpr(otherwise)),
        NodeKind::List(items) => {
            let items: Vec<String> = items.iter().map(sexpr).collect();
            format!("[{}]", items.join(" "))
        }
        NodeKind::Map(entries) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", sexpr(k), sexpr(v)))
                .collect();
            format!("{{{}}}", entries.join(" "))
        }
        NodeKind::Message { name, fields } => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(f, v)| format!("{}:{}", f.name, sexpr(v)))
                .collect();
            format!("{}{{{}}}", name.name, fields.join(" "))
        }
    }
}

#[test]
fn map_and_message_literals() {
    assert_eq!(shape("{'a': 1, 'b': x + 1}"), r#"{"a":1 "b":(+ x 1)}"#);
    assert_eq!(shape("{}"), "{}");
    assert_eq!(shape("Msg{}"), "Msg{}");
    assert_eq!(
        shape("pkg.v1.Msg{a: 1, in: [2], next: Msg{b: {1: 'x'}},}"),
        r#"pkg.v1.Msg{a:1 in:[2] next:Msg{b:{1:"x"}}}"#
    );
    assert_eq!(shape("Msg{a: 1}.a"), "(. Msg{a:1} a)");
    let expr = parse("  pkg.Msg{a: 1}").unwrap();
    assert_eq!(expr.root().span, 2..15);
    match &expr.root().kind {
        NodeKind::Message { name, .. } => assert_eq!(name.span, 2..9),
        other => panic!("not a message literal: {other:?}"),
    }
    // A message literal's type name is not a name the expression reads.
    assert!(
        parse("Msg{a: x}")
            .unwrap()
            .names()
            .iter()
            .all(|(n, _)| n == "x")
    );
}

fn literal_text(literal: &Literal) -> String {
    match literal {
        Literal::Int(v) => v.to_string(),
        Literal::Uint(v) => format!("{v}u"),
        Literal::Double(v) => format!("{v:?}"),
        Literal::String(s) => format!("{s:?}"),
        Literal::Bytes(b) => format!("b{b:?}"),
        Literal::Bool(b) => b.to_string(),
        Literal::Null => "null".to_owned(),
    }
}

fn literal(text: &str) -> Literal {
    match parse(text).map(|e| e.root().kind.clone()) {
        Ok(NodeKind::Literal(literal)) => literal,
        other => panic!("{text:?} is not a literal: {other:?}"),
    }
}

fn error(text: &str) -> ExprError {
    match parse(text) {
        Ok(expr) => panic!("{text:?} parsed as {}", sexpr(expr.root())),
        Err(error) => error,
    }
}

/// Asserts the message, and the text the span covers.
fn assert_error(text: &str, message: &str, at: &str) {
    let error = error(text);
    assert_eq!(error.message, message, "message for {text:?}");
    assert_eq!(
        &text[error.span.clone()],
        at,
        "span for {text:?}: {:?}",
        error.span
    );
}

/// Every node in pre-order, as the text its span covers.
fn spans(expr: &Expr) -> Vec<&str> {
    fn walk<'t>(text: &'t str, node: &Node, out: &mut Vec<&'t str>) {
        out.push(&text[node.span.clone()]);
        for child in node.kind.children() {
            walk(text, child, out);
        }
    }
    let mut out = Vec::new();
    walk(expr.text(), expr.root(), &mut out);
    out
}

#[test]
fn precedence_follows_cel() {
    assert_eq!(shape("a + b * c"), "(+ a (* b c))");
    assert_eq!(shape("a * b + c"), "(+ (* a b) c)");
    assert_eq!(shape("a % b - c / d"), "(- (% a b) (/ c d))");
    assert_eq!(shape("a || b && c"), "(|| a (&& b c))");
    assert_eq!(shape("a && b || c && d"), "(|| (&& a b) (&& c d))");
    assert_eq!(shape("a < b + c"), "(< a (+ b c))");
    assert_eq!(shape("a == b && c != d"), "(&& (== a b) (!= c d))");
    assert_eq!(shape("x in xs && y"), "(&& (in x xs) y)");
    assert_eq!(shape("!a && b"), "(&& (! a) b)");
    assert_eq!(shape("-a.b * c"), "(* (- (. a b)) c)");
    assert_eq!(shape("!a.b()"), "(! (.b a))");
    assert_eq!(shape("a || b ? c : d"), "(? (|| a b) c d)");
    assert_eq!(shape("(a + b) * c"), "(* (+ a b) c)");
}

#[test]
fn associativity() {
    assert_eq!(shape("a - b - c"), "(- (- a b) c)");
    assert_eq!(shape("a / b / c"), "(/ (/ a b) c)");
    assert_eq!(shape("a || b || c"), "(|| (|| a b) c)");
    // Relations share one level in CEL, left-associative.
    assert_eq!(shape("a == b < c"), "(< (== a b) c)");
    assert_eq!(shape("a ? b : c ? d : e"), "(? a b (? c d e))");
    assert_eq!(shape("!!a"), "(! (! a))");
    assert_eq!(shape("--a"), "(- (- a))");
}

#[test]
fn members_calls_and_lists() {
    assert_eq!(shape("$.review.author_id"), "(. (. $ review) author_id)");
    assert_eq!(shape("a.b.c[0].d(1, 2)"), "(.d ([] (. (. a b) c) 0) 1 2)");
    assert_eq!(shape("m['k'][n]"), "([] ([] m \"k\") n)");
    assert_eq!(shape("size(x) + x.size()"), "(+ (size x) (.size x))");
    assert_eq!(shape("has($.user)"), "(has (. $ user))");
    assert_eq!(shape("f()"), "(f)");
    assert_eq!(shape("[1, 2, 3,]"), "[1 2 3]");
    assert_eq!(shape("[]"), "[]");
    assert_eq!(shape("[[a], []]"), "[[a] []]");
    // Proto fields may be named like keywords.
    assert_eq!(shape("a.in.null.true"), "(. (. (. a in) null) true)");
    assert_eq!(shape("a // a comment\n + b"), "(+ a b)");
}

#[test]
fn negative_numbers_are_literals_when_nothing_follows() {
    assert_eq!(literal("-5"), Literal::Int(-5));
    assert_eq!(literal("- 5"), Literal::Int(-5));
    assert_eq!(literal("-9223372036854775808"), Literal::Int(i64::MIN));
    assert_eq!(literal("-1.5"), Literal::Double(-1.5));
    assert_eq!(shape("1 - -1"), "(- 1 -1)");
    assert_eq!(shape("--5"), "(- -5)");
    assert_eq!(shape("-5.x"), "(- (. 5 x))");
    assert_eq!(shape("-1u"), "(- 1u)");
}

#[test]
fn every_literal_form() {
    assert_eq!(literal("42"), Literal::Int(42));
    assert_eq!(literal("0"), Literal::Int(0));
    assert_eq!(literal("0x1F"), Literal::Int(31));
    assert_eq!(literal("0X1f"), Literal::Int(31));
    assert_eq!(literal("42u"), Literal::Uint(42));
    assert_eq!(literal("42U"), Literal::Uint(42));
    assert_eq!(literal("0x1Fu"), Literal::Uint(31));
    assert_eq!(literal("18446744073709551615u"), Literal::Uint(u64::MAX));
    assert_eq!(literal("9223372036854775807"), Literal::Int(i64::MAX));
    assert_eq!(literal("1.5"), Literal::Double(1.5));
    assert_eq!(literal("1e3"), Literal::Double(1000.0));
    assert_eq!(literal("1.5e-3"), Literal::Double(0.0015));
    assert_eq!(literal("2E+2"), Literal::Double(200.0));
    assert_eq!(literal("true"), Literal::Bool(true));
    assert_eq!(literal("false"), Literal::Bool(false));
    assert_eq!(literal("null"), Literal::Null);
    assert_eq!(literal("'single'"), Literal::String("single".into()));
    assert_eq!(literal("\"double\""), Literal::String("double".into()));
    assert_eq!(literal("\"héllo 😀\""), Literal::String("héllo 😀".into()));
    assert_eq!(literal("''"), Literal::String(String::new()));
    assert_eq!(literal("r'a\\nb'"), Literal::String("a\\nb".into()));
    assert_eq!(
        literal("'''two\nlines'''"),
        Literal::String("two\nlines".into())
    );
    assert_eq!(
        literal("\"\"\"it's \"quoted\" ok\"\"\""),
        Literal::String("it's \"quoted\" ok".into())
    );
    assert_eq!(literal("b'abc'"), Literal::Bytes(b"abc".to_vec()));
    assert_eq!(literal("B\"é\""), Literal::Bytes("é".as_bytes().to_vec()));
    assert_eq!(literal("rb'\\x'"), Literal::Bytes(b"\\x".to_vec()));
}

#[test]
fn escapes() {
    assert_eq!(
        literal(r#""\n\t\r\\\'\"\`\?\a\b\f\v""#),
        Literal::String("\n\t\r\\'\"`?\x07\x08\x0C\x0B".into())
    );
    assert_eq!(literal(r#"'\u1234'"#), Literal::String("\u{1234}".into()));
    assert_eq!(literal(r#"'\U0001F600'"#), Literal::String("😀".into()));
    assert_eq!(literal(r#"'\x41\101'"#), Literal::String("AA".into()));
    // In a string, `\xFF` is the character U+00FF; in bytes, the byte 0xFF.
    assert_eq!(literal(r#"'\xff'"#), Literal::String("\u{ff}".into()));
    assert_eq!(literal(r#"b'\xff\000'"#), Literal::Bytes(vec![0xff, 0]));
    assert_eq!(
        literal(r#"b'\u00e9'"#),
        Literal::Bytes("é".as_bytes().to_vec())
    );
}

#[test]
fn spans_are_exact_for_every_node_kind() {
    let expr = parse("f(x)[0].y + (-a ? [1, 'z'] : $.z.size())").unwrap();
    assert_eq!(
        spans(&expr),
        [
            "f(x)[0].y + (-a ? [1, 'z'] : $.z.size())",
            "f(x)[0].y",
            "f(x)[0]",
            "f(x)",
            "x",
            "0",
            "(-a ? [1, 'z'] : $.z.size())",
            "-a",
            "a",
            "[1, 'z']",
            "1",
            "'z'",
            "$.z.size()",
            "$.z",
            "$",
        ]
    );
    let NodeKind::Binary { op_span, lhs, .. } = &expr.root().kind else {
        panic!("not a binary node");
    };
    assert_eq!(&expr.text()[op_span.clone()], "+");
    let NodeKind::Select { field, .. } = &lhs.kind else {
        panic!("not a selection");
    };
    assert_eq!(&expr.text()[field.span.clone()], "y");

    let expr = parse("  -5u + b'x' ").unwrap();
    assert_eq!(spans(&expr), ["-5u + b'x'", "-5u", "5u", "b'x'"]);
    let expr = parse("é == 'é'").err().unwrap();
    assert_eq!(expr.span, 0..2);
}

#[test]
fn names_are_listed_with_their_spans() {
    let expr = parse("$.a + rs.b[n] + size(names) + has($.x.y) + f(m)").unwrap();
    let names: Vec<(String, &str)> = expr
        .names()
        .into_iter()
        .map(|(name, span)| (name, &expr.text()[span]))
        .collect();
    let expected = [
        ("$", "$"),
        ("rs", "rs"),
        ("n", "n"),
        ("names", "names"),
        ("$", "$"),
        ("m", "m"),
    ];
    let expected: Vec<(String, &str)> = expected
        .iter()
        .map(|(n, s)| ((*n).to_owned(), *s))
        .collect();
    assert_eq!(names, expected);
}

#[test]
fn syntax_errors_point_at_the_problem() {
    assert_error(
        "a.b +",
        "expected a value after `+`, found the end of the expression",
        "+",
    );
    assert_error("", "the expression is empty", "");
    assert_error("   ", "the expression is empty", "   ");
    assert_error("(a + b", "unclosed `(`", "(");
    assert_error("[a, b", "unclosed `[`", "[");
    assert_error("a[0", "unclosed `[`", "[");
    assert_error("size(a", "unclosed `(` of the call to `size`", "(");
    assert_error("a + )", "expected a value, found `)`", ")");
    assert_error(
        "a b",
        "expected an operator or the end of the expression, found `b`",
        "b",
    );
    assert_error("f(a b)", "expected `,` or `)`, found `b`", "b");
    assert_error("a = b", "`=` is not an operator", "=");
    assert_error("a & b", "`&` is not an operator", "&");
    assert_error("a | b", "`|` is not an operator", "|");
    assert_error(
        "'abc",
        "unterminated string literal (strings end on the same line)",
        "'abc",
    );
    assert_error(
        "'ab\ncd'",
        "unterminated string literal (strings end on the same line)",
        "'ab",
    );
    assert_error("'''abc''", "unterminated string literal", "'''abc''");
    assert_error(r"'a\qb'", r"unknown escape sequence `\q`", r"\q");
    assert_error(r"'\u12'", r"`\u` needs 4 hexadecimal digits", r"\u12");
    assert_error(r"'\xZ'", r"`\x` needs 2 hexadecimal digits", r"\x");
    assert_error(
        r"'\uD800'",
        r"`\uD800` is not a Unicode scalar value",
        r"\uD800",
    );
    assert_error(r"'\19'", "an octal escape needs three octal digits", r"\1");
    assert_error("12abc", "invalid number literal `12abc`", "12abc");
    assert_error("1.5u", "invalid number literal `1.5u`", "1.5u");
    assert_error("1e", "the exponent of a number needs digits", "1e");
    assert_error("0x", "`0x` must be followed by hexadecimal digits", "0x");
    assert_error(
        "9223372036854775808",
        "int literal `9223372036854775808` is out of range",
        "9223372036854775808",
    );
    assert_error(
        "-9223372036854775809",
        "int literal `-9223372036854775809` is out of range",
        "-9223372036854775809",
    );
    assert_error(
        "99999999999999999999",
        "integer literal `99999999999999999999` is too large",
        "99999999999999999999",
    );
    assert_error("{'a' 1}", "expected `:`, found `1`", "1");
    assert_error("{'a': 1", "unclosed `{`", "{");
    assert_error("Msg{a: 1 b: 2}", "expected `,` or `}`, found `b`", "b");
    assert_error(
        "$.x{a: 1}",
        "expected an operator or the end of the expression, found `{`",
        "{",
    );
    assert_error(
        "a.",
        "expected a field name after `.`, found the end of the expression",
        ".",
    );
    assert_error("a.1", "expected a field name, found `1`", "1");
    assert_error("$foo", "expected `.` after `$`, found `foo`", "$foo");
    assert_error(
        "a ? b",
        "expected `:` after `b`, found the end of the expression",
        "b",
    );
    assert_error("a ? b ? c : d : e", "expected `:`, found `?`", "?");
    assert_error("#", "unexpected character `#`", "#");
    assert_error("a ∧ b", "unexpected character `∧`", "∧");
    assert_error(".5", "expected a value, found `.`", ".");
    assert_eq!(
        error(".5").hint.as_deref(),
        Some("a number needs a digit before the point, as in `0.5`")
    );
    assert_eq!(
        error("$foo").hint.as_deref(),
        Some("write `$.foo` to read a field of the input")
    );
    assert_eq!(error("a = b").hint.as_deref(), Some("compare with `==`"));
    // The first problem in reading order wins, lexical or not.
    assert_error(
        "a b 'unterminated",
        "expected an operator or the end of the expression, found `b`",
        "b",
    );
    assert_error(
        "a + 'unterminated",
        "unterminated string literal (strings end on the same line)",
        "'unterminated",
    );
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}a{}", "(".repeat(5000), ")".repeat(5000));
    assert!(error(&deep).message.contains("nests too deeply"));
    let long_chain = format!("a{}", " + a".repeat(5000));
    assert!(error(&long_chain).message.contains("nests too deeply"));
    let nots = format!("{}a", "!".repeat(5000));
    assert!(error(&nots).message.contains("nests too deeply"));
    let members = format!("a{}", ".b".repeat(5000));
    assert!(error(&members).message.contains("nests too deeply"));
    let lists = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    assert!(error(&lists).message.contains("nests too deeply"));
    // Within the limit, long expressions are fine.
    assert!(parse(&format!("a{}", " + a".repeat(63))).is_ok());
    assert!(parse(&format!("a{}", " + a".repeat(64))).is_err());
}
