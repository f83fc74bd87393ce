//! Each construct of the language, alone and combined: step and field `by`, `call` (request
//! fields, timeouts, resilience options), `message` with arguments, `map` with each body,
//! `validation`, guards, `autobind`, `caller`, method options, HTTP bindings, and steps read
//! by one, several or no readers.

use crate::cases::{Case, Ctx, fragment, single};
use crate::proto::{Build, Call, File, MapBody, Message, Service, Step};

pub(crate) fn all() -> Vec<Case> {
    vec![
        step_by(),
        readers(),
        call(),
        method(),
        message(),
        map(),
        validation(),
        validation_named(),
        validation_guarded(),
        map_call(),
        guard(),
        autobind_named(),
        autobind_unnamed(),
        caller(),
        http(),
    ]
}

/// `<P>Data` (request and response of the downstream `Get`) and `<P>Req` (the edge request).
fn io(file: &mut File, c: &Ctx) {
    file.message(
        Message::new(&c.n("Data"))
            .field("int64", "v")
            .field("string", "s")
            .field("repeated int64", "xs")
            .field("repeated Item", "items")
            .field("Item", "item")
            .field("Color", "color"),
    );
    file.message(
        Message::new(&c.n("Req"))
            .field("int64", "x")
            .field("string", "s")
            .field("repeated int64", "xs")
            .field("bool", "flag"),
    );
}

fn construct(name: &str, build: impl FnOnce(&mut File, &Ctx)) -> Case {
    fragment("constructs", name, |file, c| {
        io(file, c);
        build(file, c);
        c.services(file, "Data", "Data", "Req");
    })
}

/// `construct_step_by`: `by` steps reading `$` and each other, a list-valued step, an unread
/// step, and field `by`s over them.
fn step_by() -> Case {
    construct("construct_step_by", |file, c| {
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::by("a", "$.x + 1"))
                .step(Step::by("b", "a * 2"))
                .step(Step::by("c", "a + b"))
                .step(Step::by("s", "$.s + string(c)"))
                .step(Step::by("lst", "[a, b, c]"))
                .step(Step::by("unused", "$.x * 3"))
                .step(Step::by("flag", "$.flag"))
                .by("int64", "a", "a")
                .by("int64", "c", "c")
                .by("string", "s", "s")
                .by("int64", "sum", "lst[0] + lst[2]")
                .by("repeated int64", "lst", "lst")
                .by("bool", "flag", "flag")
                .by("int32", "literal", "42"),
        );
    })
}

/// `construct_readers`: a call read by several steps, steps in a diamond, a step read by
/// nobody, by one field, by one step, by several steps and fields.
fn readers() -> Case {
    construct("construct_readers", |file, c| {
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call("d1", Call::new(&c.get()).set("v", "$.x")))
                .step(Step::by("d2", "d1.v + 1"))
                .step(Step::by("d3", "d1.item"))
                .step(Step::by("d4", "d2 + d3.id"))
                .step(Step::by("nobody", "d1.s"))
                .step(Step::by("one_field", "$.s"))
                .step(Step::by("one_step", "$.xs"))
                .step(Step::by("from_one_step", "size(one_step) * 2"))
                .step(Step::by("many", "[d4, d2]"))
                .step(Step::by("m1", "many[0]"))
                .step(Step::by("m2", "many[1]"))
                .by("int64", "v", "d4")
                .by("string", "s", "one_field")
                .by("int64", "doubled", "from_one_step")
                .by("int64", "joined", "m1 + m2 + size(many)")
                .by("repeated Item", "items", "d1.items"),
        );
    })
}

