//! Message aliases and custom items: every pair of scalar kinds an alias converts (alike or
//! widened), in every shape (singular, proto3 `optional`, wrapper, repeated, map values, map
//! keys, oneof members), nested and recursive aliases, a `by` rule, several sources; and custom
//! steps of every value kind, custom fields of every field shape, and custom messages built
//! by `message` and `map` steps; conditional fields and oneof members of every shape, in
//! requests and responses, and call metadata of every kind; deployment values of every type
//! with values computed from them, per-call retry policies, captured response metadata, and
//! timestamps and durations in every operation and shape.

use std::fmt::Write as _;

use crate::cases::{Case, fragment, single};
use crate::proto::q;

pub(crate) fn all() -> Vec<Case> {
    vec![
        alias_kinds(),
        alias_shapes(),
        custom_items(),
        conditional_fields(),
        literals(),
        deployment_retries_and_time(),
    ]
}

/// Source kind → target kind, each pair an alias converts: the same Rust type, or wider.
const KIND_PAIRS: &[(&str, &str)] = &[
    ("int32", "int32"),
    ("sint32", "int32"),
    ("sfixed32", "sint32"),
    ("int32", "int64"),
    ("sfixed32", "sfixed64"),
    ("int64", "sint64"),
    ("sfixed64", "int64"),
    ("uint32", "fixed32"),
    ("uint32", "uint64"),
    ("fixed32", "fixed64"),
    ("uint32", "int64"),
    ("uint64", "fixed64"),
    ("float", "float"),
    ("float", "double"),
    ("double", "double"),
    ("bool", "bool"),
    ("string", "string"),
    ("bytes", "bytes"),
    ("Color", "Color"),
    ("Color", "Shade"),
];

/// Wrapper types by the kind they wrap.
const WRAPPERS: &[(&str, &str)] = &[
    ("int32", "google.protobuf.Int32Value"),
    ("int64", "google.protobuf.Int64Value"),
    ("uint32", "google.protobuf.UInt32Value"),
    ("uint64", "google.protobuf.UInt64Value"),
    ("float", "google.protobuf.FloatValue"),
    ("double", "google.protobuf.DoubleValue"),
    ("bool", "google.protobuf.BoolValue"),
    ("string", "google.protobuf.StringValue"),
    ("bytes", "google.protobuf.BytesValue"),
];

/// Map key kinds, each converted into the same kind.
const KEYS: &[&str] = &[
    "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64", "sfixed32",
    "sfixed64", "bool", "string",
];

fn key_ident(ty: &str) -> String {
    ty.replace('.', "_").to_lowercase()
}

/// `alias_kinds`: one alias pair holding every kind pair singular, optional, repeated, as map
/// values and (same kind) as map keys, plus wrappers.
fn alias_kinds() -> Case {
    single("alias_kinds", |file, c| {
        file.import("google/protobuf/wrappers.proto");
        file.raw(
            "enum Shade {\n  option (mosaic.v1.enum) = {alias: [\"Color\"]};\n  SHADE_UNSPECIFIED = 0;\n  SHADE_RED = 1;\n  SHADE_BLUE = 2;\n}\n",
        );
        let mut source = String::from("message Src {\n");
        let mut target =
            String::from("message Dst {\n  option (mosaic.v1.message) = {alias: [\"Src\"]};\n");
        let mut n = 1;
        let mut both = |s: &str, t: &str, name: &str| {
            let _ = writeln!(source, "  {s} {name} = {n};");
            let _ = writeln!(target, "  {t} {name} = {n};");
            n += 1;
        };
        for (i, (from, to)) in KIND_PAIRS.iter().enumerate() {
            both(from, to, &format!("v{i}"));
            both(
                &format!("repeated {from}"),
                &format!("repeated {to}"),
                &format!("r{i}"),
            );
            both(
                &format!("map<string, {from}>"),
                &format!("map<string, {to}>"),
                &format!("m{i}"),
            );
            both(
                &format!("optional {from}"),
                &format!("optional {to}"),
                &format!("o{i}"),
            );
        }
        for key in KEYS {
            let name = format!("k_{}", key_ident(key));
            both(
                &format!("map<{key}, string>"),
                &format!("map<{key}, string>"),
                &name,
            );
        }
        for (kind, wrapper) in WRAPPERS {
            let name = format!("w_{}", key_ident(kind));
            both(wrapper, wrapper, &name);
            // A wrapper's scalar, presence kept, into a proto3 `optional` of the same kind.
            both(
                wrapper,
                &format!("optional {kind}"),
                &format!("{name}_optional"),
            );
        }
        source.push_str("}\n");
        target.push_str("}\n");
        file.raw(source);
        file.raw(target);
        file.raw(format!(
            "message Req {{\n  int64 x = 1;\n}}\n\nmessage EdgeResponse {{\n  option (mosaic.v1.message) = {{\n    def {{ name: \"s\" call {{ method: {} }} }}\n  }};\n  Dst one = 1 [(mosaic.v1.field).by = \"s\"];\n}}\n",
            q(&c.get())
        ));
        file.down("Get", "Req", "Src", "");
        file.edge("Run", "Req", "EdgeResponse", "");
    })
}

