//! The transcoder against `tests/fixtures/transcode.proto`: every field kind from a query, a
//! body field, raw `HttpBody` both ways, `Any` in a response, and random query strings and
//! JSON bodies fed to the decoder (no panic; every refusal a 4xx with a message).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use prost::Message as _;
use prost_reflect::{DynamicMessage, ReflectMessage, Value};
use rand::{Rng, SeedableRng};

use super::request::{self, Parts};
use super::response::{self, Framing};
use super::route::HttpRoute;
use super::{HttpConfig, HttpRoutes, Shared, edge_pool};

const SERVICE: &str = "transcode.test.v1.Kinds";

fn routes() -> HttpRoutes {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut compiler =
        protox::Compiler::new([fixtures, concat!(env!("CARGO_MANIFEST_DIR"), "/../proto")])
            .unwrap();
    compiler.include_imports(true);
    compiler.open_file("transcode.proto").unwrap();
    let encoded = compiler.encode_file_descriptor_set();
    let pool = edge_pool([("fixture", encoded.as_slice())]).unwrap();
    HttpRoutes::build(&pool, |service| service == SERVICE, &HttpConfig::default()).unwrap()
}

fn find(routes: &HttpRoutes, method: &str, path: &str) -> (Arc<HttpRoute>, Vec<String>) {
    routes
        .find(method, path)
        .unwrap_or_else(|| panic!("no route for {method} {path}"))
}

fn decode(
    routes: &HttpRoutes,
    method: &str,
    target: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, request::Rejection> {
    let (path, query) = target
        .split_once('?')
        .map_or((target, None), |(p, q)| (p, Some(q)));
    let (route, captures) = find(routes, method, path);
    let parts = Parts {
        captures,
        query,
        content_type,
        body: Bytes::copy_from_slice(body),
    };
    request::messages(&route, parts, &HttpConfig::default()).map(|mut all| all.remove(0))
}

fn field(message: &DynamicMessage, path: &str) -> Value {
    let mut current = message.clone();
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let value = current.get_field_by_name(part).unwrap().into_owned();
        if i + 1 == parts.len() {
            return value;
        }
        current = value.as_message().unwrap().clone();
    }
    unreachable!()
}

#[test]
fn every_field_kind_from_the_path_and_query() {
    let routes = routes();
    let query = "small=-3&big=18446744073709551615&ratio=1.5&fraction=0.25&flag=true&blob=aGk\
                 &color=COLOR_RED&tags=a&tags=b%20c&colors=2&colors=COLOR_RED&nested.label=L\
                 &nested.child.count=7&at=2024-05-01T10:00:00Z&wait=1.5s&maybe=9&note=n\
                 &left=z&signed=-4&fixed=12";
    let message = decode(
        &routes,
        "GET",
        &format!("/v1/echo/5/things/x?{query}"),
        None,
        b"",
    )
    .unwrap();
    assert_eq!(field(&message, "id"), Value::I64(5));
    assert_eq!(field(&message, "name"), Value::String("things/x".into()));
    assert_eq!(field(&message, "small"), Value::I32(-3));
    assert_eq!(field(&message, "big"), Value::U64(u64::MAX));
    assert_eq!(field(&message, "ratio"), Value::F64(1.5));
    assert_eq!(field(&message, "fraction"), Value::F32(0.25));
    assert_eq!(field(&message, "flag"), Value::Bool(true));
    assert_eq!(
        field(&message, "blob"),
        Value::Bytes(Bytes::from_static(b"hi"))
    );
    assert_eq!(field(&message, "color"), Value::EnumNumber(1));
    assert_eq!(
        field(&message, "tags"),
        Value::List(vec![Value::String("a".into()), Value::String("b c".into())])
    );
    assert_eq!(
        field(&message, "colors"),
        Value::List(vec![Value::EnumNumber(2), Value::EnumNumber(1)])
    );
    assert_eq!(field(&message, "nested.label"), Value::String("L".into()));
    assert_eq!(field(&message, "nested.child.count"), Value::I32(7));
    assert_eq!(field(&message, "at.seconds"), Value::I64(1_714_557_600));
    assert_eq!(field(&message, "wait.seconds"), Value::I64(1));
    assert_eq!(field(&message, "wait.nanos"), Value::I32(500_000_000));
    assert_eq!(field(&message, "maybe.value"), Value::I64(9));
    assert_eq!(field(&message, "note"), Value::String("n".into()));
    assert_eq!(field(&message, "left"), Value::String("z".into()));
    assert_eq!(field(&message, "signed"), Value::I32(-4));
    assert_eq!(field(&message, "fixed"), Value::U64(12));
}

