//! What an edge call hands to the work done on its behalf beyond its request: the metadata
//! `[auth] forward_claims` names, which generated handlers never see as request headers of
//! their own downstream calls, and the caller's identity, which composition expressions read
//! as `caller`. The router sets it around a hosted handler; the balancer adds the forwarded
//! metadata to each attempt (headers the attempt already has are left as they are), generated
//! code reads the identity, and steps spawned on other tasks carry it along with the rest of
//! the call's context.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};

use http::HeaderMap;
use tonic::metadata::MetadataMap;

/// One edge call's context.
#[derive(Debug, Default)]
pub(crate) struct CallContext {
    /// Headers every downstream call of the edge call carries.
    pub(crate) forwarded: Option<HeaderMap>,
    /// The caller's identity as text: `consumer`, `plan`, `scheme`, and its token's claims.
    pub(crate) caller: Arc<BTreeMap<String, String>>,
    /// The steps of a composed call whose failure an `error` handler ignored, in the order
    /// they failed: the response is partial.
    pub(crate) ignored: Mutex<Vec<&'static str>>,
    /// The downstream calls of a composed call that equal ones may share.
    pub(crate) shared: super::shared::SharedCalls,
}

tokio::task_local! {
    static CONTEXT: Arc<CallContext>;
    /// The edge request's headers that a composition forwards to its downstream calls: only
    /// those its rules name, picked when the generated handler starts.
    static INCOMING: Arc<MetadataMap>;
    /// The deployment values (`$env`) of the edge service serving the call, as its composer
    /// loaded them at start.
    static DEPLOYMENT: Option<Arc<dyn Any + Send + Sync>>;
}

/// Runs `future` within `context`.
pub(crate) async fn scope<F: Future>(context: Option<Arc<CallContext>>, future: F) -> F::Output {
    match context {
        Some(context) => CONTEXT.scope(context, future).await,
        None => future.await,
    }
}

/// Runs `future` with `incoming` as the edge request's forwardable headers.
pub(crate) async fn with_incoming<F: Future>(
    incoming: Option<Arc<MetadataMap>>,
    future: F,
) -> F::Output {
    match incoming {
        Some(incoming) => INCOMING.scope(incoming, future).await,
        None => future.await,
    }
}

/// `future` with `values` as the serving edge service's deployment values. Not an `async fn`:
/// the handler's future is moved once, into the scope, and not again into a wrapper.
pub(crate) fn with_deployment<F: Future>(
    values: Option<Arc<dyn Any + Send + Sync>>,
    future: F,
) -> impl Future<Output = F::Output> {
    DEPLOYMENT.scope(values, future)
}

/// The serving edge service's deployment values, when they are of type `T`.
pub(crate) fn deployment<T: Any + Send + Sync>() -> Option<Arc<T>> {
    DEPLOYMENT
        .try_with(|values| values.clone().and_then(|v| v.downcast::<T>().ok()))
        .ok()
        .flatten()
}

/// `future`, carrying the current context along when it is spawned elsewhere.
pub(crate) fn propagate<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let incoming = INCOMING.try_with(Arc::clone).ok();
    let values = DEPLOYMENT.try_with(Clone::clone).ok().flatten();
    scope(
        CONTEXT.try_with(Arc::clone).ok(),
        with_incoming(incoming, with_deployment(values, future)),
    )
}

/// Calls `f` with the edge request's forwardable headers, if the handler picked any.
pub(crate) fn incoming<T>(f: impl FnOnce(&MetadataMap) -> T) -> Option<T> {
    INCOMING.try_with(|incoming| f(incoming)).ok()
}

/// The current context, if any.
pub(crate) fn current() -> Option<Arc<CallContext>> {
    CONTEXT.try_with(Arc::clone).ok()
}

/// Records that `step` failed and was ignored.
pub(crate) fn ignore(step: &'static str) {
    let _ = CONTEXT.try_with(|context| {
        if let Ok(mut ignored) = context.ignored.lock()
            && !ignored.contains(&step)
        {
            ignored.push(step);
        }
    });
}

/// Whether a step of the current call was ignored.
pub(crate) fn partial() -> bool {
    CONTEXT
        .try_with(|context| {
            context
                .ignored
                .lock()
                .is_ok_and(|ignored| !ignored.is_empty())
        })
        .unwrap_or(false)
}

/// Adds the forwarded headers `headers` does not have yet.
pub(crate) fn apply(headers: &mut HeaderMap) {
    let _ = CONTEXT.try_with(|context| {
        for (name, value) in context.forwarded.iter().flatten() {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
    });
}

/// The caller's identity, empty outside an admitted call.
pub(crate) fn caller() -> Arc<BTreeMap<String, String>> {
    static NOBODY: LazyLock<Arc<BTreeMap<String, String>>> = LazyLock::new(Arc::default);
    CONTEXT
        .try_with(|context| Arc::clone(&context.caller))
        .unwrap_or_else(|_| Arc::clone(&NOBODY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_context_reaches_spawned_work_and_never_overwrites() {
        let mut forwarded = HeaderMap::new();
        forwarded.insert("x-user-id", "alice".parse().unwrap());
        forwarded.insert("x-tenant", "acme".parse().unwrap());
        let context = CallContext {
            forwarded: Some(forwarded),
            caller: Arc::new(BTreeMap::from([("sub".to_owned(), "alice".to_owned())])),
            ..CallContext::default()
        };
        let (seen, caller) = scope(Some(Arc::new(context)), async {
            tokio::spawn(propagate(async {
                let mut headers = HeaderMap::new();
                headers.insert("x-tenant", "already".parse().unwrap());
                apply(&mut headers);
                (headers, caller())
            }))
            .await
            .unwrap()
        })
        .await;
        assert_eq!(seen["x-user-id"], "alice");
        assert_eq!(seen["x-tenant"], "already");
        assert_eq!(caller["sub"], "alice");
        let mut outside = HeaderMap::new();
        apply(&mut outside);
        assert!(outside.is_empty());
        assert!(caller_outside().is_empty());
    }

    fn caller_outside() -> Arc<BTreeMap<String, String>> {
        caller()
    }
}
