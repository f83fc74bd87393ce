//! What the checker knows about the world: expression types, how prost stores proto fields,
//! the [`Schema`] it asks about messages, and the [`Scope`] of names.

use std::fmt;

/// The type of an expression value.
///
/// Each type has one *canonical* owned Rust representation, the type of what
/// [`emit`](super::emit) produces: `Int` → `i64`, `Uint` → `u64`, `Double` → `f64`, `Bool` →
/// `bool`, `String` → `String`, `Bytes` → `Vec<u8>`, `Enum` → `i32` (prost's), `Message` → the
/// prost struct, `List(T)` → `Vec<T>`, `Map(K, V)` → `BTreeMap<K, V>`, `Null` → `()`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    /// 64-bit signed integer; every signed proto integer reads as this.
    Int,
    /// 64-bit unsigned integer; every unsigned proto integer reads as this.
    Uint,
    /// 64-bit float; `float` fields widen to this.
    Double,
    /// `true` or `false`.
    Bool,
    /// UTF-8 text.
    String,
    /// Raw bytes.
    Bytes,
    /// The type of `null`.
    Null,
    /// A proto enum, by full name; compares with ints and with values of the same enum.
    Enum(String),
    /// A proto message, by full name.
    Message(String),
    /// A list of values of one type.
    List(Box<Type>),
    /// A map with keys and values of one type each.
    Map(Box<Type>, Box<Type>),
    /// A value or null: what `c ? x : null` gives. It binds to a field with presence (null
    /// leaves the field unset), compares with `null`, and reads through `orValue(d)`; nothing
    /// else takes it. Canonically `Option<T>`.
    Optional(Box<Type>),
    /// Stands for a subexpression that already has an error, so that one mistake is reported
    /// once rather than again by everything around it. Never the type of a [`Checked`]
    /// expression.
    ///
    /// [`Checked`]: super::Checked
    Error,
}

impl Type {
    /// Whether the type mentions [`Type::Error`] anywhere.
    pub fn contains_error(&self) -> bool {
        match self {
            Type::Error => true,
            Type::List(element) => element.contains_error(),
            Type::Map(key, value) => key.contains_error() || value.contains_error(),
            Type::Optional(value) => value.contains_error(),
            _ => false,
        }
    }

    /// Whether values are `Copy` in their canonical representation.
    pub(crate) fn is_copy(&self) -> bool {
        matches!(
            self,
            Type::Int | Type::Uint | Type::Double | Type::Bool | Type::Enum(_) | Type::Null
        )
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Int => f.write_str("int"),
            Type::Uint => f.write_str("uint"),
            Type::Double => f.write_str("double"),
            Type::Bool => f.write_str("bool"),
            Type::String => f.write_str("string"),
            Type::Bytes => f.write_str("bytes"),
            Type::Null => f.write_str("null"),
            Type::Enum(name) | Type::Message(name) => write!(f, "`{name}`"),
            Type::List(element) => write!(f, "list({element})"),
            Type::Map(key, value) => write!(f, "map({key}, {value})"),
            Type::Optional(value) => write!(f, "optional({value})"),
            Type::Error => f.write_str("<error>"),
        }
    }
}

/// How prost stores one scalar value (an element, for repeated fields): the Rust type, not
/// the proto kind (`sint32` and `sfixed32` are both `I32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scalar {
    /// `i32`: `int32`, `sint32`, `sfixed32`.
    I32,
    /// `i64`: `int64`, `sint64`, `sfixed64`.
    I64,
    /// `u32`: `uint32`, `fixed32`.
    U32,
    /// `u64`: `uint64`, `fixed64`.
    U64,
    /// `f32`: `float`.
    F32,
    /// `f64`: `double`.
    F64,
    /// `bool`.
    Bool,
    /// `String`.
    String,
    /// `Vec<u8>` (prost's default for `bytes`).
    Bytes,
    /// `i32`, an enum's number.
    Enum,
}

/// How a field is held in its prost struct.
#[derive(Debug, Clone)]
pub enum Cardinality {
    /// A plain value (`T`), default when unset: proto3 scalars without `optional`.
    Singular,
    /// `Option<T>`: proto3 `optional` scalars (and wrapper types that prost maps to `Option`).
    /// Reads as the value or the default; `has()` and `== null` test presence.
    Optional,
    /// `Option<M>`: a singular message field. Reads as the message or its default (never
    /// null, as in CEL); `has()` and `== null` test presence.
    Message,
    /// `Option<Box<M>>`: a singular message field that prost boxes, which it does when the
    /// field's message contains the field's own message, directly or not (a recursion such as
    /// `User.friend`), and when configured with `boxed`. Reads like [`Message`](Self::Message).
    BoxedMessage,
    /// `Vec<T>`.
    Repeated,
    /// `BTreeMap<K, V>` (this project generates maps as `BTreeMap`). The key and value Rust
    /// types need not be known: the emitted code converts through generic helpers.
    Map,
    /// A member of a `oneof`: prost stores the oneof as one `Option<Enum>` field with a
    /// variant per member.
    Oneof {
        /// The oneof's proto name.
        oneof: String,
        /// Whether the variant holds a `Box<M>` (prost boxes oneof messages on a recursion
        /// the same way as singular message fields).
        boxed: bool,
    },
}

