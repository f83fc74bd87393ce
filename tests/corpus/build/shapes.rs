//! Shapes: nested messages, recursion (direct and through another message), deep,
//! one-segment, keyword and empty packages, building a message of another package, and names
//! that clash: with each other, with generated items, with Rust keywords and prelude names.

use crate::cases::{Case, Ctx, Unit, fragment, single};
use crate::proto::{Build, Call, File, MapBody, Message, Service, Step};

pub(crate) fn all() -> Vec<Case> {
    vec![
        nested(),
        recursion_direct(),
        recursion_indirect(),
        deep_package(),
        empty_package(),
        keyword_package(),
        build_other_package(),
        clash_nested_same_name(),
        clash_nested_vs_top(),
        clash_nested_responses(),
        clash_args_name(),
        clash_generated_names(),
        clash_rust_names(),
        clash_field_keywords(),
        clash_step_keywords(),
        clash_step_generated_names(),
        clash_step_resolver_name(),
        clash_map_call_names(),
        clash_field_case(),
        clash_method_names(),
    ]
}

/// `shape_nested`: messages and enums declared in messages, as request, response, built and
/// passed-through types, three levels deep.
fn nested() -> Case {
    fragment("shapes", "shape_nested", |file, c| {
        let outer = c.n("Outer");
        file.message(
            Message::new(&outer).field("Inner", "inner").nested(
                Message::new("Inner")
                    .field("Deep", "deep")
                    .field("repeated Deep", "deeps")
                    .field("Mood", "mood")
                    .nested(Message::new("Deep").field("int64", "v"))
                    .nested_raw("enum Mood {\n  MOOD_UNSPECIFIED = 0;\n  MOOD_OK = 1;\n}\n"),
            ),
        );
        file.message(
            Message::new(&c.n("Down"))
                .field("int64", "v")
                .field(&format!("{outer}.Inner"), "inner")
                .field(&outer, "outer")
                .nested(Message::new("Unused")),
        );
        file.message(Message::new(&c.n("Req")).nested(Message::new("Params").field("int64", "v")));
        let resp = c.n("Resp");
        let card = format!("{resp}.Card");
        file.message(
            Message::new(&resp)
                .nested(
                    Message::new("Page")
                        .step(Step::call("d", Call::new(&c.get()).set("v", "$.v")))
                        .step(Step::build("card", Build::new(&card).arg("v", "$.v")))
                        .step(Step::map(
                            "cards",
                            "x",
                            "d.inner.deeps",
                            MapBody::Message(Build::new(&card).arg("v", "x.v")),
                        ))
                        .step(Step::build(
                            "deepest",
                            Build::new(&format!("{}.{card}.Deepest", c.package))
                                .arg("deep", "d.inner.deep"),
                        ))
                        .by(&format!("{outer}.Inner.Deep"), "deep", "d.inner.deep")
                        .by(
                            &format!("repeated {outer}.Inner.Deep"),
                            "deeps",
                            "d.outer.inner.deeps",
                        )
                        .by(&format!("{outer}.Inner.Mood"), "mood", "d.inner.mood")
                        .by(&card, "card", "card")
                        .by(&format!("repeated {card}"), "cards", "cards")
                        .by(&format!("{card}.Deepest"), "deepest", "deepest"),
                )
                .nested(
                    Message::new("Card")
                        .by("int64", "v", "$.v")
                        .nested(Message::new("Deepest").by("int64", "v", "$.deep.v + 1")),
                ),
        );
        file.down(&c.n("Get"), &c.n("Down"), &c.n("Down"), "");
        file.edge(
            &c.n("Run"),
            &format!("{}.Params", c.n("Req")),
            &format!("{resp}.Page"),
            "",
        );
    })
}

