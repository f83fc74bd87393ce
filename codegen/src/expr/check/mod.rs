//! Type checking: a parsed [`Expr`] and the [`Scope`] and [`Schema`] it is read in → a
//! [`Checked`] expression ready to emit, or every type error found.
//!
//! The checker keeps going after an error so that one build reports as much as it can: a
//! subexpression with an error gets [`Type::Error`], which every rule accepts silently, so
//! each mistake is reported once, where it is.

mod calls;
mod literals;
mod operators;
pub(crate) mod time;
pub(crate) mod typed;

use crate::expr::ast::{Expr, Ident, Literal, Node, NodeKind, Span};
use crate::expr::error::ExprError;
use crate::expr::types::{FieldInfo, Schema, Scope, Type};
use crate::suggest::closest;
use typed::{Typed, TypedKind};

/// A type-checked expression, ready for [`emit`](super::emit).
#[derive(Debug, Clone)]
pub struct Checked {
    /// The type of the expression's value. Never contains [`Type::Error`].
    pub ty: Type,
    pub(crate) root: Typed,
    pub(crate) text: String,
    /// The names the guards of the steps it tests with `has(step)` read: it reads them too.
    pub guard_reads: Vec<String>,
}

impl Checked {
    /// The expression text it was checked from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The name and, if any, the one field it reads, when the expression is nothing more: `a`
    /// is `("a", None)`, `a.f` is `("a", Some("f"))` (the proto name of the field).
    pub fn path(&self) -> Option<(&str, Option<&str>)> {
        match &self.root.kind {
            TypedKind::Name(name) => Some((name, None)),
            TypedKind::Field { operand, field } => match &operand.kind {
                TypedKind::Name(name) => Some((name, Some(&field.name))),
                _ => None,
            },
            _ => None,
        }
    }

    /// The text of a string literal, when the expression is one.
    pub fn string_literal(&self) -> Option<&str> {
        match &self.root.kind {
            TypedKind::Literal(crate::expr::Literal::String(text)) => Some(text),
            _ => None,
        }
    }
}

/// Checks `expr` against the names in `scope` and the messages in `schema`.
pub fn check(expr: &Expr, scope: &Scope, schema: &dyn Schema) -> Result<Checked, Vec<ExprError>> {
    check_expecting(expr, scope, schema, None)
}

/// Like [`check`], with the type the context expects (such as the field the value is bound
/// to). The expectation is only used to type an empty list literal (`[]`, which has no element
/// to infer a type from); whether the result fits the context is the caller's decision.
pub fn check_expecting(
    expr: &Expr,
    scope: &Scope,
    schema: &dyn Schema,
    expected: Option<&Type>,
) -> Result<Checked, Vec<ExprError>> {
    let mut checker = Checker {
        scope,
        schema,
        text: &expr.text,
        errors: Vec::new(),
        guard_reads: Vec::new(),
    };
    let root = checker.node(&expr.root, expected);
    if checker.errors.is_empty() && root.ty.contains_error() {
        // Unreachable by construction (an error type always comes with a report), but a wrong
        // "ok" would emit broken code, so say so rather than trust it.
        checker.errors.push(ExprError::new(
            root.span.clone(),
            "the type of this expression could not be determined",
        ));
    }
    if !checker.errors.is_empty() {
        return Err(checker.errors);
    }
    let mut guard_reads = checker.guard_reads;
    guard_reads.sort();
    guard_reads.dedup();
    Ok(Checked {
        ty: root.ty.clone(),
        root,
        text: expr.text.clone(),
        guard_reads,
    })
}

/// Like [`check`], for a guard or a validation's condition: the result must be `bool`
/// ("condition must be bool, found int", spanning the whole expression otherwise).
pub fn check_condition(
    expr: &Expr,
    scope: &Scope,
    schema: &dyn Schema,
) -> Result<Checked, Vec<ExprError>> {
    let checked = check_expecting(expr, scope, schema, Some(&Type::Bool))?;
    if checked.ty != Type::Bool {
        return Err(vec![ExprError::new(
            checked.root.span.clone(),
            format!("condition must be bool, found {}", checked.ty),
        )]);
    }
    Ok(checked)
}

pub(crate) struct Checker<'a> {
    scope: &'a Scope,
    schema: &'a dyn Schema,
    text: &'a str,
    errors: Vec<ExprError>,
    /// Names read by the guards `has(step)` evaluates.
    guard_reads: Vec<String>,
}

