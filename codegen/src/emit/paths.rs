//! Paths to Rust items from the module of the package being emitted, and the schema as emission sees it.

use heck::ToSnakeCase;
use proc_macro2::TokenStream;
use prost_reflect::{MessageDescriptor, MethodDescriptor};
use quote::{format_ident, quote};

use crate::expr::{self, Type};
use crate::names::{rust_field_ident, rust_type_ident};
use crate::schema::{ARGS_SUFFIX, PoolSchema};

/// Paths to Rust items from one package's module.
pub(super) struct Paths {
    package: String,
    depth: usize,
}

impl Paths {
    pub(super) fn new(package: &str) -> Self {
        let depth = if package.is_empty() {
            0
        } else {
            package.split('.').count()
        };
        Self {
            package: package.to_owned(),
            depth,
        }
    }

    pub(super) fn root(&self) -> TokenStream {
        let supers = (0..self.depth).map(|_| quote!(super::));
        quote!(#(#supers)*)
    }

    pub(super) fn package_path(&self, package: &str) -> TokenStream {
        // Items of the package being emitted are named directly.
        if package == self.package {
            return quote!();
        }
        let root = self.root();
        let segments = package
            .split('.')
            .filter(|s| !s.is_empty())
            .map(|s| format_ident!("{}", rust_field_ident(s)));
        quote!(#root #(#segments::)*)
    }

    /// The Rust path of a message (or of a synthetic argument struct).
    pub(super) fn message(&self, full_name: &str, schema: &PoolSchema) -> TokenStream {
        if let Some(message) = full_name.strip_suffix(ARGS_SUFFIX)
            && let Some(descriptor) = schema.pool().get_message_by_name(message)
        {
            let package = self.package_path(descriptor.package_name());
            let ident = format_ident!("{}Args", rust_type_ident(descriptor.name()));
            return quote!(#package #ident);
        }
        match schema.pool().get_message_by_name(full_name) {
            Some(descriptor) => self.descriptor_path(&descriptor),
            None => quote!(()),
        }
    }

    pub(super) fn descriptor_path(&self, descriptor: &MessageDescriptor) -> TokenStream {
        let package = self.package_path(descriptor.package_name());
        // Nested messages live in a snake_case module named after their parent.
        let mut parents = Vec::new();
        let mut parent = descriptor.parent_message();
        while let Some(p) = parent {
            parents.push(format_ident!("{}", p.name().to_snake_case()));
            parent = p.parent_message();
        }
        parents.reverse();
        let ident = format_ident!("{}", rust_type_ident(descriptor.name()));
        quote!(#package #(#parents::)* #ident)
    }

    /// The module prost puts a message's nested types (and oneof enums) in: the message's path
    /// with its name in snake case.
    pub(super) fn nested_module(&self, descriptor: &MessageDescriptor) -> TokenStream {
        let package = self.package_path(descriptor.package_name());
        let mut modules = Vec::new();
        let mut message = Some(descriptor.clone());
        while let Some(m) = message {
            modules.push(format_ident!("{}", m.name().to_snake_case()));
            message = m.parent_message();
        }
        modules.reverse();
        quote!(#package #(#modules)::*)
    }

    pub(super) fn client(&self, method: &MethodDescriptor) -> (TokenStream, proc_macro2::Ident) {
        let service = method.parent_service();
        let package = self.package_path(service.package_name());
        let module = format_ident!("{}_client", service.name().to_snake_case());
        let client = format_ident!("{}Client", rust_type_ident(service.name()));
        let function = format_ident!("{}", rust_field_ident(&method.name().to_snake_case()));
        (quote!(#package #module::#client), function)
    }
}

/// The Rust type of values of an expression type.
pub(super) fn rust_type(ty: &Type, schema: &PoolSchema, paths: &Paths) -> TokenStream {
    match ty {
        Type::Int => quote!(i64),
        Type::Uint => quote!(u64),
        Type::Double => quote!(f64),
        Type::Bool => quote!(bool),
        Type::String => quote!(::std::string::String),
        Type::Bytes => quote!(::std::vec::Vec<u8>),
        Type::Enum(_) => quote!(i32),
        Type::Message(name) => paths.message(name, schema),
        Type::List(inner) => {
            let inner = rust_type(inner, schema, paths);
            quote!(::std::vec::Vec<#inner>)
        }
        Type::Map(k, v) => {
            let (k, v) = (rust_type(k, schema, paths), rust_type(v, schema, paths));
            quote!(::std::collections::BTreeMap<#k, #v>)
        }
        Type::Null | Type::Error => quote!(()),
    }
}

/// The schema as emission sees it: type paths relative to the package being emitted.
pub(super) struct EmitSchema<'a> {
    pub(super) schema: &'a PoolSchema,
    pub(super) paths: &'a Paths,
}

impl expr::Schema for EmitSchema<'_> {
    fn field(&self, message: &str, field: &str) -> Option<expr::FieldInfo> {
        self.schema.field(message, field)
    }

    fn field_names(&self, message: &str) -> Vec<String> {
        self.schema.field_names(message)
    }
}

impl expr::RustSchema for EmitSchema<'_> {
    fn message_path(&self, message: &str) -> Option<TokenStream> {
        Some(self.paths.message(message, self.schema))
    }

    fn oneof_variant(&self, message: &str, field: &expr::FieldInfo) -> Option<TokenStream> {
        let expr::Cardinality::Oneof { oneof, .. } = &field.cardinality else {
            return None;
        };
        let parent = self.schema.pool().get_message_by_name(message)?;
        let module = self.paths.nested_module(&parent);
        let enumeration = format_ident!("{}", rust_type_ident(oneof));
        let variant = format_ident!("{}", rust_type_ident(&field.name));
        Some(quote!(#module::#enumeration::#variant))
    }
}

pub(super) fn emit_expr(
    checked: &expr::Checked,
    env: &expr::Env,
    schema: &PoolSchema,
    paths: &Paths,
) -> TokenStream {
    expr::emit(checked, env, &EmitSchema { schema, paths })
}
