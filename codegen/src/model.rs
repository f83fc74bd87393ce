//! The intermediate representation: edge services, and for every message with rules, its input,
//! its steps and how each field is bound.
//!
//! The IR is built by [`crate::resolve`] from descriptors and holds everything emission needs,
//! already checked: names resolved, expressions parsed and typed, step dependencies known.
//! **Boundary:** nothing here refers to the wire form of descriptors (emission reads the IR, not
//! the option bytes) and nothing here is Rust syntax.

use std::time::Duration;

use prost_reflect::{
    EnumDescriptor, FieldDescriptor, MessageDescriptor, MethodDescriptor, OneofDescriptor,
    ServiceDescriptor,
};

use crate::expr;

/// Everything to generate for one set of protos.
#[derive(Debug, Default)]
pub struct Model {
    /// Services marked `(mosaic.v1.service)`.
    pub services: Vec<EdgeService>,
    /// Messages with rules, each after every message it builds (callees first).
    pub messages: Vec<MessagePlan>,
    /// Every conversion between two enums that a binding or an alias needs.
    pub enum_conversions: Vec<EnumConversion>,
    /// Every declared alias pair: how a downstream message converts into its edge alias.
    pub message_conversions: Vec<MessageConversion>,
}

/// How values of a downstream message convert into the edge message declared its alias
/// (`(mosaic.v1.message).alias`), decided at build time for every field.
#[derive(Debug, Clone)]
pub struct MessageConversion {
    /// The source (downstream) message.
    pub from: MessageDescriptor,
    /// The alias (edge) message.
    pub to: MessageDescriptor,
    /// Each field of `to` outside its oneofs, in field order, with where its value comes from.
    pub fields: Vec<(FieldDescriptor, FieldFrom)>,
    /// Each oneof of `to`, from one oneof of `from`.
    pub oneofs: Vec<OneofConversion>,
}

/// Where a field of an alias message gets its value.
#[derive(Debug, Clone)]
pub enum FieldFrom {
    /// The source's counterpart field, converted.
    Field(FieldDescriptor, ElementConversion),
    /// Its own `by` rule, reading the source as `$`.
    Rule(Expression),
}

/// A oneof of an alias message, from a oneof of the source: each target member with its
/// source member. A source member without a counterpart leaves the target's oneof unset.
#[derive(Debug, Clone)]
pub struct OneofConversion {
    /// The alias message's oneof.
    pub target: OneofDescriptor,
    /// The source's oneof.
    pub source: OneofDescriptor,
    /// Target member, source member, and how a value converts.
    pub members: Vec<(FieldDescriptor, FieldDescriptor, ElementConversion)>,
}

/// How one value (a singular field's, or one element or map value) converts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElementConversion {
    /// Stored alike: copied or cloned.
    Same,
    /// Into a wider number (`int32` into `int64`, `float` into `double`, ...).
    Widen,
    /// Between two enums (full names), by an [`EnumConversion`].
    Enum { from: String, to: String },
    /// Between two messages (full names), by the [`MessageConversion`] of an alias pair.
    Message { from: String, to: String },
}

/// How values of one enum convert into another's, decided at build time.
#[derive(Debug, Clone)]
pub struct EnumConversion {
    /// The source enum.
    pub from: EnumDescriptor,
    /// The target enum.
    pub to: EnumDescriptor,
    /// Each source number (the first of aliased values) and the target number it becomes.
    pub values: Vec<(i32, i32)>,
    /// The target number of source numbers not declared (proto3 enums are open), if the
    /// target has a `default` value; otherwise such a number fails the call.
    pub default: Option<i32>,
}

/// An edge service whose handlers are generated.
#[derive(Debug)]
pub struct EdgeService {
    /// Its descriptor.
    pub descriptor: ServiceDescriptor,
    /// Its methods, in proto order.
    pub methods: Vec<EdgeMethod>,
    /// Its deployment values (`$env`), when it declares any.
    pub deployment: Option<DeploymentPlan>,
}

/// An edge service's deployment values: the variables read at start and the values computed
/// once from them, all read as `$env.<name>`.
#[derive(Debug, Default)]
pub struct DeploymentPlan {
    /// The variables, in declaration order.
    pub variables: Vec<EnvVariable>,
    /// The values and validations computed from them, in declaration order.
    pub values: Vec<DeploymentValue>,
}