/// Whether two types agree, treating [`Type::Error`] anywhere as agreeing with anything.
pub(crate) fn compatible(a: &Type, b: &Type) -> bool {
    match (a, b) {
        (Type::Error, _) | (_, Type::Error) => true,
        (Type::List(a), Type::List(b)) => compatible(a, b),
        (Type::Map(ak, av), Type::Map(bk, bv)) => compatible(ak, bk) && compatible(av, bv),
        _ => a == b,
    }
}

/// The parts of a dotted name (`a.b.c`), when the node is nothing else.
fn dotted(node: &Node) -> Option<Vec<&str>> {
    match &node.kind {
        NodeKind::Name(ident) => Some(vec![ident.name.as_str()]),
        NodeKind::Select { operand, field } => {
            let mut parts = dotted(operand)?;
            parts.push(&field.name);
            Some(parts)
        }
        _ => None,
    }
}

/// Whether a node is the literal `[]` (possibly parenthesized).
fn is_empty_list(node: &Node) -> bool {
    matches!(&node.kind, NodeKind::List(items) if items.is_empty())
}

impl Checker<'_> {
    fn source(&self, span: &Span) -> &str {
        self.text.get(span.clone()).unwrap_or("")
    }

    /// Records an error and returns the node to put in its place.
    fn error(&mut self, error: ExprError, ty: Type) -> Typed {
        let span = error.span.clone();
        self.errors.push(error);
        Typed::poisoned(ty, span)
    }

    fn node(&mut self, node: &Node, expected: Option<&Type>) -> Typed {
        let span = node.span.clone();
        match &node.kind {
            NodeKind::Literal(literal) => literal_node(literal, span),
            NodeKind::Name(ident) => self.name(ident, span),
            NodeKind::Select { operand, field } => self.select(operand, field, span),
            NodeKind::Index { operand, index } => self.index(operand, index, span),
            NodeKind::Call {
                target,
                function,
                args,
            } => self.call(target.as_deref(), function, args, span),
            NodeKind::Unary { op, operand } => self.unary(*op, operand, span),
            NodeKind::Binary { op, lhs, rhs, .. } => self.binary(*op, lhs, rhs, span),
            NodeKind::Conditional {
                cond,
                then,
                otherwise,
            } => self.conditional(cond, then, otherwise, span, expected),
            NodeKind::List(items) => self.list(items, span, expected),
            NodeKind::Map(entries) => self.map_literal(entries, span, expected),
            NodeKind::Message { name, fields } => self.message_literal(name, fields, span),
        }
    }

    /// Checks two sibling operands whose types should agree. An empty list literal is
    /// checked second, expecting its sibling's type, so `xs + []` and `c ? xs : []` type.
    fn pair(&mut self, a: &Node, b: &Node, expected: Option<&Type>) -> (Typed, Typed) {
        if is_empty_list(a) && !is_empty_list(b) {
            let b = self.node(b, expected);
            let hint = sibling_hint(&b.ty, expected);
            let a = self.node(a, hint.as_ref());
            (a, b)
        } else {
            let a = self.node(a, expected);
            let hint = sibling_hint(&a.ty, expected);
            let b = self.node(b, hint.as_ref());
            (a, b)
        }
    }

    fn name(&mut self, ident: &Ident, span: Span) -> Typed {
        if let Some(ty) = self.scope.get(&ident.name) {
            return Typed::new(TypedKind::Name(ident.name.clone()), ty.clone(), span);
        }
        if let Some(what) = self.scope.valueless(&ident.name) {
            let error = ExprError::new(
                ident.span.clone(),
                format!(
                    "step `{}` is {what}: it computes no value to read",
                    ident.name
                ),
            )
            .with_hint("read the values it works on instead");
            return self.error(error, Type::Error);
        }
        let names: Vec<&str> = self.scope.names().collect();
        let listed = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let hint = match (
            closest(&ident.name, names.iter().copied()),
            names.is_empty(),
        ) {
            (Some(suggestion), _) => {
                format!("did you mean `{suggestion}`? names in scope: {listed}")
            }
            (None, false) => format!("names in scope: {listed}"),
            (None, true) => "no names are in scope here".to_owned(),
        };
        let error = ExprError::new(ident.span.clone(), format!("unknown name `{}`", ident.name))
            .with_hint(hint);
        self.error(error, Type::Error)
    }

    /// `Enum.VALUE` (or `pkg.Enum.VALUE`): a select whose operand is a dotted name, not in
    /// scope, that names an enum. Names in scope win.
    fn enum_value(&mut self, operand: &Node, value: &Ident, span: &Span) -> Option<Typed> {
        let parts = dotted(operand)?;
        if self.scope.get(parts[0]).is_some() {
            return None;
        }
        let name = parts.join(".");
        let enumeration = self.schema.resolve_enum(&name, self.scope.package())?;
        let values = self.schema.enum_values(&enumeration);
        match values.iter().find(|(n, _)| *n == value.name) {
            Some((_, number)) => Some(Typed::new(
                TypedKind::EnumValue {
                    enumeration: enumeration.clone(),
                    value: value.name.clone(),
                    number: *number,
                },
                Type::Enum(enumeration),
                span.clone(),
            )),
            None => {
                let hint = closest(&value.name, values.iter().map(|(n, _)| n.as_str()))
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| {
                        let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
                        format!("its values are: {}", names.join(", "))
                    });
                let error = ExprError::new(
                    value.span.clone(),
                    format!("no value `{}` in enum `{enumeration}`", value.name),
                )
                .with_hint(hint);
                Some(self.error(error, Type::Enum(enumeration)))
            }
        }
    }

    /// Looks up `field` on `message`, reporting an unknown field with a suggestion.
    fn field_of(&mut self, message: &str, field: &Ident) -> Option<FieldInfo> {
        if let Some(info) = self.schema.field(message, &field.name) {
            return Some(info);
        }
        let names = self.schema.field_names(message);
        let hint = closest(&field.name, names.iter().map(String::as_str))
            .map(|suggestion| format!("did you mean `{suggestion}`?"));
        self.errors.push(
            ExprError::new(
                field.span.clone(),
                format!("no field `{}` on `{message}`", field.name),
            )
            .with_optional_hint(hint),
        );
        None
    }

    fn select(&mut self, operand: &Node, field: &Ident, span: Span) -> Typed {
        if let Some(value) = self.enum_value(operand, field, &span) {
            return value;
        }
        let operand = self.node(operand, None);
        match &operand.ty {
            Type::Error => Typed::poisoned(Type::Error, span),
            Type::Message(message) => {
                let message = message.clone();
                match self.field_of(&message, field) {
                    Some(info) => {
                        let ty = info.ty.clone();
                        let kind = TypedKind::Field {
                            operand: Box::new(operand),
                            field: info,
                        };
                        Typed::new(kind, ty, span)
                    }
                    None => Typed::poisoned(Type::Error, span),
                }
            }
            // CEL reads `m.key` as `m["key"]` on maps with string keys.
            Type::Map(key, value) if **key == Type::String => {
                let ty = (**value).clone();
                let key = Typed::new(
                    TypedKind::Literal(Literal::String(field.name.clone())),
                    Type::String,
                    field.span.clone(),
                );
                let kind = TypedKind::Index {
                    operand: Box::new(operand),
                    index: Box::new(key),
                };
                Typed::new(kind, ty, span)
            }
            other => {
                let error = ExprError::new(
                    field.span.clone(),
                    format!(
                        "cannot select field `{}` from a value of type {other}",
                        field.name
                    ),
                );
                let error = match other {
                    Type::List(_) => error.with_hint("a list has no fields: index it with `[i]`"),
                    Type::Map(..) => {
                        error.with_hint("only maps with string keys allow `m.key`; write `m[key]`")
                    }
                    _ => error,
                };
                self.error(error, Type::Error)
            }
        }
    }

    fn index(&mut self, operand: &Node, index: &Node, span: Span) -> Typed {
        let operand = self.node(operand, None);
        let index = self.node(index, None);
        let ty = match &operand.ty {
            Type::Error => return Typed::poisoned(Type::Error, span),
            Type::List(element) => {
                if !matches!(index.ty, Type::Int | Type::Uint | Type::Error) {
                    let error = ExprError::new(
                        index.span.clone(),
                        format!("a list index must be int, found {}", index.ty),
                    );
                    return self.error(error, (**element).clone());
                }
                (**element).clone()
            }
            Type::Map(key, value) => {
                if !compatible(key, &index.ty) {
                    let error = ExprError::new(
                        index.span.clone(),
                        format!("this map's keys are {key}, found {}", index.ty),
                    );
                    return self.error(error, (**value).clone());
                }
                (**value).clone()
            }
            other => {
                let error = ExprError::new(
                    operand.span.clone(),
                    format!("cannot index a value of type {other}"),
                )
                .with_hint("only lists and maps can be indexed");
                return self.error(error, Type::Error);
            }
        };
        let kind = TypedKind::Index {
            operand: Box::new(operand),
            index: Box::new(index),
        };
        Typed::new(kind, ty, span)
    }

    fn conditional(
        &mut self,
        cond: &Node,
        then: &Node,
        otherwise: &Node,
        span: Span,
        expected: Option<&Type>,
    ) -> Typed {
        let cond = self.node(cond, Some(&Type::Bool));
        self.require_bool(&cond, "condition");
        let (then, otherwise) = self.pair(then, otherwise, expected);
        let ty = match (&then.ty, &otherwise.ty) {
            (Type::Error, other) | (other, Type::Error) => other.clone(),
            (a, b) if compatible(a, b) => a.clone(),
            // `c ? x : null`: a value or null.
            (Type::Null, Type::Optional(value)) | (Type::Optional(value), Type::Null) => {
                Type::Optional(value.clone())
            }
            (Type::Null, value) | (value, Type::Null) => Type::Optional(Box::new(value.clone())),
            (Type::Optional(a), b) | (b, Type::Optional(a)) if compatible(a, b) => {
                Type::Optional(a.clone())
            }
            (a, b) => {
                let error = ExprError::new(
                    otherwise.span.clone(),
                    format!("the branches of `?:` have different types: {a} and {b}"),
                );
                return self.error(error, Type::Error);
            }
        };
        let kind = TypedKind::Conditional {
            cond: Box::new(cond),
            then: Box::new(then),
            otherwise: Box::new(otherwise),
        };
        Typed::new(kind, ty, span)
    }

    fn list(&mut self, items: &[Node], span: Span, expected: Option<&Type>) -> Typed {
        let expected_element = match expected {
            Some(Type::List(element)) => Some((**element).clone()),
            _ => None,
        };
        // Elements that are not `[]` first, so nested empty lists can take their type.
        let mut checked: Vec<Option<Typed>> = vec![None; items.len()];
        let mut element: Option<Type> = None;
        let order = items
            .iter()
            .enumerate()
            .filter(|(_, item)| !is_empty_list(item))
            .chain(
                items
                    .iter()
                    .enumerate()
                    .filter(|(_, item)| is_empty_list(item)),
            );
        for (position, item) in order {
            let hint = element.clone().or_else(|| expected_element.clone());
            let typed = self.node(item, hint.as_ref());
            match &element {
                None if typed.ty != Type::Error => element = Some(typed.ty.clone()),
                Some(first) if !compatible(first, &typed.ty) => {
                    self.errors.push(ExprError::new(
                        typed.span.clone(),
                        format!(
                            "the elements of a list must have one type: expected {first}, found {}",
                            typed.ty
                        ),
                    ));
                }
                _ => {}
            }
            if let Some(slot) = checked.get_mut(position) {
                *slot = Some(typed);
            }
        }
        let items: Vec<Typed> = checked.into_iter().flatten().collect();
        let element = match element.or(expected_element) {
            Some(element) => element,
            None if items.is_empty() => {
                let error = ExprError::new(
                    span,
                    "cannot tell the element type of this empty list",
                )
                .with_hint("use `[]` where its type is known, as in `cond ? xs : []` or as a repeated field's value");
                return self.error(error, Type::Error);
            }
            // Every element had an error already.
            None => Type::Error,
        };
        Typed::new(TypedKind::List(items), Type::List(Box::new(element)), span)
    }

    /// Reports `typed` not being a bool: "{what} must be bool, found {type}".
    fn require_bool(&mut self, typed: &Typed, what: &str) {
        if !matches!(typed.ty, Type::Bool | Type::Error) {
            self.errors.push(ExprError::new(
                typed.span.clone(),
                format!("{what} must be bool, found {}", typed.ty),
            ));
        }
    }
}

fn literal_node(literal: &Literal, span: Span) -> Typed {
    let ty = match literal {
        Literal::Int(_) => Type::Int,
        Literal::Uint(_) => Type::Uint,
        Literal::Double(_) => Type::Double,
        Literal::String(_) => Type::String,
        Literal::Bytes(_) => Type::Bytes,
        Literal::Bool(_) => Type::Bool,
        Literal::Null => Type::Null,
    };
    Typed::new(TypedKind::Literal(literal.clone()), ty, span)
}

/// What a second sibling should expect: the first one's type when known, else the context's.
fn sibling_hint(first: &Type, expected: Option<&Type>) -> Option<Type> {
    if first.contains_error() {
        expected.cloned()
    } else {
        Some(first.clone())
    }
}
