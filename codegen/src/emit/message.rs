//! One `resolve_<message>` function per message with rules: its steps laid out as futures or shared tasks, then its fields assembled.

use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use prost_reflect::Kind;
use quote::{format_ident, quote};

use super::paths::{Paths, rust_type};
use super::proto_comments;
use super::service::resolver_ident;
use super::step::{emit_step_body, emit_validation};
use super::store::{is_boxed_field, store_expression};
use super::tokens::compose;
use crate::expr::{self, Type};
use crate::model::*;
use crate::names::{rust_field_ident, rust_type_ident};
use crate::resolve::step_ident;
use crate::schema::PoolSchema;

pub(super) fn emit_message(plan: &MessagePlan, schema: &PoolSchema, paths: &Paths) -> TokenStream {
    let c = compose();
    let descriptor = &plan.descriptor;
    let output = paths.descriptor_path(descriptor);
    let resolver = resolver_ident(descriptor);
    let (args_struct, input_type) = match &plan.input {
        Input::Request(request) => (quote!(), paths.descriptor_path(request)),
        Input::Args(args) => {
            let ident = format_ident!("{}Args", rust_type_ident(descriptor.name()));
            let doc = format!(
                " The arguments of `{}`, passed by the `message` steps that build it.",
                descriptor.full_name()
            );
            let fields = args.iter().map(|arg| {
                let name = format_ident!("{}", rust_field_ident(&arg.name));
                let ty = rust_type(&arg.ty, schema, paths);
                let ty = match arg.ty {
                    Type::Message(_) => quote!(::core::option::Option<#ty>),
                    _ => ty,
                };
                let doc = format!(" `$.{}`", arg.name);
                quote!(#[doc = #doc] pub #name: #ty,)
            });
            (
                quote! {
                    #[doc = #doc]
                    #[derive(Clone, Debug, Default, PartialEq)]
                    pub struct #ident { #(#fields)* }
                },
                quote!(#ident),
            )
        }
    };

    let mut env = expr::Env::new();
    env.insert("$", quote!(input));
    env.insert(crate::resolve::CALLER, quote!(caller));
    let prechecked = prechecked(plan);
    let layout = Layout::of(plan, &prechecked);
    let mut step_tokens = Vec::new();
    let mut pre_checks = Vec::new();
    for (index, step) in plan.steps.iter().enumerate() {
        let ident = step_var(plan, index);
        if prechecked[index] {
            if let StepBody::Validation(v) = &step.body {
                pre_checks.push(emit_validation(v, &env, schema, paths));
            }
            continue;
        }
        let value_type = match &step.body {
            StepBody::Validation(_) => quote!(()),
            _ => rust_type(&step.ty, schema, paths),
        };
        let body = emit_step_body(plan, index, &layout, &env, schema, paths);
        let captures = captures(plan, index, &layout);
        step_tokens.push(if layout.spawned[index] {
            quote! {
                let #ident: #c::Step<#value_type> = #c::step({
                    #captures
                    async move { #body }
                });
            }
        } else {
            quote! {
                let #ident = {
                    #captures
                    async move {
                        let value: #value_type = { #body }?;
                        ::core::result::Result::<_, #c::Status>::Ok(value)
                    }
                };
            }
        });
        if let Some(name) = &step.name {
            let var = format_ident!("{}", step_ident(name));
            env.insert(name, quote!(#var));
        }
    }

    // Assemble the fields once every step they read (and every step nobody reads) is done.
    let finals: Vec<usize> = (0..plan.steps.len())
        .filter(|&i| layout.in_final[i])
        .collect();
    let moves = moves(plan, &layout, schema);
    let owned: Vec<usize> = moves.values().map(|(step, _)| *step).collect();
    let join = await_all(plan, &finals, &layout, &owned);
    let fields = plan.fields.iter().enumerate().map(|(index, f)| {
        let ident = format_ident!("{}", rust_field_ident(f.field.name()));
        if let Some(value) = moves.get(&index).map(|(step, path)| {
            let var = step_var(plan, *step);
            let value = match path {
                Some(field) => {
                    let field = format_ident!("{}", field);
                    quote!(#var.#field)
                }
                None => quote!(#var),
            };
            match path {
                None if matches!(f.field.kind(), Kind::Message(_)) && !f.field.is_list() => {
                    quote!(::core::option::Option::Some(#value))
                }
                _ => value,
            }
        }) {
            // `field: field` is written `field`.
            if ident == value.to_string() {
                return quote!(#ident,);
            }
            return quote!(#ident: #value,);
        }
        let value = match &f.source {
            FieldSource::By(e) => store_expression(e, &f.field, &env, schema, paths),
            FieldSource::Autobind { step, from } => {
                let name = plan.steps[*step].name.clone().unwrap_or_default();
                let var = format_ident!("{}", step_ident(&name));
                let from_ident = format_ident!("{}", rust_field_ident(from.name()));
                quote!(#var.#from_ident.clone())
            }
        };
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
    let allowed = allowed_lints();
    let caller = caller_binding(plan.reads_caller);
    let pre_caller = caller_binding(
        plan.steps
            .iter()
            .zip(&prechecked)
            .any(|(step, pre)| *pre && step.reads_caller),
    );
    let pre_check_block = (!pre_checks.is_empty()).then(|| {
        quote! {
            {
                let input = &*input;
                #pre_caller
                #(#pre_checks)*
            }
        }
    });
    quote! {
        #args_struct

        #[doc = #doc]
        #comments
        #[allow(#(#allowed),*)]
        async fn #resolver(
            call: #c::EdgeCall,
            downstreams: #c::Downstreams,
            input: #c::Arc<#input_type>,
        ) -> ::core::result::Result<#output, #c::Status> {
            #pre_check_block
            #(#step_tokens)*
            #join
            let input = &*input;
            #caller
            ::core::result::Result::Ok(#output {
                #(#fields)*
            })
        }
    }
}

/// Lints allowed on generated resolvers, each for a reason:
/// - `unused_variables`: every step binds the whole context (`input`, `downstreams`) and the
///   values it awaits, whether its expressions read them or not;
/// - `clippy::clone_on_copy`: prost derives `Copy` for some messages; values are cloned
///   uniformly rather than tracking which;
/// - `clippy::needless_question_mark`: per-element values are wrapped uniformly as `Ok(v?)`,
///   whether or not computing `v` can fail;
/// - the rest: expressions are the user's, and may legitimately compare a value with itself,
///   with a bound its type already guarantees, and so on (`x == x`, `$.page >= 0u`).
pub(super) fn allowed_lints() -> Vec<TokenStream> {
    [
        "unused_variables",
        "unused_comparisons",
        "clippy::clone_on_copy",
        "clippy::needless_question_mark",
        "clippy::absurd_extreme_comparisons",
        "clippy::eq_op",
        "clippy::nonminimal_bool",
        "clippy::overly_complex_bool_expr",
        "clippy::double_comparisons",
        "clippy::neg_cmp_op_on_partial_ord",
        "clippy::bool_comparison",
        "clippy::comparison_to_empty",
        "clippy::needless_bool",
        "clippy::if_same_then_else",
        "clippy::neg_multiply",
        "clippy::approx_constant",
        "clippy::zero_divided_by_zero",
    ]
    .iter()
    .filter_map(|lint| lint.parse().ok())
    .collect()
}

pub(super) fn step_var(plan: &MessagePlan, index: usize) -> proc_macro2::Ident {
    match &plan.steps[index].name {
        Some(name) => format_ident!("{}", step_ident(name)),
        None => format_ident!("mosaic_step_{index}"),
    }
}

/// Clones moved into a step's task: the context, and the handles of the steps it reads.
/// Validations that can be decided before any step starts: unguarded, reading only `$` (and
/// other such validations, which they follow). They run synchronously, so a rejected request
/// makes no downstream call at all.
pub(super) fn prechecked(plan: &MessagePlan) -> Vec<bool> {
    let mut prechecked = vec![false; plan.steps.len()];
    for (index, step) in plan.steps.iter().enumerate() {
        prechecked[index] = matches!(step.body, StepBody::Validation(_))
            && step.guard.is_none()
            && step.reads.iter().all(|&read| prechecked[read]);
    }
    prechecked
}

/// The steps `index` reads that run as tasks (pre-checked validations are already done).
pub(super) fn live_reads<'a>(
    plan: &'a MessagePlan,
    index: usize,
    prechecked: &'a [bool],
) -> impl Iterator<Item = usize> + 'a {
    plan.steps[index]
        .reads
        .iter()
        .copied()
        .filter(|&read| !prechecked[read])
}

/// Clones moved into a step: the context, and the handles of the shared steps it reads
/// (steps read only here are moved in whole).
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

pub(super) fn captures(plan: &MessagePlan, index: usize, layout: &Layout) -> TokenStream {
    let reads = live_reads(plan, index, &layout.prechecked)
        .filter(|&i| layout.spawned[i])
        .map(|i| {
            let var = step_var(plan, i);
            quote!(let #var = #var.clone();)
        });
    quote! {
        let downstreams = downstreams.clone();
        let input = input.clone();
        #(#reads)*
    }
}

/// Awaits `steps` together (so a failure ends the wait at once) and binds each named one by
/// reference: `&*handle` for shared steps, `&value` for steps owned here.
pub(super) fn await_all(
    plan: &MessagePlan,
    steps: &[usize],
    layout: &Layout,
    owned: &[usize],
) -> TokenStream {
    let c = compose();
    let vars: Vec<_> = steps.iter().map(|&i| step_var(plan, i)).collect();
    let bindings: Vec<TokenStream> = steps
        .iter()
        .map(|&i| match plan.steps[i].name {
            Some(_) => {
                let var = step_var(plan, i);
                quote!(#var)
            }
            None => quote!(_),
        })
        .collect();
    let wait = match vars.len() {
        0 => return quote!(),
        1 => {
            let (var, binding) = (&vars[0], &bindings[0]);
            if plan.steps[steps[0]].name.is_some() {
                quote!(let #binding = #var.await?;)
            } else {
                quote!(#var.await?;)
            }
        }
        _ => quote!(let (#(#bindings),*) = #c::try_join!(#(#vars),*)?;),
    };
    let rebind = steps.iter().filter_map(|&i| {
        plan.steps[i].name.as_ref()?;
        if owned.contains(&i) {
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

/// How each step runs. A step with more than one reader (other steps, or the fields) is
/// spawned as a shared [`Step`](mosaic_gateway) task; a step with one reader is a plain
/// future owned by that reader, which awaits all its inputs together, so it still starts as
/// soon as the resolver starts and the request still takes its critical path, without a task
/// per step.
pub(super) struct Layout {
    pub(super) prechecked: Vec<bool>,
    pub(super) spawned: Vec<bool>,
    pub(super) in_final: Vec<bool>,
}

impl Layout {
    fn of(plan: &MessagePlan, prechecked: &[bool]) -> Self {
        let n = plan.steps.len();
        let mut step_readers = vec![0usize; n];
        for reader in 0..n {
            if prechecked[reader] {
                continue;
            }
            for read in live_reads(plan, reader, prechecked) {
                step_readers[read] += 1;
            }
        }
        let field_reads = fields_read(plan);
        let in_final: Vec<bool> = (0..n)
            .map(|i| !prechecked[i] && (field_reads[i] || step_readers[i] == 0))
            .collect();
        let spawned = (0..n)
            .map(|i| step_readers[i] + usize::from(in_final[i]) > 1)
            .collect();
        Self {
            prechecked: prechecked.to_vec(),
            spawned,
            in_final,
        }
    }
}

/// Fields whose value can be moved out of a step instead of cloned: the field's `by` is the
/// step's name or one field of it, stored exactly as the target field stores it, and the step is
/// a future owned by the resolver that no other field or step reads. Returns field index →
/// (step index, the step field moved, if any).
pub(super) fn moves(
    plan: &MessagePlan,
    layout: &Layout,
    schema: &PoolSchema,
) -> BTreeMap<usize, (usize, Option<String>)> {
    let mut readers = vec![0usize; plan.steps.len()];
    let mut candidates = BTreeMap::new();
    for (index, field) in plan.fields.iter().enumerate() {
        let FieldSource::By(e) = &field.source else {
            if let FieldSource::Autobind { step, .. } = &field.source {
                readers[*step] += 2;
            }
            continue;
        };
        let Ok(parsed) = expr::parse(&e.text) else {
            continue;
        };
        for (name, _) in parsed.names() {
            if let Some(i) = plan
                .steps
                .iter()
                .position(|step| step.name.as_deref() == Some(name.as_str()))
            {
                readers[i] += 1;
            }
        }
        let text = e.text.trim();
        let (root, hop) = match text.split_once('.') {
            Some((root, hop)) => (root.trim(), Some(hop.trim())),
            None => (text, None),
        };
        let Some(step) = plan
            .steps
            .iter()
            .position(|s| s.name.as_deref() == Some(root))
        else {
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
            Some(hop) if hop.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                match &plan.steps[step].ty {
                    Type::Message(message) => expr::Schema::field(schema, message, hop)
                        .is_some_and(|source| {
                            source.ty == target.ty
                                && same_storage(&source.cardinality, &target.cardinality)
                                && !matches!(source.ty, Type::Map(..))
                                && source.scalar == target.scalar
                        }),
                    _ => false,
                }
            }
            Some(_) => false,
        };
        if movable && !layout.spawned[step] && layout.in_final[step] {
            let hop = hop.map(rust_field_ident);
            candidates.insert(index, (step, hop));
        }
    }
    candidates.retain(|_, (step, _)| readers[*step] == 1);
    candidates
}

pub(super) fn same_storage(a: &expr::Cardinality, b: &expr::Cardinality) -> bool {
    use expr::Cardinality as C;
    matches!(
        (a, b),
        (C::Singular, C::Singular)
            | (C::Optional, C::Optional)
            | (C::Message, C::Message)
            | (C::Repeated, C::Repeated)
    )
}

/// Which steps the fields read (through `by` expressions or autobind).
pub(super) fn fields_read(plan: &MessagePlan) -> Vec<bool> {
    let mut read = vec![false; plan.steps.len()];
    for field in &plan.fields {
        match &field.source {
            FieldSource::By(e) => {
                let Ok(parsed) = expr::parse(&e.text) else {
                    continue;
                };
                for (name, _) in parsed.names() {
                    if let Some(i) = plan
                        .steps
                        .iter()
                        .position(|step| step.name.as_deref() == Some(name.as_str()))
                    {
                        read[i] = true;
                    }
                }
            }
            FieldSource::Autobind { step, .. } => read[*step] = true,
        }
    }
    read
}
