//! Well-known types (`google.protobuf.*`) as message-typed values passed through: singular,
//! repeated and map-valued response fields, downstream request fields, message arguments, `map`
//! elements, presence tests, autobind; and reading them.

use crate::cases::{Case, fragment};
use crate::proto::{Build, Call, MapBody, Message, Step};

/// An expression reading a value `x`, and its proto type.
type Read = (&'static str, &'static str);

/// `(type, import, a read of a value of the type)`.
/// Wrappers read as their value (and as null when unset).
const WKT: &[(&str, &str, Option<Read>)] = &[
    (
        "Timestamp",
        "timestamp",
        Some(("x.seconds + x.nanos", "int64")),
    ),
    (
        "Duration",
        "duration",
        Some(("x.seconds * 2 - x.nanos", "int64")),
    ),
    ("DoubleValue", "wrappers", Some(("x / 2.0", "double"))),
    ("FloatValue", "wrappers", Some(("x", "float"))),
    ("Int64Value", "wrappers", Some(("x + 1", "int64"))),
    ("UInt64Value", "wrappers", Some(("x", "uint64"))),
    ("Int32Value", "wrappers", Some(("x * 2", "int32"))),
    ("UInt32Value", "wrappers", Some(("x", "uint32"))),
    ("BoolValue", "wrappers", Some(("!x", "bool"))),
    // String operations on wrappers are the `text_wrapper_*` cases.
    (
        "StringValue",
        "wrappers",
        Some(("x.startsWith('a')", "bool")),
    ),
    ("BytesValue", "wrappers", Some(("size(x)", "int64"))),
    ("Empty", "empty", None),
    ("Struct", "struct", Some(("size(x.fields)", "int64"))),
    ("Value", "struct", Some(("x.string_value", "string"))),
    ("ListValue", "struct", Some(("size(x.values)", "int64"))),
    ("Any", "any", Some(("x.type_url", "string"))),
    ("FieldMask", "field_mask", Some(("size(x.paths)", "int64"))),
];

pub(crate) fn all() -> Vec<Case> {
    let mut imports: Vec<&str> = WKT.iter().map(|(_, import, _)| *import).collect();
    imports.dedup();
    let mut cases: Vec<Case> = imports.into_iter().map(wkt).collect();
    cases.push(null_value());
    cases.push(request());
    cases.push(built());
    cases
}

fn full_name(ty: &str) -> String {
    format!("google.protobuf.{ty}")
}

/// `wkt_<file>`: the types of `google/protobuf/<file>.proto`, each passed through singular,
/// repeated and map-valued fields, per element of a `map` step, tested for presence, and
/// read. (Set in a downstream request: `wkt_request`; as arguments and autobound:
/// `wkt_built`.)
fn wkt(import: &str) -> Case {
    fragment("wkt", &format!("wkt_{import}"), |file, c| {
        file.import(&format!("google/protobuf/{import}.proto"));
        let mut io = Message::new(&c.n("Io"));
        let mut edge = Message::new(&c.n("EdgeResponse"));
        for (i, &(ty, _, read)) in WKT.iter().enumerate().filter(|(_, w)| w.1 == import) {
            let t = full_name(ty);
            let t = t.as_str();
            let rep = format!("repeated {t}");
            let map = format!("map<string, {t}>");
            let f = |name: &str| format!("{name}{i}");
            let e = |expr: &str| {
                expr.replace("$.v", &format!("$.v{i}"))
                    .replace("$.vs", &format!("$.vs{i}"))
            };
            io = io
                .field(t, &f("v"))
                .field(&rep, &f("vs"))
                .field(&map, &f("m"));
            edge = edge
                .step(Step::map(
                    &f("each"),
                    "x",
                    &f("$.vs"),
                    MapBody::By("x".into()),
                ))
                .by(t, &f("v"), &f("$.v"))
                .by(&rep, &f("vs"), &f("$.vs"))
                .by(&map, &f("m"), &f("$.m"))
                .by(&rep, &f("each"), &f("each"))
                .by(
                    t,
                    &f("first"),
                    &format!("size($.vs{i}) > 0 ? $.vs{i}[0] : $.m{i}['k']"),
                )
                .by("bool", &f("set"), &e("has($.v) && $.v != null"));
            // `null` for a message type and a wrapper.
            if matches!(ty, "Timestamp" | "Int64Value" | "StringValue") {
                edge = edge.by(t, &f("none"), "null");
            }
            if let Some((expr, out)) = read {
                edge = edge.by(out, &f("read"), &expr.replace('x', &format!("$.v{i}")));
            }
        }
        if import == "empty" {
            // As an argument and autobound, as `wkt_built` does for the other types.
            let t = full_name("Empty");
            let i = WKT.iter().position(|w| w.0 == "Empty").unwrap_or_default();
            file.message(
                Message::new(&c.n("Built"))
                    .step(Step::by("s", "$.src").autobind())
                    .field(&t, &format!("v{i}"))
                    .by(&t, "arg", "$.arg"),
            );
            edge = edge
                .step(Step::build(
                    "b",
                    Build::new(&c.n("Built"))
                        .arg("src", "$")
                        .arg("arg", &format!("$.v{i}")),
                ))
                .by(&c.n("Built"), "b", "b");
        }
        file.message(io);
        file.message(edge);
        file.edge(&c.n("Run"), &c.n("Io"), &c.n("EdgeResponse"), "");
    })
}