/// `shape_recursion_direct`: a message with fields of its own type (singular, repeated, map),
/// passed through, read deep, iterated; a recursive response and built message.
fn recursion_direct() -> Case {
    fragment("shapes", "shape_recursion_direct", |file, c| {
        let node = c.n("Node");
        let tree = c.n("Tree");
        file.message(
            Message::new(&node)
                .field(&node, "next")
                .field("int64", "v")
                .field(&format!("repeated {node}"), "children")
                .field(&format!("map<string, {node}>"), "named"),
        );
        file.message(Message::new(&c.n("Io")).field(&node, "node"));
        file.message(
            Message::new(&tree)
                .by(&tree, "parent", "null")
                .by(&node, "node", "$.node")
                .by(&node, "next", "$.node.next"),
        );
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call(
                    "d",
                    Call::new(&c.get()).set("node", "$.node.next"),
                ))
                .step(Step::map(
                    "nexts",
                    "c",
                    "d.node.children",
                    MapBody::By("c.next".into()),
                ))
                .step(Step::build(
                    "tree",
                    Build::new(&tree).arg("node", "d.node.next"),
                ))
                .by(&node, "node", "d.node")
                .by(&node, "next", "d.node.next")
                .by("int64", "deep", "d.node.next.next.v")
                .by(&format!("repeated {node}"), "kids", "d.node.children")
                .by(&format!("map<string, {node}>"), "named", "d.node.named")
                .by(&node, "first_child", "d.node.children[0]")
                .by(&node, "named_a", "d.node.named['a'].next")
                .by(
                    "bool",
                    "has_next",
                    "has(d.node.next) && d.node.next.next != null",
                )
                .by(&format!("repeated {node}"), "nexts", "nexts")
                .by(&tree, "tree", "tree")
                .by(&c.n("EdgeResponse"), "again", "null"),
        );
        c.services(file, "Io", "Io", "Io");
    })
}

/// `shape_recursion_indirect`: two messages holding each other, passed through and read; two
/// built messages holding each other.
fn recursion_indirect() -> Case {
    fragment("shapes", "shape_recursion_indirect", |file, c| {
        let (a, b, ping, pong) = (c.n("A"), c.n("B"), c.n("Ping"), c.n("Pong"));
        file.message(Message::new(&a).field(&b, "b").field("int64", "v"));
        file.message(Message::new(&b).field(&a, "a").field("string", "s"));
        file.message(Message::new(&c.n("Io")).field(&a, "a"));
        file.message(
            Message::new(&ping)
                .step(Step::build("pong", Build::new(&pong).arg("a", "$.a")))
                .by(&pong, "pong", "pong")
                .by(&a, "a", "$.a"),
        );
        file.message(
            Message::new(&pong)
                .by(&ping, "ping", "null")
                .by(&b, "b", "$.a.b"),
        );
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call("d", Call::new(&c.get()).set("a", "$.a.b.a")))
                .step(Step::build("ping", Build::new(&ping).arg("a", "d.a")))
                .by(&a, "a", "d.a")
                .by(&b, "b", "d.a.b")
                .by(&a, "back", "d.a.b.a")
                .by("int64", "v", "d.a.b.a.v")
                .by("string", "s", "d.a.b.s")
                .by(&ping, "ping", "ping"),
        );
        c.services(file, "Io", "Io", "Io");
    })
}

