//! Deployment values: what compositions read as `$env`.
//!
//! An edge service declares its variables in its proto (`(mosaic.v1.service).env`), each with a
//! type and maybe a default. Its generated composer loads them once, when it is built at start,
//! through a [`Deployment`]: for each variable, the process environment variable it names
//! wins, then `gateway.toml`'s `[env]` table, then the declared default. Every variable that
//! has none of them, or a value that is not of its type, is a problem, and the composer is not
//! built: [`DeploymentError`] lists every problem at once, so one start names them all. The
//! values the service computes from them (`(mosaic.v1.service).def`) are computed then too,
//! once; a validation among them that fails is a problem as well.
//!
//! Values are read once: a reload of `gateway.toml` does not change them (restart to change
//! them), as they may shape every response the service gives.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tonic::Status;

use crate::grpc::context;
use crate::grpc::status::ComposeError;

/// Looks an environment variable up.
type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where deployment values come from: `gateway.toml`'s `[env]` table and the process
/// environment.
#[derive(Clone)]
pub struct Deployment {
    table: Arc<BTreeMap<String, toml::Value>>,
    environment: Lookup,
}

impl Deployment {
    /// Values from `table` (the `[env]` table) and the process environment.
    pub fn new(table: BTreeMap<String, toml::Value>) -> Self {
        Self {
            table: Arc::new(table),
            environment: Arc::new(|name| std::env::var(name).ok()),
        }
    }

    /// Values from `table` and from `environment` in place of the process environment (for
    /// tests, which cannot set the process environment safely while other threads run).
    pub fn with_environment(
        table: BTreeMap<String, toml::Value>,
        environment: BTreeMap<String, String>,
    ) -> Self {
        Self {
            table: Arc::new(table),
            environment: Arc::new(move |name| environment.get(name).cloned()),
        }
    }

    /// Starts reading the values of the edge service `service`.
    #[doc(hidden)]
    pub fn reader(&self, service: &'static str) -> Reader<'_> {
        Reader {
            deployment: self,
            service,
            problems: Vec::new(),
        }
    }

    /// The keys of the `[env]` table.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.table.keys().map(String::as_str)
    }
}

impl fmt::Debug for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deployment")
            .field("table", &self.table.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for Deployment {
    fn default() -> Self {
        Self::new(BTreeMap::new())
    }
}

/// Reads one service's variables, collecting every problem.
#[doc(hidden)]
pub struct Reader<'a> {
    deployment: &'a Deployment,
    service: &'static str,
    problems: Vec<String>,
}

impl Reader<'_> {
    /// The value of variable `name`: from the environment variable `variable`, else `[env]`,
    /// else `default` (text in the form an environment variable holds). A missing or malformed
    /// value is recorded and reads as the type's default.
    pub fn read<T: EnvValue>(&mut self, name: &str, variable: &str, default: Option<&str>) -> T {
        if let Some(text) = (self.deployment.environment)(variable) {
            return T::from_text(&text).unwrap_or_else(|problem| {
                self.problems.push(format!(
                    "environment variable `{variable}` (for `{name}`): {problem}"
                ));
                T::default()
            });
        }
        if let Some(value) = self.deployment.table.get(name) {
            return T::from_toml(value).unwrap_or_else(|problem| {
                self.problems.push(format!("`[env].{name}`: {problem}"));
                T::default()
            });
        }
        match default {
            Some(text) => T::from_text(text).unwrap_or_else(|problem| {
                self.problems
                    .push(format!("the default of `{name}`: {problem}"));
                T::default()
            }),
            None => {
                self.problems.push(format!(
                    "`{name}` ({}) is required: set the environment variable `{variable}`, or `{name}` in gateway.toml's `[env]`",
                    T::TYPE
                ));
                T::default()
            }
        }
    }

    /// Every problem found so far, as the error; `Ok` without any.
    pub fn finish(&mut self) -> Result<(), DeploymentError> {
        if self.problems.is_empty() {
            return Ok(());
        }
        Err(DeploymentError {
            service: self.service,
            problems: std::mem::take(&mut self.problems),
        })
    }

    /// The error for a value computed from the variables that failed (a validation that
    /// held, or an expression that failed).
    pub fn computed(&self, status: Status) -> DeploymentError {
        DeploymentError {
            service: self.service,
            problems: vec![status.message().to_owned()],
        }
    }
}

/// The deployment values of an edge service could not be loaded; every problem is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentError {
    service: &'static str,
    problems: Vec<String>,
}

impl DeploymentError {
    /// The edge service whose values are wrong.
    pub fn service(&self) -> &str {
        self.service
    }

    /// Each problem, in declaration order.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl fmt::Display for DeploymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the deployment values of `{}` are wrong", self.service)?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DeploymentError {}

/// A type a deployment variable may have: read from an environment variable's text (and a
/// declared default) or from a TOML value.
#[doc(hidden)]
pub trait EnvValue: Default + Sized {
    /// The proto spelling of the type, for messages.
    const TYPE: &'static str;
    /// The value an environment variable's text gives.
    fn from_text(text: &str) -> Result<Self, String>;
    /// The value a TOML value gives.
    fn from_toml(value: &toml::Value) -> Result<Self, String>;
}

fn not_a(value: &toml::Value, ty: &str) -> String {
    let found = value.type_str();
    let article = if found.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("is {article} {found}, not {ty}")
}

impl EnvValue for String {
    const TYPE: &'static str = "string";
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| not_a(value, "a string"))
    }
}

impl EnvValue for bool {
    const TYPE: &'static str = "bool";
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(format!("`{other}` is not a bool (write `true` or `false`)")),
        }
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        value.as_bool().ok_or_else(|| not_a(value, "a bool"))
    }
}

