//! Access rules declared in edge protos: `(mosaic.v1.service).access` and
//! `(mosaic.v1.method).access` (see `proto/mosaic/v1/options.proto`; `mosaic-codegen` checks
//! them when it generates the handlers), read from the descriptor sets the gateway serves.

use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage, Value};

use super::{Policy, Scheme};

/// The policy of every served service and method whose proto declares one, by
/// `pkg.Service` or `pkg.Service/Method`.
pub(super) fn policies(
    pool: &DescriptorPool,
    served: impl Fn(&str) -> bool,
) -> Vec<(String, Policy)> {
    let (Some(service_ext), Some(method_ext)) = (
        pool.get_extension_by_name("mosaic.v1.service"),
        pool.get_extension_by_name("mosaic.v1.method"),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for service in pool.services() {
        let options = service.options();
        if !options.has_extension(&service_ext) || !served(service.full_name()) {
            continue;
        }
        if let Some(policy) = access_of(&options.get_extension(&service_ext)) {
            out.push((service.full_name().to_owned(), policy));
        }
        for method in service.methods() {
            let options = method.options();
            if !options.has_extension(&method_ext) {
                continue;
            }
            if let Some(policy) = access_of(&options.get_extension(&method_ext)) {
                out.push((format!("{}/{}", service.full_name(), method.name()), policy));
            }
        }
    }
    out
}

fn access_of(rule: &Value) -> Option<Policy> {
    let rule = rule.as_message()?;
    let field = rule.descriptor().get_field_by_name("access")?;
    if !rule.has_field(&field) {
        return None;
    }
    let access = rule.get_field(&field).as_message()?.clone();
    Some(Policy {
        public: access
            .get_field_by_name("public")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        // Checked by mosaic-codegen; a name it would refuse is skipped here.
        schemes: strings(&access, "schemes")
            .iter()
            .filter_map(|name| Scheme::by_name(name))
            .collect(),
        scopes: strings(&access, "scopes"),
        claims: access
            .get_field_by_name("claims")
            .and_then(|value| {
                value.as_list().map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_message)
                        .map(|claim| {
                            let name = claim
                                .get_field_by_name("name")
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default();
                            (name, strings(claim, "values"))
                        })
                        .collect()
                })
            })
            .unwrap_or_default(),
        plans: strings(&access, "plans"),
        consumers: strings(&access, "consumers"),
    })
}

fn strings(message: &DynamicMessage, name: &str) -> Vec<String> {
    message
        .get_field_by_name(name)
        .and_then(|value| {
            value.as_list().map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}