/// `shape_deep_package`: a downstream in `corpus.deep.a.b.c.v1`, an edge in `corpus.deep.a.v1`
/// (a prefix of it) calling it and a downstream in the one-segment package `corpusone`, whose
/// edge calls the deep package and builds messages with its types.
fn deep_package() -> Case {
    let deep = "corpus.deep.a.b.c.v1";
    let mut down = File::new(deep);
    down.raw("enum Level {\n  LEVEL_UNSPECIFIED = 0;\n  LEVEL_HIGH = 1;\n}\n");
    down.message(
        Message::new("Thing")
            .field("int64", "id")
            .field("Level", "level"),
    );
    down.message(Message::new("GetThingRequest").field("int64", "id"));
    down.message(
        Message::new("GetThingResponse")
            .field("Thing", "thing")
            .field("repeated Thing", "things"),
    );
    down.service(Service::downstream("Things").rpc(
        "GetThing",
        "GetThingRequest",
        "GetThingResponse",
        "",
    ));

    let mut one = File::new("corpusone");
    one.import("corpus/deep/a/b/c/v1/down.proto");
    one.message(Message::new("EchoRequest").field("string", "s"));
    one.message(Message::new("EchoResponse").field("string", "s"));
    one.service(Service::downstream("Echo").rpc("Say", "EchoRequest", "EchoResponse", ""));
    one.message(Message::new("OneRequest").field("int64", "id"));
    one.message(
        Message::new("OneCard")
            .by(&format!("{deep}.Thing"), "thing", "$.thing")
            .by(&format!("{deep}.Level"), "level", "$.thing.level"),
    );
    one.message(
        Message::new("OneResponse")
            .step(Step::call(
                "t",
                Call::new(&format!("{deep}.Things/GetThing")).set("id", "$.id"),
            ))
            .step(Step::build(
                "card",
                Build::new("OneCard").arg("thing", "t.thing"),
            ))
            .step(Step::map(
                "cards",
                "x",
                "t.things",
                MapBody::Message(Build::new("OneCard").arg("thing", "x")),
            ))
            .by(&format!("{deep}.Thing"), "thing", "t.thing")
            .by("OneCard", "card", "card")
            .by("repeated OneCard", "cards", "cards"),
    );
    one.service(Service::edge("OneEdge").rpc("Run", "OneRequest", "OneResponse", ""));

    let mut edge = File::new("corpus.deep.a.v1");
    edge.import("corpus/deep/a/b/c/v1/down.proto");
    edge.import("corpusone.proto");
    edge.message(Message::new("DeepRequest").field("int64", "id"));
    edge.message(
        Message::new("DeepResponse")
            .step(Step::call(
                "t",
                Call::new(&format!("{deep}.Things/GetThing")).set("id", "$.id"),
            ))
            .step(Step::call(
                "e",
                Call::new("corpusone.Echo/Say").set("s", "string(t.thing.id)"),
            ))
            .by(&format!("{deep}.Thing"), "thing", "t.thing")
            .by(&format!("repeated {deep}.Thing"), "things", "t.things")
            .by(&format!("{deep}.Level"), "level", "t.thing.level")
            .by("corpusone.EchoResponse", "echo", "e")
            .by("string", "s", "e.s"),
    );
    edge.service(Service::edge("DeepEdge").rpc("Run", "DeepRequest", "DeepResponse", ""));

    files(
        "shape_deep_package",
        vec![
            ("corpus/deep/a/b/c/v1/down.proto", down),
            ("corpusone.proto", one),
            ("corpus/deep/a/v1/edge.proto", edge),
        ],
    )
}

fn files(name: &str, files: Vec<(&str, File)>) -> Case {
    Case {
        name: name.to_owned(),
        unit: Unit::Files(
            files
                .into_iter()
                .map(|(path, file)| (path.to_owned(), file.render()))
                .collect(),
        ),
    }
}

/// A downstream `Get`, a built `Card` and an edge `Run` calling and building them, in
/// `package`, unprefixed.
fn minimal(file: &mut File, package: &str) {
    file.message(Message::new("Io").field("int64", "v"));
    file.message(Message::new("Card").by("int64", "v", "$.v"));
    file.message(
        Message::new("EdgeResponse")
            .step(Step::call(
                "d",
                Call::new(&format!("{package}.Down/Get")).set("v", "$.v"),
            ))
            .step(Step::build("card", Build::new("Card").arg("v", "d.v")))
            .by("int64", "v", "d.v")
            .by("Card", "card", "card"),
    );
    file.down("Get", "Io", "Io", "");
    file.edge("Run", "Io", "EdgeResponse", "");
}

/// `shape_empty_package`: a file without a package.
fn empty_package() -> Case {
    let mut file = File::new("");
    file.message(Message::new("NoPackageIo").field("int64", "v"));
    file.message(Message::new("NoPackageCard").by("int64", "v", "$.v"));
    file.message(
        Message::new("NoPackageResponse")
            .step(Step::call(
                "d",
                Call::new("NoPackageDown/Get").set("v", "$.v"),
            ))
            .step(Step::build(
                "card",
                Build::new("NoPackageCard").arg("v", "d.v"),
            ))
            .by("int64", "v", "d.v")
            .by("NoPackageCard", "card", "card"),
    );
    file.service(Service::downstream("NoPackageDown").rpc("Get", "NoPackageIo", "NoPackageIo", ""));
    file.service(Service::edge("NoPackageEdge").rpc("Run", "NoPackageIo", "NoPackageResponse", ""));
    files(
        "shape_empty_package",
        vec![("corpus_no_package.proto", file)],
    )
}

/// `keyword_package`: a package whose segments are Rust keywords.
fn keyword_package() -> Case {
    let package = "corpus.type.match.v1";
    let mut file = File::new(package);
    minimal(&mut file, package);
    files("keyword_package", vec![("corpus/type/match.proto", file)])
}

