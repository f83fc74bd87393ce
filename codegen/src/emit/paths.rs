//! Names and paths of Rust items, as seen from the composition module of the package being
//! emitted, and the schema as emission sees it.
//!
//! Each package's generated code lives in a `composition` module inside the package's module
//! (beside prost's types). From there, the package's own types are `super::Type`; another
//! package is reached through one `use` alias per package (`use super::super::demo::users::v1
//! as users_v1;`), written once at the top of the module, so code reads `users_v1::User`.
//! Well-known types are prost's: `::prost_types::Timestamp`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use heck::ToSnakeCase;
use proc_macro2::{Ident, TokenStream};
use prost_reflect::{MessageDescriptor, MethodDescriptor};
use quote::{format_ident, quote};

use super::tokens::compose;
use crate::expr::{self, Type};
use crate::model::{CustomItem, FieldSource, Model, StepBody};
use crate::names::{
    composer_name, enum_variant_ident, resolvers_trait_name, rust_field_ident, rust_type_ident,
};
use crate::schema::{ARGS_SUFFIX, PoolSchema};

/// The module each package's composition code is emitted in.
pub const COMPOSITION_MODULE: &str = "composition";

/// The package of prost's well-known types, which `prost_types` provides.
const WELL_KNOWN: &str = "google.protobuf";

/// The well-known message prost maps to `()`.
pub(super) const EMPTY: &str = "google.protobuf.Empty";

/// Names the generator gives its own items, unique within each package: the resolver and the
/// argument struct of every message with rules, and the alias of every package.
pub(super) struct Names {
    resolvers: HashMap<String, String>,
    args: HashMap<String, String>,
    aliases: BTreeMap<String, String>,
    conversions: HashMap<(String, String), String>,
    /// The method of each custom item in its service's `Resolvers` trait, by message and item.
    custom_methods: HashMap<(String, CustomItem), String>,
    /// Each message whose resolver takes the `Resolvers` implementation, with its service.
    custom_services: HashMap<String, prost_reflect::ServiceDescriptor>,
    /// The `$env` names of each edge service with deployment values, by full name.
    deployments: HashMap<String, Vec<String>>,
}