/// `alias_shapes`: nested and recursive aliases, oneofs (scalar, message and recursive
/// members), renamed fields, `by` rules, one alias of two sources, and aliases bound singular,
/// repeated, from a field read and as a oneof member of a response.
fn alias_shapes() -> Case {
    fragment("aliases", "alias_shapes", |file, c| {
        let p = |name: &str| c.n(name);
        file.raw(format!(
            "message {inner} {{\n  string city = 1;\n  {node} next = 2;\n}}\n\n\
             message {node} {{\n  int64 id = 1;\n  {node} parent = 2;\n  repeated {node} children = 3;\n  map<string, {node}> named = 4;\n  oneof pick {{\n    string label = 5;\n    {inner} inner = 6;\n    {node} other = 7;\n  }}\n  {inner} home = 8;\n  string long_name = 9;\n}}\n\n\
             message {small} {{\n  int64 id = 1;\n}}\n",
            inner = p("SrcInner"),
            node = p("SrcNode"),
            small = p("SrcSmall"),
        ));
        file.raw(format!(
            "message {inner} {{\n  option (mosaic.v1.message) = {{alias: [\"{src_inner}\"]}};\n  string city = 1;\n  {node} next = 2;\n}}\n\n\
             message {node} {{\n  option (mosaic.v1.message) = {{alias: [\"{src_node}\"]}};\n  int64 id = 1;\n  {node} parent = 2;\n  repeated {node} children = 3;\n  map<string, {node}> named = 4;\n  oneof pick {{\n    string label = 5;\n    {inner} inner = 6;\n    {node} other = 7;\n  }}\n  {inner} home = 8;\n  string short_name = 9 [(mosaic.v1.field).alias = \"long_name\"];\n  string computed = 10 [(mosaic.v1.field).by = {by}];\n}}\n\n\
             message {badge} {{\n  option (mosaic.v1.message) = {{alias: [\"{src_small}\", \"{src_node}\"]}};\n  int64 id = 1;\n  string text = 2 [(mosaic.v1.field).by = {text}];\n}}\n",
            inner = p("Inner"),
            node = p("Node"),
            badge = p("Badge"),
            src_inner = p("SrcInner"),
            src_node = p("SrcNode"),
            src_small = p("SrcSmall"),
            by = q("$.long_name + string($.id)"),
            text = q("string($.id)"),
        ));
        file.raw(format!(
            "message {resp} {{\n  option (mosaic.v1.message) = {{\n    def {{ name: \"n\" call {{ method: {get} request {{ field: \"id\" by: \"$.x\" }} }} }}\n    def {{ name: \"m\" call {{ method: {small} }} }}\n  }};\n  {node} node = 1 [(mosaic.v1.field).by = \"n\"];\n  repeated {node} kids = 2 [(mosaic.v1.field).by = \"n.children\"];\n  {node} parent = 3 [(mosaic.v1.field).by = \"n.parent\"];\n  {badge} from_small = 4 [(mosaic.v1.field).by = \"m\"];\n  {badge} from_node = 5 [(mosaic.v1.field).by = \"n\"];\n  {inner} home = 6 [(mosaic.v1.field).by = \"n.home\"];\n  oneof choice {{\n    {node} chosen = 7 [(mosaic.v1.field).by = \"n\"];\n    string none = 8;\n  }}\n  repeated {node} listed = 9 [(mosaic.v1.field).by = \"[n, n]\"];\n}}\n",
            resp = p("EdgeResponse"),
            node = p("Node"),
            inner = p("Inner"),
            badge = p("Badge"),
            get = q(&c.get()),
            small = q(&c.down("Small")),
        ));
        file.raw(format!("message {} {{\n  int64 x = 1;\n}}\n", p("Req")));
        file.down(&p("Get"), &p("SrcNode"), &p("SrcNode"), "");
        file.down(&p("Small"), &p("Req"), &p("SrcSmall"), "");
        file.edge(&p("Run"), &p("Req"), &p("EdgeResponse"), "");
    })
}

