//! The route matcher: a trie over path segments, built once.
//!
//! Each node has literal children (a hash map), a `*` child and a `**` child. A lookup walks
//! the request's segments trying the literal child first, then `*`, then `**`, and backtracks
//! when a branch ends without a binding for the request's method, so the most specific
//! template wins whatever order the bindings were declared in, and the cost depends on the
//! path's length and the templates' depth, never on how many routes there are.
//!
//! A trailing `:verb` is read as a verb only when some template declares that verb; otherwise
//! (and when the verb branch finds nothing) the colon is part of the last segment, so
//! `/v1/{name}` still matches `/v1/a:b`.
//!
//! Outcomes: a binding (with each variable's decoded value), 405 with the methods the path
//! does answer, or 404.

use std::collections::{HashMap, HashSet};

use crate::binding::HttpMethod;
use crate::escape::{self, Mode};
use crate::template::{Segment, Template};

/// Two bindings that would answer the same requests.
#[derive(Debug)]
pub struct Conflict<'a, T> {
    /// The binding registered first.
    pub existing: &'a T,
    /// The shared shape, such as `GET /v1/users/*`.
    pub shape: String,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup<'a, T> {
    Found {
        value: &'a T,
        template: &'a Template,
        /// Each of `template.variables`' values, decoded.
        captures: Vec<String>,
    },
    /// The path matches, but not with this method: the methods it takes, for `Allow`.
    MethodNotAllowed(Vec<String>),
    NotFound,
}

#[derive(Debug)]
struct Entry<T> {
    method: HttpMethod,
    template: Template,
    value: T,
}

#[derive(Debug, Default)]
struct Node {
    literals: HashMap<String, Node>,
    single: Option<Box<Node>>,
    multi: Option<Box<Node>>,
    /// Entries whose template ends here, with their verb.
    ends: Vec<(Option<String>, usize)>,
}

/// Every binding of a gateway, by method and path.
#[derive(Debug)]
pub struct Matcher<T> {
    root: Node,
    entries: Vec<Entry<T>>,
    verbs: HashSet<String>,
}

impl<T> Default for Matcher<T> {
    fn default() -> Self {
        Self {
            root: Node::default(),
            entries: Vec::new(),
            verbs: HashSet::new(),
        }
    }
}

/// The most segments a request path may have; longer paths are not routed (404).
pub const MAX_SEGMENTS: usize = 256;