/// `construct_call`: downstream methods with resilience options, calls with and without a
/// timeout, with no request fields and with every one, to methods with other types (`Once` is
/// declared and not called).
fn call() -> Case {
    construct("construct_call", |file, c| {
        file.message(Message::new(&c.n("Ping")));
        file.message(Message::new(&c.n("Pong")).field("bool", "ok"));
        let (down, ping, pong) = (c.n("Data"), c.n("Ping"), c.n("Pong"));
        file.down(
            &c.n("Quote"),
            &down,
            &down,
            "option idempotency_level = NO_SIDE_EFFECTS;\n    option (mosaic.v1.method) = {timeout: \"150ms\" retry_attempts: 4 hedge_delay: \"20ms\"};",
        );
        file.down(
            &c.n("Safe"),
            &down,
            &down,
            "option (mosaic.v1.method) = {idempotent: true timeout: \"1.5s\"};",
        );
        file.down(
            &c.n("Once"),
            &down,
            &down,
            "option (mosaic.v1.method) = {retry_attempts: 1};",
        );
        file.down(
            &c.n("Ping"),
            &ping,
            &pong,
            "option idempotency_level = IDEMPOTENT;",
        );
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call("none", Call::new(&c.get()).timeout("1m")))
                .step(Step::call(
                    "all",
                    Call::new(&c.down("Quote"))
                        .set("v", "$.x")
                        .set("s", "$.s")
                        .set("xs", "$.xs")
                        .set("items", "none.items")
                        .set("item", "null")
                        .set("color", "none.color")
                        .timeout("250ms"),
                ))
                .step(Step::call(
                    "safe",
                    Call::new(&c.down("Safe")).set("s", "$.s").timeout("90ms"),
                ))
                .step(Step::call("ping", Call::new(&c.down("Ping"))))
                .by("int64", "v", "all.v + none.v")
                .by("string", "s", "safe.s + all.s")
                .by("bool", "ok", "ping.ok"),
        );
    })
}

/// `construct_method`: edge services with several methods (timeouts, access rules on methods
/// and on a service, two methods sharing a response, a response with field rules only).
fn method() -> Case {
    single("construct_method", |file, c| {
        io(file, c);
        file.message(Message::new("OtherRequest").field("string", "s"));
        file.message(
            Message::new("EdgeResponse")
                .step(Step::call("d", Call::new(&c.get()).set("v", "$.x")))
                .by("int64", "v", "d.v"),
        );
        file.message(Message::new("Other").by("string", "s", "$.s + '!'"));
        file.down("Get", "Data", "Data", "");
        file.edge(
            "Run",
            "Req",
            "EdgeResponse",
            "option (mosaic.v1.method) = {timeout: \"1s\"};",
        );
        file.edge(
            "Fast",
            "Req",
            "EdgeResponse",
            "option (mosaic.v1.method) = {timeout: \"100ms\" access: {public: true}};",
        );
        file.edge("Plain", "Req", "EdgeResponse", "");
        file.edge(
            "Scoped",
            "OtherRequest",
            "Other",
            "option (mosaic.v1.method) = {access: {schemes: [\"jwt\"] scopes: [\"a:read\"] claims: {name: \"tenant\" values: [\"t1\"]}}};",
        );
        file.raw(
            "service Second {\n  option (mosaic.v1.service) = {access: {plans: [\"gold\"] consumers: [\"c1\"]}};\n  rpc Again(OtherRequest) returns (Other) {\n    option (mosaic.v1.method) = {timeout: \"3s\"};\n  }\n}\n",
        );
        file.service(Service::downstream("Unused").rpc("Nothing", "Data", "Data", ""));
    })
}