#[test]
fn query_mistakes_are_400s_that_name_the_parameter() {
    let routes = routes();
    for (query, says) in [
        ("left=a&right=1", "oneof `choice`"),
        ("counts=1", "is a map"),
        ("id=7", "already gives"),
        ("bogus=1", "`bogus` names no field"),
        ("nested=1", "set its fields one by one"),
        ("small=99999999999", "32-bit integer"),
        ("color=PURPLE", "COLOR_RED"),
        ("at=yesterday", "Timestamp"),
        ("flag=yes", "`true` or `false`"),
        ("blob=***", "base64"),
        ("small=1&small=2", "given twice"),
        ("tags.x=1", "not a singular message"),
        ("small=%zz", "percent"),
    ] {
        let error = decode(
            &routes,
            "GET",
            &format!("/v1/echo/5/things/x?{query}"),
            None,
            b"",
        )
        .unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            error.message.contains(says),
            "{query}: `{}` lacks `{says}`",
            error.message
        );
    }
    let error = decode(&routes, "GET", "/v1/echo/x/things/y", None, b"").unwrap_err();
    assert!(
        error
            .message
            .contains("`id` must be a 64-bit integer, not `x`"),
        "{}",
        error.message
    );
}

#[test]
fn a_body_field_and_the_path_make_the_message() {
    let routes = routes();
    let message = decode(
        &routes,
        "PUT",
        "/v1/echo/9?small=2",
        Some("application/json"),
        br#"{"label": "boxed", "child": {"count": 3}}"#,
    )
    .unwrap();
    assert_eq!(field(&message, "id"), Value::I64(9));
    assert_eq!(field(&message, "small"), Value::I32(2));
    assert_eq!(
        field(&message, "nested.label"),
        Value::String("boxed".into())
    );
    assert_eq!(field(&message, "nested.child.count"), Value::I32(3));
    // The whole message from the body, unknown fields refused, proto names accepted.
    let message = decode(
        &routes,
        "POST",
        "/v1/echo",
        Some("application/json"),
        br#"{"id": "4", "nested_field": 1}"#,
    );
    assert!(message.unwrap_err().message.contains("nested_field"));
    let message = decode(
        &routes,
        "POST",
        "/v1/echo",
        Some("application/json"),
        br#"{"id": "4", "fixed": "7"}"#,
    )
    .unwrap();
    assert_eq!(field(&message, "fixed"), Value::U64(7));
}

#[test]
fn http_body_requests_are_taken_raw() {
    let routes = routes();
    let png = [0x89, b'P', b'N', b'G', 0, 1, 2];
    let message = decode(&routes, "POST", "/v1/upload", Some("image/png"), &png).unwrap();
    assert_eq!(message.descriptor().full_name(), "google.api.HttpBody");
    assert_eq!(
        field(&message, "content_type"),
        Value::String("image/png".into())
    );
    assert_eq!(
        field(&message, "data"),
        Value::Bytes(Bytes::copy_from_slice(&png))
    );
}

fn shared(routes: &HttpRoutes) -> Arc<Shared> {
    routes.shared()
}

/// A gRPC response body made of fixed frames.
type Frames = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, tonic::Status>>>>;

/// A unary gRPC answer carrying `message`.
fn answer(message: Vec<u8>) -> Response<Frames> {
    let mut framed = vec![0];
    framed.extend((message.len() as u32).to_be_bytes());
    framed.extend(message);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    trailers.insert("x-cost", HeaderValue::from_static("3"));
    let frames = vec![
        Ok(Frame::data(Bytes::from(framed))),
        Ok(Frame::trailers(trailers)),
    ];
    Response::new(StreamBody::new(stream::iter(frames)))
}

