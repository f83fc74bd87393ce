//! Proto types as the expression checker and emitter see them.
//!
//! [`PoolSchema`] answers the expression layer's questions ("what is field `author_id` of
//! `demo.reviews.v1.Review`, and how does prost store it?") from the descriptor pool, plus the
//! synthetic argument messages of messages built by `message` steps (`$` of `ReviewCard` is a
//! message whose fields are its arguments).

use std::collections::HashMap;

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind};

use crate::expr::{Cardinality, FieldInfo, Scalar, Schema, Type};

/// Marks the synthetic argument message of a message: `pkg.Msg#args`.
pub const ARGS_SUFFIX: &str = "#args";

/// The schema of one generation run.
#[derive(Debug)]
pub struct PoolSchema {
    pool: DescriptorPool,
    /// Synthetic argument messages, by synthetic full name.
    args: HashMap<String, Vec<(String, Type)>>,
}

impl PoolSchema {
    /// A schema over `pool`, without argument messages yet.
    pub fn new(pool: DescriptorPool) -> Self {
        Self {
            pool,
            args: HashMap::new(),
        }
    }

    /// Declares the argument message of `message` (its full name) with these arguments.
    pub fn declare_args(&mut self, message: &str, args: Vec<(String, Type)>) -> String {
        let name = format!("{message}{ARGS_SUFFIX}");
        self.args.insert(name.clone(), args);
        name
    }

    /// The descriptor pool.
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }
}

impl Schema for PoolSchema {
    fn field(&self, message: &str, field: &str) -> Option<FieldInfo> {
        if let Some(args) = self.args.get(message) {
            let (name, ty) = args.iter().find(|(name, _)| name == field)?;
            return Some(arg_field_info(name, ty));
        }
        let descriptor = self.pool.get_message_by_name(message)?;
        let field = descriptor.get_field_by_name(field)?;
        Some(field_info(&field))
    }

    fn field_names(&self, message: &str) -> Vec<String> {
        if let Some(args) = self.args.get(message) {
            return args.iter().map(|(name, _)| name.clone()).collect();
        }
        self.pool
            .get_message_by_name(message)
            .map(|m| m.fields().map(|f| f.name().to_owned()).collect())
            .unwrap_or_default()
    }

    fn resolve_enum(&self, name: &str, package: &str) -> Option<String> {
        in_scope(name, package, |candidate| {
            self.pool
                .get_enum_by_name(candidate)
                .map(|e| e.full_name().to_owned())
        })
    }

    fn resolve_message(&self, name: &str, package: &str) -> Option<String> {
        in_scope(name, package, |candidate| {
            self.pool
                .get_message_by_name(candidate)
                .filter(|m| !m.is_map_entry())
                .map(|m| m.full_name().to_owned())
        })
    }

