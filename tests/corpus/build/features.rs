//! The constructs added after the first ones: error handlers on calls (`ignore`, `fallback`,
//! `status` with details, `fail`) and `partial()`, `log` steps, validation details, method
//! `response` and `response_field`, enum conversions (by name, `alias`, `default`) and enum
//! values by name, and the list macros.

use crate::cases::{Case, Ctx, fragment};
use crate::proto::{Call, File, MapBody, Message, Step, q};

pub(crate) fn all() -> Vec<Case> {
    vec![
        errors(),
        log("construct_log", false),
        log("log_guarded", true),
        validation_details(),
        response(),
        enums(),
        macros(),
    ]
}

/// A downstream message `<P>Data` (request and response of `Get`) and the edge request
/// `<P>Req`.
fn io(file: &mut File, c: &Ctx) {
    file.message(
        Message::new(&c.n("Data"))
            .field("int64", "v")
            .field("string", "s")
            .field("repeated Item", "items")
            .field("Color", "color"),
    );
    file.message(
        Message::new(&c.n("Req"))
            .field("int64", "x")
            .field("string", "s")
            .field("repeated int64", "xs")
            .field("repeated Item", "items")
            .field("map<string, int64>", "m")
            .field("Color", "color"),
    );
}

/// Every detail kind of `google/rpc/error_details.proto` a status can carry, as text.
fn details(read: &str) -> String {
    [
        format!("details {{error_info {{reason: {} domain: {} metadata {{key: \"k\" value: {}}}}}}}", q("'REASON'"), q("'corpus'"), q(read)),
        format!("details {{localized_message {{locale: {} message: {}}}}}", q("'en'"), q(read)),
        format!("details {{bad_request {{field_violations {{field: {} description: {}}}}}}}", q("'x'"), q(read)),
        format!("details {{precondition_failure {{violations {{type: {} subject: {} description: {}}}}}}}", q("'T'"), q("'s'"), q(read)),
        format!("details {{resource_info {{resource_type: {} resource_name: {} owner: {} description: {}}}}}", q("'item'"), q(read), q("'o'"), q("'d'")),
    ]
    .join(" ")
}

/// `construct_error`: error handlers of each action on calls, reading `error` (its code,
/// message and decoded details) and other steps, and `partial()`.
fn errors() -> Case {
    fragment("features", "construct_error", |file, c| {
        io(file, c);
        let status = format!(
            "error {{if: {} status {{code: NOT_FOUND message: {} {}}}}}",
            q("error.code == google.rpc.Code.NOT_FOUND || has(error.error_info)"),
            q("'no ' + string($.x) + ': ' + error.message"),
            details("error.error_info.reason + error.bad_request.field_violations[0].field")
        );
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call(
                    "a",
                    Call::new(&c.get()).set("v", "$.x").raw(&format!(
                        "error {{if: {} ignore: true}}",
                        q("error.code == google.rpc.Code.NOT_FOUND")
                    )),
                ))
                .step(Step::call(
                    "b",
                    Call::new(&c.get())
                        .set("v", "a.v + 1")
                        .raw(&format!(
                            "error {{if: {} fallback: {}}}",
                            q("error.code == google.rpc.Code.UNAVAILABLE && error.message != ''"),
                            q("a")
                        ))
                        .raw(&status),
                ))
                .step(Step::call(
                    "c",
                    Call::new(&c.get())
                        .set("s", "$.s")
                        .raw(&format!(
                            "error {{if: {} fail: true}}",
                            q("error.code == google.rpc.Code.PERMISSION_DENIED")
                        ))
                        .raw(&format!(
                            "error {{if: {} status {{message: {}}}}}",
                            q("error.code == google.rpc.Code.INTERNAL"),
                            q("error.message")
                        ))
                        .raw("error {ignore: true}"),
                ))
                .by("int64", "v", "a.v + b.v")
                .by("string", "s", "c.s")
                .by("bool", "partial", "partial()"),
        );
        c.services(file, "Data", "Data", "Req");
    })
}