/// One deployment variable.
#[derive(Debug, Clone)]
pub struct EnvVariable {
    /// Its name (`$env.<name>`, and its key in `[env]`).
    pub name: String,
    /// Its type: a scalar or a list of one.
    pub ty: expr::Type,
    /// Its default, as environment-variable text; `None`: required.
    pub default: Option<String>,
    /// The environment variable read.
    pub from: String,
}

/// A value computed once from the deployment variables.
#[derive(Debug)]
pub enum DeploymentValue {
    /// A named value.
    Value {
        /// Its name.
        name: String,
        /// Its expression.
        value: Expression,
    },
    /// A check that fails the start when its condition holds.
    Validation {
        /// Fails when true.
        condition: Expression,
        /// The message.
        message: Expression,
    },
}

impl DeploymentPlan {
    /// Every name readable as `$env.<name>`, with its type, in declaration order.
    pub fn names(&self) -> impl Iterator<Item = (&str, &expr::Type)> {
        let variables = self.variables.iter().map(|v| (v.name.as_str(), &v.ty));
        let values = self.values.iter().filter_map(|v| match v {
            DeploymentValue::Value { name, value } => Some((name.as_str(), &value.checked.ty)),
            DeploymentValue::Validation { .. } => None,
        });
        variables.chain(values)
    }
}

/// One generated edge method.
#[derive(Debug)]
pub struct EdgeMethod {
    /// Its descriptor.
    pub descriptor: MethodDescriptor,
    /// `(mosaic.v1.method).timeout`.
    pub timeout: Option<Duration>,
    /// The message composed for it: its response, unless `(mosaic.v1.method).response`
    /// names another.
    pub composed: MessageDescriptor,
    /// With another composed message: the field of it the method answers with; `None`
    /// answers `google.protobuf.Empty`.
    pub response_field: Option<FieldDescriptor>,
}

/// How to build one message.
#[derive(Debug)]
pub struct MessagePlan {
    /// The message built.
    pub descriptor: MessageDescriptor,
    /// What `$` is.
    pub input: Input,
    /// Its steps, in written order.
    pub steps: Vec<StepPlan>,
    /// How each field gets its value, in field order.
    pub fields: Vec<FieldPlan>,
    /// Whether a field's binding reads `caller` (the caller's identity).
    pub reads_caller: bool,
    /// With `(mosaic.v1.message).custom`: the method computing the whole message once its
    /// steps are done (its fields then have no rules).
    pub custom: Option<CustomPlan>,
    /// The edge service whose `Resolvers` implementation provides the custom items of this
    /// message and of the messages it builds, when there are any.
    pub custom_service: Option<ServiceDescriptor>,
    /// The edge service whose deployment values (`$env`) this message reads, if it reads any.
    pub deployment: Option<ServiceDescriptor>,
}

/// The input (`$`) of a message's rules.
#[derive(Debug, Clone)]
pub enum Input {
    /// The request of the edge method(s) answering with this message.
    Request(MessageDescriptor),
    /// The arguments passed by `message` steps building it, with their inferred types.
    Args(Vec<Argument>),
}

/// One argument of a message built by `message` steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Argument {
    /// Name, readable as `$.<name>`.
    pub name: String,
    /// Type, inferred from the callers (all callers agree).
    pub ty: expr::Type,
}

/// A parsed, checked expression and where it came from.
#[derive(Debug, Clone)]
pub struct Expression {
    /// The source text.
    pub text: String,
    /// The checked form, ready to emit.
    pub checked: Box<expr::Checked>,
}

/// One step of a message's rules.
#[derive(Debug)]
pub struct StepPlan {
    /// The step's name, if it has one (validations may not).
    pub name: Option<String>,
    /// Runs only when this holds; otherwise the value is the type's default.
    pub guard: Option<Expression>,
    /// What the step computes.
    pub body: StepBody,
    /// Indices of the steps this one reads (its guard and body), ascending.
    pub reads: Vec<usize>,
    /// The step's value type.
    pub ty: expr::Type,
    /// Whether its fields fill same-named fields of the message built.
    pub autobind: bool,
    /// Whether its guard or body reads `caller` (the caller's identity).
    pub reads_caller: bool,
    /// Whether its guard or body reads `$` (the message's input).
    pub reads_input: bool,
    /// Whether its guard or body reads `$env` (the deployment values).
    pub reads_env: bool,
    /// The steps of `reads` that only its call's error handlers read, awaited only when the
    /// call fails (see [`CallPlan::lazy_reads`]).
    pub lazy: Vec<usize>,
}

