//! The corpus: every case is a small, self-contained set of protos (its own package, its own
//! downstream service and edge service) that the checker must accept. Cases are combined
//! systematically: families over value kinds (every scalar, enums, messages, well-known types),
//! constructs (each step body and option), expressions, and shapes (nesting, recursion,
//! packages, name clashes).

use crate::proto::{Build, Call, File, MapBody, Message, Step};

/// The expression type a proto kind reads as.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Int,
    Uint,
    Double,
    Bool,
    Str,
    Bytes,
    Enum,
    Msg,
}

/// A value kind: how it is written in a proto, what it reads as, and a literal of it.
#[derive(Clone, Copy)]
pub(crate) struct K {
    /// The proto type (`int32`, `Color`, `Item`).
    pub(crate) proto: &'static str,
    /// The name in case names (`int32`, `enum`, `message`).
    pub(crate) slug: &'static str,
    pub(crate) ty: Ty,
    /// A literal of the expression type; empty when the language has none (enums, messages).
    pub(crate) lit: &'static str,
}

const fn k(proto: &'static str, ty: Ty, lit: &'static str) -> K {
    K {
        proto,
        slug: proto,
        ty,
        lit,
    }
}

/// Every proto scalar.
pub(crate) const SCALARS: [K; 15] = [
    k("double", Ty::Double, "1.5"),
    k("float", Ty::Double, "0.5"),
    k("int32", Ty::Int, "7"),
    k("int64", Ty::Int, "-7"),
    k("uint32", Ty::Uint, "7u"),
    k("uint64", Ty::Uint, "0x7u"),
    k("sint32", Ty::Int, "-3"),
    k("sint64", Ty::Int, "3"),
    k("fixed32", Ty::Uint, "3u"),
    k("fixed64", Ty::Uint, "3u"),
    k("sfixed32", Ty::Int, "-1"),
    k("sfixed64", Ty::Int, "1"),
    k("bool", Ty::Bool, "true"),
    k("string", Ty::Str, "'s'"),
    k("bytes", Ty::Bytes, "b'b'"),
];

/// The corpus's enum (declared in every case's package).
pub(crate) const ENUM: K = K {
    proto: "Color",
    slug: "enum",
    ty: Ty::Enum,
    lit: "",
};

/// The corpus's plain message (declared in every case's package).
pub(crate) const MSG: K = K {
    proto: "Item",
    slug: "message",
    ty: Ty::Msg,
    lit: "",
};

/// Map key kinds: every integral scalar, bool and string.
const MAP_KEYS: [(&str, &str); 12] = [
    ("string", "'k'"),
    ("int32", "1"),
    ("int64", "-1"),
    ("uint32", "1u"),
    ("uint64", "1u"),
    ("sint32", "-2"),
    ("sint64", "2"),
    ("fixed32", "3u"),
    ("fixed64", "3u"),
    ("sfixed32", "-4"),
    ("sfixed64", "4"),
    ("bool", "true"),
];

fn all_kinds() -> Vec<K> {
    let mut kinds = SCALARS.to_vec();
    kinds.push(ENUM);
    kinds.push(MSG);
    kinds
}

/// A value of the kind's expression type derived from `e` (of that type).
fn transform(k: &K, e: &str) -> String {
    match k.ty {
        Ty::Int => format!("{e} + 1"),
        Ty::Uint => format!("{e} * 2u"),
        Ty::Double => format!("{e} / 2.0"),
        Ty::Bool => format!("!{e}"),
        Ty::Str => format!("{e} + '!'"),
        Ty::Bytes => format!("{e} + b'!'"),
        Ty::Enum | Ty::Msg => format!("true ? {e} : {e}"),
    }
}

fn orderable(k: &K) -> bool {
    !matches!(k.ty, Ty::Msg)
}

fn numeric(k: &K) -> bool {
    matches!(k.ty, Ty::Int | Ty::Uint | Ty::Double)
}

/// The enum and message every group's cases may use.
fn common(file: &mut File) {
    file.raw("enum Color {\n  COLOR_UNSPECIFIED = 0;\n  COLOR_RED = 1;\n  COLOR_BLUE = 2;\n}\n");
    file.message(
        Message::new("Item")
            .field("int64", "id")
            .field("string", "name"),
    );
}

