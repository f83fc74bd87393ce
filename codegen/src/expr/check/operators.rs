//! Typing rules of the operators.
//!
//! - Arithmetic (`+ - * / %`) takes two numbers of the same type: CEL never converts numbers
//!   implicitly, so `int + double` is an error with a hint to convert one side. `%` is for
//!   integers only. `+` also joins two strings, two bytes or two lists of one type.
//! - `== !=` take two values of the same type; numbers of different types (int, uint, double)
//!   compare by mathematical value, and an enum compares with ints and with its own enum.
//!   `x.f == null` and `x.f != null` test presence, for message fields and `optional` fields.
//! - `< <= > >=` take numbers (as for `==`), strings, bytes or bools.
//! - `in` takes an element and a list of its type, or a key and a map with keys of its type.
//! - `&& || !` take bools.

use super::typed::{Typed, TypedKind};
use super::{Checker, compatible};
use crate::expr::ast::{BinaryOp, Literal, Node, NodeKind, Span, UnaryOp};
use crate::expr::error::ExprError;
use crate::expr::types::{Cardinality, Type};

/// The numeric family of a type, for comparisons: enums count as ints.
fn numeric(ty: &Type) -> bool {
    matches!(ty, Type::Int | Type::Uint | Type::Double | Type::Enum(_))
}

/// Whether `==` is defined between the two types.
pub(crate) fn equatable(a: &Type, b: &Type) -> bool {
    match (a, b) {
        (Type::Error, _) | (_, Type::Error) => true,
        (Type::Enum(x), Type::Enum(y)) => x == y,
        (Type::Enum(_), Type::Int) | (Type::Int, Type::Enum(_)) => true,
        (Type::Enum(_), _) | (_, Type::Enum(_)) => false,
        _ => compatible(a, b) || (numeric(a) && numeric(b)),
    }
}

/// Whether `<` is defined on values of this type (with a suitable other side).
fn orderable(ty: &Type) -> bool {
    numeric(ty)
        || super::time::is_time(ty)
        || matches!(ty, Type::String | Type::Bytes | Type::Bool | Type::Error)
}

/// Whether an arithmetic operator accepts operands of this type at all.
fn arithmetic_operand(op: BinaryOp, ty: &Type) -> bool {
    match op {
        BinaryOp::Add => matches!(
            ty,
            Type::Int
                | Type::Uint
                | Type::Double
                | Type::String
                | Type::Bytes
                | Type::List(_)
                | Type::Error
        ),
        BinaryOp::Rem => matches!(ty, Type::Int | Type::Uint | Type::Error),
        _ => matches!(ty, Type::Int | Type::Uint | Type::Double | Type::Error),
    }
}

fn is_null(node: &Node) -> bool {
    matches!(node.kind, NodeKind::Literal(Literal::Null))
}

