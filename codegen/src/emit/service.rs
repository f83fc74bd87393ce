//! One `<Service>Composer` per edge service: the tonic server trait, each method running its response message's resolver under an edge call.

use std::collections::{BTreeMap, BTreeSet};

use heck::ToSnakeCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::paths::Paths;
use super::tokens::{compose, duration_tokens, optional};
use crate::model::*;
use crate::names::{composer_name, deployment_struct_name, resolvers_trait_name};
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
        let with_env = service
            .deployment
            .is_some()
            .then(|| quote!(let body = #c::with_deployment(self.env.clone(), body);));
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
                #with_env
                #answer
            }
        }
    });
    let mut called: Vec<String> = called_services(service, model);
    called.sort();
    called.dedup();
    let items = custom_items(service, model);
    let deployment = service
        .deployment
        .as_ref()
        .map(|plan| emit_deployment(service, plan, paths));
    let env_type = format_ident!("{}", deployment_struct_name(descriptor.name()));
    let mut fields = vec![quote!(downstreams: #c::Downstreams,)];
    let mut params = vec![quote!(downstreams: #c::Downstreams)];
    let mut inits = vec![quote!(downstreams,)];
    let mut doc_new = String::from(" A composer calling downstream services through `downstreams`");
    let mut trait_tokens = quote!();
    if !items.is_empty() {
        let resolvers = format_ident!("{}", resolvers_trait_name(descriptor.name()));
        let trait_doc = format!(
            " What Rust computes in the compositions of `{}`: one method per `custom` step, field and message. The composer takes an implementation.",
            descriptor.full_name()
        );
        let trait_methods = items
            .iter()
            .map(|(plan, custom)| custom_signature(plan, custom, paths));
        trait_tokens = quote! {
            #[doc = #trait_doc]
            #[#c::async_trait]
            pub trait #resolvers: Send + Sync + 'static {
                #(#trait_methods)*
            }
        };
        fields.push(quote!(custom: #c::Arc<dyn #resolvers>,));
        params.push(quote!(resolvers: impl #resolvers));
        inits.push(quote!(custom: #c::Arc::new(resolvers),));
        doc_new.push_str(", with the custom items of its compositions computed by `resolvers`");
    }
    let (output, answer) = if service.deployment.is_some() {
        fields.push(quote!(env: #c::Arc<#env_type>,));
        params.push(quote!(deployment: &#c::Deployment));
        inits.push(quote!(env: #c::Arc::new(#env_type::load(deployment)?),));
        doc_new.push_str(
            ", reading its deployment values (`$env`) from `deployment` once; fails, listing every problem, when one is missing or malformed",
        );
        (
            quote!(Result<Self, #c::DeploymentError>),
            quote!(Ok(Self { #(#inits)* })),
        )
    } else {
        (quote!(Self), quote!(Self { #(#inits)* }))
    };
    doc_new.push('.');
    let composer_name = composer.to_string();
    let composer_struct = quote! {
        #trait_tokens
        #deployment

        #[doc = #doc]
        #[derive(Clone)]
        pub struct #composer {
            #(#fields)*
        }

        impl #composer {
            #[doc = #doc_new]
            pub fn new(#(#params),*) -> #output {
                #answer
            }
        }

        impl ::core::fmt::Debug for #composer {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#composer_name)
                    .field("downstreams", &self.downstreams)
                    .finish_non_exhaustive()
            }
        }
    };
    let variables: Vec<&str> = service
        .deployment
        .iter()
        .flat_map(|plan| &plan.variables)
        .map(|v| v.name.as_str())
        .collect();
    let deployment_values = (!variables.is_empty())
        .then(|| quote!(const DEPLOYMENT_VALUES: &'static [&'static str] = &[#(#variables),*];));
    quote! {
        #composer_struct

        impl #c::Composer for #composer {
            const DOWNSTREAM_SERVICES: &'static [&'static str] = &[#(#called),*];
            #deployment_values

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
                | StepBody::Switch(_)
                | StepBody::ResponseMetadata(_) => (None, None),
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

/// The struct of an edge service's deployment values, and its `load`: the variables read once,
/// then the values computed from them, in order, with the validations among them.
fn emit_deployment(service: &EdgeService, plan: &DeploymentPlan, paths: &Paths<'_>) -> TokenStream {
    let c = compose();
    let descriptor = &service.descriptor;
    let ident = format_ident!("{}", deployment_struct_name(descriptor.name()));
    let service_name = descriptor.full_name();
    let field = |name: &str| format_ident!("{}", crate::resolve::step_ident(name));
    let value = |name: &str| {
        format_ident!(
            "value_{}",
            crate::resolve::step_ident(name).trim_start_matches("r#")
        )
    };
    let local = |name: &str| {
        format_ident!(
            "mosaic_env_{}",
            crate::resolve::step_ident(name).trim_start_matches("r#")
        )
    };
    let mut struct_fields = Vec::new();
    let mut reads = Vec::new();
    let mut env = crate::expr::Env::new();
    let mut computed = Vec::new();
    for variable in &plan.variables {
        let name = &variable.name;
        let (f, v, l) = (field(name), value(name), local(name));
        let ty = paths.rust_type(&variable.ty);
        let from = &variable.from;
        let default = optional(variable.default.as_ref().map(|d| quote!(#d)));
        let doc =
            format!(" `$env.{name}`: the environment variable `{from}`, else `[env].{name}`.");
        struct_fields.push(quote!(#[doc = #doc] pub #f: #ty,));
        reads.push(quote!(let #v: #ty = reader.read(#name, #from, #default);));
        computed.push(quote!(let #l = &#v;));
        env.insert(format!("{}{name}", crate::resolve::ENV_PREFIX), quote!(#l));
    }
    for item in &plan.values {
        match item {
            DeploymentValue::Value { name, value: e } => {
                let (f, v, l) = (field(name), value(name), local(name));
                let ty = paths.rust_type(&e.checked.ty);
                let expression = paths.expr(&e.checked, &env);
                let doc = format!(" `$env.{name}`: `{}`, computed at start.", e.text);
                struct_fields.push(quote!(#[doc = #doc] pub #f: #ty,));
                computed.push(quote! {
                    let #v: #ty = #expression;
                    let #l = &#v;
                });
                env.insert(format!("{}{name}", crate::resolve::ENV_PREFIX), quote!(#l));
            }
            DeploymentValue::Validation { condition, message } => {
                let condition = crate::expr::emit_bool(&condition.checked, &env, paths);
                let message = paths.expr(&message.checked, &env);
                computed.push(quote! {
                    if #condition {
                        return Err(#c::Status::failed_precondition(#message));
                    }
                });
            }
        }
    }
    let names: Vec<&str> = plan
        .variables
        .iter()
        .map(|v| v.name.as_str())
        .chain(plan.values.iter().filter_map(|v| match v {
            DeploymentValue::Value { name, .. } => Some(name.as_str()),
            DeploymentValue::Validation { .. } => None,
        }))
        .collect();
    let moves = names.iter().map(|name| {
        let (f, v) = (field(name), value(name));
        quote!(#f: #v.clone(),)
    });
    let doc =
        format!(" The deployment values of `{service_name}`, read as `$env` by its compositions.");
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        pub struct #ident {
            #(#struct_fields)*
        }

        impl #ident {
            /// Reads the variables from `deployment` and computes the values, once; every
            /// missing or malformed variable is reported, and a validation that holds fails.
            pub fn load(deployment: &#c::Deployment) -> Result<Self, #c::DeploymentError> {
                let mut reader = deployment.reader(#service_name);
                #(#reads)*
                reader.finish()?;
                let computed = (|| -> Result<Self, #c::Status> {
                    #(#computed)*
                    Ok(Self { #(#moves)* })
                })();
                computed.map_err(|status| reader.computed(status))
            }
        }
    }
}