/// `wkt_request`: one downstream call whose request has every well-known type singular and
/// repeated, and a few map-valued.
fn request() -> Case {
    fragment("wkt", "wkt_request", |file, c| {
        let mut io = Message::new(&c.n("Io"));
        let mut call = Call::new(&c.get());
        for (i, &(ty, import, _)) in WKT.iter().enumerate() {
            file.import(&format!("google/protobuf/{import}.proto"));
            let t = full_name(ty);
            io = io
                .field(&t, &format!("v{i}"))
                .field(&format!("repeated {t}"), &format!("vs{i}"));
            call = call
                .set(&format!("v{i}"), &format!("$.v{i}"))
                .set(&format!("vs{i}"), &format!("$.vs{i} + [$.v{i}]"));
            // Maps of a message type, a wrapper and a `Struct` (values stored alike).
            if matches!(ty, "Timestamp" | "Int64Value" | "StringValue" | "Struct") {
                io = io.field(&format!("map<string, {t}>"), &format!("m{i}"));
                call = call.set(&format!("m{i}"), &format!("$.m{i}"));
            }
        }
        file.message(io);
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call("d", call))
                .by("google.protobuf.Timestamp", "v", "d.v0"),
        );
        c.services(file, "Io", "Io", "Io");
    })
}

/// `wkt_built`: every well-known type as message arguments and autobound from a step.
fn built() -> Case {
    fragment("wkt", "wkt_built", |file, c| {
        let mut io = Message::new(&c.n("Io"));
        let mut built = Message::new(&c.n("Built")).step(Step::by("s", "$.src").autobind());
        let mut build = Build::new(&c.n("Built")).arg("src", "$");
        let edge = Message::new(&c.n("EdgeResponse"));
        // `Empty` (prost's `()`) is `wkt_empty`'s.
        for (i, &(ty, import, ..)) in WKT.iter().enumerate().filter(|(_, w)| w.0 != "Empty") {
            file.import(&format!("google/protobuf/{import}.proto"));
            let t = full_name(ty);
            let rep = format!("repeated {t}");
            io = io
                .field(&t, &format!("v{i}"))
                .field(&rep, &format!("vs{i}"));
            built = built
                .field(&t, &format!("v{i}"))
                .field(&rep, &format!("vs{i}"))
                .by(&t, &format!("arg{i}"), &format!("$.arg{i}"));
            build = build.arg(&format!("arg{i}"), &format!("$.v{i}"));
        }
        file.message(io);
        file.message(built);
        file.message(
            edge.step(Step::build("b", build))
                .by(&c.n("Built"), "b", "b"),
        );
        file.edge(&c.n("Run"), &c.n("Io"), &c.n("EdgeResponse"), "");
    })
}

/// `wkt_null_value`: the `google.protobuf.NullValue` enum passed through.
fn null_value() -> Case {
    fragment("wkt", "wkt_null_value", |file, c| {
        let t = "google.protobuf.NullValue";
        file.import("google/protobuf/struct.proto");
        file.message(
            Message::new(&c.n("Io"))
                .field(t, "v")
                .field(&format!("repeated {t}"), "vs")
                .field(&format!("map<string, {t}>"), "m"),
        );
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .by(t, "v", "$.v")
                .by(&format!("repeated {t}"), "vs", "$.vs")
                .by(&format!("map<string, {t}>"), "m", "$.m")
                .by("int64", "n", "int($.v)")
                .by("bool", "zero", "$.v == 0"),
        );
        file.edge(&c.n("Run"), &c.n("Io"), &c.n("EdgeResponse"), "");
    })
}
