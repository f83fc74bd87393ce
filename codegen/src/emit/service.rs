//! One `<Service>Composer` per edge service: the tonic server trait, each method running its response message's resolver under an edge call.

use std::collections::{BTreeMap, BTreeSet};

use heck::ToSnakeCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::paths::Paths;
use super::tokens::{compose, duration_tokens, optional};
use crate::model::*;
use crate::names::{composer_name, resolvers_trait_name};
use crate::names::{rust_field_ident, rust_type_ident};

pub(super) fn emit_service(service: &EdgeService, model: &Model, paths: &Paths<'_>) -> TokenStream {
    let c = compose();
    let descriptor = &service.descriptor;
    let name = rust_type_ident(descriptor.name());
    let composer = format_ident!("{}", composer_name(descriptor.name()));
    let server_module = paths.server_module(descriptor.name());
    let server = format_ident!("{name}Server");
    let trait_name = format_ident!("{name}");
    let doc = format!(
        " The generated `{}` edge service: each method composes its response from downstream calls, as the proto's `mosaic.v1` rules say.",
        descriptor.full_name()
    );
    let forwarded = forwarded_headers(service, model);
    let methods = service.methods.iter().map(|method| {
        let m = &method.descriptor;
        let function = format_ident!("{}", rust_field_ident(&m.name().to_snake_case()));
        let input = paths.descriptor_path(&m.input());
        let output = paths.descriptor_path(&m.output());
        let resolver = paths.resolver(&method.composed);
        let full = format!("{}/{}", descriptor.full_name(), m.name());
        let timeout = optional(method.timeout.map(duration_tokens));
        // The method answers with its composed message, one field of it, or nothing.
        let answer = if method.composed.full_name() == m.output().full_name() {
            quote!(call.respond(body).await)
        } else if let Some(field) = &method.response_field {
            let field = format_ident!("{}", rust_field_ident(field.name()));
            quote!(call.respond(async { Ok(body.await?.#field.unwrap_or_default()) }).await)
        } else {
            quote!(call.respond(async { body.await.map(|_| ()) }).await)
        };
        // The edge request headers the calls forward, picked before the request is consumed.
        let (pick, scoped) = if forwarded.is_empty() {
            (quote!(), quote!())
        } else {
            (
                quote!(let incoming = #c::pick_incoming(request.metadata(), &[#(#forwarded),*]);),
                quote!(let body = #c::with_incoming(incoming, body);),
            )
        };
        let custom = paths
            .custom_param(method.composed.full_name())
            .map(|_| quote!(, self.custom.clone()));
        quote! {
            async fn #function(
                &self,
                request: #c::Request<#input>,
            ) -> Result<#c::Response<#output>, #c::Status> {
                let call = #c::EdgeCall::start(&request, #full, #timeout);
                #pick
                let input = #c::Arc::new(request.into_inner());
                let body = #resolver(call, self.downstreams.clone(), input #custom);
                #scoped
                #answer
            }
        }
    });
    let mut called: Vec<String> = called_services(service, model);
    called.sort();
    called.dedup();
    let items = custom_items(service, model);
    let composer_struct = if items.is_empty() {
        quote! {
            #[doc = #doc]
            #[derive(Clone, Debug)]
            pub struct #composer {
                downstreams: #c::Downstreams,
            }

            impl #composer {
                /// A composer calling downstream services through `downstreams`.
                pub fn new(downstreams: #c::Downstreams) -> Self {
                    Self { downstreams }
                }
            }
        }
    } else {
        let resolvers = format_ident!("{}", resolvers_trait_name(descriptor.name()));
        let composer_name = composer.to_string();
        let trait_doc = format!(
            " What Rust computes in the compositions of `{}`: one method per `custom` step, field and message. The composer takes an implementation.",
            descriptor.full_name()
        );
        let trait_methods = items
            .iter()
            .map(|(plan, custom)| custom_signature(plan, custom, paths));
        quote! {
            #[doc = #trait_doc]
            #[#c::async_trait]
            pub trait #resolvers: Send + Sync + 'static {
                #(#trait_methods)*
            }

            #[doc = #doc]
            #[derive(Clone)]
            pub struct #composer {
                downstreams: #c::Downstreams,
                custom: #c::Arc<dyn #resolvers>,
            }

            impl #composer {
                /// A composer calling downstream services through `downstreams`, with the
                /// custom items of its compositions computed by `resolvers`.
                pub fn new(downstreams: #c::Downstreams, resolvers: impl #resolvers) -> Self {
                    Self {
                        downstreams,
                        custom: #c::Arc::new(resolvers),
                    }
                }
            }

            impl ::core::fmt::Debug for #composer {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct(#composer_name)
                        .field("downstreams", &self.downstreams)
                        .finish_non_exhaustive()
                }
            }
        }
    };
    quote! {
        #composer_struct

        impl #c::Composer for #composer {
            const DOWNSTREAM_SERVICES: &'static [&'static str] = &[#(#called),*];

            type Server = #server_module::#server<Self>;

            fn into_server(self) -> Self::Server {
                #server_module::#server::new(self)
            }
        }

        #[#c::async_trait]
        impl #server_module::#trait_name for #composer {
            #(#methods)*
        }
    }
}

