//! A schema and scope shaped like the demo storefront, with one field of every storage kind.

use proc_macro2::TokenStream;
use quote::quote;

use crate::expr::{Cardinality, Env, FieldInfo, RustSchema, Scalar, Schema, Scope, Type};

pub(super) struct Storefront;

fn field(name: &str, ty: Type, scalar: Option<Scalar>, cardinality: Cardinality) -> FieldInfo {
    FieldInfo {
        name: name.to_owned(),
        ty,
        scalar,
        cardinality,
    }
}

fn message(name: &str) -> Type {
    Type::Message(name.to_owned())
}

fn list(element: Type) -> Type {
    Type::List(Box::new(element))
}

fn map(key: Type, value: Type) -> Type {
    Type::Map(Box::new(key), Box::new(value))
}

fn fields(message_name: &str) -> Vec<FieldInfo> {
    use Cardinality::*;
    match message_name {
        "demo.Request" => vec![
            field("product_id", Type::String, Some(Scalar::String), Singular),
            field("review_limit", Type::Int, Some(Scalar::I32), Singular),
            field("page", Type::Uint, Some(Scalar::U64), Singular),
            field("count", Type::Int, Some(Scalar::I64), Singular),
            field("ratio", Type::Double, Some(Scalar::F32), Singular),
            field("weight", Type::Double, Some(Scalar::F64), Singular),
            field("verbose", Type::Bool, Some(Scalar::Bool), Singular),
            field("data", Type::Bytes, Some(Scalar::Bytes), Singular),
            field("type", Type::String, Some(Scalar::String), Singular),
            field("nickname", Type::String, Some(Scalar::String), Optional),
            field("limit", Type::Int, Some(Scalar::I32), Optional),
            field(
                "status",
                Type::Enum("demo.Status".into()),
                Some(Scalar::Enum),
                Singular,
            ),
            field(
                "other_status",
                Type::Enum("demo.Other".into()),
                Some(Scalar::Enum),
                Singular,
            ),
            field("user", message("demo.User"), None, Message),
            field("tags", list(Type::String), Some(Scalar::String), Repeated),
            field("scores", list(Type::Int), Some(Scalar::I32), Repeated),
            field("ids", list(Type::Int), Some(Scalar::I64), Repeated),
            field("labels", map(Type::String, Type::String), None, Map),
            field("counts", map(Type::Int, Type::Int), None, Map),
            field(
                "text",
                Type::String,
                Some(Scalar::String),
                Oneof {
                    oneof: "filter".into(),
                    boxed: false,
                },
            ),
            field(
                "author",
                message("demo.User"),
                None,
                Oneof {
                    oneof: "filter".into(),
                    boxed: false,
                },
            ),
        ],
        "demo.User" => vec![
            field("id", Type::String, Some(Scalar::String), Singular),
            field("display_name", Type::String, Some(Scalar::String), Singular),
            field("age", Type::Int, Some(Scalar::I32), Singular),
            field("friend", message("demo.User"), None, BoxedMessage),
        ],
        "demo.ListReviewsResponse" => vec![
            field("reviews", list(message("demo.Review")), None, Repeated),
            field("average_rating", Type::Double, Some(Scalar::F64), Singular),
            field("total", Type::Uint, Some(Scalar::U32), Singular),
        ],
        "demo.Review" => vec![
            field("author_id", Type::String, Some(Scalar::String), Singular),
            field("rating", Type::Int, Some(Scalar::I32), Singular),
            field("body", Type::String, Some(Scalar::String), Singular),
        ],
        _ => Vec::new(),
    }
}

impl Schema for Storefront {
    fn field(&self, message: &str, field: &str) -> Option<FieldInfo> {
        fields(message).into_iter().find(|f| f.name == field)
    }

    fn field_names(&self, message: &str) -> Vec<String> {
        fields(message).into_iter().map(|f| f.name).collect()
    }

    fn resolve_enum(&self, name: &str, package: &str) -> Option<String> {
        let full = if name.starts_with("demo.") {
            name.to_owned()
        } else {
            format!("{package}.{name}")
        };
        matches!(full.as_str(), "demo.Status" | "demo.Other").then_some(full)
    }

    fn enum_values(&self, enumeration: &str) -> Vec<(String, i32)> {
        match enumeration {
            "demo.Status" => vec![
                ("STATUS_UNKNOWN".to_owned(), 0),
                ("STATUS_ACTIVE".to_owned(), 1),
                ("STATUS_BANNED".to_owned(), 2),
            ],
            "demo.Other" => vec![("OTHER_NONE".to_owned(), 0)],
            _ => Vec::new(),
        }
    }
}

impl RustSchema for Storefront {
    fn message_path(&self, message: &str) -> Option<TokenStream> {
        let name = message.rsplit('.').next()?;
        let ident = proc_macro2::Ident::new(name, proc_macro2::Span::call_site());
        Some(quote!(crate::pb::#ident))
    }

    fn oneof_variant(&self, message: &str, field: &FieldInfo) -> Option<TokenStream> {
        let parent = message.rsplit('.').next()?.to_lowercase();
        let parent = proc_macro2::Ident::new(&parent, proc_macro2::Span::call_site());
        let variant = crate::names::rust_type_ident(&field.name);
        let variant = proc_macro2::Ident::new(&variant, proc_macro2::Span::call_site());
        Some(quote!(crate::pb::#parent::Filter::#variant))
    }
}

/// `$` (a request), `rs` (a reviews response), `n` (an int step) and `names` (a list step).
pub(super) fn scope() -> Scope {
    Scope::new()
        .in_package("demo")
        .with("$", message("demo.Request"))
        .with("rs", message("demo.ListReviewsResponse"))
        .with("n", Type::Int)
        .with("names", list(Type::String))
}

/// How emitted code reaches the names of [`scope`].
pub(super) fn env() -> Env {
    Env::new()
        .with("$", quote!(input))
        .with("rs", quote!((&*rs)))
        .with("n", quote!(n))
        .with("names", quote!(names))
}