/// `shape_build_other_package`: a `message` step building a message of another package.
fn build_other_package() -> Case {
    let other = "corpus.build_other.lib.v1";
    let mut lib = File::new(other);
    lib.message(Message::new("Card").by("int64", "v", "$.v * 2"));
    let package = "corpus.build_other.edge.v1";
    let mut edge = File::new(package);
    edge.import("corpus/build_other/lib.proto");
    minimal(&mut edge, package);
    edge.message(
        Message::new("OtherResponse")
            .step(Step::build(
                "card",
                Build::new(&format!("{other}.Card")).arg("v", "$.v"),
            ))
            .by(&format!("{other}.Card"), "card", "card"),
    );
    edge.edge("Other", "Io", "OtherResponse", "");
    files(
        "shape_build_other_package",
        vec![
            ("corpus/build_other/lib.proto", lib),
            ("corpus/build_other/edge.proto", edge),
        ],
    )
}

/// An edge response building each of `names` (message names) with one `v` argument; the
/// built messages are the caller's.
fn builds(file: &mut File, c: &Ctx, names: &[&str]) {
    file.message(Message::new(&c.n("Io")).field("int64", "v"));
    let mut edge = Message::new(&c.n("EdgeResponse"));
    for (i, name) in names.iter().enumerate() {
        edge = edge
            .step(Step::build(
                &format!("b{i}"),
                Build::new(name).arg("v", "$.v"),
            ))
            .by(name, &format!("b{i}"), &format!("b{i}"));
    }
    file.message(edge);
    c.services(file, "Io", "Io", "Io");
}

/// `clash_nested_same_name`: two nested built messages with one simple name.
fn clash_nested_same_name() -> Case {
    fragment("shapes", "clash_nested_same_name", |file, c| {
        let (a, b) = (c.n("A"), c.n("B"));
        file.message(Message::new(&a).nested(Message::new("Card").by("int64", "v", "$.v")));
        file.message(Message::new(&b).nested(Message::new("Card").by("int64", "v", "$.v + 1")));
        builds(file, c, &[&format!("{a}.Card"), &format!("{b}.Card")]);
    })
}

/// `clash_nested_vs_top`: a nested built message named like a top-level built message.
fn clash_nested_vs_top() -> Case {
    single("clash_nested_vs_top", |file, c| {
        file.message(Message::new("Card").by("int64", "v", "$.v"));
        file.message(Message::new("A").nested(Message::new("Card").by("int64", "v", "$.v + 1")));
        builds(file, c, &["Card", "A.Card"]);
    })
}

/// `clash_nested_responses`: two edge methods returning nested messages with one simple name.
fn clash_nested_responses() -> Case {
    fragment("shapes", "clash_nested_responses", |file, c| {
        let (a, b) = (c.n("A"), c.n("B"));
        file.message(Message::new(&c.n("Io")).field("int64", "v"));
        file.message(Message::new(&a).nested(Message::new("Page").by("int64", "v", "$.v")));
        file.message(Message::new(&b).nested(Message::new("Page").by(
            "string",
            "s",
            "string($.v)",
        )));
        file.edge(&c.n("GetA"), &c.n("Io"), &format!("{a}.Page"), "");
        file.edge(&c.n("GetB"), &c.n("Io"), &format!("{b}.Page"), "");
    })
}

/// `clash_args_name`: a message `<P>CardArgs` beside a built message `<P>Card`.
fn clash_args_name() -> Case {
    fragment("shapes", "clash_args_name", |file, c| {
        file.message(Message::new(&c.n("Card")).by("int64", "v", "$.v"));
        file.message(Message::new(&c.n("CardArgs")).field("int64", "v"));
        builds(file, c, &[&c.n("Card")]);
    })
}

/// `clash_generated_names`: messages named like the generated code's own items and modules
/// (a message `Composition`, or `<Service>Composer` beside an edge service, is rejected by the
/// checker: it would clash with the `composition` module or the composer).
fn clash_generated_names() -> Case {
    single("clash_generated_names", |file, c| {
        file.message(
            Message::new("Compose")
                .field("Inner", "inner")
                .nested(Message::new("Inner").field("int64", "v")),
        );
        file.message(Message::new("Cel").nested(Message::new("Inner")));
        file.message(Message::new("ResolveCard").field("int64", "v"));
        file.message(Message::new("Card").by("int64", "v", "$.v"));
        builds(file, c, &["Card"]);
    })
}

