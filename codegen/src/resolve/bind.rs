//! Fields: how each field of a message with rules gets its value (`by`, `autobind`), and which
//! values a field can store.

use std::collections::{HashMap, HashSet};

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use super::Resolver;
use super::exprs::readable;
use super::names::{CALLER, unnamed_step};
use super::options::{EXTENSION_NUMBER, get_message, get_str, has_field};
use super::sites::OptionSite;
use crate::diagnostic::{Diagnostic, Span};
use crate::expr::{self, Type};
use crate::model::*;
use crate::schema::{PoolSchema, field_info};

impl Resolver<'_> {
    /// Checks that a value of type `ty` can be stored in `field` (whose expression type is
    /// `target`).
    pub(super) fn check_binding(
        &mut self,
        ty: &Type,
        field: &FieldDescriptor,
        target: &Type,
        span: Option<Span>,
    ) {
        if let Err(problem) = self.binding(ty, field, target) {
            let (message, hint) = problem;
            let d = Diagnostic::error(readable(&message), span);
            self.diagnostics.push(match hint {
                Some(h) => d.with_hint(h),
                None => d,
            });
        }
    }

    /// Whether a value of type `ty` may be stored in `field`, converting enums (recorded for
    /// emission) where they differ.
    pub(super) fn binding(
        &mut self,
        ty: &Type,
        field: &FieldDescriptor,
        target: &Type,
    ) -> Result<(), (String, Option<String>)> {
        let element = |t: &Type| match t {
            Type::List(inner) => (**inner).clone(),
            other => other.clone(),
        };
        if let (Type::Enum(from), Type::Enum(to)) = (element(ty), element(target))
            && from != to
            && matches!(ty, Type::List(_)) == matches!(target, Type::List(_))
        {
            return self.enum_conversion(&from, &to);
        }
        if let (Type::Message(from), Type::Message(to)) = (element(ty), element(target))
            && from != to
            && matches!(ty, Type::List(_)) == matches!(target, Type::List(_))
        {
            // A declared pair converts (its problems are reported at the alias).
            if self.is_alias_pair(&from, &to) {
                return Ok(());
            }
            if let Some(target) = self.loaded.pool.get_message_by_name(&to)
                && !self.message_aliases(&target).is_empty()
            {
                let sources = self.alias_sources(&to);
                // Aliases that name no message are reported where they are written.
                if sources.is_empty() {
                    return Ok(());
                }
                let listed: Vec<String> = sources.iter().map(|a| format!("`{a}`")).collect();
                return Err((
                    format!(
                        "`{to}` converts only from {}, not from `{from}`",
                        listed.join(", ")
                    ),
                    Some(format!(
                        "add `{from}` to the `alias` of `{to}`'s `(mosaic.v1.message)`"
                    )),
                ));
            }
        }
        binding_allowed(ty, field, target)
    }

    pub(super) fn bind_fields(
        &mut self,
        message: &MessageDescriptor,
        scope: &expr::Scope,
        steps: &[StepPlan],
        site: &Option<OptionSite>,
    ) -> (Vec<FieldPlan>, bool) {
        // Autobind candidates: field name → (step index, source field).
        let mut autobound: HashMap<String, Vec<(usize, FieldDescriptor)>> = HashMap::new();
        for (index, step) in steps.iter().enumerate() {
            if !step.autobind {
                continue;
            }
            if let Type::Message(name) = &step.ty
                && let Some(source) = self.loaded.pool.get_message_by_name(name)
            {
                for f in source.fields() {
                    autobound
                        .entry(f.name().to_owned())
                        .or_default()
                        .push((index, f));
                }
            }
        }

        let mut fields = Vec::new();
        let mut reads_caller = false;
        // The members of each oneof bound so far, each with whether it has an `if`: one
        // unconditional member, or any number of conditional ones.
        let mut oneof_bound: HashMap<String, Vec<(String, bool)>> = HashMap::new();
        for field in message.fields() {
            let member = field
                .containing_oneof()
                .filter(|_| !field.field_descriptor_proto().proto3_optional());
            let target = field_info(&field).ty;
            let mut path = field.path().to_vec();
            path.extend([8, EXTENSION_NUMBER, 1]);
            let options = field.options();
            if options.has_extension(&self.ext.field) {
                let rule = options.get_extension(&self.ext.field);
                let text = rule
                    .as_message()
                    .map(|m| get_str(m, "by"))
                    .unwrap_or_default();
                if let Some(custom) = rule.as_message().and_then(|r| get_message(r, "custom")) {
                    let field_site = self.site(message.parent_file().name(), field.path(), false);
                    let span = Self::span_of_site(&field_site);
                    let conditional = rule.as_message().is_some_and(|r| has_field(r, "if"));
                    if !text.is_empty() || member.is_some() || conditional {
                        self.error_hint(
                            format!(
                                "field `{}` is `custom`{}",
                                field.name(),
                                if !text.is_empty() {
                                    " and has a `by`"
                                } else if conditional {
                                    " and has an `if`"
                                } else {
                                    " and a oneof member"
                                }
                            ),
                            span,
                            "a custom field is computed by the implementation alone: no `by`, no `if`, outside oneofs",
                        );
                        continue;
                    }
                    let defined: HashMap<String, usize> = steps
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| {
                            !matches!(s.body, StepBody::Validation(_) | StepBody::Log(_))
                        })
                        .filter_map(|(i, s)| s.name.clone().map(|n| (n, i)))
                        .collect();
                    let mut reads = HashSet::new();
                    if let Some(read_steps) =
                        self.custom_reads(&custom, &defined, &[], |_| span.clone(), &mut reads)
                    {
                        let mut sorted = read_steps.clone();
                        sorted.sort_unstable();
                        fields.push(FieldPlan {
                            field: field.clone(),
                            source: FieldSource::Custom(CustomPlan {
                                item: CustomItem::Field(field.name().to_owned()),
                                reads: read_steps,
                                ty: target.clone(),
                            }),
                            condition: None,
                            reads: sorted,
                            reads_input: true,
                        });
                    }
                    continue;
                }
                let (span, value) = self.field_rule_span(&field, &path);
                let condition_text = rule
                    .as_message()
                    .map(|m| get_str(m, "if"))
                    .unwrap_or_default();
                if let Some(oneof) = &member {
                    let others = oneof_bound.entry(oneof.name().to_owned()).or_default();
                    let always = others.iter().find(|(_, conditional)| !conditional);
                    let clash = always.or(others.first().filter(|_| condition_text.is_empty()));
                    if let Some((other, _)) = clash {
                        let other = other.clone();
                        self.error_hint(
                            format!(
                                "fields `{other}` and `{}` are members of oneof `{}`, which holds one value",
                                field.name(),
                                oneof.name()
                            ),
                            span,
                            "bind one member of the oneof, or give each member an `if`: the one whose condition holds is set",
                        );
                        continue;
                    }
                    others.push((field.name().to_owned(), !condition_text.is_empty()));
                }
                let mut reads = HashSet::new();
                let condition = if condition_text.is_empty() {
                    None
                } else {
                    let mut if_path = path.clone();
                    if let Some(last) = if_path.last_mut() {
                        *last = 4;
                    }
                    let (if_span, if_value) = self.field_rule_key_span(&field, &if_path, "if");
                    match self.checked_expression(
                        scope,
                        &condition_text,
                        if_span,
                        if_value,
                        &mut reads,
                        Some(&Type::Bool),
                        "a field's `if`",
                        None,
                    ) {
                        Some(condition) => Some(condition),
                        None => continue,
                    }
                };
                self.binding_hint = Some(target.clone());
                if let Some(e) = self.checked_expression(
                    scope,
                    &text,
                    span.clone(),
                    value,
                    &mut reads,
                    None,
                    "a field's `by`",
                    None,
                ) {
                    reads_caller |= reads.contains(CALLER);
                    self.check_binding(&e.checked.ty, &field, &target, span);
                    let read_steps = (0..steps.len())
                        .filter(|&i| steps[i].name.as_ref().is_some_and(|n| reads.contains(n)))
                        .collect();
                    fields.push(FieldPlan {
                        field,
                        source: FieldSource::By(e),
                        condition,
                        reads: read_steps,
                        reads_input: reads.contains("$"),
                    });
                }
                continue;
            }
            // A oneof holds at most one member: those not bound by `by` are left unset.
            if member.is_some() {
                continue;
            }
            match autobound.get(field.name()).map(Vec::as_slice) {
                Some([(step, from)]) => {
                    let from_ty = field_info(from).ty;
                    if self.binding(&from_ty, &field, &target).is_ok() {
                        if let Some(value) = autobind_value(&self.schema, scope, steps, *step, from)
                        {
                            fields.push(FieldPlan {
                                field,
                                source: FieldSource::Autobind {
                                    step: *step,
                                    from: Box::new(from.clone()),
                                    value,
                                },
                                condition: None,
                                reads: vec![*step],
                                reads_input: false,
                            });
                        } else {
                            let field_site =
                                self.site(message.parent_file().name(), field.path(), false);
                            self.error_hint(
                                format!(
                                    "autobind cannot read field `{}` of {}",
                                    from.name(),
                                    steps[*step].ty
                                ),
                                Self::span_of_site(&field_site),
                                "bind it explicitly with `(mosaic.v1.field).by`",
                            );
                        }
                    } else {
                        let field_site =
                            self.site(message.parent_file().name(), field.path(), false);
                        let step_name = steps[*step].name.clone().unwrap_or_default();
                        self.error_hint(
                            format!(
                                "autobind cannot fill field `{}`, which is {}: `{step_name}.{}` is {}",
                                field.name(),
                                proto_type(&field),
                                from.name(),
                                proto_type(from),
                            ),
                            Self::span_of_site(&field_site),
                            "bind it explicitly with `(mosaic.v1.field).by`",
                        );
                    }
                }
                Some(many) if many.len() > 1 => {
                    let names: Vec<String> = many
                        .iter()
                        .filter_map(|(i, _)| steps[*i].name.clone())
                        .collect();
                    let field_site = self.site(message.parent_file().name(), field.path(), false);
                    self.error_hint(
                        format!(
                            "field `{}` is ambiguous: several autobind steps have it ({})",
                            field.name(),
                            names.join(", ")
                        ),
                        Self::span_of_site(&field_site),
                        "bind it explicitly with `(mosaic.v1.field).by`",
                    );
                }
                _ => {
                    let field_site = self.site(message.parent_file().name(), field.path(), false);
                    let span = Self::span_of_site(&field_site).or_else(|| Self::span_of_site(site));
                    self.error_hint(
                        format!("field `{}` of `{}` has no value", field.name(), message.full_name()),
                        span,
                        "add `[(mosaic.v1.field).by = \"...\"]`, or an `autobind` step with a same-named field",
                    );
                }
            }
        }
        (fields, reads_caller)
    }
}