/// One proto field, as the checker and the emitter need it.
#[derive(Debug, Clone)]
pub struct FieldInfo {
    /// The proto name.
    pub name: String,
    /// The expression type of reading it (`List(T)` for repeated fields).
    pub ty: Type,
    /// How a value (a list element, a map value) is stored, for non-message fields. For maps
    /// it may be `None`: values then convert generically.
    pub scalar: Option<Scalar>,
    /// How the field is held.
    pub cardinality: Cardinality,
}

/// The messages expressions read, as the generator knows them.
pub trait Schema {
    /// Field `field` of message `message` (full name), if it exists.
    fn field(&self, message: &str, field: &str) -> Option<FieldInfo>;

    /// The field names of `message`, for "did you mean" hints.
    fn field_names(&self, message: &str) -> Vec<String>;

    /// The full name of the enum `name` (relative or fully qualified) as seen from `package`,
    /// by protobuf's scoping rules: innermost package first.
    fn resolve_enum(&self, name: &str, package: &str) -> Option<String> {
        let _ = (name, package);
        None
    }

    /// The values of enum `enumeration` (its full name): name and number, in declaration
    /// order.
    fn enum_values(&self, enumeration: &str) -> Vec<(String, i32)> {
        let _ = enumeration;
        Vec::new()
    }

    /// The full name of the message `name` (relative or fully qualified) as seen from
    /// `package`, by the same rules as [`resolve_enum`](Self::resolve_enum); map entries and
    /// other messages no literal may build are not found.
    fn resolve_message(&self, name: &str, package: &str) -> Option<String> {
        let _ = (name, package);
        None
    }
}

/// The names an expression can read: `$`, `caller` and the steps defined above it, each with
/// its type. How emitted code reaches each name is emission's business (see
/// [`Env`](super::Env)).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    bindings: Vec<(String, Type)>,
    /// Step names that compute no value (validations, logs), each with what it is.
    valueless: Vec<(String, &'static str)>,
    /// Steps that run only when their guard (`if`) holds, each with the guard: `has(step)`
    /// and `step == null` test it.
    guards: Vec<(String, super::Checked)>,
    /// Names a macro binds (its variable), which are no steps.
    locals: Vec<String>,
    package: String,
}

impl Scope {
    /// An empty scope.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `name` (`"$"` or a step name) to a value of type `ty`, replacing an earlier
    /// binding of the same name.
    pub fn insert(&mut self, name: impl Into<String>, ty: Type) -> &mut Self {
        let name = name.into();
        // A new binding (a macro's variable) shadows a step of that name, and its guard.
        self.guards.retain(|(n, _)| *n != name);
        match self.bindings.iter_mut().find(|(n, _)| *n == name) {
            Some(existing) => existing.1 = ty,
            None => self.bindings.push((name, ty)),
        }
        self
    }

    /// Like [`insert`](Self::insert), by value.
    pub fn with(mut self, name: impl Into<String>, ty: Type) -> Self {
        self.insert(name, ty);
        self
    }

    /// The type of `name`.
    pub fn get(&self, name: &str) -> Option<&Type> {
        self.bindings
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, ty)| ty)
    }

    /// Declares `name` as a step that computes no value (`what`: "a validation"), so that
    /// reading it says so.
    pub fn insert_valueless(&mut self, name: impl Into<String>, what: &'static str) {
        self.valueless.push((name.into(), what));
    }

    /// What `name` is, if it is a step that computes no value.
    pub fn valueless(&self, name: &str) -> Option<&'static str> {
        self.valueless
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, what)| *what)
    }

    /// Declares `name` a step that runs only when `guard` holds.
    pub fn insert_guard(&mut self, name: impl Into<String>, guard: super::Checked) {
        self.guards.push((name.into(), guard));
    }

    /// Like [`with`](Self::with), for a macro's variable.
    pub fn with_local(mut self, name: impl Into<String>, ty: Type) -> Self {
        let name = name.into();
        self.insert(name.clone(), ty);
        self.locals.push(name);
        self
    }

    /// Whether `name` is a macro's variable.
    pub fn is_local(&self, name: &str) -> bool {
        self.locals.iter().any(|n| n == name)
    }

    /// The guard of step `name`, if it has one.
    pub fn guard(&self, name: &str) -> Option<&super::Checked> {
        self.guards
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, guard)| guard)
    }

    /// The names bound, in the order they were first bound.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.bindings.iter().map(|(name, _)| name.as_str())
    }

    /// Sets the proto package relative names (of enums) are looked up from.
    pub fn in_package(mut self, package: impl Into<String>) -> Self {
        self.package = package.into();
        self
    }

    /// The proto package relative names are looked up from.
    pub fn package(&self) -> &str {
        &self.package
    }
}
