//! The body of each step: a value, a downstream call, a built message, a map over a list, a validation.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::message::{Layout, await_all, caller_binding, live_reads};
use super::paths::{EmitSchema, Paths, emit_expr};
use super::service::resolver_ident;
use super::store::store_expression;
use super::tokens::{code_tokens, compose, duration_tokens};
use crate::expr::{self, Type};
use crate::model::*;
use crate::names::rust_field_ident;
use crate::resolve::step_ident;
use crate::schema::{ARGS_SUFFIX, PoolSchema};

pub(super) fn emit_step_body(
    plan: &MessagePlan,
    index: usize,
    layout: &Layout,
    env: &expr::Env,
    schema: &PoolSchema,
    paths: &Paths,
) -> TokenStream {
    let c = compose();
    let step = &plan.steps[index];
    let reads: Vec<usize> = live_reads(plan, index, &layout.prechecked).collect();
    let awaits = await_all(plan, &reads, layout, &[]);
    let guard = step.guard.as_ref().map(|g| {
        let condition = emit_expr(&g.checked, env, schema, paths);
        quote! {
            if !(#condition) {
                return ::core::result::Result::Ok(::core::default::Default::default());
            }
        }
    });
    let name = step.name.clone().unwrap_or_else(|| format!("#{index}"));
    let body = match &step.body {
        StepBody::By(e) => {
            let value = emit_expr(&e.checked, env, schema, paths);
            quote!(::core::result::Result::<_, #c::Status>::Ok(#value))
        }
        StepBody::Call(call) => emit_call(&name, call, env, schema, paths),
        StepBody::Message(m) => emit_message_call(m, env, schema, paths),
        StepBody::Map(map) => emit_map(&name, map, env, schema, paths),
        StepBody::Validation(v) => {
            let check = emit_validation(v, env, schema, paths);
            quote! { #check ::core::result::Result::<(), #c::Status>::Ok(()) }
        }
    };
    let caller = caller_binding(plan.steps[index].reads_caller);
    quote! {
        let input = &*input;
        #caller
        #awaits
        #guard
        #body
    }
}

pub(super) fn emit_validation(
    v: &ValidationPlan,
    env: &expr::Env,
    schema: &PoolSchema,
    paths: &Paths,
) -> TokenStream {
    let c = compose();
    let condition = emit_expr(&v.condition.checked, env, schema, paths);
    let message = emit_expr(&v.message.checked, env, schema, paths);
    let code = code_tokens(v.code);
    quote! {
        if #condition {
            return ::core::result::Result::Err(#c::Status::new(#code, #message));
        }
    }
}

pub(super) fn emit_call(
    step: &str,
    call: &CallPlan,
    env: &expr::Env,
    schema: &PoolSchema,
    paths: &Paths,
) -> TokenStream {
    let c = compose();
    let method = &call.method;
    let service = method.parent_service();
    let service_name = service.full_name();
    let full = format!("{service_name}/{}", method.name());
    let (client, function) = paths.client(method);
    let request_type = paths.descriptor_path(&method.input());
    let fields = call.request.iter().map(|(field, e)| {
        let ident = format_ident!("{}", rust_field_ident(field.name()));
        let value = store_expression(e, field, env, schema, paths);
        quote!(#ident: #value,)
    });
    let timeout = match call.timeout {
        Some(t) => {
            let duration = duration_tokens(t);
            quote!(::core::option::Option::Some(#duration))
        }
        None => quote!(::core::option::Option::None),
    };
    let defaults = method_defaults(&call.defaults);
    // Fields the rules leave out keep their defaults.
    let rest = (call.request.len() < method.input().fields().len())
        .then(|| quote!(..::core::default::Default::default()));
    quote! {
        let message = #request_type {
            #(#fields)*
            #rest
        };
        #c::call_downstream(
            &call,
            &downstreams,
            #service_name,
            &#c::CallSpec {
                step: #step,
                method: #full,
                timeout: #timeout,
                defaults: #defaults,
            },
            message,
            |channel, request| async move { #client::new(channel).#function(request).await },
        )
        .await
    }
}

/// The downstream method's resilience defaults from its proto, as a `MethodDefaults` literal.
pub(super) fn method_defaults(defaults: &CallDefaults) -> TokenStream {
    let c = compose();
    let idempotent = defaults.idempotent;
    let optional_duration = |d: Option<std::time::Duration>| match d {
        Some(d) => {
            let d = duration_tokens(d);
            quote!(::core::option::Option::Some(#d))
        }
        None => quote!(::core::option::Option::None),
    };
    let timeout = optional_duration(defaults.timeout);
    let hedge_delay = optional_duration(defaults.hedge_delay);
    let max_attempts = match defaults.max_attempts {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        #c::MethodDefaults {
            idempotent: #idempotent,
            timeout: #timeout,
            max_attempts: #max_attempts,
            hedge_delay: #hedge_delay,
        }
    }
}

pub(super) fn emit_message_call(
    m: &MessageCall,
    env: &expr::Env,
    schema: &PoolSchema,
    paths: &Paths,
) -> TokenStream {
    let c = compose();
    let resolver = resolver_ident(&m.target);
    let args_type = paths.message(&format!("{}{ARGS_SUFFIX}", m.target.full_name()), schema);
    let fields = m.args.iter().map(|(name, e)| {
        let ident = format_ident!("{}", rust_field_ident(name));
        let value = emit_expr(&e.checked, env, schema, paths);
        let value = match e.checked.ty {
            Type::Message(_) => quote!(::core::option::Option::Some(#value)),
            _ => value,
        };
        quote!(#ident: #value,)
    });
    quote! {
        let args = #args_type { #(#fields)* };
        #resolver(call, downstreams.clone(), #c::Arc::new(args)).await
    }
}

pub(super) fn emit_map(
    step: &str,
    map: &MapPlan,
    env: &expr::Env,
    schema: &PoolSchema,
    paths: &Paths,
) -> TokenStream {
    let c = compose();
    let iterator = format_ident!("{}", step_ident(&map.iterator));
    // Iterate the list where it is stored when the source is a plain path; clone otherwise.
    let src = match expr::emit_place(&map.src.checked, env, &EmitSchema { schema, paths }) {
        Some(place) => place,
        None => {
            let value = emit_expr(&map.src.checked, env, schema, paths);
            quote!(&#value)
        }
    };
    let mut inner = env.clone();
    inner.insert(&map.iterator, quote!(#iterator));
    let per_element = match &map.body {
        MapBody::By(e) => {
            let value = emit_expr(&e.checked, &inner, schema, paths);
            quote!(::core::result::Result::Ok(#value))
        }
        MapBody::Call(call) => emit_call(step, call, &inner, schema, paths),
        MapBody::Message(m) => emit_message_call(m, &inner, schema, paths),
    };
    quote! {
        // `mosaic_` names are reserved: no step or iterator can shadow them.
        let mosaic_items: &::std::vec::Vec<_> = #src;
        let downstreams = &downstreams;
        #c::map_ordered(mosaic_items.iter(), #c::DEFAULT_MAP_CONCURRENCY, move |#iterator| async move {
            #per_element
        })
        .await
    }
}
