//! `map` steps: one value per list element, computed concurrently under a bound.
//!
//! [`map_ordered`] keeps at most `bound` elements in flight, starts the next element the moment
//! one finishes, and puts results back in input order. It returns on the *first error in time*,
//! not the first in order: a failure of element 7 ends the step at once even while element 0 is
//! still waiting on a slow downstream (an ordered buffer such as `StreamExt::buffered` would
//! hold that error back until elements 0 to 6 were done). Returning drops the elements still in
//! flight, which cancels their downstream calls.
//!
//! Elements run inside the step's own task rather than as tasks of their own: they usually
//! wait on the network, so concurrency rather than parallelism is what they need, and the
//! element futures need not be `Send` or `'static`.
//!
//! # Why a bound, and why 32
//!
//! Without a bound, a list of 1 000 reviews opens 1 000 concurrent calls to the users service
//! from one edge request: one caller could take a downstream's whole concurrency, and HTTP/2
//! servers commonly cap concurrent streams per connection at 100, past which calls queue or fail.
//! [`DEFAULT_MAP_CONCURRENCY`] (32) covers typical page sizes (10 to 25 items) in a single round
//! trip, while keeping one edge request well under a third of such a cap.
//!
//! A bound of 0 is treated as 1 (one element at a time): 0 would never start anything, and a
//! step that hangs until its deadline is a worse answer to a configuration slip than running
//! serially.

use std::future::Future;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tonic::Status;

/// How many elements of a `map` step run at once when the step sets no bound of its own.
pub const DEFAULT_MAP_CONCURRENCY: usize = 32;

/// Maps every element concurrently, at most `bound` in flight (0 counts as 1), and returns the
/// results in input order.
///
/// `f` is called for an element only when a slot is free, so at most `bound` element futures
/// exist at once. The first error (in time) drops the elements still in flight, which cancels
/// them, and is returned as is.
pub async fn map_ordered<I, T, F, Fut>(items: I, bound: usize, mut f: F) -> Result<Vec<T>, Status>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let bound = bound.max(1);
    let mut items = items.into_iter().enumerate();
    let mut results: Vec<Option<T>> = Vec::with_capacity(items.size_hint().0);
    let mut in_flight = FuturesUnordered::new();
    loop {
        while in_flight.len() < bound {
            let Some((index, item)) = items.next() else {
                break;
            };
            results.push(None);
            let element = f(item);
            in_flight.push(async move { (index, element.await) });
        }
        match in_flight.next().await {
            // Nothing in flight after refilling: every element is done.
            None => break,
            Some((index, Ok(value))) => {
                if let Some(slot) = results.get_mut(index) {
                    *slot = Some(value);
                }
            }
            Some((_, Err(status))) => return Err(status),
        }
    }
    // Every slot was filled: each pushed element either completed (filling its slot) or
    // returned early with an error above.
    Ok(results.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use tokio::time::{Instant, sleep};
    use tonic::Code;

    use super::*;

    /// Counts elements in flight and remembers the most seen at once.
    #[derive(Clone, Default)]
    struct InFlight {
        now: Rc<Cell<usize>>,
        max: Rc<Cell<usize>>,
    }

    impl InFlight {
        fn enter(&self) -> InFlightGuard {
            self.now.set(self.now.get() + 1);
            self.max.set(self.max.get().max(self.now.get()));
            InFlightGuard(self.now.clone())
        }
    }

    struct InFlightGuard(Rc<Cell<usize>>);

    impl Drop for InFlightGuard {
        fn drop(&mut self) {
            self.0.set(self.0.get() - 1);
        }
    }

    /// Deterministic pseudo-random delays (xorshift), 1 to 50 ms.
    fn delays(count: usize) -> Vec<Duration> {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                Duration::from_millis(1 + state % 50)
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_input_order_and_the_bound() {
        let in_flight = InFlight::default();
        let items: Vec<(usize, Duration)> = delays(40).into_iter().enumerate().collect();
        let results = map_ordered(items, 3, |(i, delay)| {
            let in_flight = in_flight.clone();
            async move {
                let _guard = in_flight.enter();
                sleep(delay).await;
                Ok(i * 10)
            }
        })
        .await
        .expect("no element fails");
        assert_eq!(results, (0..40).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(
            in_flight.max.get(),
            3,
            "never more than the bound, and the bound is used"
        );
        assert_eq!(in_flight.now.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn runs_elements_concurrently() {
        let start = Instant::now();
        let results = map_ordered(1..=8_u64, DEFAULT_MAP_CONCURRENCY, |i| async move {
            sleep(Duration::from_millis(10 * (9 - i))).await;
            Ok(i)
        })
        .await
        .expect("no element fails");
        assert_eq!(results, (1..=8).collect::<Vec<_>>());
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(80),
            "the slowest element, not the sum"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_error_cancels_the_rest() {
        let start = Instant::now();
        let cancelled = Arc::new(AtomicBool::new(false));
        let completed = Rc::new(Cell::new(0));
        let result = map_ordered(0..6, 4, |i| {
            let (cancelled, completed) = (cancelled.clone(), completed.clone());
            async move {
                struct FlagOnDrop(Arc<AtomicBool>, bool);
                impl Drop for FlagOnDrop {
                    fn drop(&mut self) {
                        if !self.1 {
                            self.0.store(true, Ordering::SeqCst);
                        }
                    }
                }
                let mut guard = FlagOnDrop(cancelled, false);
                if i == 2 {
                    sleep(Duration::from_millis(5)).await;
                    guard.1 = true;
                    return Err(Status::not_found(format!("element {i}")));
                }
                sleep(Duration::from_millis(100)).await;
                guard.1 = true;
                completed.set(completed.get() + 1);
                Ok(i)
            }
        })
        .await;
        let status = result.expect_err("element 2 fails");
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "element 2");
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(5),
            "not held back by element 0"
        );
        assert!(
            cancelled.load(Ordering::SeqCst),
            "in-flight elements were dropped"
        );
        assert_eq!(completed.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn bound_zero_runs_one_at_a_time() {
        let in_flight = InFlight::default();
        let start = Instant::now();
        let results = map_ordered(["a", "b", "c"], 0, |s| {
            let in_flight = in_flight.clone();
            async move {
                let _guard = in_flight.enter();
                sleep(Duration::from_millis(10)).await;
                Ok(s.to_uppercase())
            }
        })
        .await
        .expect("no element fails");
        assert_eq!(results, ["A", "B", "C"]);
        assert_eq!(in_flight.max.get(), 1);
        assert_eq!(start.elapsed(), Duration::from_millis(30));
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_list_gives_an_empty_result() {
        let results = map_ordered(Vec::<u8>::new(), 4, |x| async move { Ok(x) }).await;
        assert_eq!(results.expect("empty"), Vec::<u8>::new());
    }
}