/// How a case's protos are laid out.
pub(crate) enum Unit {
    /// A fragment of its group's file `corpus/<group>.proto` (package `corpus.<group>.v1`,
    /// with the common `Color` and `Item`): its declarations, named with its prefix, and its
    /// methods on the group's `Down` and `Edge` services. Grouping keeps the corpus to a few
    /// packages and services, so that it compiles fast.
    Fragment { group: String, file: File },
    /// Files of its own: `(path relative to the include root, content)`.
    Files(Vec<(String, String)>),
}

/// One case: protos the checker must accept, whose generated code must compile.
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) unit: Unit,
}

/// Names within a case: its prefix (the case name in upper camel case, or none for a case with
/// a package of its own) and its package.
pub(crate) struct Ctx {
    pub(crate) prefix: String,
    pub(crate) package: String,
}

impl Ctx {
    /// A name of the case's: `prefix` + `name`.
    pub(crate) fn n(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The full name of the case's method `name` of `service Down`.
    pub(crate) fn down(&self, name: &str) -> String {
        format!("{}.Down/{}", self.package, self.n(name))
    }

    /// The case's downstream `Get`.
    pub(crate) fn get(&self) -> String {
        self.down("Get")
    }

    /// Adds the usual methods: `<P>Get(<P><down_in>) returns (<P><down_out>)` to `Down` and
    /// `<P>Run(<P><edge_in>) returns (<P>EdgeResponse)` with a timeout to `Edge`.
    pub(crate) fn services(&self, file: &mut File, down_in: &str, down_out: &str, edge_in: &str) {
        file.down(&self.n("Get"), &self.n(down_in), &self.n(down_out), "");
        file.edge(
            &self.n("Run"),
            &self.n(edge_in),
            &self.n("EdgeResponse"),
            "option (mosaic.v1.method) = {timeout: \"2s\"};",
        );
    }
}

fn camel(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// A case that is a fragment of group `group`.
pub(crate) fn fragment(group: &str, name: &str, build: impl FnOnce(&mut File, &Ctx)) -> Case {
    let ctx = Ctx {
        prefix: camel(name),
        package: format!("corpus.{group}.v1"),
    };
    let mut file = File::new(&ctx.package);
    file.imports.clear();
    build(&mut file, &ctx);
    Case {
        name: name.to_owned(),
        unit: Unit::Fragment {
            group: group.to_owned(),
            file,
        },
    }
}

/// A case with a package of its own, `corpus.<name>.v1` (names unprefixed), for what a shared
/// package would get in the way of: names of services and packages, the common names.
pub(crate) fn single(name: &str, build: impl FnOnce(&mut File, &Ctx)) -> Case {
    let ctx = Ctx {
        prefix: String::new(),
        package: format!("corpus.{name}.v1"),
    };
    let mut file = File::new(&ctx.package);
    common(&mut file);
    build(&mut file, &ctx);
    Case {
        name: name.to_owned(),
        unit: Unit::Files(vec![(format!("corpus/{name}.proto"), file.render())]),
    }
}

/// The file of group `group` holding `parts`.
pub(crate) fn group_file(group: &str, parts: &[(&str, &File)]) -> String {
    let mut file = File::new(&format!("corpus.{group}.v1"));
    common(&mut file);
    file.render_with(parts)
}

/// The files of `cases`: each group's file with the fragments among them, and each case's own.
pub(crate) fn assemble(cases: &[&Case]) -> Vec<(String, String)> {
    let mut groups: Vec<(&str, Vec<(&str, &File)>)> = Vec::new();
    let mut files = Vec::new();
    for case in cases {
        match &case.unit {
            Unit::Fragment { group, file } => {
                match groups.iter_mut().find(|(g, _)| *g == group.as_str()) {
                    Some((_, parts)) => parts.push((case.name.as_str(), file)),
                    None => groups.push((group.as_str(), vec![(case.name.as_str(), file)])),
                }
            }
            Unit::Files(own) => files.extend(own.iter().cloned()),
        }
    }
    for (group, parts) in groups {
        files.push((format!("corpus/{group}.proto"), group_file(group, &parts)));
    }
    files
}

/// The string and bytes operations on values with presence that are cases of their own
/// (`text_<place>_<op>`, see [`crate::exprs::text_cases`]), so that the rest of their place's
/// case stays in the build while they are known unsound.
const TEXT_SPLIT: &[&str] = &[
    "text_optional_string_concat",
    "text_optional_string_concat_rhs",
    "text_optional_string_to_bytes",
    "text_optional_string_to_int",
    "text_wrapper_string_concat",
    "text_wrapper_string_concat_rhs",
    "text_wrapper_string_to_bytes",
    "text_wrapper_string_to_int",
    "text_oneof_string_concat",
    "text_oneof_string_concat_rhs",
    "text_oneof_string_to_bytes",
    "text_oneof_string_to_int",
    "text_optional_bytes_concat",
    "text_optional_bytes_to_string",
    "text_wrapper_bytes_concat",
    "text_wrapper_bytes_to_string",
    "text_oneof_bytes_concat",
    "text_oneof_bytes_to_string",
];

/// Every case, in a stable order.
pub(crate) fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    for k in all_kinds().iter().filter(|k| full(k)) {
        cases.push(kind(k));
    }
    cases.push(kind_wire());
    cases.push(kinds_request());
    cases.push(kinds_map_call());
    cases.push(oneof_by());
    cases.push(oneof_request());
    cases.push(oneof_autobind());
    let storage_keys = MAP_KEYS.iter().filter(|(key, _)| !WIRE.contains(key));
    for (index, (key, lit)) in storage_keys.enumerate() {
        cases.push(map_key(index, key, lit));
    }
    cases.push(map_key_wire());
    cases.push(mapkeys_request());
    cases.push(autobind_cross());
    cases.extend(crate::wkt::all());
    cases.extend(crate::constructs::all());
    cases.extend(crate::exprs::all());
    cases.extend(crate::exprs::text_cases(TEXT_SPLIT));
    cases.extend(crate::shapes::all());
    cases.extend(crate::features::all());
    cases.extend(crate::v2::all());
    cases
}

/// The scalars stored in Rust as another scalar is (`sint32` and `sfixed32` as `int32`, and so
/// on): they differ only in their wire encoding, which the generated code never sees.
const WIRE: &[&str] = &[
    "sint32", "sfixed32", "sint64", "sfixed64", "fixed32", "fixed64",
];

/// Whether a kind is the first of its Rust storage class: those get every construct, in a case
/// of their own (`kind_<kind>`); the others are `kind_wire`.
fn full(k: &K) -> bool {
    !WIRE.contains(&k.proto)
}

/// `kind_wire`: the scalars of [`WIRE`] singular, repeated, map-valued, `optional` and in a
/// oneof, passed through, read, and stored into the kinds with their expression type.
fn kind_wire() -> Case {
    fragment("kinds", "kind_wire", |file, c| {
        let wire: Vec<&K> = SCALARS.iter().filter(|k| !full(k)).collect();
        let mut io = Message::new(&c.n("Io"));
        let mut edge = Message::new(&c.n("EdgeResponse"));
        for k in &wire {
            let (t, s, lit) = (k.proto, k.slug, k.lit);
            io = io
                .field(t, &format!("{s}_v"))
                .field(&format!("repeated {t}"), &format!("{s}_vs"))
                .field(&format!("map<string, {t}>"), &format!("{s}_m"))
                .field(&format!("optional {t}"), &format!("{s}_o"));
            let wide = if k.ty == Ty::Int { "int64" } else { "uint64" };
            let narrow = if k.ty == Ty::Int { "int32" } else { "uint32" };
            edge = edge
                .by(t, &format!("{s}_v"), &format!("$.{s}_v"))
                .by(
                    &format!("repeated {t}"),
                    &format!("{s}_vs"),
                    &format!("$.{s}_vs"),
                )
                .by(
                    &format!("map<string, {t}>"),
                    &format!("{s}_m"),
                    &format!("$.{s}_m"),
                )
                .by(
                    &format!("optional {t}"),
                    &format!("{s}_o"),
                    &format!("$.{s}_o"),
                )
                .by(t, &format!("{s}_a"), &format!("$.{s}_a"))
                .by(
                    t,
                    &format!("{s}_expr"),
                    &format!("size($.{s}_vs) > 0 ? $.{s}_vs[0] : $.{s}_m['k'] + {lit}"),
                )
                .by(wide, &format!("{s}_wide"), &format!("$.{s}_v"))
                .by(narrow, &format!("{s}_narrow"), &format!("$.{s}_o"))
                .by(
                    &format!("repeated {wide}"),
                    &format!("{s}_wide_list"),
                    &format!("$.{s}_vs"),
                );
        }
        let members: Vec<(String, String)> = wire
            .iter()
            .map(|k| (k.proto.to_owned(), format!("{}_a", k.slug)))
            .collect();
        let members: Vec<(&str, &str, Option<&str>)> = members
            .iter()
            .map(|(t, n)| (t.as_str(), n.as_str(), None))
            .collect();
        file.message(io.oneof("choice", &members));
        file.message(edge);
        file.edge(&c.n("Run"), &c.n("Io"), &c.n("EdgeResponse"), "");
    })
}

/// `kind_<kind>`: one value kind in every position but downstream requests (those are
/// `kinds_request`, one call for all kinds: a call site is the costliest thing to compile). The
/// edge request `<P>Io` holds the kind singular, repeated, map-valued, proto3 `optional` and as
/// a oneof member; the response reads them with field `by`s, a step `by`, a `map` step, message
/// arguments and autobind (`<P>Built`, plain and optional fields both ways), and the operators
/// and functions that apply to the kind; and stores the value into the kinds with the same
/// expression type and another storage. Kinds of a storage class already covered get the reads
/// and stores only.
fn kind(k: &K) -> Case {
    fragment("kinds", &format!("kind_{}", k.slug), |file, c| {
        let t = k.proto;
        let o = format!("optional {t}");
        let rep = format!("repeated {t}");
        let map = format!("map<string, {t}>");
        let built = c.n("Built");
        file.message(
            Message::new(&c.n("Io"))
                .field(t, "v")
                .field(&rep, "vs")
                .field(&map, "m")
                .field(&o, "o")
                .oneof("choice", &[(t, "a", None), ("string", "other", None)])
                .field(t, "p2o")
                .field(&o, "o2p")
                .field(t, "w"),
        );
        let mut edge = Message::new(&c.n("EdgeResponse"))
            .by(t, "v", "$.v")
            .by(&rep, "vs", "$.vs")
            .by(&map, "m", "$.m")
            .by(t, "first", "size($.vs) > 0 ? $.vs[0] : $.v")
            .by(t, "keyed", "'k' in $.m ? $.m['k'] : $.m.k")
            .by("bool", "present", "has($.v) && has($.m.k)")
            .by(&o, "o", "$.o")
            .by(&o, "o_from_plain", "$.v")
            .by(t, "o_plain", "$.o")
            .by("bool", "o_set", "has($.o) || $.o2p == null")
            .by(t, "a", "$.a")
            .by("bool", "a_set", "has($.a) && $.other != null");
        if full(k) {
            // The value as a step, per element, as message arguments and autobound.
            file.message(
                Message::new(&built)
                    .step(Step::by("s", "$.src").autobind())
                    .by(t, "arg", "$.arg")
                    .by(&rep, "args", "$.args")
                    .by(t, "t", &transform(k, "$.arg"))
                    .field(t, "v")
                    .field(&rep, "vs")
                    .field(&map, "m")
                    .field(&o, "o")
                    .field(&o, "p2o")
                    .field(t, "o2p"),
            );
            edge = edge
                .step(Step::by("t", &transform(k, "$.v")))
                .step(Step::map(
                    "each",
                    "x",
                    "$.vs",
                    MapBody::By(transform(k, "x")),
                ))
                .step(Step::build(
                    "b",
                    Build::new(&built)
                        .arg("arg", "$.w")
                        .arg("args", "$.vs + [$.w]")
                        .arg("src", "$"),
                ))
                .by(t, "t", "t")
                .by(&rep, "each", "each")
                .by(&built, "b", "b")
                .by("int64", "count", "size($.vs) + size($.m) + $.vs.size()")
                .by("bool", "same", "$.v == $.w && $.vs != $.vs || $.v in $.vs")
                .by(&rep, "joined", "$.vs + [$.v, $.w]")
                .by(&o, "o_cond", "$.o != null ? $.o : $.v")
                .by(t, "a_or_v", "has($.a) ? $.a : $.v");
            if !k.lit.is_empty() {
                let lit = k.lit;
                edge = edge.by("bool", "lit_eq", &format!("$.v == {lit} || {lit} != $.w"));
            }
            if !matches!(k.ty, Ty::Msg) {
                edge = edge.by("string", "text", "string($.v)");
            }
            if orderable(k) {
                edge = edge.by("bool", "less", "$.v < $.w || $.v >= $.a");
            }
        }
        if numeric(k) {
            edge = edge
                .by("int64", "as_int", "int($.v)")
                .by("uint64", "as_uint", "uint($.v)")
                .by("double", "as_double", "double($.a)");
        }
        match k.ty {
            Ty::Enum => {
                edge = edge
                    .by("int64", "as_int", "int($.v) + int($.a)")
                    .by("bool", "is_red", "$.v == 1 || 2 == $.v || $.v == $.a")
                    .by("string", "a_text", "string($.a)");
            }
            Ty::Str => {
                edge = edge
                    .by("int64", "parsed", "int($.v)")
                    .by("bytes", "raw", "bytes($.v)")
                    .by(
                        "bool",
                        "tests",
                        "$.v.startsWith('a') && $.v.contains($.w) || $.v.endsWith('z')",
                    )
                    .by("int64", "len", "size($.v) + $.v.size() + size($.a)")
                    .by(
                        "bool",
                        "a_tests",
                        "$.a.startsWith('x') || string($.a) == ''",
                    );
            }
            Ty::Bytes => {
                // `string()` of a bytes oneof member is `text_oneof_bytes_to_string`.
                edge = edge.by("int64", "len", "size($.v) + size($.a)").by(
                    "string",
                    "v_text",
                    "string($.v)",
                );
            }
            Ty::Bool => edge = edge.by("bool", "a_not", "!$.a && !$.v"),
            Ty::Msg => {
                edge = edge
                    .by("int64", "id", "$.v.id + $.a.id")
                    .by("bool", "set", "$.v != null && has($.v.name)")
                    .by(
                        "string",
                        "name",
                        "size($.vs) > 0 ? $.vs[0].name : $.m['k'].name",
                    );
            }
            _ => {}
        }
        // The other kinds with the same expression type, stored from this one (maps with
        // another value storage are in `mapkey_*` and `autobind_cross`).
        for other in SCALARS
            .iter()
            .filter(|x| x.ty == k.ty && x.proto != k.proto)
        {
            let x = other.proto;
            edge = edge.by(x, &format!("store_{x}"), "$.v");
            if full(other) {
                edge = edge
                    .by(&format!("repeated {x}"), &format!("store_{x}_list"), "$.vs")
                    .by(
                        &format!("optional {x}"),
                        &format!("store_{x}_optional"),
                        "$.o",
                    );
            }
        }
        file.message(edge);
        file.edge(&c.n("Run"), &c.n("Io"), &c.n("EdgeResponse"), "");
    })
}

/// `kinds_request`: one downstream call whose request has every kind singular, repeated and
/// `optional` (and, for one kind per storage class, map-valued and set from plain and optional
/// values both ways).
fn kinds_request() -> Case {
    fragment("kinds", "kinds_request", |file, c| {
        let mut io = Message::new(&c.n("Io"));
        let mut call = Call::new(&c.get());
        for k in all_kinds() {
            let (t, s) = (k.proto, k.slug);
            io = io
                .field(t, &format!("{s}_v"))
                .field(&format!("repeated {t}"), &format!("{s}_vs"))
                .field(&format!("optional {t}"), &format!("{s}_o"));
            call = call
                .set(&format!("{s}_v"), &format!("$.{s}_v"))
                .set(&format!("{s}_vs"), &format!("$.{s}_vs + [$.{s}_v]"))
                .set(&format!("{s}_o"), &format!("$.{s}_o"));
            // Maps, and `optional` from plain and back, for one kind per storage class.
            if full(&k) {
                io = io
                    .field(&format!("map<string, {t}>"), &format!("{s}_m"))
                    .field(&format!("optional {t}"), &format!("{s}_p2o"))
                    .field(t, &format!("{s}_o2p"));
                call = call
                    .set(&format!("{s}_m"), &format!("$.{s}_m"))
                    .set(&format!("{s}_p2o"), &format!("$.{s}_v"))
                    .set(&format!("{s}_o2p"), &format!("$.{s}_o"));
            }
        }
        file.message(io);
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call("d", call))
                .by("int64", "v", "d.int64_v"),
        );
        c.services(file, "Io", "Io", "Io");
    })
}

