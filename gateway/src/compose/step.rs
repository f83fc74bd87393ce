//! Steps: the nodes of a composition graph, each computed at most once per request.
//!
//! # Why each step is a task of its own
//!
//! [`step`] spawns the step's body on the Tokio runtime at once and returns a [`Step`], a
//! handle that any number of dependents can clone and await. A step that reads other steps
//! awaits their handles inside its own body, so it starts the moment the last of them is done:
//! the request takes as long as its critical path, not the sum of the slowest step of each
//! "level". Because steps are spawned rather than polled by whoever awaits them first, this
//! holds whatever order the generated code awaits the handles in, and independent steps can
//! decode their responses on different cores.
//!
//! The alternative, lazily shared futures polled by their readers, costs one task spawn less per
//! step, but a step would only make progress while someone polls it, and a handler that awaits
//! `p` before `stock` would silently serialize them. A spawn costs well under a microsecond; a
//! downstream call costs tens of microseconds at best.
//!
//! # At most once
//!
//! The body runs once; its result is kept behind an [`Arc`] and every handle gets the same
//! value (or the same error). Cloning a handle is a reference-count increment.
//!
//! # Cancellation
//!
//! Dropping the last handle of a step aborts its task. Steps hold handles of the steps they
//! read, so dropping the handler's future (the edge call was cancelled, its deadline passed, or
//! another step failed and the handler returned early) cancels the whole graph: each aborted
//! task drops its dependencies' handles in turn. Abortion takes effect at the task's next
//! suspension point, so cancellation is prompt but not synchronous with the drop.
//!
//! # Failures
//!
//! A step's error is returned to every handle. To fail fast, await steps together
//! (`compose::try_join!(a, b)`), so the first error ends the handler while slower steps are
//! still running; awaiting them one after the other still runs them concurrently, but reports
//! an early failure only once the steps awaited before it are done. A panicking step fails with
//! `INTERNAL` instead of tearing down the connection (the panic is logged).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_util::FutureExt;
use futures_util::future::Shared;
use tokio::runtime::Handle;
use tokio::task::{JoinError, JoinHandle};
use tonic::Status;

use super::error::ComposeError;
use crate::telemetry;

/// A step's value, computed at most once and awaited by any number of dependents.
///
/// `Step<T>` is a `Future` with output `Result<Arc<T>, Status>`: await a clone
/// (`a.clone().await` or `a.get().await`) where the handle is needed again, or the handle itself
/// where it is not. Dropping every handle cancels the step.
pub struct Step<T> {
    shared: Shared<StepTask<T>>,
}

/// Starts a step: spawns `body` now and returns the handle its dependents await.
///
/// Must be called inside a Tokio runtime (generated handlers always are); outside one, the
/// step fails with `INTERNAL` rather than panicking.
pub fn step<T, F>(body: F) -> Step<T>
where
    F: Future<Output = Result<T, Status>> + Send + 'static,
    T: Send + Sync + 'static,
{
    let state = match Handle::try_current() {
        // The step is part of the edge call: its attempts count toward the call's waiting.
        Ok(runtime) => TaskState::Running(runtime.spawn(telemetry::propagate(body))),
        Err(_) => TaskState::Finished(Some(Err(ComposeError::NoRuntime.to_status()))),
    };
    Step::from_state(state)
}

/// Starts a step only when `guard` holds; otherwise the step's value is `T::default()` and
/// `body` is dropped without running.
///
/// For guards known before the step starts. A guard that reads other steps belongs inside the
/// body (`if !guard { return Ok(T::default()) }`) after awaiting them.
pub fn step_if<T, F>(guard: bool, body: F) -> Step<T>
where
    F: Future<Output = Result<T, Status>> + Send + 'static,
    T: Default + Send + Sync + 'static,
{
    if guard {
        step(body)
    } else {
        Step::ready(T::default())
    }
}

// === impl Step ===

impl<T> Step<T> {
    /// A step whose value is already known; nothing is spawned.
    pub fn ready(value: T) -> Self {
        Self::from_state(TaskState::Finished(Some(Ok(Arc::new(value)))))
    }

    /// A step that has already failed with `status`; nothing is spawned.
    pub fn failed(status: Status) -> Self {
        Self::from_state(TaskState::Finished(Some(Err(status))))
    }

    /// Waits for the step's value without giving up this handle.
    pub async fn get(&self) -> Result<Arc<T>, Status> {
        self.clone().await
    }