/// `custom_items`: custom steps of every value kind (read by fields, guards and other
/// steps), custom fields of every field shape, and custom messages built by a `message` step,
/// by `map` steps and through a plain message that builds one.
fn custom_items() -> Case {
    single("custom_items", |file, c| {
        let kinds = [
            ("int64", "int64", "v"),
            ("uint64", "uint64", "v"),
            ("double", "double", "v"),
            ("bool", "bool", "v"),
            ("string", "string", "v"),
            ("bytes", "bytes", "v"),
            ("Color", "Color", "v"),
            ("Item", "Item", "v"),
            ("repeated int64", "repeated int64", "v"),
            ("repeated Item", "repeated Item", "v"),
            (
                "google.protobuf.Timestamp",
                "google.protobuf.Timestamp",
                "v",
            ),
        ];
        file.import("google/protobuf/timestamp.proto");
        let mut defs = String::new();
        let mut fields = String::new();
        let mut n = 1;
        for (i, (ty, field_ty, _)) in kinds.iter().enumerate() {
            let reads = if i == 0 { "" } else { "reads: [\"d\"]" };
            let _ = writeln!(
                defs,
                "    def {{ name: \"s{i}\" custom {{ type: {} {reads} }} }}",
                q(ty)
            );
            let _ = writeln!(
                fields,
                "  {field_ty} s{i} = {n} [(mosaic.v1.field).by = \"s{i}\"];"
            );
            n += 1;
        }
        // Custom fields of every shape, the last reading several steps.
        for (i, ty) in [
            "int32",
            "optional string",
            "google.protobuf.Timestamp",
            "Item",
            "repeated Item",
            "map<string, int64>",
            "Color",
            "float",
        ]
        .iter()
        .enumerate()
        {
            let _ = writeln!(
                fields,
                "  {ty} f{i} = {n} [(mosaic.v1.field) = {{custom {{reads: [\"d\", \"s0\"]}}}}];"
            );
            n += 1;
        }
        let _ = writeln!(
            fields,
            "  Card card = {n} [(mosaic.v1.field).by = \"card\"];\n  repeated Card cards = {} [(mosaic.v1.field).by = \"cards\"];\n  Wrapper wrapper = {} [(mosaic.v1.field).by = \"wrapper\"];\n  int64 guarded = {} [(mosaic.v1.field).by = \"g\"];",
            n + 1,
            n + 2,
            n + 3
        );
        file.raw(format!(
            "message Card {{\n  option (mosaic.v1.message) = {{\n    def {{ name: \"extra\" custom {{ type: \"int64\" }} }}\n    custom {{ reads: [\"extra\"] }}\n  }};\n  int64 id = 1;\n  string name = 2;\n}}\n\n\
             message Wrapper {{\n  option (mosaic.v1.message) = {{\n    def {{ name: \"c\" message {{ name: \"Card\" args {{ name: \"id\" by: \"$.id\" }} }} }}\n  }};\n  Card card = 1 [(mosaic.v1.field).by = \"c\"];\n}}\n\n\
             message Req {{\n  int64 x = 1;\n  repeated int64 xs = 2;\n}}\n\n\
             message EdgeResponse {{\n  option (mosaic.v1.message) = {{\n    def {{ name: \"d\" call {{ method: {get} }} }}\n{defs}    def {{ name: \"card\" message {{ name: \"Card\" args {{ name: \"id\" by: \"s0\" }} }} }}\n    def {{ name: \"cards\" map {{ iterator {{ name: \"x\" src: \"$.xs\" }} message {{ name: \"Card\" args {{ name: \"id\" by: \"x\" }} }} }} }}\n    def {{ name: \"wrapper\" message {{ name: \"Wrapper\" args {{ name: \"id\" by: \"$.x\" }} }} }}\n    def {{ name: \"g\" if: \"s3\" custom {{ type: \"int64\" reads: [\"s0\", \"s7\"] }} }}\n  }};\n{fields}}}\n",
            get = q(&c.get()),
        ));
        file.down("Get", "Req", "Item", "");
        file.edge("Run", "Req", "EdgeResponse", "");
    })
}