/// `construct_message`: built messages with arguments of every expression type, their own
/// calls and `message` steps, built by two steps and per element, with no arguments, and
/// autobinding an argument.
fn message() -> Case {
    construct("construct_message", |file, c| {
        let leaf = |n: &str| {
            Build::new(&c.n("Leaf"))
                .arg("n", n)
                .arg("s", "$.s")
                .arg("item", "d.item")
                .arg("list", "$.xs")
                .arg("items", "d.items")
                .arg("e", "d.color")
                .arg("b", "$.flag")
                .arg("raw", "b'\\x00'")
                .arg("d", "double($.x)")
                .arg("u", "uint($.x)")
        };
        file.message(
            Message::new(&c.n("Leaf"))
                .step(Step::by("it", "$.item").autobind())
                .field("int64", "id")
                .field("string", "name")
                .by("int64", "n", "$.n")
                .by("string", "s", "$.s")
                .by("repeated int64", "list", "$.list")
                .by("repeated Item", "items", "$.items")
                .by("Color", "e", "$.e")
                .by("bool", "b", "$.b")
                .by("bytes", "raw", "$.raw")
                .by("double", "d", "$.d")
                .by("uint64", "u", "$.u"),
        );
        file.message(
            Message::new(&c.n("Mid"))
                .step(Step::call("d", Call::new(&c.get()).set("v", "$.n")))
                .step(Step::build(
                    "leaf",
                    Build::new(&c.n("Leaf"))
                        .arg("n", "d.v")
                        .arg("s", "d.s")
                        .arg("item", "d.item")
                        .arg("list", "[d.v]")
                        .arg("items", "d.items")
                        .arg("e", "d.color")
                        .arg("b", "true")
                        .arg("raw", "b''")
                        .arg("d", "1.0")
                        .arg("u", "1u"),
                ))
                .step(Step::build("k", Build::new(&c.n("Const"))))
                .by(&c.n("Leaf"), "leaf", "leaf")
                .by("int64", "n", "leaf.n + k.n")
                .by(&c.n("Const"), "k", "k"),
        );
        file.message(
            Message::new(&c.n("Const"))
                .by("int64", "n", "1")
                .by("string", "s", "'const'"),
        );
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call("d", Call::new(&c.get()).set("v", "$.x")))
                .step(Step::build("one", leaf("$.x")))
                .step(Step::build("two", leaf("d.v")))
                .step(Step::build(
                    "mid",
                    Build::new(&c.n("Mid")).arg("n", "one.n"),
                ))
                .step(Step::map(
                    "mids",
                    "x",
                    "$.xs",
                    MapBody::Message(Build::new(&c.n("Mid")).arg("n", "x")),
                ))
                .step(Step::build("k", Build::new(&c.n("Const"))))
                .by(&c.n("Leaf"), "one", "one")
                .by(&c.n("Leaf"), "two", "two")
                .by(&c.n("Mid"), "mid", "mid")
                .by(&format!("repeated {}", c.n("Mid")), "mids", "mids")
                .by("string", "s", "k.s + one.s")
                .by("int64", "n", "mid.leaf.n"),
        );
    })
}

/// `construct_map`: `map` over literals, the request, a call's list and another map's result,
/// with `by` and `message` bodies, reading outer steps, guarded, over nested lists, and with
/// an iterator shadowing a step name. (A `call` body: `construct_map_call`.)
fn map() -> Case {
    construct("construct_map", |file, c| {
        file.message(
            Message::new(&c.n("Card"))
                .by("int64", "id", "$.item.id")
                .by("string", "label", "$.prefix + $.item.name"),
        );
        let g = c.get();
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call("d", Call::new(&g).set("v", "$.x")))
                .step(Step::map(
                    "lit",
                    "x",
                    "[1, 2, 3]",
                    MapBody::By("x * x".into()),
                ))
                .step(Step::map("req", "x", "$.xs", MapBody::By("x + d.v".into())))
                .step(Step::map(
                    "again",
                    "y",
                    "req",
                    MapBody::By("string(y)".into()),
                ))
                .step(Step::map(
                    "names",
                    "it",
                    "d.items",
                    MapBody::By("it.name".into()),
                ))
                .step(Step::map(
                    "cards",
                    "it",
                    "d.items",
                    MapBody::Message(
                        Build::new(&c.n("Card"))
                            .arg("item", "it")
                            .arg("prefix", "$.s"),
                    ),
                ))
                .step(Step::map("d2", "d", "lit", MapBody::By("d + 1".into())))
                .step(Step::map("guarded", "x", "$.xs", MapBody::By("x".into())).guard("$.flag"))
                .step(Step::map(
                    "nested",
                    "xs",
                    "[[1], [2, 3]]",
                    MapBody::By("size(xs)".into()),
                ))
                .step(Step::map(
                    "firsts",
                    "x",
                    "$.xs",
                    MapBody::By("d.items[0]".into()),
                ))
                .by("repeated int64", "lit", "lit")
                .by("repeated int64", "req", "req")
                .by("repeated string", "again", "again")
                .by("repeated string", "names", "names")
                .by(&format!("repeated {}", c.n("Card")), "cards", "cards")
                .by("repeated int64", "d2", "d2")
                .by("repeated int32", "guarded", "guarded")
                .by("repeated int64", "nested", "nested")
                .by("repeated Item", "firsts", "firsts")
                .by("int64", "sized", "size(lit) + lit[0]"),
        );
    })
}

