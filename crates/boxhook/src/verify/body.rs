//! Collecting a request body with a size limit and a deadline.

use bytes::{Buf as _, Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt as _;
use std::time::Duration;

use super::budget::Reservation;

/// Why a body could not be collected.
#[derive(Debug)]
pub(crate) enum CollectError {
    /// More than `limit` bytes arrived.
    TooLarge,
    /// The deadline passed before the body ended.
    TimedOut,
    /// The body stream failed.
    Read(String),
    /// The shared body budget could not cover the bytes received.
    Overloaded,
}

/// Reads `body` to the end, stopping as soon as it passes `limit` bytes or
/// `deadline` passes, so a slow or huge request costs bounded memory and time.
/// With a `reservation`, every byte is covered by it before it is kept.
pub(crate) async fn collect<B>(
    body: B,
    limit: usize,
    size_hint: Option<u64>,
    deadline: Duration,
    reservation: Option<&mut Reservation>,
) -> Result<Bytes, CollectError>
where
    B: Body,
    B::Error: std::fmt::Display,
{
    let collecting = collect_limited(body, limit, size_hint, reservation);
    match tokio::time::timeout(deadline, collecting).await {
        Ok(result) => result,
        Err(_) => Err(CollectError::TimedOut),
    }
}

async fn collect_limited<B>(
    body: B,
    limit: usize,
    size_hint: Option<u64>,
    mut reservation: Option<&mut Reservation>,
) -> Result<Bytes, CollectError>
where
    B: Body,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    // A body that arrives in one frame is kept as it is, without a copy.
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CollectError::Read(e.to_string()))?;
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers carry nothing that is signed
        };
        // Zero-copy for `Bytes`, hyper's and most bodies' data type.
        let data = data.copy_to_bytes(data.remaining());
        // Saturating: past `usize::MAX` is over any limit (and unreachable
        // in memory anyway).
        len = len.saturating_add(data.len());
        if len > limit {
            return Err(CollectError::TooLarge);
        }
        if reservation.as_deref_mut().is_some_and(|r| !r.cover(len)) {
            return Err(CollectError::Overloaded);
        }
        if let Some(buf) = rest.as_mut() {
            buf.extend_from_slice(&data);
        } else if let Some(head) = first.take() {
            // Content-Length was checked against the limit already; use it
            // only as a capacity hint, and never beyond the limit.
            let hint = size_hint.map_or(0, |n| usize::try_from(n).unwrap_or(limit).min(limit));
            let mut buf = BytesMut::with_capacity(hint.max(len));
            buf.extend_from_slice(&head);
            buf.extend_from_slice(&data);
            rest = Some(buf);
        } else {
            first = Some(data);
        }
    }
    Ok(rest.map(BytesMut::freeze).or(first).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body that yields the given chunks one frame at a time.
    struct Chunks(VecDeque<&'static str>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            Poll::Ready(
                self.0
                    .pop_front()
                    .map(|c| Ok(http_body::Frame::data(Bytes::from_static(c.as_bytes())))),
            )
        }
    }

    async fn run(parts: &[&'static str], limit: usize) -> Result<Bytes, CollectError> {
        collect(
            Chunks(parts.iter().copied().collect()),
            limit,
            None,
            Duration::from_secs(1),
            None,
        )
        .await
    }

    #[tokio::test]
    async fn limits_and_joins() {
        assert_eq!(run(&[], 4).await.expect("empty"), Bytes::new());
        assert_eq!(run(&["abcd"], 4).await.expect("one frame"), "abcd");
        assert_eq!(
            run(&["ab", "c", "d"], 4).await.expect("three frames"),
            "abcd"
        );
        assert!(matches!(
            run(&["abcde"], 4).await,
            Err(CollectError::TooLarge)
        ));
        assert!(matches!(
            run(&["ab", "cd", "e"], 4).await,
            Err(CollectError::TooLarge)
        ));
    }

    #[tokio::test]
    async fn one_frame_is_not_copied() {
        static DATA: &str = "{\"a\":1}";
        let got = run(&[DATA], 64).await.expect("one frame");
        assert_eq!(got.as_ptr(), DATA.as_ptr());
    }
}