/// The read of field `from` of autobind step `step`, as a checked expression.
fn autobind_value(
    schema: &PoolSchema,
    scope: &expr::Scope,
    steps: &[StepPlan],
    step: usize,
    from: &FieldDescriptor,
) -> Option<Expression> {
    let name = steps[step]
        .name
        .clone()
        .unwrap_or_else(|| unnamed_step(step));
    let scope = scope.clone().with(&name, steps[step].ty.clone());
    let text = format!("{name}.{}", from.name());
    let parsed = expr::parse(&text).ok()?;
    let checked = expr::check(&parsed, &scope, schema).ok()?;
    Some(Expression {
        text,
        checked: Box::new(checked),
    })
}

/// Whether a value of expression type `ty` may be stored in `field`.
pub fn binding_allowed(
    ty: &Type,
    field: &FieldDescriptor,
    target: &Type,
) -> Result<(), (String, Option<String>)> {
    if *ty == Type::Error || ty == target {
        return Ok(());
    }
    let message = format!(
        "cannot store {ty} in field `{}`, which is {}",
        field.name(),
        proto_type(field)
    );
    let numeric = |t: &Type| matches!(t, Type::Int | Type::Uint | Type::Double);
    if let Type::Optional(inner) = ty {
        let oneof_member =
            field.containing_oneof().is_some() && !field.field_descriptor_proto().proto3_optional();
        let presence = !field.is_list()
            && !field.is_map()
            && (matches!(target, Type::Message(_))
                || oneof_member
                || field.field_descriptor_proto().proto3_optional()
                || crate::schema::wrapped(&field.kind()).is_some());
        if !presence {
            return Err((
                format!(
                    "the value may be null, but field `{}` ({}) has no presence to leave unset",
                    field.name(),
                    proto_type(field)
                ),
                Some(
                    "give the value a default with `.orValue(d)`, or declare the field `optional`"
                        .to_owned(),
                ),
            ));
        }
        return binding_allowed(inner, field, target);
    }
    let hint = match (ty, target) {
        (Type::Null, Type::Message(_)) if !field.is_list() => return Ok(()),
        // Leaves a field with presence unset.
        (Type::Null, _)
            if !field.is_list()
                && (field.field_descriptor_proto().proto3_optional()
                    || crate::schema::wrapped(&field.kind()).is_some()) =>
        {
            return Ok(());
        }
        (Type::Int, Type::Enum(e)) => {
            return Err((
                format!("cannot store int in enum field `{}` ({e})", field.name()),
                Some(match field.kind() {
                    prost_reflect::Kind::Enum(enumeration) => {
                        let example = enumeration
                            .values()
                            .find(|v| v.number() != 0)
                            .or_else(|| enumeration.values().next())
                            .map(|v| format!("`{e}.{}`", v.name()))
                            .unwrap_or_default();
                        format!("write enum values by name, such as {example}")
                    }
                    _ => "write enum values by name".to_owned(),
                }),
            ));
        }
        (Type::List(a), Type::List(b)) if **a == Type::Error || a == b => return Ok(()),
        (Type::Message(from), Type::Message(_)) => Some(format!(
            "declare the target an alias of `{from}` (`(mosaic.v1.message).alias`), bind the fields one by one, or build it with a `message` step"
        )),
        (Type::List(a), Type::List(b))
            if matches!(**a, Type::Message(_)) && matches!(**b, Type::Message(_)) =>
        {
            Some("build each element with a `map` step whose body is a `message`".to_owned())
        }
        (a, Type::List(b)) if a == &**b => {
            Some("a repeated field takes a list: `[...]`".to_owned())
        }
        (a, b) if numeric(a) && numeric(b) => Some(format!("convert it with `{b}(...)`")),
        (a, Type::String) if numeric(a) => Some("convert it with `string(...)`".to_owned()),
        _ => None,
    };
    Err((message, hint))
}