impl Checker<'_> {
    pub(super) fn unary(&mut self, op: UnaryOp, operand: &Node, span: Span) -> Typed {
        let operand = self.node(operand, None);
        match op {
            UnaryOp::Not => {
                self.require_bool(&operand, "the operand of `!`");
                Typed::new(TypedKind::Not(Box::new(operand)), Type::Bool, span)
            }
            UnaryOp::Neg => match &operand.ty {
                ty if *ty == super::time::duration() => {
                    let kind = TypedKind::Time {
                        op: super::typed::TimeOp::NegDuration,
                        args: vec![operand],
                    };
                    Typed::new(kind, super::time::duration(), span)
                }
                Type::Int | Type::Double => {
                    let ty = operand.ty.clone();
                    Typed::new(TypedKind::Neg(Box::new(operand)), ty, span)
                }
                Type::Error => Typed::poisoned(Type::Error, span),
                other => {
                    let error = ExprError::new(
                        operand.span.clone(),
                        format!("unary `-` is not defined for {other}"),
                    );
                    let error = match other {
                        Type::Uint => error.with_hint("convert it first: `-int(x)`"),
                        Type::Enum(_) => error.with_hint("convert it first: `-int(x)`"),
                        _ => error,
                    };
                    self.error(error, Type::Error)
                }
            },
        }
    }

    pub(super) fn binary(&mut self, op: BinaryOp, lhs: &Node, rhs: &Node, span: Span) -> Typed {
        match op {
            BinaryOp::And | BinaryOp::Or => {
                let lhs = self.node(lhs, Some(&Type::Bool));
                let rhs = self.node(rhs, Some(&Type::Bool));
                let what = format!("an operand of `{op}`");
                self.require_bool(&lhs, &what);
                self.require_bool(&rhs, &what);
                let kind = if op == BinaryOp::And {
                    TypedKind::And(Box::new(lhs), Box::new(rhs))
                } else {
                    TypedKind::Or(Box::new(lhs), Box::new(rhs))
                };
                Typed::new(kind, Type::Bool, span)
            }
            BinaryOp::Eq | BinaryOp::Ne if is_null(lhs) || is_null(rhs) => {
                self.presence(op == BinaryOp::Ne, lhs, rhs, span)
            }
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => self.comparison(op, lhs, rhs, span),
            BinaryOp::In => self.membership(lhs, rhs, span),
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
                self.arithmetic(op, lhs, rhs, span)
            }
        }
    }

    /// `x.f == null` / `x.f != null`.
    fn presence(&mut self, present: bool, lhs: &Node, rhs: &Node, span: Span) -> Typed {
        let other = if is_null(lhs) { rhs } else { lhs };
        if let NodeKind::Name(name) = &other.kind
            && name.name != "$"
            && (self.scope.guard(&name.name).is_some()
                || matches!(self.scope.get(&name.name), Some(Type::Optional(_))))
        {
            return self.step_ran(name, present, span);
        }
        let hint = "`null` comparisons test whether a message field or an `optional` field is set; \
                    `has(x.f)` does the same";
        let NodeKind::Select { operand, field } = &other.kind else {
            let typed = self.node(other, None);
            if typed.ty != Type::Error {
                let error = ExprError::new(
                    other.span.clone(),
                    format!(
                        "only a field can be compared with `null`; this is a value of type {}",
                        typed.ty
                    ),
                )
                .with_hint(hint);
                self.errors.push(error);
            }
            return Typed::poisoned(Type::Bool, span);
        };
        let operand = self.node(operand, None);
        let message = match &operand.ty {
            Type::Message(message) => message.clone(),
            Type::Error => return Typed::poisoned(Type::Bool, span),
            other => {
                let error = ExprError::new(
                    field.span.clone(),
                    format!(
                        "cannot select field `{}` from a value of type {other}",
                        field.name
                    ),
                );
                return self.error(error, Type::Bool);
            }
        };
        let Some(info) = self.field_of(&message, field) else {
            return Typed::poisoned(Type::Bool, span);
        };
        if !matches!(
            info.cardinality,
            Cardinality::Message
                | Cardinality::BoxedMessage
                | Cardinality::Optional
                | Cardinality::Oneof { .. }
        ) {
            let error = ExprError::new(
                other.span.clone(),
                format!(
                    "field `{}` is never null: it is {} without presence",
                    info.name, info.ty
                ),
            )
            .with_hint(hint);
            return self.error(error, Type::Bool);
        }
        let kind = TypedKind::Presence {
            operand: Box::new(operand),
            field: info,
            present,
        };
        Typed::new(kind, Type::Bool, span)
    }

    fn comparison(&mut self, op: BinaryOp, lhs: &Node, rhs: &Node, span: Span) -> Typed {
        let (lhs, rhs) = self.pair(lhs, rhs, None);
        let ordering = !matches!(op, BinaryOp::Eq | BinaryOp::Ne);
        if ordering {
            let mut bad = false;
            for side in [&lhs, &rhs] {
                if !orderable(&side.ty) {
                    self.errors.push(
                        ExprError::new(
                            side.span.clone(),
                            format!("`{op}` is not defined for {}", side.ty),
                        )
                        .with_hint(
                            "values are ordered only if they are numbers, strings, bytes, bools, timestamps or durations",
                        ),
                    );
                    bad = true;
                }
            }
            if bad {
                return Typed::poisoned(Type::Bool, span);
            }
        }
        if !equatable(&lhs.ty, &rhs.ty) {
            let error = ExprError::new(
                span.clone(),
                format!("cannot compare {} with {} using `{op}`", lhs.ty, rhs.ty),
            );
            let error = match (&lhs.ty, &rhs.ty) {
                (Type::Enum(_), Type::Enum(_)) => error,
                (Type::Enum(_), _) | (_, Type::Enum(_)) => {
                    error.with_hint("an enum compares with ints and with values of the same enum")
                }
                _ => error,
            };
            self.errors.push(error);
            return Typed::poisoned(Type::Bool, span);
        }
        if super::time::is_time(&lhs.ty) && lhs.ty == rhs.ty {
            let kind = TypedKind::Time {
                op: super::typed::TimeOp::Compare(op),
                args: vec![lhs, rhs],
            };
            return Typed::new(kind, Type::Bool, span);
        }
        let kind = TypedKind::Compare {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        };
        Typed::new(kind, Type::Bool, span)
    }

    fn membership(&mut self, lhs: &Node, rhs: &Node, span: Span) -> Typed {
        let item = self.node(lhs, None);
        let hint = (!item.ty.contains_error()).then(|| Type::List(Box::new(item.ty.clone())));
        let container = self.node(rhs, hint.as_ref());
        let element = match &container.ty {
            Type::List(element) => (**element).clone(),
            Type::Map(key, _) => (**key).clone(),
            Type::Error => return Typed::poisoned(Type::Bool, span),
            other => {
                let error = ExprError::new(
                    container.span.clone(),
                    format!("`in` needs a list or a map on its right, found {other}"),
                );
                return self.error(error, Type::Bool);
            }
        };
        if !compatible(&element, &item.ty) {
            let holds = if matches!(container.ty, Type::Map(..)) {
                "this map's keys are"
            } else {
                "this list holds"
            };
            let error = ExprError::new(
                item.span.clone(),
                format!("{holds} {element}, so `in` cannot find {} in it", item.ty),
            );
            return self.error(error, Type::Bool);
        }
        let kind = TypedKind::In {
            item: Box::new(item),
            container: Box::new(container),
        };
        Typed::new(kind, Type::Bool, span)
    }

    fn arithmetic(&mut self, op: BinaryOp, lhs: &Node, rhs: &Node, span: Span) -> Typed {
        let (lhs, rhs) = self.pair(lhs, rhs, None);
        if super::time::is_time(&lhs.ty) || super::time::is_time(&rhs.ty) {
            return self.time_arithmetic(op, lhs, rhs, span);
        }
        let mut bad = false;
        for side in [&lhs, &rhs] {
            if !arithmetic_operand(op, &side.ty) {
                let error = ExprError::new(
                    side.span.clone(),
                    format!("`{op}` is not defined for {}", side.ty),
                );
                let error = match (&side.ty, op) {
                    (Type::Enum(_), _) => {
                        error.with_hint("convert the enum to its number with `int(x)`")
                    }
                    (Type::Double, BinaryOp::Rem) => {
                        error.with_hint("`%` is for integers; convert with `int(x)`")
                    }
                    _ => error,
                };
                self.errors.push(error);
                bad = true;
            }
        }
        if bad {
            return Typed::poisoned(Type::Error, span);
        }
        if lhs.ty.contains_error() || rhs.ty.contains_error() {
            // `err + 1` could have been a string or a list: the result is unknown too.
            return Typed::poisoned(Type::Error, span);
        }
        if lhs.ty != rhs.ty {
            let error = ExprError::new(
                span.clone(),
                format!("`{op}` cannot be applied to {} and {}", lhs.ty, rhs.ty),
            );
            let error = match self.conversion_hint(&lhs, &rhs) {
                Some(hint) => error.with_hint(hint),
                None => error,
            };
            return self.error(error, Type::Error);
        }
        let ty = lhs.ty.clone();
        let kind = match ty {
            Type::Int | Type::Uint | Type::Double => TypedKind::Arith {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            _ => TypedKind::Concat {
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
        };
        Typed::new(kind, ty, span)
    }

    /// "convert with double(x)", spelled with the operand's own text.
    fn conversion_hint(&self, lhs: &Typed, rhs: &Typed) -> Option<String> {
        let numbers = |t: &Type| matches!(t, Type::Int | Type::Uint | Type::Double);
        if !numbers(&lhs.ty) || !numbers(&rhs.ty) {
            return None;
        }
        let (convert, to) = if rhs.ty == Type::Double {
            (lhs, "double")
        } else if lhs.ty == Type::Double {
            (rhs, "double")
        } else if rhs.ty == Type::Int {
            (lhs, "int")
        } else {
            (rhs, "int")
        };
        Some(format!(
            "numbers of different types do not mix; convert one side, as in `{to}({})`",
            self.source(&convert.span)
        ))
    }
}