/// What a step computes.
#[derive(Debug)]
pub enum StepBody {
    /// A value from an expression.
    By(Expression),
    /// A downstream call.
    Call(CallPlan),
    /// Another message, built from arguments.
    Message(MessageCall),
    /// One value per list element.
    Map(MapPlan),
    /// A check that rejects the request.
    Validation(ValidationPlan),
    /// An event written to the log.
    Log(LogPlan),
    /// A value from the edge service's `Resolvers` implementation.
    Custom(CustomPlan),
    /// The value of the first case that holds, or the default.
    Switch(SwitchPlan),
    /// The response metadata of the call step at this index (its `response_metadata`).
    ResponseMetadata(usize),
}

/// A `switch` step: `(condition, value)` cases in order, and the default value.
#[derive(Debug)]
pub struct SwitchPlan {
    /// The cases, tried in order.
    pub cases: Vec<(Expression, Expression)>,
    /// The value when no case holds.
    pub default: Expression,
}

/// An item computed by the `<Service>Resolvers` implementation: a method taking `$` and the
/// values of `reads`.
#[derive(Debug, Clone)]
pub struct CustomPlan {
    /// What it computes, which names the method.
    pub item: CustomItem,
    /// The steps passed after `$`, in the order written.
    pub reads: Vec<usize>,
    /// The type of the value returned (for a field, the field's; for a message, the message).
    pub ty: expr::Type,
}

/// What a custom method computes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CustomItem {
    /// The step of this name.
    Step(String),
    /// The field of this name.
    Field(String),
    /// The whole message.
    Message,
}

/// A log step.
#[derive(Debug)]
pub struct LogPlan {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The message.
    pub message: Expression,
    /// The fields, by name, in order.
    pub fields: Vec<(String, Expression)>,
}

/// A unary downstream call.
#[derive(Debug)]
pub struct CallPlan {
    /// The downstream method.
    pub method: MethodDescriptor,
    /// Request fields, their values and the conditions they are set under.
    pub request: Vec<(FieldDescriptor, Expression, Option<Expression>)>,
    /// `timeout` of the call.
    pub timeout: Option<Duration>,
    /// The downstream method's resilience defaults from its proto.
    pub defaults: CallDefaults,
    /// What a failure leads to: the first handler whose condition holds decides.
    pub errors: Vec<ErrorHandlerPlan>,
    /// Names only the handlers read (a fallback's step): for a call step, awaited only once
    /// the call has failed, so a fallback runs only when it is needed.
    pub lazy_reads: Vec<String>,
    /// Metadata sent with the call.
    pub metadata: Vec<MetadataPlan>,
    /// The call's own retry policy.
    pub retry: Option<RetryPlan>,
    /// Whether a `response_metadata` step reads its response metadata.
    pub captures_metadata: bool,
}

/// A call's own retry policy (`call { retry }`).
#[derive(Debug)]
pub struct RetryPlan {
    /// Attempts in all, 1 to 5.
    pub attempts: u32,
    /// The codes retried (`google.rpc.Code` numbers); empty: `UNAVAILABLE`.
    pub codes: Vec<i32>,
    /// The first backoff, if set.
    pub initial_backoff: Option<Duration>,
    /// The longest backoff, if set.
    pub max_backoff: Option<Duration>,
    /// The backoff's growth, if set.
    pub multiplier: Option<f64>,
    /// Retried only when this holds (reads `error`).
    pub condition: Option<Expression>,
}

/// One metadata entry of a call.
#[derive(Debug)]
pub struct MetadataPlan {
    /// The key, lower-case.
    pub name: String,
    /// Where the value comes from.
    pub value: MetadataSource,
}

/// Where a metadata value comes from.
#[derive(Debug)]
pub enum MetadataSource {
    /// An expression: a string, or bytes for a `-bin` key.
    Expression(Expression),
    /// The edge request's header of this name.
    Forward(String),
}

/// One `error` handler of a call.
#[derive(Debug)]
pub struct ErrorHandlerPlan {
    /// When it applies (reads `error`); always when absent.
    pub condition: Option<Expression>,
    /// What it does.
    pub action: ErrorAction,
    /// The names its condition reads.
    pub condition_reads: Vec<String>,
    /// The names its action reads.
    pub action_reads: Vec<String>,
}

/// What an error handler makes of a failed call.
#[derive(Debug)]
pub enum ErrorAction {
    /// The step's value is its default, and the response is partial.
    Ignore,
    /// The step's value is this instead.
    Fallback(Expression),
    /// The edge call fails with this status.
    Status(StatusPlan),
    /// The edge call fails with the downstream's status.
    Fail,
}