impl<T> Matcher<T> {
    /// How many bindings it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every value, in insertion order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|entry| &entry.value)
    }

    /// Adds a binding; refuses one that answers the same requests as an earlier one (same
    /// shape, same verb, an overlapping method).
    pub fn insert(
        &mut self,
        method: HttpMethod,
        template: Template,
        value: T,
    ) -> Result<(), Conflict<'_, T>> {
        let mut node = &mut self.root;
        for segment in &template.segments {
            node = match segment {
                Segment::Literal(text) => node.literals.entry(text.clone()).or_default(),
                Segment::Single => node.single.get_or_insert_with(Box::default),
                Segment::Multi => node.multi.get_or_insert_with(Box::default),
            };
        }
        if let Some(&(_, index)) = node.ends.iter().find(|(verb, index)| {
            *verb == template.verb && self.entries[*index].method.overlaps(&method)
        }) {
            return Err(Conflict {
                existing: &self.entries[index].value,
                shape: format!("{} {}", method.as_str(), template.shape()),
            });
        }
        if let Some(verb) = &template.verb {
            self.verbs.insert(verb.clone());
        }
        node.ends.push((template.verb.clone(), self.entries.len()));
        self.entries.push(Entry {
            method,
            template,
            value,
        });
        Ok(())
    }

    /// Finds the binding for `method` and `path` (the URI's path, without the query). `Err`
    /// says why the path is malformed (a 400).
    pub fn lookup(&self, method: &str, path: &str) -> Result<Lookup<'_, T>, String> {
        let Some(rest) = path.strip_prefix('/') else {
            return Ok(Lookup::NotFound);
        };
        let raw: Vec<&str> = rest.split('/').collect();
        if raw.len() > MAX_SEGMENTS {
            return Ok(Lookup::NotFound);
        }
        let mut allowed = Vec::new();
        // With a declared verb first, then with the colon as part of the segment.
        let last = raw.last().copied().unwrap_or_default();
        if let Some((head, verb)) = last.rsplit_once(':')
            && self.verbs.contains(verb)
        {
            let mut segments = raw.clone();
            if let Some(end) = segments.last_mut() {
                *end = head;
            }
            let decoded = decode_all(&segments)?;
            if let Some(found) = self.find(method, &segments, &decoded, Some(verb), &mut allowed)? {
                return Ok(found);
            }
        }
        let decoded = decode_all(&raw)?;
        if let Some(found) = self.find(method, &raw, &decoded, None, &mut allowed)? {
            return Ok(found);
        }
        if allowed.is_empty() {
            return Ok(Lookup::NotFound);
        }
        allowed.sort_unstable();
        allowed.dedup();
        Ok(Lookup::MethodNotAllowed(allowed))
    }

    fn find<'a>(
        &'a self,
        method: &str,
        raw: &[&str],
        decoded: &[String],
        verb: Option<&str>,
        allowed: &mut Vec<String>,
    ) -> Result<Option<Lookup<'a, T>>, String> {
        let Some(index) = self.walk(&self.root, decoded, 0, method, verb, allowed) else {
            return Ok(None);
        };
        let entry = &self.entries[index];
        let captures = captures(&entry.template, raw, decoded)?;
        Ok(Some(Lookup::Found {
            value: &entry.value,
            template: &entry.template,
            captures,
        }))
    }

    /// The entry for the rest of the path from `node`, in precedence order; records the methods
    /// of entries that match the path but not the method.
    fn walk(
        &self,
        node: &Node,
        segments: &[String],
        at: usize,
        method: &str,
        verb: Option<&str>,
        allowed: &mut Vec<String>,
    ) -> Option<usize> {
        if at == segments.len()
            && let Some(index) = self.accept(node, method, verb, allowed)
        {
            return Some(index);
        }
        if at < segments.len() {
            if let Some(child) = node.literals.get(&segments[at])
                && let Some(found) = self.walk(child, segments, at + 1, method, verb, allowed)
            {
                return Some(found);
            }
            // `*` takes one segment, not an empty one (`/v1/users/` is not `/v1/users/{id}`).
            if let Some(child) = &node.single
                && !segments[at].is_empty()
                && let Some(found) = self.walk(child, segments, at + 1, method, verb, allowed)
            {
                return Some(found);
            }
        }
        // `**` takes whatever is left, nothing included.
        node.multi
            .as_deref()
            .and_then(|child| self.accept(child, method, verb, allowed))
    }

    fn accept(
        &self,
        node: &Node,
        method: &str,
        verb: Option<&str>,
        allowed: &mut Vec<String>,
    ) -> Option<usize> {
        for &(ref end_verb, index) in &node.ends {
            if end_verb.as_deref() != verb {
                continue;
            }
            // At most one entry here accepts the method: `insert` refuses overlapping ones.
            let entry_method = &self.entries[index].method;
            if entry_method.accepts(method) {
                return Some(index);
            }
            allowed.push(entry_method.as_str().to_owned());
        }
        None
    }
}

fn decode_all(segments: &[&str]) -> Result<Vec<String>, String> {
    segments
        .iter()
        .map(|segment| escape::decode(segment, Mode::Segment))
        .collect()
}

