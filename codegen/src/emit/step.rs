//! The body of each step: a value, a downstream call, a built message, a map over a list, a
//! validation. Each body is a block whose value is `Result<T, Status>`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::message::{
    Await, Layout, await_all, caller_binding, env_binding, metadata_slot, step_name,
};
use super::paths::{EMPTY, Paths};
use super::store::{Bound, guarded, is_oneof_member, oneof_fields, store_expression};
use super::tokens::{code_tokens, compose, duration_tokens, optional};
use crate::expr::{self, Type};
use crate::model::*;
use crate::names::rust_field_ident;
use crate::resolve::step_ident;
use crate::schema::ARGS_SUFFIX;

pub(super) fn emit_step_body(
    plan: &MessagePlan,
    index: usize,
    layout: &Layout,
    env: &expr::Env,
    paths: &Paths<'_>,
) -> TokenStream {
    let c = compose();
    let step = &plan.steps[index];
    let reads: Vec<usize> = layout
        .live_reads(plan, index)
        .filter(|read| !step.lazy.contains(read))
        .collect();
    let lazy: Vec<usize> = layout
        .live_reads(plan, index)
        .filter(|read| step.lazy.contains(read))
        .collect();
    let at = if layout.spawned[index] || layout.owned[index] {
        Await::Owned
    } else {
        Await::Borrowed
    };
    let awaits = await_all(plan, &reads, layout, at);
    let lazy = Lazy {
        plan,
        layout,
        at,
        steps: lazy,
    };
    // Validations and logs compute `()`, which clippy will not see passed as a default.
    let skipped = match step.body {
        StepBody::Validation(_) | StepBody::Log(_) => quote!(()),
        _ => quote!(Default::default()),
    };
    let guard = step.guard.as_ref().map(|g| {
        let condition = paths.expr(&g.checked, env);
        quote! {
            if !(#condition) {
                return Ok(#skipped);
            }
        }
    });
    // An unnamed step's failure names its method only ("call to … failed").
    let name = step.name.clone().unwrap_or_default();
    let body = match &step.body {
        StepBody::By(e) => {
            let value = paths.expr(&e.checked, env);
            quote!(Ok::<_, #c::Status>(#value))
        }
        StepBody::Call(call) => {
            let slot = call.captures_metadata.then(|| metadata_slot(index));
            let site = CallSite {
                downstreams: quote!(&downstreams),
                lazy: Some(&lazy),
                slot,
            };
            emit_call(&name, call, env, paths, site)
        }
        StepBody::ResponseMetadata(call) => {
            let slot = metadata_slot(*call);
            quote!(Ok::<_, #c::Status>(#slot.get()))
        }
        StepBody::Message(m) => emit_message_call(m, env, paths),
        StepBody::Map(map) => emit_map(&name, map, env, paths),
        StepBody::Log(log) => {
            let level = format_ident!("{}", log.level);
            let message = paths.expr(&log.message.checked, env);
            // Values are computed first, so the macro call stays short; `mosaic_` names
            // cannot clash with the user's.
            let values = log.fields.iter().map(|(name, e)| {
                let local = format_ident!("mosaic_{}", step_ident(name).trim_start_matches("r#"));
                let value = paths.expr(&e.checked, env);
                quote!(let #local = #value;)
            });
            let fields = log.fields.iter().map(|(name, e)| {
                let ident = format_ident!("{}", step_ident(name));
                let local = format_ident!("mosaic_{}", step_ident(name).trim_start_matches("r#"));
                match e.checked.ty {
                    Type::Int | Type::Uint | Type::Double | Type::Bool | Type::String => {
                        quote!(#ident = %#local,)
                    }
                    _ => quote!(#ident = ?#local,),
                }
            });
            quote! {
                let mosaic_message = #message;
                #(#values)*
                #c::tracing::#level!(target: "mosaic::composition", #(#fields)* "{}", mosaic_message);
                Ok::<(), #c::Status>(())
            }
        }
        StepBody::Validation(v) => {
            let check = emit_validation(v, env, paths);
            quote! { #check Ok::<(), #c::Status>(()) }
        }
        StepBody::Custom(custom) => emit_custom(plan, custom, env, paths),
        StepBody::Switch(switch) => {
            let cases = switch.cases.iter().map(|(condition, value)| {
                let condition = expr::emit_bool(&condition.checked, env, paths);
                let value = paths.expr(&value.checked, env);
                quote!(if #condition { #value } else)
            });
            let default = paths.expr(&switch.default.checked, env);
            quote!(Ok::<_, #c::Status>(#(#cases)* { #default }))
        }
    };
    let input = step.reads_input.then(|| quote!(let input = &*input;));
    let caller = caller_binding(step.reads_caller);
    let deployment = env_binding(plan, step.reads_env, paths);
    quote! {
        #input
        #caller
        #deployment
        #awaits
        #guard
        #body
    }
}

/// A call of the `Resolvers` implementation's method for `custom`, with `$` and its reads.
pub(super) fn emit_custom(
    plan: &MessagePlan,
    custom: &CustomPlan,
    env: &expr::Env,
    paths: &Paths<'_>,
) -> TokenStream {
    let method = paths.custom_method(plan.descriptor.full_name(), &custom.item);
    let reads = custom.reads.iter().map(|&read| {
        let name = step_name(plan, read);
        env.get(&name)
            .cloned()
            .unwrap_or_else(|| quote!(::core::compile_error!("mosaic: a read step is unbound")))
    });
    quote!(custom.#method(input, #(#reads),*).await)
}

pub(super) fn emit_validation(
    v: &ValidationPlan,
    env: &expr::Env,
    paths: &Paths<'_>,
) -> TokenStream {
    let c = compose();
    let condition = paths.expr(&v.condition.checked, env);
    let message = paths.expr(&v.message.checked, env);
    let code = code_tokens(v.code);
    if v.details.is_empty() {
        return quote! {
            if #condition {
                return Err(#c::Status::new(#code, #message));
            }
        };
    }
    let details = v.details.iter().map(|d| detail(d, env, paths));
    quote! {
        if #condition {
            let mut details = #c::ErrorDetails::new();
            #(#details)*
            return Err(#c::rejection(#code, #message, details));
        }
    }
}

/// The steps only a call step's error handlers read, awaited where a handler first needs
/// them: before the condition that reads one, or inside the handler whose action does, so a
/// fallback runs (and can fail) only when it is the answer.
struct Lazy<'a> {
    plan: &'a MessagePlan,
    layout: &'a Layout,
    at: Await<'a>,
    steps: Vec<usize>,
}

impl Lazy<'_> {
    /// Awaits the steps of `names` not yet in `awaited`, adding them.
    fn awaits(&self, names: &[String], awaited: &mut Vec<usize>) -> TokenStream {
        let steps: Vec<usize> = self
            .steps
            .iter()
            .copied()
            .filter(|&i| !awaited.contains(&i))
            .filter(|&i| {
                let name = step_name(self.plan, i);
                names.contains(&name)
            })
            .collect();
        awaited.extend(&steps);
        await_all(self.plan, &steps, self.layout, self.at)
    }
}

/// Where a call is emitted.
struct CallSite<'a> {
    /// The `&Downstreams` it goes through.
    downstreams: TokenStream,
    /// For a call step, what only its error handlers read.
    lazy: Option<&'a Lazy<'a>>,
    /// The slot its response metadata is captured in, for `response_metadata`.
    slot: Option<proc_macro2::Ident>,
}

/// A downstream call, as `site` says.
fn emit_call(
    step: &str,
    call: &CallPlan,
    env: &expr::Env,
    paths: &Paths<'_>,
    site: CallSite<'_>,
) -> TokenStream {
    let CallSite {
        downstreams,
        lazy,
        slot,
    } = site;
    let c = compose();
    let method = &call.method;
    let service = method.parent_service();
    let service_name = service.full_name();
    let full = format!("{service_name}/{}", method.name());
    let (client, function) = paths.client(method);
    let request_type = paths.descriptor_path(&method.input());
    let input = method.input();
    let mut fields: Vec<TokenStream> = call
        .request
        .iter()
        .filter(|(field, _, _)| !is_oneof_member(field))
        .map(|(field, e, condition)| {
            let ident = format_ident!("{}", rust_field_ident(field.name()));
            let value = store_expression(e, field, env, paths);
            let value = guarded(value, condition.as_ref(), env, paths);
            quote!(#ident: #value,)
        })
        .collect();
    let members: Vec<Bound<'_>> = call
        .request
        .iter()
        .filter(|(field, _, _)| is_oneof_member(field))
        .map(|(field, e, condition)| (field, e, condition.as_ref()))
        .collect();
    fields.extend(oneof_fields(&input, &members, false, env, paths));
    let struct_fields = input.fields().filter(|f| !is_oneof_member(f)).count()
        + input.oneofs().filter(|o| !o.is_synthetic()).count();
    let timeout = optional(call.timeout.map(duration_tokens));
    let defaults = method_defaults(&call.defaults);
    // Fields the rules leave out keep their defaults.
    let rest = (fields.len() < struct_fields).then(|| quote!(..Default::default()));
    let request = if method.input().full_name() == EMPTY {
        quote!(())
    } else {
        quote!(#request_type { #(#fields)* #rest })
    };
    // Metadata is computed once, before the first attempt, and added to every attempt.
    let (metadata, send) = if call.metadata.is_empty() {
        (
            quote!(),
            quote! {
                |channel, request| async move {
                    #client::new(channel).#function(request).await
                }
            },
        )
    } else {
        let label = if step.is_empty() { full.as_str() } else { step };
        let entries = call.metadata.iter().map(|entry| {
            let name = &entry.name;
            match &entry.value {
                MetadataSource::Forward(from) => quote!(metadata.forward(#name, #from);),
                MetadataSource::Expression(e) => {
                    if let Some(text) = e.checked.string_literal() {
                        return quote!(metadata.text(#label, #name, #text)?;);
                    }
                    let value = expr::emit_place(&e.checked, env, paths).unwrap_or_else(|| {
                        let value = paths.expr(&e.checked, env);
                        quote!(&#value)
                    });
                    if e.checked.ty == expr::Type::Bytes {
                        quote!(metadata.binary(#name, #value);)
                    } else {
                        quote!(metadata.text(#label, #name, #value)?;)
                    }
                }
            }
        });
        (
            quote! {
                let mut metadata = #c::Outgoing::new();
                #(#entries)*
            },
            quote! {
                |channel, mut request| {
                    metadata.apply(&mut request);
                    async move { #client::new(channel).#function(request).await }
                }
            },
        )
    };
    let call_tokens = match slot {
        Some(slot) => quote! {
            #c::call_downstream_capturing(&call, #downstreams, #service_name, &spec, request, &#slot, #send)
            .await
        },
        None => quote! {
            #c::call_downstream(&call, #downstreams, #service_name, &spec, request, #send)
            .await
        },
    };
    let result = if call.errors.is_empty() {
        call_tokens
    } else {
        // `mosaic-partial` names an unnamed step by its method.
        let label = if step.is_empty() { full.as_str() } else { step };
        let (handlers, last) = error_handlers(label, &call.errors, env, paths, lazy);
        let last = last.unwrap_or_else(|| quote!(Err(status)));
        let error_type = paths.message(CALL_ERROR);
        quote! {
            match #call_tokens {
                Ok(value) => Ok(value),
                Err(status) => {
                    let error: #error_type = #c::call_error(&status);
                    let error = &error;
                    #(#handlers)*
                    #last
                }
            }
        }
    };
    // Metadata of its own, sent or captured, makes a call unlike any other.
    let shareable = call.metadata.is_empty() && !call.captures_metadata;
    let (retry_items, retry) = match &call.retry {
        Some(retry) => (call_retry(retry, paths), quote!(Some(&MOSAIC_RETRY))),
        None => (quote!(), quote!(None)),
    };
    quote! {
        let request = #request;
        #metadata
        #retry_items
        let spec = #c::CallSpec {
            step: #step,
            method: #full,
            timeout: #timeout,
            defaults: #defaults,
            retry: #retry,
            shareable: #shareable,
        };
        #result
    }
}

/// A call's own retry policy, as the `static MOSAIC_RETRY` its spec points to, with its
/// condition as a function of the failed attempt's status.
fn call_retry(retry: &RetryPlan, paths: &Paths<'_>) -> TokenStream {
    let c = compose();
    let attempts = retry.attempts;
    let codes = retry.codes.iter().map(|&code| code_tokens(code));
    let initial = optional(retry.initial_backoff.map(duration_tokens));
    let max = optional(retry.max_backoff.map(duration_tokens));
    let multiplier = optional(retry.multiplier.map(|m| quote!(#m)));
    let (condition_fn, condition) = match &retry.condition {
        Some(condition) => {
            let env = expr::Env::new().with("error", quote!(error));
            let holds = paths.expr(&condition.checked, &env);
            let error_type = paths.message(CALL_ERROR);
            (
                quote! {
                    /// Whether the failed attempt is retried, after its code: the policy's `if`.
                    fn mosaic_retry_if(status: &#c::Status) -> bool {
                        let error: #error_type = #c::call_error(status);
                        let error = &error;
                        let holds = || -> Result<bool, #c::Status> { Ok(#holds) };
                        holds().unwrap_or(false)
                    }
                },
                quote!(Some(mosaic_retry_if)),
            )
        }
        None => (quote!(), quote!(None)),
    };
    quote! {
        #condition_fn
        static MOSAIC_RETRY: #c::CallRetry = #c::CallRetry {
            max_attempts: #attempts,
            codes: &[#(#codes),*],
            initial_backoff: #initial,
            max_backoff: #max,
            multiplier: #multiplier,
            condition: #condition,
        };
    }
}

/// The message `error` handlers read.
const CALL_ERROR: &str = "mosaic.v1.CallError";

/// One `if` per handler, in order, each ending the step (or the element) when it applies; and
/// the last handler's result when it always applies.
fn error_handlers(
    step: &str,
    handlers: &[ErrorHandlerPlan],
    env: &expr::Env,
    paths: &Paths<'_>,
    lazy: Option<&Lazy<'_>>,
) -> (Vec<TokenStream>, Option<TokenStream>) {
    // Awaited on the way through the handlers (by conditions); an action's awaits are inside
    // its branch, which returns.
    let mut awaited: Vec<usize> = Vec::new();
    let c = compose();
    let mut env = env.clone();
    env.insert("error", quote!(error));
    let mut out = Vec::new();
    for handler in handlers {
        // Each action as statements, then the step's (or element's) result.
        let (prelude, action) = match &handler.action {
            ErrorAction::Ignore => (quote!(#c::ignored(#step);), quote!(Ok(Default::default()))),
            ErrorAction::Fallback(value) => {
                let value = paths.expr(&value.checked, &env);
                (quote!(), quote!(Ok(#value)))
            }
            ErrorAction::Status(status) => {
                let code = code_tokens(status.code);
                let message = optional(
                    status
                        .message
                        .as_ref()
                        .map(|m| paths.expr(&m.checked, &env)),
                );
                let details: Vec<TokenStream> = status
                    .details
                    .iter()
                    .map(|d| detail(d, &env, paths))
                    .collect();
                let details = if details.is_empty() {
                    quote!(let details = #c::ErrorDetails::new();)
                } else {
                    quote! {
                        let mut details = #c::ErrorDetails::new();
                        #(#details)*
                    }
                };
                (
                    details,
                    quote!(Err(#c::handler_status(#code, #message, &status, details))),
                )
            }
            ErrorAction::Fail => (quote!(), quote!(Err(status))),
        };
        let before = lazy
            .map(|l| l.awaits(&handler.condition_reads, &mut awaited))
            .unwrap_or_default();
        let mut branch_awaited = awaited.clone();
        let inside = lazy
            .map(|l| l.awaits(&handler.action_reads, &mut branch_awaited))
            .unwrap_or_default();
        match &handler.condition {
            Some(condition) => {
                let condition = paths.expr(&condition.checked, &env);
                out.push(quote! {
                    #before
                    if #condition {
                        #inside
                        #prelude
                        return #action;
                    }
                });
            }
            // The resolver lets no handler follow one that always applies.
            None => {
                out.push(quote!(#before #inside #prelude));
                return (out, Some(action));
            }
        }
    }
    (out, None)
}

/// Adds one `google.rpc` detail to `details`.
fn detail(detail: &DetailPlan, env: &expr::Env, paths: &Paths<'_>) -> TokenStream {
    let text = |e: &Option<Expression>| match e {
        Some(e) => paths.expr(&e.checked, env),
        None => quote!(String::new()),
    };
    match detail {
        DetailPlan::ErrorInfo {
            reason,
            domain,
            metadata,
        } => {
            let (reason, domain) = (text(reason), text(domain));
            let entries = metadata.iter().map(|(key, value)| {
                let value = paths.expr(&value.checked, env);
                quote!((#key.to_owned(), #value))
            });
            quote! {
                details.set_error_info(#reason, #domain, ::std::collections::HashMap::from([#(#entries),*]));
            }
        }
        DetailPlan::LocalizedMessage { locale, message } => {
            let (locale, message) = (text(locale), text(message));
            quote!(details.set_localized_message(#locale, #message);)
        }
        DetailPlan::BadRequest(violations) => {
            let adds = violations.iter().map(|(field, description)| {
                let (field, description) = (text(field), text(description));
                quote!(details.add_bad_request_violation(#field, #description);)
            });
            quote!(#(#adds)*)
        }
        DetailPlan::PreconditionFailure(violations) => {
            let adds = violations.iter().map(|(kind, subject, description)| {
                let (kind, subject, description) = (text(kind), text(subject), text(description));
                quote!(details.add_precondition_failure_violation(#kind, #subject, #description);)
            });
            quote!(#(#adds)*)
        }
        DetailPlan::ResourceInfo {
            resource_type,
            resource_name,
            owner,
            description,
        } => {
            let (a, b, c, d) = (
                text(resource_type),
                text(resource_name),
                text(owner),
                text(description),
            );
            quote!(details.set_resource_info(#a, #b, #c, #d);)
        }
    }
}

/// The downstream method's resilience defaults from its proto, as a `MethodDefaults` literal.
fn method_defaults(defaults: &CallDefaults) -> TokenStream {
    let c = compose();
    let idempotent = defaults.idempotent;
    let timeout = optional(defaults.timeout.map(duration_tokens));
    let hedge_delay = optional(defaults.hedge_delay.map(duration_tokens));
    let max_attempts = optional(defaults.max_attempts.map(|n| quote!(#n)));
    quote! {
        #c::MethodDefaults {
            idempotent: #idempotent,
            timeout: #timeout,
            max_attempts: #max_attempts,
            hedge_delay: #hedge_delay,
        }
    }
}

fn emit_message_call(m: &MessageCall, env: &expr::Env, paths: &Paths<'_>) -> TokenStream {
    let c = compose();
    let resolver = paths.resolver(&m.target);
    let args_type = paths.message(&format!("{}{ARGS_SUFFIX}", m.target.full_name()));
    let fields = m.args.iter().map(|(name, e)| {
        let ident = format_ident!("{}", rust_field_ident(name));
        let value = paths.expr(&e.checked, env);
        let value = match e.checked.ty {
            Type::Message(_) => quote!(Some(#value)),
            _ => value,
        };
        quote!(#ident: #value,)
    });
    let custom = paths
        .custom_param(m.target.full_name())
        .map(|_| quote!(, custom.clone()));
    quote! {
        let args = #args_type { #(#fields)* };
        #resolver(call, downstreams.clone(), #c::Arc::new(args) #custom).await
    }
}

fn emit_map(step: &str, map: &MapPlan, env: &expr::Env, paths: &Paths<'_>) -> TokenStream {
    let c = compose();
    let iterator = format_ident!("{}", step_ident(&map.iterator));
    // Iterate the list where it is stored when the source is a plain path; clone otherwise.
    let src = match expr::emit_place(&map.src.checked, env, paths) {
        Some(place) => place,
        None => {
            let value = paths.expr(&map.src.checked, env);
            quote!(&#value)
        }
    };
    let mut inner = env.clone();
    inner.insert(&map.iterator, quote!(#iterator));
    let per_element = match &map.body {
        MapBody::By(e) => {
            let value = paths.expr(&e.checked, &inner);
            quote!(Ok(#value))
        }
        // `downstreams` is a reference in the closure (see below).
        MapBody::Call(call) => {
            let site = CallSite {
                downstreams: quote!(downstreams),
                lazy: None,
                slot: None,
            };
            emit_call(step, call, &inner, paths, site)
        }
        MapBody::Message(m) => emit_message_call(m, &inner, paths),
    };
    let downstreams =
        (!matches!(map.body, MapBody::By(_))).then(|| quote!(let downstreams = &downstreams;));
    let custom = match &map.body {
        MapBody::Message(m) if paths.custom_param(m.target.full_name()).is_some() => {
            Some(quote!(let custom = &custom;))
        }
        _ => None,
    };
    quote! {
        // `mosaic_` names are reserved: no step or iterator can shadow them.
        let mosaic_items: &Vec<_> = #src;
        #downstreams
        #custom
        #c::map_ordered(mosaic_items.iter(), #c::DEFAULT_MAP_CONCURRENCY, move |#iterator| async move {
            #per_element
        })
        .await
    }
}
