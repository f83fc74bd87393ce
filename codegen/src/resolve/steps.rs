//! Step bodies: `by`, `call` (with the downstream method and its request), `message`, `map`
//! and `validation`.

use std::collections::{HashMap, HashSet};

use prost_reflect::{DynamicMessage, MethodDescriptor};

use super::Resolver;
use super::args::CallerArgs;
use super::message::StepCtx;
use super::names::step_ident;
use super::names::{RESERVED_NAMES, check_name};
use super::options::{get_message, get_str, has_field, list};
use super::sites::{sub_span, with, with_index};
use crate::diagnostic::Span;
use crate::expr::{self, Type};
use crate::model::*;
use crate::schema::field_info;
use crate::source::{PathSegment, ValueSpan};
use crate::suggest::suggest;

impl Resolver<'_> {
    pub(super) fn step_body(
        &mut self,
        ctx: &StepCtx<'_>,
        scope: &expr::Scope,
        step: &DynamicMessage,
        reads: &mut HashSet<String>,
    ) -> Option<(StepBody, Type)> {
        let base = &ctx.base;
        let bodies: Vec<&str> = [
            "by",
            "call",
            "message",
            "map",
            "validation",
            "log",
            "custom",
            "switch",
        ]
        .into_iter()
        .filter(|f| has_field(step, f))
        .collect();
        match bodies.as_slice() {
            ["by"] => {
                let text = get_str(step, "by");
                let e =
                    self.expression(ctx, scope, &with(base, "by"), &text, reads, None, "`by`")?;
                let ty = e.checked.ty.clone();
                Some((StepBody::By(e), ty))
            }
            ["call"] => {
                let call = get_message(step, "call")?;
                let plan = self.call(ctx, scope, &call, &with(base, "call"), reads)?;
                let ty = Type::Message(plan.method.output().full_name().to_owned());
                Some((StepBody::Call(plan), ty))
            }
            ["message"] => {
                let m = get_message(step, "message")?;
                let call = self.message_call(ctx, scope, &m, &with(base, "message"), reads)?;
                let ty = Type::Message(call.target.full_name().to_owned());
                Some((StepBody::Message(call), ty))
            }
            ["map"] => {
                let map = get_message(step, "map")?;
                let plan = self.map(ctx, scope, &map, &with(base, "map"), reads)?;
                let element = match &plan.body {
                    MapBody::By(e) => e.checked.ty.clone(),
                    MapBody::Call(c) => Type::Message(c.method.output().full_name().to_owned()),
                    MapBody::Message(m) => Type::Message(m.target.full_name().to_owned()),
                };
                Some((StepBody::Map(plan), Type::List(Box::new(element))))
            }
            ["log"] => {
                let log = get_message(step, "log")?;
                let path = with(base, "log");
                let level = match get_str(&log, "level").as_str() {
                    "" => "info".to_owned(),
                    level @ ("trace" | "debug" | "info" | "warn" | "error") => level.to_owned(),
                    other => {
                        self.error_hint(
                            format!("unknown log level `{other}`"),
                            Self::value_span(ctx.site, &with(&path, "level")).0,
                            "write one of trace, debug, info, warn, error",
                        );
                        return None;
                    }
                };
                let message_text = get_str(&log, "message");
                let message = self.expression(
                    ctx,
                    scope,
                    &with(&path, "message"),
                    &message_text,
                    reads,
                    Some(&Type::String),
                    "a log's `message`",
                );
                let mut fields = Vec::new();
                let mut ok = true;
                for (j, field) in list(&log, "fields").iter().enumerate() {
                    let Some(field) = field.as_message() else {
                        continue;
                    };
                    let field_path = with_index(&path, "fields", j);
                    let name = get_str(field, "name");
                    if let Err((message, hint)) = check_name(&name, "log field", &[]) {
                        self.error_hint(
                            message,
                            Self::value_span(ctx.site, &with(&field_path, "name")).0,
                            hint,
                        );
                        ok = false;
                        continue;
                    }
                    let text = get_str(field, "by");
                    match self.expression(
                        ctx,
                        scope,
                        &with(&field_path, "by"),
                        &text,
                        reads,
                        None,
                        "a log field's `by`",
                    ) {
                        Some(e) => fields.push((name, e)),
                        None => ok = false,
                    }
                }
                let message = message?;
                ok.then_some((
                    StepBody::Log(LogPlan {
                        level,
                        message,
                        fields,
                    }),
                    Type::Null,
                ))
            }
            ["switch"] => {
                let switch = get_message(step, "switch")?;
                let path = with(base, "switch");
                let mut ty: Option<Type> = None;
                let mut ok = true;
                let mut cases = Vec::new();
                for (i, case) in list(&switch, "case").iter().enumerate() {
                    let Some(case) = case.as_message() else {
                        continue;
                    };
                    let case_path = with_index(&path, "case", i);
                    let condition = self.expression(
                        ctx,
                        scope,
                        &with(&case_path, "if"),
                        &get_str(case, "if"),
                        reads,
                        Some(&Type::Bool),
                        "a case's `if`",
                    );
                    let value = self.switch_value(
                        ctx,
                        scope,
                        &with(&case_path, "by"),
                        &get_str(case, "by"),
                        reads,
                        &mut ty,
                    );
                    match (condition, value) {
                        (Some(c), Some(v)) => cases.push((c, v)),
                        _ => ok = false,
                    }
                }
                let default_path = with(&path, "default");
                let default = match get_message(&switch, "default") {
                    Some(default) => self.switch_value(
                        ctx,
                        scope,
                        &with(&default_path, "by"),
                        &get_str(&default, "by"),
                        reads,
                        &mut ty,
                    ),
                    None => {
                        self.error_hint(
                            "a `switch` needs a `default`",
                            Self::value_span(ctx.site, &path).0,
                            "add `default { by: \"...\" }`: the value when no case holds",
                        );
                        None
                    }
                };
                if cases.is_empty() && ok {
                    self.error_hint(
                        "a `switch` needs at least one `case`",
                        Self::value_span(ctx.site, &path).0,
                        "add `case { if: \"...\" by: \"...\" }`, or write the default as a `by` step",
                    );
                    ok = false;
                }
                let default = default?;
                let ty = default.checked.ty.clone();
                ok.then_some((StepBody::Switch(SwitchPlan { cases, default }), ty))
            }
            ["custom"] => {
                let custom = get_message(step, "custom")?;
                let path = with(base, "custom");
                let name = ctx.all_names.get(ctx.index).cloned().unwrap_or_default();
                if name.is_empty() {
                    self.error_hint(
                        "a `custom` step needs a `name`: it names the method that computes it",
                        Self::value_span(ctx.site, &path).0,
                        "give the step a `name`",
                    );
                    return None;
                }
                let type_span = Self::value_span(ctx.site, &with(&path, "type")).0;
                let ty = self.custom_type(&get_str(&custom, "type"), ctx.message, type_span);
                let below = &ctx.all_names[(ctx.index + 1).min(ctx.all_names.len())..];
                let read_steps = self.custom_reads(
                    &custom,
                    ctx.defined,
                    below,
                    |i| Self::value_span(ctx.site, &with_index(&path, "reads", i)).0,
                    reads,
                );
                reads.insert("$".to_owned());
                let ty = ty?;
                Some((
                    StepBody::Custom(CustomPlan {
                        item: CustomItem::Step(name),
                        reads: read_steps?,
                        ty: ty.clone(),
                    }),
                    ty,
                ))
            }
            ["validation"] => {
                let v = get_message(step, "validation")?;
                let path = with(base, "validation");
                let condition_text = get_str(&v, "if");
                if condition_text.is_empty() {
                    self.error(
                        "a validation needs an `if` condition",
                        Self::value_span(ctx.site, &path).0,
                    );
                    return None;
                }
                let condition = self.expression(
                    ctx,
                    scope,
                    &with(&path, "if"),
                    &condition_text,
                    reads,
                    Some(&Type::Bool),
                    "a validation's `if`",
                );
                let message_text = get_str(&v, "message");
                let message_text = if message_text.is_empty() {
                    format!(
                        "'request rejected: {}'",
                        condition_text.replace('\'', "\\'")
                    )
                } else {
                    message_text
                };
                let message = self.expression(
                    ctx,
                    scope,
                    &with(&path, "message"),
                    &message_text,
                    reads,
                    Some(&Type::String),
                    "a validation's `message`",
                );
                let code = v
                    .get_field_by_name("code")
                    .and_then(|c| c.as_enum_number())
                    .filter(|&c| c != 0)
                    .unwrap_or(3);
                let details = self.error_details(ctx, scope, &v, &path, reads);
                Some((
                    StepBody::Validation(ValidationPlan {
                        condition: condition?,
                        code,
                        message: message?,
                        details: details?,
                    }),
                    Type::Null,
                ))
            }
            [] => {
                let message = match ctx.all_names.get(ctx.index) {
                    Some(name) if !name.is_empty() => format!("step `{name}` computes nothing"),
                    _ => "this step computes nothing".to_owned(),
                };
                self.error_hint(
                    message,
                    Self::value_span(ctx.site, base).0,
                    "give it one of `by`, `call`, `message`, `map`, `validation`, `log`, `custom` or `switch`",
                );
                None
            }
            _ => None, // a oneof: protox already rejects two bodies
        }
    }

    /// One value of a `switch`: of the type of the values before it, which the first sets.
    fn switch_value(
        &mut self,
        ctx: &StepCtx<'_>,
        scope: &expr::Scope,
        path: &[PathSegment],
        text: &str,
        reads: &mut HashSet<String>,
        ty: &mut Option<Type>,
    ) -> Option<Expression> {
        let expected = ty.clone();
        let value = self.expression(
            ctx,
            scope,
            path,
            text,
            reads,
            expected.as_ref(),
            "a case's `by`",
        )?;
        match &expected {
            None => *ty = Some(value.checked.ty.clone()),
            Some(expected) if value.checked.ty != *expected => {
                self.error_hint(
                    format!(
                        "this value is {}, but the switch's first value is {expected}",
                        value.checked.ty
                    ),
                    Self::value_span(ctx.site, path).0,
                    "give every case and the default values of one type",
                );
                return None;
            }
            Some(_) => {}
        }
        Some(value)
    }

    pub(super) fn call(
        &mut self,
        ctx: &StepCtx<'_>,
        scope: &expr::Scope,
        call: &DynamicMessage,
        path: &[PathSegment],
        reads: &mut HashSet<String>,
    ) -> Option<CallPlan> {
        let method_name = get_str(call, "method");
        if method_name.is_empty() {
            self.error_hint(
                "a `call` needs a `method`",
                Self::value_span(ctx.site, path).0,
                "name the downstream method as `package.Service/Method`",
            );
            return None;
        }
        let (method_span, method_value) = Self::value_span(ctx.site, &with(path, "method"));
        let method = self.find_method(&method_name, method_span, method_value)?;
        let timeout_text = get_str(call, "timeout");
        let timeout = if timeout_text.is_empty() {
            None
        } else {
            let span = Self::value_span(ctx.site, &with(path, "timeout")).0;
            self.duration(&timeout_text, span)
        };
        let input = method.input();
        let mut request = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        // The oneof members set so far, each with whether it has an `if`.
        let mut members: Vec<(String, bool)> = Vec::new();
        for (j, field_value) in list(call, "request").iter().enumerate() {
            let Some(field_rule) = field_value.as_message() else {
                continue;
            };
            let field_path = with_index(path, "request", j);
            let name = get_str(field_rule, "field");
            let name_span = Self::value_span(ctx.site, &with(&field_path, "field")).0;
            let Some(field) = input.get_field_by_name(&name) else {
                let names: Vec<String> = input.fields().map(|f| f.name().to_owned()).collect();
                let message = format!(
                    "no field `{name}` on `{}`, the request of `{method_name}`",
                    input.full_name()
                );
                match suggest(&name, &names) {
                    Some(s) => self.error_hint(message, name_span, format!("did you mean `{s}`?")),
                    None => self.error_hint(
                        message,
                        name_span,
                        format!("its fields are: {}", names.join(", ")),
                    ),
                }
                continue;
            };
            let condition_text = get_str(field_rule, "if");
            if let Some(oneof) = field
                .containing_oneof()
                .filter(|_| !field.field_descriptor_proto().proto3_optional())
            {
                let others: Vec<&(String, bool)> = members
                    .iter()
                    .filter(|(other, _)| {
                        *other != name
                            && input
                                .get_field_by_name(other)
                                .and_then(|f| f.containing_oneof())
                                .is_some_and(|o| o.name() == oneof.name())
                    })
                    .collect();
                let always = others.iter().find(|(_, conditional)| !conditional);
                if let Some((other, _)) =
                    always.or(others.first().filter(|_| condition_text.is_empty()))
                {
                    self.error_hint(
                        format!(
                            "request fields `{other}` and `{name}` are members of oneof `{}`, which holds one value",
                            oneof.name()
                        ),
                        name_span,
                        "set one member of the oneof, or give each member an `if`: the one whose condition holds is set",
                    );
                    continue;
                }
                members.push((name.clone(), !condition_text.is_empty()));
            }
            if !seen.insert(name.clone()) {
                self.error_hint(
                    format!("request field `{name}` is set twice"),
                    name_span,
                    "set each request field once",
                );
                continue;
            }
            let text = get_str(field_rule, "by");
            let target = field_info(&field).ty;
            self.binding_hint = Some(target.clone());
            if let Some(e) = self.expression(
                ctx,
                scope,
                &with(&field_path, "by"),
                &text,
                reads,
                None,
                "a request field's `by`",
            ) {
                let by_span = Self::value_span(ctx.site, &with(&field_path, "by")).0;
                self.check_binding(&e.checked.ty, &field, &target, by_span);
                let condition = if condition_text.is_empty() {
                    None
                } else {
                    match self.expression(
                        ctx,
                        scope,
                        &with(&field_path, "if"),
                        &condition_text,
                        reads,
                        Some(&Type::Bool),
                        "a request field's `if`",
                    ) {
                        Some(condition) => Some(condition),
                        None => continue,
                    }
                };
                request.push((field, e, condition));
            }
        }
        let metadata = self.call_metadata(ctx, scope, call, path, reads);
        let retry = self.call_retry(ctx, call, path);
        let defaults = self.call_defaults(&method);
        let value = Type::Message(method.output().full_name().to_owned());
        let mut handler_reads = HashSet::new();
        let errors = self.error_handlers(ctx, scope, call, path, &value, &mut handler_reads);
        // Names only handlers read are awaited only when the call fails.
        let mut lazy_reads: Vec<String> = handler_reads
            .iter()
            .filter(|name| !reads.contains(*name))
            .cloned()
            .collect();
        lazy_reads.sort();
        reads.extend(handler_reads);
        Some(CallPlan {
            method,
            request,
            timeout,
            defaults,
            errors,
            lazy_reads,
            metadata,
            retry,
            captures_metadata: false,
        })
    }

    pub(super) fn find_method(
        &mut self,
        name: &str,
        span: Option<Span>,
        value: Option<ValueSpan>,
    ) -> Option<MethodDescriptor> {
        let Some((service_name, method_name)) = name.split_once('/') else {
            // `pkg.Service.Method` for `pkg.Service/Method` is the likely slip.
            let slashed = name.rsplit_once('.').and_then(|(service, method)| {
                let found = self.loaded.pool.get_service_by_name(service)?;
                found
                    .methods()
                    .any(|m| m.name() == method)
                    .then(|| format!("{service}/{method}"))
            });
            let hint = match slashed {
                Some(fixed) => format!("a `/` separates the service from the method: `{fixed}`"),
                None => "write it as `package.Service/Method`, such as `demo.users.v1.UserService/GetUser`".to_owned(),
            };
            self.error_hint(format!("`{name}` is not a method reference"), span, hint);
            return None;
        };
        let service_span = sub_span(&span, &value, 0..service_name.len());
        let method_span = sub_span(&span, &value, service_name.len() + 1..name.len());
        let Some(service) = self.loaded.pool.get_service_by_name(service_name) else {
            let services: Vec<String> = self
                .loaded
                .pool
                .services()
                .map(|s| s.full_name().to_owned())
                .collect();
            let hint = match suggest(service_name, &services) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "is the proto that defines it imported?".to_owned(),
            };
            self.error_hint(
                format!("unknown service `{service_name}`"),
                service_span,
                hint,
            );
            return None;
        };
        let Some(method) = service.methods().find(|m| m.name() == method_name) else {
            let methods: Vec<String> = service.methods().map(|m| m.name().to_owned()).collect();
            let message = format!("no method `{method_name}` on `{service_name}`");
            match suggest(method_name, &methods) {
                Some(s) => self.error_hint(message, method_span, format!("did you mean `{s}`?")),
                None => self.error_hint(
                    message,
                    method_span,
                    format!("its methods are: {}", methods.join(", ")),
                ),
            }
            return None;
        };
        if method.is_client_streaming() || method.is_server_streaming() {
            self.error(
                format!("`{name}` streams; `call` takes unary methods only"),
                span,
            );
            return None;
        }
        Some(method)
    }

    pub(super) fn message_call(
        &mut self,
        ctx: &StepCtx<'_>,
        scope: &expr::Scope,
        m: &DynamicMessage,
        path: &[PathSegment],
        reads: &mut HashSet<String>,
    ) -> Option<MessageCall> {
        let name = get_str(m, "name");
        let span = Self::value_span(ctx.site, &with(path, "name")).0;
        let Some(target) = self.find_message(&name, ctx.message) else {
            let hint = match self.suggest_message(&name, ctx.message) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "name a message of this package, or give its full name".to_owned(),
            };
            self.error_hint(format!("unknown message `{name}`"), span, hint);
            return None;
        };
        if !self.has_rules(&target) {
            self.error_hint(
                format!(
                    "`{}` has no composition rules, so it cannot be built by a `message` step",
                    target.full_name()
                ),
                span.clone(),
                "add `(mosaic.v1.field).by` to its fields",
            );
        }
        let mut args = Vec::new();
        let mut types = Vec::new();
        let mut arg_idents: HashMap<String, String> = HashMap::new();
        for (j, arg) in list(m, "args").iter().enumerate() {
            let Some(arg) = arg.as_message() else {
                continue;
            };
            let arg_path = with_index(path, "args", j);
            let arg_name = get_str(arg, "name");
            let arg_span = Self::value_span(ctx.site, &with(&arg_path, "name")).0;
            if let Err((message, hint)) = check_name(&arg_name, "argument", &[]) {
                self.error_hint(message, arg_span, hint);
                continue;
            }
            if let Some(other) = arg_idents.insert(step_ident(&arg_name), arg_name.clone()) {
                let message = if other == arg_name {
                    format!("argument `{arg_name}` is passed twice")
                } else {
                    format!(
                        "arguments `{other}` and `{arg_name}` are the same Rust identifier `{}`",
                        step_ident(&arg_name)
                    )
                };
                self.error(message, arg_span);
                continue;
            }
            let text = get_str(arg, "by");
            let by_path = with(&arg_path, "by");
            let by_span = Self::value_span(ctx.site, &by_path).0;
            match self.expression(
                ctx,
                scope,
                &by_path,
                &text,
                reads,
                None,
                "an argument's `by`",
            ) {
                Some(e) => {
                    types.push((arg_name.clone(), e.checked.ty.clone(), by_span));
                    args.push((arg_name, e));
                }
                None => types.push((arg_name, Type::Error, by_span)),
            }
        }
        let step = ctx.all_names.get(ctx.index).cloned().unwrap_or_default();
        self.callers
            .entry(target.full_name().to_owned())
            .or_default()
            .push(CallerArgs {
                args: types,
                span,
                step,
            });
        Some(MessageCall { target, args })
    }

    pub(super) fn map(
        &mut self,
        ctx: &StepCtx<'_>,
        scope: &expr::Scope,
        map: &DynamicMessage,
        path: &[PathSegment],
        reads: &mut HashSet<String>,
    ) -> Option<MapPlan> {
        let Some(iterator) = get_message(map, "iterator") else {
            self.error(
                "a `map` needs an `iterator { name src }`",
                Self::value_span(ctx.site, path).0,
            );
            return None;
        };
        let iter_path = with(path, "iterator");
        let name = get_str(&iterator, "name");
        if let Err((message, hint)) = check_name(&name, "iterator", RESERVED_NAMES) {
            self.error_hint(
                message,
                Self::value_span(ctx.site, &with(&iter_path, "name")).0,
                hint,
            );
            return None;
        }
        let src_text = get_str(&iterator, "src");
        let src = self.expression(
            ctx,
            scope,
            &with(&iter_path, "src"),
            &src_text,
            reads,
            None,
            "an iterator's `src`",
        )?;
        let element = match &src.checked.ty {
            Type::List(element) => (**element).clone(),
            Type::Error => Type::Error,
            other => {
                let lists: Vec<String> = match other {
                    Type::Message(name) => self
                        .loaded
                        .pool
                        .get_message_by_name(name)
                        .map(|m| {
                            m.fields()
                                .filter(|f| f.is_list())
                                .map(|f| format!("`{}.{}`", src_text.trim(), f.name()))
                                .collect()
                        })
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                let message = format!("an iterator's `src` must be a list, found {other}");
                let span = Self::value_span(ctx.site, &with(&iter_path, "src")).0;
                match lists.as_slice() {
                    [] => self.error(message, span),
                    [one] => self.error_hint(message, span, format!("did you mean {one}?")),
                    _ => self.error_hint(
                        message,
                        span,
                        format!("iterate over one of its lists: {}", lists.join(", ")),
                    ),
                }
                return None;
            }
        };
        let mut inner = scope.clone();
        inner.insert(&name, element.clone());
        let mut inner_reads = HashSet::new();
        let body = if has_field(map, "by") {
            let text = get_str(map, "by");
            MapBody::By(self.expression(
                ctx,
                &inner,
                &with(path, "by"),
                &text,
                &mut inner_reads,
                None,
                "`by`",
            )?)
        } else if let Some(call) = get_message(map, "call") {
            MapBody::Call(Box::new(self.call(
                ctx,
                &inner,
                &call,
                &with(path, "call"),
                &mut inner_reads,
            )?))
        } else if let Some(m) = get_message(map, "message") {
            MapBody::Message(Box::new(self.message_call(
                ctx,
                &inner,
                &m,
                &with(path, "message"),
                &mut inner_reads,
            )?))
        } else {
            self.error_hint(
                "this `map` computes nothing per element",
                Self::value_span(ctx.site, path).0,
                "give it one of `by`, `call` or `message`",
            );
            return None;
        };
        inner_reads.remove(&name);
        reads.extend(inner_reads);
        Some(MapPlan {
            iterator: name,
            element,
            src,
            body,
        })
    }
}