/// A field's type as written in the proto: `int64`, `repeated string`, `map<string, int32>`,
/// `` `demo.users.v1.User` ``.
pub(super) fn proto_type(field: &FieldDescriptor) -> String {
    fn kind_name(kind: &Kind) -> String {
        match kind {
            Kind::Double => "double".to_owned(),
            Kind::Float => "float".to_owned(),
            Kind::Int32 => "int32".to_owned(),
            Kind::Int64 => "int64".to_owned(),
            Kind::Uint32 => "uint32".to_owned(),
            Kind::Uint64 => "uint64".to_owned(),
            Kind::Sint32 => "sint32".to_owned(),
            Kind::Sint64 => "sint64".to_owned(),
            Kind::Fixed32 => "fixed32".to_owned(),
            Kind::Fixed64 => "fixed64".to_owned(),
            Kind::Sfixed32 => "sfixed32".to_owned(),
            Kind::Sfixed64 => "sfixed64".to_owned(),
            Kind::Bool => "bool".to_owned(),
            Kind::String => "string".to_owned(),
            Kind::Bytes => "bytes".to_owned(),
            Kind::Message(m) => format!("`{}`", m.full_name()),
            Kind::Enum(e) => format!("`{}`", e.full_name()),
        }
    }
    match field.kind() {
        Kind::Message(entry) if field.is_map() => format!(
            "map<{}, {}>",
            kind_name(&entry.map_entry_key_field().kind()),
            kind_name(&entry.map_entry_value_field().kind())
        ),
        kind if field.is_list() => format!("repeated {}", kind_name(&kind)),
        kind if field.field_descriptor_proto().proto3_optional() => {
            format!("optional {}", kind_name(&kind))
        }
        kind => kind_name(&kind),
    }
}