/// `construct_validation`: validations with and without a message, with several codes, reading
/// a call's result, and reading `caller`. (Guarded: `validation_guarded`.)
fn validation() -> Case {
    construct("construct_validation", |file, c| {
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::validation("$.x < 0", None, None))
                .step(Step::validation(
                    "$.x > 100",
                    Some("OUT_OF_RANGE"),
                    Some("'x must be at most 100, got ' + string($.x)"),
                ))
                .step(Step::validation(
                    "$.s == ''",
                    Some("FAILED_PRECONDITION"),
                    None,
                ))
                .step(Step::validation(
                    "size($.xs) > 3",
                    None,
                    Some("'too many: ' + string(size($.xs))"),
                ))
                .step(Step::call("d", Call::new(&c.get()).set("v", "$.x")))
                .step(Step::validation(
                    "d.v == 0",
                    Some("NOT_FOUND"),
                    Some("'no ' + $.s"),
                ))
                .step(Step::validation(
                    "has(caller.sub) && caller.sub == 'blocked'",
                    Some("UNAUTHENTICATED"),
                    Some("'blocked: ' + caller.sub"),
                ))
                .step(Step::validation(
                    "$.x == 42",
                    Some("ALREADY_EXISTS"),
                    Some("\"it's \\\"42\\\"\""),
                ))
                .by("int64", "v", "d.v"),
        );
    })
}

/// `validation_named`: a validation with a name nobody reads.
fn validation_named() -> Case {
    construct("validation_named", |file, c| {
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::validation("$.x < 0", None, None).named("checked"))
                .by("int64", "x", "$.x"),
        );
    })
}

/// `validation_guarded`: validations with a guard, reading `$` and a step.
fn validation_guarded() -> Case {
    construct("validation_guarded", |file, c| {
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call("d", Call::new(&c.get()).set("v", "$.x")))
                .step(
                    Step::validation("!$.flag", Some("PERMISSION_DENIED"), Some("'flag unset'"))
                        .guard("$.x == 1"),
                )
                .step(Step::validation("d.v < 0", None, None).guard("d.v > 1"))
                .by("int64", "v", "d.v"),
        );
    })
}

/// `construct_map_call`: a `map` step whose body is a call, reading the iterator, an outer step
/// and `$`, with a timeout.
fn map_call() -> Case {
    construct("construct_map_call", |file, c| {
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::by("base", "$.x * 2"))
                .step(Step::map(
                    "calls",
                    "x",
                    "$.xs",
                    MapBody::Call(
                        Call::new(&c.get())
                            .set("v", "x + base")
                            .set("s", "$.s")
                            .timeout("50ms"),
                    ),
                ))
                .by(&format!("repeated {}", c.n("Data")), "calls", "calls"),
        );
    })
}

/// `construct_guard`: `if` on every step body but a validation (`validation_guarded`), reading
/// `$`, other steps and `caller`, and fields reading guarded steps.
fn guard() -> Case {
    construct("construct_guard", |file, c| {
        file.message(Message::new(&c.n("Small")).by("int64", "n", "$.n"));
        let g = c.get();
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call("d", Call::new(&g).set("v", "$.x")).guard("$.flag"))
                .step(Step::call("e", Call::new(&g).set("v", "d.v")).guard("d.v > 0 && $.flag"))
                .step(Step::by("b", "d.s + e.s").guard("has(d.item)"))
                .step(Step::build("m", Build::new(&c.n("Small")).arg("n", "$.x")).guard("!$.flag"))
                .step(
                    Step::map("xs", "x", "$.xs", MapBody::By("x * 2".into()))
                        .guard("size($.xs) < 10"),
                )
                .step(Step::by("who", "caller.sub").guard("has(caller.sub)"))
                .by("int64", "v", "d.v + e.v")
                .by("string", "b", "b")
                .by(&c.n("Small"), "m", "m")
                .by("repeated int64", "xs", "xs")
                .by("string", "who", "who")
                .by("Item", "item", "d.item"),
        );
    })
}