/// The downstream services reachable from a service's methods, through every message built.
pub(super) fn called_services(service: &EdgeService, model: &Model) -> Vec<String> {
    calls(service, model)
        .iter()
        .map(|call| call.method.parent_service().full_name().to_owned())
        .collect()
}

/// The edge request headers that calls made for `service` forward, sorted, each once.
fn forwarded_headers(service: &EdgeService, model: &Model) -> Vec<String> {
    let mut names: Vec<String> = calls(service, model)
        .iter()
        .flat_map(|call| &call.metadata)
        .filter_map(|entry| match &entry.value {
            MetadataSource::Forward(from) => Some(from.clone()),
            MetadataSource::Expression(_) => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every downstream call the compositions of `service` make, nested messages included.
fn calls<'m>(service: &EdgeService, model: &'m Model) -> Vec<&'m CallPlan> {
    let plans: BTreeMap<&str, &MessagePlan> = model
        .messages
        .iter()
        .map(|plan| (plan.descriptor.full_name(), plan))
        .collect();
    let mut calls = Vec::new();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = service
        .methods
        .iter()
        .map(|m| m.composed.full_name().to_owned())
        .collect();
    while let Some(name) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(plan) = plans.get(name.as_str()) else {
            continue;
        };
        for step in &plan.steps {
            let (call, message) = match &step.body {
                StepBody::Call(call) => (Some(call), None),
                StepBody::Message(m) => (None, Some(m)),
                StepBody::Map(map) => match &map.body {
                    MapBody::Call(call) => (Some(&**call), None),
                    MapBody::Message(m) => (None, Some(&**m)),
                    MapBody::By(_) => (None, None),
                },
                StepBody::By(_)
                | StepBody::Validation(_)
                | StepBody::Log(_)
                | StepBody::Custom(_)
                | StepBody::Switch(_) => (None, None),
            };
            if let Some(call) = call {
                calls.push(call);
            }
            if let Some(m) = message {
                stack.push(m.target.full_name().to_owned());
            }
        }
    }
    calls
}

/// The custom items of the compositions of `service`, in message order.
pub(super) fn custom_items<'m>(
    service: &EdgeService,
    model: &'m Model,
) -> Vec<(&'m MessagePlan, &'m CustomPlan)> {
    let mut items = Vec::new();
    for plan in &model.messages {
        if plan
            .custom_service
            .as_ref()
            .is_none_or(|s| s.full_name() != service.descriptor.full_name())
        {
            continue;
        }
        for step in &plan.steps {
            if let StepBody::Custom(custom) = &step.body {
                items.push((plan, custom));
            }
        }
        for field in &plan.fields {
            if let FieldSource::Custom(custom) = &field.source {
                items.push((plan, custom));
            }
        }
        if let Some(custom) = &plan.custom {
            items.push((plan, custom));
        }
    }
    items
}

/// One method of a `Resolvers` trait: `$` and the steps read, by reference, to the value.
fn custom_signature(plan: &MessagePlan, custom: &CustomPlan, paths: &Paths<'_>) -> TokenStream {
    let c = compose();
    let descriptor = &plan.descriptor;
    let method = paths.custom_method(descriptor.full_name(), &custom.item);
    let input = match &plan.input {
        Input::Request(request) => paths.descriptor_path(request),
        Input::Args(_) => {
            let ident = paths.args_ident(descriptor);
            let prefix = paths.composition_path(descriptor.package_name());
            quote!(#prefix #ident)
        }
    };
    let params = custom.reads.iter().map(|&read| {
        let step = &plan.steps[read];
        let name = step.name.clone().unwrap_or_default();
        let ident = format_ident!("{}", crate::resolve::step_ident(&name));
        let ty = paths.rust_type(&step.ty);
        quote!(#ident: &#ty)
    });
    let output = paths.rust_type(&custom.ty);
    let what = match &custom.item {
        CustomItem::Step(name) => format!("step `{name}` of `{}`", descriptor.full_name()),
        CustomItem::Field(name) => format!("field `{name}` of `{}`", descriptor.full_name()),
        CustomItem::Message => format!("`{}`, whole", descriptor.full_name()),
    };
    let doc = format!(" Computes {what}.");
    quote! {
        #[doc = #doc]
        async fn #method(&self, input: &#input, #(#params),*) -> Result<#output, #c::Status>;
    }
}
