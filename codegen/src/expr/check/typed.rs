//! The typed tree: what the checker hands the emitter. Every decision is made here (which
//! field, which operation on which types), so emission cannot fail and never looks anything up
//! except the Rust access paths of names.

use crate::expr::ast::{BinaryOp, Literal, Span};
use crate::expr::types::{FieldInfo, Type};

#[derive(Debug, Clone)]
pub(crate) struct Typed {
    pub(crate) kind: TypedKind,
    pub(crate) ty: Type,
    pub(crate) span: Span,
}

impl Typed {
    pub(crate) fn new(kind: TypedKind, ty: Type, span: Span) -> Self {
        Self { kind, ty, span }
    }

    /// A node after an error: it has type `ty` (often [`Type::Error`], or the type the
    /// construct always has, like `bool` for a comparison, to spare the parent a cascade).
    pub(crate) fn poisoned(ty: Type, span: Span) -> Self {
        Self::new(TypedKind::Poisoned, ty, span)
    }

    /// Whether this is the literal `[]`.
    pub(crate) fn is_empty_list(&self) -> bool {
        matches!(&self.kind, TypedKind::List(items) if items.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringTest {
    Contains,
    StartsWith,
    EndsWith,
}

/// The string functions of the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Library {
    LowerAscii,
    UpperAscii,
    Trim,
    Split,
    Join,
    Matches,
    Reverse,
    Sort,
}

/// The list macros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Macro {
    /// `xs.map(x, e)`: the list of `e` for each element.
    Map,
    /// `xs.filter(x, c)`: the elements for which `c` holds.
    Filter,
    /// `xs.exists(x, c)`: whether `c` holds for some element.
    Exists,
    /// `xs.all(x, c)`: whether `c` holds for every element.
    All,
    /// `xs.exists_one(x, c)`: whether `c` holds for exactly one element.
    ExistsOne,
}

/// What a timestamp or duration operation computes (`time.rs` says each one's arguments).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TimeOp {
    /// `a op b` between two timestamps or two durations.
    Compare(crate::expr::ast::BinaryOp),
    /// `ts + d` (the timestamp first).
    AddTimestamp,
    /// `ts - d`.
    SubTimestamp,
    /// `a - b` between timestamps.
    DiffTimestamps,
    /// `a + b` between durations.
    AddDurations,
    /// `a - b` between durations.
    SubDurations,
    /// `-d`.
    NegDuration,
    /// `timestamp(string)`.
    Parse,
    /// `timestamp(int)`.
    FromUnix,
    /// `duration("...")`, computed at build time.
    DurationLiteral { seconds: i64, nanos: i32 },
    /// `now()`.
    Now,
    /// `string(ts)`.
    TimestampString,
    /// `string(d)`.
    DurationString,
    /// `int(ts)`.
    Unix,
    /// A calendar getter of a timestamp: the runtime's `TimePart` variant.
    Get(&'static str),
    /// A getter of a duration: the runtime's `TimePart` variant.
    DurationGet(&'static str),
    /// `ts.format(pattern)`.
    Format(String),
}

#[derive(Debug, Clone)]
pub(crate) enum TypedKind {
    Literal(Literal),
    Name(String),
    /// `operand.field` on a message.
    Field {
        operand: Box<Typed>,
        field: FieldInfo,
    },
    /// `list[index]`, `map[key]`, and `map.key` (the key as a string literal).
    Index {
        operand: Box<Typed>,
        index: Box<Typed>,
    },
    /// `has(operand.field)` on a message.
    Has {
        operand: Box<Typed>,
        field: FieldInfo,
    },
    /// `has(map.key)`.
    HasKey {
        operand: Box<Typed>,
        key: String,
    },
    /// `operand.field == null` (`present: false`) or `!= null` (`present: true`).
    Presence {
        operand: Box<Typed>,
        field: FieldInfo,
        present: bool,
    },
    Size(Box<Typed>),
    /// `int(x)`, `uint(x)`, `double(x)`, `string(x)`, `bytes(x)`: to the node's type.
    Convert(Box<Typed>),
    StringTest {
        test: StringTest,
        receiver: Box<Typed>,
        arg: Box<Typed>,
    },
    Not(Box<Typed>),
    Neg(Box<Typed>),
    /// `+ - * / %` on two numbers of the same type.
    Arith {
        op: BinaryOp,
        lhs: Box<Typed>,
        rhs: Box<Typed>,
    },
    /// `+` on two strings, two bytes or two lists of the same type.
    Concat {
        lhs: Box<Typed>,
        rhs: Box<Typed>,
    },
    /// `== != < <= > >=` on comparable operands.
    Compare {
        op: BinaryOp,
        lhs: Box<Typed>,
        rhs: Box<Typed>,
    },
    In {
        item: Box<Typed>,
        container: Box<Typed>,
    },
    And(Box<Typed>, Box<Typed>),
    Or(Box<Typed>, Box<Typed>),
    Conditional {
        cond: Box<Typed>,
        then: Box<Typed>,
        otherwise: Box<Typed>,
    },
    List(Vec<Typed>),
    /// `{k: v, …}`, typed as `Map(K, V)`.
    Map(Vec<(Typed, Typed)>),
    /// `pkg.Msg{f: v, …}`: the message's full name and each field set.
    MessageLiteral {
        message: String,
        fields: Vec<(FieldInfo, Typed)>,
    },
    /// `opt.orValue(d)`: the value of an optional, or `d`.
    OrValue {
        optional: Box<Typed>,
        default: Box<Typed>,
    },
    /// `opt.hasValue()`.
    HasValue(Box<Typed>),
    /// `has(step)` of a step with a guard: the guard itself, evaluated again where it is read
    /// (its names are read there too).
    StepRan(Box<Typed>),
    /// `optional.of(x)`.
    Some(Box<Typed>),
    /// A timestamp or duration operation.
    Time {
        op: TimeOp,
        args: Vec<Typed>,
    },
    /// A string function of the library: `s.lowerAscii()`, `s.split(sep)`, `xs.join(sep)`,
    /// `s.matches(re)` (the pattern checked at build time), …
    Library {
        function: Library,
        receiver: Box<Typed>,
        args: Vec<Typed>,
    },
    /// A value of an enum by name: `Status.ACTIVE`, `demo.users.v1.Status.ACTIVE`.
    EnumValue {
        /// The enum's full name.
        enumeration: String,
        /// The value's proto name.
        value: String,
        /// Its number.
        number: i32,
    },
    /// A macro over a list: `list.map(var, body)` and the others of [`Macro`].
    Comprehension {
        kind: Macro,
        list: Box<Typed>,
        var: String,
        body: Box<Typed>,
    },
    /// `partial()`: whether the edge call has ignored a failed step so far.
    Partial,
    /// Stands where an error was reported; never emitted.
    Poisoned,
}