    fn from_state(state: TaskState<T>) -> Self {
        Self {
            shared: StepTask { state }.shared(),
        }
    }
}

impl<T> Clone for Step<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Future for Step<T> {
    type Output = Result<Arc<T>, Status>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.shared).poll(cx)
    }
}

impl<T> fmt::Debug for Step<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `peek` only sees an outcome once some handle has polled the step to completion.
        let state = match self.shared.peek() {
            None => "pending",
            Some(Ok(_)) => "done",
            Some(Err(_)) => "failed",
        };
        f.debug_struct("Step").field("state", &state).finish()
    }
}

/// The one future behind all handles of a step: the spawned task, aborted when dropped.
struct StepTask<T> {
    state: TaskState<T>,
}

enum TaskState<T> {
    Running(JoinHandle<Result<T, Status>>),
    Finished(Option<Result<Arc<T>, Status>>),
}

impl<T> Future for StepTask<T> {
    type Output = Result<Arc<T>, Status>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            TaskState::Running(task) => {
                let output = match ready!(Pin::new(task).poll(cx)) {
                    Ok(result) => result.map(Arc::new),
                    Err(error) => Err(join_error_status(error)),
                };
                Poll::Ready(output)
            }
            // `Shared` polls its future to completion once and never again; the fallback only
            // keeps this free of panics.
            TaskState::Finished(output) => Poll::Ready(output.take().unwrap_or_else(|| {
                Err(Status::internal(
                    "a composition step was polled after completion",
                ))
            })),
        }
    }
}

impl<T> Drop for StepTask<T> {
    fn drop(&mut self) {
        // Aborting a finished task does nothing, so this is only felt by a step still running
        // when its last handle goes away.
        if let TaskState::Running(task) = &self.state {
            task.abort();
        }
    }
}