impl Names {
    pub(super) fn new(model: &Model, schema: &PoolSchema) -> Self {
        let mut resolvers = HashMap::new();
        let mut args = HashMap::new();
        let mut taken: HashMap<String, BTreeSet<String>> = HashMap::new();
        // Argument structs may be re-exported beside prost's types: no name of those.
        for message in schema
            .pool()
            .all_messages()
            .filter(|m| m.parent_message().is_none())
        {
            taken
                .entry(message.package_name().to_owned())
                .or_default()
                .insert(rust_type_ident(message.name()));
        }
        for plan in &model.messages {
            let descriptor = &plan.descriptor;
            let taken = taken
                .entry(descriptor.package_name().to_owned())
                .or_default();
            // `Outer.Inner` is `resolve_outer_inner` and `OuterInnerArgs`.
            let path = relative_name(descriptor);
            let snake = path.replace('.', "_").to_snake_case();
            let camel: String = path.split('.').map(rust_type_ident).collect();
            resolvers.insert(
                descriptor.full_name().to_owned(),
                unique(format!("resolve_{snake}"), taken),
            );
            args.insert(
                descriptor.full_name().to_owned(),
                unique(format!("{camel}Args"), taken),
            );
        }
        // Conversions are defined in each package that uses them: unique in every package.
        let mut conversions = HashMap::new();
        let mut all_taken: BTreeSet<String> = taken.values().flatten().cloned().collect();
        let pairs = model
            .enum_conversions
            .iter()
            .map(|c| (c.from.full_name(), c.to.name(), c.to.full_name()))
            .chain(
                model
                    .message_conversions
                    .iter()
                    .map(|c| (c.from.full_name(), c.to.name(), c.to.full_name())),
            );
        for (from, to_name, to) in pairs {
            let name = format!(
                "{}_from_{}",
                to_name.to_snake_case(),
                from.replace('.', "_").to_snake_case()
            );
            conversions.insert(
                (from.to_owned(), to.to_owned()),
                unique(name, &mut all_taken),
            );
        }
        for service in &model.services {
            let taken = taken
                .entry(service.descriptor.package_name().to_owned())
                .or_default();
            taken.insert(composer_name(service.descriptor.name()));
            if service.deployment.is_some() {
                taken.insert(crate::names::deployment_struct_name(
                    service.descriptor.name(),
                ));
            }
        }
        // A package is named by the shortest suffix of its segments that no other package of
        // the pool shares (with its version, when it ends in one): `demo.users.v1` is
        // `users_v1`.
        let packages: BTreeSet<String> = schema
            .pool()
            .files()
            .map(|f| f.package_name().to_owned())
            .filter(|p| !p.is_empty() && p != WELL_KNOWN)
            .collect();
        let mut aliases = BTreeMap::new();
        let reserved: BTreeSet<String> = taken.values().flatten().cloned().collect();
        for package in &packages {
            let segments: Vec<&str> = package.split('.').collect();
            let minimum = if segments.last().is_some_and(|s| is_version(s)) {
                2
            } else {
                1
            };
            let mut alias = String::new();
            for length in minimum.min(segments.len())..=segments.len() {
                let suffix = segments[segments.len() - length..].join(".");
                let shared = packages
                    .iter()
                    .filter(|other| *other == &suffix || other.ends_with(&format!(".{suffix}")))
                    .count();
                alias = suffix.replace('.', "_").to_snake_case();
                if shared == 1 {
                    break;
                }
            }
            let alias = rust_field_ident(&alias);
            let alias =
                if alias.starts_with("r#") || alias == "compose" || reserved.contains(&alias) {
                    format!("{}_pkg", alias.trim_start_matches("r#"))
                } else {
                    alias
                };
            aliases.insert(package.clone(), alias);
        }
        // Custom methods are unique within their service's trait.
        let mut custom_methods = HashMap::new();
        let mut custom_services = HashMap::new();
        let mut methods_taken: HashMap<String, BTreeSet<String>> = HashMap::new();
        for plan in &model.messages {
            let Some(service) = &plan.custom_service else {
                continue;
            };
            let message = plan.descriptor.full_name().to_owned();
            custom_services.insert(message.clone(), service.clone());
            let taken = methods_taken
                .entry(service.full_name().to_owned())
                .or_default();
            let base = relative_name(&plan.descriptor)
                .replace('.', "_")
                .to_snake_case();
            let items = plan
                .steps
                .iter()
                .filter_map(|s| match &s.body {
                    StepBody::Custom(custom) => Some(custom.item.clone()),
                    _ => None,
                })
                .chain(plan.fields.iter().filter_map(|f| match &f.source {
                    FieldSource::Custom(custom) => Some(custom.item.clone()),
                    _ => None,
                }))
                .chain(plan.custom.as_ref().map(|c| c.item.clone()));
            for item in items {
                let name = match &item {
                    CustomItem::Step(name) | CustomItem::Field(name) => {
                        format!("{base}_{}", name.to_snake_case())
                    }
                    CustomItem::Message => base.clone(),
                };
                let name = rust_field_ident(&unique(name, taken));
                custom_methods.insert((message.clone(), item), name);
            }
        }
        let deployments = model
            .services
            .iter()
            .filter_map(|service| {
                let names = service
                    .deployment
                    .as_ref()?
                    .names()
                    .map(|(name, _)| name.to_owned())
                    .collect();
                Some((service.descriptor.full_name().to_owned(), names))
            })
            .collect();
        Self {
            resolvers,
            args,
            aliases,
            conversions,
            custom_methods,
            custom_services,
            deployments,
        }
    }
}

