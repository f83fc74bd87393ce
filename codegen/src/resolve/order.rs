//! The order messages are resolved in: from the edge methods' responses through every
//! `message` step, callers before callees, with cycles reported by their path.

use std::collections::{BTreeMap, HashMap};

use prost_reflect::MessageDescriptor;

use super::Resolver;
use super::options::{get_message, get_str, list};
use crate::diagnostic::Span;

impl Resolver<'_> {
    /// Breadth-first from the response messages through `message` steps; callers come before
    /// callees. Cycles are reported with their path.
    pub(super) fn order_messages(&mut self, roots: Vec<Pending>) -> Vec<Pending> {
        let mut edges: BTreeMap<String, Vec<(MessageDescriptor, Option<Span>)>> = BTreeMap::new();
        let mut known: HashMap<String, Pending> = HashMap::new();
        let mut queue: Vec<MessageDescriptor> = Vec::new();
        for root in roots {
            queue.push(root.descriptor.clone());
            known.insert(root.descriptor.full_name().to_owned(), root);
        }
        let mut i = 0;
        while i < queue.len() {
            let message = queue[i].clone();
            i += 1;
            for (target, span) in self.built_messages(&message) {
                edges
                    .entry(message.full_name().to_owned())
                    .or_default()
                    .push((target.clone(), span));
                if !known.contains_key(target.full_name()) {
                    known.insert(
                        target.full_name().to_owned(),
                        Pending {
                            descriptor: target.clone(),
                            request: None,
                        },
                    );
                    queue.push(target);
                }
            }
        }
        // Topological order by depth-first search; a back edge is a cycle.
        let mut state: HashMap<String, u8> = HashMap::new(); // 1 = on stack, 2 = done
        let mut post: Vec<String> = Vec::new();
        let mut stack: Vec<String> = Vec::new();
        let names: Vec<String> = queue.iter().map(|m| m.full_name().to_owned()).collect();
        for name in &names {
            self.visit(name, &edges, &mut state, &mut post, &mut stack);
        }
        post.reverse();
        post.into_iter()
            .filter_map(|name| known.remove(&name))
            .collect()
    }

    pub(super) fn visit(
        &mut self,
        name: &str,
        edges: &BTreeMap<String, Vec<(MessageDescriptor, Option<Span>)>>,
        state: &mut HashMap<String, u8>,
        post: &mut Vec<String>,
        stack: &mut Vec<String>,
    ) {
        match state.get(name) {
            Some(2) => return,
            Some(_) => return,
            None => {}
        }
        state.insert(name.to_owned(), 1);
        stack.push(name.to_owned());
        for (target, span) in edges.get(name).into_iter().flatten() {
            let target_name = target.full_name().to_owned();
            if state.get(&target_name) == Some(&1) {
                let start = stack.iter().position(|n| *n == target_name).unwrap_or(0);
                let mut cycle: Vec<&str> = stack[start..].iter().map(String::as_str).collect();
                cycle.push(&target_name);
                self.error_hint(
                    format!(
                        "messages build each other in a cycle: {}",
                        cycle.join(" => ")
                    ),
                    span.clone(),
                    "a message cannot be built, directly or through others, from its own rules",
                );
                continue;
            }
            self.visit(&target_name, edges, state, post, stack);
        }
        stack.pop();
        state.insert(name.to_owned(), 2);
        post.push(name.to_owned());
    }

    /// The messages a message's steps build (`message` bodies, directly or in `map`).
    pub(super) fn built_messages(
        &mut self,
        message: &MessageDescriptor,
    ) -> Vec<(MessageDescriptor, Option<Span>)> {
        let mut found = Vec::new();
        let Some(rule) = self.message_rule(message) else {
            return found;
        };
        let site = self.message_site(message);
        for (i, step) in list(&rule, "def").iter().enumerate() {
            let Some(step) = step.as_message() else {
                continue;
            };
            let (body, prefix) = if let Some(m) = get_message(step, "message") {
                (m, vec![("def".to_owned(), i), ("message".to_owned(), 0)])
            } else if let Some(map) = get_message(step, "map") {
                match get_message(&map, "message") {
                    Some(m) => (
                        m,
                        vec![
                            ("def".to_owned(), i),
                            ("map".to_owned(), 0),
                            ("message".to_owned(), 0),
                        ],
                    ),
                    None => continue,
                }
            } else {
                continue;
            };
            let name = get_str(&body, "name");
            let mut path = prefix.clone();
            path.push(("name".to_owned(), 0));
            let (span, _) = Self::value_span(&site, &path);
            // An unknown message, or one without rules, is reported (once) when the step
            // itself is resolved; there is nothing to build.
            if let Some(target) = self.find_message(&name, message)
                && self.has_rules(&target)
            {
                found.push((target, span));
            }
        }
        found
    }
}

/// A message waiting to be resolved, with who builds it.
pub(super) struct Pending {
    pub(super) descriptor: MessageDescriptor,
    /// For response messages: the request type. For built messages: `None`.
    pub(super) request: Option<MessageDescriptor>,
}