/// Each variable's value: a single segment decoded whole; several joined by `/`, decoded
/// except `%2F`.
fn captures(template: &Template, raw: &[&str], decoded: &[String]) -> Result<Vec<String>, String> {
    template
        .variables
        .iter()
        .map(|variable| {
            let multi_at_end = template.segments[variable.end - 1] == Segment::Multi;
            let end = if multi_at_end {
                raw.len()
            } else {
                variable.end
            };
            if variable.is_multi_segment(template) {
                escape::decode(&raw[variable.start..end].join("/"), Mode::KeepSlash)
            } else {
                Ok(decoded[variable.start].clone())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(routes: &[(&str, &str)]) -> Matcher<String> {
        let mut matcher = Matcher::default();
        for (method, path) in routes {
            let method = match *method {
                "GET" => HttpMethod::Get,
                "POST" => HttpMethod::Post,
                "*" => HttpMethod::Any,
                other => HttpMethod::Custom(other.into()),
            };
            let template = Template::parse(path).unwrap();
            matcher
                .insert(
                    method.clone(),
                    template,
                    format!("{} {path}", method.as_str()),
                )
                .unwrap();
        }
        matcher
    }

    fn found(matcher: &Matcher<String>, method: &str, path: &str) -> (String, Vec<String>) {
        match matcher.lookup(method, path).unwrap() {
            Lookup::Found {
                value, captures, ..
            } => (value.clone(), captures),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn literal_beats_single_beats_multi_in_any_order() {
        let routes = [
            ("GET", "/v1/{rest=**}"),
            ("GET", "/v1/{id}"),
            ("GET", "/v1/me"),
        ];
        for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2]] {
            let m = matcher(&order.map(|i| routes[i]));
            assert_eq!(found(&m, "GET", "/v1/me").0, "GET /v1/me");
            assert_eq!(found(&m, "GET", "/v1/you").0, "GET /v1/{id}");
            assert_eq!(found(&m, "GET", "/v1/a/b").0, "GET /v1/{rest=**}");
        }
    }

    #[test]
    fn backtracks_to_a_less_specific_binding_for_the_method() {
        let m = matcher(&[("POST", "/v1/me"), ("GET", "/v1/{id}")]);
        assert_eq!(found(&m, "GET", "/v1/me").0, "GET /v1/{id}");
        assert!(matches!(
            m.lookup("DELETE", "/v1/me").unwrap(),
            Lookup::MethodNotAllowed(allowed) if allowed == ["GET", "POST"]
        ));
        assert!(matches!(
            m.lookup("GET", "/v2/me").unwrap(),
            Lookup::NotFound
        ));
    }

    #[test]
    fn verbs_only_when_declared() {
        let m = matcher(&[("POST", "/v1/{name=*}:cancel"), ("GET", "/v1/{name}")]);
        assert_eq!(
            found(&m, "POST", "/v1/op1:cancel"),
            ("POST /v1/{name=*}:cancel".into(), vec!["op1".into()])
        );
        assert_eq!(
            found(&m, "GET", "/v1/a:b"),
            ("GET /v1/{name}".into(), vec!["a:b".into()])
        );
        assert_eq!(found(&m, "GET", "/v1/x:cancel").1, ["x:cancel"]);
    }

    #[test]
    fn multi_segment_captures_keep_escaped_slashes() {
        let m = matcher(&[
            ("GET", "/v1/{name=shelves/*/books/*}"),
            ("GET", "/files/{path=**}"),
            ("GET", "/one/{id}"),
        ]);
        assert_eq!(
            found(&m, "GET", "/v1/shelves/s%201/books/b%2F2").1,
            ["shelves/s 1/books/b%2F2"]
        );
        assert_eq!(found(&m, "GET", "/files/a/b%2Fc/d").1, ["a/b%2Fc/d"]);
        assert_eq!(found(&m, "GET", "/files").1, [""]);
        assert_eq!(found(&m, "GET", "/one/a%2Fb").1, ["a/b"]);
        assert!(matches!(
            m.lookup("GET", "/one/a/b").unwrap(),
            Lookup::NotFound
        ));
        assert!(m.lookup("GET", "/one/%zz").is_err());
    }

    #[test]
    fn duplicates_are_conflicts() {
        let mut m = matcher(&[("GET", "/v1/{id}")]);
        let again = Template::parse("/v1/{name=*}").unwrap();
        let conflict = m
            .insert(HttpMethod::Get, again, "second".into())
            .unwrap_err();
        assert_eq!(conflict.existing, "GET /v1/{id}");
        assert_eq!(conflict.shape, "GET /v1/*");
        let any = Template::parse("/v1/{id}").unwrap();
        assert!(m.insert(HttpMethod::Any, any, "any".into()).is_err());
        let post = Template::parse("/v1/{id}").unwrap();
        assert!(m.insert(HttpMethod::Post, post, "post".into()).is_ok());
        let verb = Template::parse("/v1/{id}:run").unwrap();
        assert!(m.insert(HttpMethod::Get, verb, "verb".into()).is_ok());
    }
}
