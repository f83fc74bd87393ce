//! Typing rules of functions, methods and the `has()` macro.
//!
//! | call | operand | result |
//! |---|---|---|
//! | `size(x)`, `x.size()` | string (code points), bytes, list, map | int |
//! | `has(x.f)` | a field selection on a message (or a key on a string-keyed map) | bool |
//! | `int(x)` | int, uint, double (truncates), string (parses), enum (its number) | int |
//! | `uint(x)` | int, uint, double, string | uint |
//! | `double(x)` | int, uint, double, string | double |
//! | `string(x)` | string, int, uint, double, bool, bytes (UTF-8), enum (its number) | string |
//! | `bytes(x)` | string, bytes | bytes |
//! | `s.contains(t)`, `s.startsWith(t)`, `s.endsWith(t)` | strings | bool |
//! | `partial()` | none | bool: whether a step of the edge call so far was ignored by an `error` handler |
//! | `xs.map(x, e)` | a list; `x` names each element in `e` | list of `e`'s type |
//! | `xs.filter(x, c)` | a list; `c` a bool | the list's type |
//! | `xs.exists(x, c)`, `xs.all(x, c)`, `xs.exists_one(x, c)` | a list; `c` a bool | bool |
//!
//! `has(x.f)` on a field without presence (a plain proto3 scalar, a list, a map) is true when
//! the value is not the default (non-zero, non-empty), which is how proto3 itself decides
//! whether such a field is "set".

use super::Checker;
use super::typed::Macro;
use super::typed::{Library, StringTest, Typed, TypedKind};
use crate::expr::ast::{Ident, MACROS, Node, NodeKind, Span};
use crate::expr::error::ExprError;
use crate::expr::types::Type;
use crate::suggest::closest;

const FUNCTIONS: &[&str] = &[
    "size",
    "has",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "partial",
    "timestamp",
    "duration",
    "now",
];
const METHODS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "lowerAscii",
    "upperAscii",
    "trim",
    "split",
    "join",
    "matches",
    "reverse",
    "sort",
    "orValue",
    "hasValue",
    "format",
    "getFullYear",
    "getMonth",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
];