/// `clash_rust_names`: messages named like Rust prelude and std items, used as field types,
/// built messages and step values.
fn clash_rust_names() -> Case {
    single("clash_rust_names", |file, c| {
        for name in [
            "String", "Vec", "Option", "Result", "Box", "Default", "Some", "Ok",
        ] {
            file.message(Message::new(name).field("int64", "v"));
        }
        file.message(Message::new("Arc").by("int64", "v", "$.v"));
        file.message(Message::new("Status").by("string", "s", "$.s"));
        file.message(Message::new("DownRequest").field("String", "s"));
        file.message(
            Message::new("DownResponse")
                .field("Vec", "vec")
                .field("Option", "option")
                .field("repeated Result", "results"),
        );
        file.message(
            Message::new("EdgeRequest")
                .field("int64", "v")
                .field("String", "s"),
        );
        file.message(
            Message::new("EdgeResponse")
                .step(Step::call("d", Call::new(&c.get()).set("s", "$.s")))
                .step(Step::build("arc", Build::new("Arc").arg("v", "$.v")))
                .step(Step::build("status", Build::new("Status").arg("s", "'x'")))
                .step(Step::map(
                    "boxes",
                    "r",
                    "d.results",
                    MapBody::By("r".into()),
                ))
                .by("Vec", "vec", "d.vec")
                .by("Option", "option", "d.option")
                .by("repeated Result", "results", "boxes")
                .by("Arc", "arc", "arc")
                .by("Status", "status", "status")
                .by("String", "s", "$.s"),
        );
        c.services(file, "DownRequest", "DownResponse", "EdgeRequest");
    })
}

/// Rust keywords (strict, reserved and weak), as field names.
const KEYWORDS: &[&str] = &[
    "type", "match", "fn", "async", "await", "dyn", "try", "gen", "self", "super", "crate", "loop",
    "ref", "move", "impl", "mod", "use", "where", "box", "yield", "abstract", "final", "static",
    "struct", "trait", "unsafe", "virtual", "macro", "let", "mut", "pub", "return", "extern",
    "const", "continue", "break", "else", "enum", "for", "if", "while", "as", "override", "priv",
    "typeof", "unsized", "become", "do",
];

/// `clash_field_keywords`: fields named with Rust keywords, read, set in requests, passed as
/// arguments, autobound, and a oneof and its members named with keywords.
fn clash_field_keywords() -> Case {
    fragment("shapes", "clash_field_keywords", |file, c| {
        let mut io = Message::new(&c.n("Io"));
        let mut built = Message::new(&c.n("Kw"));
        let mut auto = Message::new(&c.n("Auto")).step(Step::by("s", "$.src").autobind());
        let mut call = Call::new(&c.get());
        let mut build = Build::new(&c.n("Kw"));
        for kw in KEYWORDS {
            io = io.field("int64", kw);
            built = built.by("int64", kw, &format!("$.{kw}"));
            auto = auto.field("int64", kw);
            call = call.set(kw, &format!("$.{kw}"));
            build = build.arg(kw, &format!("$.{kw} + 1"));
        }
        io = io.oneof(
            "in",
            &[("string", "union", None), ("int64", "default", None)],
        );
        file.message(io);
        file.message(built);
        file.message(auto);
        file.message(
            Message::new(&c.n("EdgeResponse"))
                .step(Step::call("d", call))
                .step(Step::build("kw", build))
                .step(Step::build(
                    "auto",
                    Build::new(&c.n("Auto")).arg("src", "d"),
                ))
                .by(
                    "int64",
                    "type",
                    "d.type + d.match + d.self + d.super + d.crate",
                )
                .by("int64", "self", "d.fn * d.async - d.await")
                .by("string", "ref", "d.union")
                .by("bool", "match", "has(d.union) || has(d.default)")
                .by(&c.n("Kw"), "kw", "kw")
                .by(&c.n("Auto"), "auto", "auto"),
        );
        c.services(file, "Io", "Io", "Io");
    })
}