/// `name`, or `name_2`, `name_3`, ... (`Name2` for a type name) when it is taken; then taken.
fn unique(name: String, taken: &mut BTreeSet<String>) -> String {
    let separator = if name.starts_with(char::is_uppercase) {
        ""
    } else {
        "_"
    };
    let mut candidate = name.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{name}{separator}{n}");
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

fn is_version(segment: &str) -> bool {
    segment
        .strip_prefix('v')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// A message's name relative to its package: `Outer.Inner`.
fn relative_name(descriptor: &MessageDescriptor) -> String {
    let package = descriptor.package_name();
    let full = descriptor.full_name();
    match full.strip_prefix(package) {
        Some(rest) if !package.is_empty() => rest.trim_start_matches('.').to_owned(),
        _ => full.to_owned(),
    }
}

/// Paths to Rust items from one package's composition module. Records which other packages
/// it names, for the module's `use` aliases.
pub(super) struct Paths<'a> {
    package: String,
    names: &'a Names,
    schema: &'a PoolSchema,
    used: RefCell<BTreeSet<String>>,
    conversions: RefCell<BTreeSet<(String, String)>>,
}

impl<'a> Paths<'a> {
    pub(super) fn new(package: &str, names: &'a Names, schema: &'a PoolSchema) -> Self {
        Self {
            package: package.to_owned(),
            names,
            schema,
            used: RefCell::new(BTreeSet::new()),
            conversions: RefCell::new(BTreeSet::new()),
        }
    }

    /// The function converting values of enum or message `from` into `to` (full names), which
    /// the module then defines; `None` if the model has no such conversion.
    pub(super) fn conversion(&self, from: &str, to: &str) -> Option<TokenStream> {
        let name = self
            .names
            .conversions
            .get(&(from.to_owned(), to.to_owned()))?;
        self.conversions
            .borrow_mut()
            .insert((from.to_owned(), to.to_owned()));
        let ident = format_ident!("{name}");
        Some(quote!(#ident))
    }

    /// The conversions named so far, as (from, to) full names.
    pub(super) fn conversions(&self) -> Vec<(String, String)> {
        self.conversions.borrow().iter().cloned().collect()
    }

    /// The name of a conversion function.
    pub(super) fn conversion_ident(&self, from: &str, to: &str) -> Option<Ident> {
        let name = self
            .names
            .conversions
            .get(&(from.to_owned(), to.to_owned()))?;
        Some(format_ident!("{name}"))
    }

    /// The `use` declarations of the packages named so far, in package order.
    pub(super) fn uses(&self) -> Vec<TokenStream> {
        let depth = self.package.split('.').filter(|s| !s.is_empty()).count();
        // From the composition module: one `super` to its package, one per package segment.
        let supers: Vec<TokenStream> = (0..=depth).map(|_| quote!(super)).collect();
        self.used
            .borrow()
            .iter()
            .filter_map(|package| {
                let alias = format_ident!("{}", self.names.aliases.get(package)?);
                let segments = package
                    .split('.')
                    .map(|s| format_ident!("{}", rust_field_ident(s)));
                Some(quote!(use #(#supers)::* #(::#segments)* as #alias;))
            })
            .collect()
    }

    /// The path prefix of items of `package`'s prost module (`super::`, `users_v1::`,
    /// `::prost_types::`).
    fn package_prefix(&self, package: &str) -> TokenStream {
        if package == self.package {
            return quote!(super::);
        }
        if package == WELL_KNOWN {
            return quote!(::prost_types::);
        }
        match self.names.aliases.get(package) {
            Some(alias) => {
                self.used.borrow_mut().insert(package.to_owned());
                let alias = format_ident!("{alias}");
                quote!(#alias::)
            }
            // A package without files has no types: unreachable for a resolved model.
            None => quote!(super::),
        }
    }

    /// The path prefix of items of `package`'s composition module (empty for this one).
    /// The path of a package's composition module from this one, ending in `::` (empty for
    /// this package's own).
    pub(super) fn composition_path(&self, package: &str) -> TokenStream {
        self.composition_prefix(package)
    }

    fn composition_prefix(&self, package: &str) -> TokenStream {
        if package == self.package {
            return quote!();
        }
        let prefix = self.package_prefix(package);
        let module = format_ident!("{COMPOSITION_MODULE}");
        quote!(#prefix #module::)
    }

    /// The resolver of a message with rules.
    /// A path, not a bare name, so that no step named like the resolver can shadow it.
    pub(super) fn resolver(&self, message: &MessageDescriptor) -> TokenStream {
        let ident = self.resolver_ident(message);
        if message.package_name() == self.package {
            return quote!(self::#ident);
        }
        let prefix = self.composition_prefix(message.package_name());
        quote!(#prefix #ident)
    }

    /// The resolver's name in its own module.
    pub(super) fn resolver_ident(&self, message: &MessageDescriptor) -> Ident {
        let name = self
            .names
            .resolvers
            .get(message.full_name())
            .cloned()
            .unwrap_or_else(|| format!("resolve_{}", message.name().to_snake_case()));
        format_ident!("{name}")
    }

    /// The argument struct's name in its own module.
    pub(super) fn args_ident(&self, message: &MessageDescriptor) -> Ident {
        let name = self
            .names
            .args
            .get(message.full_name())
            .cloned()
            .unwrap_or_else(|| format!("{}Args", rust_type_ident(message.name())));
        format_ident!("{name}")
    }

    /// The Rust path of a message (or of a synthetic argument struct).
    pub(super) fn message(&self, full_name: &str) -> TokenStream {
        if let Some(message) = full_name.strip_suffix(ARGS_SUFFIX)
            && let Some(descriptor) = self.schema.pool().get_message_by_name(message)
        {
            let prefix = self.composition_prefix(descriptor.package_name());
            let ident = self.args_ident(&descriptor);
            return quote!(#prefix #ident);
        }
        match self.schema.pool().get_message_by_name(full_name) {
            Some(descriptor) => self.descriptor_path(&descriptor),
            None => quote!(()),
        }
    }

    /// The path of a message's prost struct (`()` for `google.protobuf.Empty`, as prost has it).
    pub(super) fn descriptor_path(&self, descriptor: &MessageDescriptor) -> TokenStream {
        if descriptor.full_name() == EMPTY {
            return quote!(());
        }
        let package = self.package_prefix(descriptor.package_name());
        // Nested messages live in a snake_case module named after their parent.
        let mut parents = Vec::new();
        let mut parent = descriptor.parent_message();
        while let Some(p) = parent {
            parents.push(format_ident!(
                "{}",
                rust_field_ident(&p.name().to_snake_case())
            ));
            parent = p.parent_message();
        }
        parents.reverse();
        let ident = format_ident!("{}", rust_type_ident(descriptor.name()));
        quote!(#package #(#parents::)* #ident)
    }

    /// The path of an enum's prost type.
    pub(super) fn enum_path(&self, descriptor: &prost_reflect::EnumDescriptor) -> TokenStream {
        let package = self.package_prefix(descriptor.package_name());
        let mut parents = Vec::new();
        let mut parent = descriptor.parent_message();
        while let Some(p) = parent {
            parents.push(format_ident!(
                "{}",
                rust_field_ident(&p.name().to_snake_case())
            ));
            parent = p.parent_message();
        }
        parents.reverse();
        let ident = format_ident!("{}", rust_type_ident(descriptor.name()));
        quote!(#package #(#parents::)* #ident)
    }

    /// The module prost puts a message's nested types (and oneof enums) in: the message's path
    /// with its name in snake case.
    fn nested_module(&self, descriptor: &MessageDescriptor) -> TokenStream {
        let package = self.package_prefix(descriptor.package_name());
        let mut modules = Vec::new();
        let mut message = Some(descriptor.clone());
        while let Some(m) = message {
            modules.push(format_ident!(
                "{}",
                rust_field_ident(&m.name().to_snake_case())
            ));
            message = m.parent_message();
        }
        modules.reverse();
        quote!(#package #(#modules)::*)
    }

    /// The tonic client of a method's service, and the client's function for the method.
    pub(super) fn client(&self, method: &MethodDescriptor) -> (TokenStream, Ident) {
        let service = method.parent_service();
        let package = self.package_prefix(service.package_name());
        let module = format_ident!("{}_client", service.name().to_snake_case());
        let client = format_ident!("{}Client", rust_type_ident(service.name()));
        let function = format_ident!("{}", rust_field_ident(&method.name().to_snake_case()));
        (quote!(#package #module::#client), function)
    }

    /// The tonic server module of an edge service.
    /// The method computing a custom item of `message` (a full name).
    pub(super) fn custom_method(&self, message: &str, item: &CustomItem) -> TokenStream {
        match self
            .names
            .custom_methods
            .get(&(message.to_owned(), item.clone()))
        {
            Some(name) => {
                let ident = format_ident!("{name}");
                quote!(#ident)
            }
            None => quote!(::core::compile_error!(
                "mosaic: a custom item has no method"
            )),
        }
    }

    /// Whether `message` (a full name) has custom items of its own, whose methods take its
    /// input (so its argument struct is public).
    pub(super) fn has_custom_items(&self, message: &str) -> bool {
        self.names
            .custom_methods
            .keys()
            .any(|(owner, _)| owner == message)
    }

    /// The `Resolvers` trait whose implementation the resolver of `message` (a full name)
    /// takes, as the type of that parameter; `None` when it takes none.
    pub(super) fn custom_param(&self, message: &str) -> Option<TokenStream> {
        let service = self.names.custom_services.get(message)?;
        let prefix = self.composition_prefix(service.package_name());
        let ident = format_ident!("{}", resolvers_trait_name(service.name()));
        let c = compose();
        Some(quote!(#c::Arc<dyn #prefix #ident>))
    }

    /// The `$env` names of edge service `service` (a full name).
    pub(super) fn deployment_names(&self, service: &str) -> &[String] {
        self.names
            .deployments
            .get(service)
            .map_or(&[], Vec::as_slice)
    }

    /// The struct of the deployment values of edge service `service`, as a path.
    pub(super) fn deployment_type(
        &self,
        service: &prost_reflect::ServiceDescriptor,
    ) -> TokenStream {
        let prefix = self.composition_prefix(service.package_name());
        let ident = format_ident!("{}", crate::names::deployment_struct_name(service.name()));
        quote!(#prefix #ident)
    }

    pub(super) fn server_module(&self, service: &str) -> TokenStream {
        let module = format_ident!("{}_server", service.to_snake_case());
        quote!(super::#module)
    }

    /// The Rust type of values of an expression type.
    pub(super) fn rust_type(&self, ty: &Type) -> TokenStream {
        match ty {
            Type::Int => quote!(i64),
            Type::Uint => quote!(u64),
            Type::Double => quote!(f64),
            Type::Bool => quote!(bool),
            Type::String => quote!(String),
            Type::Bytes => quote!(Vec<u8>),
            Type::Enum(_) => quote!(i32),
            Type::Message(name) => self.message(name),
            Type::List(inner) => {
                let inner = self.rust_type(inner);
                quote!(Vec<#inner>)
            }
            Type::Map(k, v) => {
                let (k, v) = (self.rust_type(k), self.rust_type(v));
                quote!(::std::collections::BTreeMap<#k, #v>)
            }
            Type::Optional(inner) => {
                let inner = self.rust_type(inner);
                quote!(Option<#inner>)
            }
            Type::Null | Type::Error => quote!(()),
        }
    }

    /// Emits an expression's value.
    pub(super) fn expr(&self, checked: &expr::Checked, env: &expr::Env) -> TokenStream {
        expr::emit(checked, env, self)
    }
}

impl expr::Schema for Paths<'_> {
    fn field(&self, message: &str, field: &str) -> Option<expr::FieldInfo> {
        self.schema.field(message, field)
    }

    fn field_names(&self, message: &str) -> Vec<String> {
        self.schema.field_names(message)
    }
}

impl expr::RustSchema for Paths<'_> {
    fn message_path(&self, message: &str) -> Option<TokenStream> {
        Some(self.message(message))
    }

    fn oneof_variant(&self, message: &str, field: &expr::FieldInfo) -> Option<TokenStream> {
        let expr::Cardinality::Oneof { oneof, .. } = &field.cardinality else {
            return None;
        };
        let parent = self.schema.pool().get_message_by_name(message)?;
        let module = self.nested_module(&parent);
        let enumeration = format_ident!("{}", rust_type_ident(oneof));
        let variant = format_ident!("{}", rust_type_ident(&field.name));
        Some(quote!(#module::#enumeration::#variant))
    }

    fn enum_variant(&self, enumeration: &str, value: &str) -> Option<TokenStream> {
        let descriptor = self.schema.pool().get_enum_by_name(enumeration)?;
        let number = descriptor.get_value_by_name(value)?.number();
        // prost keeps the first of aliased values (`allow_alias`).
        let first = descriptor.values().find(|v| v.number() == number)?;
        let path = self.enum_path(&descriptor);
        let variant = format_ident!("{}", enum_variant_ident(descriptor.name(), first.name()));
        Some(quote!(#path::#variant))
    }

    fn cel_path(&self) -> TokenStream {
        let c = compose();
        quote!(#c::cel)
    }
}