fn join_error_status(error: JoinError) -> Status {
    if error.is_panic() {
        let panic = error.into_panic();
        let message = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(not a string)");
        tracing::error!(panic = message, "a composition step panicked");
        ComposeError::StepPanicked.to_status()
    } else {
        ComposeError::StepCancelled.to_status()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::time::{Instant, sleep};
    use tonic::Code;

    use super::*;
    use crate::compose::step_failed;

    /// Sets its flag when dropped: proves a step's body was dropped (cancelled or finished).
    struct SetOnDrop(Arc<AtomicBool>);

    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A step that sleeps and then yields `value`.
    fn after<T: Send + Sync + 'static>(ms: u64, value: T) -> Step<T> {
        step(async move {
            sleep(Duration::from_millis(ms)).await;
            Ok(value)
        })
    }

    #[tokio::test(start_paused = true)]
    async fn steps_follow_the_critical_path() {
        let start = Instant::now();
        let a = after(10, 1);
        let b = after(100, 2);
        let c = {
            let a = a.clone();
            step(async move {
                let a = a.await?;
                sleep(Duration::from_millis(10)).await;
                Ok(*a + 10)
            })
        };
        let c_done = {
            let c = c.clone();
            step(async move {
                c.await?;
                Ok(start.elapsed())
            })
        };
        let d = step(async move {
            let (b, c) = tokio::try_join!(b, c)?;
            sleep(Duration::from_millis(10)).await;
            Ok(*b + *c)
        });
        assert_eq!(*d.await.expect("d"), 13);
        // a → c finishes at 20ms, while b runs; d starts when b is done at 100ms.
        assert_eq!(*c_done.await.expect("c"), Duration::from_millis(20));
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(110),
            "not 10 + 100 + 10 + 10"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_runs_once_for_all_its_readers() {
        let runs = Arc::new(AtomicUsize::new(0));
        let shared = {
            let runs = runs.clone();
            step(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                sleep(Duration::from_millis(5)).await;
                Ok(String::from("value"))
            })
        };
        let readers: Vec<Step<usize>> = (0..3)
            .map(|i| {
                let shared = shared.clone();
                step(async move { Ok(shared.await?.len() + i) })
            })
            .collect();
        for (i, reader) in readers.into_iter().enumerate() {
            assert_eq!(*reader.await.expect("reader"), 5 + i);
        }
        assert_eq!(*shared.get().await.expect("again"), "value");
        assert_eq!(*shared.await.expect("and again"), "value");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_handler_cancels_running_steps() {
        let dropped = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let handler = {
            let (dropped, finished) = (dropped.clone(), finished.clone());
            async move {
                let slow = step(async move {
                    let _guard = SetOnDrop(dropped);
                    sleep(Duration::from_secs(10)).await;
                    finished.store(true, Ordering::SeqCst);
                    Ok(1)
                });
                let reader = {
                    let slow = slow.clone();
                    step(async move { Ok(*slow.await? + 1) })
                };
                reader.await
            }
        };
        let outcome = tokio::time::timeout(Duration::from_millis(20), handler).await;
        assert!(outcome.is_err(), "the handler should still be waiting");
        assert!(!dropped.load(Ordering::SeqCst));
        // Aborts land at the tasks' next scheduling point.
        sleep(Duration::from_millis(1)).await;
        assert!(
            dropped.load(Ordering::SeqCst),
            "the slow step was not cancelled"
        );
        sleep(Duration::from_secs(20)).await;
        assert!(!finished.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_failure_fails_the_call_promptly() {
        let start = Instant::now();
        let dropped = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let handler = {
            let (dropped, finished) = (dropped.clone(), finished.clone());
            async move {
                let slow = step(async move {
                    let _guard = SetOnDrop(dropped);
                    sleep(Duration::from_millis(100)).await;
                    finished.store(true, Ordering::SeqCst);
                    Ok(1)
                });
                let failing = step(async {
                    sleep(Duration::from_millis(10)).await;
                    let downstream = Status::not_found("product 501 not found");
                    Err::<i32, _>(step_failed(
                        "p",
                        "demo.catalog.v1.CatalogService/GetProduct",
                        downstream,
                    ))
                });
                let reads_slow = {
                    let slow = slow.clone();
                    step(async move { Ok(*slow.await? * 2) })
                };
                let (s, f, r) = crate::compose::try_join!(slow, failing, reads_slow)?;
                Ok::<_, Status>(*s + *f + *r)
            }
        };
        let status = handler
            .await
            .expect_err("the failing step should fail the call");
        assert_eq!(start.elapsed(), Duration::from_millis(10));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(
            status.message(),
            "step `p` (demo.catalog.v1.CatalogService/GetProduct) failed: product 501 not found"
        );
        sleep(Duration::from_millis(1)).await;
        assert!(dropped.load(Ordering::SeqCst), "the slow step kept running");
        sleep(Duration::from_millis(200)).await;
        assert!(!finished.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_reaches_every_reader() {
        let failing: Step<u8> = step(async { Err(Status::unavailable("down")) });
        let a = failing.clone();
        let b = failing.clone();
        assert_eq!(a.await.expect_err("a").code(), Code::Unavailable);
        assert_eq!(b.await.expect_err("b").code(), Code::Unavailable);
        assert!(format!("{failing:?}").contains("failed"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_step_fails_with_internal() {
        let panicking: Step<u8> = step(async { panic!("bug in a step") });
        let status = panicking
            .await
            .expect_err("the panic should become a status");
        assert_eq!(status.code(), Code::Internal);
        assert!(status.message().contains("panicked"), "{status:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn guarded_steps_run_only_when_the_guard_holds() {
        let ran = Arc::new(AtomicBool::new(false));
        let skipped = {
            let ran = ran.clone();
            step_if(false, async move {
                ran.store(true, Ordering::SeqCst);
                Ok(7_i64)
            })
        };
        assert_eq!(*skipped.await.expect("default"), 0);
        sleep(Duration::from_millis(1)).await;
        assert!(!ran.load(Ordering::SeqCst));

        let taken = step_if(true, async { Ok(7_i64) });
        assert_eq!(*taken.await.expect("value"), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn ready_and_failed_steps_need_no_task() {
        let ready = Step::ready(3);
        assert_eq!(*ready.get().await.expect("ready"), 3);
        assert_eq!(format!("{ready:?}"), "Step { state: \"done\" }");
        let failed: Step<()> = Step::failed(Status::invalid_argument("bad"));
        assert_eq!(
            failed.await.expect_err("failed").code(),
            Code::InvalidArgument
        );
    }

    #[test]
    fn handles_can_cross_tasks() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<Step<String>>();
        send_and_sync::<crate::compose::EdgeCall>();
        send_and_sync::<crate::compose::Downstreams>();
    }

    #[test]
    fn outside_a_runtime_a_step_fails_instead_of_panicking() {
        let orphan: Step<u8> = step(async { Ok(1) });
        let status = orphan
            .now_or_never()
            .expect("ready at once")
            .expect_err("no runtime");
        assert_eq!(status.code(), Code::Internal);
    }
}