/// The oneof of each kind in the oneof cases: `choice_<kind> { <kind> a_<kind>; string
/// other_<kind>; }`, with `by`s from `by(kind)` when given.
fn oneofs(mut message: Message, by: impl Fn(&K) -> Option<String>) -> Message {
    for k in all_kinds() {
        let s = k.slug;
        let (a, other) = (format!("a_{s}"), format!("other_{s}"));
        let by = by(&k);
        message = message.oneof(
            &format!("choice_{s}"),
            &[(k.proto, &a, by.as_deref()), ("string", &other, None)],
        );
    }
    message
}

/// `oneof_by`: a oneof member of each kind bound by `by`.
fn oneof_by() -> Case {
    fragment("oneofs", "oneof_by", |file, c| {
        let mut io = Message::new(&c.n("Io"));
        for k in all_kinds() {
            io = io.field(k.proto, &format!("v_{}", k.slug));
        }
        file.message(io);
        file.message(oneofs(Message::new(&c.n("EdgeResponse")), |k| {
            Some(format!("$.v_{}", k.slug))
        }));
        file.edge(&c.n("Run"), &c.n("Io"), &c.n("EdgeResponse"), "");
    })
}

/// `oneof_request`: a oneof member of each kind set in a downstream request.
fn oneof_request() -> Case {
    fragment("oneofs", "oneof_request", |file, c| {
        let mut io = Message::new(&c.n("Io"));
        let mut call = Call::new(&c.get());
        for k in all_kinds() {
            io = io.field(k.proto, &format!("v_{}", k.slug));
            call = call.set(&format!("a_{}", k.slug), &format!("$.v_{}", k.slug));
        }
        file.message(io);
        file.message(oneofs(Message::new(&c.n("Down")), |_| None));
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call("d", call))
                .by("int64", "v", "d.a_int64"),
        );
        c.services(file, "Down", "Down", "Io");
    })
}

