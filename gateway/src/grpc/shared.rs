//! Request-scoped deduplication: within one edge call, calls of a method that is safe to
//! repeat with equal requests share one downstream call, its answer or its error.
//!
//! Two steps, or two elements of a `map`, that ask the same thing (the same method, the same
//! request bytes) wait on the first one's call rather than make their own: a page whose
//! reviews share authors looks each author up once. What is shared is the downstream's own
//! result, before it is named by step: each waiter's failure still names its own step.
//!
//! Only calls that may be merged are: the method is idempotent (`idempotency_level`, the
//! `mosaic.v1.method` annotation, or `gateway.toml`, which has the last word), and the step
//! sends no metadata of its own and captures none (two steps with different metadata ask
//! different things, and a captured map would be the first one's). Within those, equal
//! request messages (their encoded bytes) are the same question. Calls of other edge calls
//! are never merged: the registry lives in the edge call's context and dies with it.
//!
//! When the call that others wait on is cancelled (its step dropped), the next waiter makes
//! the call itself, so no waiter is left without an answer.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use tonic::Status;

/// One shared call's result, type-erased (each method has its response type).
type Answer = Result<Arc<dyn Any + Send + Sync>, Status>;

/// A call by method and encoded request.
type Key = (&'static str, Vec<u8>);

/// The calls of one edge call that others may share, by method and request bytes.
#[derive(Debug, Default)]
pub(crate) struct SharedCalls {
    calls: Mutex<HashMap<Key, Arc<OnceCell<Answer>>>>,
    /// Calls not made because an equal one was shared.
    saved: AtomicU64,
}

impl SharedCalls {
    /// The answer to `method` with `request` (encoded): the shared call's, or `call`'s when
    /// this is the first to ask.
    pub(crate) async fn share<R, F>(
        &self,
        method: &'static str,
        request: Vec<u8>,
        call: F,
    ) -> Result<R, Status>
    where
        R: Clone + Send + Sync + 'static,
        F: Future<Output = Result<R, Status>>,
    {
        let cell = {
            let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(calls.entry((method, request)).or_default())
        };
        let mut made = false;
        let answer = cell
            .get_or_init(|| {
                made = true;
                async move {
                    call.await
                        .map(|response| Arc::new(response) as Arc<dyn Any + Send + Sync>)
                }
            })
            .await;
        if !made {
            self.saved.fetch_add(1, Ordering::Relaxed);
        }
        match answer {
            Ok(response) => Ok(response
                .downcast_ref::<R>()
                .cloned()
                // One method has one response type; a mismatch would be a bug here.
                .ok_or_else(|| Status::internal("a shared call answered another type"))?),
            Err(status) => Err(status.clone()),
        }
    }

    /// How many calls sharing saved so far.
    pub(crate) fn saved(&self) -> u64 {
        self.saved.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn equal_requests_share_one_call_and_its_error() {
        let shared = SharedCalls::default();
        let made = AtomicU32::new(0);
        let call = |answer: Result<u32, Status>| {
            let made = &made;
            async move {
                made.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                answer
            }
        };
        let (a, b, c) = tokio::join!(
            shared.share("s.S/Get", vec![1], call(Ok(7))),
            shared.share("s.S/Get", vec![1], call(Ok(8))),
            shared.share("s.S/Get", vec![2], call(Ok(9))),
        );
        assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (7, 7, 9));
        assert_eq!(
            made.load(Ordering::SeqCst),
            2,
            "one call per distinct request"
        );
        assert_eq!(shared.saved(), 1);

        let (x, y) = tokio::join!(
            shared.share::<u32, _>("s.S/Other", vec![1], call(Err(Status::not_found("no")))),
            shared.share::<u32, _>("s.S/Other", vec![1], call(Ok(1))),
        );
        assert_eq!(x.unwrap_err().message(), "no");
        assert_eq!(y.unwrap_err().message(), "no", "the error is shared too");
        assert_eq!(made.load(Ordering::SeqCst), 3);
        assert_eq!(shared.saved(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_first_call_leaves_the_next_waiter_to_call() {
        let shared = Arc::new(SharedCalls::default());
        let first = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                shared
                    .share("s.S/Get", vec![1], async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        Ok(1_u32)
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        let second = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move { shared.share("s.S/Get", vec![1], async { Ok(2_u32) }).await }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        first.abort();
        assert_eq!(second.await.unwrap().unwrap(), 2);
    }
}