/// Fields of every shape set under an `if`, in a downstream request and in the response;
/// oneofs whose members (scalar, message, boxed message, enum) are each conditional; and call
/// metadata: constant, computed, binary and forwarded.
fn conditional_fields() -> Case {
    single("conditional_fields", |file, c| {
        file.import("google/protobuf/wrappers.proto");
        let shapes = [
            ("narrow", "int32", "$.x"),
            ("text", "string", "$.s"),
            ("maybe_text", "optional string", "$.s"),
            ("maybe_x", "optional int64", "$.x"),
            ("wrapper", "google.protobuf.Int64Value", "$.x"),
            ("item", "Item", "$.item"),
            ("items", "repeated Item", "[$.item]"),
            ("xs", "repeated int64", "[$.x]"),
            ("map", "map<string, int64>", "$.m"),
            ("color", "Color", "Color.COLOR_RED"),
            ("node", "Node", "$.node"),
        ];
        let mut fields = String::new();
        let mut request = String::new();
        for (n, (name, ty, by)) in (1..).zip(shapes) {
            let _ = writeln!(
                fields,
                "  {ty} {name} = {n} [(mosaic.v1.field) = {{by: {} if: \"$.x > {n}\"}}];",
                q(by)
            );
            let _ = writeln!(
                request,
                "        request {{field: \"{name}\" by: {} if: \"$.x > {n}\"}}",
                q(by)
            );
        }
        let members = "  oneof pick {\n    int64 p_int = 40 [(mosaic.v1.field) = {by: \"$.x\" if: \"$.x == 1\"}];\n    Item p_item = 41 [(mosaic.v1.field) = {by: \"$.item\" if: \"$.x == 2\"}];\n    Node p_node = 42 [(mosaic.v1.field) = {by: \"$.node\" if: \"$.x == 3\"}];\n    Color p_color = 43 [(mosaic.v1.field) = {by: \"Color.COLOR_BLUE\" if: \"$.x == 4\"}];\n    string p_text = 44 [(mosaic.v1.field) = {by: \"d.name\" if: \"d.id == 5\"}];\n  }\n";
        let request_members = "        request {field: \"p_int\" by: \"$.x\" if: \"$.x == 1\"}\n        request {field: \"p_item\" by: \"$.item\" if: \"$.x == 2\"}\n        request {field: \"p_node\" by: \"$.node\" if: \"$.x == 3\"}\n        request {field: \"p_color\" by: \"Color.COLOR_BLUE\" if: \"$.x == 4\"}\n";
        let metadata = "        metadata {name: \"x-constant\" by: \"'edge'\"}\n        metadata {name: \"x-computed\" by: \"$.s + '!'\"}\n        metadata {name: \"x-raw-bin\" by: \"$.raw\"}\n        metadata {name: \"x-forwarded\" forward: \"accept-language\"}\n        metadata {name: \"x-forwarded-bin\" forward: \"x-trace-bin\"}\n";
        file.raw(format!(
            "message Node {{\n  int64 id = 1;\n  Node next = 2;\n}}\n\n\
             message Req {{\n  int64 x = 1;\n  string s = 2;\n  Item item = 3;\n  map<string, int64> m = 4;\n  Node node = 5;\n  bytes raw = 6;\n}}\n\n\
             message Shaped {{\n{fields}{members}}}\n\n\
             message EdgeResponse {{\n  option (mosaic.v1.message) = {{\n    def {{ name: \"d\" call {{ method: {get} }} }}\n    def {{ name: \"echo\" call {{\n        method: {put}\n{request}{request_members}{metadata}      }} }}\n  }};\n{fields}{members}  Shaped echoed = 50 [(mosaic.v1.field) = {{by: \"echo\" if: \"has(echo.item)\"}}];\n}}\n",
            get = q(&c.get()),
            put = q(&c.down("Put")),
        ));
        file.down("Get", "Req", "Item", "");
        file.down("Put", "Shaped", "Shaped", "");
        file.edge("Run", "Req", "EdgeResponse", "");
    })
}