/// `oneof_autobind`: an autobind step whose message has a oneof of each kind, into a response
/// with the same oneofs (members are left unset: autobind fills no oneof member) and a plain
/// field.
fn oneof_autobind() -> Case {
    fragment("oneofs", "oneof_autobind", |file, c| {
        file.message(oneofs(Message::new(&c.n("Io")).field("int64", "v"), |_| {
            None
        }));
        file.message(oneofs(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::by("s", "$").autobind())
                .field("int64", "v"),
            |_| None,
        ));
        file.edge(&c.n("Run"), &c.n("Io"), &c.n("EdgeResponse"), "");
    })
}

/// `autobind_cross`: autobind between kinds with one expression type and different storage
/// (and the same storage under another name, `sint32` to `int32`), singular, repeated and
/// map-valued.
fn autobind_cross() -> Case {
    let pairs = [
        ("int32", "int64"),
        ("int64", "int32"),
        ("sint32", "int32"),
        ("sfixed64", "int64"),
        ("uint32", "uint64"),
        ("uint64", "uint32"),
        ("fixed32", "uint32"),
        ("float", "double"),
        ("double", "float"),
        ("repeated int32", "repeated int64"),
        ("repeated double", "repeated float"),
        ("map<string, int64>", "map<string, int32>"),
        ("map<int32, string>", "map<int64, string>"),
    ];
    fragment("autobind", "autobind_cross", |file, c| {
        let mut src = Message::new(&c.n("Src"));
        let mut edge = Message::new(&c.n("EdgeResponse"))
            .step(Step::call("d", Call::new(&c.get())).autobind());
        for (i, (from, to)) in pairs.iter().enumerate() {
            src = src.field(from, &format!("f{i}"));
            edge = edge.field(to, &format!("f{i}"));
        }
        file.message(src);
        file.message(Message::new(&c.n("Req")));
        file.message(edge);
        c.services(file, "Req", "Src", "Req");
    })
}