/// A status an error handler answers with.
#[derive(Debug)]
pub struct StatusPlan {
    /// The gRPC code.
    pub code: i32,
    /// The message; the downstream's when absent.
    pub message: Option<Expression>,
    /// `google.rpc` details, in order.
    pub details: Vec<DetailPlan>,
}

/// One detail of a [`StatusPlan`]; every text is an expression, absent when not written.
#[derive(Debug)]
pub enum DetailPlan {
    /// `google.rpc.ErrorInfo`.
    ErrorInfo {
        /// `reason`.
        reason: Option<Expression>,
        /// `domain`.
        domain: Option<Expression>,
        /// `metadata`, by key.
        metadata: Vec<(String, Expression)>,
    },
    /// `google.rpc.LocalizedMessage`.
    LocalizedMessage {
        /// `locale`.
        locale: Option<Expression>,
        /// `message`.
        message: Option<Expression>,
    },
    /// `google.rpc.BadRequest`: (field, description) per violation.
    BadRequest(Vec<(Option<Expression>, Option<Expression>)>),
    /// `google.rpc.PreconditionFailure`: (type, subject, description) per violation.
    PreconditionFailure(Vec<(Option<Expression>, Option<Expression>, Option<Expression>)>),
    /// `google.rpc.ResourceInfo`.
    ResourceInfo {
        /// `resource_type`.
        resource_type: Option<Expression>,
        /// `resource_name`.
        resource_name: Option<Expression>,
        /// `owner`.
        owner: Option<Expression>,
        /// `description`.
        description: Option<Expression>,
    },
}

/// What a downstream method's proto says about calling it resiliently: its
/// `idempotency_level` and its `mosaic.v1.method` annotation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CallDefaults {
    /// `IDEMPOTENT` / `NO_SIDE_EFFECTS`, or `idempotent: true`.
    pub idempotent: bool,
    /// `timeout`: per-call timeout.
    pub timeout: Option<Duration>,
    /// `retry_attempts`.
    pub max_attempts: Option<u32>,
    /// `hedge_delay`.
    pub hedge_delay: Option<Duration>,
}

/// Building another message with arguments.
#[derive(Debug)]
pub struct MessageCall {
    /// The message built.
    pub target: MessageDescriptor,
    /// Argument values, by name.
    pub args: Vec<(String, Expression)>,
}

/// A map over a list.
#[derive(Debug)]
pub struct MapPlan {
    /// The name each element gets.
    pub iterator: String,
    /// The element type.
    pub element: expr::Type,
    /// The list.
    pub src: Expression,
    /// What is computed per element.
    pub body: MapBody,
}

/// What a map computes per element.
#[derive(Debug)]
pub enum MapBody {
    /// A value.
    By(Expression),
    /// A downstream call.
    Call(Box<CallPlan>),
    /// A message.
    Message(Box<MessageCall>),
}

/// A validation step.
#[derive(Debug)]
pub struct ValidationPlan {
    /// Rejects when true.
    pub condition: Expression,
    /// The gRPC status code of the rejection.
    pub code: i32,
    /// The status message.
    pub message: Expression,
    /// `google.rpc` details of the rejection.
    pub details: Vec<DetailPlan>,
}

/// How one field of a built message gets its value.
#[derive(Debug)]
pub struct FieldPlan {
    /// The field.
    pub field: FieldDescriptor,
    /// Its source.
    pub source: FieldSource,
    /// `(mosaic.v1.field).if`: set only when this holds.
    pub condition: Option<Expression>,
    /// Indices of the steps its value reads, ascending.
    pub reads: Vec<usize>,
    /// Whether its value reads `$`.
    pub reads_input: bool,
}

/// Where a field's value comes from.
#[derive(Debug)]
pub enum FieldSource {
    /// `(mosaic.v1.field).by`.
    By(Expression),
    /// `(mosaic.v1.field).custom`.
    Custom(CustomPlan),
    /// Copied from the same-named field of an `autobind` step's value.
    Autobind {
        /// The step.
        step: usize,
        /// The field copied.
        from: Box<FieldDescriptor>,
        /// Reading it: `step.field`, checked like a `by` (an unnamed step is read as
        /// `mosaic_step_<index>`, the name emission gives it).
        value: Expression,
    },
}

impl MessagePlan {
    /// Whether `$` is the request of an edge method.
    pub fn is_response(&self) -> bool {
        matches!(self.input, Input::Request(_))
    }
}