    fn enum_values(&self, enumeration: &str) -> Vec<(String, i32)> {
        self.pool
            .get_enum_by_name(enumeration)
            .map(|e| {
                e.values()
                    .map(|v| (v.name().to_owned(), v.number()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// How prost stores an argument field of the synthetic args struct: like a proto field of the
/// same type (messages optional, lists as `Vec`), so expressions read both the same way.
fn arg_field_info(name: &str, ty: &Type) -> FieldInfo {
    let cardinality = match ty {
        Type::Message(_) => Cardinality::Message,
        Type::List(_) => Cardinality::Repeated,
        Type::Map(..) => Cardinality::Map,
        _ => Cardinality::Singular,
    };
    let scalar = scalar_of_type(match ty {
        Type::List(inner) => inner,
        other => other,
    });
    FieldInfo {
        name: name.to_owned(),
        ty: ty.clone(),
        scalar,
        cardinality,
    }
}

fn scalar_of_type(ty: &Type) -> Option<Scalar> {
    Some(match ty {
        Type::Int => Scalar::I64,
        Type::Uint => Scalar::U64,
        Type::Double => Scalar::F64,
        Type::Bool => Scalar::Bool,
        Type::String => Scalar::String,
        Type::Bytes => Scalar::Bytes,
        Type::Enum(_) => Scalar::Enum,
        _ => return None,
    })
}

/// The expression-level description of a proto field.
pub fn field_info(field: &FieldDescriptor) -> FieldInfo {
    let kind = stored_kind(&field.kind());
    let wrapper = wrapped(&field.kind()).is_some();
    let element = kind_type(&kind);
    let map_entry = match field.kind() {
        Kind::Message(entry) if field.is_map() => Some(entry),
        _ => None,
    };
    let (ty, cardinality) = if let Some(entry) = map_entry {
        let key = entry.map_entry_key_field();
        let value = entry.map_entry_value_field();
        (
            Type::Map(
                Box::new(kind_type(&key.kind())),
                Box::new(kind_type(&stored_kind(&value.kind()))),
            ),
            Cardinality::Map,
        )
    } else if field.is_list() {
        (Type::List(Box::new(element)), Cardinality::Repeated)
    } else if let Some(oneof) = field
        .containing_oneof()
        .filter(|_| !field.field_descriptor_proto().proto3_optional())
    {
        (
            element,
            Cardinality::Oneof {
                oneof: oneof.name().to_owned(),
                boxed: is_boxed(field),
            },
        )
    } else if matches!(kind, Kind::Message(_)) {
        let cardinality = if is_boxed(field) {
            Cardinality::BoxedMessage
        } else {
            Cardinality::Message
        };
        (element, cardinality)
    } else if field.supports_presence() || wrapper {
        // proto3 `optional` (and proto2 optional) scalars are `Option<T>`, and so are the
        // well-known wrappers (`google.protobuf.Int64Value` is `Option<i64>`).
        (element, Cardinality::Optional)
    } else {
        (element, Cardinality::Singular)
    };
    FieldInfo {
        name: field.name().to_owned(),
        ty,
        scalar: scalar_of_kind(&kind),
        cardinality,
    }
}

/// The value kind of a well-known wrapper message (`google.protobuf.Int64Value` → `int64`),
/// which prost stores as that scalar.
pub fn wrapped(kind: &Kind) -> Option<Kind> {
    let Kind::Message(message) = kind else {
        return None;
    };
    match message.full_name() {
        "google.protobuf.DoubleValue"
        | "google.protobuf.FloatValue"
        | "google.protobuf.Int64Value"
        | "google.protobuf.UInt64Value"
        | "google.protobuf.Int32Value"
        | "google.protobuf.UInt32Value"
        | "google.protobuf.BoolValue"
        | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue" => Some(message.get_field_by_name("value")?.kind()),
        _ => None,
    }
}

/// The kind prost stores a value of `kind` as: wrappers as their scalar, others as they are.
pub fn stored_kind(kind: &Kind) -> Kind {
    wrapped(kind).unwrap_or_else(|| kind.clone())
}

/// The expression type of values of a proto kind.
pub fn kind_type(kind: &Kind) -> Type {
    match kind {
        Kind::Double | Kind::Float => Type::Double,
        Kind::Int32
        | Kind::Int64
        | Kind::Sint32
        | Kind::Sint64
        | Kind::Sfixed32
        | Kind::Sfixed64 => Type::Int,
        Kind::Uint32 | Kind::Uint64 | Kind::Fixed32 | Kind::Fixed64 => Type::Uint,
        Kind::Bool => Type::Bool,
        Kind::String => Type::String,
        Kind::Bytes => Type::Bytes,
        Kind::Message(message) => Type::Message(message.full_name().to_owned()),
        Kind::Enum(enumeration) => Type::Enum(enumeration.full_name().to_owned()),
    }
}

/// Whether prost boxes a singular message field: when the field's message type contains its
/// parent message (directly or through other singular message fields), as prost-build does to
/// keep recursive types finite.
fn is_boxed(field: &FieldDescriptor) -> bool {
    let Kind::Message(target) = stored_kind(&field.kind()) else {
        return false;
    };
    if field.is_list() || field.is_map() {
        return false;
    }
    let parent = field.parent_message();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![target];
    while let Some(message) = stack.pop() {
        if message.full_name() == parent.full_name() {
            return true;
        }
        if !seen.insert(message.full_name().to_owned()) {
            continue;
        }
        for f in message.fields() {
            if let Kind::Message(next) = f.kind()
                && !f.is_list()
                && !f.is_map()
            {
                stack.push(next);
            }
        }
    }
    false
}

/// How prost stores a scalar kind.
pub fn scalar_of_kind(kind: &Kind) -> Option<Scalar> {
    Some(match kind {
        Kind::Double => Scalar::F64,
        Kind::Float => Scalar::F32,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Scalar::I32,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Scalar::I64,
        Kind::Uint32 | Kind::Fixed32 => Scalar::U32,
        Kind::Uint64 | Kind::Fixed64 => Scalar::U64,
        Kind::Bool => Scalar::Bool,
        Kind::String => Scalar::String,
        Kind::Bytes => Scalar::Bytes,
        Kind::Enum(_) => Scalar::Enum,
        Kind::Message(_) => return None,
    })
}

/// `find` of `name` as protobuf scopes it from `package`: a leading `.` is absolute; otherwise
/// `a.b.c` looks in `a.b.c.`, `a.b.`, `a.`, then the root.
fn in_scope(name: &str, package: &str, find: impl Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(absolute) = name.strip_prefix('.') {
        return find(absolute);
    }
    let mut scope = package;
    loop {
        let candidate = if scope.is_empty() {
            name.to_owned()
        } else {
            format!("{scope}.{name}")
        };
        if let Some(found) = find(&candidate) {
            return Some(found);
        }
        if scope.is_empty() {
            return None;
        }
        scope = scope.rsplit_once('.').map_or("", |(parent, _)| parent);
    }
}
