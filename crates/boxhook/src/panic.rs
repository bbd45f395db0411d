//! Catching a handler's panic, for the router and the inbox worker alike: one
//! bad event must not take the server or the worker down.

use std::any::Any;
use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;

/// What a panic carried.
pub(crate) type Panic = Box<dyn Any + Send>;

/// Runs `start` to build a future, then polls it to completion, turning a
/// panic in either step into `Err`.
pub(crate) async fn catch_unwind<F: Future>(start: impl FnOnce() -> F) -> Result<F::Output, Panic> {
    // Building the future runs the start of a closure handler: guard it too.
    let mut future: Pin<Box<F>> = Box::pin(std::panic::catch_unwind(AssertUnwindSafe(start))?);
    poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    })
    .await
}

/// The panic's message, when it was a string.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn panics_become_errors() {
        assert_eq!(catch_unwind(|| async { 7 }).await.ok(), Some(7));
        let late = catch_unwind(|| async {
            tokio::task::yield_now().await;
            panic!("while polling")
        })
        .await
        .expect_err("panicked");
        assert_eq!(panic_message(&*late), "while polling");
        let early = catch_unwind(|| -> std::future::Ready<()> {
            panic!("{}", String::from("while building"))
        })
        .await
        .expect_err("panicked");
        assert_eq!(panic_message(&*early), "while building");
    }
}