/// `kinds_map_call`: a `map` step whose body is a call, setting a request field of each kind
/// (one per storage class) from the iterator.
fn kinds_map_call() -> Case {
    fragment("kinds", "kinds_map_call", |file, c| {
        let mut io = Message::new(&c.n("Io"));
        let mut each = Call::new(&c.get());
        for k in all_kinds().iter().filter(|k| full(k)) {
            let (t, s) = (k.proto, k.slug);
            io = io
                .field(t, &format!("{s}_v"))
                .field(&format!("repeated {t}"), &format!("{s}_vs"));
            each = each.set(&format!("{s}_v"), &format!("$.{s}_vs[i]"));
        }
        file.message(io);
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::map("calls", "i", "[0, 1]", MapBody::Call(each)))
                .by(&format!("repeated {}", c.n("Io")), "calls", "calls"),
        );
        c.services(file, "Io", "Io", "Io");
    })
}

/// `mapkey_<key>`: maps keyed by each key kind, with string, narrow number and (in turn)
/// message, enum or bytes values: passed through, indexed, tested with `in`, sized, and stored
/// with another key or value storage. (Set in a downstream request: `mapkeys_request`.)
fn map_key(index: usize, key: &str, lit: &str) -> Case {
    fragment("mapkeys", &format!("mapkey_{key}"), |file, c| {
        let m = |v: &str| format!("map<{key}, {v}>");
        // Every key kind with string and narrow-number values; message, enum and bytes values
        // each with a third of the key kinds, so that the corpus stays small.
        let extra = match index % 3 {
            0 => ("Item", "int64", "$.mx[$.key].id"),
            1 => ("Color", "Color", "$.mx[$.key]"),
            _ => ("bytes", "bytes", "$.mx[$.key]"),
        };
        file.message(
            Message::new(&c.n("Io"))
                .field(key, "key")
                .field(&m("string"), "ms")
                .field(&m("int32"), "mn")
                .field(&m(extra.0), "mx"),
        );
        let other_key = match key {
            "int32" | "sint32" | "sfixed32" => Some("int64"),
            "int64" | "sint64" | "sfixed64" => Some("int32"),
            "uint32" | "fixed32" => Some("uint64"),
            "uint64" | "fixed64" => Some("uint32"),
            _ => None,
        };
        let mut edge = Message::new(&c.n("EdgeResponse"))
            .by(&m("string"), "ms", "$.ms")
            .by(&m("int32"), "mn", "$.mn")
            .by(&m(extra.0), "mx", "$.mx")
            .by(&m("int64"), "mn_wide", "$.mn")
            .by(
                "string",
                "s",
                &format!("$.key in $.ms ? $.ms[$.key] : $.ms[{lit}]"),
            )
            .by("int32", "n", "$.mn[$.key] + 1")
            .by(extra.1, "x", extra.2)
            .by("int64", "sizes", "size($.ms) + size($.mx) + $.mn.size()")
            .by("bool", "lit_in", &format!("{lit} in $.mn && $.key in $.mx"));
        if let Some(other) = other_key {
            edge = edge.by(&format!("map<{other}, string>"), "rekeyed", "$.ms");
        }
        file.message(edge);
        file.edge(&c.n("Run"), &c.n("Io"), &c.n("EdgeResponse"), "");
    })
}