/// Message literals setting fields of every shape and storage (narrow numbers, `float`,
/// presence, wrappers, lists, maps with narrow keys, messages, boxed recursion, oneof members,
/// enums), from values and from values that may be null; map literals; optional values.
fn literals() -> Case {
    single("literals", |file, c| {
        file.import("google/protobuf/wrappers.proto");
        let shapes = [
            ("narrow", "int32", "$.x", "$.x"),
            ("unsigned", "uint32", "uint($.x)", "uint($.x)"),
            ("real", "float", "1.5", "1.5"),
            ("text", "string", "$.s", "$.s"),
            (
                "maybe_text",
                "optional string",
                "$.s",
                "$.x > 0 ? $.s : null",
            ),
            (
                "maybe_narrow",
                "optional int32",
                "$.x",
                "$.x > 0 ? $.x : null",
            ),
            (
                "wrapper",
                "google.protobuf.Int32Value",
                "$.x",
                "$.x > 0 ? $.x : null",
            ),
            ("item", "Item", "$.item", "$.x > 0 ? $.item : null"),
            ("items", "repeated Item", "[$.item]", "[$.item]"),
            ("narrows", "repeated int32", "[$.x, 2]", "[$.x]"),
            ("reals", "repeated float", "[1.5]", "[2.5]"),
            ("by_id", "map<int32, string>", "{1: $.s}", "{$.x: $.s}"),
            ("color", "Color", "Color.COLOR_RED", "Color.COLOR_BLUE"),
            (
                "node",
                "Node",
                "Node{id: $.x}",
                "$.x > 0 ? Node{next: Node{id: 1}} : null",
            ),
        ];
        let mut fields = String::new();
        let mut plain = Vec::new();
        let mut nullable = Vec::new();
        for (n, (name, ty, value, maybe)) in (1..).zip(shapes) {
            let _ = writeln!(fields, "  {ty} {name} = {n};");
            plain.push(format!("{name}: {value}"));
            nullable.push(format!("{name}: {maybe}"));
        }
        let _ = writeln!(
            fields,
            "  oneof pick {{\n    int32 p_int = 30;\n    Node p_node = 31;\n    string p_text = 32;\n  }}"
        );
        plain.push("p_int: $.x".to_owned());
        nullable.push("p_node: $.x > 0 ? Node{id: 2} : null".to_owned());
        file.raw(format!(
            "message Node {{\n  int64 id = 1;\n  Node next = 2;\n}}\n\n\
             message Req {{\n  int64 x = 1;\n  string s = 2;\n  Item item = 3;\n}}\n\n\
             message Shaped {{\n{fields}}}\n\n\
             message EdgeResponse {{\n  option (mosaic.v1.message) = {{\n    def {{ name: \"d\" call {{ method: {get} request {{ field: \"id\" by: \"$.x\" }} }} }}\n  }};\n  Shaped plain = 1 [(mosaic.v1.field).by = {}];\n  Shaped nullable = 2 [(mosaic.v1.field).by = {}];\n  map<string, int64> counts = 3 [(mosaic.v1.field).by = \"{{'a': $.x, d.name: 2}}\"];\n  map<string, int32> empty = 4 [(mosaic.v1.field).by = \"{{}}\"];\n  optional int64 maybe = 5 [(mosaic.v1.field).by = \"$.x > 1 ? optional.of($.x) : optional.none()\"];\n  int64 or_value = 6 [(mosaic.v1.field).by = \"($.x > 1 ? $.x : null).orValue(7)\"];\n  bool has_value = 7 [(mosaic.v1.field).by = \"($.s == '' ? null : d).hasValue()\"];\n  Shaped echoed = 8 [(mosaic.v1.field).by = \"Shaped{{item: d, node: $.x > 0 ? Node{{id: d.id}} : null}}\"];\n}}\n",
            q(&format!("Shaped{{{}}}", plain.join(", "))),
            q(&format!("Shaped{{{}}}", nullable.join(", "))),
            get = q(&c.get()),
        ));
        file.down("Get", "Item", "Item", "");
        file.edge("Run", "Req", "EdgeResponse", "");
    })
}