impl Checker<'_> {
    pub(super) fn call(
        &mut self,
        target: Option<&Node>,
        function: &Ident,
        args: &[Node],
        span: Span,
    ) -> Typed {
        let name = function.name.as_str();
        if MACROS.contains(&name) {
            return self.comprehension(target, function, args, span);
        }
        match target {
            None => match name {
                "has" => self.has(args, span),
                "partial" => match self.arity(function, args, 0, &span) {
                    Some(_) => Typed::new(TypedKind::Partial, Type::Bool, span),
                    None => Typed::poisoned(Type::Bool, span),
                },
                "size" => match self.arity(function, args, 1, &span) {
                    Some([arg]) => {
                        let arg = self.node(arg, None);
                        self.size(arg, span)
                    }
                    _ => Typed::poisoned(Type::Int, span),
                },
                "timestamp" | "duration" | "now" => self.time_function(function, args, span),
                "int" | "uint" | "double" | "string" | "bytes" => {
                    match self.arity(function, args, 1, &span) {
                        Some([arg]) => {
                            let arg = self.node(arg, None);
                            if super::time::is_time(&arg.ty) {
                                return self.time_conversion(name, arg, span);
                            }
                            self.conversion(name, arg, span)
                        }
                        _ => Typed::poisoned(conversion_type(name), span),
                    }
                }
                _ => {
                    self.check_all(args);
                    let error =
                        ExprError::new(function.span.clone(), format!("unknown function `{name}`"));
                    let hint = match closest(name, FUNCTIONS.iter().copied()) {
                        Some(suggestion) => format!("did you mean `{suggestion}`?"),
                        None => format!("the functions are {}", list(FUNCTIONS)),
                    };
                    self.error(error.with_hint(hint), Type::Error)
                }
            },
            Some(target)
                if matches!(&target.kind, NodeKind::Name(n) if n.name == "optional")
                    && self.scope.get("optional").is_none() =>
            {
                self.optional_constructor(function, args, span)
            }
            Some(target) => {
                let receiver = self.node(target, None);
                match name {
                    "lowerAscii" | "upperAscii" | "trim" | "split" | "join" | "matches"
                    | "reverse" | "sort" => self.library(name, receiver, function, args, span),
                    name if super::time::is_time_method(name) => {
                        self.time_method(receiver, function, args, span)
                    }
                    "orValue" => match self.arity(function, args, 1, &span) {
                        Some([default]) => self.or_value(receiver, default, span),
                        _ => Typed::poisoned(Type::Error, span),
                    },
                    "hasValue" => match self.arity(function, args, 0, &span) {
                        Some(_) => match &receiver.ty {
                            Type::Optional(_) => Typed::new(
                                TypedKind::HasValue(Box::new(receiver)),
                                Type::Bool,
                                span,
                            ),
                            Type::Error => Typed::poisoned(Type::Bool, span),
                            other => {
                                let error = ExprError::new(
                                    receiver.span.clone(),
                                    format!(
                                        "`hasValue()` is a method of optional values, found {other}"
                                    ),
                                );
                                self.error(error, Type::Bool)
                            }
                        },
                        None => Typed::poisoned(Type::Bool, span),
                    },
                    "size" => match self.arity(function, args, 0, &span) {
                        Some(_) => self.size(receiver, span),
                        None => Typed::poisoned(Type::Int, span),
                    },
                    "contains" | "startsWith" | "endsWith" => {
                        let test = match name {
                            "contains" => StringTest::Contains,
                            "startsWith" => StringTest::StartsWith,
                            _ => StringTest::EndsWith,
                        };
                        match self.arity(function, args, 1, &span) {
                            Some([arg]) => {
                                let arg = self.node(arg, None);
                                self.string_test(name, test, receiver, arg, span)
                            }
                            _ => Typed::poisoned(Type::Bool, span),
                        }
                    }
                    _ => {
                        self.check_all(args);
                        let error = ExprError::new(
                            function.span.clone(),
                            format!("unknown method `{name}`"),
                        );
                        let hint = match closest(name, METHODS.iter().copied()) {
                            Some(suggestion) => format!("did you mean `{suggestion}`?"),
                            None => format!("the methods are {}", list(METHODS)),
                        };
                        self.error(error.with_hint(hint), Type::Error)
                    }
                }
            }
        }
    }

    /// `xs.map(x, e)`, `xs.filter(x, c)`, `xs.exists(x, c)`, `xs.all(x, c)`,
    /// `xs.exists_one(x, c)`: `x` names each element of the list `xs` in the second argument.
    fn comprehension(
        &mut self,
        target: Option<&Node>,
        function: &Ident,
        args: &[Node],
        span: Span,
    ) -> Typed {
        let name = function.name.as_str();
        let kind = match name {
            "map" => Macro::Map,
            "filter" => Macro::Filter,
            "exists" => Macro::Exists,
            "all" => Macro::All,
            _ => Macro::ExistsOne,
        };
        let result_if_error = match kind {
            Macro::Map | Macro::Filter => Type::Error,
            _ => Type::Bool,
        };
        let Some(target) = target else {
            let error = ExprError::new(
                function.span.clone(),
                format!("`{name}` is a macro on lists: write `list.{name}(x, ...)`"),
            );
            return self.error(error, result_if_error);
        };
        let list = self.node(target, None);
        let [var, body] = args else {
            let error = ExprError::new(
                span.clone(),
                format!("`{name}` takes a variable name and an expression: `list.{name}(x, ...)`"),
            );
            return self.error(error, result_if_error);
        };
        let NodeKind::Name(var) = &var.kind else {
            let error = ExprError::new(
                var.span.clone(),
                format!(
                    "the first argument of `{name}` names each element: write a name such as `x`"
                ),
            );
            return self.error(error, result_if_error);
        };
        let element = match &list.ty {
            Type::List(element) => (**element).clone(),
            Type::Error => Type::Error,
            other => {
                let error = ExprError::new(
                    target.span.clone(),
                    format!("`{name}` iterates a list, found {other}"),
                );
                return self.error(error, result_if_error);
            }
        };
        // The body sees the element by its name, over any other binding of that name.
        let inner = self.scope.clone().with_local(&var.name, element.clone());
        let mut checker = super::Checker {
            scope: &inner,
            schema: self.schema,
            text: self.text,
            errors: Vec::new(),
            guard_reads: Vec::new(),
        };
        let body = checker.node(body, None);
        self.errors.append(&mut checker.errors);
        self.guard_reads.append(&mut checker.guard_reads);
        let ty = match kind {
            Macro::Map => Type::List(Box::new(body.ty.clone())),
            Macro::Filter => list.ty.clone(),
            _ => Type::Bool,
        };
        if kind != Macro::Map && body.ty != Type::Bool && body.ty != Type::Error {
            let error = ExprError::new(
                body.span.clone(),
                format!("the condition of `{name}` must be bool, found {}", body.ty),
            );
            return self.error(error, ty);
        }
        if body.ty.contains_error() || list.ty.contains_error() {
            return Typed::poisoned(if ty.contains_error() { Type::Error } else { ty }, span);
        }
        Typed::new(
            TypedKind::Comprehension {
                kind,
                list: Box::new(list),
                var: var.name.clone(),
                body: Box::new(body),
            },
            ty,
            span,
        )
    }

    /// `optional.of(x)` and `optional.none()`.
    fn optional_constructor(&mut self, function: &Ident, args: &[Node], span: Span) -> Typed {
        match function.name.as_str() {
            "of" => match self.arity(function, args, 1, &span) {
                Some([value]) => {
                    let value = self.node(value, None);
                    match &value.ty {
                        Type::Error => Typed::poisoned(Type::Error, span),
                        Type::Null | Type::Optional(_) => {
                            let error = ExprError::new(
                                value.span.clone(),
                                "`optional.of()` takes a value that is not null",
                            );
                            self.error(error, Type::Error)
                        }
                        ty => {
                            let ty = Type::Optional(Box::new(ty.clone()));
                            Typed::new(TypedKind::Some(Box::new(value)), ty, span)
                        }
                    }
                }
                _ => Typed::poisoned(Type::Error, span),
            },
            "none" => match self.arity(function, args, 0, &span) {
                Some(_) => Typed::new(
                    TypedKind::Literal(crate::expr::Literal::Null),
                    Type::Null,
                    span,
                ),
                None => Typed::poisoned(Type::Null, span),
            },
            other => {
                self.check_all(args);
                let error = ExprError::new(
                    function.span.clone(),
                    format!("unknown function `optional.{other}`"),
                )
                .with_hint("the functions are `optional.of(x)` and `optional.none()`");
                self.error(error, Type::Error)
            }
        }
    }

    /// `opt.orValue(d)`: `d` has the optional's value type.
    fn or_value(&mut self, optional: Typed, default: &Node, span: Span) -> Typed {
        let value = match &optional.ty {
            Type::Optional(value) => (**value).clone(),
            Type::Error => {
                self.node(default, None);
                return Typed::poisoned(Type::Error, span);
            }
            other => {
                self.node(default, None);
                let error = ExprError::new(
                    optional.span.clone(),
                    format!("`orValue()` is a method of optional values, found {other}"),
                )
                .with_hint("a value that is never null needs no default");
                return self.error(error, Type::Error);
            }
        };
        let default = self.node(default, Some(&value));
        if !super::compatible(&default.ty, &value) {
            let error = ExprError::new(
                default.span.clone(),
                format!(
                    "the default of `orValue()` must be {value}, found {}",
                    default.ty
                ),
            );
            return self.error(error, value);
        }
        Typed::new(
            TypedKind::OrValue {
                optional: Box::new(optional),
                default: Box::new(default),
            },
            value,
            span,
        )
    }

    /// The string and list functions: `lowerAscii() upperAscii() trim()` on strings,
    /// `split(sep)` (a list of strings), `join()`/`join(sep)` on lists of strings,
    /// `matches(re)` with a string literal pattern (checked now), `reverse()` on strings and
    /// lists, `sort()` on lists of ints, uints, doubles, strings, bytes or bools.
    fn library(
        &mut self,
        name: &str,
        receiver: Typed,
        function: &Ident,
        args: &[Node],
        span: Span,
    ) -> Typed {
        let (library, arity, receives, result) = match name {
            "lowerAscii" => (Library::LowerAscii, 0, "a string", Type::String),
            "upperAscii" => (Library::UpperAscii, 0, "a string", Type::String),
            "trim" => (Library::Trim, 0, "a string", Type::String),
            "split" => (
                Library::Split,
                1,
                "a string",
                Type::List(Box::new(Type::String)),
            ),
            "join" => (
                Library::Join,
                args.len().min(1),
                "a list of strings",
                Type::String,
            ),
            "matches" => (Library::Matches, 1, "a string", Type::Bool),
            "reverse" => (
                Library::Reverse,
                0,
                "a string or a list",
                receiver.ty.clone(),
            ),
            _ => (
                Library::Sort,
                0,
                "a list of ints, uints, doubles, strings, bytes or bools",
                receiver.ty.clone(),
            ),
        };
        let Some(args) = self.arity(function, args, arity, &span) else {
            return Typed::poisoned(result, span);
        };
        let receiver_ok = match (library, &receiver.ty) {
            (_, Type::Error) => true,
            (Library::Join, Type::List(element)) => {
                matches!(**element, Type::String | Type::Error)
            }
            (Library::Reverse, Type::List(_) | Type::String) => true,
            (Library::Sort, Type::List(element)) => matches!(
                **element,
                Type::Int | Type::Uint | Type::Double | Type::String | Type::Bytes | Type::Bool
            ),
            (Library::Join | Library::Reverse | Library::Sort, _) => false,
            (_, ty) => *ty == Type::String,
        };
        let mut checked = Vec::new();
        for arg in args {
            let arg = self.node(arg, Some(&Type::String));
            if !matches!(arg.ty, Type::String | Type::Error) {
                self.errors.push(ExprError::new(
                    arg.span.clone(),
                    format!(
                        "the argument of `{name}()` must be a string, found {}",
                        arg.ty
                    ),
                ));
                return Typed::poisoned(result, span);
            }
            checked.push(arg);
        }
        if !receiver_ok {
            let error = ExprError::new(
                receiver.span.clone(),
                format!(
                    "`{name}()` is a method of {receives}, found {}",
                    receiver.ty
                ),
            );
            return self.error(error, result);
        }
        if library == Library::Matches {
            match checked.first().map(|arg| &arg.kind) {
                Some(TypedKind::Literal(crate::expr::Literal::String(pattern))) => {
                    if let Err(error) = regex::Regex::new(pattern) {
                        let detail = error.to_string();
                        let detail = detail.lines().last().unwrap_or("").trim();
                        let detail = detail.trim_start_matches("error: ");
                        let error = ExprError::new(
                            checked[0].span.clone(),
                            format!("`{pattern}` is not a valid regular expression: {detail}"),
                        )
                        .with_hint("the syntax is RE2's (the `regex` crate's); escape a literal `\\` as `\\\\`");
                        return self.error(error, Type::Bool);
                    }
                }
                Some(_) => {
                    let error = ExprError::new(
                        checked[0].span.clone(),
                        "the pattern of `matches()` must be a string literal",
                    )
                    .with_hint("patterns are compiled and checked when the protos are built");
                    return self.error(error, Type::Bool);
                }
                None => {}
            }
        }
        if receiver.ty.contains_error() {
            return Typed::poisoned(result, span);
        }
        Typed::new(
            TypedKind::Library {
                function: library,
                receiver: Box::new(receiver),
                args: checked,
            },
            result,
            span,
        )
    }

    fn check_all(&mut self, args: &[Node]) {
        for arg in args {
            self.node(arg, None);
        }
    }

    /// The arguments when there are `expected` of them; otherwise reports the call (and still
    /// checks the arguments, for their own errors).
    pub(super) fn arity<'n>(
        &mut self,
        function: &Ident,
        args: &'n [Node],
        expected: usize,
        span: &Span,
    ) -> Option<&'n [Node]> {
        if args.len() == expected {
            return Some(args);
        }
        self.check_all(args);
        let plural = if expected == 1 { "" } else { "s" };
        self.errors.push(ExprError::new(
            span.clone(),
            format!(
                "`{}()` takes {expected} argument{plural}, found {}",
                function.name,
                args.len()
            ),
        ));
        None
    }

    fn has(&mut self, args: &[Node], span: Span) -> Typed {
        let [arg] = args else {
            self.check_all(args);
            let error = ExprError::new(
                span.clone(),
                format!("`has()` takes 1 argument, found {}", args.len()),
            );
            return self.error(error, Type::Bool);
        };
        if let NodeKind::Name(name) = &arg.kind
            && name.name != "$"
        {
            return self.step_ran(name, true, span);
        }
        let NodeKind::Select { operand, field } = &arg.kind else {
            self.node(arg, None);
            let error = ExprError::new(
                arg.span.clone(),
                "`has()` needs a field selection, such as `has(x.field)`, or a step's name",
            );
            return self.error(error, Type::Bool);
        };
        let operand = self.node(operand, None);
        match &operand.ty {
            Type::Message(message) => {
                let message = message.clone();
                match self.field_of(&message, field) {
                    Some(info) => {
                        let kind = TypedKind::Has {
                            operand: Box::new(operand),
                            field: info,
                        };
                        Typed::new(kind, Type::Bool, span)
                    }
                    None => Typed::poisoned(Type::Bool, span),
                }
            }
            Type::Map(key, _) if **key == Type::String => {
                let kind = TypedKind::HasKey {
                    operand: Box::new(operand),
                    key: field.name.clone(),
                };
                Typed::new(kind, Type::Bool, span)
            }
            Type::Error => Typed::poisoned(Type::Bool, span),
            other => {
                let error = ExprError::new(
                    field.span.clone(),
                    format!("`has()` needs a field of a message; this selects from {other}"),
                );
                self.error(error, Type::Bool)
            }
        }
    }

    /// `has(step)` (`ran`) or `step == null` (not `ran`): whether a step with a guard ran.
    pub(super) fn step_ran(&mut self, name: &Ident, ran: bool, span: Span) -> Typed {
        let step = self.node(
            &Node {
                kind: NodeKind::Name(name.clone()),
                span: name.span.clone(),
                depth: 1,
            },
            None,
        );
        if step.ty == Type::Error {
            return Typed::poisoned(Type::Bool, span);
        }
        if let Type::Optional(_) = step.ty {
            let test = Typed::new(
                TypedKind::HasValue(Box::new(step)),
                Type::Bool,
                span.clone(),
            );
            return if ran {
                test
            } else {
                Typed::new(TypedKind::Not(Box::new(test)), Type::Bool, span)
            };
        }
        let Some(guard) = self.scope.guard(&name.name) else {
            if self.scope.is_local(&name.name) {
                let error = ExprError::new(
                    name.span.clone(),
                    format!(
                        "`{}` is the macro's variable: it always has a value, so this is always {}",
                        name.name,
                        if ran { "true" } else { "false" }
                    ),
                )
                .with_hint("test a field of it instead, such as `has(x.field)`");
                return self.error(error, Type::Bool);
            }
            let error = ExprError::new(
                name.span.clone(),
                format!(
                    "step `{}` has no `if`: it always runs, so this is always {}",
                    name.name,
                    if ran { "true" } else { "false" }
                ),
            )
            .with_hint("test a field of it instead, such as `has(step.field)`");
            return self.error(error, Type::Bool);
        };
        if let Ok(parsed) = crate::expr::parse(guard.text()) {
            self.guard_reads
                .extend(parsed.names().into_iter().map(|(name, _)| name));
        }
        let test = Typed::new(
            TypedKind::StepRan(Box::new(guard.root.clone())),
            Type::Bool,
            span.clone(),
        );
        if ran {
            test
        } else {
            Typed::new(TypedKind::Not(Box::new(test)), Type::Bool, span)
        }
    }

    fn size(&mut self, arg: Typed, span: Span) -> Typed {
        match &arg.ty {
            Type::String | Type::Bytes | Type::List(_) | Type::Map(..) => {
                Typed::new(TypedKind::Size(Box::new(arg)), Type::Int, span)
            }
            Type::Error => Typed::poisoned(Type::Int, span),
            other => {
                let error = ExprError::new(
                    arg.span.clone(),
                    format!("`size()` is not defined for {other}"),
                )
                .with_hint("`size()` measures strings, bytes, lists and maps");
                self.error(error, Type::Int)
            }
        }
    }

    fn conversion(&mut self, name: &str, arg: Typed, span: Span) -> Typed {
        let to = conversion_type(name);
        let allowed = match (&to, &arg.ty) {
            (_, Type::Error) => return Typed::poisoned(to, span),
            (Type::Int, Type::Int | Type::Uint | Type::Double | Type::String | Type::Enum(_)) => {
                true
            }
            (Type::Uint | Type::Double, Type::Int | Type::Uint | Type::Double | Type::String) => {
                true
            }
            (
                Type::String,
                Type::String
                | Type::Int
                | Type::Uint
                | Type::Double
                | Type::Bool
                | Type::Bytes
                | Type::Enum(_),
            ) => true,
            (Type::Bytes, Type::String | Type::Bytes) => true,
            _ => false,
        };
        if !allowed {
            let error = ExprError::new(
                arg.span.clone(),
                format!("cannot convert {} to {to}", arg.ty),
            );
            return self.error(error, to);
        }
        Typed::new(TypedKind::Convert(Box::new(arg)), to, span)
    }

    fn string_test(
        &mut self,
        name: &str,
        test: StringTest,
        receiver: Typed,
        arg: Typed,
        span: Span,
    ) -> Typed {
        let mut ok = true;
        if !matches!(receiver.ty, Type::String | Type::Error) {
            self.errors.push(ExprError::new(
                receiver.span.clone(),
                format!("`{name}()` is a method of strings, found {}", receiver.ty),
            ));
            ok = false;
        }
        if !matches!(arg.ty, Type::String | Type::Error) {
            self.errors.push(ExprError::new(
                arg.span.clone(),
                format!("`{name}()` needs a string argument, found {}", arg.ty),
            ));
            ok = false;
        }
        if !ok {
            return Typed::poisoned(Type::Bool, span);
        }
        let kind = TypedKind::StringTest {
            test,
            receiver: Box::new(receiver),
            arg: Box::new(arg),
        };
        Typed::new(kind, Type::Bool, span)
    }
}

fn conversion_type(name: &str) -> Type {
    match name {
        "int" => Type::Int,
        "uint" => Type::Uint,
        "double" => Type::Double,
        "bytes" => Type::Bytes,
        _ => Type::String,
    }
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
