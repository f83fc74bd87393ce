//! The OpenAPI 3.1 documents: the admin listener's `/openapi.json` for everything the gateway
//! routes over HTTP, and `mosaic-codegen openapi` for protos, checked against what the
//! gateway really answers and (in `.ci/run`, which installs it) by a real OpenAPI 3.1
//! validator, the `openapi-spec-validator` PyPI package.

use mosaic_tests::curl::curl;
use mosaic_tests::{Stack, scrape, scratch_file};
use serde_json::{Value, json};

async fn gateway_document(stack: &Stack) -> Value {
    let (status, content_type, body) = scrape::get(stack.admin_addr(), "/openapi.json")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json");
    serde_json::from_str(&body).unwrap()
}

/// Follows `$ref` (and a one-element `allOf`) to the schema it names.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    let schema = match schema.get("allOf").and_then(Value::as_array) {
        Some(all) if all.len() == 1 => &all[0],
        _ => schema,
    };
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            &document["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Checks that `value` has the JSON type `schema` says, recursively through objects.
fn conforms(document: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(document, schema);
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => return,
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let accepted = types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
    assert!(accepted, "{at}: {value} is not {types:?}");
    if let (Value::Object(fields), Some(properties)) = (value, schema["properties"].as_object()) {
        for (name, field) in fields {
            let property = properties
                .get(name)
                .unwrap_or_else(|| panic!("{at}.{name}: no such property in the document"));
            conforms(document, property, field, &format!("{at}.{name}"));
        }
    }
    if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
        for (i, element) in items.iter().enumerate() {
            conforms(document, item, element, &format!("{at}[{i}]"));
        }
    }
    if let (Value::Object(entries), Some(item)) = (value, schema.get("additionalProperties"))
        && item.is_object()
    {
        for (key, element) in entries {
            conforms(document, item, element, &format!("{at}[{key}]"));
        }
    }
}

#[tokio::test]
async fn the_gateway_describes_every_route_as_it_answers() {
    let stack = Stack::start().await.unwrap();
    let document = gateway_document(&stack).await;
    assert_eq!(document["openapi"], json!("3.1.0"));
    let paths = document["paths"].as_object().unwrap();
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        operations, 16,
        "one operation per binding of the demo protos"
    );
    let page = &paths["/v1/products/{product_id}/page"]["get"];
    assert_eq!(
        page["operationId"],
        json!("demo.storefront.v1.Storefront.GetProductPage")
    );
    assert!(
        page["description"]
            .as_str()
            .unwrap()
            .contains("rating summary")
    );
    assert_eq!(
        page["parameters"],
        json!([
            {"name": "product_id", "in": "path", "required": true, "schema": {"type": "string", "format": "int64"}},
            {"name": "reviewLimit", "in": "query", "description": "How many reviews to show.", "schema": {"type": "integer", "format": "int32"}},
        ])
    );
    assert_eq!(
        document["components"]["schemas"]["google.rpc.Status"]["properties"]["code"],
        json!({"type": "integer", "format": "int32"})
    );

    // What the gateway answers fits what the document says, name for name and type for type.
    for (path, route) in [
        ("/v1/products/7", "/v1/products/{id}"),
        (
            "/v1/products/7/page?reviewLimit=3",
            "/v1/products/{product_id}/page",
        ),
        ("/v1/users/9/profile", "/v1/users/{user_id}/profile"),
        ("/v1/products?pageSize=3", "/v1/products"),
    ] {
        let answer = curl(&[&format!("http://{}{path}", stack.gateway_addr())]).await;
        assert_eq!(answer.status, 200, "{path}");
        let schema =
            &paths[route]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        conforms(&document, schema, &answer.json(), path);
    }
    let error = curl(&[&format!(
        "http://{}/v1/products/999999",
        stack.gateway_addr()
    )])
    .await;
    let status_schema = json!({"$ref": "#/components/schemas/google.rpc.Status"});
    conforms(&document, &status_schema, &error.json(), "error");
}

/// Runs the validator on `document`; `Err` is its report.
fn validate(document: &Value, name: &str) -> Result<(), String> {
    let file = scratch_file(name);
    std::fs::write(&file, serde_json::to_vec_pretty(document).unwrap()).unwrap();
    let output = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("python3 runs");
    std::fs::remove_file(&file).ok();
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Needs `pip install openapi-spec-validator`; `.ci/run` installs it and runs this.
#[tokio::test]
#[ignore = "needs the openapi-spec-validator PyPI package (installed by .ci/run)"]
async fn both_documents_pass_an_openapi_3_1_validator() {
    let stack = Stack::start_with(|config| {
        config
            + "\n[[http.rules]]\nselector = \"grpc.health.v1.Health.Check\"\nget = \"/v1/health\"\n"
    })
    .await
    .unwrap();
    validate(&gateway_document(&stack).await, "gateway-openapi.json").unwrap();

    let protos = [
        "demo/storefront/v1/storefront.proto",
        "demo/catalog/v1/catalog.proto",
        "demo/users/v1/users.proto",
        "demo/reviews/v1/reviews.proto",
        "demo/inventory/v1/inventory.proto",
    ];
    let options = mosaic_http_rule::openapi::Options {
        title: "demo".into(),
        version: "1".into(),
        proto_field_names: false,
    };
    let document = mosaic_codegen::configure()
        .openapi(&protos, &["../proto"], &options)
        .unwrap();
    validate(&document, "codegen-openapi.json").unwrap();

    // The validator is not a rubber stamp: a document with a mistake in it fails.
    let mut broken = document.clone();
    broken["paths"]["/v1/products/{id}"]["get"]["responses"]["200"]["content"]["application/json"]
        ["description"] = json!("not allowed here");
    assert!(validate(&broken, "broken-openapi.json").is_err());
}