/// `clash_step_keywords`: step, iterator and argument names that are Rust keywords.
fn clash_step_keywords() -> Case {
    fragment("shapes", "clash_step_keywords", |file, c| {
        file.message(
            Message::new(&c.n("Io"))
                .field("int64", "v")
                .field("repeated int64", "vs"),
        );
        file.message(
            Message::new(&c.n("Card"))
                .step(Step::by("loop", "$.type + $.self"))
                .by("int64", "v", "loop + $.fn"),
        );
        let names = [
            "type", "match", "fn", "loop", "ref", "async", "await", "dyn", "try", "gen", "self",
            "super", "crate", "box",
        ];
        let mut edge = Message::new(&c.n("EdgeResponse"));
        for name in names {
            edge = edge.step(Step::by(name, "$.v"));
        }
        // Each name read once, by the call (a step with one reader is a plain future: the
        // corpus keeps spawned steps, which cost the most to compile, to the cases about them).
        let all = names.join(" + ");
        let card = c.n("Card");
        edge = edge
            .step(Step::call("mod", Call::new(&c.get()).set("v", &all)))
            .step(Step::map(
                "for",
                "type",
                "$.vs",
                MapBody::By("type + 1".into()),
            ))
            .step(Step::map(
                "if",
                "self",
                "$.vs",
                MapBody::Message(
                    Build::new(&card)
                        .arg("type", "self")
                        .arg("self", "$.v")
                        .arg("fn", "self"),
                ),
            ))
            .step(Step::build(
                "const",
                Build::new(&card)
                    .arg("type", "1")
                    .arg("self", "2")
                    .arg("fn", "3"),
            ))
            .by("int64", "v", "mod.v")
            .by("repeated int64", "vs", "for")
            .by(&format!("repeated {card}"), "cards", "if")
            .by(&card, "card", "const");
        file.message(edge);
        c.services(file, "Io", "Io", "Io");
    })
}

/// `clash_step_generated_names`: step, iterator and argument names that the generated code
/// also uses for its own values (`message`, `value`, `args`, `request`, `channel`, `key`,
/// `element`, `body`, `compose`, ...).
fn clash_step_generated_names() -> Case {
    fragment("shapes", "clash_step_generated_names", |file, c| {
        file.message(
            Message::new(&c.n("Io"))
                .field("int64", "v")
                .field("repeated int64", "vs")
                .field("repeated int32", "narrow")
                .field("map<string, int32>", "counts"),
        );
        let card = c.n("Card");
        file.message(
            Message::new(&card)
                .by("int64", "v", "$.value + $.args + $.message")
                .by("int64", "w", "$.element + $.key"),
        );
        // The names the generated code binds itself, and the roots of the paths it writes.
        let names = [
            "value", "args", "message", "request", "spec", "channel", "key", "element", "body",
            "compose",
        ];
        let mut edge = Message::new(&c.n("EdgeResponse"));
        for name in names {
            edge = edge.step(Step::by(name, "$.v"));
        }
        // Each name read once, by the call, but `args` and `message`, read by the message
        // step too.
        let all = names.join(" + ");
        let card_of = |v: &str| {
            Build::new(&card)
                .arg("value", v)
                .arg("args", "args")
                .arg("message", "message")
                .arg("element", v)
                .arg("key", "1")
        };
        edge = edge
            .step(Step::call(
                "d",
                Call::new(&c.get())
                    .set("v", &all)
                    .set("narrow", "[$.v, 1, 2]")
                    .set("counts", "$.counts"),
            ))
            .step(Step::map(
                "cards",
                "message",
                "$.vs",
                MapBody::Message(card_of("message")),
            ))
            .step(Step::map(
                "values",
                "value",
                "$.vs",
                MapBody::By("value + 1".into()),
            ))
            .step(Step::map(
                "keys",
                "key",
                "$.narrow",
                MapBody::By("key * 2".into()),
            ))
            .step(Step::map(
                "elements",
                "element",
                "$.narrow",
                MapBody::By("element".into()),
            ))
            .step(Step::build("card", card_of("$.v")))
            .by("int64", "v", "d.v")
            .by(&format!("repeated {card}"), "cards", "cards")
            .by("repeated int32", "values", "values")
            .by("repeated int32", "keys", "keys")
            .by("repeated int32", "elements", "elements")
            .by("map<string, int32>", "counts", "d.counts")
            .by(&card, "card", "card");
        file.message(edge);
        c.services(file, "Io", "Io", "Io");
    })
}

