//! No input makes the expression layer panic: thousands of mutated and random strings go
//! through parse, check and emit, and every error's span lies within the text on `char`
//! boundaries.

use super::fixture::{Storefront, env, scope};
use crate::expr::{ExprError, check, emit, emit_place, parse};

/// Valid expressions covering every construct, the seeds of the mutations.
const SEEDS: &[&str] = &[
    "$.product_id",
    "rs.reviews[0].author_id",
    "$.user.friend.display_name + ' and ' + $.user.display_name",
    "size($.tags) > 2 && $.verbose",
    "has($.user) ? $.user.age : -1",
    "$.review_limit * 2 + n % 3 - 1",
    "$.ratio / 2.5 >= 1e-3",
    "$.page + 1u",
    "$.nickname == null || $.nickname != 'x'",
    "int($.ratio) == $.count",
    "double(n) * 1.5 < $.weight",
    "string($.page) + \"\\u00e9\\n\"",
    "$.labels['k'] == $.labels.k",
    "$.counts[1] in [1, 2, 3]",
    "'a' in $.tags",
    "$.scores[0] < 10",
    "!$.verbose",
    "-$.count",
    "[1, 2, 3,][n]",
    "$.status == 2 && $.status != $.status",
    "b'\\xff\\x00' + $.data",
    "r'raw\\n' + '''tri\nple'''",
    "$.tags + [] == names",
    "$.verbose ? [] : $.tags",
    "$.product_id.startsWith('p') && $.type.endsWith(\"x\") || $.type.contains(r\"y\")",
    "0x1Fu + 0x2au == 73u ? 'yes' : 'no'",
    "-9223372036854775808 < 9223372036854775807",
    "$.text.size() + size($.author.id)",
    "has($.author) && $.author != null",
    "uint('42') + uint(n)",
];

/// Characters the mutations insert: operators, quotes, escapes, letters, multi-byte chars.
const ALPHABET: &[char] = &[
    '(', ')', '[', ']', '{', '}', '.', ',', '?', ':', '!', '-', '+', '*', '/', '%', '<', '>', '=',
    '&', '|', '\'', '"', '\\', '$', 'a', 'b', 'r', 'u', 'x', 'e', '0', '1', '9', ' ', '\n', 'é',
    '😀', '\u{0}',
];

fn assert_spans(text: &str, errors: &[ExprError]) {
    for error in errors {
        let span = &error.span;
        assert!(
            span.start <= span.end
                && span.end <= text.len()
                && text.is_char_boundary(span.start)
                && text.is_char_boundary(span.end),
            "bad span {span:?} for {text:?}: {error:?}"
        );
        assert!(!error.message.is_empty(), "empty message for {text:?}");
    }
}

/// Runs one input through every stage.
fn exercise(text: &str) {
    let outcome = std::panic::catch_unwind(|| {
        let schema = Storefront;
        let scope = scope();
        match parse(text) {
            Err(error) => assert_spans(text, &[error]),
            Ok(expr) => {
                for (_, span) in expr.names() {
                    assert!(text.get(span).is_some());
                }
                match check(&expr, &scope, &schema) {
                    Err(errors) => {
                        assert!(!errors.is_empty());
                        assert_spans(text, &errors);
                    }
                    Ok(checked) => {
                        let _ = emit(&checked, &env(), &schema);
                        let _ = emit_place(&checked, &env(), &schema);
                    }
                }
            }
        }
    });
    assert!(outcome.is_ok(), "panicked on {text:?}");
}

/// A fixed-seed xorshift generator: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }
}

#[test]
fn seeds_are_valid() {
    let schema = Storefront;
    let scope = scope();
    for seed in SEEDS {
        let expr = parse(seed).unwrap_or_else(|e| panic!("{seed:?}: {e:?}"));
        check(&expr, &scope, &schema).unwrap_or_else(|e| panic!("{seed:?}: {e:?}"));
    }
}

#[test]
fn prefixes_deletions_and_insertions_never_panic() {
    let mut count = 0;
    for seed in SEEDS {
        let boundaries: Vec<usize> = seed
            .char_indices()
            .map(|(i, _)| i)
            .chain([seed.len()])
            .collect();
        for &end in &boundaries {
            exercise(&seed[..end]);
            exercise(&seed[end..]);
            count += 2;
        }
        for window in boundaries.windows(2) {
            let deleted = format!("{}{}", &seed[..window[0]], &seed[window[1]..]);
            exercise(&deleted);
            count += 1;
        }
        for &at in &boundaries {
            for c in ALPHABET {
                let inserted = format!("{}{c}{}", &seed[..at], &seed[at..]);
                exercise(&inserted);
                count += 1;
            }
        }
    }
    assert!(count > 20_000, "only {count} inputs");
}

#[test]
fn random_junk_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = rng.below(24);
        let text: String = (0..len)
            .map(|_| ALPHABET[rng.below(ALPHABET.len())])
            .collect();
        exercise(&text);
    }
}

#[test]
fn random_token_soup_never_panics() {
    const TOKENS: &[&str] = &[
        "$",
        ".",
        "product_id",
        "user",
        "display_name",
        "tags",
        "rs",
        "reviews",
        "n",
        "names",
        "[",
        "]",
        "(",
        ")",
        "0",
        "1u",
        "2.5",
        "'s'",
        "b'b'",
        "null",
        "true",
        "+",
        "-",
        "*",
        "/",
        "%",
        "==",
        "!=",
        "<",
        ">=",
        "&&",
        "||",
        "!",
        "?",
        ":",
        ",",
        "in",
        "size",
        "has",
        "int",
        "string",
        "counts",
        "labels",
        "status",
        "ratio",
        "scores",
        "nickname",
        "author",
        "text",
        "contains",
        "-9223372036854775808",
    ];
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let len = 1 + rng.below(12);
        let text: Vec<&str> = (0..len).map(|_| TOKENS[rng.below(TOKENS.len())]).collect();
        exercise(&text.join(" "));
        exercise(&text.concat());
    }
}

#[test]
fn the_deepest_accepted_expressions_check_and_emit() {
    // At the nesting limit, checking and emission recurse as deep as they ever will; this runs
    // on a test thread's small stack.
    // Each is the deepest of its kind the parser accepts (see `nesting_is_bounded` for one
    // more level failing).
    let parens = format!("{}n{}", "(".repeat(63), ")".repeat(63));
    let sum = format!("n{}", " + n".repeat(63));
    let negations = format!("{}$.verbose", "!".repeat(62));
    let fields = format!("$.user{}.age", ".friend".repeat(61));
    let ternaries = format!("{}0", "$.verbose ? 1 : ".repeat(62));
    let lists = format!("{}1{}", "[".repeat(63), "]".repeat(63));
    for text in [parens, sum, negations, fields, ternaries, lists] {
        let expr = parse(&text).unwrap_or_else(|e| panic!("{e:?}"));
        let checked = check(&expr, &scope(), &Storefront).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!emit(&checked, &env(), &Storefront).is_empty());
    }
}
