//! Metadata an edge call forwards to every downstream call made on its behalf: the claims
//! `[auth] forward_claims` names, which generated handlers never see as request headers of
//! their own downstream calls. The router sets it around a hosted handler; the balancer adds
//! it to each attempt (headers the attempt already has are left as they are), and steps
//! spawned on other tasks carry it along with the rest of the call's context.

use std::future::Future;
use std::sync::Arc;

use http::HeaderMap;

tokio::task_local! {
    static FORWARDED: Arc<HeaderMap>;
}

/// Runs `future` with `headers` forwarded on its downstream calls.
pub(crate) async fn scope<F: Future>(headers: Option<Arc<HeaderMap>>, future: F) -> F::Output {
    match headers {
        Some(headers) => FORWARDED.scope(headers, future).await,
        None => future.await,
    }
}

/// `future`, carrying the current forwarded headers along when it is spawned elsewhere.
pub(crate) fn propagate<F: Future>(future: F) -> impl Future<Output = F::Output> {
    scope(FORWARDED.try_with(Arc::clone).ok(), future)
}

/// Adds the forwarded headers `headers` does not have yet.
pub(crate) fn apply(headers: &mut HeaderMap) {
    let _ = FORWARDED.try_with(|forwarded| {
        for (name, value) in forwarded.iter() {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn forwarded_headers_reach_spawned_work_and_never_overwrite() {
        let mut forwarded = HeaderMap::new();
        forwarded.insert("x-user-id", "alice".parse().unwrap());
        forwarded.insert("x-tenant", "acme".parse().unwrap());
        let seen = scope(Some(Arc::new(forwarded)), async {
            tokio::spawn(propagate(async {
                let mut headers = HeaderMap::new();
                headers.insert("x-tenant", "already".parse().unwrap());
                apply(&mut headers);
                headers
            }))
            .await
            .unwrap()
        })
        .await;
        assert_eq!(seen["x-user-id"], "alice");
        assert_eq!(seen["x-tenant"], "already");
        let mut outside = HeaderMap::new();
        apply(&mut outside);
        assert!(outside.is_empty());
    }
}