/// `mapkey_wire`: maps keyed by the scalars of [`WIRE`], passed through, indexed and tested.
fn map_key_wire() -> Case {
    fragment("mapkeys", "mapkey_wire", |file, c| {
        let mut io = Message::new(&c.n("Io"));
        let mut edge = Message::new(&c.n("EdgeResponse"));
        for (key, lit) in MAP_KEYS.iter().filter(|(key, _)| WIRE.contains(key)) {
            let m = format!("map<{key}, string>");
            io = io
                .field(key, &format!("{key}_key"))
                .field(&m, &format!("{key}_m"));
            edge = edge.by(&m, &format!("{key}_m"), &format!("$.{key}_m")).by(
                "string",
                &format!("{key}_s"),
                &format!("$.{key}_key in $.{key}_m ? $.{key}_m[$.{key}_key] : $.{key}_m[{lit}]"),
            );
        }
        file.message(io);
        file.message(edge);
        file.edge(&c.n("Run"), &c.n("Io"), &c.n("EdgeResponse"), "");
    })
}

/// `mapkeys_request`: one downstream call whose request has maps with every key kind, set
/// from maps with another value storage.
fn mapkeys_request() -> Case {
    fragment("mapkeys", "mapkeys_request", |file, c| {
        let mut down = Message::new(&c.n("Down"));
        let mut req = Message::new(&c.n("Req"));
        let mut call = Call::new(&c.get());
        for (key, _) in MAP_KEYS {
            down = down.field(&format!("map<{key}, int32>"), &format!("{key}_m"));
            req = req.field(&format!("map<{key}, int64>"), &format!("{key}_m"));
            call = call.set(&format!("{key}_m"), &format!("$.{key}_m"));
        }
        file.message(down);
        file.message(req);
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call("d", call))
                .by("map<string, int32>", "m", "d.string_m"),
        );
        c.services(file, "Down", "Down", "Req");
    })
}