/// An edge service with deployment variables of every type and values computed from them
/// (a message literal and a nullable value among them); calls with retry policies, with and
/// without a condition, one capturing its response metadata for a field and for the request
/// of a later call, a `map` call; and timestamps and durations of every shape (singular,
/// repeated, presence) in every operation, into fields of every shape.
fn deployment_retries_and_time() -> Case {
    single("deployment_time", |file, c| {
        file.import("google/protobuf/duration.proto");
        file.import("google/protobuf/timestamp.proto");
        let get = q(&c.get());
        file.raw(format!(
            "service Shop {{\n  option (mosaic.v1.service) = {{\n    \
             env {{name: \"brand\" type: \"string\" default: \"M\"}}\n    \
             env {{name: \"on\" type: \"bool\" default: \"true\"}}\n    \
             env {{name: \"limit\" type: \"int64\"}}\n    \
             env {{name: \"big\" type: \"uint64\" default: \"7\"}}\n    \
             env {{name: \"ratio\" type: \"double\" default: \"0.5\"}}\n    \
             env {{name: \"tags\" type: \"repeated string\" default: \"a,b\"}}\n    \
             env {{name: \"ids\" type: \"repeated int64\" default: \"\"}}\n    \
             env {{name: \"type\" type: \"string\" default: \"kw\" from: \"SHOP_TYPE\"}}\n    \
             def {{name: \"item\" by: \"Item{{id: $env.limit, name: $env.brand}}\"}}\n    \
             def {{name: \"maybe\" by: \"$env.on ? $env.limit : null\"}}\n    \
             def {{name: \"scaled\" by: \"double($env.big) * $env.ratio\"}}\n    \
             def {{validation {{if: \"$env.limit < 0 || size($env.tags) > 9\" message: \"'bad ' + $env.type\"}}}}\n  \
             }};\n  rpc Run(Req) returns (EdgeResponse);\n}}\n\n\
             message Req {{\n  int64 x = 1;\n  google.protobuf.Timestamp at = 2;\n  google.protobuf.Duration wait = 3;\n  \
             repeated google.protobuf.Timestamp ats = 4;\n  repeated int64 xs = 5;\n}}\n\n\
             message Times {{\n  google.protobuf.Timestamp at = 1;\n  google.protobuf.Duration wait = 2;\n  \
             repeated google.protobuf.Timestamp ats = 3;\n  map<string, google.protobuf.Duration> waits = 4;\n  \
             oneof when {{\n    google.protobuf.Timestamp exact = 5;\n    string text = 6;\n  }}\n}}\n\n\
             message EdgeResponse {{\n  option (mosaic.v1.message) = {{\n    \
             def {{ name: \"d\" call {{ method: {get} request {{ field: \"id\" by: \"$.x\" }} \
             retry {{ attempts: 3 codes: [UNAVAILABLE, ABORTED] initial_backoff: \"10ms\" max_backoff: \"1s\" multiplier: 1.5 if: \"error.message != '' && error.code != google.rpc.Code.OK\" }} \
             response_metadata: \"dm\" }} }}\n    \
             def {{ name: \"e\" call {{ method: {get} request {{ field: \"id\" by: \"$.x\" }} \
             request {{ field: \"name\" by: \"'k' in dm ? dm['k'] : $env.brand\" }} retry {{ attempts: 1 }} }} }}\n    \
             def {{ name: \"each\" map {{ iterator {{ name: \"i\" src: \"$.xs\" }} call {{ method: {get} request {{ field: \"id\" by: \"i\" }} retry {{ attempts: 2 codes: [RESOURCE_EXHAUSTED] }} }} }} }}\n    \
             def {{ name: \"start\" by: \"has($.at) ? $.at : timestamp('2026-01-01T00:00:00Z')\" }}\n    \
             def {{ name: \"end\" by: \"start + (has($.wait) ? $.wait : duration('1h30m'))\" }}\n  \
             }};\n  \
             string brand = 1 [(mosaic.v1.field).by = \"$env.brand + $env.type\"];\n  \
             bool on = 2 [(mosaic.v1.field).by = \"$env.on && $.x in $env.ids\"];\n  \
             uint64 big = 3 [(mosaic.v1.field).by = \"$env.big\"];\n  \
             double scaled = 4 [(mosaic.v1.field).by = \"$env.scaled\"];\n  \
             repeated string tags = 5 [(mosaic.v1.field).by = \"$env.tags\"];\n  \
             Item item = 6 [(mosaic.v1.field).by = \"$env.item\"];\n  \
             optional int64 maybe = 7 [(mosaic.v1.field).by = \"$env.maybe\"];\n  \
             map<string, string> meta = 8 [(mosaic.v1.field).by = \"dm\"];\n  \
             string name = 9 [(mosaic.v1.field).by = \"e.name + string(size(each))\"];\n  \
             Times times = 10 [(mosaic.v1.field).by = \"Times{{at: end, wait: end - start, ats: $.ats.map(t, t + duration('-1s')), \
             waits: {{'w': -duration('2ms')}}, exact: $.x > 0 ? end : null}}\"];\n  \
             google.protobuf.Timestamp at = 11 [(mosaic.v1.field).by = \"$.x > 0 ? $.at : null\"];\n  \
             google.protobuf.Duration wait = 12 [(mosaic.v1.field).by = \"$.wait + duration('1ms') - duration('0')\"];\n  \
             repeated bool order = 13 [(mosaic.v1.field).by = \"[start < end, start <= end, end > start, end >= start, start == end, start != end, $.wait < duration('1s')]\"];\n  \
             repeated int64 parts = 14 [(mosaic.v1.field).by = \"[start.getFullYear(), start.getMonth(), start.getDate(), start.getDayOfMonth(), start.getDayOfWeek(), \
             start.getDayOfYear(), start.getHours(), start.getMinutes(), start.getSeconds(), start.getMilliseconds(), \
             $.wait.getHours(), $.wait.getMinutes(), $.wait.getSeconds(), $.wait.getMilliseconds(), int(start)]\"];\n  \
             repeated string texts = 15 [(mosaic.v1.field).by = \"[string(start), string($.wait), start.format('%F %T'), string(timestamp($.x)), string(now())]\"];\n  \
             bool any_late = 16 [(mosaic.v1.field).by = \"$.ats.exists(t, t > end) || $.ats.all(t, t - start > duration('0'))\"];\n\
             }}\n"
        ));
        file.down("Get", "Item", "Item", "");
    })
}