#[tokio::test]
async fn http_body_responses_are_sent_raw_with_their_type() {
    let routes = routes();
    let (route, _) = find(&routes, "GET", "/v1/download/3");
    let descriptor = route.method.output();
    let mut body = DynamicMessage::new(descriptor);
    body.set_field_by_name("content_type", Value::String("text/csv".into()));
    body.set_field_by_name("data", Value::Bytes(Bytes::from_static(b"a,b\n1,2\n")));
    let response = response::respond(
        route,
        shared(&routes),
        Framing::Ndjson,
        answer(body.encode_to_vec()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/csv");
    assert_eq!(
        response.headers()["x-cost"],
        "3",
        "a unary call's trailers come back as headers"
    );
    let data = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(data.as_ref(), b"a,b\n1,2\n");
}

#[tokio::test]
async fn any_is_resolved_through_the_pool() {
    let routes = routes();
    let (route, _) = find(&routes, "GET", "/v1/wrapped");
    let pool = route.method.parent_pool().clone();
    let mut receipt = DynamicMessage::new(
        pool.get_message_by_name("transcode.test.v1.Receipt")
            .unwrap(),
    );
    receipt.set_field_by_name("size", Value::I64(3));
    let any = prost_types::Any {
        type_url: "type.googleapis.com/transcode.test.v1.Receipt".into(),
        value: receipt.encode_to_vec(),
    };
    // `Wrapper { payload: any }`: field 1, length-delimited.
    let any = any.encode_to_vec();
    let mut wrapper = vec![0x0a, any.len() as u8];
    wrapper.extend(any);
    let response =
        response::respond(route, shared(&routes), Framing::Ndjson, answer(wrapper)).await;
    let data = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"payload": {"@type": "type.googleapis.com/transcode.test.v1.Receipt", "size": "3"}})
    );
}

/// Random JSON: nested objects and arrays of every kind of value, known names mixed in.
fn random_json(rng: &mut rand::rngs::StdRng, depth: usize) -> serde_json::Value {
    const NAMES: &[&str] = &[
        "id", "name", "small", "big", "ratio", "flag", "blob", "color", "tags", "nested", "counts",
        "at", "wait", "maybe", "left", "right", "label", "child", "x", "@type", "",
    ];
    match rng.random_range(0..if depth > 3 { 6 } else { 8 }) {
        0 => serde_json::Value::Null,
        1 => serde_json::json!(rng.random_bool(0.5)),
        2 => serde_json::json!(rng.random_range(-1e20..1e20)),
        3 => serde_json::json!(rng.random_range(i64::MIN..i64::MAX)),
        4 => serde_json::json!(
            [
                "",
                "1",
                "-1",
                "1.5",
                "NaN",
                "COLOR_RED",
                "2024-01-01T00:00:00Z",
                "1s",
                "aGk=",
                "\u{0}",
                "é"
            ][rng.random_range(0..11)]
        ),
        5 => serde_json::json!(rng.random_range(0..3)),
        6 => serde_json::Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => serde_json::Value::Object(
            (0..rng.random_range(0..5))
                .map(|_| {
                    (
                        NAMES[rng.random_range(0..NAMES.len())].to_owned(),
                        random_json(rng, depth + 1),
                    )
                })
                .collect(),
        ),
    }
}

#[test]
fn random_queries_and_bodies_never_panic_and_refuse_with_4xx() {
    let routes = routes();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7472_616e);
    let names = [
        "id",
        "small",
        "big",
        "ratio",
        "fraction",
        "flag",
        "blob",
        "color",
        "tags",
        "colors",
        "nested.label",
        "nested.child.count",
        "nested.child.child.label",
        "at",
        "wait",
        "maybe",
        "note",
        "left",
        "right",
        "signed",
        "fixed",
        "counts",
        "nested",
        "x.y",
        "",
        "%",
        "a+b",
        "tags.x",
    ];
    let values = [
        "",
        "0",
        "-1",
        "1.5",
        "1e400",
        "NaN",
        "true",
        "COLOR_BLUE",
        "7",
        "%zz",
        "%C3",
        "2024-05-01T10:00:00Z",
        "1.5s",
        "aGk",
        "+",
        "=",
        "&",
        "18446744073709551616",
    ];
    let (mut taken, mut refused) = (0, 0);
    for _ in 0..5_000 {
        let query: Vec<String> = (0..rng.random_range(0..6))
            .map(|_| {
                format!(
                    "{}={}",
                    names[rng.random_range(0..names.len())],
                    values[rng.random_range(0..values.len())]
                )
            })
            .collect();
        let target = format!(
            "/v1/echo/{}/things/x?{}",
            rng.random_range(-5..5),
            query.join("&")
        );
        let outcome = decode(&routes, "GET", &target, None, b"");
        let body = serde_json::to_vec(&random_json(&mut rng, 0)).unwrap();
        let posted = decode(&routes, "POST", "/v1/echo", Some("application/json"), &body);
        let put = decode(
            &routes,
            "PUT",
            "/v1/echo/1",
            Some("application/json"),
            &body,
        );
        for result in [outcome, posted, put] {
            match result {
                Ok(_) => taken += 1,
                Err(rejection) => {
                    assert!(
                        rejection.status.is_client_error(),
                        "{target}: {rejection:?}"
                    );
                    assert!(!rejection.message.is_empty());
                    refused += 1;
                }
            }
        }
    }
    assert!(
        taken > 500 && refused > 500,
        "taken {taken}, refused {refused}"
    );
}
