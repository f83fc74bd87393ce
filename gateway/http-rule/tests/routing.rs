//! The routing vectors in `routing.vectors` (precedence, verbs, escaping, methods, collisions),
//! and random paths fed to the same matcher: it never panics, and every answer is one of found,
//! 404, 405 with a non-empty `Allow`, or a 400 with a message.

// Helpers outside `#[test]` functions are not covered by clippy's allow-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mosaic_http_rule::{HttpMethod, Lookup, Matcher, Template};
use rand::{Rng, SeedableRng};

fn method(name: &str) -> HttpMethod {
    match name {
        "GET" => HttpMethod::Get,
        "PUT" => HttpMethod::Put,
        "POST" => HttpMethod::Post,
        "DELETE" => HttpMethod::Delete,
        "PATCH" => HttpMethod::Patch,
        "*" => HttpMethod::Any,
        other => HttpMethod::Custom(other.to_owned()),
    }
}

/// The matcher of the vectors' routes, each valued by its template text.
fn build(text: &str) -> (Matcher<String>, usize) {
    let mut matcher = Matcher::default();
    let mut conflicts = 0;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["route", m, template] => {
                let parsed = Template::parse(template).unwrap();
                matcher
                    .insert(method(m), parsed, (*template).to_owned())
                    .unwrap_or_else(|c| panic!("{line}: conflicts with {}", c.existing));
            }
            ["conflict", m, template] => {
                let parsed = Template::parse(template).unwrap();
                assert!(
                    matcher
                        .insert(method(m), parsed, (*template).to_owned())
                        .is_err(),
                    "{line}: accepted"
                );
                conflicts += 1;
            }
            _ => {}
        }
    }
    (matcher, conflicts)
}

#[test]
fn every_vector_routes_as_written() {
    let text = include_str!("routing.vectors");
    let (matcher, conflicts) = build(text);
    assert!(conflicts >= 4);
    let mut checked = 0;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((request, expected)) = line.split_once(" => ") else {
            continue;
        };
        let (m, path) = request.split_once(' ').unwrap();
        let outcome = matcher.lookup(m, path);
        let mut expected_words = expected.split(' ');
        let head = expected_words.next().unwrap();
        match (head, outcome) {
            ("404", Ok(Lookup::NotFound)) => {}
            ("400", Err(message)) => assert!(!message.is_empty()),
            ("405", Ok(Lookup::MethodNotAllowed(allowed))) => {
                assert_eq!(allowed.join(","), expected_words.next().unwrap(), "{line}");
            }
            (
                template,
                Ok(Lookup::Found {
                    value, captures, ..
                }),
            ) if template.starts_with('/') => {
                assert_eq!(value, template, "{line}");
                // Values may contain spaces (`name=shelves/s 1/...`): a word without `=`
                // continues the value before it.
                let mut expected_values: Vec<String> = Vec::new();
                for part in expected_words {
                    if part.contains('=') || expected_values.is_empty() {
                        expected_values.push(part.to_owned());
                    } else if let Some(last) = expected_values.last_mut() {
                        last.push(' ');
                        last.push_str(part);
                    }
                }
                let got: Vec<String> = captures.clone();
                let want: Vec<String> = expected_values
                    .iter()
                    .map(|kv| kv.split_once('=').unwrap().1.to_owned())
                    .collect();
                assert_eq!(got, want, "{line}");
            }
            (_, outcome) => panic!("{line}: got {outcome:?}"),
        }
        checked += 1;
    }
    assert!(checked >= 35, "only {checked} vectors");
}

#[test]
fn random_paths_never_panic_and_always_get_an_answer() {
    let (matcher, _) = build(include_str!("routing.vectors"));
    let alphabet: &[&str] = &[
        "v1",
        "v2",
        "shelves",
        "books",
        "special",
        "operations",
        "files",
        "any",
        "x",
        "7",
        "",
        ":read",
        ":cancel",
        ":",
        "%2F",
        "%2f",
        "%",
        "%zz",
        "%C3",
        "%C3%A9",
        "+",
        "**",
        "*",
        "{",
        "}",
        "a.b",
        "..",
        "?",
        "#",
        "é",
    ];
    let methods = ["GET", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW"];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6d6f_7361_6963);
    let mut answers = [0usize; 4];
    for _ in 0..20_000 {
        let segments = rng.random_range(0..8);
        let mut path = String::new();
        for _ in 0..segments {
            path.push('/');
            for _ in 0..rng.random_range(1..3) {
                path.push_str(alphabet[rng.random_range(0..alphabet.len())]);
            }
        }
        if path.is_empty() || rng.random_bool(0.05) {
            path.insert(0, '/');
        }
        let m = methods[rng.random_range(0..methods.len())];
        match matcher.lookup(m, &path) {
            Ok(Lookup::Found {
                template, captures, ..
            }) => {
                assert_eq!(captures.len(), template.variables.len(), "{m} {path}");
                answers[0] += 1;
            }
            Ok(Lookup::NotFound) => answers[1] += 1,
            Ok(Lookup::MethodNotAllowed(allowed)) => {
                assert!(!allowed.is_empty(), "{m} {path}");
                answers[2] += 1;
            }
            Err(message) => {
                assert!(
                    message.contains('%') || message.contains("UTF-8"),
                    "{m} {path}: {message}"
                );
                answers[3] += 1;
            }
        }
    }
    // The generator reaches every kind of answer, so the checks above ran.
    assert!(answers.iter().all(|&n| n > 50), "{answers:?}");
}

#[test]
fn random_templates_parse_or_say_where() {
    let pieces: &[&str] = &[
        "/", "v1", "{", "}", "=", "*", "**", ":", "a", "b.c", "%2F", "%", "x y", "_", "9",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut parsed = 0;
    for _ in 0..20_000 {
        let mut text = String::new();
        for _ in 0..rng.random_range(1..10) {
            text.push_str(pieces[rng.random_range(0..pieces.len())]);
        }
        match Template::parse(&text) {
            Ok(_) => parsed += 1,
            Err(error) => {
                assert!(!error.message.is_empty());
                assert!(
                    error.at.start <= text.len() && error.at.end <= text.len() + 1,
                    "{text}: {error:?}"
                );
            }
        }
    }
    assert!(parsed > 100, "{parsed}");
}