/// `construct_log`: log steps at every level, with fields, reading steps, `$` and `caller`;
/// `log_guarded`: the same, every other one guarded.
fn log(name: &str, guarded: bool) -> Case {
    fragment("features", name, |file, c| {
        io(file, c);
        let mut edge = Message::new(&c.n("EdgeResponse")).step(Step::by("n", "$.x * 2"));
        for (i, level) in ["", "trace", "debug", "info", "warn", "error"]
            .iter()
            .enumerate()
        {
            let level = if level.is_empty() {
                String::new()
            } else {
                format!("level: {} ", q(level))
            };
            let mut step = Step::raw(&format!(
                "log {{{level}message: {} fields {{name: \"n\" by: \"n\"}} fields {{name: \"who\" by: {}}} fields {{name: \"items\" by: \"$.items\"}}}}",
                q(&format!("'event {i}: ' + $.s")),
                q("has(caller.sub) ? caller.sub : ''")
            ));
            if guarded && i % 2 == 1 {
                step = step.guard("$.x > 0");
            }
            edge = edge.step(step);
        }
        file.message(edge.by("int64", "n", "n"));
        file.edge(&c.n("Run"), &c.n("Req"), &c.n("EdgeResponse"), "");
    })
}

/// `validation_details`: a validation whose rejection carries every detail kind.
fn validation_details() -> Case {
    fragment("features", "validation_details", |file, c| {
        io(file, c);
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::raw(&format!(
                    "validation {{if: {} code: FAILED_PRECONDITION message: {} {}}}",
                    q("$.x < 0"),
                    q("'negative: ' + string($.x)"),
                    details("$.s")
                )))
                .by("int64", "x", "$.x"),
        );
        file.edge(&c.n("Run"), &c.n("Req"), &c.n("EdgeResponse"), "");
    })
}

/// `construct_response`: methods answering with a field of the composed message
/// (`response_field`), or with `google.protobuf.Empty` once it is built (`response`).
fn response() -> Case {
    fragment("features", "construct_response", |file, c| {
        file.import("google/protobuf/empty.proto");
        io(file, c);
        file.message(
            Message::new(&c.n("Check"))
                .step(Step::call("d", Call::new(&c.get()).set("v", "$.x")))
                .step(Step::validation("d.v == 0", Some("NOT_FOUND"), None))
                .by(
                    "Item",
                    "item",
                    "size(d.items) > 0 ? d.items[0] : $.items[0]",
                )
                .by(&c.n("Data"), "data", "d")
                .by("int64", "v", "d.v"),
        );
        let check = c.n("Check");
        file.down(&c.n("Get"), &c.n("Data"), &c.n("Data"), "");
        file.edge(
            &c.n("Touch"),
            &c.n("Req"),
            "google.protobuf.Empty",
            &format!("option (mosaic.v1.method) = {{response: {}}};", q(&check)),
        );
        file.edge(
            &c.n("First"),
            &c.n("Req"),
            "Item",
            &format!(
                "option (mosaic.v1.method) = {{response: {} response_field: \"item\"}};",
                q(&check)
            ),
        );
        file.edge(
            &c.n("Whole"),
            &c.n("Req"),
            &c.n("Data"),
            &format!(
                "option (mosaic.v1.method) = {{response: {} response_field: \"data\" timeout: \"1s\"}};",
                q(&check)
            ),
        );
    })
}