/// `construct_autobind_named`: autobind from a call, from a message-valued `by` step and from a
/// built message, three autobind steps with distinct fields, and an explicit `by` beside them.
fn autobind_named() -> Case {
    construct("construct_autobind_named", |file, c| {
        file.message(
            Message::new(&c.n("Extra"))
                .by("string", "label", "$.s + '!'")
                .by("bool", "flagged", "$.flag"),
        );
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call("d", Call::new(&c.get()).set("v", "$.x")).autobind())
                .step(Step::by("it", "d.item").autobind())
                .step(
                    Step::build(
                        "ex",
                        Build::new(&c.n("Extra"))
                            .arg("s", "$.s")
                            .arg("flag", "$.flag"),
                    )
                    .autobind(),
                )
                // From `d`, but `s` (explicit).
                .field("int64", "v")
                .by("string", "s", "'explicit'")
                .field("repeated Item", "items")
                .field("Color", "color")
                .field("repeated int64", "xs")
                // From `it`.
                .field("int64", "id")
                .field("string", "name")
                // From `ex`.
                .field("string", "label")
                .field("bool", "flagged"),
        );
    })
}

/// `construct_autobind_unnamed`: autobind on a step without a name.
fn autobind_unnamed() -> Case {
    construct("construct_autobind_unnamed", |file, c| {
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(
                    Step::call("d", Call::new(&c.get()).set("v", "$.x"))
                        .unnamed()
                        .autobind(),
                )
                .field("int64", "v")
                .field("string", "s"),
        );
    })
}

/// `construct_caller`: `caller` read in fields, steps, guards, requests, arguments, `map`
/// bodies and a built message.
fn caller() -> Case {
    construct("construct_caller", |file, c| {
        file.message(
            Message::new(&c.n("Who"))
                .by("string", "sub", "has(caller.sub) ? caller.sub : $.fallback")
                .by("string", "plan", "caller['plan']"),
        );
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::by("sub", "caller.sub"))
                .step(Step::call(
                    "d",
                    Call::new(&c.get())
                        .set("s", "caller.consumer")
                        .set("v", "size(caller)"),
                ))
                .step(Step::build(
                    "who",
                    Build::new(&c.n("Who")).arg("fallback", "caller.scheme"),
                ))
                .step(Step::map(
                    "tags",
                    "x",
                    "$.xs",
                    MapBody::By("caller.sub + string(x)".into()),
                ))
                .step(Step::by("g", "1").guard("'plan' in caller"))
                .by("string", "sub", "sub")
                .by("string", "s", "d.s")
                .by(&c.n("Who"), "who", "who")
                .by("repeated string", "tags", "tags")
                .by("bool", "known", "has(caller.consumer) && caller.plan != ''")
                .by("int64", "g", "g")
                .by("int64", "claims", "size(caller)"),
        );
    })
}

/// `construct_http`: an edge method with `google.api.http` bindings.
fn http() -> Case {
    fragment("constructs", "construct_http", |file, c| {
        file.import("google/api/annotations.proto");
        io(file, c);
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call("d", Call::new(&c.get()).set("v", "$.x")))
                .by("int64", "v", "d.v"),
        );
        file.down(&c.n("Get"), &c.n("Data"), &c.n("Data"), "");
        file.edge(
            &c.n("Run"),
            &c.n("Req"),
            &c.n("EdgeResponse"),
            "option (google.api.http) = {get: \"/v1/corpus/things/{x}\" additional_bindings {post: \"/v1/corpus/things/{x}:run\" body: \"*\"}};",
        );
    })
}