impl EnvValue for i64 {
    const TYPE: &'static str = "int64";
    fn from_text(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("`{}` is not an int64", text.trim()))
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        value.as_integer().ok_or_else(|| not_a(value, "an int64"))
    }
}

impl EnvValue for u64 {
    const TYPE: &'static str = "uint64";
    fn from_text(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("`{}` is not a uint64", text.trim()))
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        let integer = value.as_integer().ok_or_else(|| not_a(value, "a uint64"))?;
        u64::try_from(integer).map_err(|_| format!("{integer} is negative, not a uint64"))
    }
}

impl EnvValue for f64 {
    const TYPE: &'static str = "double";
    fn from_text(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("`{}` is not a double", text.trim()))
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::Float(f) => Ok(*f),
            toml::Value::Integer(i) => Ok(*i as f64),
            other => Err(not_a(other, "a double")),
        }
    }
}

/// A list: comma-separated in an environment variable (each item trimmed; empty text is the
/// empty list), an array in TOML.
impl<T: EnvValue> EnvValue for Vec<T> {
    const TYPE: &'static str = "a list";
    fn from_text(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        text.split(',')
            .enumerate()
            .map(|(i, item)| T::from_text(item.trim()).map_err(|p| format!("item {i}: {p}")))
            .collect()
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        let items = value.as_array().ok_or_else(|| not_a(value, "an array"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| T::from_toml(item).map_err(|p| format!("item {i} {p}")))
            .collect()
    }
}

/// Runs a handler body with its service's deployment values, for the expressions reading
/// `$env`; steps spawned from it carry them along.
#[doc(hidden)]
pub fn with_deployment<T: Any + Send + Sync, F: Future>(
    values: Arc<T>,
    body: F,
) -> impl Future<Output = F::Output> {
    context::with_deployment(Some(values), body)
}

/// The deployment values of the edge service `service` serving this call.
#[doc(hidden)]
pub fn deployment<T: Any + Send + Sync>(service: &'static str) -> Result<Arc<T>, Status> {
    context::deployment::<T>().ok_or_else(|| ComposeError::NoDeployment { service }.to_status())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> BTreeMap<String, toml::Value> {
        toml::from_str(text).expect("TOML")
    }

    #[test]
    fn the_environment_wins_then_the_table_then_the_default() {
        let deployment = Deployment::with_environment(
            table("brand = \"file\"\nlimit = 7"),
            BTreeMap::from([("BRAND".to_owned(), "env".to_owned())]),
        );
        let mut reader = deployment.reader("demo.Shop");
        let brand: String = reader.read("brand", "BRAND", Some("default"));
        let limit: i64 = reader.read("limit", "LIMIT", Some("3"));
        let ratio: f64 = reader.read("ratio", "RATIO", Some("0.5"));
        assert_eq!(reader.finish(), Ok(()));
        assert_eq!((brand.as_str(), limit, ratio), ("env", 7, 0.5));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let deployment = Deployment::with_environment(
            table("limit = \"seven\"\ntags = [\"a\", 3]"),
            BTreeMap::from([("ON".to_owned(), "yes".to_owned())]),
        );
        let mut reader = deployment.reader("demo.Shop");
        let _: i64 = reader.read("limit", "LIMIT", None);
        let _: Vec<String> = reader.read("tags", "TAGS", None);
        let _: bool = reader.read("on", "ON", None);
        let _: u64 = reader.read("region", "REGION", None);
        let error = reader.finish().expect_err("four problems");
        assert_eq!(error.service(), "demo.Shop");
        assert_eq!(
            error.problems(),
            [
                "`[env].limit`: is a string, not an int64",
                "`[env].tags`: item 1 is an integer, not a string",
                "environment variable `ON` (for `on`): `yes` is not a bool (write `true` or `false`)",
                "`region` (uint64) is required: set the environment variable `REGION`, or `region` in gateway.toml's `[env]`",
            ]
        );
        let shown = error.to_string();
        assert!(
            shown.starts_with("the deployment values of `demo.Shop` are wrong\n  - `[env].limit`"),
            "{shown}"
        );
    }

    #[test]
    fn lists_from_text_are_comma_separated() {
        assert_eq!(Vec::<i64>::from_text(" 1, 2 ,3"), Ok(vec![1, 2, 3]));
        assert_eq!(Vec::<String>::from_text(""), Ok(Vec::new()));
        assert_eq!(
            Vec::<i64>::from_text("1,x"),
            Err("item 1: `x` is not an int64".to_owned())
        );
        assert_eq!(
            u64::from_toml(&toml::Value::Integer(-1)),
            Err("-1 is negative, not a uint64".to_owned())
        );
    }

    #[tokio::test]
    async fn a_call_reads_the_values_of_its_service_and_spawned_steps_too() {
        let values = Arc::new(String::from("values"));
        let (here, spawned) = with_deployment(values, async {
            let here = deployment::<String>("demo.Shop").map(|v| (*v).clone());
            let spawned = super::super::step(async {
                deployment::<String>("demo.Shop").map(|v| (*v).clone())
            })
            .await;
            (here, spawned.map(|v| (*v).clone()))
        })
        .await;
        assert_eq!(here.ok().as_deref(), Some("values"));
        assert_eq!(spawned.ok().as_deref(), Some("values"));
        let missing = deployment::<String>("demo.Shop").expect_err("no values outside a call");
        assert_eq!(missing.code(), tonic::Code::Internal);
        assert!(
            missing.message().contains("`demo.Shop`"),
            "{}",
            missing.message()
        );
    }
}