/// `construct_enums`: enum values by name in expressions (relative and fully qualified), and
/// conversions between enums: by value name, by `alias` (on the enum and on values), to a
/// `default` value; singular, repeated and `optional` (maps of enums convert no values).
fn enums() -> Case {
    fragment("features", "construct_enums", |file, c| {
        let (shade, tone) = (c.n("Shade"), c.n("Tone"));
        let color = format!("{}.Color", c.package);
        // Same value names as `Color` after the prefix: converts by name.
        file.raw(format!(
            "enum {shade} {{\n  {p}_UNSPECIFIED = 0;\n  {p}_RED = 1;\n  {p}_BLUE = 2;\n}}\n",
            p = screaming(&shade)
        ));
        // Aliases and a default.
        file.raw(format!(
            "enum {tone} {{\n  option (mosaic.v1.enum) = {{alias: [{color:?}]}};\n  {p}_UNSPECIFIED = 0;\n  {p}_WARM = 1 [(mosaic.v1.enum_value) = {{alias: [\"COLOR_RED\"]}}];\n  {p}_OTHER = 2 [(mosaic.v1.enum_value) = {{default: true}}];\n}}\n",
            p = screaming(&tone)
        ));
        let s = screaming(&shade);
        file.message(
            Message::new(&c.n("Io"))
                .field("Color", "color")
                .field("repeated Color", "colors")
                .field("optional Color", "maybe")
                .field("map<string, Color>", "named"),
        );
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .by(&shade, "shade", "$.color")
                .by(&format!("repeated {shade}"), "shades", "$.colors")
                .by(&format!("optional {shade}"), "maybe", "$.maybe")
                .by("map<string, Color>", "named", "$.named")
                .by(&tone, "tone", "$.color")
                .by(
                    &format!("repeated {tone}"),
                    "tones",
                    "$.colors + [Color.COLOR_BLUE]",
                )
                .by(
                    "bool",
                    "red",
                    &format!("$.color == Color.COLOR_RED || $.color == {color}.COLOR_BLUE"),
                )
                .by(
                    "Color",
                    "pick",
                    "$.color == Color.COLOR_UNSPECIFIED ? Color.COLOR_RED : $.color",
                )
                .by(&shade, "constant", &format!("{shade}.{s}_BLUE"))
                .by(
                    "bool",
                    "listed",
                    "$.color in [Color.COLOR_RED, Color.COLOR_BLUE]",
                )
                .by("int64", "number", "int(Color.COLOR_BLUE) + int($.color)"),
        );
        file.edge(&c.n("Run"), &c.n("Io"), &c.n("EdgeResponse"), "");
    })
}

/// `UPPER_SNAKE` of a CamelCase name.
fn screaming(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

/// `expr_macros`: `map`, `filter`, `exists`, `all` and `exists_one` over lists of numbers,
/// strings and messages, nested, in steps, fields, guards, validations and a `map` step's
/// source, stored into narrower lists.
fn macros() -> Case {
    fragment("features", "expr_macros", |file, c| {
        io(file, c);
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::validation(
                    "$.xs.exists(x, x < 0)",
                    None,
                    Some("'negative'"),
                ))
                .step(Step::by("good", "$.items.filter(i, i.id > 0)"))
                .step(Step::by("ids", "good.map(i, i.id)").guard("$.items.all(i, i.name != '')"))
                .step(Step::map(
                    "names",
                    "n",
                    "$.items.filter(i, has(i.name)).map(i, i.name)",
                    MapBody::By("n + '!'".into()),
                ))
                .by("repeated int64", "ids", "ids")
                .by("repeated string", "names", "names")
                .by("repeated int32", "doubled", "$.xs.map(x, x * 2)")
                .by("repeated int64", "big", "$.xs.filter(x, x > 10)")
                .by("bool", "any", "$.xs.exists(x, x == $.x)")
                .by(
                    "bool",
                    "every",
                    "$.xs.all(x, x > 0) && good.all(i, i.id > 0)",
                )
                .by("bool", "one", "$.xs.exists_one(x, x == 1)")
                .by("repeated Item", "good", "good")
                .by(
                    "repeated int64",
                    "nested",
                    "$.xs.filter(x, $.items.exists(i, i.id == x))",
                )
                .by("int64", "count", "size($.xs.filter(x, x % 2 == 0))"),
        );
        file.edge(&c.n("Run"), &c.n("Req"), &c.n("EdgeResponse"), "");
    })
}