/// `clash_map_call_names`: `map` steps calling per element, with iterators named like a Rust
/// keyword and like the generated code's own values (`request`, `channel`, `spec`).
fn clash_map_call_names() -> Case {
    fragment("shapes", "clash_map_call_names", |file, c| {
        file.message(
            Message::new(&c.n("Io"))
                .field("int64", "v")
                .field("repeated int64", "vs"),
        );
        let mut edge = Message::new(&c.n("EdgeResponse"));
        for name in ["fn", "request", "channel", "spec"] {
            edge = edge
                .step(Step::map(
                    &format!("with_{name}"),
                    name,
                    "$.vs",
                    MapBody::Call(Call::new(&c.get()).set("v", name)),
                ))
                .by(
                    &format!("repeated {}", c.n("Io")),
                    &format!("with_{name}"),
                    &format!("with_{name}"),
                );
        }
        file.message(edge);
        c.services(file, "Io", "Io", "Io");
    })
}

/// `clash_step_resolver_name`: a step named like the resolver of a message built after it.
fn clash_step_resolver_name() -> Case {
    single("clash_step_resolver_name", |file, c| {
        file.message(Message::new("Io").field("int64", "v"));
        file.message(Message::new("Card").by("int64", "v", "$.v"));
        file.message(
            Message::new("EdgeResponse")
                .step(Step::by("resolve_card", "$.v"))
                .step(Step::build(
                    "card",
                    Build::new("Card").arg("v", "resolve_card"),
                ))
                .by("Card", "card", "card"),
        );
        c.services(file, "Io", "Io", "Io");
    })
}

/// `clash_field_case`: field names prost renames (camelCase, capitals, digits, a trailing
/// underscore).
fn clash_field_case() -> Case {
    fragment("shapes", "clash_field_case", |file, c| {
        let names = ["fooBar", "Baz", "URLValue", "x_", "with2Digits", "HTTPCode"];
        let mut io = Message::new(&c.n("Io"));
        let mut call = Call::new(&c.get());
        let mut edge = Message::new(&c.n("EdgeResponse"));
        let mut auto = Message::new(&c.n("Auto")).step(Step::by("s", "$.src").autobind());
        for n in names {
            io = io.field("int64", n);
            call = call.set(n, &format!("$.{n}"));
            auto = auto.field("int64", n);
            edge = edge.by("int64", n, &format!("d.{n} + $.{n}"));
        }
        edge = edge
            .step(Step::call("d", call))
            .step(Step::build(
                "auto",
                Build::new(&c.n("Auto"))
                    .arg("src", "d")
                    .arg("URLValue", "1"),
            ))
            .by(&c.n("Auto"), "auto", "auto");
        file.message(io);
        file.message(auto);
        file.message(edge);
        c.services(file, "Io", "Io", "Io");
    })
}

/// `clash_method_names`: services and methods whose Rust names are keywords or need case
/// conversion.
fn clash_method_names() -> Case {
    single("clash_method_names", |file, c| {
        file.message(Message::new("Io").field("int64", "v"));
        file.service(
            Service::downstream("Down2")
                .rpc("Match", "Io", "Io", "")
                .rpc("Type", "Io", "Io", "")
                .rpc("GetHTTPThing", "Io", "Io", "")
                .rpc("get_snake", "Io", "Io", ""),
        );
        file.service(Service::downstream("HTTPService").rpc("Self", "Io", "Io", ""));
        let m = |s: &str| format!("{}.{s}", c.package);
        // `Type` and `get_snake` are declared, not called: a call site is costly to compile.
        file.message(
            Message::new("EdgeResponse")
                .step(Step::call(
                    "a",
                    Call::new(&m("Down2/Match")).set("v", "$.v"),
                ))
                .step(Step::call(
                    "b",
                    Call::new(&m("Down2/GetHTTPThing")).set("v", "$.v"),
                ))
                .step(Step::call(
                    "c",
                    Call::new(&m("HTTPService/Self")).set("v", "$.v"),
                ))
                .by("int64", "v", "a.v + b.v + c.v"),
        );
        file.service(Service::edge("Type").rpc("Match", "Io", "EdgeResponse", ""));
        file.service(Service::edge("HTTPEdge").rpc("GetHTTPThing", "Io", "EdgeResponse", ""));
    })
}
