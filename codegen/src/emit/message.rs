//! One resolver function per message with rules: its steps laid out as futures or shared tasks,
//! then its fields assembled; and the argument struct of a message built by `message` steps.

use std::collections::BTreeMap;

use proc_macro2::{Ident, TokenStream};
use prost_reflect::Kind;
use quote::{format_ident, quote};

use super::paths::Paths;
use super::proto_comments;
use super::step::{emit_custom, emit_step_body, emit_validation};
use super::store::{
    Bound, guarded, is_boxed_field, is_oneof_member, oneof_fields, store, store_expression,
};
use super::tokens::compose;
use crate::expr::{self, Type};
use crate::model::*;
use crate::names::rust_field_ident;
use crate::resolve::{CALLER, ENV_PREFIX, step_ident, unnamed_step};

/// The argument struct (for a message built by `message` steps) and the resolver.
pub(super) fn emit_message(plan: &MessagePlan, paths: &Paths<'_>) -> TokenStream {
    let c = compose();
    let descriptor = &plan.descriptor;
    let output = paths.descriptor_path(descriptor);
    let resolver = paths.resolver_ident(descriptor);
    let (args_struct, input_type) = match &plan.input {
        Input::Request(request) => (quote!(), paths.descriptor_path(request)),
        Input::Args(args) => {
            let ident = paths.args_ident(descriptor);
            let doc = format!(
                " The arguments of `{}`, passed by the `message` steps that build it.",
                descriptor.full_name()
            );
            // Public when a custom method takes it, and then re-exported.
            let visibility = if paths.has_custom_items(descriptor.full_name()) {
                quote!(pub)
            } else {
                quote!(pub(crate))
            };
            let fields = args.iter().map(|arg| {
                let name = format_ident!("{}", rust_field_ident(&arg.name));
                let ty = paths.rust_type(&arg.ty);
                let ty = match arg.ty {
                    Type::Message(_) => quote!(Option<#ty>),
                    _ => ty,
                };
                let doc = format!(" `$.{}`", arg.name);
                quote!(#[doc = #doc] #visibility #name: #ty,)
            });
            (
                quote! {
                    #[doc = #doc]
                    #[derive(Clone, Debug, Default, PartialEq)]
                    #visibility struct #ident { #(#fields)* }
                },
                quote!(#ident),
            )
        }
    };

    let mut env = expr::Env::new();
    env.insert("$", quote!(input));
    env.insert(CALLER, quote!(caller));
    if let Some(service) = &plan.deployment {
        for name in paths.deployment_names(service.full_name()) {
            let local = deployment_local(name);
            env.insert(format!("{ENV_PREFIX}{name}"), quote!(#local));
        }
    }
    let layout = Layout::of(plan);
    let mut step_tokens: Vec<TokenStream> = plan
        .steps
        .iter()
        .enumerate()
        .filter(|(_, step)| matches!(&step.body, StepBody::Call(call) if call.captures_metadata))
        .map(|(index, _)| {
            let slot = metadata_slot(index);
            quote!(let #slot = #c::ResponseMetadata::new();)
        })
        .collect();
    let mut pre_checks = Vec::new();
    for (index, step) in plan.steps.iter().enumerate() {
        let var = step_var(plan, index);
        if layout.prechecked[index] {
            if let StepBody::Validation(v) = &step.body {
                pre_checks.push(emit_validation(v, &env, paths));
            }
            continue;
        }
        let body = emit_step_body(plan, index, &layout, &env, paths);
        step_tokens.push(if layout.spawned[index] {
            let value_type = match &step.body {
                StepBody::Validation(_) | StepBody::Log(_) => quote!(()),
                _ => paths.rust_type(&step.ty),
            };
            let captures = captures(plan, index, &layout, paths);
            quote! {
                let #var: #c::Step<#value_type> = #c::step({
                    #captures
                    async move { #body }
                });
            }
        } else if layout.owned[index] {
            let captures = captures(plan, index, &layout, paths);
            quote! {
                let #var = {
                    #captures
                    async move { #body }
                };
            }
        } else {
            quote!(let #var = async { #body };)
        });
        env.insert(step_name(plan, index), quote!(#var));
    }

    // Assemble the fields once every step they read (and every step nobody reads) is done.
    let finals: Vec<usize> = (0..plan.steps.len())
        .filter(|&i| layout.in_final[i])
        .collect();
    let moves = moves(plan, &layout, paths);
    let moved: Vec<usize> = moves.values().map(|(step, _)| *step).collect();
    let join = await_all(plan, &finals, &layout, Await::Final { moved: &moved });
    let members: Vec<Bound<'_>> = plan
        .fields
        .iter()
        .filter(|f| is_oneof_member(&f.field))
        .filter_map(|f| match &f.source {
            FieldSource::By(e) | FieldSource::Autobind { value: e, .. } => {
                Some((&f.field, e, f.condition.as_ref()))
            }
            // Never a oneof member (the checker says so).
            FieldSource::Custom(_) => None,
        })
        .collect();
    let oneofs = oneof_fields(descriptor, &members, true, &env, paths);
    let fields = plan
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| !is_oneof_member(&f.field))
        .map(|(index, f)| {
            let ident = format_ident!("{}", rust_field_ident(f.field.name()));
            if let Some((step, hop)) = moves.get(&index) {
                let var = step_var(plan, *step);
                let value = match hop {
                    Some(field) => {
                        let field = format_ident!("{field}");
                        quote!(#var.#field)
                    }
                    None if matches!(f.field.kind(), Kind::Message(_)) && !f.field.is_list() => {
                        quote!(Some(#var))
                    }
                    None => quote!(#var),
                };
                // `field: field` is written `field`.
                if ident == value.to_string() {
                    return quote!(#ident,);
                }
                return quote!(#ident: #value,);
            }
            let value = match &f.source {
                FieldSource::By(e) | FieldSource::Autobind { value: e, .. } => {
                    store_expression(e, &f.field, &env, paths)
                }
                FieldSource::Custom(custom) => {
                    let value = emit_custom(plan, custom, &env, paths);
                    store(quote!(#value?), &custom.ty, &f.field, paths)
                }
            };
            let value = guarded(value, f.condition.as_ref(), &env, paths);
            quote!(#ident: #value,)
        });
    let doc = format!(
        " Builds `{}` from its `mosaic.v1` rules.",
        descriptor.full_name()
    );
    let comments = proto_comments(descriptor.parent_file(), descriptor.path());
    let comments = (!comments.is_empty()).then(|| {
        let lines = comments.iter().map(|line| quote!(#[doc = #line]));
        quote!(#[doc = ""] #(#lines)*)
    });
    let final_input = (plan.fields.iter().any(|f| f.reads_input) || plan.custom.is_some())
        .then(|| quote!(let input = &*input;));
    let custom_param = paths
        .custom_param(descriptor.full_name())
        .map(|ty| quote!(custom: #ty,));
    let answer = match &plan.custom {
        Some(custom) => emit_custom(plan, custom, &env, paths),
        None => quote! {
            Ok(#output {
                #(#fields)*
                #(#oneofs)*
            })
        },
    };
    let caller = caller_binding(plan.reads_caller);
    let deployment = env_binding(plan, plan.deployment.is_some(), paths);
    let pre_check_block = (!pre_checks.is_empty()).then(|| {
        let reads_input = plan
            .steps
            .iter()
            .zip(&layout.prechecked)
            .any(|(step, pre)| *pre && step.reads_input);
        let reads_caller = plan
            .steps
            .iter()
            .zip(&layout.prechecked)
            .any(|(step, pre)| *pre && step.reads_caller);
        let reads_env = plan
            .steps
            .iter()
            .zip(&layout.prechecked)
            .any(|(step, pre)| *pre && step.reads_env);
        let input = reads_input.then(|| quote!(let input = &*input;));
        let caller = caller_binding(reads_caller);
        let deployment = env_binding(plan, reads_env, paths);
        quote! {
            {
                #input
                #caller
                #deployment
                #(#pre_checks)*
            }
        }
    });
    quote! {
        #args_struct

        #[doc = #doc]
        #comments
        pub(crate) async fn #resolver(
            call: #c::EdgeCall,
            downstreams: #c::Downstreams,
            input: #c::Arc<#input_type>,
            #custom_param
        ) -> Result<#output, #c::Status> {
            #pre_check_block
            #(#step_tokens)*
            #join
            #final_input
            #caller
            #deployment
            #answer
        }
    }
}

/// The name expressions read a step by: its own, or the one emission gives an unnamed step.
pub(super) fn step_name(plan: &MessagePlan, index: usize) -> String {
    plan.steps[index]
        .name
        .clone()
        .unwrap_or_else(|| unnamed_step(index))
}

/// The variable holding a step's future, handle or value.
pub(super) fn step_var(plan: &MessagePlan, index: usize) -> Ident {
    format_ident!("{}", step_ident(&step_name(plan, index)))
}

/// Binds `caller` (the caller's identity, read from the call's context) where expressions
/// that read it are evaluated.
pub(super) fn caller_binding(reads: bool) -> TokenStream {
    if !reads {
        return quote!();
    }
    let c = compose();
    quote! {
        let caller = #c::caller();
        let caller = &*caller;
    }
}

/// The local a deployment value `$env.<name>` is read through.
fn deployment_local(name: &str) -> Ident {
    format_ident!("mosaic_env_{}", step_ident(name).trim_start_matches("r#"))
}

/// Binds the deployment values (`$env`, from the call's context) where expressions that read
/// them are evaluated: each as a reference, `mosaic_env_<name>`.
pub(super) fn env_binding(plan: &MessagePlan, reads: bool, paths: &Paths<'_>) -> TokenStream {
    let Some(service) = plan.deployment.as_ref().filter(|_| reads) else {
        return quote!();
    };
    let c = compose();
    let ty = paths.deployment_type(service);
    let service_name = service.full_name();
    let values = paths
        .deployment_names(service.full_name())
        .iter()
        .map(|name| {
            let local = deployment_local(name);
            let field = format_ident!("{}", step_ident(name));
            quote!(let #local = &mosaic_env.#field;)
        });
    quote! {
        let mosaic_env = #c::deployment::<#ty>(#service_name)?;
        #(#values)*
    }
}

/// What an owned future (one that may outlive the resolver's borrows) takes with it: the
/// context it uses, and clones of the handles of the shared steps it reads. Steps read only by
/// it are moved in whole.
fn captures(plan: &MessagePlan, index: usize, layout: &Layout, paths: &Paths<'_>) -> TokenStream {
    let step = &plan.steps[index];
    let reads = layout
        .live_reads(plan, index)
        .filter(|&i| layout.spawned[i])
        .map(|i| {
            let var = step_var(plan, i);
            quote!(let #var = #var.clone();)
        });
    let downstreams =
        calls_downstream(step).then(|| quote!(let downstreams = downstreams.clone();));
    let input = step.reads_input.then(|| quote!(let input = input.clone();));
    let custom = uses_custom(step, paths).then(|| quote!(let custom = custom.clone();));
    let slot = uses_slot(plan, index).map(|call| {
        let slot = metadata_slot(call);
        quote!(let #slot = #slot.clone();)
    });
    quote! {
        #downstreams
        #custom
        #slot
        #input
        #(#reads)*
    }
}

/// Whether a step makes downstream calls (itself, or through a message it builds).
pub(super) fn calls_downstream(step: &StepPlan) -> bool {
    match &step.body {
        StepBody::Call(_) | StepBody::Message(_) => true,
        StepBody::Map(map) => !matches!(map.body, MapBody::By(_)),
        StepBody::By(_)
        | StepBody::Validation(_)
        | StepBody::Log(_)
        | StepBody::Custom(_)
        | StepBody::Switch(_)
        | StepBody::ResponseMetadata(_) => false,
    }
}

/// The slot a call step's response metadata is captured in, for its `response_metadata`.
pub(super) fn metadata_slot(index: usize) -> Ident {
    format_ident!("mosaic_metadata_{index}")
}

/// The call step whose metadata slot a step uses: itself when it captures, the call it
/// reads when it is the capture.
fn uses_slot(plan: &MessagePlan, index: usize) -> Option<usize> {
    match &plan.steps[index].body {
        StepBody::Call(call) if call.captures_metadata => Some(index),
        StepBody::ResponseMetadata(call) => Some(*call),
        _ => None,
    }
}

/// Whether a step uses the `Resolvers` implementation (itself, or through a message it builds).
fn uses_custom(step: &StepPlan, paths: &Paths<'_>) -> bool {
    match &step.body {
        StepBody::Custom(_) => true,
        StepBody::Message(m) => paths.custom_param(m.target.full_name()).is_some(),
        StepBody::Map(map) => match &map.body {
            MapBody::Message(m) => paths.custom_param(m.target.full_name()).is_some(),
            _ => false,
        },
        _ => false,
    }
}

/// Where steps are awaited.
#[derive(Clone, Copy)]
pub(super) enum Await<'a> {
    /// In an owned future, which holds its own handles.
    Owned,
    /// In a future borrowing from the resolver: handles of shared steps are cloned.
    Borrowed,
    /// In the resolver, before the fields: handles are cloned as for borrowed futures, and
    /// steps whose value a field takes are not rebound by reference.
    Final { moved: &'a [usize] },
}

/// Awaits `steps` together (so a failure ends the wait at once) and binds each one read by
/// name, by reference: `&*handle` for shared steps, `&value` for the others.
pub(super) fn await_all(
    plan: &MessagePlan,
    steps: &[usize],
    layout: &Layout,
    at: Await<'_>,
) -> TokenStream {
    let c = compose();
    let futures: Vec<TokenStream> = steps
        .iter()
        .map(|&i| {
            let var = step_var(plan, i);
            match at {
                // Futures that borrow the handle may still hold it.
                Await::Borrowed | Await::Final { .. } if layout.spawned[i] => {
                    quote!(#var.clone())
                }
                _ => quote!(#var),
            }
        })
        .collect();
    let bindings: Vec<TokenStream> = steps
        .iter()
        .map(|&i| {
            if layout.bound[i] {
                let var = step_var(plan, i);
                quote!(#var)
            } else {
                quote!(_)
            }
        })
        .collect();
    let wait = match futures.len() {
        0 => return quote!(),
        1 => {
            let (future, binding) = (&futures[0], &bindings[0]);
            if layout.bound[steps[0]] {
                quote!(let #binding = #future.await?;)
            } else {
                quote!(#future.await?;)
            }
        }
        _ => quote!(let (#(#bindings),*) = #c::try_join!(#(#futures),*)?;),
    };
    let rebind = steps.iter().filter_map(|&i| {
        if !layout.bound[i] {
            return None;
        }
        if let Await::Final { moved } = at
            && moved.contains(&i)
        {
            return None;
        }
        let var = step_var(plan, i);
        Some(if layout.spawned[i] {
            quote!(let #var = &*#var;)
        } else {
            quote!(let #var = &#var;)
        })
    });
    quote! {
        #wait
        #(#rebind)*
    }
}

/// How each step runs.
///
/// A step with more than one reader (other steps, or the fields) is spawned as a shared
/// [`Step`](mosaic_gateway) task; a step with one reader is a plain future that reader awaits,
/// together with its other inputs, so it still starts as soon as its reader starts waiting
/// (the resolver, at once, for the fields' steps) without a task of its own. A plain future
/// borrows the resolver's context unless it ends up inside a spawned task, which must own
/// what it uses: then it is an owned (`async move`) future with clones of what it reads.
pub(super) struct Layout {
    /// Validations decided before any step starts: unguarded, reading only `$` (and other
    /// such validations). They run synchronously, so a rejected request makes no downstream
    /// call at all.
    pub(super) prechecked: Vec<bool>,
    /// Spawned as a shared task.
    pub(super) spawned: Vec<bool>,
    /// A plain future that owns what it uses.
    pub(super) owned: Vec<bool>,
    /// Awaited by the resolver before the fields are assembled.
    pub(super) in_final: Vec<bool>,
    /// Its value is read by name (by a step, a field, or autobind), so awaiting it binds it.
    pub(super) bound: Vec<bool>,
}

impl Layout {
    fn of(plan: &MessagePlan) -> Self {
        let n = plan.steps.len();
        let mut prechecked = vec![false; n];
        for (index, step) in plan.steps.iter().enumerate() {
            prechecked[index] = matches!(step.body, StepBody::Validation(_))
                && step.guard.is_none()
                && step.reads.iter().all(|&read| prechecked[read]);
        }
        let mut layout = Self {
            prechecked,
            spawned: vec![false; n],
            owned: vec![false; n],
            in_final: vec![false; n],
            bound: vec![false; n],
        };
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
        for reader in 0..n {
            if layout.prechecked[reader] {
                continue;
            }
            for read in layout.live_reads(plan, reader).collect::<Vec<_>>() {
                readers[read].push(reader);
            }
        }
        let mut field_reads = vec![false; n];
        for field in &plan.fields {
            for &read in &field.reads {
                field_reads[read] = true;
            }
        }
        for &read in plan.custom.iter().flat_map(|c| &c.reads) {
            field_reads[read] = true;
        }
        for i in 0..n {
            if layout.prechecked[i] {
                continue;
            }
            layout.in_final[i] = field_reads[i] || readers[i].is_empty();
            layout.spawned[i] = readers[i].len() + usize::from(layout.in_final[i]) > 1;
            // Read by name: by a field, or by a step that reads it for its value (every step
            // a step reads is read for its value, except validations, awaited for their
            // effect).
            layout.bound[i] = field_reads[i]
                || (!readers[i].is_empty()
                    && !matches!(
                        plan.steps[i].body,
                        StepBody::Validation(_) | StepBody::Log(_)
                    ));
        }
        // Readers come after what they read: decide from the last step back.
        for i in (0..n).rev() {
            if layout.prechecked[i] || layout.spawned[i] {
                continue;
            }
            layout.owned[i] = match readers[i].as_slice() {
                [reader] if !layout.in_final[i] => layout.spawned[*reader] || layout.owned[*reader],
                _ => false,
            };
        }
        layout
    }

    /// The steps `index` reads that run as tasks or futures (pre-checked validations are done).
    pub(super) fn live_reads<'a>(
        &'a self,
        plan: &'a MessagePlan,
        index: usize,
    ) -> impl Iterator<Item = usize> + 'a {
        plan.steps[index]
            .reads
            .iter()
            .copied()
            .filter(|&read| !self.prechecked[read])
    }
}

/// Fields whose value can be moved out of a step instead of cloned: the field's value is the
/// step's value or one field of it, stored exactly as the target field stores it, and the
/// step is a plain future of the resolver that no other field or step reads. Returns field
/// index → (step index, the Rust name of the step's field moved, if any).
fn moves(
    plan: &MessagePlan,
    layout: &Layout,
    paths: &Paths<'_>,
) -> BTreeMap<usize, (usize, Option<String>)> {
    let mut readers = vec![0usize; plan.steps.len()];
    for field in &plan.fields {
        for &read in &field.reads {
            readers[read] += 1;
        }
    }
    let mut candidates = BTreeMap::new();
    for (index, field) in plan.fields.iter().enumerate() {
        let (FieldSource::By(e) | FieldSource::Autobind { value: e, .. }) = &field.source else {
            continue;
        };
        // A conditional field reads its step in its condition as well.
        if field.condition.is_some() {
            continue;
        }
        let Some((root, hop)) = e.checked.path() else {
            continue;
        };
        let Some(step) = (0..plan.steps.len()).find(|&i| step_name(plan, i) == root) else {
            continue;
        };
        let target = crate::schema::field_info(&field.field);
        let movable = match hop {
            // The whole value: a list or a message of the field's own type.
            None => {
                plan.steps[step].ty == target.ty
                    && !is_boxed_field(&field.field)
                    && match &target.ty {
                        Type::Message(_) => true,
                        Type::List(element) => matches!(**element, Type::Message(_)),
                        _ => false,
                    }
            }
            // One field of a message value, stored the same way as the target.
            Some(hop) => match &plan.steps[step].ty {
                Type::Message(message) => {
                    expr::Schema::field(paths, message, hop).is_some_and(|source| {
                        source.ty == target.ty
                            && same_storage(&source.cardinality, &target.cardinality)
                            && !matches!(source.ty, Type::Map(..))
                            && source.scalar == target.scalar
                    })
                }
                _ => false,
            },
        };
        let readers_elsewhere = layout.live_reads_of(plan, step);
        if movable
            && !layout.spawned[step]
            && layout.in_final[step]
            && readers[step] == 1
            && readers_elsewhere == 0
        {
            candidates.insert(index, (step, hop.map(rust_field_ident)));
        }
    }
    candidates
}

impl Layout {
    /// How many steps read step `index`.
    fn live_reads_of(&self, plan: &MessagePlan, index: usize) -> usize {
        (0..plan.steps.len())
            .filter(|&reader| {
                !self.prechecked[reader] && self.live_reads(plan, reader).any(|r| r == index)
            })
            .count()
    }
}

fn same_storage(a: &expr::Cardinality, b: &expr::Cardinality) -> bool {
    use expr::Cardinality as C;
    matches!(
        (a, b),
        (C::Singular, C::Singular)
            | (C::Optional, C::Optional)
            | (C::Message, C::Message)
            | (C::Repeated, C::Repeated)
    )
}
